"""nbs/memorisation.ipynb runs end to end at smoke size: it runs the SYN and SYN-greedy cells under the entropy
protocol, exports them with the per-generation table and the plot, and with run=False only collects (here: from
the exported cells, the run folders gone). A file of its own so that pytest-xdist (--dist loadfile) runs it apart."""
import shutil

import pandas as pd
import papermill as pm

from test_notebooks import NBS, outputs

SMOKE = dict(preset='smoke', seeds=[0], n_train=40, n_ref=40, n_eval=20, generations=2, epochs=1, batch_size=64,
             model_extra={'sampling_steps': 2}, progress=False)


def test_memorisation_smoke(tmp_path, seeded):
    root, res = tmp_path / 'mem', tmp_path / 'results'
    seeded(root / '_cache')
    params = dict(SMOKE, root=str(root), results=str(res))
    nb = pm.execute_notebook(str(NBS / 'memorisation.ipynb'), str(tmp_path / 'out.ipynb'), cwd=str(tmp_path),
                             parameters=params, progress_bar=False)
    assert len(outputs(nb, 'image/png')) >= 1                 # the memorised share / GS / entropy curves
    assert (res / 'memorisation.png').read_bytes()[:4] == b'\x89PNG'
    cells = sorted(p.parent.name for p in (res / 'cells').glob('*/method.txt'))
    assert len(cells) == 2 and all('entropy-replace' in c for c in cells), cells
    table = pd.read_csv(res / 'per_generation.csv')
    assert set(table.method) == {'SYN', 'SYN-greedy'} and set(table.generation) == {0, 1, 2}
    assert table.memorization_pixel.between(0, 1).all() and (table.gs_pixel > 0).all()
    copies = pd.read_csv(res / 'real_copies.csv')
    assert len(copies) == 6 and copies.memorization_real.between(0, 1).all()
    # run=False only collects: with the run folders gone, the exported cells are read back and nothing runs
    shutil.rmtree(root)
    nb = pm.execute_notebook(str(NBS / 'memorisation.ipynb'), str(tmp_path / 'out2.ipynb'), cwd=str(tmp_path),
                             parameters=dict(params, run=False), progress_bar=False)
    text = ' '.join(''.join(o.get('text', '')) for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', []))
    assert 'cells found: 2' in text and not root.exists()
