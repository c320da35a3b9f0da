"""Run under `accelerate launch --multi_gpu --num_processes 2 tests/dist_check.py OUT.json` (CPU, gloo): trains and
samples a smoke UNet with the processes together and, on the main process, alone; writes how far apart they are."""
import copy, json, sys
from dataclasses import replace
import numpy as np
import torch
from accelerate import Accelerator
from scollapse.data import load_dataset
from scollapse.ddpm import Runtime, model_preset, make_unet, make_scheduler, train_ddpm, sample_ddpm, balanced_labels

acc = Accelerator(cpu=True)
rt = Runtime(acc)
x, y, spec = load_dataset('digits')
cfg = replace(model_preset(spec.shape, 'smoke'), sample_batch_size=10)
kw = dict(epochs=3, lr=2e-3, batch_size=32, seed=0, progress=False)   # 65 images: the last batch has one image
together = make_unet(cfg, 10, seed=0)
alone = copy.deepcopy(together)
loss_together = train_ddpm(together, make_scheduler(cfg), x[:65], y[:65], runtime=rt, **kw)
labels = balanced_labels(25, 10)                                      # 3 sampling batches over 2 processes
s_together = sample_ddpm(together, cfg, labels, seed=3, progress=False, runtime=rt)
if rt.is_main:
    loss_alone = train_ddpm(alone, make_scheduler(cfg), x[:65], y[:65], **kw)
    s_alone = sample_ddpm(together, cfg, labels, seed=3, progress=False)
    dw = max((a - b).abs().max().item() for a, b in zip(together.parameters(), alone.parameters()))
    json.dump({'world': rt.world, 'max_weight_diff': dw, 'max_loss_diff': float(np.abs(np.subtract(loss_together, loss_alone)).max()),
               'n_steps': len(loss_together), 'samples_equal': bool(np.array_equal(s_together, s_alone)),
               'n_samples': len(s_together)}, open(sys.argv[1], 'w'))
acc.wait_for_everyone()
