"""WORM file locks (retention period, legal hold) and the rules for changing them.

The lock lives in an extended attribute of the real file, so it follows renames, disappears
with the file, and survives an emulator restart, just as the lock of a cluster file would.
Where the backing file system has no user xattrs, locks are kept in memory by file id.
"""

import errno
import json
import os
import threading

from ..errors import ApiError, bad_request
from .timefmt import format_ns, now_ns, parse_ns

XATTR = 'user.qumulo_sim.file_lock'
UNLOCKED = {'legal_hold': False, 'retention_ns': None}


class LockStore:
    def __init__(self):
        self._memory = {}
        self._use_xattr = hasattr(os, 'getxattr')
        self._lock = threading.Lock()

    def get(self, os_path, file_id):
        if self._use_xattr:
            try:
                return json.loads(os.getxattr(os_path, XATTR, follow_symlinks=False))
            except OSError as e:
                if e.errno == errno.ENODATA:
                    return dict(UNLOCKED)
                if e.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise
                self._use_xattr = False
        return dict(self._memory.get(file_id, UNLOCKED))

    def put(self, os_path, file_id, lock):
        if self._use_xattr:
            try:
                os.setxattr(os_path, XATTR, json.dumps(lock).encode(), follow_symlinks=False)
                return
            except OSError as e:
                if e.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise
                self._use_xattr = False
        self._memory[file_id] = lock

    def modify(self, os_path, file_id, body):
        """Apply a file-lock PATCH body under a cluster's rules (a retention period may be extended,
        never shortened or removed; a legal hold is set and cleared); returns the new lock."""
        unknown = set(body) - {'retention_period', 'legal_hold'}
        if unknown:
            raise bad_request(f'Unknown file-lock fields: {", ".join(sorted(unknown))}')
        with self._lock:
            lock = self.get(os_path, file_id)
            if 'retention_period' in body:
                lock['retention_ns'] = _extended_retention(lock['retention_ns'], body['retention_period'])
            if 'legal_hold' in body:
                if not isinstance(body['legal_hold'], bool):
                    raise bad_request('legal_hold must be true or false')
                lock['legal_hold'] = body['legal_hold']
            self.put(os_path, file_id, lock)
            return lock


def _extended_retention(current_ns, requested):
    if requested in (None, ''):
        if current_ns is None:
            return None
        raise ApiError(400, 'fs_file_lock_retention_error', 'A retention period cannot be removed, only extended')
    new_ns = parse_ns(requested)
    if current_ns is not None and new_ns < current_ns:
        raise ApiError(
            400,
            'fs_file_lock_retention_error',
            f'A retention period cannot be shortened (currently {format_ns(current_ns)})',
        )
    return new_ns


def is_locked(lock):
    return lock['legal_hold'] or (lock['retention_ns'] is not None and lock['retention_ns'] > now_ns())


def wire(lock):
    retention = lock['retention_ns']
    return {
        'legal_hold': lock['legal_hold'],
        'retention_period': format_ns(retention) if retention is not None else None,
    }
