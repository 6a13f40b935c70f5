"""A stand-in for nfs-utils' exportfs(8): the subset pytarchive's explore uses, recorded in a
table file instead of the kernel's NFS export table, so explore can be tried and tested where no
NFS server runs.

    python -m sim.exportfs --table FILE -o OPTIONS CLIENTS:DIRECTORY   export (or change the options)
    python -m sim.exportfs --table FILE -u CLIENTS:DIRECTORY           unexport
    python -m sim.exportfs --table FILE [-v]                           list, one export a line

As exportfs does: a directory that does not exist is refused ("Failed to stat"), unexporting what
is not exported is an error, messages start with `exportfs: ` on stderr, and the status is 1 on
any failure. The listing reads `DIRECTORY<TAB>CLIENTS(OPTIONS)`, as `exportfs -v` shows it.
"""

import argparse
import fcntl
import json
import os
import sys
from typing import List, Optional, Sequence


def _load(table: str) -> List[dict]:
    try:
        with open(table, encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError:
        return []


def _save(table: str, exports: List[dict]) -> None:
    temporary = f'{table}.tmp'
    with open(temporary, 'w', encoding='utf-8') as f:
        json.dump(exports, f, indent=1)
    os.replace(temporary, table)


def _split(target: str) -> Optional[tuple]:
    clients, colon, directory = target.partition(':')
    if not colon or not clients or not directory.startswith('/'):
        return None
    return clients, os.path.normpath(directory)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='exportfs', description=__doc__.splitlines()[0])
    parser.add_argument('--table', required=True, help='the file the exports are kept in (JSON)')
    parser.add_argument('-o', dest='options', help='export options, e.g. ro,fsid=1')
    parser.add_argument('-u', dest='unexport', action='store_true', help='unexport CLIENTS:DIRECTORY')
    parser.add_argument('-v', dest='verbose', action='store_true', help='list the exports')
    parser.add_argument('target', nargs='?', metavar='CLIENTS:DIRECTORY')
    args = parser.parse_args(argv)
    with open(f'{args.table}.lock', 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # explore --stop and a new explore may run at once
        exports = _load(args.table)
        if args.target is None:
            for export in exports:
                print(f'{export["directory"]}\t{export["clients"]}({export["options"]})')
            return 0
        parsed = _split(args.target)
        if parsed is None:
            print(f'exportfs: Invalid export syntax: {args.target}', file=sys.stderr)
            return 1
        clients, directory = parsed
        same = [e for e in exports if (e['clients'], e['directory']) == (clients, directory)]
        if args.unexport:
            if not same:
                print(f"exportfs: Could not find '{args.target}' to unexport.", file=sys.stderr)
                return 1
            _save(args.table, [e for e in exports if e not in same])
            return 0
        if not os.path.isdir(directory):
            reason = 'Not a directory' if os.path.exists(directory) else 'No such file or directory'
            print(f'exportfs: Failed to stat {directory}: {reason}', file=sys.stderr)
            return 1
        entry = {'clients': clients, 'directory': directory, 'options': args.options or 'ro'}
        _save(args.table, [e for e in exports if e not in same] + [entry])
        return 0


if __name__ == '__main__':
    sys.exit(main())
