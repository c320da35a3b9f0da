"""The installed `scollapse-run` console script: help generated from LoopConfig, exit codes, output."""
import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

from scollapse.loop import LoopConfig

SCRIPT = Path(sys.executable).parent / 'scollapse-run'   # installed by `pip install -e .` (setup.py entry_points)


def run_cli(*args, cwd):
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_script_is_installed_and_runs_the_cli(tmp_path):
    """The installed script itself runs the CLI: `--help` and `--check` (the resolved configuration; nothing runs)
    exit 0 with their output, a bad key exits 2 (a script left behind by an old install, or one bound to another
    function, fails here)."""
    assert SCRIPT.exists(), 'scollapse-run is not installed: setup.py must pass console_scripts as entry_points'
    r = run_cli('--help', cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == '', r.stderr
    assert all(f'  {f.name}=' in r.stdout for f in fields(LoopConfig))   # the help lists LoopConfig's fields
    r = run_cli('--check', 'preset=smoke', 'filter=lsf', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)                                           # the resolved configuration, as JSON
    assert rec['loop']['preset'] == 'smoke' and rec['loop']['filter'] == 'lsf' and rec['loop']['n_train'] == 60
    assert rec['loop']['out_dir'] == 'runs/digits-accumulate_subsample-lsf-smoke-s0'
    r = run_cli('--check', 'no_such_key=1', cwd=tmp_path)
    assert r.returncode == 2 and "unknown parameter 'no_such_key'" in r.stderr
    assert not (tmp_path / 'runs').exists()                              # --check runs nothing


def test_help_lists_every_field_with_type_default_and_doc(tmp_path):
    r = run_cli('--help', cwd=tmp_path)
    assert r.returncode == 0
    for f in fields(LoopConfig):
        assert f'  {f.name}=' in r.stdout, f.name
    assert "filter='auto'  [str]" in r.stdout and 'generations=None  [int | None]' in r.stdout
    assert "'auto' (paradigm default)" in r.stdout   # the field's comment is its doc


def test_bad_input_is_one_line_and_nonzero(tmp_path):
    r = run_cli('fitler=lsf', cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ''
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]   # one line, no traceback
    assert "unknown parameter 'fitler'; did you mean 'filter'?" in r.stderr
    r = run_cli('filter=lsf', 'generations=zero', cwd=tmp_path)
    assert r.returncode == 2 and "generations='zero' must be int" in r.stderr
    r = run_cli('lsf', cwd=tmp_path)
    assert r.returncode == 2 and 'key=value' in r.stderr
    assert not (tmp_path / 'runs').exists()


def test_smoke_run_exits_zero_and_prints_table_and_folder(tmp_path, cache_dir):
    r = run_cli('preset=smoke', f'cache_dir={cache_dir}', 'paradigm=replace', 'filter=none', 'n_train=40', 'n_ref=40', 'n_eval=20',
                'model_overrides={epochs_gen0: 1, epochs_per_generation: 1, sampling_steps: 2}', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    run_dir = out[-1].removeprefix('run directory: ')
    assert out[-1].startswith('run directory: ') and (tmp_path / run_dir / 'metrics.csv').exists()
    assert any(l.split()[:1] == ['generation'] for l in out)             # the metrics table's header
    assert sum(l.startswith('gen ') and ' done: fid ' in l for l in out) == 3   # a progress row per generation
    assert any(l.startswith('gen 1/2 train') for l in out)             # a line per finished stage


def test_bad_key_and_bad_type_are_refused_before_torch_loads(tmp_path):
    """A misspelt key and a value of the wrong type need no torch: the command line answers them at once."""
    code = ("import sys; from scollapse.cli import main; "
            "print(main(['fitler=lsf']), main(['generations=zero']), 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.stdout.split() == ['2', '2', 'False'], (r.stdout, r.stderr)
    assert "generations='zero' must be int or None, not str" in r.stderr
