"""SMB shares, sessions, open file handles and the share-mode / byte-range lock grants they hold.

Handles carry the user; grants carry the client address; the two join only by file id, as on a
cluster. Closing a handle releases its grants; closing a session closes its handles.

Opens come from the control surface (`POST /sim/smb/open`): there is no SMB server. An open names
its access either as a shorthand (`access`: "read" or "write") or as the API shows it
(`access_mask`: MS_ACCESS_* names, `share_mode`: API_SHARE_MODE_* names, deny modes included); the
emulator records what it is given and does not refuse opens that a deny mode would refuse.

Shares: the share an open goes through is the one it names, else the one named after the top-level
directory of its path (`Files` at `/` for a file directly under `/`). A share is registered the first
time an open names it (at the path's top-level directory) or through `POST /sim/smb/share`, and
stays after its handles close. An open outside the folder of the share it names is refused.

Listings page by key (models/paging.py): every handle, session and grant gets a sequence number
when it is made, and `after` is the number of the last entry a page held. `short_pages` (set by
`POST /sim/paging`) makes each page half the limit asked for.
"""

import itertools
import threading
import time

from ..errors import bad_request
from .paging import page_after, parse_after, short

# The access rights a handle may show (the docs' enum of access_mask, rest-api-guide/smb-file-
# administration/smb_files.md).
ACCESS_NAMES = frozenset(
    {
        'MS_ACCESS_DELETE',
        'MS_ACCESS_FILE_ADD_FILE',
        'MS_ACCESS_FILE_ADD_SUBDIRECTORY',
        'MS_ACCESS_FILE_ALL',
        'MS_ACCESS_FILE_APPEND_DATA',
        'MS_ACCESS_FILE_DELETE_CHILD',
        'MS_ACCESS_FILE_EXECUTE',
        'MS_ACCESS_FILE_LIST_DIRECTORY',
        'MS_ACCESS_FILE_READ_ATTRIBUTES',
        'MS_ACCESS_FILE_READ_DATA',
        'MS_ACCESS_FILE_READ_EA',
        'MS_ACCESS_FILE_TRAVERSE',
        'MS_ACCESS_FILE_WRITE_ATTRIBUTES',
        'MS_ACCESS_FILE_WRITE_DATA',
        'MS_ACCESS_FILE_WRITE_EA',
        'MS_ACCESS_GENERIC_ALL',
        'MS_ACCESS_GENERIC_EXECUTE',
        'MS_ACCESS_GENERIC_READ',
        'MS_ACCESS_GENERIC_WRITE',
        'MS_ACCESS_MAXIMUM_ALLOWED',
        'MS_ACCESS_READ_CONTROL',
        'MS_ACCESS_SYNCHRONIZE',
        'MS_ACCESS_SYSTEM_SECURITY',
        'MS_ACCESS_WRITE_DAC',
        'MS_ACCESS_WRITE_OWNER',
    }
    | {f'MS_ACCESS_OBJECT_SPECIFIC_{n}' for n in range(9, 16)}
)
# The share modes a grant may show, in the order they are listed (the docs' enum, rest-api-guide/
# files/files_locks_smb_share-mode.md): what the open does, then what it denies to other opens.
SHARE_MODE_NAMES = (
    'API_SHARE_MODE_READ',
    'API_SHARE_MODE_WRITE',
    'API_SHARE_MODE_DELETE',
    'API_SHARE_MODE_EXCLUDE_READ',
    'API_SHARE_MODE_EXCLUDE_WRITE',
    'API_SHARE_MODE_EXCLUDE_DELETE',
)
_ALL = {'MS_ACCESS_GENERIC_ALL', 'MS_ACCESS_FILE_ALL', 'MS_ACCESS_MAXIMUM_ALLOWED'}
_READS = _ALL | {
    'MS_ACCESS_FILE_READ_DATA',
    'MS_ACCESS_GENERIC_READ',
    'MS_ACCESS_FILE_EXECUTE',
    'MS_ACCESS_GENERIC_EXECUTE',
}
_WRITES = _ALL | {'MS_ACCESS_FILE_WRITE_DATA', 'MS_ACCESS_FILE_APPEND_DATA', 'MS_ACCESS_GENERIC_WRITE'}
_DELETES = _ALL | {'MS_ACCESS_DELETE'}

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
SHORTHANDS = {  # access -> (access mask, share modes)
    'read': (READ_MASK, ['API_SHARE_MODE_READ']),
    'write': (WRITE_MASK, ['API_SHARE_MODE_READ', 'API_SHARE_MODE_WRITE', 'API_SHARE_MODE_EXCLUDE_WRITE']),
}
NODE_ADDRESS = '10.120.0.1'
TENANT_ID = 1
ROOT_SHARE = 'Files'  # the share of files directly under /
ALL_RIGHTS = ('READ', 'WRITE', 'CHANGE_PERMISSIONS')  # what the API normalises a share's ALL to
EVERYONE = {
    'domain': 'WORLD',
    'auth_id': str(0x200000000),
    'uid': None,
    'gid': None,
    'sid': 'S-1-1-0',
    'name': 'Everyone',
}


