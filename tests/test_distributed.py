"""Two CPU processes through `accelerate launch` (gloo) against one process: same training, samples, run directory."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest
from scollapse.loop import LoopConfig, run_loop, classifier_path

LAUNCH = [sys.executable, '-m', 'accelerate.commands.launch', '--multi_gpu', '--num_processes', '2',
          '--num_machines', '1', '--mixed_precision', 'no', '--dynamo_backend', 'no']


def launch(args, cwd):
    """Run `accelerate launch` with two CPU processes; fail with its output if it fails."""
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    r = subprocess.run(LAUNCH + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_two_processes_train_and_sample_like_one(tmp_path):
    out = tmp_path / 'dc.json'
    launch([str(Path(__file__).parent / 'dist_check.py'), str(out)], tmp_path)
    r = json.loads(out.read_text())
    assert r['world'] == 2 and r['n_steps'] == 9 and r['n_samples'] == 25
    assert r['max_loss_diff'] < 1e-5           # the global batch loss, reduced over processes
    assert r['max_weight_diff'] < 1e-3         # DDP-averaged gradients: the same steps up to float rounding
    assert r['samples_equal']                  # batches dealt out round-robin, each with its own generator


def test_two_process_loop_matches_one(tmp_path, cache_dir):
    kw = dict(preset='smoke', paradigm='accumulate_subsample', filter='lsf', progress=False)
    one = run_loop(LoopConfig(out_dir=str(tmp_path / 'one'), cache_dir=str(cache_dir), **kw))
    cache2 = tmp_path / 'cache2'   # its own gen-0 (trained by the two processes); the same feature classifier
    clf = classifier_path(LoopConfig(cache_dir=str(cache2)))
    clf.parent.mkdir(parents=True); shutil.copy(classifier_path(LoopConfig(cache_dir=str(cache_dir))), clf)
    launch(['-m', 'scollapse.loop', 'preset=smoke', 'paradigm=accumulate_subsample', 'filter=lsf', 'progress=false',
            f'out_dir={tmp_path / "two"}', f'cache_dir={cache2}'], tmp_path)
    two = pd.read_csv(tmp_path / 'two' / 'metrics.csv')
    assert list(two.generation) == list(one.generation) == [0, 1, 2]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / 'one' / 'composition.csv'),
                                  pd.read_csv(tmp_path / 'two' / 'composition.csv'))
    for m, tol in (('fid', 0.01), ('precision', 0.02), ('recall', 0.02), ('class_accuracy', 0.02)):
        rel = (two[m] - one[m]).abs() / (one[m].abs() if m == 'fid' else 1)
        assert (rel <= tol).all(), (m, one[m].tolist(), two[m].tolist())
    c1, c2 = (json.loads((tmp_path / d / 'config.json').read_text()) for d in ('one', 'two'))
    for c in (c1, c2): c['loop'].pop('out_dir'); c['loop'].pop('cache_dir')
    assert c1 == c2
    assert not list((tmp_path / 'two').rglob('*.tmp*'))   # one writer: no half-written files left behind
