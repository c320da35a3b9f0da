"""The cells whose metrics a refactor must not change: a smoke cell of each paradigm (and of the LSF filter), and the
digits `cpu` ACU-LSF cell of seed 0. `python tests/same_numbers.py [--cpu]` records them in
tests/fixtures/same_numbers.json; tests/test_same_numbers.py runs the same cells and compares."""
import os
os.environ.setdefault('OMP_NUM_THREADS', '1')   # numpy's BLAS too: KID's last digits depend on its thread count
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch

FIXTURE = Path(__file__).parent / 'fixtures' / 'same_numbers.json'
METRICS = ('fid', 'kid', 'precision', 'recall', 'density', 'coverage', 'class_accuracy', 'real_fraction')
THREADS = 1   # torch CPU threads: a fixed count, so a reduction's order (and so the last digit) does not depend on it
SMOKE = dict(dataset='digits', preset='smoke', n_train=40, n_ref=40, n_eval=20, generations=2, progress=False,
             model_overrides={'epochs_gen0': 1, 'epochs_per_generation': 1, 'sampling_steps': 2})
SMOKE_CELLS = {   # one smoke cell per paradigm, plus LSF's filter under accumulate_subsample
    'SYN': dict(paradigm='replace', filter='none'),
    'SYN-ADD': dict(paradigm='replace_fresh', filter='none'),
    'ACU': dict(paradigm='accumulate', filter='none'),
    'ACUR': dict(paradigm='accumulate_subsample', filter='random'),
    'ACU-LSF': dict(paradigm='accumulate_subsample', filter='lsf'),
}
CPU_CELL = dict(dataset='digits', preset='cpu', paradigm='accumulate_subsample', filter='lsf', seed=0, progress=False)


def cpu_name() -> str:
    """The CPU's model name (the fixture's numbers are exact on this CPU only)."""
    for line in Path('/proc/cpuinfo').read_text().splitlines() if Path('/proc/cpuinfo').exists() else []:
        if line.startswith('model name'):
            return line.split(':', 1)[1].strip()
    return platform.processor()


def cell_metrics(cell: dict, root: Path) -> list[dict]:
    """Run one cell in `root` (its own cache) and return its metrics rows, rounded to 12 significant digits."""
    from scollapse.loop import LoopConfig, run_loop
    torch.set_num_threads(THREADS)
    df = run_loop(LoopConfig(**cell, out_dir=str(root / 'run'), cache_dir=str(root / 'cache')))
    return [{k: float(f'{r[k]:.12g}') for k in METRICS} for _, r in df.iterrows()]


def record(with_cpu_cell: bool) -> dict:
    """Run every cell and return the fixture's content."""
    out = {'cpu': cpu_name(), 'threads': THREADS, 'torch': torch.__version__, 'cells': {}}
    cells = {f'smoke {k}': {**SMOKE, **v} for k, v in SMOKE_CELLS.items()}
    if with_cpu_cell:
        cells['cpu ACU-LSF s0'] = CPU_CELL
    for name, cell in cells.items():
        with tempfile.TemporaryDirectory() as d:
            out['cells'][name] = {'config': cell, 'rows': cell_metrics(cell, Path(d))}
            print(name, out['cells'][name]['rows'][-1], flush=True)
    return out


if __name__ == '__main__':
    FIXTURE.write_text(json.dumps(record('--cpu' in sys.argv), indent=1) + '\n')
    print(f'written: {FIXTURE}')
