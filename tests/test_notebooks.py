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
    with pytest.raises(pm.PapermillExecutionError, match='available filters'):
        pm.execute_notebook(str(NBS / 'run_loop.ipynb'), str(tmp_path / 'out.ipynb'), cwd=str(tmp_path),
                            parameters=dict(preset='smoke', filter='bogus', out_dir=str(tmp_path / 'run'),
                                            cache_dir=str(cache_dir)), progress_bar=False)
    assert not (tmp_path / 'run').exists()


def test_parameters_tag_survives_nbdev_clean():
    for name in ('run_loop.ipynb', 'analysis_ole.ipynb', 'analysis_entropy.ipynb', 'benchmark.ipynb'):
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
                             parameters=dict(preset='smoke', cache_dir=str(cache_dir), sizes=[40, 60],
                                             progress=False), progress_bar=False)
    assert len(outputs(nb, 'image/png')) >= 4      # entropy/GS, 2 NN pictures, metrics
    assert len(list((tmp_path / 'runs').glob('digits-*'))) == 5
