"""A run is resolved once: the record keeps the names of run folders and caches, reads as a LoopConfig wherever one
was read, and accepts the run folders committed in results/ (written before config.json had an 'effects' section)."""
import json
import pickle
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from scollapse.config import LoopConfig, run_name
from scollapse.resolve import RunConfig, resolve_config, is_resolved
from scollapse.rundir import config_differences, config_record
from scollapse.artefacts import gen0_path
from scollapse.compare import cell_config

RESULTS = Path(__file__).resolve().parents[1] / 'results'


@pytest.mark.parametrize('method', ['ACU', 'ACU-LSF', 'ACUR', 'SYN', 'SYN-ADD'])
def test_committed_cells_are_still_the_configuration_cell_config_resolves_to(method):
    folder = RESULTS / 'fashion_mnist' / 'common'
    cfg = resolve_config(cell_config(method, 0, 'fashion_mnist', 'cpu', str(folder)))
    recorded = json.loads((Path(cfg.out_dir) / 'config.json').read_text())
    assert 'effects' not in recorded and 'effects' in config_record(cfg)   # written before the new section
    assert config_differences(recorded, cfg) == {}
    assert config_differences(recorded, replace(cfg, seed=1, out_dir=None)) == {'loop.seed': (0, 1)}


def test_run_names_and_gen0_paths_are_pinned():
    # the values the code gave before resolve_config returned a RunConfig: every committed folder and cache has them
    assert run_name(resolve_config(LoopConfig(protocol='lsf', filter='lsf'))) == 'digits-lsf-accumulate_subsample-lsf-cpu-s0'
    assert resolve_config(LoopConfig(fresh_fraction=0.5)).out_dir == \
        'runs/digits-accumulate_subsample-random-cpu-s0-2d77954b6c'
    assert gen0_path(LoopConfig(preset='smoke', cache_dir='c')).name == 'digits-n60-s0-smoke-5282d5b22a.pt'
    assert gen0_path(LoopConfig(dataset='fashion_mnist', seed=2, cache_dir='c')).name == \
        'fashion_mnist-n500-g10000-s2-cpu-ca1ab6fe32.pt'


def test_a_resolved_record_reads_as_its_loop_config_and_resolves_to_itself():
    rc = resolve_config(LoopConfig(preset='smoke', protocol='entropy', paradigm='replace', filter='greedy'))
    assert isinstance(rc, RunConfig) and isinstance(rc, LoopConfig) and resolve_config(rc) is rc
    assert set(asdict(rc)) == set(asdict(LoopConfig()))                     # config.json's loop section, sweep's params
    assert not rc.model_cfg.conditional and rc.model_config() is rc.model_cfg
    assert rc.effects['protocol']['model.conditional'] == [True, False]
    assert pickle.loads(pickle.dumps(rc)) == rc and is_resolved(pickle.loads(pickle.dumps(rc)))   # a sweep's job
    with pytest.raises(AttributeError, match='resolved RunConfig'):
        rc.seed = 3
    moved = replace(rc, out_dir='/elsewhere')                                 # sweep's absolute folders
    assert not is_resolved(moved) and resolve_config(moved).out_dir == '/elsewhere'
