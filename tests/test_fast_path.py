"""The CUDA fast path's code paths on a CPU at smoke size: compiled (default and CUDA-graph mode) training and
sampling run and agree with eager; the gpu preset builds and trains; tools/gpu_check.sh passes its dry run."""
import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from scollapse.data import load_dataset
from scollapse.ddpm import (model_preset, make_unet, make_scheduler, train_ddpm, sample_ddpm, balanced_labels, Runtime,
                            fit_kwargs)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def digits():
    x, y, _ = load_dataset('digits')
    return x[:64], y[:64]


@pytest.mark.slow   # torch.compile on a CPU: 135 s per graph unloaded (README, Speed); > 15 min under load
@pytest.mark.parametrize('mode', ['default', 'reduce-overhead'])
def test_compiled_paths_run_on_cpu_and_match_eager(digits, mode):
    x, y = digits
    cfg = replace(model_preset((1, 8, 8), 'smoke'), sampling_steps=3, sample_batch_size=10)
    runs = {}
    for name, rt in (('eager', Runtime()), ('compiled', Runtime(compile=True, compile_mode=mode))):
        unet = make_unet(cfg, 10, seed=0)
        losses = train_ddpm(unet, make_scheduler(cfg), x, y, epochs=1, lr=1e-3, batch_size=32, seed=0, progress=False,
                            runtime=rt)
        runs[name] = (losses, sample_ddpm(unet, cfg, balanced_labels(10, 10), seed=0, progress=False, runtime=rt))
    # inductor fuses and reorders float32 arithmetic: the same numbers up to rounding, not bit for bit
    np.testing.assert_allclose(runs['compiled'][0], runs['eager'][0], rtol=1e-3)
    assert np.abs(runs['compiled'][1].astype(int) - runs['eager'][1].astype(int)).max() <= 2


def test_gpu_preset_builds_and_trains_at_smoke_size(digits):
    from scollapse.speed import unet_flops
    cfg = replace(model_preset((1, 28, 28), 'gpu'), epochs_gen0=1, sampling_steps=2, sample_batch_size=4)
    x = np.random.default_rng(0).integers(0, 256, (8, 1, 28, 28), dtype=np.uint8)
    unet = make_unet(cfg, 10, seed=0)
    losses = train_ddpm(unet, make_scheduler(cfg), x, np.arange(8) % 10, **{**fit_kwargs(cfg, True), 'batch_size': 4},
                        progress=False)
    assert len(losses) == 2 and np.isfinite(losses).all()
    assert sample_ddpm(unet, cfg, balanced_labels(4, 10), progress=False).shape == (4, 1, 28, 28)
    assert 1e9 < unet_flops(cfg) < unet_flops(model_preset((1, 28, 28), 'paper'))


@pytest.mark.slow   # several minutes on the 2-core machine (see the report)
def test_gpu_check_dry_run(tmp_path):
    out = tmp_path / 'gpu_check'
    t0 = time.perf_counter()
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'GPU_CHECK_SECONDS': '1800'}   # step timeouts for a slow CPU
    r = subprocess.run(['bash', str(ROOT / 'tools' / 'gpu_check.sh'), str(out), '--cpu-dry-run'], cwd=ROOT,
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert 1 <= len(files) <= 8, files
    assert {'bench.csv', 'cells.tar.gz', 'summary.txt'} <= set(files), files
    print(f'dry run: {time.perf_counter() - t0:.0f} s')


def test_gpu_check_refuses_unwritable_outdir(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    r = subprocess.run(['bash', str(ROOT / 'tools' / 'gpu_check.sh'), str(blocker / 'out'), '--cpu-dry-run'], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2 and 'not writable' in r.stderr
