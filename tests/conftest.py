"""Shared fixtures: the tiny run configuration (`TINY`, `tiny()`), and one trained cache per pytest run (judge,
selection encoder and the tiny generation-0 model), shared by every test file and by every pytest-xdist worker."""
import os

os.environ.setdefault('OMP_NUM_THREADS', '1')   # before torch loads: one thread per worker, kernel and subprocess

import shutil
from pathlib import Path

import pytest

from scollapse.cache import lock_for   # light (no torch): processes the tests spawn import this file cheaply

THREADS = 1                      # torch CPU threads per test process: no oversubscription under `pytest -n 2`
TINY_MODEL = {'epochs_gen0': 1, 'epochs_per_generation': 1, 'sampling_steps': 2}
TINY_SIZES = dict(n_train=40, n_ref=40, n_eval=20, generations=2, model_overrides=TINY_MODEL)   # matrix overrides
TINY = dict(dataset='digits', preset='smoke', progress=False, **TINY_SIZES)   # a LoopConfig's keywords
SHARED = ('judge', 'encoder')    # the cache folders that do not depend on a run's seed or size (one per dataset)


def tiny(tmp_path, cache_dir, name='run', **kw):
    """The tiny LoopConfig in tmp_path/name on the shared cache, with `kw` replacing TINY's fields."""
    from scollapse.loop import LoopConfig
    return LoopConfig(**{**TINY, 'out_dir': str(Path(tmp_path) / name), 'cache_dir': str(cache_dir), **kw})


def pytest_configure(config):
    import torch
    config.addinivalue_line('markers', 'slow: paper-scale or long runs (opt-in: pytest -m slow)')
    torch.set_num_threads(THREADS)


# the longest test files (seconds each under `make test`, measured 2026-12-04: 148, 147, 140, 107, 76, 47, 40, 33) go
# first: pytest-xdist's loadfile hands out whole files in collection order, and a long file started last keeps one
# worker busy while the other idles
LONGEST_FIRST = ('test_sweep.py', 'test_notebooks.py', 'test_notebooks_compare.py', 'test_cli.py', 'test_loop.py',
                 'test_cache.py', 'test_metrics.py', 'test_distributed.py')


def longest_first(items) -> None:
    """Reorder `items` in place: LONGEST_FIRST's files in that order, then the rest as collected."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda it: rank.get(it.path.name, len(rank)))


def pytest_collection_modifyitems(config, items):
    longest_first(items)
    if config.getoption('-m'):
        return
    skip = pytest.mark.skip(reason='slow: run with `pytest -m slow`')
    for it in items:
        if 'slow' in it.keywords:
            it.add_marker(skip)


def run_root(tmp_path_factory) -> Path:
    """The folder every worker of this pytest run shares (the basetemp, or its parent under pytest-xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base


@pytest.fixture(scope='session')
def cache_dir(tmp_path_factory):
    """The cache shared by every test of this run: the first worker to ask builds the judge, the encoder and TINY's
    generation-0 model (one thread, seeded), the others wait on its lock and reuse the files."""
    from scollapse.loop import prepare
    cache = run_root(tmp_path_factory) / 'cache'
    with lock_for(cache.with_name('cache.built')):
        if not cache.with_name('cache.built').exists():
            prepare(tiny(cache.with_name('cache-prebuild'), cache))
            cache.with_name('cache.built').touch()
    return cache


def seed_cache(cache_dir: Path, dst: Path) -> Path:
    """Copy the shared cache's judge and encoder into a run root's own cache `dst` (a matrix's `root/_cache`), so a
    test that needs a fresh root does not train them again; its generation-0 models are still its own."""
    for name in SHARED:
        shutil.copytree(cache_dir / name, dst / name, ignore=shutil.ignore_patterns('*.lock'), dirs_exist_ok=True)
    return dst


@pytest.fixture
def seeded(cache_dir):
    """`seeded(dst)`: the folder dst, holding a copy of the shared judge and encoder (see `seed_cache`)."""
    return lambda dst: seed_cache(cache_dir, Path(dst))
