"""What every stand-in executable shares: its wrapper's arguments and its own error line."""

import sys


def split_wrapper_arguments(argv):
    """(library root, the name the user called us by, the user's arguments).

    The wrapper scripts in DIR/bin run `python -m sim.tapelib.X --library DIR --argv0 "$0" ARGS...`."""
    if len(argv) < 4 or argv[0] != '--library' or argv[2] != '--argv0':
        sys.stderr.write(
            'run the stand-ins through the wrappers in DIR/bin (made by: python -m sim.tapelib init DIR ...)\n'
        )
        raise SystemExit(2)
    return argv[1], argv[3], argv[4:]


def complain(program, message, status=1):
    """One line on stderr, the tool's way ("mtx: ..."), and the exit status to return."""
    sys.stdout.flush()
    sys.stderr.write(f'{program}: {message}\n')
    sys.stderr.flush()
    return status
