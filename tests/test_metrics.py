"""Tests for scollapse.metrics: torch-fidelity registration, FID/precision/recall invariants, class accuracy, input checks."""
import math, warnings
import numpy as np
import pytest
import torch
import torch_fidelity
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
from scollapse.classifier import get_classifier, classifier_features
from scollapse.data import load_dataset
from scollapse.metrics import (compute_metrics, fid_floor, register_classifier_extractor, ClassifierFeatureExtractor,
                               UInt8Images, FEATURE_EXTRACTOR_NAME, INCEPTION_NAME)


@pytest.fixture(scope='session')
def setup(tmp_path_factory):
    """Digits classifier trained once (cached in a session tmp dir); its held-out split is the reference set."""
    x, y = load_dataset('digits')[:2]
    path = tmp_path_factory.mktemp('metrics') / 'digits-classifier.pt'
    clf = get_classifier(path, x, y, 10, seed=0, progress=False, epochs=10)   # 10 epochs: ~0.98 held-out, faster
    val = np.zeros(len(x), bool)
    val[clf.info['val_idx']] = True
    return dict(path=path, clf=clf, ref_x=x[val], ref_y=y[val], train_x=x[~val], train_y=y[~val])


def noisy(images, sigma, seed=0):
    z = np.random.default_rng(seed).normal(0, sigma, images.shape)
    return np.clip(np.round(images + z), 0, 255).astype(np.uint8)


def self_fid_bound(features) -> float:
    """Worst-case |FID| of a feature set with itself in float64. Dead ReLU features make the covariance S singular;
    an eigenvalue of S S near 0 is computed to ~d eps ||S||^2 absolute, so its square root is only known to
    sqrt(d eps) lambda_max, not eps: |FID| <= 2 d sqrt(d eps) lambda_max(S) (~4e-5 lambda_max at d = 128)."""
    S = np.cov(np.asarray(features, np.float64), rowvar=False)
    d = S.shape[0]
    return 2 * d * math.sqrt(d * np.finfo(np.float64).eps) * float(np.linalg.eigvalsh(S).max())


def assert_unit(m):
    for k in ('precision', 'recall', 'f_score'):
        assert 0.0 <= m[k] <= 1.0, (k, m[k])


def test_registration_idempotent_and_built_from_path(setup):
    register_classifier_extractor()
    register_classifier_extractor()
    assert FEATURE_EXTRACTORS_REGISTRY[FEATURE_EXTRACTOR_NAME] is ClassifierFeatureExtractor
    fe = ClassifierFeatureExtractor(FEATURE_EXTRACTOR_NAME, ['features', 'logits'],
                                    feature_extractor_weights_path=str(setup['path'])).eval()
    f, logits = fe(torch.from_numpy(setup['ref_x'][:7]))
    assert f.shape == (7, 128) and logits.shape == (7, 10)
    g = classifier_features(setup['clf'], setup['ref_x'][:7])
    # float32 conv rounding (~1e-6 relative; near-zero ReLU outputs carry the absolute error of the largest terms)
    np.testing.assert_allclose(f.numpy(), g, rtol=1e-4, atol=1e-5 * float(np.abs(g).max()))
    with pytest.raises(ValueError):
        fe(torch.zeros(2, 1, 8, 8))                      # float input: torch-fidelity always feeds uint8


def test_direct_torch_fidelity_call_matches(setup):
    """torch-fidelity constructs the extractor from the classifier file given as feature_extractor_weights_path."""
    g, r = setup['train_x'][:300], setup['ref_x']
    res = torch_fidelity.calculate_metrics(input1=UInt8Images(g), input2=UInt8Images(r), fid=True, cache=False,
                                           verbose=False, cuda=False, save_cpu_ram=True,
                                           feature_extractor=FEATURE_EXTRACTOR_NAME,
                                           feature_extractor_weights_path=str(setup['path']))
    ours = compute_metrics(g, r, setup['path'])
    # torch-fidelity's default batches (64) differ from ours (256): other float32 conv kernels, features ~1e-6
    # relative apart. FID moves ~0.07x the feature noise (measured: 7e-8 for 1e-6); dead ReLU features are exactly 0
    # under any kernel, and a feature rounding revives at ~1e-6 adds <= sqrt(1e-12 lambda_max) ~ 1e-5 absolute.
    # rel=1e-4 bounds both; a wrong layer, input scaling or extractor moves FID by O(1).
    assert res[torch_fidelity.KEY_METRIC_FID] == pytest.approx(ours['fid'], rel=1e-4)
    # FID computed by hand from the classifier's features agrees (same Fréchet formula)
    from scipy import linalg
    a, b = (classifier_features(setup['clf'], v).astype(np.float64) for v in (g, r))
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)   # singular: some ReLU features are dead on digits
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', linalg.LinAlgWarning)
        fid = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    # other batches (512) and sqrtm instead of torch-fidelity's eigvals on singular S1 S2 (each near-zero eigenvalue's
    # root known to ~sqrt(d eps) lambda_max ~ 1e-6): measured 4e-7 relative; a biased covariance (1/n) is off by 3e-3
    assert ours['fid'] == pytest.approx(fid, rel=1e-4)


