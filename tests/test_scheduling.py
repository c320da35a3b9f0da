"""`make test`'s pytest hands out the longest test files first (tests/conftest.py's LONGEST_FIRST)."""
import re
from pathlib import Path
from types import SimpleNamespace

from conftest import LONGEST_FIRST, longest_first

TESTS = Path(__file__).parent


def test_longest_first_names_test_files_that_exist():
    assert not [n for n in LONGEST_FIRST if not (TESTS / n).is_file()], 'a renamed test file: update LONGEST_FIRST'
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)


def test_longest_first_moves_those_files_ahead_and_keeps_the_rest_in_order():
    names = ['test_a.py', LONGEST_FIRST[1], 'test_b.py', LONGEST_FIRST[0], 'test_a.py']
    items = [SimpleNamespace(path=TESTS / n, i=i) for i, n in enumerate(names)]
    longest_first(items)
    assert [it.i for it in items] == [3, 1, 0, 2, 4]


def test_make_test_keeps_the_collection_order():
    """xdist's default reorders files by their number of tests, which would undo LONGEST_FIRST."""
    pytest_line = re.search(r'^PYTEST :=(.*)$', (TESTS.parent / 'Makefile').read_text(), re.M).group(1)
    assert '--dist loadfile' in pytest_line and '--no-loadscope-reorder' in pytest_line
