"""End-to-end behaviour of the self-consuming loop at tiny size."""
import json
import numpy as np
import pandas as pd
import pytest

from scollapse.loop import (LoopConfig, run_loop, resolve_config, n_candidates, n_fresh, gen_dir, load_samples,
                            ConfigMismatchError, gen0_path)
from scollapse.ddpm import CheckpointError

from conftest import TINY, tiny


def composition(out):
    c = pd.read_csv(out / 'composition.csv')
    return {(int(r.generation), r.source): int(r['count']) for _, r in c.iterrows() if r['count'] > 0}


@pytest.mark.parametrize('paradigm,filt,expected', [
    # N=40, 2 generations; sources: real, gen_0, gen_1
    ('replace', 'none', {(0, 'real'): 40, (1, 'gen_0'): 40, (2, 'gen_1'): 40}),
    ('replace', 'random', {(0, 'real'): 40, (1, 'gen_0'): 40, (2, 'gen_1'): 40}),
    # the real-data control: the same 40 real images every generation, though the pool holds synthetic ones too
    ('accumulate_subsample', 'real_only', {(0, 'real'): 40, (1, 'real'): 40, (2, 'real'): 40}),
    ('replace_fresh', 'none', {(0, 'real'): 40, (1, 'real'): 12, (1, 'gen_0'): 28, (2, 'real'): 12, (2, 'gen_1'): 28}),
    ('accumulate', 'none', {(0, 'real'): 40, (1, 'real'): 40, (1, 'gen_0'): 40,
                            (2, 'real'): 40, (2, 'gen_0'): 40, (2, 'gen_1'): 40}),
])
def test_paradigm_composition(tmp_path, cache_dir, paradigm, filt, expected):
    cfg = tiny(tmp_path, cache_dir, paradigm=paradigm, filter=filt)
    df = run_loop(cfg)
    out = tmp_path / 'run'
    assert composition(out) == expected
    assert list(df.generation) == [0, 1, 2]
    assert df.n_train.tolist() == [sum(v for (g, _), v in expected.items() if g == k) for k in range(3)]
    # every model drew enough samples for its metrics and the next generation's candidates
    r = resolve_config(cfg)
    for g in range(3):
        x, y = load_samples(out, g)
        assert len(y) == max(r.n_eval, n_candidates(r)) and x.dtype == np.uint8 and x.shape[1:] == (1, 8, 8)
        assert np.array_equal(np.bincount(y[:20], minlength=10), [2] * 10)  # class-balanced evaluation set
    assert {'fid', 'precision', 'recall', 'class_accuracy', 'real_fraction', 'fid_floor'} <= set(df.columns)
    assert df[['precision', 'recall', 'class_accuracy']].stack().between(0, 1).all()


def test_accumulate_subsample_random_is_a_subset_of_the_pool(tmp_path, cache_dir):
    df = run_loop(tiny(tmp_path, cache_dir, paradigm='accumulate_subsample', filter='random'))
    comp = composition(tmp_path / 'run')
    assert df.n_train.tolist() == [40, 40, 40]
    assert sum(v for (g, _), v in comp.items() if g == 2) == 40
    assert 0 < comp[(2, 'real')] < 40  # random from 40 real + 80 synthetic: some of each
    assert df.real_fraction.iloc[0] == 1.0


def test_replace_with_filter_draws_m_times_n_candidates(tmp_path, cache_dir):
    cfg = resolve_config(tiny(tmp_path, cache_dir, paradigm='replace', filter='random', candidates_factor=3))
    assert n_candidates(cfg) == 120
    cfg = resolve_config(tiny(tmp_path, cache_dir, paradigm='replace_fresh', filter='random', candidates_factor=2))
    assert n_fresh(cfg) == 12 and n_candidates(cfg) == 56


def test_resume_equals_uninterrupted_run(tmp_path, cache_dir):
    full = run_loop(tiny(tmp_path / 'a', cache_dir, paradigm='accumulate_subsample', filter='random'))
    cfg_b = tiny(tmp_path / 'b', cache_dir, paradigm='accumulate_subsample', filter='random')
    part = run_loop(cfg_b, stop_after=1)
    assert list(part.generation) == [0, 1]
    # simulate a crash in the middle of generation 2: partial files without the row.json marker
    d = gen_dir(tmp_path / 'b' / 'run', 2); d.mkdir()
    (d / 'samples.npz').write_bytes(b'garbage')
    resumed = run_loop(cfg_b)
    cols = ['generation', 'fid', 'precision', 'recall', 'class_accuracy', 'n_train', 'real_fraction']
    pd.testing.assert_frame_equal(full[cols], resumed[cols])
    for g in range(3):
        xa, _ = load_samples(tmp_path / 'a' / 'run', g); xb, _ = load_samples(tmp_path / 'b' / 'run', g)
        assert np.array_equal(xa, xb)