def test_self_fid_zero_and_floor(setup):
    r = compute_metrics(setup['ref_x'], setup['ref_x'], setup['path'])
    floor = fid_floor(setup['train_x'], setup['ref_x'], setup['path'], n=len(setup['ref_x']))
    assert floor > 1.0
    assert abs(r['fid']) < self_fid_bound(classifier_features(setup['clf'], setup['ref_x']))   # ~4e-4 of the floor
    assert r['precision'] == 1.0 and r['recall'] == 1.0
    assert r['n_gen'] == r['n_ref'] == len(setup['ref_x']) and math.isnan(r['class_accuracy'])
    # the floor is seeded: same seed, same subsample, same value
    assert fid_floor(setup['train_x'], setup['ref_x'], setup['path'], n=len(setup['ref_x'])) == floor


def test_fid_grows_with_noise(setup):
    g, r = setup['train_x'][:len(setup['ref_x'])], setup['ref_x']
    ms = [compute_metrics(noisy(g, s), r, setup['path'], setup['train_y'][:len(g)]) for s in (0, 16, 32, 64, 128)]
    fids = [m['fid'] for m in ms]
    assert all(a < b for a, b in zip(fids, fids[1:])), fids
    assert fids[-1] > 5 * fids[0]
    assert ms[-1]['class_accuracy'] < ms[0]['class_accuracy']
    for m in ms:
        assert_unit(m)


