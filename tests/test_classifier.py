"""Tests for scollapse.classifier: accuracy on real digits, determinism, save/load, caching and input checks."""
import os, time
import numpy as np
import scollapse.classifier
import pytest
import torch
from scollapse.classifier import (SmallClassifier, train_classifier, save_classifier, load_classifier, get_classifier,
                                  class_accuracy, predict, predict_logits, classifier_features, ClassifierFileError,
                                  random_shift)
from scollapse.data import load_dataset


@pytest.fixture(scope='session')
def digits():
    x, y = load_dataset('digits')[:2]
    return x, y


@pytest.fixture(scope='session')
def trained(digits):
    x, y = digits
    t = time.time()
    model, info = train_classifier(x, y, 10, seed=0, progress=False)
    return model, info, time.time() - t


def test_heldout_accuracy_and_time(digits, trained):
    x, y = digits
    model, info, seconds = trained
    assert info['val_acc'] >= 0.9, info['val_acc']
    print(f'classifier training: {seconds:.1f} s')   # a figure, not an assertion: speed goals live in benchmarks
    assert info['n_val'] == round(0.2 * len(x)) and info['n_train'] + info['n_val'] == len(x)
    val = info['val_idx']
    assert len(np.intersect1d(val, np.setdiff1d(np.arange(len(x)), val))) == 0
    assert class_accuracy(model, x[val], y[val]) == pytest.approx(info['val_acc'])   # same batches: same predictions
    # a classifier is much better than chance and shuffled labels are not recognised
    assert class_accuracy(model, x[val], (y[val] + 1) % 10) < 0.1


def test_shapes_and_any_size():
    m = SmallClassifier(10, in_channels=1, feat_dim=64).eval()
    x = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    assert m(x).shape == (5, 10) and m.features(x).shape == (5, 64)
    m3 = SmallClassifier(4, in_channels=3).eval()
    for s in (8, 13, 32, 64):
        assert m3(torch.zeros(2, 3, s, s, dtype=torch.uint8)).shape == (2, 4)
    # uint8 inputs are scaled x/127.5-1; a float input is taken as already scaled (the same float32 input, the same
    # batch: the same arithmetic, so only the default 1e-5 relative slack is used, and only as a margin)
    assert torch.allclose(m(x), m(x.float() / 127.5 - 1))
    with pytest.raises(ValueError, match='H, W >= 8'):
        m(torch.zeros(2, 1, 7, 7, dtype=torch.uint8))
    with pytest.raises(ValueError, match='in_channels'):
        SmallClassifier(10, in_channels=2)


def test_features_are_penultimate(digits, trained):
    x, _ = digits
    model, _, _ = trained
    f = classifier_features(model, x[:20])
    assert f.shape == (20, 128) and f.dtype == np.float32
    logits = model.head(torch.from_numpy(f)).detach().numpy()
    # float32 head on the same features: rounding ~1e-6 relative, near-zero logits carry 1e-5 of the largest
    np.testing.assert_allclose(logits, predict_logits(model, x[:20]), rtol=1e-4, atol=1e-5 * float(np.abs(logits).max()))


def test_seeded_and_global_rng_untouched(digits):
    x, y = digits
    state = torch.get_rng_state()
    m1, i1 = train_classifier(x[:400], y[:400], 10, epochs=2, seed=3, progress=False)
    assert torch.equal(state, torch.get_rng_state())
    m2, i2 = train_classifier(x[:400], y[:400], 10, epochs=2, seed=3, progress=False)
    np.testing.assert_array_equal(predict_logits(m1, x[:30]), predict_logits(m2, x[:30]))
    m3, _ = train_classifier(x[:400], y[:400], 10, epochs=2, seed=4, progress=False)
    assert not np.array_equal(predict_logits(m1, x[:30]), predict_logits(m3, x[:30]))


