"""Shared fixtures: one classifier/gen-0 cache per test session, tiny run configurations."""
import pytest


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: paper-scale or long runs (opt-in: pytest -m slow)')


def pytest_collection_modifyitems(config, items):
    if config.getoption('-m'):
        return
    skip = pytest.mark.skip(reason='slow: run with `pytest -m slow`')
    for it in items:
        if 'slow' in it.keywords:
            it.add_marker(skip)


@pytest.fixture(scope='session')
def cache_dir(tmp_path_factory):
    """A cache shared by every loop test (feature classifier and gen-0 models are trained once)."""
    return tmp_path_factory.mktemp('cache')
