"""Run under `accelerate launch --multi_gpu --num_processes 2 tests/dist_check.py OUT.json [key=value ...]` (CPU,
gloo): trains and samples a smoke UNet with the processes together and, on the main process, alone; writes how far
apart they are. With key=value pairs the same processes then run `scollapse-run key=value ...` (one launch for both
tests of tests/test_distributed.py: each launch costs three processes importing torch)."""
import copy, json, math, sys
from dataclasses import replace
from unittest import mock
import numpy as np
import torch
from accelerate import Accelerator
from scollapse.data import load_dataset
from scollapse.ddpm import Runtime, model_preset, make_unet, make_scheduler, train_ddpm, sample_ddpm, balanced_labels


class PlainSGD(torch.optim.SGD):
    """Stands in for train_ddpm's AdamW: no momentum, no weight decay, so each step is lr x the gradient and a gradient
    summed instead of averaged over processes doubles it (AdamW's steps are invariant to a common gradient scale).
    Keeps the gradients of its first step (after DDP's all-reduce and clipping)."""
    made = []
    def __init__(self, params, lr, **_):
        super().__init__(params, lr=lr, momentum=0.0, weight_decay=0.0)
        self.first_grads = None
        PlainSGD.made.append(self)
    def step(self, closure=None):
        if self.first_grads is None:
            self.first_grads = torch.cat([p.grad.detach().flatten() for g in self.param_groups for p in g['params']])
        return super().step(closure)


def flat(model): return torch.cat([p.detach().flatten() for p in model.parameters()])


acc = Accelerator(cpu=True)
rt = Runtime(acc)
x, y, spec = load_dataset('digits')
cfg = replace(model_preset(spec.shape, 'smoke'), sample_batch_size=10)
kw = dict(epochs=3, lr=2e-3, batch_size=32, seed=0, progress=False)   # 65 images: the last batch has one image
together = make_unet(cfg, 10, seed=0)
alone, sgd_together = copy.deepcopy(together), copy.deepcopy(together)
sgd_alone, init = copy.deepcopy(together), flat(together)
loss_together = train_ddpm(together, make_scheduler(cfg), x[:65], y[:65], runtime=rt, **kw)
sgd_kw = {**kw, 'grad_clip': math.inf}                                # no clipping: it would rescale the gradient too
with mock.patch.object(torch.optim, 'AdamW', PlainSGD):
    train_ddpm(sgd_together, make_scheduler(cfg), x[:65], y[:65], runtime=rt, **sgd_kw)
g_together = PlainSGD.made.pop().first_grads
labels = balanced_labels(25, 10)                                      # 3 sampling batches over 2 processes
s_together = sample_ddpm(together, cfg, labels, seed=3, progress=False, runtime=rt)
if rt.is_main:
    loss_alone = train_ddpm(alone, make_scheduler(cfg), x[:65], y[:65], **kw)
    with mock.patch.object(torch.optim, 'AdamW', PlainSGD):
        train_ddpm(sgd_alone, make_scheduler(cfg), x[:65], y[:65], **sgd_kw)
    g_alone = PlainSGD.made.pop().first_grads
    s_alone = sample_ddpm(together, cfg, labels, seed=3, progress=False)
    dw = max((a - b).abs().max().item() for a, b in zip(together.parameters(), alone.parameters()))
    w_t, w_a = flat(sgd_together), flat(sgd_alone)
    json.dump({'world': rt.world, 'max_weight_diff': dw, 'max_loss_diff': float(np.abs(np.subtract(loss_together, loss_alone)).max()),
               'max_loss': float(np.max(loss_alone)),
               # first SGD step's gradients, and SGD weights after all steps relative to how far SGD moved them
               'grad_rel_diff': float((g_together - g_alone).abs().max() / g_alone.abs().max()),
               'grad_norm_ratio': float(g_together.norm() / g_alone.norm()),
               'sgd_weight_rel_diff': float((w_t - w_a).abs().max() / (w_a - init).abs().max()),
               'n_steps': len(loss_together), 'samples_equal': bool(np.array_equal(s_together, s_alone)),
               'n_samples': len(s_together)}, open(sys.argv[1], 'w'))
acc.wait_for_everyone()
if len(sys.argv) > 2:   # the loop's pairs: OUT.json is complete before the loop starts
    from scollapse.cli import main
    sys.exit(main(sys.argv[2:]))