def test_mode_collapse_kills_recall_not_precision(setup):
    r, n = setup['ref_x'], len(setup['ref_x'])
    tx, ty = setup['train_x'], setup['train_y']
    base = compute_metrics(tx[:n], r, setup['path'])
    copies = compute_metrics(np.repeat(tx[ty == 3][:4], n // 4, 0), r, setup['path'])   # 4 images of one class
    one_class = compute_metrics(tx[ty == 3], r, setup['path'])                         # all distinct 3s
    for m in (base, copies, one_class):
        assert_unit(m)
    assert base['recall'] > 0.6 and base['precision'] > 0.8
    assert copies['recall'] < 0.05 and copies['precision'] > 0.9
    assert one_class['recall'] < 0.2 and one_class['precision'] > 0.8
    assert copies['fid'] > 10 * base['fid'] and one_class['fid'] > 10 * base['fid']


def test_class_accuracy_of_real_heldout(setup):
    other = setup['train_x'][:500]
    m = compute_metrics(setup['ref_x'], other, setup['path'], gen_labels=setup['ref_y'])
    # val_acc was computed in batches of 512, compute_metrics uses 256: float32 logits ~1e-6 apart, so at most one
    # near-tied prediction (top-2 logit gap < ~1e-5) may flip: 1.5/n allows one flip, not two
    assert m['class_accuracy'] == pytest.approx(setup['clf'].info['val_acc'], abs=1.5 / len(setup['ref_y']))
    wrong = compute_metrics(setup['ref_x'], other, setup['path'], gen_labels=(setup['ref_y'] + 1) % 10)
    assert wrong['class_accuracy'] < 0.1
    assert wrong['fid'] == m['fid']                      # labels only affect class accuracy (same computation: exact)


def test_rgb_inputs(setup, tmp_path):
    """C=3 images work end to end with a classifier trained on RGB data."""
    x = np.repeat(setup['train_x'][:200], 3, 1)
    x[:, 1] = 255 - x[:, 1]
    y = setup['train_y'][:200]
    p = tmp_path / 'rgb.pt'
    get_classifier(p, x, y, 10, epochs=1, progress=False)
    m = compute_metrics(x[:100], x[100:], p, y[:100])
    assert m['fid'] > 0 and 0 <= m['class_accuracy'] <= 1
    assert_unit(m)


def test_grey_to_rgb_dataset():
    x = np.arange(2 * 64, dtype=np.uint8).reshape(2, 1, 8, 8)
    d = UInt8Images(x, rgb=True)
    assert len(d) == 2 and d[1].shape == (3, 8, 8) and d[1].dtype == torch.uint8
    assert torch.equal(d[1][2], torch.from_numpy(x[1, 0]))
    assert UInt8Images(x)[0].shape == (1, 8, 8)


def test_inception_needs_local_weights(setup, tmp_path):
    r = setup['ref_x']
    for wp in (None, tmp_path / 'missing.pth'):
        with pytest.raises(FileNotFoundError, match='cannot be downloaded here'):
            compute_metrics(r, r, None, feature_extractor=INCEPTION_NAME, weights_path=wp)


@pytest.mark.slow
def test_inception_path_with_local_weights(setup, tmp_path, monkeypatch):
    """With a (randomly initialised) local Inception weights file, grey digits go through Inception as 3 channels."""
    import torch_fidelity.feature_extractor_inceptionv3 as inc
    monkeypatch.setattr(inc, 'load_state_dict_from_url', lambda *a, **k: None)
    monkeypatch.setattr(inc.FeatureExtractorInceptionV3, 'load_state_dict', lambda self, sd: None)
    w = tmp_path / 'inception.pth'
    torch.save(inc.FeatureExtractorInceptionV3(INCEPTION_NAME, ['2048']).state_dict(), w)
    monkeypatch.undo()
    r = setup['ref_x'][:6]
    m = compute_metrics(r, r, None, feature_extractor=INCEPTION_NAME, weights_path=w, prc_neighborhood=1, batch_size=6)
    # random weights give features ~1e-7, so an absolute bound says nothing: bound |FID| by the features' own scale
    fe = inc.FeatureExtractorInceptionV3(INCEPTION_NAME, ['2048'], feature_extractor_weights_path=str(w)).eval()
    with torch.no_grad(): f = fe(torch.from_numpy(r).expand(-1, 3, -1, -1).contiguous())[0]
    assert abs(m['fid']) < self_fid_bound(f.double().numpy()) and m['precision'] == 1.0 and math.isnan(m['class_accuracy'])


def _bad(setup, **kw):
    r = setup['ref_x']
    args = dict(gen_images=r, ref_images=r, classifier_path=setup['path'])
    args.update(kw)
    return args


@pytest.mark.parametrize('kw, err, msg', [
    (lambda s: dict(gen_images=s['ref_x'].astype(np.float32)), ValueError, 'gen_images must have dtype uint8'),
    (lambda s: dict(ref_images=s['ref_x'][:, 0]), ValueError, 'ref_images must be 4-D'),
    (lambda s: dict(gen_images=list(s['ref_x'])), TypeError, 'numpy uint8 array'),
    (lambda s: dict(gen_images=s['ref_x'][:1]), ValueError, 'at least 2'),
    (lambda s: dict(gen_images=s['ref_x'][:3]), ValueError, 'prc_neighborhood=3'),
    (lambda s: dict(ref_images=np.repeat(s['ref_x'], 3, 1)), ValueError, r'same \(C, H, W\)'),
    (lambda s: dict(gen_images=np.repeat(s['ref_x'], 3, 1), ref_images=np.repeat(s['ref_x'], 3, 1)), ValueError, 'takes C=1'),
    (lambda s: dict(gen_labels=s['ref_y'][:10]), ValueError, 'gen_labels must have shape'),
    (lambda s: dict(gen_labels=s['ref_y'] + 10), ValueError, r'gen_labels must lie in \[0, 10\)'),
    (lambda s: dict(feature_extractor='vgg16'), ValueError, 'choose one of'),
    (lambda s: dict(prc_neighborhood=0), ValueError, 'prc_neighborhood'),
    (lambda s: dict(batch_size=0), ValueError, 'batch_size'),
    (lambda s: dict(device='tpu'), ValueError, 'device'),
    (lambda s: dict(weights_path='x.pth'), ValueError, 'weights_path is only for'),
    (lambda s: dict(classifier_path=None), ValueError, 'classifier_path is required'),
    (lambda s: dict(classifier_path=s['path'].parent / 'nope.pt'), FileNotFoundError, 'does not exist'),
])
def test_bad_inputs(setup, kw, err, msg):
    with pytest.raises(err, match=msg):
        compute_metrics(**_bad(setup, **kw(setup)))


def test_corrupted_classifier_file(setup, tmp_path):
    p = tmp_path / 'bad.pt'
    p.write_bytes(b'oops')
    with pytest.raises(ValueError, match='corrupted'):
        compute_metrics(setup['ref_x'], setup['ref_x'], p)


def test_fid_floor_bad_n(setup):
    with pytest.raises(ValueError, match='n='):
        fid_floor(setup['train_x'], setup['ref_x'], setup['path'], n=10 ** 6)
