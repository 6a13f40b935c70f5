"""What installs pytarchive: the systemd unit, the client script the admin symlinks into
/usr/local/bin, and no package of the project installed into site-packages."""

import configparser
import grp
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

import pytest

from pytarchive import config
from pytarchive.service import server

REPO = Path(__file__).resolve().parents[2]


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str
    parser.read(REPO / 'deploy' / 'pytarchive.service')
    return parser


def test_the_unit_runs_the_service_as_root_with_the_default_config():
    words = shlex.split(unit()['Service']['ExecStart'])
    assert words[0] == '/opt/pytarchive/.venv/bin/python'
    assert words[1:4] == ['-m', 'pytarchive.service', '--config-file']
    assert words[4] == config.DEFAULT_PATH
    # The project is not installed: `-m pytarchive.service` is found in the working directory, the checkout.
    assert unit()['Service']['WorkingDirectory'] == '/opt/pytarchive'
    assert (REPO / 'pytarchive' / 'service' / '__main__.py').exists() and callable(server.main)


def test_the_unit_stops_gently_and_does_not_restart_on_settings_errors():
    settings = unit()['Service']
    assert settings['User'] == 'root'
    assert settings['Restart'] == 'on-failure'
    # SIGTERM to the service alone: mkltfs and the ltfs daemon must not be killed under it.
    assert settings['KillMode'] == 'mixed' and settings['KillSignal'] == 'SIGTERM'
    assert re.fullmatch(r'\d+min', settings['TimeoutStopSec']) and int(settings['TimeoutStopSec'][:-3]) >= 10
    assert settings['RestartPreventExitStatus'].split() == ['2', '3']  # usage, config: see common.errors


def test_the_client_script_runs_through_a_symlink_from_a_plain_shell(tmp_path):
    script = REPO / 'pytarchive_client.py'
    assert os.access(script, os.X_OK)
    assert script.read_text().startswith('#!/usr/bin/env python3\n')
    link = tmp_path / 'bin' / 'pytarchive'
    link.parent.mkdir()
    link.symlink_to(script)
    missing = tmp_path / 'no.sock'
    # From elsewhere, with the system's python3 first on PATH (it lacks the project's dependencies,
    # so the script must switch to the project's .venv, found through the link), as a shell on the
    # library host would.
    plain = {'PATH': '/usr/bin:/bin'}
    done = subprocess.run(
        [str(link), '--socket', str(missing), 'queue'],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=plain,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        10,
        '',
        f'pytarchive: error: the pytarchive service is not running (no socket at {missing})\n',
    )
    done = subprocess.run(
        ['/usr/bin/python3', str(link), '--socket', str(missing), 'queue'],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=plain,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (
        10,
        f'pytarchive: error: the pytarchive service is not running (no socket at {missing})\n',
    )
    help_text = subprocess.run(
        [str(link), '--help'], cwd=tmp_path, capture_output=True, text=True, env=plain, timeout=60
    ).stdout
    assert help_text.startswith('usage: pytarchive ')


def test_the_project_is_not_installed_into_site_packages():
    """Only the requirements go into the .venv: installing the project would put generic top-level
    names (`common`, `sim`) into site-packages, where any other program would find them."""
    project = tomllib.loads((REPO / 'pyproject.toml').read_text())
    assert not {'build-system', 'project'} & set(project)
    assert 'setuptools' not in project.get('tool', {})
    recipe = (REPO / 'Makefile').read_text()
    assert 'pip install' in recipe and ' -e .' not in recipe
    assert not (REPO / 'pytarchive' / 'pytarchive').exists()  # the old executable, named like its package


@pytest.mark.slow  # makes a .venv and installs the requirements into it
def test_installed_system_wide_a_member_of_the_read_only_group_runs_the_client(make_rig):
    """deploy/install-pytarchive.sh into a scratch prefix (as /opt/pytarchive): its .venv is made by
    the system's python3, so a user who is not root (nobody, with the group `tape`) runs the linked
    client from a plain shell; the read-only commands answer, the others are refused."""
    top = Path(tempfile.mkdtemp(prefix='pytarchive-install-', dir='/tmp'))
    top.chmod(0o755)  # reachable by nobody, as /opt is
    try:
        places = {'PREFIX': f'{top}/opt/pytarchive', 'BIN': f'{top}/bin', 'UNITS': f'{top}/units'}
        done = subprocess.run(
            ['sh', str(REPO / 'deploy' / 'install-pytarchive.sh')],
            env={**os.environ, **places},
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stderr
        python = Path(places['PREFIX']) / '.venv' / 'bin' / 'python'
        assert os.path.realpath(python).startswith('/usr/'), os.path.realpath(python)  # not under /root
        installed = (Path(places['UNITS']) / 'pytarchive.service').read_text()
        assert f'ExecStart={places["PREFIX"]}/.venv/bin/python -m pytarchive.service' in installed

        rig = make_rig(read_only_group='tape')
        rig.start()

        def as_nobody(*command):
            return subprocess.run(
                ['setpriv', '--reuid=65534', '--regid=65534', f'--groups={grp.getgrnam("tape").gr_gid}',
                 f'{places["BIN"]}/pytarchive', '--socket', str(rig.socket), *command],
                cwd='/',
                env={'PATH': '/usr/bin:/bin'},
                capture_output=True,
                text=True,
                timeout=120,
            )  # fmt: skip

        listed = as_nobody('queue')
        assert (listed.returncode, listed.stdout.strip()) == (0, 'the queue is empty'), listed.stderr
        refused = as_nobody('scan')
        assert refused.returncode == 7 and "only root may run 'scan'" in refused.stderr, refused.stderr
    finally:
        shutil.rmtree(top, ignore_errors=True)
