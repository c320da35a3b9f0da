"""Tests for scollapse.lsf (probe, confidence, t*, selection, persistence)."""
import os

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler, UNet2DModel
from threadpoolctl import threadpool_limits

from scollapse.lsf import (T_GRID, Probe, choose_timestep, fit_probe, load_probe, probe_confidence, save_probe,
                           top_confident)
from scollapse.ole import ole_score
from scollapse.latents import extract_latents


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1)
    with threadpool_limits(1): yield
    torch.set_num_threads(n)


def blobs(n_per=200, d=50, n_classes=3, sep=6.0, seed=0):
    "Linearly separable Gaussian classes (means sep apart on separate axes), offset from 0."
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per)
    return (sep * np.eye(n_classes, d)[y] + rng.normal(size=(len(y), d)) + 3.0).astype(np.float32), y


@pytest.fixture(scope='module')
def fitted():
    Z, y = blobs()
    probe, info = fit_probe(Z, y, n_classes=3, lr=1e-2, batch_size=32)
    return Z, y, probe, info


def test_separable_probe_accurate_and_confident(fitted):
    Z, y, probe, info = fitted
    assert info['val_acc'] >= 0.99 and info['n_val'] == 60 and info['n_train'] == 540
    assert info['n_params'] == (50 + 1) * 3
    conf = probe_confidence(probe, Z, y)
    assert conf.dtype == np.float64 and conf.shape == (600,) and ((conf > 0) & (conf <= 1)).all()
    assert conf.mean() > 0.9


def test_noise_lowers_confidence(fitted):
    Z, y, probe, _ = fitted
    clean = probe_confidence(probe, Z, y).mean()
    noisy = [probe_confidence(probe, Z + np.random.default_rng(1).normal(scale=s, size=Z.shape).astype(np.float32),
                              y).mean() for s in (2.0, 6.0)]
    assert clean > noisy[0] > noisy[1]


