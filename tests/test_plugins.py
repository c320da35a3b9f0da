"""Plug-in filters: registered, by dotted path, by entry point; every mistake refused before compute, naming it."""
import importlib.metadata
import sys

import numpy as np
import pandas as pd
import pytest

import scollapse.filters
import scollapse.registry
from scollapse.filters import register_filter, get_filter, check_filter_options
from scollapse.loop import LoopConfig, run_loop, resolve_config

from conftest import TINY

PLUGIN = '''
import numpy as np

def newest(pool, n, ctx):
    """The n items of the most recent source (ties by pool order)."""
    order = np.argsort(-pool.source, kind='stable')
    return np.sort(order[:n])
newest.filter_options = {'unused': 1}

def two(pool, n):
    return np.arange(n)
'''


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    (tmp_path / 'my_selectors.py').write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield 'my_selectors'
    sys.modules.pop('my_selectors', None)


def test_dotted_path_plugin_runs_in_the_loop(tmp_path, cache_dir, plugin_module):
    cfg = LoopConfig(**TINY, filter='my_selectors:newest', out_dir=str(tmp_path / 'run'), cache_dir=str(cache_dir))
    assert 'my_selectors-newest' in resolve_config(LoopConfig(**TINY, filter='my_selectors:newest')).out_dir
    run_loop(cfg)
    comp = pd.read_csv(tmp_path / 'run' / 'composition.csv')
    g2 = comp[comp.generation == 2].set_index('source')['count']
    assert g2.get('gen_1', 0) == 40 and g2.get('real', 0) == 0   # it kept only the newest samples
    with pytest.raises(ValueError, match="unknown filter_options key for filter='my_selectors:newest' 'unusd'; did you mean 'unused'"):
        resolve_config(LoopConfig(**TINY, filter='my_selectors:newest', filter_options={'unusd': 2}))


@pytest.mark.parametrize('path,msg', [('no_such_module:f', 'does not import'), ('my_selectors:missing', 'does not import'),
                                      ('my_selectors:two', r'must be a function f\(pool, n, ctx\)')])
def test_bad_dotted_paths_are_refused_before_compute(tmp_path, plugin_module, path, msg):
    with pytest.raises(ValueError, match=msg):
        run_loop(LoopConfig(**TINY, filter=path, out_dir=str(tmp_path / 'run'), cache_dir=str(tmp_path / 'cache')))
    assert not (tmp_path / 'run').exists() and not (tmp_path / 'cache').exists()


def test_registered_plugin_declares_its_options(monkeypatch):
    monkeypatch.setattr(scollapse.registry, '_PLUGINS', {})   # the registry's own dict
    @register_filter('every_other', options={'start': 0})
    def every_other(pool, n, ctx):
        return np.arange(ctx.options['start'], ctx.options['start'] + 2 * n, 2)
    assert get_filter('every_other') is every_other
    check_filter_options('every_other', {'start': 1})
    with pytest.raises(ValueError, match="did you mean 'start'"):
        check_filter_options('every_other', {'strat': 1})
    with pytest.raises(ValueError, match='shadows a built-in'):
        register_filter('greedy')(every_other)


def test_registered_plugin_declares_its_paradigms(tmp_path, monkeypatch):
    monkeypatch.setattr(scollapse.registry, '_PLUGINS', {})   # the registry's own dict
    @register_filter('first_n', paradigms=('replace', 'replace_fresh'))
    def first_n(pool, n, ctx):
        return np.arange(n)
    assert resolve_config(LoopConfig(**TINY, paradigm='replace', filter='first_n')).filter == 'first_n'
    with pytest.raises(ValueError, match="selects only from the pool of paradigm 'replace' or 'replace_fresh' "
                                         r"\(paradigm='accumulate_subsample'\); use paradigm='replace'"):
        run_loop(LoopConfig(**TINY, filter='first_n', out_dir=str(tmp_path / 'run'), cache_dir=str(tmp_path / 'cache')))
    assert not (tmp_path / 'run').exists() and not (tmp_path / 'cache').exists()   # refused before compute


class FakeEntryPoint:
    def __init__(self, name, value, fn=None):
        self.name, self.value, self.fn = name, value, fn
    def load(self):
        if self.fn is None: raise ImportError('no module named broken_pkg')
        return self.fn


@pytest.mark.parametrize('ep,msg', [
    (FakeEntryPoint('broken', 'broken_pkg:f'), "filter plug-in 'broken' .* failed to load: ImportError"),
    (FakeEntryPoint('lsf', 'other_pkg:lsf', lambda pool, n, ctx: None), "'lsf' .* shadows a built-in"),
    (FakeEntryPoint('bad_sig', 'pkg:f', lambda pool: None), r"'bad_sig' must be a function f\(pool, n, ctx\)"),
])
def test_entry_point_plugins_that_fail_are_named(tmp_path, monkeypatch, ep, msg):
    monkeypatch.setattr(importlib.metadata, 'entry_points', lambda group=None: [ep] if group == 'scollapse.filters' else [])
    with pytest.raises(ValueError, match=msg):
        run_loop(LoopConfig(**TINY, filter='random', out_dir=str(tmp_path / 'run'), cache_dir=str(tmp_path / 'cache')))
    assert not (tmp_path / 'run').exists()


def test_entry_point_plugin_is_available(monkeypatch):
    fn = lambda pool, n, ctx: np.arange(n)
    monkeypatch.setattr(importlib.metadata, 'entry_points',
                        lambda group=None: [FakeEntryPoint('first', 'pkg:first', fn)] if group == 'scollapse.filters' else [])
    assert get_filter('first') is fn and 'first' in scollapse.filters.available_filters()
