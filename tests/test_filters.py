"""Filters: the interface contract, random selection, and LSF through the loop."""
import json
import numpy as np
import pandas as pd
import pytest

from scollapse.filters import (Pool, FilterContext, select, get_filter, available_filters, random_filter,
                               lsf_options, lsf_confidence)
from scollapse.loop import LoopConfig, run_loop, gen_dir


def pool(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return Pool(rng.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8), np.arange(n) % 10,
                np.repeat(np.arange(-1, 4), n // 5))


def test_random_filter_uniform_and_seeded():
    from scipy import stats
    N, n, S, alpha = 100, 20, 10_000, 1e-6
    p = pool(N)
    picks = np.concatenate([select('random', p, n, FilterContext(seed=s)) for s in range(S)])
    counts = np.bincount(picks, minlength=N)
    # A uniform draw of n of N includes each item with probability q = n/N, independently across seeds: each count is
    # Binomial(S, q) (mean 2000, sd 40). The bounds are what a correct filter passes with probability >= 1 - alpha
    # for any seeds (union bound over the N items): [1774, 2232], i.e. within 12% of the mean (was 30-95 of 60).
    q = n / N
    lo, hi = stats.binom.ppf(alpha / (2 * N), S, q), stats.binom.isf(alpha / (2 * N), S, q)
    assert lo <= counts.min() and counts.max() <= hi, (counts.min(), counts.max(), lo, hi)
    # ... and jointly: the counts' chi-square (covariance S q (1-q) N/(N-1) (I - 11'/N)) is ~ chi2(N-1) under
    # uniformity; it also catches a milder bias shared by many items (e.g. real over synthetic sources)
    chi2 = ((counts - S * q) ** 2).sum() * (N - 1) / (N * S * q * (1 - q))
    assert chi2 < stats.chi2.isf(alpha, N - 1), chi2
    assert np.array_equal(select('random', p, 20, FilterContext(seed=1)), select('random', p, 20, FilterContext(seed=1)))


def test_interface_errors():
    p = pool()
    with pytest.raises(ValueError, match='available filters'):
        get_filter('nope')
    with pytest.raises(ValueError, match='pool of 50'):
        select('random', p, 51, FilterContext())
    with pytest.raises(ValueError, match='differ in length'):
        Pool(p.images, p.labels[:3], p.source)
    assert {'random', 'lsf'} <= set(available_filters())
    with pytest.raises(ValueError, match='unknown LSF'):
        lsf_options({'temperature': 2})
    with pytest.raises(ValueError, match='condition'):
        lsf_options({'condition': 'oracle'})


from conftest import TINY


@pytest.mark.parametrize('paradigm', ['accumulate_subsample', 'replace'])
def test_lsf_in_the_loop(tmp_path, cache_dir, paradigm):
    cfg = LoopConfig(**TINY, paradigm=paradigm, filter='lsf', out_dir=str(tmp_path / 'run'), cache_dir=str(cache_dir),
                     filter_options={'t': 200})
    df = run_loop(cfg)
    assert df.n_train.tolist() == [40, 40, 40]
    assert (df.lsf_t_star.dropna() == 200).all()
    assert int(df.lsf_probe_params.dropna().iloc[0]) > 0
    cache = tmp_path / 'run' / 'filter_cache'
    assert len(list(cache.glob('lsf_probe_*.pt'))) == 1            # fitted once, reused by generation 2
    z = np.load(cache / 'lsf_conf_gen02.npz')
    sel = json.loads((gen_dir(tmp_path / 'run', 2) / 'row.json').read_text())['lsf_conf_selected']
    # the selected set is the most confident part of the pool
    assert sel == pytest.approx(np.sort(z['conf'])[-40:].mean(), rel=1e-6)   # float64 means of the same 40 values
    if paradigm == 'accumulate_subsample':
        assert set(np.unique(z['source'])) == {-1, 0, 1}


def test_lsf_prefers_real_images_over_noise(tmp_path, cache_dir):
    """With a (briefly) trained gen-0 model, pure-noise 'samples' get lower confidence than real digits."""
    from scollapse.loop import prepare
    cfg = LoopConfig(**{**TINY, 'model_overrides': {'epochs_gen0': 30, 'sampling_steps': 2}, 'n_train': 200,
                        'n_ref': 100}, paradigm='accumulate_subsample', filter='lsf', out_dir=str(tmp_path / 'run'),
                     cache_dir=str(cache_dir))
    cfg, data, out, _ = prepare(cfg)
    from scollapse.loop import filter_context
    ctx = filter_context(cfg, data, out, 1)
    rng = np.random.default_rng(0)
    real_x, real_y = data.splits.ref_x[:100], data.splits.ref_y[:100]
    noise = rng.integers(0, 256, real_x.shape, dtype=np.uint8)
    p = Pool(np.concatenate([real_x, noise]), np.concatenate([real_y, real_y]),
             np.concatenate([np.full(100, -1), np.full(100, 0)]))
    conf = lsf_confidence(p, ctx, {**ctx.options, 't': 100})   # the protocol's condition ('zero' under common)
    assert conf[:100].mean() > conf[100:].mean() + 0.1
    keep = select('lsf', p, 100, ctx)
    assert (keep < 100).mean() > 0.8                                # mostly the real digits are kept


@pytest.mark.parametrize('name', ['greedy', 'threshold_decay'])
def test_entropy_filters_pick_higher_entropy_than_random(name):
    from scollapse.entropy import kl_entropy, pixel_features
    from scollapse.data import load_dataset
    x, y, _ = load_dataset('digits')
    rng = np.random.default_rng(0)
    # a redundant pool: 100 distinct digits, each repeated with tiny pixel jitter 5 times
    base = x[rng.choice(len(x), 100, replace=False)]
    jit = np.clip(np.repeat(base, 5, 0).astype(int) + rng.integers(-3, 4, (500, 1, 8, 8)), 0, 255).astype(np.uint8)
    p = Pool(jit, np.zeros(500, np.int64), np.zeros(500, np.int64))
    ctx = FilterContext(seed=0, real_images=x[:300], real_labels=y[:300], options={'features': 'pixel'})
    X = pixel_features(jit)
    h_sel = kl_entropy(X[select(name, p, 100, ctx)], on_duplicates='drop')
    h_rand = np.mean([kl_entropy(X[select('random', p, 100, FilterContext(seed=s))], on_duplicates='drop')
                      for s in range(5)])
    assert h_sel > h_rand + 20      # nats, d=64: spread-out selection avoids the near-copies
    if name == 'threshold_decay':
        assert ctx.log['tdf_tau0'] > 0


def test_entropy_filter_options_are_checked():
    from scollapse.filters import entropy_options
    with pytest.raises(ValueError, match='features'):
        entropy_options({'features': 'dinov2'})
    with pytest.raises(ValueError, match='decay'):
        entropy_options({'decay': 1.5})
    with pytest.raises(ValueError, match='tau'):
        entropy_options({'tau': -1})


def test_greedy_in_the_loop_records_entropy(tmp_path, cache_dir):
    cfg = LoopConfig(**TINY, paradigm='accumulate_subsample', filter='greedy', out_dir=str(tmp_path / 'run'),
                     cache_dir=str(cache_dir))
    df = run_loop(cfg)
    assert df.n_train.tolist() == [40, 40, 40]
    assert np.isfinite(df[['entropy_train', 'gs', 'memorization']].to_numpy()).all()
