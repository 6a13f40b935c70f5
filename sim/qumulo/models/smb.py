"""SMB sessions, open file handles and the share-mode / byte-range lock grants they hold.

Handles carry the user; grants carry the client address; the two join only by file id, as on a
cluster. Closing a handle releases its grants; closing a session closes its handles.
"""

import itertools
import threading
import time

from ..errors import bad_request

READ_MASK = [
    'MS_ACCESS_FILE_READ_DATA',
    'MS_ACCESS_FILE_READ_ATTRIBUTES',
    'MS_ACCESS_FILE_READ_EA',
    'MS_ACCESS_READ_CONTROL',
    'MS_ACCESS_SYNCHRONIZE',
]
WRITE_MASK = READ_MASK + [
    'MS_ACCESS_FILE_WRITE_DATA',
    'MS_ACCESS_FILE_APPEND_DATA',
    'MS_ACCESS_FILE_WRITE_ATTRIBUTES',
    'MS_ACCESS_FILE_WRITE_EA',
]
SHARE_MODES = {
    'read': ['API_SHARE_MODE_READ'],
    'write': ['API_SHARE_MODE_READ', 'API_SHARE_MODE_WRITE', 'API_SHARE_MODE_EXCLUDE_WRITE'],
}
NODE_ADDRESS = '10.120.0.1'


class Smb:
    def __init__(self):
        self.handles = {}  # location -> handle dict (insertion order is listing order)
        self.sessions = {}  # location -> session dict
        self._grants = {}  # handle location -> (share-mode grant, [byte-range grants])
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def open(self, file_id, path, user, client, access, byte_ranges=()):
        if access not in SHARE_MODES:
            raise bad_request('access must be "read" or "write"')
        with self._lock:
            session = self._session_for(user, client, path)
            n = next(self._ids)
            location = f'{1 + n % 4}.{int(time.time())}.{n}'
            handle = {
                'file_number': file_id,
                'handle_info': {
                    'owner': user.auth_id,
                    'access_mask': list(WRITE_MASK if access == 'write' else READ_MASK),
                    'version': 2,
                    'location': location,
                    'num_byte_range_locks': len(byte_ranges),
                    'path': path,
                },
            }
            base = {
                'file_id': file_id,
                'stream_id': '0',
                'snapshot_id': None,
                'owner_id': f'{session["location"]}:{n}',
                'owner_address': client,
                'node_address': NODE_ADDRESS,
            }
            share = dict(base, mode=list(SHARE_MODES[access]))
            ranges = [
                dict(
                    base,
                    offset=str(offset),
                    size=str(size),
                    owner_name=user.name,
                    mode=['API_BYTE_RANGE_EXCLUSIVE' if access == 'write' else 'API_BYTE_RANGE_SHARED'],
                )
                for offset, size in byte_ranges
            ]
            self.handles[location] = handle
            self._grants[location] = (share, ranges)
            session['num_opens'] += 1
            handle['_session'] = session['location']
            return public(handle)

    def _session_for(self, user, client, path):
        share = path.strip('/').split('/')[0] or '/'
        for session in self.sessions.values():
            if session['user']['auth_id'] == user.auth_id and session['originator'] == client:
                if share not in session['share_names']:
                    session['share_names'].append(share)
                return session
        location = f'session.{next(self._ids)}'
        session = {
            'location': location,
            'originator': client,
            'server_address': NODE_ADDRESS,
            'user': user.identity(),
            'num_opens': 0,
            'time_open': '0',
            'time_idle': '0',
            'share_names': [share],
            'is_guest': False,
            'is_encrypted': False,
            'is_signed': False,
            'capabilities': [],
            '_opened': time.monotonic(),
        }
        self.sessions[location] = session
        return session

    def list_handles(self, file_number=None, after=None, limit=1000, resolve=None):
        with self._lock:
            handles = [h for h in self.handles.values() if file_number is None or h['file_number'] == str(file_number)]
        page, next_after = _page(handles, lambda h: h['handle_info']['location'], after, limit)
        out = []
        for handle in page:
            item = public(handle)
            if resolve is None:
                item['handle_info'].pop('path', None)
            else:
                item['handle_info']['path'] = resolve(handle['file_number'], handle['handle_info']['path'])
            out.append(item)
        return out, next_after

    def close_handles(self, locations):
        results = []
        with self._lock:
            for location in locations:
                handle = self.handles.pop(location, None)
                if handle is None:
                    results.append({'error_message': f'No open file handle at location {location}'})
                    continue
                self._grants.pop(location, None)
                session = self.sessions.get(handle['_session'])
                if session:
                    session['num_opens'] -= 1
                results.append({'error_message': ''})
        return results

    def list_sessions(self, after=None, limit=1000):
        with self._lock:
            sessions = list(self.sessions.values())
        page, next_after = _page(sessions, lambda s: s['location'], after, limit)
        now = time.monotonic()
        return [dict(public(s), time_open=str(int(now - s['_opened']))) for s in page], next_after

    def close_sessions(self, locations):
        with self._lock:
            doomed = [loc for loc, h in self.handles.items() if h['_session'] in locations]
        self.close_handles(doomed)
        with self._lock:
            for location in locations:
                self.sessions.pop(location, None)

    def grants(self, kind, file_id=None, owner_address=None, owner_name=None):
        with self._lock:
            pairs = list(self._grants.values())
        found = []
        for share, ranges in pairs:
            for grant in [share] if kind == 'share-mode' else ranges:
                if file_id is not None and grant['file_id'] != file_id:
                    continue
                if owner_address and grant['owner_address'] != owner_address:
                    continue
                if owner_name and grant.get('owner_name') != owner_name:
                    continue
                # No copy: a grant never changes after its open, and copying every grant for
                # every page made listing 20,000 grants a page at a time take seconds.
                found.append(grant)
        return found


def public(record):
    """A copy without the emulator's private bookkeeping keys."""
    out = {k: v for k, v in record.items() if not k.startswith('_')}
    if 'handle_info' in out:
        out['handle_info'] = dict(out['handle_info'])
    return out


def _page(items, key, after, limit):
    start = 0
    if after:
        keys = [key(i) for i in items]
        start = keys.index(after) + 1 if after in keys else len(items)
    page = items[start : start + limit]
    more = start + limit < len(items)
    return page, (key(page[-1]) if more and page else None)
