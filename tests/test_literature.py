"""The selection-bias literature's selectors (scollapse.literature): known values on tiny constructed pools, N unique
indices, determinism, option checks before compute, and their entry points."""
import configparser
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scollapse.literature as lit
from scollapse.filters import Pool, FilterContext, select, get_filter, check_filter_options
from scollapse.loop import LoopConfig, resolve_config, run_loop

ROOT = Path(__file__).resolve().parents[1]
NAMES = ('kmeans_centres', 'centre_matching', 'moment_matching', 'knn_density')
PIXEL = {'features': 'pixel'}


def images(values) -> np.ndarray:
    """uint8 images (n, 1, 2, 2) from per-image rows of 4 grey levels (or one level per image)."""
    v = np.asarray(values, float)
    v = np.repeat(v[:, None], 4, 1) if v.ndim == 1 else v
    return np.clip(np.rint(v), 0, 255).astype(np.uint8).reshape(len(v), 1, 2, 2)


def ctx(real, real_labels=None, seed=0, **options) -> FilterContext:
    labels = np.zeros(len(real), np.int64) if real_labels is None else real_labels
    return FilterContext(seed=seed, real_images=real, real_labels=labels, options={**PIXEL, **options})


def pool_of(imgs, labels=None, source=None) -> Pool:
    n = len(imgs)
    return Pool(imgs, np.zeros(n, np.int64) if labels is None else labels, np.zeros(n, np.int64) if source is None else source)


def test_kmeans_centres_takes_one_item_from_each_of_two_clusters():
    rng = np.random.default_rng(0)
    p = pool_of(images(np.r_[20 + rng.normal(0, 2, 15), 220 + rng.normal(0, 2, 5)]))
    for seed in range(3):
        idx = select('kmeans_centres', p, 2, ctx(p.images, seed=seed))
        assert (idx < 15).sum() == 1 and (idx >= 15).sum() == 1


def test_centre_matching_keeps_the_pool_items_nearest_the_real_clusters():
    real = images([48, 50, 52, 148, 150, 152])
    p = pool_of(images([0, 30, 49, 100, 151, 170, 255]))
    assert select('centre_matching', p, 2, ctx(real, centres=1.0)).tolist() == [2, 4]   # the items at 49 and 151
    assert select('centre_matching', p, 1, ctx(real)).tolist() == [3]      # one centre, the real mean: the item at 100
    assert select('centre_matching', p, 2, ctx(real)).tolist() == [2, 3]   # default 0.1: one centre (the mean), 2 nearest
    # when the pool holds the real set and N = its size with one centre per kept item, the real images are the
    # centres: they re-select themselves (why the default is centres=0.1)
    acu = Pool.concat([Pool(real, np.zeros(6, np.int64), np.full(6, -1)), p])
    assert select('centre_matching', acu, 6, ctx(real, centres=1.0)).tolist() == list(range(6))


def test_moment_matching_matches_the_real_moments_better_than_random():
    rng = np.random.default_rng(1)
    real = images(128 + 25 * rng.normal(size=(200, 4)))
    near = images(128 + 25 * rng.normal(size=(60, 4)))              # like the real set
    off = images(170 + 6 * rng.normal(size=(140, 4)))               # shifted and narrow: a collapsed model
    p = pool_of(np.concatenate([near, off]))
    X, R = p.images.reshape(len(p), -1).astype(float), real.reshape(200, -1).astype(float)
    gap = lambda idx: lit.moment_objective(lit.whiten(X[idx], R, 16)[0])
    c = ctx(real)
    idx = select('moment_matching', p, 50, c)
    random = [gap(np.random.default_rng(s).choice(len(p), 50, replace=False)) for s in range(20)]
    assert gap(idx) < min(random) / 3
    assert (idx < 60).mean() > 0.8                                  # mostly the real-like items
    assert c.log['moment_objective'] == pytest.approx(gap(idx))    # per_class with one class: the same J
    assert 0 < c.log['dispersion_ratio'] < 2


def test_moment_scores_is_the_objective_after_adding_each_candidate():
    rng = np.random.default_rng(2)
    Z = rng.normal(size=(30, 4))
    for chosen in ([], [3], [0, 5, 9, 11]):
        s, M = Z[chosen].sum(0), Z[chosen].T @ Z[chosen]
        got = lit.moment_scores(Z, (Z * Z).sum(1), s, M, len(chosen), 0.7)
        want = [lit.moment_objective(Z[chosen + [i]], 0.7) for i in range(30)]
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_knn_density_drops_planted_outliers():
    rng = np.random.default_rng(3)
    bulk = images(100 + 5 * rng.normal(size=(40, 4)))
    outliers = images([[0, 255, 0, 255], [255, 0, 255, 0], [0, 0, 255, 255], [255, 255, 0, 0]])
    p = pool_of(np.concatenate([bulk, outliers]))
    for k in (1, 5):
        idx = select('knn_density', p, 40, ctx(bulk, k=k))
        assert (idx < 40).all()
    assert lit.knn_radius(np.array([[0.], [1.], [3.], [7.]]), 2).tolist() == [3., 2., 3., 6.]
    assert lit.knn_radius(np.array([[5.]]), 5).tolist() == [0.]


