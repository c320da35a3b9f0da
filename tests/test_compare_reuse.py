"""compare.ipynb -p reuse: cells that another protocol's results already hold as the same experiment are copied
(with reused.json), not run, and the matrix renders from them."""
import json
import shutil
from pathlib import Path

import papermill as pm

from test_notebooks import NBS, outputs

FIXTURE = Path(__file__).parent / 'fixtures' / 'results_smoke'   # SYN and ACUR, seeds 0 and 1, smoke, common


def test_compare_reuses_the_same_experiment(tmp_path):
    other = tmp_path / 'other_protocol'
    shutil.copytree(FIXTURE, other)
    for p in other.glob('*/config.json'):   # the same cells, recorded under another protocol's name
        record = json.loads(p.read_text())
        record['loop']['protocol'] = 'lsf'
        p.write_text(json.dumps(record))
    nb = pm.execute_notebook(str(NBS / 'compare.ipynb'), str(tmp_path / 'out.ipynb'), cwd=str(tmp_path),
                             parameters=dict(preset='smoke', methods=['SYN', 'ACUR'], seeds=[0, 1], ole=False,
                                             root=str(tmp_path / 'cmp'), results=str(tmp_path / 'res'),
                                             reuse=[str(other)], progress=True),
                             progress_bar=False)
    text = ' '.join(''.join(o.get('text', '')) for c in nb.cells for o in c.get('outputs', []))
    assert '4 cells reused' in text
    assert not list((tmp_path / 'cmp').glob('digits-*'))                    # nothing ran
    reused = sorted(p.parent.name for p in (tmp_path / 'res').glob('*/reused.json'))
    assert reused == sorted(d.name for d in FIXTURE.iterdir() if d.is_dir())
    assert len(outputs(nb, 'image/png')) >= 2                                 # rendered from the reused cells
