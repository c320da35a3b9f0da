"""The comparison notebooks run end to end at smoke size: compare.ipynb (a matrix, its rendering from results/, a
matrix finished on two machines, each paper's protocol with protocols.ipynb) and the custom-selector tutorial.
A file of its own so that pytest-xdist (--dist loadfile) runs it beside tests/test_notebooks.py."""
from pathlib import Path

import papermill as pm

from conftest import TINY_SIZES
from test_notebooks import NBS, outputs


def test_compare_smoke(tmp_path, seeded):
    tiny = {**TINY_SIZES, 'filter_options': {}}
    seeded(tmp_path / 'cmp' / '_cache')
    nb = pm.execute_notebook(str(NBS / 'compare.ipynb'), str(tmp_path / 'out.ipynb'), cwd=str(tmp_path),
                             parameters=dict(preset='smoke', methods=['SYN', 'ACUR', 'ACU-greedy'], seeds=[0, 1],
                                             root=str(tmp_path / 'cmp'), overrides=tiny, progress=False),
                             progress_bar=False)
    assert len(outputs(nb, 'image/png')) >= 3          # curves, ledger, grids
    html = ' '.join(''.join(o['data']['text/html']) for o in outputs(nb, 'text/html'))
    assert '★' in html and any(v in html for v in ('held', 'did not hold', 'mixed'))
    assert 'greedy beats random' in html
    assert len([d for d in (tmp_path / 'cmp').glob('digits-*') if '-s1-' in d.name]) == 3   # cmp/<run_name> per cell
    # a second call with run=False only collects: nothing is recomputed
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / 'cmp').rglob('samples.npz')}
    pm.execute_notebook(str(NBS / 'compare.ipynb'), str(tmp_path / 'out2.ipynb'), cwd=str(tmp_path),
                        parameters=dict(preset='smoke', methods=['SYN', 'ACUR', 'ACU-greedy'], seeds=[0, 1],
                                        root=str(tmp_path / 'cmp'), overrides=tiny, run=False, progress=False),
                        progress_bar=False)
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / 'cmp').rglob('samples.npz')}