def access_of(access=None, access_mask=None, share_mode=None):
    """What an open asks for -> (access mask, share modes); a name the API cannot show is a 400."""
    if access is not None and access_mask is not None:
        raise bad_request('give "access" (a shorthand) or "access_mask", not both')
    if access_mask is None:
        if (access or 'read') not in SHORTHANDS:
            raise bad_request('access must be "read" or "write"')
        mask, modes = SHORTHANDS[access or 'read']
    else:
        mask = _names(access_mask, ACCESS_NAMES, 'access_mask')
        held = set(mask)
        modes = [
            mode
            for mode, rights in (
                ('API_SHARE_MODE_READ', _READS),
                ('API_SHARE_MODE_WRITE', _WRITES),
                ('API_SHARE_MODE_DELETE', _DELETES),
            )
            if held & rights
        ]
    if share_mode is not None:
        given = set(_names(share_mode, SHARE_MODE_NAMES, 'share_mode'))
        modes = [mode for mode in SHARE_MODE_NAMES if mode in given]
    return list(mask), list(modes)


def _names(value, valid, what):
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise bad_request(f'{what} must be a list of names')
    unknown = sorted(set(value) - set(valid))
    if unknown:
        raise bad_request(f'{what}: unknown names {", ".join(unknown)}')
    return list(dict.fromkeys(value))


def _writes(mask):
    return bool(set(mask) & _WRITES)


def top_share(path):
    """The share an open without a `share` goes through: (name, folder)."""
    parts = [part for part in path.split('/') if part]
    return (parts[0], '/' + parts[0]) if len(parts) > 1 else (ROOT_SHARE, '/')


def _holds(folder, path):
    return folder == '/' or path == folder or path.startswith(folder + '/')


