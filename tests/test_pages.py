"""The committed results pages are exactly what the files in results/ generate (`make results-pages`), so no stale
number survives in results/**/README.md or in the README's generated summary blocks."""
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from scollapse.page_tables import result_folders
from scollapse.pages import PAGE, PROJECTION, marker, readme_datasets, results_pages, stale_pages, write_pages

REPO = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250   # the bound on the top README
FIX = 'run `make results-pages` (python -m scollapse.pages) and commit the pages'


@pytest.fixture(scope='module')
def pages():
    """Every page generated from the repository's results/, with the paths the committed files have."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)   # pages hold relative links: generate them from the repository root, as the Makefile does
        generated = results_pages('results', 'README.md')
    return {REPO / p: text for p, text in generated.items()}


def test_committed_pages_are_what_the_files_generate(pages):
    stale = [str(p.relative_to(REPO)) for p in stale_pages(pages)]
    assert not stale, f'stale results pages: {stale}; {FIX}'


def test_every_results_folder_has_a_page_linked_from_the_index(pages):
    folders = result_folders(REPO / 'results')
    assert folders, 'no results folder with exported cells found'
    index = pages[REPO / 'results' / PAGE]
    for f in folders:
        assert f / PAGE in pages
        assert f'({f.relative_to(REPO / "results").as_posix()}/{PAGE})' in index


def test_readme_is_short_and_its_summaries_are_generated(pages):
    text = pages[REPO / 'README.md']
    assert len(text.splitlines()) <= README_MAX_LINES
    datasets = {f.parent.name for f in result_folders(REPO / 'results')}
    assert set(readme_datasets(text)) == datasets | {PROJECTION}, 'every dataset with results needs a marked block'
    hand_written = text
    for d in datasets | {PROJECTION}:
        block = re.escape(marker('begin', d)) + '.*?' + re.escape(marker('end', d))
        hand_written = re.sub(block, '', hand_written, flags=re.S)
    assert '±' not in hand_written, 'a mean ± sd outside the generated blocks is a hand-written number'


def test_a_changed_result_makes_its_pages_stale(tmp_path, monkeypatch):
    """The check can fail: after a cell's metric changes, its folder's page and the index no longer match."""
    folder = result_folders(REPO / 'results')[-1]
    copy = tmp_path / 'results' / folder.parent.name / folder.name
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns('*.png', '*.ipynb', PAGE))
    monkeypatch.chdir(tmp_path)
    write_pages(results_pages('results', 'README.md'))
    assert not stale_pages(results_pages('results', 'README.md'))
    metrics = sorted(copy.glob('*/metrics.csv'))[0]
    rows = pd.read_csv(metrics)
    rows.loc[rows.generation == 1, 'fid'] += 1.0
    rows.to_csv(metrics, index=False)
    stale = stale_pages(results_pages('results', 'README.md'))
    assert Path('results') / folder.parent.name / folder.name / PAGE in stale
