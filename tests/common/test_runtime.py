"""common.runtime: a tool started by a Python without the dependencies (the system's python3)."""

import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
# The Python the venv was made from: it has no qumulo-api of its own.
BASE_PYTHON = getattr(sys, '_base_executable', None) or shutil.which('python3')


def without_the_sdk(python):
    return subprocess.run([python, '-c', 'import qumulo'], capture_output=True).returncode != 0


def test_a_python_without_the_sdk_moves_over_to_the_project_venv():
    assert without_the_sdk(BASE_PYTHON), 'the test needs a Python without qumulo-api'
    done = subprocess.run(
        [BASE_PYTHON, str(PROJECT / 'qfs_filelock.py'), '--version'],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, 'qfs_filelock 2.0', '')
    wrong = subprocess.run(
        [BASE_PYTHON, str(PROJECT / 'qumulo_lock_manager.py'), '--bogus'],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert (wrong.returncode, wrong.stderr) == (
        2,
        'qumulo_lock_manager.py: error: unrecognized arguments: --bogus (see --help)\n',
    )


NO_SDK = (
    'error: the Qumulo SDK (qumulo-api) is not installed for this Python: run `make venv` in the project '
    'folder, or pip install -r requirements.txt'
)


def copy_without_venv(folder):
    """The tool's files in a folder with no .venv next to them."""
    for part in ('qfs_filelock.py', 'common', 'wormlock'):
        source = PROJECT / part
        (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / part)
    return folder / 'qfs_filelock.py'


def run_base(script):
    return subprocess.run(
        [BASE_PYTHON, str(script), '--version'], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60
    )


def test_without_a_project_venv_it_says_how_to_get_one_in_one_line(tmp_path):
    done = run_base(copy_without_venv(tmp_path))
    assert (done.returncode, done.stdout, done.stderr) == (1, '', f'qfs_filelock.py: {NO_SDK}\n')


def test_the_line_names_the_program_as_typed_through_a_link(tmp_path):
    # A tool linked into /usr/local/bin under a shorter name says that name, as argparse does.
    link = tmp_path / 'bin' / 'qfs'
    link.parent.mkdir()
    link.symlink_to(copy_without_venv(tmp_path))
    done = run_base(link)
    assert (done.returncode, done.stderr) == (1, f'qfs: {NO_SDK}\n')
