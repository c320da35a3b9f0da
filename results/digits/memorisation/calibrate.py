"""Calibration on seed 10 (never reported) of the memorisation cells, two modes:

- `measure`: the memorised share and GS of known cases against seed 10's N real training images: the training
  images themselves, the same with Gaussian pixel noise, and held-out real images (no memorisation by construction);
- `train N BATCH EPOCHS CHECKPOINT...`: the memorised share and GS of generation 0 at epoch checkpoints of one
  training run (each checkpoint before the last is part-way through a cosine schedule of the full length, its lr not
  yet annealed, so its share is a lower bound for a whole run of that length).

OMP_NUM_THREADS=1 .venv/bin/python results/digits/memorisation/calibrate.py measure 64
OMP_NUM_THREADS=1 .venv/bin/python results/digits/memorisation/calibrate.py train 64 32 750 25 75 150 250 375 500 625
"""
import sys
import time

import numpy as np

from scollapse.config import LoopConfig
from scollapse.loop import resolve_config
from scollapse.data import load_dataset
from scollapse.trainset import run_splits
from scollapse.artefacts import ensure_gen0
from scollapse.ddpm import sample_ddpm
from scollapse.entropy import memorization_fraction, generalization_score, pixel_features

CALIBRATION_SEED, N_SAMPLES, N_HELD_OUT = 10, 128, 128
NOISE_RMS = (5, 15, 30, 60)   # pixel noise (0-255 scale) added to copies of the training images
HEADER = 'case,n_train,batch_size,epochs_total,epoch,steps,memorization_pixel,gs_pixel,seconds'


def calibration_cfg(n: int, batch: int = 32, epochs: int = 1) -> LoopConfig:
    """The seed-10 cell of the memorisation notebook's setting at N, batch and epochs (generation 0 only is used)."""
    return LoopConfig(dataset='digits', paradigm='replace', filter='none', protocol='entropy', n_train=n, n_ref=500,
                      n_eval=N_SAMPLES, generations=1, seed=CALIBRATION_SEED, cache_dir='runs/memorisation/_cache',
                      model_overrides={'epochs_gen0': epochs, 'batch_size': batch}, progress=False)


def real_splits(loop_cfg: LoopConfig):
    """The loop's real data split of this configuration."""
    x, y, spec = load_dataset('digits')
    return run_splits(resolve_config(loop_cfg), x, y, spec)


def row(case: str, feats: np.ndarray, train: np.ndarray, n: int, extra: str = ',,,') -> str:
    """One CSV line: the memorised share and GS of `feats` against `train`."""
    return f'{case},{n},{extra},{memorization_fraction(feats, train):.4f},{generalization_score(feats, train):.2f}'


def measure(n: int) -> None:
    """Known cases: copies (share 1), noisy copies, held-out real images (share ~0)."""
    splits = real_splits(calibration_cfg(n))
    train = pixel_features(splits.gen0_x)
    print(HEADER)
    print(row('copies of the training images', train, train, n) + ',')
    rng = np.random.default_rng(CALIBRATION_SEED)
    for rms in NOISE_RMS:
        noisy = np.clip(train + rng.normal(0, rms, train.shape), 0, 255).astype(np.float32)
        print(row(f'copies + pixel noise rms {rms}', noisy, train, n) + ',')
    print(row('held-out real images', pixel_features(splits.ref_x[:N_HELD_OUT]), train, n) + ',')


def train_run(n: int, batch: int, epochs: int, checkpoints: set) -> None:
    """Generation 0 of seed 10 trained for `epochs`, sampled and scored at each checkpoint epoch and at the end."""
    loop_cfg = calibration_cfg(n, batch, epochs)
    run_cfg, splits = resolve_config(loop_cfg), real_splits(loop_cfg)
    train, steps_per_epoch, started = pixel_features(splits.gen0_x), -(-n // batch), time.perf_counter()
    print(HEADER, flush=True)

    def watch(epoch, unet):
        """Sample the model at a checkpoint and print its memorised share and GS against its training set."""
        if epoch not in checkpoints | {epochs}:
            return
        xs = sample_ddpm(unet, run_cfg.model_cfg, np.full(N_SAMPLES, -1), seed=0, progress=False)
        extra = f'{batch},{epochs},{epoch},{epoch * steps_per_epoch}'
        print(row('generation 0 checkpoint', pixel_features(xs), train, n, extra) +
              f',{time.perf_counter() - started:.0f}', flush=True)

    ensure_gen0(loop_cfg, splits.gen0_x, splits.gen0_y, on_epoch=watch)


if __name__ == '__main__':
    mode, args = sys.argv[1], [int(a) for a in sys.argv[2:]]
    if mode == 'measure':
        measure(*args)
    else:
        train_run(*args[:3], set(args[3:]))
