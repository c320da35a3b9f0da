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


def test_setup_py_installs_the_console_script():
    c = settings()
    assert c['console_scripts'] == 'scollapse-run=scollapse.loop:main'
    assert "entry_points={'console_scripts': c['console_scripts'].split()}" in (ROOT / 'setup.py').read_text()