def test_more_generations_extend_a_finished_run(tmp_path, cache_dir):
    cfg = tiny(tmp_path, cache_dir, paradigm='replace', filter='none', generations=1)
    assert len(run_loop(cfg)) == 2
    cfg.generations = 2
    assert len(run_loop(cfg)) == 3


def test_different_config_in_existing_out_dir_is_refused(tmp_path, cache_dir):
    run_loop(tiny(tmp_path, cache_dir, paradigm='replace', filter='none', generations=1))
    before = (tmp_path / 'run' / 'config.json').read_text()
    with pytest.raises(ConfigMismatchError, match='paradigm'):
        run_loop(tiny(tmp_path, cache_dir, paradigm='accumulate', generations=1))
    assert (tmp_path / 'run' / 'config.json').read_text() == before


import torch
from dataclasses import fields, replace

# One bad value for EVERY LoopConfig field (a new field without an entry fails test_every_field_has_a_bad_input_case):
# (the field's bad value, other fields it needs, the words the error must contain).
BAD_INPUT = {
    'dataset': ('imagenet', {}, "unknown dataset|dataset='imagenet' is unknown"),
    'paradigm': ('acumulate', {}, "did you mean 'accumulate'"),
    'filter': ('lsff', {}, "unknown filter 'lsff'; did you mean 'lsf'"),
    'generations': (0, {}, 'generations=0 must be'),
    'n_train': (5000, {}, 'too large'),
    'n_ref': (5000, {}, 'too large'),
    'n_eval': (1, {}, 'n_eval=1 must be'),
    'n_gen0': (20, {}, 'n_gen0=20 must be >= n_train=40'),
    'seed': (-1, {}, 'seed=-1 must be'),
    'preset': ('huge', {}, "unknown preset 'huge'"),
    'protocol': ('lfs', {}, "unknown protocol 'lfs'; did you mean 'lsf'"),
    'candidates_factor': (0.5, {}, 'candidates_factor'),
    'fresh_fraction': (1.0, {'paradigm': 'replace_fresh'}, 'fresh_fraction'),
    'out_dir': ('A_FILE/run', {}, "out_dir=.* is not writable"),
    'cache_dir': ('A_FILE/cache', {}, "cache_dir=.* is not writable"),
    'data_root': ('NODATA', {'dataset': 'mnist'}, 'download=True'),
    'device': ('tpu' if torch.cuda.is_available() else 'cuda', {}, "device='tpu' is unknown|CUDA is not available on this machine"),
    'filter_options': ({'tt': 5}, {'filter': 'lsf'}, "unknown filter_options key .*'tt'; did you mean 't'"),
    'model_overrides': ({'epoch_gen0': 3}, {}, "did you mean 'epochs_gen0'"),
    'feature_extractor': ('inception', {}, "unknown feature_extractor 'inception'; did you mean 'inception-v3-compat'"),
    'feature_extractor_weights': ('NODATA/w.pth', {'feature_extractor': 'inception-v3-compat'}, 'Inception-v3 weights file'),
    'keep_checkpoints': ('some', {}, "unknown keep_checkpoints 'some'"),
    'sims_weight': (-1.0, {}, 'sims_weight'),
    'sims_aux_epochs': (0, {}, 'sims_aux_epochs'),
    'self_correction_k': (16, {}, 'self_correction_k=16 centres per class need'),   # 4 images per class at N=40
    'mixed_precision': ('fp16', {}, "mixed_precision='fp16': choose one of"),
    'compile': ('yes', {}, "compile='yes': choose 'auto', True or False"),
    'progress': ('yes', {}, "progress='yes' must be bool"),
}


@pytest.mark.skipif(torch.cuda.is_available(), reason='the refusal is for a machine without CUDA')
def test_the_gpu_preset_needs_cuda(tmp_path):
    with pytest.raises(ValueError, match="preset='gpu' needs a CUDA device.*preset='cpu'"):
        resolve_config(LoopConfig(preset='gpu', out_dir=str(tmp_path / 'run')))
    assert not (tmp_path / 'run').exists()   # refused before anything is written


