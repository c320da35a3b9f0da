"""Tests for scollapse.latents (bottleneck hook + latent extraction)."""
import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler, UNet2DModel
from threadpoolctl import threadpool_limits

from scollapse.latents import POOLINGS, bottleneck, extract_latents


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    "Tiny models: one thread avoids spin-wait stalls on a shared 2-core machine."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    with threadpool_limits(1): yield
    torch.set_num_threads(n)


@pytest.fixture(scope='module')
def unet():
    torch.manual_seed(0)
    return UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(16, 32),
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       layers_per_block=1, norm_num_groups=8, num_class_embeds=10).eval()


@pytest.fixture(scope='module')
def sched():
    return DDPMScheduler(num_train_timesteps=1000)


@pytest.fixture(scope='module')
def data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 1, 8, 8), dtype=np.uint8), rng.integers(0, 10, 40)


def _n_hooks(unet): return len(unet.mid_block._forward_hooks)


def assert_close_f32(a, b):
    """Latents computed by different float32 conv kernels (other batch sizes, other CPUs: the reduction order of each
    conv sum changes) differ by rounding: ~1e-6 relative per layer, and near-zero entries carry the absolute error of
    the largest terms, so the bound is 1e-4 relative plus 1e-5 of max|a| (measured: <= 7e-7 max|a|, AVX-512 and SSE4.1).
    A misaligned noise draw, label or timestep moves latents by O(max|a|)."""
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(np.abs(a).max()))


def test_bottleneck_captures_and_removes_hook(unet):
    with torch.inference_mode(), bottleneck(unet) as feats:
        unet(torch.randn(2, 1, 8, 8), torch.tensor([5, 5]), class_labels=torch.tensor([1, 2]))
        assert _n_hooks(unet) == 1
    assert len(feats) == 1 and feats[0].shape == (2, 32, 4, 4)
    assert _n_hooks(unet) == 0


def test_bottleneck_removes_hook_on_exception(unet):
    with pytest.raises(RuntimeError, match='boom'):
        with bottleneck(unet): raise RuntimeError('boom')
    assert _n_hooks(unet) == 0


def test_bottleneck_requires_mid_block():
    class NoMid(torch.nn.Module):
        mid_block = None
    with pytest.raises(ValueError, match='mid_block'):
        with bottleneck(NoMid()): pass


def test_extract_leaves_no_hooks_and_restores_mode(unet, sched, data):
    unet.train()
    extract_latents(unet, sched, *data, t=10, progress=False)
    assert unet.training and _n_hooks(unet) == 0
    unet.eval()
    extract_latents(unet, sched, *data, t=10, progress=False)
    assert not unet.training and _n_hooks(unet) == 0


@pytest.mark.parametrize('pooling,dim', [('flatten', 32 * 4 * 4), ('mean', 32), ('max', 32)])
def test_shape_per_pooling(unet, sched, data, pooling, dim):
    Z = extract_latents(unet, sched, *data, t=100, pooling=pooling, progress=False)
    assert Z.shape == (40, dim) and Z.dtype == np.float32 and np.isfinite(Z).all()


def test_poolings_agree_with_flatten(unet, sched, data):
    F = extract_latents(unet, sched, *data, t=100, pooling='flatten', progress=False).reshape(40, 32, 16)
    # same forward passes; torch and numpy sum the 16 values in different orders (<= 16 u max|F| ~ 1e-6 max|F|)
    assert_close_f32(extract_latents(unet, sched, *data, t=100, pooling='mean', progress=False), F.mean(2))
    assert_close_f32(extract_latents(unet, sched, *data, t=100, pooling='max', progress=False), F.max(2))


def test_deterministic_for_seed(unet, sched, data):
    a = extract_latents(unet, sched, *data, t=400, seed=3, progress=False)
    b = extract_latents(unet, sched, *data, t=400, seed=3, progress=False)
    c = extract_latents(unet, sched, *data, t=400, seed=4, progress=False)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_batch_size_invariance(unet, sched, data):
    a = extract_latents(unet, sched, *data, t=[50, 500], seed=1, batch_size=40, progress=False)
    b = extract_latents(unet, sched, *data, t=[50, 500], seed=1, batch_size=3, progress=False)
    for t in (50, 500): assert_close_f32(a[t], b[t])       # batches of 40 vs 3: different conv kernels


def test_list_of_t_gives_dict_matching_single_calls(unet, sched, data):
    d = extract_latents(unet, sched, *data, t=[0, 999, 0], seed=2, progress=False)
    assert list(d) == [0, 999]
    assert_close_f32(d[999], extract_latents(unet, sched, *data, t=999, seed=2, progress=False))
    assert not np.allclose(d[0], d[999], atol=1e-3)


def test_class_label_is_used(unet, sched, data):
    imgs, labels = data
    a = extract_latents(unet, sched, imgs, labels, t=100, progress=False)
    b = extract_latents(unet, sched, imgs, (labels + 1) % 10, t=100, progress=False)
    assert not np.allclose(a, b)


class _Counter:
    def __init__(self, unet): self.n, self.h = 0, unet.register_forward_pre_hook(self)
    def __call__(self, *a): self.n += 1


@pytest.mark.parametrize('kwargs,match', [
    (dict(t=1000), r'outside \[0, 1000\)'),
    (dict(t=-1), r'outside \[0, 1000\)'),
    (dict(t=[10, 1000]), r'outside \[0, 1000\)'),
    (dict(t=[]), 'empty'),
    (dict(t=1.5), 'int'),
    (dict(t=10, pooling='avg'), "allowed: \\('flatten', 'mean', 'max'\\)"),
    (dict(t=10, batch_size=0), 'batch_size'),
])
def test_bad_args_rejected_before_compute(unet, sched, data, kwargs, match):
    cnt = _Counter(unet)
    try:
        with pytest.raises(ValueError, match=match): extract_latents(unet, sched, *data, progress=False, **kwargs)
        assert cnt.n == 0
    finally: cnt.h.remove()


def test_bad_images_and_labels(unet, sched, data):
    imgs, labels = data
    with pytest.raises(ValueError, match='labels length'): extract_latents(unet, sched, imgs, labels[:-1], t=5)
    with pytest.raises(ValueError, match='uint8'): extract_latents(unet, sched, imgs.astype(np.float32), labels, t=5)
    with pytest.raises(ValueError, match=r'\[0, 10\)'): extract_latents(unet, sched, imgs, labels + 10, t=5)
    assert POOLINGS == ('flatten', 'mean', 'max')
