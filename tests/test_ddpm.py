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


# --- issue 13: null class, label dropout, classifier-free guidance, EMA, unconditional models -------------------
from dataclasses import replace as _replace
from diffusers.training_utils import EMAModel
from scollapse.ddpm import null_class_of, n_classes_of, guided_eps, fit_kwargs, check_model_config


def test_null_class_is_one_extra_embedding():
    base = model_preset((1, 8, 8), 'smoke')
    plain, cfg_null = make_unet(base, 10), make_unet(_replace(base, label_dropout=0.1), 10)
    assert plain.config.num_class_embeds == 10 and null_class_of(plain) is None
    assert cfg_null.config.num_class_embeds == 11 and null_class_of(cfg_null) == 10 and n_classes_of(cfg_null) == 10
    unc = make_unet(_replace(base, conditional=False), 10)
    assert unc.config.num_class_embeds is None and unc.class_embedding is None and n_classes_of(unc) == 10


def test_label_dropout_feeds_the_null_class(digits):
    x, y = digits
    cfg = _replace(model_preset((1, 8, 8), 'smoke'), label_dropout=0.3)
    unet, seen = make_unet(cfg, 10), []
    hook = unet.class_embedding.register_forward_hook(lambda m, inp, out: seen.append(inp[0].clone()))
    train_ddpm(unet, make_scheduler(cfg), x[:320], y[:320], epochs=1, lr=1e-3, batch_size=64, seed=0,
               progress=False, label_dropout=0.3)
    hook.remove()
    labels = torch.cat(seen)
    share = (labels == 10).float().mean().item()
    assert 0.2 < share < 0.4, share                     # 320 draws of p=.3: sd .026, so ±.1 is ~4 sd
    assert set(labels[labels != 10].tolist()) <= set(range(10))
    with pytest.raises(ValueError, match='needs a UNet with a null class'):
        train_ddpm(make_unet(model_preset((1, 8, 8), 'smoke'), 10), make_scheduler(cfg), x[:8], y[:8], epochs=1,
                   lr=1e-3, progress=False, label_dropout=0.3)


def test_ema_weights_are_what_training_leaves(digits):
    """The weights after training with ema_decay equal an EMAModel stepped alongside a plain copy of the run."""
    x, y = digits
    cfg = model_preset((1, 8, 8), 'smoke')
    a, b = make_unet(cfg, 10, seed=1), make_unet(cfg, 10, seed=1)
    train_ddpm(a, make_scheduler(cfg), x[:128], y[:128], epochs=2, lr=1e-3, batch_size=32, seed=0, progress=False,
               ema_decay=0.9)
    # replay: the same run without EMA, stepping an EMAModel after each optimiser step via a patched optimiser
    ema = EMAModel(b.parameters(), decay=0.9)
    orig_step = torch.optim.AdamW.step
    def step(self, *args, **kw):
        out = orig_step(self, *args, **kw)
        ema.step(b.parameters())
        return out
    torch.optim.AdamW.step = step
    try: train_ddpm(b, make_scheduler(cfg), x[:128], y[:128], epochs=2, lr=1e-3, batch_size=32, seed=0, progress=False)
    finally: torch.optim.AdamW.step = orig_step
    raw = [p.detach().clone() for p in b.parameters()]
    ema.copy_to(b.parameters())
    assert all(torch.allclose(p, q, rtol=0, atol=1e-6) for p, q in zip(a.parameters(), b.parameters()))
    assert any(not torch.allclose(p, q) for p, q in zip(a.parameters(), raw))   # EMA is not the raw weights


def test_guidance_formula_and_scale_one_is_plain():
    class Net(torch.nn.Module):   # eps = class label broadcast: eps_y = y, eps_null = null
        config = type('C', (), {'num_class_embeds': 11})()
        def forward(self, x, t, class_labels=None):
            return type('O', (), {'sample': class_labels.float()[:, None, None, None].expand_as(x)})()
    x, y = torch.zeros(3, 1, 2, 2), torch.tensor([1, 2, 3])
    assert torch.equal(guided_eps(Net(), x, torch.tensor(5), y, 1.0, 10)[:, 0, 0, 0], y.float())
    s = 3.0   # eps_null + s (eps_y - eps_null) = 10 + 3 (y - 10)
    assert torch.allclose(guided_eps(Net(), x, torch.tensor(5), y, s, 10)[:, 0, 0, 0], 10 + s * (y.float() - 10))


def test_unconditional_and_guided_sampling_and_checkpoints(digits, tmp_path):
    x, y = digits
    base = model_preset((1, 8, 8), 'smoke')
    for cfg in (_replace(base, conditional=False), _replace(base, label_dropout=0.2, guidance_scale=2.0, ema_decay=0.99)):
        unet = make_unet(cfg, 10, seed=0)
        train_ddpm(unet, make_scheduler(cfg), x[:64], y[:64], seed=0, progress=False, **fit_kwargs(cfg, True))
        s = sample_ddpm(unet, cfg, np.zeros(12, np.int64), seed=4, progress=False)
        assert s.shape == (12, 1, 8, 8) and s.dtype == np.uint8
        save_checkpoint(tmp_path / 'm.pt', unet, cfg)
        back, cfg2, _ = load_checkpoint(tmp_path / 'm.pt')
        assert cfg2 == cfg and back.config.num_class_embeds == unet.config.num_class_embeds
        assert null_class_of(back) == null_class_of(unet)
        assert np.array_equal(sample_ddpm(back, cfg, np.zeros(12, np.int64), seed=4, progress=False), s)
    with pytest.raises(ValueError, match='needs a UNet with a null class'):
        sample_ddpm(make_unet(base, 10), _replace(base, guidance_scale=2.0), [0], progress=False)


def test_checkpoint_written_before_issue_13_still_loads(tmp_path):
    """A checkpoint whose config lacks the new fields and whose n_classes counts the embeddings loads unchanged."""
    from dataclasses import asdict
    cfg = model_preset((1, 8, 8), 'smoke')
    unet = make_unet(cfg, 10, seed=0)
    old = {k: v for k, v in asdict(cfg).items() if k not in ('conditional', 'label_dropout', 'guidance_scale', 'ema_decay')}
    torch.save({'format': 'scollapse-ddpm-1', 'config': old, 'n_classes': 10,
                'state_dict': {k: v for k, v in unet.state_dict().items()}, 'meta': {}}, tmp_path / 'old.pt')
    back, cfg2, _ = load_checkpoint(tmp_path / 'old.pt')
    assert cfg2 == cfg and back.config.num_class_embeds == 10 and null_class_of(back) is None
