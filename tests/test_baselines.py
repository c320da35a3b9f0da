"""SIMS, self-correction and the combined lsf_entropy filter, inside the loop at tiny size."""
import json
import numpy as np
import pytest

from scollapse.loop import LoopConfig, run_loop, resolve_config, gen_dir, load_samples
from scollapse.baselines import fit_class_centres, self_correct
from scollapse.analysis import training_images
from scollapse.data import load_dataset, real_splits, get_spec
from scollapse.ddpm import load_checkpoint, n_params
from scollapse.filters import Pool, FilterContext, select, lsf_confidence

from conftest import TINY as TINY_G2, tiny as tiny_g2

TINY = {**TINY_G2, 'generations': 1}   # one generation is enough here


def tiny(tmp_path, cache_dir, name='run', **kw):
    """conftest's tiny run, one generation long."""
    return tiny_g2(tmp_path, cache_dir, name, **{'generations': 1, **kw})


def test_self_correction_trains_on_real_cluster_centres(tmp_path, cache_dir):
    cfg = tiny(tmp_path, cache_dir, paradigm='replace', self_correction_k=2)
    df = run_loop(cfg)
    out = tmp_path / 'run'
    xs, ys = load_samples(out, 0)
    xc, yc = load_samples(out, 0, corrected=True)
    assert np.array_equal(ys, yc) and not np.array_equal(xs, xc)
    # the generation-1 training set is made of rounded real centres of each item's own class
    x, y, spec = load_dataset('digits')
    s = real_splits(x, y, get_spec('digits'), 40, 40, seed=0)
    cent = np.rint(fit_class_centres(s.train_x, s.train_y, 10, k=2, seed=0))
    train = training_images(out, 1).reshape(40, -1)
    assert all(np.abs(cent[c] - t).sum(1).min() == 0 for t, c in zip(train, yc[:40]))
    assert len(np.unique(train, axis=0)) <= 20   # at most K=2 distinct images per class
    assert df.sc_shift.iloc[0] > 0 and df.sc_centre_values.iloc[0] == 10 * 2 * 64
    # metrics are computed on the model's own samples, not the corrected ones
    assert not np.array_equal(load_samples(out, 1)[0], load_samples(out, 1, corrected=True)[0])


def test_sims_guides_sampling_and_records_its_cost(tmp_path, cache_dir):
    plain = run_loop(tiny(tmp_path, cache_dir, 'plain', paradigm='accumulate_subsample', filter='random'))
    sims = run_loop(tiny(tmp_path, cache_dir, 'sims', paradigm='accumulate_subsample', filter='random', sims_weight=1.0))
    # same cached generation-0 model, different samples because of the guidance
    a, b = load_samples(tmp_path / 'plain', 0)[0], load_samples(tmp_path / 'sims', 0)[0]
    assert a.shape == b.shape and not np.array_equal(a, b)
    unet = load_checkpoint(gen_dir(tmp_path / 'sims', 0) / 'model.pt')[0]
    assert (sims.sims_aux_params == n_params(unet)).all() and (sims.t_aux > 0).all()
    assert 't_aux' not in plain.columns


@pytest.mark.parametrize('kw,msg', [
    (dict(sims_weight=-1.0), 'sims_weight'),
    (dict(sims_aux_epochs=0), 'sims_aux_epochs'),
    (dict(self_correction_k=-2), 'self_correction_k'),
    (dict(self_correction_k=5), 'per class'),          # 40 real images over 10 classes: 4 per class < 5
    (dict(paradigm='accumulate_subsample', filter='lsf_entropy', filter_options={'keep_factor': 0.5}), 'keep_factor'),
    (dict(paradigm='accumulate_subsample', filter='greedy', filter_options={'features': 'dinov2'}), 'dinov2_weights'),
    (dict(paradigm='accumulate_subsample', filter='random', filter_options={'t': 50}), "filter='random' takes no filter_options"),
])
def test_bad_baseline_options_fail_before_anything_is_written(tmp_path, cache_dir, kw, msg):
    with pytest.raises(ValueError, match=msg):
        run_loop(tiny(tmp_path, cache_dir, **{'paradigm': 'replace', **kw}))
    assert not (tmp_path / 'run').exists()


def test_lsf_entropy_selects_confident_and_diverse(tmp_path, cache_dir):
    opts = {'t': 50, 'probe_epochs': 3, 'keep_factor': 1.5}
    df = run_loop(tiny(tmp_path, cache_dir, paradigm='accumulate_subsample', filter='lsf_entropy', filter_options=opts))
    assert df.n_train.iloc[1] == 40 and df.lsf_entropy_kept.iloc[1] == 60
    # the same rule at filter level, on the run's own pool and cached probe
    from scollapse.loop import prepare, filter_context, real_pool, synthetic_pool
    cfg, data, out, _ = prepare(tiny(tmp_path, cache_dir, paradigm='accumulate_subsample', filter='lsf_entropy',
                                     filter_options=opts))
    pool = Pool.concat([real_pool(data), synthetic_pool(out, 0, 40)])
    ctx = filter_context(cfg, data, out, 1)
    idx = select('lsf_entropy', pool, 40, ctx)
    conf = lsf_confidence(pool, ctx)
    assert conf[idx].min() >= np.sort(conf)[-60]                      # stage 1: only the 60 most confident
    ctx.options = {**ctx.options, 'keep_factor': 1.0}                 # keep_factor 1 is plain LSF
    assert set(select('lsf_entropy', pool, 40, ctx)) == set(select('lsf', pool, 40, ctx))
    ctx.options = {**ctx.options, 'keep_factor': 2.0}                 # keep everything: plain greedy selection
    assert set(select('lsf_entropy', pool, 40, ctx)) == set(select('greedy', pool, 40, ctx))


def test_old_config_without_new_fields_resumes(tmp_path, cache_dir):
    cfg = tiny(tmp_path, cache_dir, paradigm='replace')
    run_loop(cfg, stop_after=0)
    p = tmp_path / 'run' / 'config.json'
    rec = json.loads(p.read_text())
    for k in ('sims_weight', 'sims_aux_epochs', 'self_correction_k'): rec['loop'].pop(k)
    p.write_text(json.dumps(rec))
    assert run_loop(cfg).generation.tolist() == [0, 1]
    with pytest.raises(ValueError, match='different configuration'):
        run_loop(tiny(tmp_path, cache_dir, paradigm='replace', self_correction_k=2))
