"""The systemd unit and the logrotate file in deploy/ agree with the tool and with each other."""

import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile


from wormlock.cli import build_parser, check_arguments

DEPLOY = pathlib.Path(__file__).resolve().parents[2] / 'deploy'


def exec_start_arguments():
    unit = (DEPLOY / 'qfs_filelock.service').read_text()
    command = re.search(r'^ExecStart=(.*?)(?<!\\)$', unit, re.MULTILINE | re.DOTALL).group(1)
    words = shlex.split(command.replace('\\\n', ' '))
    assert words[1].endswith('qfs_filelock.py')
    return words[2:]


def test_unit_runs_the_watcher_with_flags_it_accepts():
    parser = build_parser()
    args = parser.parse_args(exec_start_arguments())
    check_arguments(parser, args)
    assert args.recursive and args.settle == 60 and args.audit_log and args.output


def test_logrotate_rotates_the_files_the_unit_writes_and_keeps_the_audit_log():
    args = build_parser().parse_args(exec_start_arguments())
    rotate = (DEPLOY / 'qfs_filelock.logrotate').read_text()
    blocks = dict(re.findall(r'^(/\S+) \{(.*?)\}', rotate, re.MULTILINE | re.DOTALL))
    assert set(blocks) == {args.output, args.audit_log}
    assert all('copytruncate' in body for body in blocks.values())
    assert 'rotate 120' in blocks[args.audit_log]


def test_unit_restarts_the_watcher_on_everything_but_a_config_error():
    from common import errors

    unit = (DEPLOY / 'qfs_filelock.service').read_text()
    settings = dict(re.findall(r'^(\w+)=(.*)$', unit, re.MULTILINE))
    assert settings['Restart'] == 'on-failure' and settings['StartLimitIntervalSec'] == '0'
    prevented = {int(code) for code in settings['RestartPreventExitStatus'].split()}
    assert prevented == {errors.USAGE, errors.CONFIG, errors.TLS, errors.AUTH}
    # a bad reply (exit 9, e.g. from a cluster restarting while the watcher starts), an
    # unreachable cluster at start, a missing privilege or directory: all restarted
    assert not prevented & {errors.FAILURE, errors.UNREACHABLE, errors.BAD_REPLY, errors.NOT_FOUND, errors.PRIVILEGE}


def test_unit_restarts_a_watcher_that_hangs_through_the_watchdog():
    unit = (DEPLOY / 'qfs_filelock.service').read_text()
    settings = dict(re.findall(r'^(\w+)=(.*)$', unit, re.MULTILINE))
    # READY=1 comes from the watcher's own process, WATCHDOG=1 only while it makes progress
    assert settings['Type'] == 'notify' and settings['NotifyAccess'] == 'main'
    assert int(settings['WatchdogSec']) == 60
    # a watchdog timeout counts as a failure: restarted, and the thread stacks of the hung one logged
    assert settings['Restart'] == 'on-failure' and settings['Environment'] == 'PYTHONFAULTHANDLER=1'
    assert 'WatchdogSignal' not in settings  # SIGABRT, which the fault handler answers


def test_systemd_accepts_the_unit():
    # `make test` installs it (make system-packages): a unit never checked proves nothing.
    assert shutil.which('systemd-analyze'), 'systemd-analyze is not installed: run make system-packages'
    with tempfile.TemporaryDirectory() as folder:
        # The interpreter must exist to pass: this one stands in for /opt/qfs_filelock's.
        unit = (
            (DEPLOY / 'qfs_filelock.service').read_text().replace('/opt/qfs_filelock/.venv/bin/python', sys.executable)
        )
        path = pathlib.Path(folder) / 'qfs_filelock.service'
        path.write_text(unit)
        done = subprocess.run(['systemd-analyze', 'verify', str(path)], capture_output=True, text=True, timeout=60)
    # an unknown key or a value systemd cannot parse is only a warning: none may be printed
    assert (done.returncode, done.stdout, done.stderr) == (0, '', '')
