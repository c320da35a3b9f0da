"""Two CPU processes through `accelerate launch` (gloo) against one process: same training, samples, run directory."""
import json, os, shutil, socket, subprocess, sys
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from scollapse.loop import LoopConfig, run_loop

LAUNCH = [sys.executable, '-m', 'accelerate.commands.launch', '--multi_gpu', '--num_processes', '2',
          '--num_machines', '1', '--mixed_precision', 'no', '--dynamo_backend', 'no']
LOOP_KW = dict(preset='smoke', paradigm='accumulate_subsample', filter='lsf', progress=False)   # the loop compared
LOOP_PAIRS = ['preset=smoke', 'paradigm=accumulate_subsample', 'filter=lsf', 'progress=false']    # as scollapse-run's


def free_port() -> int:
    """A TCP port that nothing listens on now (the OS picks it): runs side by side never collide on 29500."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def launch(args, cwd) -> subprocess.CompletedProcess:
    """Run `accelerate launch` with two CPU processes; its exit status and output."""
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}   # every process, and the main process alone, on one thread
    return subprocess.run(LAUNCH + ['--main_process_port', str(free_port())] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def launch_output(r: subprocess.CompletedProcess) -> str:
    """The end of a launch's stdout and stderr, for a failing assert."""
    return r.stdout[-3000:] + r.stderr[-3000:]


@pytest.fixture(scope='module')
def launched(tmp_path_factory, cache_dir):
    """One launch for both tests (each launch costs three processes importing torch): tests/dist_check.py writes
    dc.json (training and sampling, two processes against one), then runs the loop (LOOP_PAIRS) into two/ on cache2,
    its own generation 0 (trained by the two processes) beside copies of the shared judge and encoder."""
    run_dir = tmp_path_factory.mktemp('dist')
    cache2 = run_dir / 'cache2'
    for shared in ('judge', 'encoder'):
        shutil.copytree(cache_dir / shared, cache2 / shared)
    r = launch([str(Path(__file__).parent / 'dist_check.py'), str(run_dir / 'dc.json'), *LOOP_PAIRS,
                f'out_dir={run_dir / "two"}', f'cache_dir={cache2}'], run_dir)
    return run_dir, r


def test_two_processes_train_and_sample_like_one(launched):
    run_dir, r = launched
    assert (run_dir / 'dc.json').exists(), launch_output(r)   # written before the loop starts: its failure aside
    check_dist_result(json.loads((run_dir / 'dc.json').read_text()))


def check_dist_result(r):
    """What tests/dist_check.py measured, two processes against one. Both split the global batch differently (16+16
    vs 32), so float32 sums differ in order: rounding ~1e-6 relative (u = 6e-8 times up to 2048 terms)."""
    assert r['world'] == 2 and r['n_steps'] == 9 and r['n_samples'] == 25
    # the global batch loss, reduced over processes: losses <= ~1.2, so 1e-5 is ~80 float32 ulps (measured 1)
    assert r['max_loss_diff'] < 1e-5 * max(1.0, r['max_loss'])
    # DDP must average the gradients: with plain SGD the first step's gradients and the weights after 9 steps
    # match to rounding (measured 1e-6 and 4e-6 of their scale); summed gradients are 2x: differences of 1.0
    assert r['grad_rel_diff'] < 1e-3 and abs(r['grad_norm_ratio'] - 1) < 1e-4
    assert r['sgd_weight_rel_diff'] < 1e-3
    # AdamW (train_ddpm's optimiser, invariant to a common gradient scale): each coordinate's step is normalised, so
    # rounding in a near-zero gradient moves that weight by a fraction of lr = 2e-3 (measured 4e-5 after 9 steps)
    assert r['max_weight_diff'] < 1e-3
    # batches dealt out round-robin, each with its own generator: the same model, batch shapes and thread count in
    # every process give the same arithmetic, so the uint8 samples are equal exactly
    assert r['samples_equal']


def test_two_process_loop_matches_one(tmp_path, cache_dir, launched):
    run_dir, r = launched
    assert r.returncode == 0, launch_output(r)
    dirs = {'one': tmp_path / 'one', 'two': run_dir / 'two'}
    one = run_loop(LoopConfig(out_dir=str(dirs['one']), cache_dir=str(cache_dir), **LOOP_KW))
    two = pd.read_csv(dirs['two'] / 'metrics.csv')
    assert list(two.generation) == list(one.generation) == [0, 1, 2]
    # The two runs' models are rounding apart (gen 0 trained by 2 processes: weights ~1e-5 apart), so LSF's
    # confidences agree to ~1e-7 (measured), not exactly: the selection's objective (mean selected confidence) agrees
    # to 1e-4; each generation keeps exactly n_train; only items within rounding of the top-n cut could trade places
    # (expected ~1e-5 such items among 60 spread over (0, 1)), so each source's count may move by at most 2.
    one_m = pd.read_csv(dirs['one'] / 'metrics.csv')
    np.testing.assert_allclose(two.lsf_conf_selected, one_m.lsf_conf_selected, rtol=1e-4)
    c1, c2 = (pd.read_csv(dirs[d] / 'composition.csv').set_index(['generation', 'source'])['count']
              for d in ('one', 'two'))
    c1, c2 = c1.align(c2, fill_value=0)
    assert c1.groupby(level=0).sum().equals(c2.groupby(level=0).sum())
    assert ((c1 - c2).abs() <= 2).all(), pd.concat([c1, c2], axis=1).to_string()
    # samples rounding apart move FID by ~1e-5 relative (measured 3e-5); one of the 60 evaluation samples changing
    # its nearest neighbours or class moves precision, recall or accuracy by 1/60 < 0.02
    for m, tol in (('fid', 0.01), ('precision', 0.02), ('recall', 0.02), ('class_accuracy', 0.02)):
        rel = (two[m] - one[m]).abs() / (one[m].abs() if m == 'fid' else 1)
        assert (rel <= tol).all(), (m, one[m].tolist(), two[m].tolist())
    c1, c2 = (json.loads((dirs[d] / 'config.json').read_text()) for d in ('one', 'two'))
    for c in (c1, c2): c['loop'].pop('out_dir'); c['loop'].pop('cache_dir')
    assert c1 == c2
    assert not list(dirs['two'].rglob('*.tmp*'))   # one writer: no half-written files left behind
