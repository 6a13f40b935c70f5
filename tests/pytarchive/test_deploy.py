"""What installs pytarchive: the systemd unit, the executable the seed symlinks, the console script."""

import configparser
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

from pytarchive import client, config, service

REPO = Path(__file__).resolve().parents[2]


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str
    parser.read(REPO / 'deploy' / 'pytarchive.service')
    return parser


def test_the_unit_runs_the_service_as_root_with_the_default_config():
    words = shlex.split(unit()['Service']['ExecStart'])
    assert words[0] == '/opt/pytarchive/.venv/bin/python'
    assert words[1:4] == ['-m', 'pytarchive.service', '--config']
    assert words[4] == config.DEFAULT_PATH
    assert unit()['Service']['WorkingDirectory'] == '/opt/pytarchive'  # where `-m pytarchive` is found
    assert service.main.__module__ == 'pytarchive.service'


def test_the_unit_stops_gently_and_does_not_restart_on_settings_errors():
    settings = unit()['Service']
    assert settings['User'] == 'root'
    assert settings['Restart'] == 'on-failure'
    # SIGTERM to the service alone: mkltfs and the ltfs daemon must not be killed under it.
    assert settings['KillMode'] == 'mixed' and settings['KillSignal'] == 'SIGTERM'
    assert re.fullmatch(r'\d+min', settings['TimeoutStopSec']) and int(settings['TimeoutStopSec'][:-3]) >= 10
    assert settings['RestartPreventExitStatus'].split() == ['2', '3']  # usage, config: see common.errors


def test_the_executable_runs_the_client_through_a_symlink(tmp_path):
    script = REPO / 'pytarchive' / 'pytarchive'
    assert os.access(script, os.X_OK)
    assert script.read_text().startswith('#!/usr/bin/env python3\n')
    link = tmp_path / 'bin' / 'pytarchive'
    link.parent.mkdir()
    link.symlink_to(script)
    missing = tmp_path / 'no.sock'
    # From elsewhere, with the system's python3 first on PATH (it lacks the project's dependencies,
    # so the script must switch to the project's .venv), as a shell on the library host would.
    done = subprocess.run([str(link), '--socket', str(missing), 'queue'], cwd=tmp_path, capture_output=True,
                          text=True, env={'PATH': '/usr/bin:/bin'}, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (
        4, '', f'pytarchive: the pytarchive service is not running (no socket at {missing})\n')
    help_text = subprocess.run([str(link), '--help'], capture_output=True, text=True, timeout=60).stdout
    assert help_text.startswith('usage: pytarchive ')


def test_pyproject_installs_the_pytarchive_command():
    project = tomllib.loads((REPO / 'pyproject.toml').read_text())
    assert project['project']['scripts'] == {'pytarchive': 'pytarchive.client:main'}
    assert callable(client.main)
    packages = project['tool']['setuptools']['packages']['find']['include']
    for package in ('common', 'pytarchive', 'wormlock', 'lockmanager', 'sim'):
        assert f'{package}*' in packages and (REPO / package / '__init__.py').exists()