class Smb:
    def __init__(self):
        self.handles = {}  # location -> handle dict (insertion order is key order)
        self.sessions = {}  # location -> session dict
        self._session_of = {}  # (auth id, client address) -> session location
        self.shares = {}  # name -> share dict
        self._grants = {}  # handle location -> ((key, share-mode grant), [(key, byte-range grant)])
        self._listed = {}  # lock type -> [(key, grant)] of every handle, until the next open or close
        self._seq = itertools.count(1)
        self.short_pages = False
        self._lock = threading.Lock()

    # --- shares ----------------------------------------------------------------------------------
    def register_share(self, name, fs_path):
        if not isinstance(name, str) or not name.strip() or any(c in name for c in '/\\'):
            raise bad_request('share_name must be a name without / or \\')
        if not isinstance(fs_path, str) or not fs_path.startswith('/'):
            raise bad_request('fs_path must be an absolute path')
        folder = '/' + '/'.join(part for part in fs_path.split('/') if part)
        with self._lock:
            return dict(self._share(name, folder))

    def _share(self, name, folder):
        share = self.shares.get(name)
        if share is not None:
            if share['fs_path'] != folder:
                raise bad_request(f'the share {name} is at {share["fs_path"]}, not {folder}')
            return share
        share = {
            'id': str(len(self.shares) + 1),
            'tenant_id': TENANT_ID,
            'share_name': name,
            'fs_path': folder,
            'description': '',
            'permissions': [{'type': 'ALLOWED', 'trustee': dict(EVERYONE), 'rights': list(ALL_RIGHTS)}],
            'network_permissions': [{'type': 'ALLOWED', 'address_ranges': [], 'rights': list(ALL_RIGHTS)}],
            'access_based_enumeration_enabled': False,
            'default_file_create_mode': '0644',
            'default_directory_create_mode': '0755',
            'require_encryption': False,
            # in the SDK's share (qq smb_list_share prints them), not in the 2024 docs
            'allow_fs_path_create': False,
            'expand_fs_path_variables': False,
            'offline_files_caching_mode': 'NO_CACHING',
        }
        self.shares[name] = share
        return share

    def _share_for(self, path, named):
        if named is None:
            name, folder = top_share(path)
            share = self.shares.get(name)
            if share is not None and not _holds(share['fs_path'], path):
                raise bad_request(f'{path} is not in the share {name} (at {share["fs_path"]}): name its share')
            return self._share(name, folder)
        if not isinstance(named, str) or not named.strip():
            raise bad_request('share must be a share name')
        share = self.shares.get(named) or self._share(named, top_share(path)[1])
        if not _holds(share['fs_path'], path):
            raise bad_request(f'{path} is not in the share {named} (at {share["fs_path"]})')
        return share

    def list_shares(self):
        with self._lock:
            return [dict(share) for share in self.shares.values()]

    def share(self, share_id):
        with self._lock:
            for share in self.shares.values():
                if share['id'] == str(share_id):
                    return dict(share)
        return None

    # --- opening and closing ---------------------------------------------------------------------
    def open(
        self,
        file_id,
        path,
        user,
        client,
        access=None,
        byte_ranges=(),
        access_mask=None,
        share_mode=None,
        share=None,
        machine=None,
    ):
        """Open `path` for `user` from the client address `client`; -> the handle as listed.
        machine: the client's name (byte-range grants' owner_name), else its address."""
        mask, modes = access_of(access, access_mask, share_mode)
        with self._lock:
            share_name = self._share_for(path, share)['share_name']
            session = self._session_for(user, client, share_name)
            n = next(self._seq)
            location = f'{1 + n % 4}.{int(time.time())}.{n}'
            handle = {
                'file_number': file_id,
                'handle_info': {
                    'owner': user.auth_id,
                    'access_mask': mask,
                    'version': 2,
                    'location': location,
                    'num_byte_range_locks': len(byte_ranges),
                    'path': path,
                },
                '_seq': n,
                '_session': session['location'],
            }
            base = {
                'file_id': file_id,
                'stream_id': '0',
                'snapshot_id': '',  # "empty if the file is at the head version"
                'owner_id': f'{session["location"]}:{n}',
                'owner_address': client,
                'node_address': NODE_ADDRESS,
            }
            range_mode = ['API_BYTE_RANGE_EXCLUSIVE' if _writes(mask) else 'API_BYTE_RANGE_SHARED']
            ranges = [
                (
                    next(self._seq),
                    dict(
                        base,
                        offset=str(offset),
                        size=str(size),
                        owner_name=machine or client,
                        mode=list(range_mode),
                    ),
                )
                for offset, size in byte_ranges
            ]
            self.handles[location] = handle
            self._grants[location] = ((n, dict(base, mode=modes)), ranges)
            self._listed.clear()
            session['num_opens'] += 1
            session['_active'] = time.monotonic_ns()
            return public(handle)

    def _session_for(self, user, client, share_name):
        """One session per user and client address: a user may open from several clients."""
        session = self.sessions.get(self._session_of.get((user.auth_id, client)))
        if session is not None:
            if share_name not in session['share_names']:
                session['share_names'].append(share_name)
            return session
        n = next(self._seq)
        now = time.monotonic_ns()
        session = {
            'location': f'session.{n}',
            'tenant_id': TENANT_ID,
            'originator': client,
            'server_address': NODE_ADDRESS,
            'user': user.identity(),
            'num_opens': 0,
            'is_guest': False,
            'is_encrypted': False,
            'share_names': [share_name],
            '_seq': n,
            '_opened': now,
            '_active': now,  # the last open or close: where time_idle counts from
        }
        self.sessions[session['location']] = session
        self._session_of[(user.auth_id, client)] = session['location']
        return session

    def close_handles(self, locations):
        results = []
        with self._lock:
            for location in locations:
                handle = self.handles.pop(location, None)
                if handle is None:
                    results.append({'error_message': f'No open file handle at location {location}'})
                    continue
                self._grants.pop(location, None)
                self._listed.clear()
                session = self.sessions.get(handle['_session'])
                if session:
                    session['num_opens'] -= 1
                    session['_active'] = time.monotonic_ns()
                results.append({'error_message': ''})
        return results

    def close_sessions(self, locations):
        """Close each session (and its handles); one result per location, in order."""
        with self._lock:
            wanted = set(locations)
            doomed = [loc for loc, h in self.handles.items() if h['_session'] in wanted]
        self.close_handles(doomed)
        results = []
        with self._lock:
            for location in locations:
                session = self.sessions.pop(location, None)
                if session is None:
                    results.append({'error_message': f'No SMB session at location {location}'})
                else:
                    self._session_of.pop((session['user']['auth_id'], session['originator']), None)
                    results.append({'error_message': ''})
        return results

    # --- listings --------------------------------------------------------------------------------
    def list_handles(self, file_number=None, after=None, limit=1000, resolve=None):
        """-> (a page of handles, the key to ask the next page after, or None at the end)."""
        after_key = parse_after(after)
        with self._lock:
            handles = [h for h in self.handles.values() if file_number is None or h['file_number'] == str(file_number)]
        page, more = page_after(handles, _seq, after_key, short(limit, self.short_pages))
        out = []
        for handle in page:
            item = public(handle)
            if resolve is None:
                item['handle_info'].pop('path', None)
            else:
                item['handle_info']['path'] = resolve(handle['file_number'], handle['handle_info']['path'])
            out.append(item)
        return out, (page[-1]['_seq'] if more and page else None)

    def list_sessions(self, user=None, after=None, limit=1000):
        """user: only that user's sessions (None: everyone's)."""
        after_key = parse_after(after)
        with self._lock:
            sessions = [s for s in self.sessions.values() if user is None or s['user']['auth_id'] == user.auth_id]
        page, more = page_after(sessions, _seq, after_key, short(limit, self.short_pages))
        now = time.monotonic_ns()
        out = [
            dict(
                public(s),
                user=dict(s['user']),
                share_names=list(s['share_names']),
                time_open={'nanoseconds': str(now - s['_opened'])},
                time_idle={'nanoseconds': str(now - s['_active'])},
            )
            for s in page
        ]
        return out, (page[-1]['_seq'] if more and page else None)

    def grants(self, kind, file_id=None, owner_address=None, owner_name=None):
        """-> [(key, grant)] in key order."""
        with self._lock:
            if file_id is None and not owner_address and not owner_name:
                # The whole listing is asked again for each of its pages: gathered once, until
                # the next open or close (gathering 20,000 grants for each of 20 pages cost more
                # than sending them).
                every = self._listed.get(kind)
                if every is None:
                    every = self._listed[kind] = self._gather(kind, list(self._grants.values()))
                return every
            pairs = list(self._grants.values())
        found = self._gather(kind, pairs)
        return [
            (key, grant)
            for key, grant in found
            if (file_id is None or grant['file_id'] == file_id)
            and (not owner_address or grant['owner_address'] == owner_address)
            and (not owner_name or grant.get('owner_name') == owner_name)
        ]

    @staticmethod
    def _gather(kind, pairs):
        # No copy: a grant never changes after its open, and copying every grant for every page
        # made listing 20,000 grants a page at a time take seconds.
        if kind == 'share-mode':
            return [share for share, _ in pairs]
        return [pair for _, ranges in pairs for pair in ranges]

    def grants_page(self, pairs, after, limit):
        """A page of grants -> (grants, the key of its last, or None for an empty page)."""
        page, _ = page_after(pairs, _first, parse_after(after), short(limit, self.short_pages))
        return [grant for _, grant in page], (page[-1][0] if page else None)


def _seq(record):
    return record['_seq']


def _first(pair):
    return pair[0]


def public(record):
    """A copy without the emulator's private bookkeeping keys."""
    out = {k: v for k, v in record.items() if not k.startswith('_')}
    if 'handle_info' in out:
        out['handle_info'] = dict(out['handle_info'])
    return out
