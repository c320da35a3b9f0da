"""A local submitit sweep of the comparison matrix: jobs run run_loop.ipynb, resubmission resumes, compare collects."""
from pathlib import Path

import pytest

from scollapse.sweep import submit_matrix, wait_all
from scollapse.compare import collect, cell_config
from scollapse.loop import gen_dir

from conftest import TINY_SIZES as TINY
METH, SEEDS = ['SYN', 'ACUR'], [1]   # two cells (a job each, run side by side), at a seed other than the default


def test_local_sweep_runs_resumes_and_is_collected(tmp_path, seeded):
    root = seeded(tmp_path / 'cmp' / '_cache').parent
    kw = dict(preset='smoke', root=root, overrides=TINY, folder=tmp_path / 'submitit', threads=1)
    jobs, table = submit_matrix(METH, SEEDS, **kw)
    assert len(jobs) == len(METH) * len(SEEDS) and (table.status == 'submitted').all()
    res = wait_all(jobs)
    assert (res.error == '').all(), res.to_string()
    df = collect(METH, SEEDS, preset='smoke', root=root, overrides=TINY)
    assert len(df) == 3 * len(METH) * len(SEEDS) and df.complete.all()   # generations 0..2 of every cell
    for m in METH:
        for s in SEEDS:   # each job left its executed notebook in the run directory
            assert (tmp_path / cell_config(m, s, preset='smoke', root=root, overrides=TINY).out_dir / 'run_loop.ipynb').exists()
    # a finished matrix submits nothing
    jobs2, table2 = submit_matrix(METH, SEEDS, **kw)
    assert jobs2 == [] and (table2.status == 'done before').all()
    # a cell that lost its last generation (as if pre-empted) resumes: only generation 2 is redone
    out = tmp_path / cell_config('SYN', 1, preset='smoke', root=root, overrides=TINY).out_dir
    keep = (gen_dir(out, 1) / 'samples.npz').stat().st_mtime_ns
    (gen_dir(out, 2) / 'row.json').unlink()
    jobs3, table3 = submit_matrix(METH, SEEDS, **kw)
    assert len(jobs3) == 1 and (wait_all(jobs3).error == '').all()
    assert (gen_dir(out, 2) / 'row.json').exists() and (gen_dir(out, 1) / 'samples.npz').stat().st_mtime_ns == keep
    assert collect(METH, SEEDS, preset='smoke', root=root, overrides=TINY).complete.all()


def test_sweep_crosses_every_method_with_every_seed(tmp_path):
    # every cell of a 2 x 2 matrix recorded as finished: nothing is submitted, and the table lists each (method, seed)
    kw = dict(preset='smoke', root=tmp_path / 'cmp', overrides=TINY, folder=tmp_path / 's')
    seeds = [0, 1]
    for m in METH:
        for s in seeds:
            out = Path(cell_config(m, s, preset='smoke', root=tmp_path / 'cmp', overrides=TINY).out_dir)
            for g in range(TINY['generations'] + 1):
                gen_dir(out, g).mkdir(parents=True)
                (gen_dir(out, g) / 'row.json').write_text('{}')
    jobs, table = submit_matrix(METH, seeds, **kw)
    assert jobs == [] and (table.status == 'done before').all()
    assert sorted(zip(table.method, table.seed)) == sorted((m, s) for m in METH for s in seeds)


def test_bad_sweep_input_fails_before_submitting(tmp_path):
    with pytest.raises(ValueError, match='unknown'):
        submit_matrix(['SYN', 'nope'], [0], preset='smoke', root=tmp_path / 'cmp', folder=tmp_path / 's')
    with pytest.raises(ValueError, match="'slurm', 'local'"):
        submit_matrix(['SYN'], [0], preset='smoke', root=tmp_path / 'cmp', cluster='k8s', folder=tmp_path / 's')
    assert not (tmp_path / 's').exists()


def test_failed_cell_reports_its_notebook_exception_and_logs(tmp_path):
    # passes submit (datasets are looked for inside the notebook), then fails in run_loop.ipynb
    kw = dict(dataset='mnist', preset='smoke', root=tmp_path / 'cmp', folder=tmp_path / 'submitit', threads=1,
              overrides={**TINY, 'data_root': str(tmp_path / 'no-data')})
    jobs, table = submit_matrix(['SYN'], [0], **kw)
    err = wait_all(jobs).error[0]
    executed = Path(table.out_dir[0]).resolve() / 'run_loop.ipynb'
    assert 'DatasetNotFoundError: MNIST not found' in err, err            # the exception raised in the notebook
    assert f'(executed notebook: {executed})' in err and executed.exists()
    assert err.endswith(f'; log: {jobs[0].paths.stderr}') and jobs[0].paths.stderr.exists()


def test_a_job_process_loads_no_torch_before_its_notebook(tmp_path):
    """A submitted job pickles a plain LoopConfig with the resolved cell's fields: unpickling it (what submitit's job
    process does first) imports no torch, so a job pays for torch once, in its notebook's kernel."""
    import pickle
    import subprocess
    import sys
    from dataclasses import asdict, fields
    from scollapse.config import LoopConfig
    from scollapse.resolve import resolve_config
    from scollapse.sweep import CellJob
    cfg = resolve_config(cell_config('ACU-LSF', 1, preset='smoke', root=tmp_path / 'cmp', overrides=TINY))
    job = CellJob(cfg, threads=1)
    assert type(job.cfg) is LoopConfig
    assert {f.name: getattr(cfg, f.name) for f in fields(LoopConfig) if f.name not in ('out_dir', 'cache_dir')} == \
        {k: v for k, v in asdict(job.cfg).items() if k not in ('out_dir', 'cache_dir')}
    assert Path(job.cfg.out_dir).is_absolute() and Path(job.cfg.out_dir).name == Path(cfg.out_dir).name
    (tmp_path / 'job.pkl').write_bytes(pickle.dumps(job))
    code = "import pickle, sys; pickle.loads(open('job.pkl', 'rb').read()); print(sorted({'torch', 'diffusers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '[]', out.stdout