def test_auto_fast_path_resolves_to_float32_eager_on_a_cpu(tmp_path, cache_dir):
    rc = resolve_config(tiny(tmp_path, cache_dir))
    assert (rc.mixed_precision, rc.compile) == ('no', False)
    assert rc.effects['device'] == {'loop.mixed_precision': ['auto', 'no'], 'loop.compile': ['auto', False]}


def test_every_field_has_a_bad_input_case():
    assert set(BAD_INPUT) == {f.name for f in fields(LoopConfig)}


@pytest.mark.parametrize('name', sorted(BAD_INPUT))
def test_bad_input_raises_before_compute(tmp_path, name):
    value, extra, msg = BAD_INPUT[name]
    (tmp_path / 'A_FILE').write_text('a file, not a folder')
    if isinstance(value, str): value = value.replace('A_FILE', str(tmp_path / 'A_FILE')).replace('NODATA', str(tmp_path / 'nodata'))
    cfg = replace(tiny(tmp_path, tmp_path / 'cache', **extra), **{name: value})
    with pytest.raises((ValueError, FileNotFoundError), match=msg):
        run_loop(cfg)
    for folder in ('cache', 'run'):   # nothing was trained or cached; the run folder was not even created
        assert not (tmp_path / folder).exists() or name in ('out_dir', 'cache_dir'), folder
    assert not list(tmp_path.rglob('*.pt'))


@pytest.mark.parametrize('kw,msg', [
    (dict(paradigm='accumulate', filter='random'), 'does not apply'),
    (dict(paradigm='accumulate_subsample', filter='none'), 'needs a filter'),
    (dict(paradigm='replace', filter='real_only'), "selects only from the pool of paradigm 'accumulate_subsample'"),
    (dict(paradigm='replace_fresh', filter='real_only'), "selects only from the pool of paradigm 'accumulate_subsample'"),
    (dict(model_overrides={'sampler': 'euler'}), 'sampler'),
    (dict(model_overrides={'lr': 'fast'}), "lr='fast' must be float"),
    (dict(filter_options='{t: 5}'), "filter_options='{t: 5}' must be dict.*-y 'filter_options"),
    # issue 13: the protocols' model knobs and what an unconditional model cannot do
    (dict(model_overrides={'guidance_scale': -1.0}), 'guidance_scale=-1.0 must be >= 0'),
    (dict(model_overrides={'label_dropout': 1.0}), r'label_dropout=1.0 must be in \[0, 1\)'),
    (dict(model_overrides={'label_dropout': -0.1}), r'label_dropout=-0.1 must be in \[0, 1\)'),
    (dict(model_overrides={'ema_decay': 1.0}), 'ema_decay=1.0 must be in'),
    (dict(model_overrides={'guidance_scale': 2.0}), 'guidance_scale=2.0 needs a null class'),
    (dict(protocol='entropy', filter='lsf'), "filter='lsf' needs class labels, but this model is unconditional"),
    (dict(model_overrides={'conditional': False}, filter='lsf_entropy'), "filter='lsf_entropy' needs class labels"),
    (dict(protocol='entropy', self_correction_k=2), 'self_correction_k > 0 needs class labels'),
    (dict(model_overrides={'conditional': False, 'label_dropout': 0.1}), 'label_dropout > 0 needs conditional=True'),
    (dict(filter='lsf', filter_options={'condition': 'nul'}), "unknown condition 'nul'; did you mean 'null'"),
])
def test_inconsistent_input_raises_before_compute(tmp_path, kw, msg):
    with pytest.raises(ValueError, match=msg):
        run_loop(tiny(tmp_path, tmp_path / 'cache', **kw))
    assert not (tmp_path / 'cache').exists() and not (tmp_path / 'run').exists()


def test_non_writable_out_dir(tmp_path, cache_dir):
    f = tmp_path / 'a_file'; f.write_text('x')
    with pytest.raises(ValueError, match='not writable'):
        run_loop(tiny(tmp_path, cache_dir, out_dir=str(f / 'run')))


def test_missing_dataset_says_how_to_get_it(tmp_path, cache_dir):
    from scollapse.data import DatasetNotFoundError
    with pytest.raises(DatasetNotFoundError, match='download=True'):
        run_loop(tiny(tmp_path, cache_dir, dataset='mnist', data_root=str(tmp_path / 'nodata')))
    assert not (tmp_path / 'run').exists()