def test_confidence_is_softmax_of_own_label(fitted):
    Z, y, probe, _ = fitted
    with torch.no_grad(): logits = probe(torch.as_tensor(Z)).double().numpy()
    p = np.exp(logits - logits.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
    # the same float32 logits (one batch); float64 log-softmax vs exp-normalise differ by ~1e-15 relative
    np.testing.assert_allclose(probe_confidence(probe, Z, y), p[np.arange(len(y)), y], rtol=1e-6)
    total = sum(probe_confidence(probe, Z, np.full(len(Z), c)) for c in range(3))
    np.testing.assert_allclose(total, 1.0, rtol=1e-9)        # float64 softmax sums to 1 within ~1e-15


def test_standardisation_stored_and_affine_invariance():
    Z, y = blobs(n_per=60, d=8, seed=3)
    probe, _ = fit_probe(Z, y, 3, val_frac=0.0, epochs=5)
    # the probe stores float64 statistics cast to float32; numpy's float32 mean/std of 180 values ~ 6 are off by
    # <= ~1e-6 relative (measured 1.4e-6 absolute, 2e-7 relative); ddof=1 instead of 0 would be off by 3e-3
    np.testing.assert_allclose(probe.mean.numpy(), Z.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(probe.std.numpy(), Z.std(0), rtol=1e-5)
    a, b = np.linspace(0.5, 20, 8).astype(np.float32), np.linspace(-5, 5, 8).astype(np.float32)
    probe2, _ = fit_probe(a * Z + b, y, 3, val_frac=0.0, epochs=5)
    # standardised inputs agree to float32 rounding; 5 epochs of training keep confidences within ~1e-8 (measured
    # 4e-9 with AVX-512 and SSE4.1 kernels); 1e-4 bounds the growth of that rounding through training
    np.testing.assert_allclose(probe_confidence(probe2, a * Z + b, y), probe_confidence(probe, Z, y), atol=1e-4)


def test_fit_deterministic(fitted):
    Z, y, probe, _ = fitted
    probe2, _ = fit_probe(Z, y, n_classes=3, lr=1e-2, batch_size=32)
    torch.testing.assert_close(probe.linear.weight, probe2.linear.weight, rtol=0, atol=0)   # same run twice: exact


def test_unknown_labels_rejected(fitted):
    Z, y, probe, _ = fitted
    with pytest.raises(ValueError, match='not in the probe'): probe_confidence(probe, Z, np.full(len(Z), 3))
    Z4, y4 = blobs(n_per=30, n_classes=3)
    probe4, _ = fit_probe(Z4, y4, n_classes=4, epochs=1)     # class 3 never seen
    with pytest.raises(ValueError, match=r'\[3\]'): probe_confidence(probe4, Z4, np.full(len(Z4), 3))
    with pytest.raises(ValueError, match='features'): probe_confidence(probe, Z[:, :10], y)


def test_fit_bad_input():
    Z, y = blobs(n_per=10)
    with pytest.raises(ValueError, match='n_classes'): fit_probe(Z, y, n_classes=2)
    with pytest.raises(ValueError, match='len'): fit_probe(Z, y[:-1], 3)
    with pytest.raises(ValueError, match='val_frac'): fit_probe(Z, y, 3, val_frac=1.0)
    Zb = Z.copy(); Zb[0, 0] = np.nan
    with pytest.raises(ValueError, match='non-finite'): fit_probe(Zb, y, 3)


def test_top_confident_exact_top_n():
    rng = np.random.default_rng(0)
    conf = rng.integers(0, 20, 500) / 20.0                     # many ties
    labels = rng.integers(0, 5, 500)
    idx = top_confident(conf, labels, 123)
    assert idx.dtype == np.int64 and len(idx) == 123 and len(np.unique(idx)) == 123
    rest = np.setdiff1d(np.arange(500), idx)
    assert conf[idx].min() >= conf[rest].max()
    # sorted by (-conf, index): ties broken by the lower index
    keys = list(zip(-conf[idx], idx))
    assert keys == sorted(keys)
    np.testing.assert_array_equal(top_confident(conf, labels, 123), idx)


def test_top_confident_balanced():
    rng = np.random.default_rng(1)
    conf, labels = rng.random(300), np.repeat(np.arange(3), 100)
    idx = top_confident(conf, labels, 61, balance_per_class=True)
    assert len(np.unique(idx)) == 61
    counts = np.bincount(labels[idx], minlength=3)
    assert sorted(counts) == [20, 20, 21]
    for c in range(3):   # within each class: its own top-k
        members = np.flatnonzero(labels == c)
        assert set(idx[labels[idx] == c]) == set(members[np.argsort(-conf[members])[:counts[c]]])
    # remainder goes to the class with the best next candidate
    nxt = [np.sort(conf[labels == c])[::-1][20] for c in range(3)]
    assert np.argmax(counts) == int(np.argmax(nxt))


def test_top_confident_small_example_and_errors():
    conf = np.array([.1, .9, .5, .9, .3, .7, .2, .8])
    lab = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(top_confident(conf, lab, 3), [1, 3, 7])
    np.testing.assert_array_equal(top_confident(conf, lab, 4, balance_per_class=True), [1, 3, 7, 5])
    assert len(top_confident(conf, lab, 0)) == 0
    with pytest.raises(ValueError, match='too few'):
        top_confident(conf, np.array([0, 0, 0, 1, 1, 1, 1, 2]), 6, balance_per_class=True)
    with pytest.raises(ValueError, match='n=9'): top_confident(conf, lab, 9)
    with pytest.raises(ValueError, match='same length'): top_confident(conf, lab[:-1], 2)
    with pytest.raises(ValueError, match='non-finite'): top_confident(np.r_[conf[:-1], np.nan], lab, 2)


def test_save_load_round_trip(tmp_path, fitted):
    Z, y, probe, _ = fitted
    path = save_probe(tmp_path / 'a' / 'probe.pt', probe)
    assert os.listdir(tmp_path / 'a') == ['probe.pt']
    p2 = load_probe(path)
    assert isinstance(p2, Probe) and not p2.training
    np.testing.assert_array_equal(probe_confidence(p2, Z, y), probe_confidence(probe, Z, y))
    save_probe(path, p2)                                   # overwrite in place
    np.testing.assert_array_equal(probe_confidence(load_probe(path), Z, y), probe_confidence(probe, Z, y))
    torch.save({'x': 1}, tmp_path / 'other.pt')
    with pytest.raises(ValueError, match='not a saved'): load_probe(tmp_path / 'other.pt')


@pytest.fixture(scope='module')
def tiny():
    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(16, 32),
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       layers_per_block=1, norm_num_groups=8, num_class_embeds=10).eval()
    rng = np.random.default_rng(0)
    return unet, DDPMScheduler(num_train_timesteps=1000), rng.integers(0, 256, (60, 1, 8, 8), np.uint8), \
        np.repeat(np.arange(3), 20)


def test_choose_timestep_is_argmin_of_real_ole(tiny):
    unet, sched, imgs, labels = tiny
    grid = (50, 300, 900)
    t_star, scores = choose_timestep(unet, sched, imgs, labels, grid=grid, pooling='mean', progress=False)
    assert sorted(scores) == list(grid) and t_star == min(scores, key=scores.get)
    H = extract_latents(unet, sched, imgs, labels, t=300, pooling='mean', progress=False)
    # choose_timestep extracts the same batches, so H is the same float32 array; ole_score is float64 (~1e-15)
    assert scores[300] == pytest.approx(ole_score(H, labels, divide_by_n=True))
    assert T_GRID == (50, 100, 200, 300, 400, 500, 600, 700, 800, 900)


def test_choose_timestep_options_and_errors(tiny):
    unet, sched, imgs, labels = tiny
    t1, s1 = choose_timestep(unet, sched, imgs, labels, grid=(100,), cond_labels=np.zeros_like(labels),
                             max_samples=30, pooling='max', progress=False)
    assert t1 == 100 and 0 <= s1[100] < 1
    with pytest.raises(ValueError, match='outside'): choose_timestep(unet, sched, imgs, labels, grid=(50, 1000))
    with pytest.raises(ValueError, match='cond_labels'):
        choose_timestep(unet, sched, imgs, labels, cond_labels=labels[:-1])
    with pytest.raises(ValueError, match='2 classes'): choose_timestep(unet, sched, imgs, np.zeros_like(labels))