def test_random_shift_moves_by_at_most_one_pixel():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(36.).reshape(1, 1, 6, 6).repeat(200, 1, 1, 1)
    s = random_shift(x, g)
    d = (s - x)[:, 0, 1:5, 1:5]                       # interior: value = 6*row + col
    assert set(torch.unique(d).tolist()) == {6. * a + b for a in (-1, 0, 1) for b in (-1, 0, 1)}
    assert (d == d[:, :1, :1]).all()                  # one offset per image


def test_save_load_roundtrip(tmp_path, digits, trained):
    x, _ = digits
    model, info, _ = trained
    p = save_classifier(tmp_path / 'a' / 'clf.pt', model, info)
    assert os.listdir(p.parent) == ['clf.pt']
    m2 = load_classifier(p)
    assert m2.config == model.config and not m2.training
    np.testing.assert_array_equal(predict_logits(m2, x[:100]), predict_logits(model, x[:100]))
    np.testing.assert_array_equal(classifier_features(m2, x[:100]), classifier_features(model, x[:100]))
    assert m2.info['val_acc'] == pytest.approx(info['val_acc'])
    assert list(m2.info['val_idx']) == list(info['val_idx'])


def test_corrupted_and_missing_files(tmp_path, trained):
    model, _, _ = trained
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_classifier(tmp_path / 'missing.pt')
    bad = tmp_path / 'bad.pt'
    bad.write_bytes(b'\x00garbage' * 10)
    with pytest.raises(ClassifierFileError, match='corrupted'):
        load_classifier(bad)
    p = save_classifier(tmp_path / 'ok.pt', model)
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])       # truncated file
    with pytest.raises(ValueError, match='corrupted'):
        load_classifier(p)
    torch.save({'weights': torch.zeros(3)}, tmp_path / 'other.pt')  # a torch file, but not ours
    with pytest.raises(ClassifierFileError, match='not a scollapse classifier'):
        load_classifier(tmp_path / 'other.pt')


def test_get_classifier_trains_once(tmp_path, digits, monkeypatch):
    x, y = digits
    p = tmp_path / 'cache' / 'digits.pt'
    m1 = get_classifier(p, x, y, 10, progress=False, epochs=1)
    mtime = p.stat().st_mtime_ns
    def no_training(*args, **kwargs):
        raise AssertionError('get_classifier retrained a cached classifier')
    monkeypatch.setattr(scollapse.classifier, 'train_classifier', no_training)
    m2 = get_classifier(p, x, y, 10, progress=False, epochs=1)
    assert p.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(predict(m1, x[:50]), predict(m2, x[:50]))
    with pytest.raises(ValueError, match='delete it'):
        get_classifier(p, x, y % 5, 5)
    with pytest.warns(UserWarning, match='different images'):
        get_classifier(p, x[:100], y[:100], 10)


@pytest.mark.parametrize('kw, msg', [
    (dict(images=np.zeros((10, 1, 8, 8), np.float32)), 'uint8'),
    (dict(images=np.zeros((10, 8, 8), np.uint8)), '4-D'),
    (dict(images=np.zeros((10, 2, 8, 8), np.uint8)), 'C=1 or C=3'),
    (dict(images=np.zeros((10, 1, 4, 4), np.uint8)), 'at least 8x8'),
    (dict(labels=np.arange(9)), 'labels must have shape'),
    (dict(labels=np.full(10, 10)), r'\[0, 10\)'),
    (dict(n_classes=1), 'n_classes'),
    (dict(epochs=0), 'epochs'),
    (dict(lr=0.0), 'lr'),
    (dict(val_frac=1.0), 'val_frac'),
    (dict(num_threads=0), 'num_threads'),
])
def test_bad_train_inputs(kw, msg):
    args = dict(images=np.zeros((10, 1, 8, 8), np.uint8), labels=np.arange(10) % 10, n_classes=10)
    args.update(kw)
    with pytest.raises(ValueError, match=msg):
        train_classifier(progress=False, **args)
