"""Set-up files agree with settings.ini (the one list of requirements) and install the console script."""
from configparser import ConfigParser
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def settings():
    cfg = ConfigParser(delimiters=['='])
    cfg.read(ROOT / 'settings.ini', encoding='utf-8')
    return cfg['DEFAULT']


def test_environment_yml_pins_what_settings_ini_requires():
    c = settings()
    wanted = set(c['requirements'].split()) | set(c['dev_requirements'].split())
    env = yaml.safe_load((ROOT / 'environment.yml').read_text())
    pip = next(d['pip'] for d in env['dependencies'] if isinstance(d, dict))
    assert set(pip) - {'-e .'} == wanted


def setup_distribution(monkeypatch):
    """What setup.py passes to setuptools.setup, by running it up to the point where setup() has read its arguments
    (a commented-out or mistyped argument is missing here, whatever the file's text says)."""
    from distutils.core import run_setup
    monkeypatch.chdir(ROOT)   # setup.py reads settings.ini from the working directory
    return run_setup(str(ROOT / 'setup.py'), stop_after='init')


def test_setup_py_installs_the_console_script(monkeypatch):
    c = settings()
    assert c['console_scripts'].split('=')[0] == 'scollapse-run'
    eps = setup_distribution(monkeypatch).entry_points or {}   # None when setup() got no entry_points
    assert eps.get('console_scripts') == c['console_scripts'].split(), eps
    assert eps.get('scollapse.filters') == c['filter_plugins'].split(), eps


def test_installed_metadata_has_the_console_script():
    """The installed package (`pip install -e .`) declares the script that settings.ini names."""
    from importlib.metadata import entry_points
    name, target = settings()['console_scripts'].split('=')
    eps = entry_points(group='console_scripts', name=name)
    assert [ep.value for ep in eps] == [target]
    assert callable(next(iter(eps)).load())   # the module and function it names exist