def test_corrupted_checkpoint_is_a_clear_error(tmp_path, cache_dir):
    cfg = tiny(tmp_path, cache_dir, paradigm='replace', filter='none', generations=2)
    run_loop(cfg, stop_after=1)
    (gen_dir(tmp_path / 'run', 1) / 'model.pt').write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='corrupted'):
        run_loop(cfg)
    assert not (gen_dir(tmp_path / 'run', 2)).exists()


def test_generation0_samples_are_shared_and_identical_to_fresh_ones(tmp_path, cache_dir):
    a = tiny(tmp_path, cache_dir, paradigm='replace', filter='none', out_dir=str(tmp_path / 'a'), generations=1)
    run_loop(a, stop_after=0)
    shared = sorted(gen0_path(resolve_config(a)).parent.glob(gen0_path(resolve_config(a)).stem + '-samples*.npz'))
    assert shared, 'generation-0 samples were not cached beside the model'
    for p in shared: p.unlink()          # the next run must sample afresh and get the same images
    run_loop(tiny(tmp_path, cache_dir, paradigm='accumulate', filter='none', out_dir=str(tmp_path / 'b'), generations=1),
             stop_after=0)
    assert np.array_equal(load_samples(tmp_path / 'a', 0)[0], load_samples(tmp_path / 'b', 0)[0])
    run_loop(tiny(tmp_path, cache_dir, paradigm='accumulate', filter='none', out_dir=str(tmp_path / 'c'), generations=1),
             stop_after=0)
    assert np.array_equal(load_samples(tmp_path / 'a', 0)[0], load_samples(tmp_path / 'c', 0)[0])


def test_generation0_on_more_real_images_than_n(tmp_path, cache_dir):
    from scollapse.ddpm import load_checkpoint
    cfg = resolve_config(tiny(tmp_path, cache_dir, n_gen0=80))
    from scollapse.loop import run_name
    assert '-g80-' in gen0_path(cfg).name and run_name(cfg) != run_name(resolve_config(tiny(tmp_path, cache_dir)))
    run_loop(cfg, stop_after=0)
    assert load_checkpoint(gen0_path(cfg))[2]['n_train'] == 80        # generation 0 saw the 80
    rows = pd.read_csv(tmp_path / 'run' / 'metrics.csv')
    assert rows.n_train.iloc[0] == 40                                    # the loop's real set is still N
    with pytest.raises(ValueError, match='n_gen0=5000 is too large'):
        run_loop(tiny(tmp_path, cache_dir, n_gen0=5000, out_dir=str(tmp_path / 'big')))


def test_a_sampler_change_reuses_the_generation0_model(tmp_path):
    a = resolve_config(tiny(tmp_path, tmp_path / 'c'))
    b = resolve_config(tiny(tmp_path, tmp_path / 'c', model_overrides={**TINY['model_overrides'], 'sampling_steps': 3}))
    c = resolve_config(tiny(tmp_path, tmp_path / 'c', model_overrides={**TINY['model_overrides'], 'lr': 1e-3}))
    assert gen0_path(a) == gen0_path(b) and gen0_path(a) != gen0_path(c)   # sampling fields do not shape the weights


def test_a_changed_filter_default_is_a_different_configuration(tmp_path, monkeypatch):
    from scollapse.loop import check_or_write_config
    import scollapse.filters
    cfg = resolve_config(tiny(tmp_path, tmp_path / 'cache', filter='greedy'))
    out = tmp_path / 'run'
    out.mkdir()
    check_or_write_config(out, cfg)
    assert json.loads((out / 'config.json').read_text())['filter']['features'] == 'encoder'   # defaults are recorded
    check_or_write_config(out, cfg)                                                            # same: resumes
    monkeypatch.setitem(scollapse.filters.ENTROPY_DEFAULTS, 'features', 'pixel')
    resumed = resolve_config(tiny(tmp_path, tmp_path / 'cache', filter='greedy'))   # resolved by the changed code
    with pytest.raises(ConfigMismatchError, match="filter.features: 'encoder' in the folder, 'pixel' now"):
        check_or_write_config(out, resumed)


# --- issue 13: each paper under its own protocol ---------------------------------------------------------------
from scollapse.loop import PROTOCOLS, LSF_PAPER_T_GRID, config_record, gen_dir, run_name
from scollapse.ddpm import load_checkpoint


