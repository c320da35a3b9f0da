"""The papermill experiment notebooks run end to end at smoke size and embed their plots and tables."""
from pathlib import Path
import nbformat
import pandas as pd
import papermill as pm
import pytest

NBS = Path(__file__).resolve().parents[1] / 'nbs'


def outputs(nb, mime):
    return [o for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', []) if mime in o.get('data', {})]


def test_run_loop_smoke(tmp_path, cache_dir):
    out = tmp_path / 'run'
    nb = pm.execute_notebook(str(NBS / 'run_loop.ipynb'), str(tmp_path / 'out.ipynb'), cwd=str(tmp_path),
                             parameters=dict(preset='smoke', out_dir=str(out), cache_dir=str(cache_dir),
                                             paradigm='replace', filter='none', progress=False), progress_bar=False)
    assert len(outputs(nb, 'image/png')) >= 3          # metrics, composition, sample grids
    assert len(outputs(nb, 'text/html')) >= 2          # metrics table, stage times
    assert len(pd.read_csv(out / 'metrics.csv')) == 3   # generations 0..2 (smoke: G=2)
    assert nb.metadata.papermill.parameters['paradigm'] == 'replace'


def test_run_loop_unknown_filter_fails_before_compute(tmp_path, cache_dir):
    with pytest.raises(pm.PapermillExecutionError, match="unknown filter 'bogus'"):
        pm.execute_notebook(str(NBS / 'run_loop.ipynb'), str(tmp_path / 'out.ipynb'), cwd=str(tmp_path),
                            parameters=dict(preset='smoke', filter='bogus', out_dir=str(tmp_path / 'run'),
                                            cache_dir=str(cache_dir)), progress_bar=False)
    assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('name,params', [
    ('run_loop.ipynb', dict(preset='smoke', fitler='lsf')),
    ('compare.ipynb', dict(preset='smoke', method=['SYN'])),
    ('tutorial_custom_filter.ipynb', dict(preset='smoke', seed=[0])),
    ('protocols.ipynb', dict(preset='smoke', seed=[0])),
    ('analysis_ole.ipynb', dict(preset='smoke', tgrid=[100])),
    ('analysis_entropy.ipynb', dict(preset='smoke', size=[40])),
    ('benchmark.ipynb', dict(fresh=False, filtr='lsf')),
    ('gen0_recipe.ipynb', dict(preset='smoke', evrey=1)),
    ('finetune_control.ipynb', dict(preset='smoke', fid_ration=1.5)),
])
def test_misspelt_parameter_fails_before_compute(tmp_path, name, params):
    typo = [k for k in params if k not in ('preset', 'fresh')][0]
    with pytest.raises(pm.PapermillExecutionError, match=f"unknown parameter '{typo}'; did you mean"):
        pm.execute_notebook(str(NBS / name), str(tmp_path / 'out.ipynb'), cwd=str(tmp_path), parameters=params,
                            progress_bar=False)
    assert not (tmp_path / 'runs').exists()   # nothing ran


def test_parameters_tag_survives_nbdev_clean():
    for name in ('run_loop.ipynb', 'analysis_ole.ipynb', 'analysis_entropy.ipynb', 'benchmark.ipynb', 'compare.ipynb',
                 'tutorial_custom_filter.ipynb', 'protocols.ipynb', 'gen0_recipe.ipynb', 'finetune_control.ipynb'):
        nb = nbformat.read(NBS / name, as_version=4)
        assert any('parameters' in c.metadata.get('tags', []) for c in nb.cells), name


def test_analysis_ole_smoke(tmp_path, cache_dir):
    nb = pm.execute_notebook(str(NBS / 'analysis_ole.ipynb'), str(tmp_path / 'out.ipynb'), cwd=str(tmp_path),
                             parameters=dict(preset='smoke', cache_dir=str(cache_dir), t_grid=[100, 500, 900],
                                             n_max=60, ssc_n=40, progress=False), progress_bar=False)
    assert len(outputs(nb, 'image/png')) >= 4      # OLE heatmaps/curves, confidences, composition
    assert (tmp_path / 'runs' / 'digits-accumulate_subsample-lsf-smoke-s0' / 'metrics.csv').exists()


def test_analysis_entropy_smoke(tmp_path, cache_dir):
    nb = pm.execute_notebook(str(NBS / 'analysis_entropy.ipynb'), str(tmp_path / 'out.ipynb'), cwd=str(tmp_path),
                             parameters=dict(preset="smoke", cache_dir=str(cache_dir), sizes=[40, 60], seeds=[0, 1],
                                             progress=False), progress_bar=False)
    assert len(outputs(nb, 'image/png')) >= 4      # entropy/GS, 2 NN pictures, metrics
    assert len(list((tmp_path / 'runs').glob('digits-*'))) == 7   # 2 sizes x 2 seeds under replace + 3 filters
    html = ' '.join(''.join(o['data']['text/html']) for o in outputs(nb, 'text/html'))
    assert 'pooled' in html and 'seed 1' in html


def test_benchmark_smoke(tmp_path, cache_dir):
    nb = pm.execute_notebook(str(NBS / 'benchmark.ipynb'), str(tmp_path / 'out.ipynb'), cwd=str(tmp_path),
                             parameters=dict(preset='smoke', speed_datasets=['digits'], speed_presets=['smoke'],
                                             fresh=False, cache_dir=str(cache_dir), out_dir=str(tmp_path / 'run'),
                                             speed_variants=['default', '1 thread', 'channels_last']),
                             progress_bar=False)
    assert (tmp_path / 'run' / 'metrics.csv').exists()
    html = ''.join(''.join(o['data']['text/html']) for o in outputs(nb, 'text/html'))
    assert 'channels_last' in html and 'train_speedup' in html     # the speed-knob table is embedded


def test_gen0_recipe_smoke(tmp_path, seeded):
    seeded(tmp_path / 'cache')
    nb = pm.execute_notebook(str(NBS / 'gen0_recipe.ipynb'), str(tmp_path / 'out.ipynb'), cwd=str(tmp_path),
                             parameters=dict(dataset='digits', preset='smoke', every=1, n=100, progress=False,
                                             samplers={'default': {}, 'DDIM-2': {'sampling_steps': 2}},
                                             cache_dir=str(tmp_path / 'cache'), out_dir=str(tmp_path / 'run')),
                             progress_bar=False)
    html = ''.join(''.join(o['data']['text/html']) for o in outputs(nb, 'text/html'))
    assert 'class_accuracy/real' in html and 'DDIM-2' in html     # the curve and the sampler table are embedded
    assert len(outputs(nb, 'image/png')) == 2                      # the curves and the sample grid
    assert len(list((tmp_path / 'cache' / 'gen0').glob('digits-*-curve.csv'))) == 1   # the curve is kept beside the model


def test_gen0_recipe_refuses_a_bad_sampler_before_training(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match='not sampling fields'):
        pm.execute_notebook(str(NBS / 'gen0_recipe.ipynb'), str(tmp_path / 'out.ipynb'), cwd=str(tmp_path),
                            parameters=dict(dataset='digits', preset='smoke', every=1, n=100, progress=False,
                                            samplers={'default': {}, 'bad': {'epochs_gen0': 3}},
                                            cache_dir=str(tmp_path / 'cache'), out_dir=str(tmp_path / 'run')),
                            progress_bar=False)
    assert not (tmp_path / 'cache' / 'gen0').exists()   # generation 0 never started


def test_finetune_control_smoke(tmp_path, seeded):
    seeded(tmp_path / 'runs' / '_cache')
    nb = pm.execute_notebook(str(NBS / 'finetune_control.ipynb'), str(tmp_path / 'out.ipynb'), cwd=str(tmp_path),
                             parameters=dict(preset='smoke', seeds=[0], root=str(tmp_path / 'runs'), progress=False,
                                             variants={'a': {}, 'b': {'finetune_lr': 1e-4, 'epochs_per_generation': 2}}),
                             progress_bar=False)
    html = ''.join(''.join(o['data']['text/html']) for o in outputs(nb, 'text/html'))
    assert 'holds' in html and 'recall ratio' in html                 # the verdict table is embedded
    assert len(outputs(nb, 'image/png')) == 1                         # the control's curves per variant
    text = ''.join(''.join(o.get('text', '')) for c in nb.cells for o in c.get('outputs', []))
    assert 'chosen:' in text or 'no variant holds' in text
    cells = sorted(p.name for p in (tmp_path / 'runs').iterdir() if p.name != '_cache')
    assert len(cells) == 2 and all('real_only' in c for c in cells)   # one control cell per variant, one generation 0
    assert len(list((tmp_path / 'runs' / '_cache' / 'gen0').glob('*.pt'))) == 1


def test_run_loop_exposes_every_loopconfig_field():
    from scollapse.loop import LoopConfig
    params = pm.inspect_notebook(str(NBS / 'run_loop.ipynb'))
    assert set(LoopConfig.__dataclass_fields__) <= set(params), set(LoopConfig.__dataclass_fields__) - set(params)


CHAPTERS = sorted(p.name for p in NBS.glob('[01]*.ipynb'))


@pytest.mark.parametrize('name', CHAPTERS)
def test_source_chapters_keep_their_outputs(name):
    """A reader on GitHub or in JupyterLab sees each chapter's example run (`make outputs` re-executes them)."""
    nb = nbformat.read(NBS / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == 'code' and not c.source.startswith(('#| export', '#| default_exp'))]
    assert any(c.get('outputs') for c in code), f'{name} has no outputs: run `make outputs` and commit'
    errors = [o for c in code for o in c.get('outputs', []) if o.get('output_type') == 'error']
    assert not errors, f'{name} kept an error output'


def test_loop_and_filter_chapters_show_their_figures():
    assert outputs(nbformat.read(NBS / '09_loop.ipynb', as_version=4), 'image/png')      # the smoke loop's metrics
    assert outputs(nbformat.read(NBS / '06_entropy.ipynb', as_version=4), 'image/png')   # the closed-form checks
    assert outputs(nbformat.read(NBS / '07_filters.ipynb', as_version=4), 'text/html')   # the LSF confidences table


