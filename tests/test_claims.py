"""The claims as a table of named rows give the scoreboard the single claims function gave before the split."""
from pathlib import Path
import pandas as pd

from scollapse.compare import claims_scoreboard, collect_results, result_ole
from scollapse.claims import CLAIMS, Claim

ROOT = Path(__file__).parent.parent
BEFORE = Path(__file__).parent / 'fixtures' / 'claims_before_split.csv'   # written by the function before the split


def test_fashion_scoreboard_equals_the_one_before_the_split():
    folder = ROOT / 'results' / 'fashion_mnist' / 'common'
    board = claims_scoreboard(collect_results(folder), result_ole(folder, 'SYN'))
    before = pd.read_csv(BEFORE, dtype=str, keep_default_na=False)
    assert list(board.columns) == list(before.columns)
    assert board.astype(str).to_dict('records') == before.to_dict('records')
    assert (board.verdict != 'not run').sum() == 19            # the OLE rows included: they read result_ole
    assert board.set_index('claim').loc['OLE is U-shaped in t at gen 0 (interior minimum)', 'n_seeds'] == 2


def test_claims_are_named_rows_with_unique_texts():
    assert all(isinstance(c, Claim) for c in CLAIMS) and len(CLAIMS) == 32
    assert len({c.text for c in CLAIMS}) == len(CLAIMS)
    assert {c.paper for c in CLAIMS} == {'control', 'both', 'LSF', 'entropy', 'literature', 'ours'}