def mixed_pool(seed=0, n=90, classes=3):
    rng = np.random.default_rng(seed)
    return Pool(rng.integers(0, 256, (n, 1, 4, 4)).astype(np.uint8), np.arange(n) % classes, np.repeat([-1, 0, 1], n // 3))


@pytest.mark.parametrize('name', NAMES)
def test_n_unique_class_balanced_and_deterministic(name):
    p = mixed_pool()
    real = p.take(np.flatnonzero(p.source == -1))
    runs = [select(name, p, 31, ctx(real.images, real.labels, seed=7)) for _ in range(2)]
    assert len(set(runs[0])) == 31 and np.array_equal(runs[0], runs[1])
    assert sorted(np.bincount(p.labels[runs[0]]).tolist()) == [10, 10, 11]     # N split evenly over the classes
    whole = select(name, p, 31, ctx(real.images, real.labels, seed=7, per_class=False))
    assert len(set(whole)) == 31


def test_unlabelled_pool_items_select_over_the_whole_pool():
    p = mixed_pool()
    p = Pool(p.images, np.where(p.source >= 0, -1, p.labels), p.source)    # an unconditional model's samples: label -1
    real = p.take(np.flatnonzero(p.source == -1))
    for name in NAMES:
        assert len(set(select(name, p, 20, ctx(real.images, real.labels)))) == 20


def no_encoder():
    raise AssertionError('the encoder was loaded before the options were checked')


@pytest.mark.parametrize('name,options,msg', [
    ('knn_density', {'kk': 3}, "did you mean 'k'"),
    ('kmeans_centres', {'k': 3}, "unknown filter_options key for filter='kmeans_centres' 'k'"),
    ('moment_matching', {'features': 'classifier'}, 'not a selection space'),
    ('centre_matching', {'features': 'pixels'}, "did you mean 'pixel'"),
    ('knn_density', {'k': 0}, 'k=0 must be an integer >= 1'),
    ('moment_matching', {'pca_dim': 2.5}, 'pca_dim=2.5 must be an integer'),
    ('moment_matching', {'batch': True}, 'batch=True must be an integer'),
    ('moment_matching', {'cov_weight': -1}, 'cov_weight=-1 must be >= 0'),
    ('centre_matching', {'centres': 0}, r'centres=0 must be in \(0, 1\]'),
    ('kmeans_centres', {'per_class': 'yes'}, 'True or False'),
    ('kmeans_centres', {'features': 'dinov2'}, 'dinov2_weights'),
])
def test_bad_options_are_refused_before_any_compute(name, options, msg):
    p = mixed_pool()
    with pytest.raises(ValueError, match=msg):
        get_filter(name)(p, 10, FilterContext(encoder=no_encoder, real_images=p.images, real_labels=p.labels,
                                              options={'features': 'encoder', **options}))


def test_unknown_option_keys_are_refused_when_the_loop_resolves():
    check_filter_options('moment_matching', {'pca_dim': 8, 'batch': 4})
    with pytest.raises(ValueError, match="did you mean 'centres'"):
        resolve_config(LoopConfig(paradigm='accumulate_subsample', filter='centre_matching', filter_options={'centers': 0.5}))


def test_installed_as_entry_points_and_registered_without_a_clash():
    cfg = configparser.ConfigParser(delimiters=['='])
    cfg.read(ROOT / 'settings.ini', encoding='utf-8')
    declared = dict(e.split('=') for e in cfg['DEFAULT']['filter_plugins'].split())
    assert declared == {**{n: f'scollapse.literature:{n}' for n in NAMES},
                        'real_only': 'scollapse.baselines:real_only'}   # and the real-data control (ACU-REAL)
    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group='scollapse.filters')}
    assert {n: eps.get(n) for n in declared} == declared, 'run `pip install -e .` to install the entry points'
    for n in NAMES:
        assert get_filter(n) is getattr(lit, n)                    # entry point and registration: one function
    out = subprocess.run([sys.executable, '-c', 'from scollapse.filters import filter_registry; print(sorted(filter_registry()))'],
                         capture_output=True, text=True, check=True, cwd='/')
    assert all(f"'{n}'" in out.stdout for n in NAMES)               # a fresh process finds them by name


def test_a_literature_selector_runs_in_the_loop(tmp_path, cache_dir):
    cfg = LoopConfig(dataset='digits', preset='smoke', paradigm='accumulate_subsample', filter='knn_density',
                     filter_options=PIXEL, n_train=40, n_ref=40, n_eval=20, generations=1, progress=False,
                     model_overrides={'epochs_gen0': 1, 'epochs_per_generation': 1, 'sampling_steps': 2},
                     out_dir=str(tmp_path / 'run'), cache_dir=str(cache_dir))
    run_loop(cfg)
    row = pd.read_csv(tmp_path / 'run' / 'metrics.csv').set_index('generation').loc[1]
    assert row.n_train == 40 and 0 < row.dispersion_ratio
    comp = pd.read_csv(tmp_path / 'run' / 'composition.csv')
    assert comp[comp.generation == 1]['count'].sum() == 40


@pytest.mark.parametrize('name,options,msg', [
    ('knn_density', {'k': 0}, 'k=0 must be an integer >= 1'),
    ('centre_matching', {'centres': 2.0}, r'centres=2.0 must be in \(0, 1\]'),
    ('kmeans_centres', {'features': 'classifier'}, 'the referee is not a player'),
])
def test_bad_option_values_are_refused_when_the_loop_resolves(tmp_path, name, options, msg):
    """A plug-in's declared value check runs in resolve_config: nothing is trained or written."""
    cfg = LoopConfig(filter=name, filter_options=options, out_dir=str(tmp_path / 'run'), cache_dir=str(tmp_path / 'cache'))
    with pytest.raises(ValueError, match=msg):
        run_loop(cfg)
    assert not (tmp_path / 'run').exists() and not (tmp_path / 'cache').exists()