def test_compare_renders_committed_results(tmp_path):
    """`compare.ipynb -p run False` with no run folders renders every table and plot from a results folder."""
    import shutil
    res = tmp_path / 'results'
    shutil.copytree(Path(__file__).parent / 'fixtures' / 'results_smoke', res)   # the committed smoke fixture
    nb = pm.execute_notebook(str(NBS / 'compare.ipynb'), str(tmp_path / 'out.ipynb'), cwd=str(tmp_path),
                             parameters=dict(run=False, results=str(res)), progress_bar=False)
    errors = [o for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', []) if o.get('output_type') == 'error']
    assert not errors
    assert len(outputs(nb, 'image/png')) >= 3          # curves, headline, grids
    html = ' '.join(''.join(o['data']['text/html']) for o in outputs(nb, 'text/html'))
    assert '★' in html and 'SYN degrades' in html and 'ACUR' in html   # the paper tables and the scoreboard
    text = ' '.join(''.join(o.get('text', '')) for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', []))
    assert 'rendering the exported cells' in text and 'cost ledger skipped' in text and 'cells found: 4' in text
    assert (res / 'headline.png').read_bytes()[:4] == b'\x89PNG'
    assert not (tmp_path / 'runs').exists()            # nothing ran, no run folder made



def test_compare_finishes_a_matrix_across_machines(tmp_path, seeded, cache_dir):
    """A matrix finished in two parts on two machines: the second part runs only the cells the first did not export,
    with the judge and encoder the first exported, and its tables hold both parts' seeds."""
    import shutil
    tiny = {**TINY_SIZES, 'filter_options': {}}
    res = tmp_path / 'results'
    seeded(tmp_path / 'm1' / '_cache')                 # machine 2's cache starts empty: it adopts what results carries
    common = dict(preset='smoke', methods=['SYN', 'ACUR'], overrides=tiny, progress=False, ole=False, results=str(res))
    pm.execute_notebook(str(NBS / 'compare.ipynb'), str(tmp_path / 'part1.ipynb'), cwd=str(tmp_path),
                        parameters=dict(common, seeds=[0], root=str(tmp_path / 'm1')), progress_bar=False)
    first = {d.name: (d / 'metrics.csv').read_text() for d in res.glob('digits-*')}
    assert len(first) == 2
    shutil.rmtree(tmp_path / 'm1')                     # the first machine is gone; only results/ travelled
    nb = pm.execute_notebook(str(NBS / 'compare.ipynb'), str(tmp_path / 'part2.ipynb'), cwd=str(tmp_path),
                             parameters=dict(common, seeds=[0, 1], root=str(tmp_path / 'm2')), progress_bar=False)
    ran = [d.name for d in (tmp_path / 'm2').glob('digits-*')]
    for kind in ('judge', 'encoder'):                  # graded and selected by machine 1's networks, not new ones
        assert (tmp_path / 'm2' / '_cache' / kind / 'digits.pt').read_bytes() == \
            (res / '_shared' / kind / 'digits.pt').read_bytes() == (cache_dir / kind / 'digits.pt').read_bytes()
    assert len(ran) == 2 and all('-s1' in n and '-s0' not in n for n in ran), ran   # seed 0 was not re-run
    assert {d.name: (d / 'metrics.csv').read_text() for d in res.glob('digits-*') if d.name in first} == first
    text = ' '.join(''.join(o.get('text', '')) for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', []))
    html = ' '.join(''.join(o['data']['text/html']) for o in outputs(nb, 'text/html'))
    assert 'exported before' in html                   # the status table of run_matrix
    assert "2 cells read from" in text and 'cells found: 4 (complete: 4)' in text
    assert 'cost ledger of the 2 cells with a run folder here' in text



def test_tutorial_custom_filter_smoke(tmp_path, seeded):
    """The custom-selector tutorial registers its filter, runs it beside ACUR and ACU-LSF, and gives a verdict."""
    tiny = TINY_SIZES
    seeded(tmp_path / 'cmp' / '_cache')
    nb = pm.execute_notebook(str(NBS / 'tutorial_custom_filter.ipynb'), str(tmp_path / 'out.ipynb'), cwd=str(tmp_path),
                             parameters=dict(preset='smoke', seeds=[0], root=str(tmp_path / 'cmp'), overrides=tiny,
                                             progress=False), progress_bar=False)
    assert outputs(nb, 'image/png')                    # the curves
    html = ' '.join(''.join(o['data']['text/html']) for o in outputs(nb, 'text/html'))
    assert 'ACU-class-mean beats ACUR on FID' in html and any(v in html for v in ('held', 'did not hold', 'mixed'))
    assert len(list((tmp_path / 'cmp').glob('digits-accumulate_subsample-class_mean_nearest-*-s0*'))) == 1



def test_compare_and_evidence_under_each_papers_protocol(tmp_path, seeded):
    """compare.ipynb -p protocol lsf / entropy runs its cells under that protocol and scores only that paper's claims;
    protocols.ipynb then shows the generation-0 variants, OLE over t, probe confidences and what greedy keeps."""
    tiny = TINY_SIZES
    root = str(seeded(tmp_path / 'cmp' / '_cache').parent)
    runs = {'lsf': ['SYN', 'SYN-LSF', 'ACU-LSF'], 'entropy': ['SYN', 'SYN-greedy']}
    html = {}
    for protocol, methods in runs.items():
        nb = pm.execute_notebook(str(NBS / 'compare.ipynb'), str(tmp_path / f'{protocol}.ipynb'), cwd=str(tmp_path),
                                 parameters=dict(preset='smoke', protocol=protocol, methods=methods, seeds=[0],
                                                 root=root, overrides=tiny, progress=False, ole=False), progress_bar=False)
        html[protocol] = ' '.join(''.join(o['data']['text/html']) for o in outputs(nb, 'text/html'))
    assert 'LSF beats SYN under replace' in html['lsf'] and 'greedy beats vanilla' not in html['lsf']
    assert 'greedy beats vanilla under replace' in html['entropy'] and 'LSF beats SYN' not in html['entropy']
    names = sorted(p.name for p in Path(root).glob('digits-*'))
    assert sum(n.startswith('digits-lsf-') for n in names) == 3 and sum(n.startswith('digits-entropy-') for n in names) == 2
    nb = pm.execute_notebook(str(NBS / 'protocols.ipynb'), str(tmp_path / 'protocols.ipynb'), cwd=str(tmp_path),
                             parameters=dict(preset='smoke', seeds=[0], root=root, overrides=tiny, n_ole=40),
                             progress_bar=False)
    assert len(outputs(nb, 'image/png')) >= 5          # 3 OLE heatmaps, a confidence plot, the picks
    text = ' '.join(''.join(o['data']['text/html']) for o in outputs(nb, 'text/html'))
    assert 'EMA+dropout' in text and 'threshold_decay' in text and 't_star' in text
