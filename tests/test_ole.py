"""Tests for scollapse.ole (OLE score, SSC-OMP).

Tolerances: OLE is a difference of float64 nuclear norms (LAPACK SVD, backward stable: singular values off by
~1e-16 x the largest, whatever the CPU kernel or thread count). Scores here are O(1)-O(10) from norms O(10), so
1e-8..1e-12 (absolute or relative) bound that rounding with >= 1e3 margin; zero-valued cases are bounded relative
to the nuclear norms that cancel."""
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from scollapse.ole import nuclear_norm, ole_score, ssc_omp_labels


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    with threadpool_limits(1): yield


def subspaces(theta_deg, k=3, m=60, d=30, sigma=0.0, seed=0):
    "Two classes in k-D subspaces of R^d whose k principal angles all equal theta."
    rng, th = np.random.default_rng(seed), np.deg2rad(theta_deg)
    Q = np.linalg.qr(rng.normal(size=(d, 2 * k)))[0]
    U, V = Q[:, :k], np.cos(th) * Q[:, :k] + np.sin(th) * Q[:, k:]
    Z = np.vstack([rng.normal(size=(m, k)) @ U.T, rng.normal(size=(m, k)) @ V.T])
    return Z + sigma * rng.normal(size=Z.shape), np.repeat([0, 1], m)


def union(n_sub=3, dim=3, ambient=30, m=50, sigma=0.0, seed=0):
    rng = np.random.default_rng(seed)
    Z = np.vstack([rng.normal(size=(m, dim)) @ np.linalg.qr(rng.normal(size=(ambient, dim)))[0].T
                   for _ in range(n_sub)])
    return Z + sigma * rng.normal(size=Z.shape), np.repeat(np.arange(n_sub), m)


def test_nuclear_norm_known():
    assert nuclear_norm(np.diag([3.0, -4.0, 0.0])) == pytest.approx(7.0)
    assert nuclear_norm(np.zeros((0, 3))) == 0.0


def test_orthogonal_classes_give_zero():
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.normal(size=(40, 9)))[0]
    Z = np.vstack([rng.normal(size=(30, 3)) @ Q[:, 3 * c:3 * c + 3].T for c in range(3)])
    y = np.repeat([0, 1, 2], 30)
    scale = sum(nuclear_norm(Z[y == c] / np.linalg.norm(Z[y == c], axis=1, keepdims=True)) for c in range(3))
    assert abs(ole_score(Z, y)) < 1e-9 * scale
    assert abs(ole_score(Z, y, normalize=False)) < 1e-9 * nuclear_norm(Z)


@pytest.mark.parametrize('deg', [90, 60, 30, 10])
def test_closed_form_two_lines(deg):
    Z, y = subspaces(deg, k=1, m=40, d=10)
    c, m = np.cos(np.deg2rad(deg)), 40
    assert ole_score(Z, y) == pytest.approx(2 * np.sqrt(m) - np.sqrt(m) * (np.sqrt(1 + c) + np.sqrt(1 - c)), abs=1e-8)


@pytest.mark.parametrize('k,sigma', [(1, 0.0), (3, 0.0), (3, 0.05)])
def test_monotone_in_principal_angle(k, sigma):
    s = [ole_score(*subspaces(a, k=k, sigma=sigma)) for a in (90, 60, 30, 10)]
    assert all(np.diff(s) > 0), s
    if sigma == 0: assert s[0] < 1e-8


def test_scale_and_normalisation():
    Z, y = subspaces(30, sigma=0.1)
    assert ole_score(7.0 * Z, y) == pytest.approx(ole_score(Z, y), rel=1e-10)
    assert ole_score(7.0 * Z, y, normalize=False) == pytest.approx(7.0 * ole_score(Z, y, normalize=False), rel=1e-10)
    r = ole_score(Z, y, divide_by_n=True)
    assert r == pytest.approx(ole_score(Z, y) / len(Z)) and 0 <= r < 1


def test_nonnegative_and_label_permutation_invariant():
    rng = np.random.default_rng(1)
    Z, y = rng.normal(size=(90, 12)), rng.integers(0, 4, 90)
    assert ole_score(Z, y) > 0
    assert ole_score(Z, (y + 1) % 4 + 10) == pytest.approx(ole_score(Z, y), rel=1e-12)


def test_ole_delta():
    Z, y = subspaces(45, k=1, m=10, d=5)
    Zn = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    assert ole_score(Z, y, ole_delta=0.0) == pytest.approx(ole_score(Z, y))
    assert ole_score(Z, y, ole_delta=50.0) == pytest.approx(100.0 - nuclear_norm(Zn))


def test_ole_bad_input():
    Z, y = subspaces(45)
    with pytest.raises(ValueError, match='len'): ole_score(Z, y[:-1])
    with pytest.raises(ValueError, match='at least 2 classes'): ole_score(Z, np.zeros(len(Z)))
    Z2 = Z.copy(); Z2[3, 1] = np.inf
    with pytest.raises(ValueError, match='non-finite'): ole_score(Z2, y)
    with pytest.raises(ValueError, match='2-D'): ole_score(Z[:, 0], y)


def test_ssc_omp_recovers_planted_union():
    Z, y = union()
    pred = ssc_omp_labels(Z, n_clusters=3)
    assert pred.dtype == np.int64 and pred.shape == y.shape and len(np.unique(pred)) == 3
    assert adjusted_rand_score(y, pred) > 0.9


def test_ssc_omp_noisy_with_small_support():
    Z, y = union(sigma=1e-3, seed=1)
    assert adjusted_rand_score(y, ssc_omp_labels(Z, n_clusters=3, n_nonzero=3)) > 0.9


def test_ssc_omp_deterministic_and_bad_input():
    Z, _ = union(seed=2)
    np.testing.assert_array_equal(ssc_omp_labels(Z, 3, seed=5), ssc_omp_labels(Z, 3, seed=5))
    with pytest.raises(ValueError, match='n_clusters'): ssc_omp_labels(Z, 1)
    with pytest.raises(ValueError, match='n_nonzero'): ssc_omp_labels(Z, 3, n_nonzero=len(Z))
    with pytest.raises(ValueError, match='thr'): ssc_omp_labels(Z, 3, thr=-1)
