"""Processes racing on one cache key build it once, and nobody reads a half-written file (scollapse.cache)."""
import json
import multiprocessing as mp
import os
import time
import traceback
from pathlib import Path

import pytest

CONTENT = 'first half|second half'
from conftest import TINY as TINY_G2

TINY = {**TINY_G2, 'generations': 1}   # generation 0 is all the race needs


def slow_build(tmp: Path, counter: Path) -> None:
    """Count the call, then write CONTENT in two halves with a pause (a reader in between sees half a file)."""
    with open(counter, 'a') as f:
        f.write(f'{os.getpid()}\n')
    with open(tmp, 'w') as f:
        f.write(CONTENT[:10])
        f.flush()
        time.sleep(0.5)
        f.write(CONTENT[10:])


def naive_build_once(path: Path, build) -> Path:
    """The pattern the issue reports: check, build to a fixed temporary name, rename (no lock)."""
    if not path.exists():
        tmp = path.with_name(path.name + '.tmp')
        build(tmp)
        os.replace(tmp, path)
    return path


def race_worker(kind: str, path: str, counter: str, barrier, out: str) -> None:
    """Wait for every racer, then get the cache entry with `kind` and record what this process read."""
    try:
        from scollapse.cache import build_once
        builder = build_once if kind == 'lock' else naive_build_once
        barrier.wait()
        p = builder(Path(path), lambda tmp: slow_build(tmp, Path(counter)))
        res = {'text': Path(p).read_text()}
    except Exception:
        res = {'error': traceback.format_exc()}
    Path(out).write_text(json.dumps(res))


def gen0_worker(cache_dir: str, barrier, out: str) -> None:
    """Build a tiny run's data, wait for every racer, then ensure (and load) the shared generation-0 model."""
    try:
        import torch
        torch.set_num_threads(1)
        from scollapse.loop import LoopConfig, resolve_config, ensure_gen0
        from scollapse.data import load_dataset, real_splits
        from scollapse.ddpm import load_checkpoint
        cfg = resolve_config(LoopConfig(**TINY, cache_dir=cache_dir, out_dir=str(Path(out).with_suffix(''))))
        x, y, spec = load_dataset(cfg.dataset)
        s = real_splits(x, y, spec, cfg.n_train, cfg.n_ref, seed=cfg.seed)
        barrier.wait()
        p, t = ensure_gen0(cfg, s.train_x, s.train_y)
        load_checkpoint(p)
        res = {'path': str(p), 't': t}
    except Exception:
        res = {'error': traceback.format_exc()}
    Path(out).write_text(json.dumps(res))


def race(target, n: int, args, folder: Path, timeout: float = 600) -> list[dict]:
    """Run `target(*args, barrier, out_i)` in n spawned processes that start together; their recorded results."""
    ctx = mp.get_context('spawn')
    barrier = ctx.Barrier(n)
    outs = [folder / f'result{i}.json' for i in range(n)]
    procs = [ctx.Process(target=target, args=(*args, barrier, str(o))) for o in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
        if p.is_alive():
            p.kill()
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return [json.loads(o.read_text()) for o in outs]


def test_build_once_builds_once_across_racing_processes(tmp_path):
    path, counter = tmp_path / 'cache' / 'entry.txt', tmp_path / 'calls.txt'
    res = race(race_worker, 4, ('lock', str(path), str(counter)), tmp_path)
    assert [r.get('error') for r in res] == [None] * 4, res
    assert len(counter.read_text().splitlines()) == 1           # built exactly once
    assert [r['text'] for r in res] == [CONTENT] * 4            # every process read the complete file
    assert sorted(f.name for f in path.parent.iterdir()) == ['entry.txt', 'entry.txt.lock']   # no temporary left


def test_the_race_breaks_the_unlocked_pattern(tmp_path):
    """Control: the same race on the old pattern builds several times (so the test above really races)."""
    path, counter = tmp_path / 'cache' / 'entry.txt', tmp_path / 'calls.txt'
    path.parent.mkdir()
    race(race_worker, 4, ('naive', str(path), str(counter)), tmp_path)
    assert len(counter.read_text().splitlines()) > 1            # every racer saw the file missing and built it


def test_ensure_gen0_trains_once_across_racing_processes(tmp_path):
    cache = tmp_path / 'cache'
    res = race(gen0_worker, 3, (str(cache),), tmp_path)
    assert [r.get('error') for r in res] == [None] * 3, res
    assert len({r['path'] for r in res}) == 1
    assert sum(r['t'] > 0 for r in res) == 1, res                # one process trained, the others loaded its file
    assert not list(cache.rglob('*.tmp*'))
