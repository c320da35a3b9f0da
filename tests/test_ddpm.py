"""DDPM: training lowers the loss, samples have the requested labels/shape, checkpoints round-trip or fail clearly."""
import numpy as np
import pytest
import torch

from scollapse.data import load_dataset
from scollapse.ddpm import (model_preset, make_unet, make_scheduler, train_ddpm, sample_ddpm, balanced_labels,
                            save_checkpoint, load_checkpoint, CheckpointError, to_model, to_uint8)


@pytest.fixture(scope='module')
def digits():
    x, y, spec = load_dataset('digits')
    return x, y


def test_loss_falls_and_short_finetune_moves_weights(digits):
    x, y = digits
    cfg = model_preset((1, 8, 8), 'smoke')
    unet, sch = make_unet(cfg, 10, seed=0), make_scheduler(cfg)
    losses = train_ddpm(unet, sch, x[:256], y[:256], epochs=6, lr=2e-3, batch_size=32, seed=0, progress=False)
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8])
    before = [p.detach().clone() for p in unet.parameters()]
    train_ddpm(unet, sch, x[:8], y[:8], epochs=1, lr=1e-3, batch_size=32, seed=0, progress=False)  # one step
    assert any(not torch.equal(a, b) for a, b in zip(before, unet.parameters()))


def test_training_is_deterministic_per_seed(digits):
    x, y = digits
    cfg = model_preset((1, 8, 8), 'smoke')
    ws = []
    for _ in range(2):
        unet = make_unet(cfg, 10, seed=3)
        train_ddpm(unet, make_scheduler(cfg), x[:64], y[:64], epochs=1, lr=1e-3, batch_size=32, seed=7, progress=False)
        ws.append(torch.cat([p.flatten() for p in unet.parameters()]))
    assert torch.equal(*ws)


@pytest.mark.parametrize('sampler', ['ddim', 'ddpm'])
def test_samples_shape_labels_and_seed(sampler):
    from dataclasses import replace
    cfg = replace(model_preset((1, 8, 8), 'smoke'), sampler=sampler, sampling_steps=3, sample_batch_size=7)
    unet = make_unet(cfg, 10)
    labels = balanced_labels(20, 10)
    a = sample_ddpm(unet, cfg, labels, seed=1, progress=False)
    assert a.shape == (20, 1, 8, 8) and a.dtype == np.uint8
    assert np.array_equal(a, sample_ddpm(unet, cfg, labels, seed=1, progress=False))
    assert not np.array_equal(a, sample_ddpm(unet, cfg, labels, seed=2, progress=False))
    assert np.array_equal(np.bincount(labels), [2] * 10)
    with pytest.raises(ValueError, match='labels must be in'):
        sample_ddpm(unet, cfg, np.array([10]), progress=False)


def test_class_conditioning_is_used():
    cfg = model_preset((1, 8, 8), 'smoke')
    unet = make_unet(cfg, 10)
    with torch.no_grad():
        unet.class_embedding.weight.normal_(0, 3)
        x, t = torch.randn(2, 1, 8, 8), torch.tensor([500, 500])
        a = unet(x, t, class_labels=torch.tensor([0, 0])).sample
        b = unet(x, t, class_labels=torch.tensor([0, 1])).sample
    # row 0 is the same input either way; the other row's label changes nothing in it but, at most, float32 rounding
    # (1e-4 relative + 1e-5 of max|a|); a different label moves row 1 by far more than that
    scale = float(a.abs().max())
    torch.testing.assert_close(a[0], b[0], rtol=1e-4, atol=1e-5 * scale)
    assert float((a[1] - b[1]).abs().max()) > 1e-2 * scale


def test_checkpoint_round_trip_and_corruption(tmp_path):
    cfg = model_preset((1, 8, 8), 'smoke')
    unet = make_unet(cfg, 10, seed=5)
    p = tmp_path / 'm.pt'
    save_checkpoint(p, unet, cfg, {'generation': 3})
    u2, cfg2, meta = load_checkpoint(p)
    assert cfg2 == cfg and meta == {'generation': 3}
    assert all(torch.equal(a, b) for a, b in zip(unet.state_dict().values(), u2.state_dict().values()))
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(CheckpointError, match='corrupted'):
        load_checkpoint(p)
    with pytest.raises(CheckpointError, match='does not exist'):
        load_checkpoint(tmp_path / 'missing.pt')


def test_image_scale_round_trip():
    x = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    assert np.array_equal(to_uint8(to_model(x)), x)
    assert float(to_model(x).min()) == -1.0 and float(to_model(x).max()) == 1.0
