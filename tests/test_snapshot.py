"""A training snapshot written by one process resumes in another: the fingerprint holds nothing that differs between
processes (diffusers' `_use_default_values` is a set's order, which changes with PYTHONHASHSEED)."""
import os
import subprocess
import sys

import torch

TRAIN = """
import sys, torch
from scollapse.data import load_dataset
from scollapse.ddpm import model_preset, make_unet, make_scheduler, train_ddpm
snapshot, mode, out = sys.argv[1:4]
x, y, spec = load_dataset('digits')
cfg = model_preset(spec.shape, 'smoke')

def kill_after_1(epoch, unet):
    if mode == 'kill' and epoch == 1:
        raise SystemExit(3)

unet = make_unet(cfg, 10, seed=0)
train_ddpm(unet, make_scheduler(cfg), x[:64], y[:64], epochs=2, lr=2e-3, batch_size=32, seed=0, progress=False,
           ema_decay=0.9, on_epoch=kill_after_1, snapshot=snapshot or None, snapshot_every=0)
torch.save(unet.state_dict(), out)
"""


def train(tmp_path, snapshot, mode, hash_seed) -> int:
    """Run TRAIN in a fresh process with its own PYTHONHASHSEED; returns its exit code."""
    env = {**os.environ, 'PYTHONHASHSEED': str(hash_seed), 'OMP_NUM_THREADS': '1'}
    out = tmp_path / f'{mode}.pt'
    return subprocess.run([sys.executable, '-c', TRAIN, str(snapshot), mode, str(out)], env=env).returncode


def test_a_snapshot_resumes_in_another_process(tmp_path):
    snapshot = tmp_path / 'gen0.pt.train-state'
    assert train(tmp_path, snapshot, 'kill', 1) == 3 and snapshot.exists()   # killed after epoch 1 of 2
    assert train(tmp_path, snapshot, 'resume', 2) == 0                        # another process, another hash seed
    assert train(tmp_path, '', 'whole', 3) == 0                               # uninterrupted, no snapshot
    resumed, whole = torch.load(tmp_path / 'resume.pt'), torch.load(tmp_path / 'whole.pt')
    assert all(torch.equal(resumed[k], whole[k]) for k in whole)
