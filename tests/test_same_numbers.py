"""A refactor does not change the numbers: each cell of tests/same_numbers.py gives the metrics recorded in
tests/fixtures/same_numbers.json, to the last digit on the CPU that recorded them, within a tolerance on another."""
import json
import math

import pytest

import same_numbers
from conftest import THREADS, seed_cache

RECORDED = json.loads(same_numbers.FIXTURE.read_text())
SAME_CPU = same_numbers.cpu_name() == RECORDED['cpu']   # the fixture's CPU: exact equality
# Another x86 CPU rounds float32 reductions in another order, so training, sampling and the metrics move by
# rounding: FID and KID within 5 % relative, the ratio metrics (precision, recall, density, coverage, class
# accuracy, real fraction; steps of 1/20 at n_eval=20) within 0.1 absolute, i.e. two of the 20 evaluation samples.
REL_TOL = {'fid': 0.05, 'kid': 0.05}
ABS_TOL = 0.1
CPU_CELL = 'cpu ACU-LSF s0'   # the digits cpu cell (about 15 min here): opt-in, `pytest -m slow`


def assert_same_rows(rows: list[dict], recorded: list[dict]) -> None:
    """rows equal the recorded ones exactly on the recording CPU, else within REL_TOL / ABS_TOL."""
    if SAME_CPU:
        assert rows == recorded
        return
    assert len(rows) == len(recorded) and all(r.keys() == w.keys() for r, w in zip(rows, recorded))
    for g, (r, w) in enumerate(zip(rows, recorded)):
        for k in w:
            ok = (math.isclose(r[k], w[k], rel_tol=REL_TOL[k]) if k in REL_TOL
                  else math.isclose(r[k], w[k], abs_tol=ABS_TOL))
            assert ok, (g, k, r[k], w[k])


def recorded_cells() -> list:
    """The fixture's cells as test parameters, the cpu cell marked slow."""
    return [pytest.param(name, marks=[pytest.mark.slow] if name == CPU_CELL else []) for name in RECORDED['cells']]


def test_the_fixture_holds_every_smoke_cell_of_same_numbers():
    smoke = {f'smoke {k}': {**same_numbers.SMOKE, **v} for k, v in same_numbers.SMOKE_CELLS.items()}
    assert {k: RECORDED['cells'][k]['config'] for k in smoke} == smoke   # recorded with today's configurations
    assert RECORDED['threads'] == THREADS   # the shared judge and encoder train at the recording's thread count
    if CPU_CELL in RECORDED['cells']:
        assert RECORDED['cells'][CPU_CELL]['config'] == same_numbers.CPU_CELL


@pytest.mark.parametrize('name', recorded_cells())
def test_cell_gives_the_recorded_numbers(name, tmp_path, cache_dir):
    """The cell in its own folder and cache, as recorded; its judge and encoder are copies of the shared ones, which
    train on the same images with the same seed and thread count (the judge and encoder do not depend on the cell)."""
    cell = RECORDED['cells'][name]
    seed_cache(cache_dir, tmp_path / 'cache')
    assert_same_rows(same_numbers.cell_metrics(cell['config'], tmp_path), cell['rows'])