def test_protocols_set_the_model_and_the_filter_defaults():
    lsf, ent = LoopConfig(protocol='lsf'), LoopConfig(protocol='entropy')
    assert lsf.model_config().label_dropout > 0 and lsf.model_config().conditional
    assert not ent.model_config().conditional and ent.model_config().from_scratch
    assert LoopConfig().model_config() == LoopConfig(protocol='common').model_config()
    assert LoopConfig(protocol='lsf', filter='lsf').filter_settings()['t_grid'][0] == 1 == LSF_PAPER_T_GRID[0]
    assert LoopConfig(filter='lsf').filter_settings() == {'condition': 'zero'}   # common: no null class in its model
    tdf = dict(protocol='entropy', filter='threshold_decay')
    assert LoopConfig(paradigm='replace', **tdf).filter_settings() == {'decay_every_pass': True}       # α 0.95
    assert LoopConfig(**tdf).filter_settings() == {'decay_every_pass': True, 'decay': 0.8}             # accumulate
    assert LoopConfig(filter_options={'decay': 0.9}, **tdf).filter_settings()['decay'] == 0.9          # yours win
    rec = config_record(resolve_config(LoopConfig(protocol='lsf', filter='lsf')))
    assert rec['filter']['condition'] == 'null' and rec['filter']['t_grid'][:3] == [1, 5, 10]


def test_protocol_names_the_run_folder_and_common_keeps_old_names():
    assert run_name(resolve_config(LoopConfig())) == 'digits-accumulate_subsample-random-cpu-s0'
    assert run_name(resolve_config(LoopConfig(protocol='lsf', filter='lsf'))) == 'digits-lsf-accumulate_subsample-lsf-cpu-s0'
    assert run_name(resolve_config(LoopConfig(protocol='entropy', paradigm='replace'))) == 'digits-entropy-replace-none-cpu-s0'


def test_lsf_protocol_probe_reads_the_null_class(tmp_path, seeded):
    cfg = tiny(tmp_path, seeded(tmp_path / 'cache'), protocol='lsf', filter='lsf', generations=1)
    run_loop(cfg)
    unet, _, _ = load_checkpoint(gen_dir(tmp_path / 'run', 0) / 'model.pt')
    assert unet.config.num_class_embeds == 11 and unet.config.null_class == 10
    meta = json.loads(next((tmp_path / 'run' / 'filter_cache').glob('lsf_probe_*.json')).read_text())
    assert meta['options']['condition'] == 'null' and meta['ole_curve'] and min(map(int, meta['ole_curve'])) == 1


def test_entropy_protocol_is_unconditional_and_retrains_from_scratch(tmp_path, monkeypatch, seeded):
    import scollapse.loop as loop
    import scollapse.artefacts as artefacts
    made = []
    real_make = loop.make_unet
    for module in (artefacts, loop):   # generation 0's UNet is made in artefacts, later generations' in loop
        monkeypatch.setattr(module, 'make_unet', lambda *a, **kw: made.append(kw.get('seed')) or real_make(*a, **kw))
    cache = seeded(tmp_path / 'cache')   # the shared judge and encoder; generation 0 is this protocol's own
    cfg = tiny(tmp_path, cache, protocol='entropy', paradigm='replace', filter='greedy', generations=2)
    df = run_loop(cfg)
    assert len(made) == 3                          # generation 0, then a new UNet for each of generations 1 and 2
    assert df.class_accuracy.isna().all() and df.fid.notna().all()
    with np.load(gen_dir(tmp_path / 'run', 1) / 'samples.npz') as z: assert (z['labels'] == -1).all()
    unet, _, _ = load_checkpoint(gen_dir(tmp_path / 'run', 1) / 'model.pt')
    assert unet.config.num_class_embeds is None


def test_entropy_protocol_turns_guidance_off_over_a_guided_preset(monkeypatch):
    import scollapse.ddpm as ddpm
    monkeypatch.setitem(ddpm.CPU_28, 'guidance_scale', 2.0)            # a 28x28 preset that samples with guidance
    assert LoopConfig(dataset='fashion_mnist').model_config().guidance_scale == 2.0
    mc = LoopConfig(dataset='fashion_mnist', protocol='entropy').model_config()
    assert not mc.conditional and mc.label_dropout == 0 and mc.guidance_scale == 1.0
    ddpm.check_model_config(mc)                                           # valid: no guidance without a null class
