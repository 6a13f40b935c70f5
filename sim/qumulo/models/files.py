"""The cluster's file system: a real directory tree, with ids, permissions and locks of a cluster.

Ids are the emulator's own (ids.py: never reused, unchanged by a rename); each call is checked
against the file's permissions for the authenticated user (access.py) as a cluster checks them.
"""

import errno
import json
import os
import stat
import threading
from urllib.parse import quote

from ..errors import ApiError, bad_request, not_found
from . import access
from . import locks as lockrules
from .ids import ROOT_ID, FileIds
from .timefmt import format_ns, parse_ns

DOS_XATTR = 'user.qumulo_sim.dos_attributes'  # the Windows attributes (hidden, read-only, ...)

FILE_TYPES = {
    stat.S_IFREG: 'FS_FILE_TYPE_FILE',
    stat.S_IFDIR: 'FS_FILE_TYPE_DIRECTORY',
    stat.S_IFLNK: 'FS_FILE_TYPE_SYMLINK',
    stat.S_IFIFO: 'FS_FILE_TYPE_UNIX_PIPE',
    stat.S_IFSOCK: 'FS_FILE_TYPE_UNIX_SOCKET',
    stat.S_IFCHR: 'FS_FILE_TYPE_UNIX_CHARACTER_DEVICE',
    stat.S_IFBLK: 'FS_FILE_TYPE_UNIX_BLOCK_DEVICE',
}


def locked_error(path):
    return ApiError(403, 'fs_access_denied_error', f'{path} is locked (retention period or legal hold)')


class FileSystem:
    def __init__(self, root):
        self.root = os.path.realpath(root)
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f'{root} is not a directory')
        self.ids = FileIds(self.root)
        self.locks = lockrules.LockStore()
        self._paths_by_id = {ROOT_ID: self.root}  # id -> os path, refreshed by lookups, listings and notify
        self._index_lock = threading.Lock()
        self.root_id = ROOT_ID
        self._root_prefix = self.root.rstrip(os.sep) + os.sep

    # --- paths and ids -------------------------------------------------------------------------
    def os_path(self, cluster_path):
        if not cluster_path.startswith('/'):
            raise bad_request(f'Path must be absolute: {cluster_path}')
        parts = [p for p in cluster_path.split('/') if p not in ('', '.')]
        if '..' in parts:
            raise bad_request(f'Path may not contain "..": {cluster_path}')
        return os.path.join(self.root, *parts) if parts else self.root

    def cluster_path(self, os_path, is_dir=False):
        if os_path == self.root:
            return '/'
        if os_path.startswith(self._root_prefix):  # every path the emulator builds: no relpath needed
            path = os_path[len(self._root_prefix) - 1 :]
        else:
            path = '/' + os.path.relpath(os_path, self.root)
        return path + '/' if is_dir else path

    def id_of(self, os_path, st=None):
        """The file's id, given now if the emulator has not seen it before."""
        st = st or os.lstat(os_path)
        file_id = self.ids.of(os_path, st)
        self._paths_by_id[file_id] = os_path
        return file_id

    def remember(self, file_id, os_path):
        self._paths_by_id[file_id] = os_path

    def forget(self, file_id):
        self._paths_by_id.pop(file_id, None)

    def known_path(self, file_id):
        return self._paths_by_id.get(file_id)

    def lookup(self, ref):
        """A ref (file id or absolute path) -> (os path, lstat result); 404 when it is gone: a
        missing last part is fs_no_such_entry_error, a missing directory on the way
        fs_no_such_path_error, as a cluster answers."""
        if ref.startswith('/'):
            path = self.os_path(ref)
            try:
                return path, os.lstat(path)
            except OSError:
                if os.path.isdir(os.path.dirname(path)):
                    raise ApiError(404, 'fs_no_such_entry_error', f'{ref} does not exist')
                raise ApiError(404, 'fs_no_such_path_error', f'A directory on the way to {ref} does not exist')
        if not ref.isdigit():
            raise not_found(f'File id {ref}')
        return self._lookup_id(ref)

    def _lookup_id(self, file_id):
        path = self._paths_by_id.get(file_id)
        if path is not None:
            try:
                st = os.lstat(path)
                if self.ids.of(path, st) == file_id:
                    return path, st
            except OSError:
                pass
        path = self._search(file_id)
        if path is None:
            raise not_found(f'File id {file_id}')
        return path, os.lstat(path)

    def _search(self, file_id):
        """A full walk: only when the index has lost track (e.g. a rename while nobody listened)."""
        with self._index_lock:
            stack = [self.root]
            while stack:
                try:
                    entries = list(os.scandir(stack.pop()))
                except OSError:
                    continue
                for entry in entries:
                    try:
                        found = self.id_of(entry.path, entry.stat(follow_symlinks=False))
                    except OSError:
                        continue
                    if found == file_id:
                        return entry.path
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
            return None

    # --- attributes ----------------------------------------------------------------------------
    def attributes(self, os_path, st, with_lock=False, record=None):
        """The file's attributes as the API shows them; `record` (id, creation time) when the
        caller has just read it."""
        file_id, btime_ns = record or self.ids.record(os_path, st)
        self._paths_by_id[file_id] = os_path
        is_dir = stat.S_ISDIR(st.st_mode)
        child_count = 0
        if is_dir:
            try:
                child_count = len(os.listdir(os_path))
            except OSError:
                pass
        attrs = {
            'path': self.cluster_path(os_path, is_dir),
            'name': '' if os_path == self.root else os.path.basename(os_path),
            'id': file_id,
            'file_number': file_id,
            'type': FILE_TYPES.get(stat.S_IFMT(st.st_mode), 'FS_FILE_TYPE_FILE'),
            'size': str(st.st_size),
            'blocks': str(st.st_blocks // 8),
            'datablocks': str(st.st_blocks // 8),
            'metablocks': '1',
            'mode': f'{stat.S_IMODE(st.st_mode):04o}',
            'owner': str(st.st_uid),
            'group': str(st.st_gid),
            'owner_details': {'id_type': 'NFS_UID', 'id_value': str(st.st_uid)},
            'group_details': {'id_type': 'NFS_GID', 'id_value': str(st.st_gid)},
            'num_links': st.st_nlink,
            'child_count': child_count,
            'creation_time': format_ns(btime_ns),
            'modification_time': format_ns(st.st_mtime_ns),
            'change_time': format_ns(st.st_ctime_ns),
            'access_time': format_ns(st.st_atime_ns),
            'symlink_target_type': 'FS_FILE_TYPE_UNKNOWN',
            'major_minor_numbers': {'major': 0, 'minor': 0},
            'extended_attributes': self._extended_attributes(os_path),
        }
        if with_lock:
            attrs['lock'] = lockrules.wire(self.lock_of(os_path, st))
        return attrs

    @staticmethod
    def _extended_attributes(os_path):
        try:
            stored = json.loads(os.getxattr(os_path, DOS_XATTR, follow_symlinks=False))
        except (OSError, ValueError):
            stored = {}
        return {k: bool(stored.get(k, v)) for k, v in EXTENDED_ATTRIBUTES.items()}

    def get_attributes(self, user, ref, with_lock=False):
        path, st = self.lookup(ref)
        self._check(user, path, st, ('READ_ATTR', 'READ_ACL') if with_lock else ('READ_ATTR',))
        return self.attributes(path, st, with_lock)

    def lock_of(self, os_path, st):
        if not stat.S_ISREG(st.st_mode):
            return dict(lockrules.UNLOCKED)
        return self.locks.get(os_path, self.ids.of(os_path, st))

    def _check(self, user, os_path, st, rights):
        access.check(user, os_path, st, rights, self.cluster_path(os_path, stat.S_ISDIR(st.st_mode)))

    def _check_parent(self, user, os_path, rights):
        parent = os.path.dirname(os_path)
        self._check(user, parent, os.lstat(parent), rights)

    # --- directories ---------------------------------------------------------------------------
    def read_directory(self, user, ref, limit, after):
        os_path, st = self.lookup(ref)
        if not stat.S_ISDIR(st.st_mode):
            raise ApiError(400, 'fs_not_a_directory_error', f'{self.cluster_path(os_path)} is not a directory')
        self._check(user, os_path, st, ('READ',))
        names = sorted(os.listdir(os_path))
        remaining = [n for n in names if n > after] if after else names
        page, rest = remaining[:limit], remaining[limit:]
        files = []
        for name in page:
            child = os.path.join(os_path, name)
            try:
                files.append(self.attributes(child, os.lstat(child)))
            except OSError:
                continue  # removed while we listed it
        next_uri = ''
        if rest and page:
            next_uri = f'/v1/files/{quote(ref, safe="")}/entries/?limit={limit}&after={quote(page[-1], safe="")}'
        return {
            'path': self.cluster_path(os_path, True),
            'id': self.id_of(os_path, st),
            'child_count': len(names),
            'files': files,
            'paging': {'next': next_uri, 'prev': ''},
        }

    def resolve(self, ids):
        """Every id's path; one id that cannot be resolved fails the whole batch (the emulator's
        choice of what a cluster may do: clients that must not fail use try_resolve)."""
        out = []
        for file_id in ids:
            path, st = self.lookup(str(file_id)) if str(file_id).isdigit() else self._bad_id(file_id)
            out.append({'id': str(file_id), 'path': self.cluster_path(path, stat.S_ISDIR(st.st_mode))})
        return out

    def try_resolve(self, ids):
        """Paths for the ids that can be resolved now; the others listed apart."""
        resolved, unresolved = [], []
        for file_id in ids:
            try:
                resolved.extend(self.resolve([file_id]))
            except ApiError:
                unresolved.append(str(file_id))
        return {'resolved': resolved, 'unresolved': unresolved}

    @staticmethod
    def _bad_id(file_id):
        raise not_found(f'File id {file_id}')

    # --- changes through the API ---------------------------------------------------------------
    def modify_lock(self, user, ref, body):
        os_path, st = self.lookup(ref)
        if not stat.S_ISREG(st.st_mode):
            raise ApiError(
                400,
                'fs_not_a_file_error',
                f'{self.cluster_path(os_path, stat.S_ISDIR(st.st_mode))} is not a regular file; only files can be locked',
            )
        self._check(user, os_path, st, ('WRITE_ACL',))
        record = self.ids.record(os_path, st)
        lock = self.locks.modify(os_path, record[0], body)
        attrs = self.attributes(os_path, os.lstat(os_path), record=record)  # a lock changes neither
        attrs['lock'] = lockrules.wire(lock)
        return attrs

    def refuse_if_locked(self, os_path, st):
        if lockrules.is_locked(self.lock_of(os_path, st)):
            raise locked_error(self.cluster_path(os_path))

    def write(self, user, ref, data, offset=None):
        os_path, st = self.lookup(ref)
        if stat.S_ISDIR(st.st_mode):
            raise ApiError(400, 'fs_not_a_file_error', f'{self.cluster_path(os_path, True)} is a directory')
        self._check(user, os_path, st, ('MODIFY',))
        self.refuse_if_locked(os_path, st)
        with open(os_path, 'r+b' if offset is not None else 'wb') as f:
            if offset is not None:
                f.seek(offset)
            f.write(data)
        return self.attributes(os_path, os.lstat(os_path))

    def read(self, user, ref):
        os_path, st = self.lookup(ref)
        if stat.S_ISDIR(st.st_mode):
            raise ApiError(400, 'fs_not_a_file_error', f'{self.cluster_path(os_path, True)} is a directory')
        self._check(user, os_path, st, ('READ',))
        with open(os_path, 'rb') as f:
            return f.read()

    def set_attributes(self, user, ref, body):
        """PATCH of attributes: size, mode, owner, group and the times; every key given is applied
        (or refused) under the same rules as the corresponding change from a client."""
        os_path, st = self.lookup(ref)
        if not isinstance(body, dict):
            raise bad_request('attributes need a JSON object')
        unknown = set(body) - SETTABLE_ATTRIBUTES
        if unknown:
            raise bad_request(f'These attributes cannot be set: {", ".join(sorted(unknown))}')
        if body:
            self.refuse_if_locked(os_path, st)
        if 'size' in body:
            self._check(user, os_path, st, ('MODIFY',))
            os.truncate(os_path, _non_negative(body['size'], 'size'))
        if 'mode' in body:
            self._check(user, os_path, st, ('WRITE_ACL',))
            os.chmod(os_path, _mode(body['mode']), follow_symlinks=False)
        owner, group = _identity(body, 'owner', 'NFS_UID'), _identity(body, 'group', 'NFS_GID')
        if owner is not None or group is not None:
            wanted = [r for v, r in ((owner, 'CHANGE_OWNER'), (group, 'WRITE_GROUP')) if v is not None]
            self._check(user, os_path, st, wanted)
            os.chown(os_path, -1 if owner is None else owner, -1 if group is None else group, follow_symlinks=False)
        times = {k: parse_ns(body[k]) for k in ('access_time', 'modification_time') if body.get(k)}
        if times or body.get('creation_time'):
            self._check(user, os_path, st, ('WRITE_ATTR',))
        if times:
            now = os.lstat(os_path)
            os.utime(
                os_path,
                ns=(times.get('access_time', now.st_atime_ns), times.get('modification_time', now.st_mtime_ns)),
                follow_symlinks=False,
            )
        if body.get('creation_time'):
            self.ids.set_creation_ns(os_path, os.lstat(os_path), parse_ns(body['creation_time']))
        if body.get('change_time'):
            parse_ns(body['change_time'])  # checked; the kernel sets ctime to the time of this change
        if body.get('extended_attributes') is not None:
            self._check(user, os_path, st, ('WRITE_ATTR',))
            self._set_extended_attributes(os_path, body['extended_attributes'])
        return self.attributes(os_path, os.lstat(os_path))

    def _set_extended_attributes(self, os_path, wanted):
        if not isinstance(wanted, dict) or not set(wanted) <= set(EXTENDED_ATTRIBUTES):
            raise bad_request(f'extended_attributes takes only: {", ".join(EXTENDED_ATTRIBUTES)}')
        if not all(isinstance(v, bool) for v in wanted.values()):
            raise bad_request('extended_attributes values must be true or false')
        merged = dict(self._extended_attributes(os_path), **wanted)
        os.setxattr(os_path, DOS_XATTR, json.dumps(merged, sort_keys=True).encode(), follow_symlinks=False)

    # --- ACLs, streams, server-side copy -------------------------------------------------------
    def get_acl(self, user, ref, directory):
        os_path, st = self.lookup(ref)
        self._check(user, os_path, st, ('READ_ACL',))
        return access.acl_wire(os_path, st, directory)

    def set_acl(self, user, ref, body, directory):
        os_path, st = self.lookup(ref)
        self._check(user, os_path, st, ('WRITE_ACL',))
        self.refuse_if_locked(os_path, st)
        access.write_acl(os_path, access.acl_from_wire(body))
        return access.acl_wire(os_path, os.lstat(os_path), directory)

    def named_streams(self, user, ref):
        os_path, st = self.lookup(ref)
        self._check(user, os_path, st, ('READ_ATTR',))
        return []  # a Linux file has only its data: no alternate data streams

    def copy_chunk(self, user, ref, body):
        """Server-side copy of a source file's data into this one, all in one chunk (a cluster may
        answer in several; an empty answer means done)."""
        os_path, st = self.lookup(ref)
        if not isinstance(body, dict) or not (body.get('source_id') or body.get('source_path')):
            raise bad_request('copy-chunk needs source_id or source_path')
        if body.get('source_stream_id') not in (None, '0'):
            raise ApiError(404, 'fs_no_such_entry_error', f'No stream {body["source_stream_id"]}')
        data = self.read(user, str(body.get('source_id') or body.get('source_path')))
        self.write(user, ref, data)
        return None

    def delete(self, user, ref):
        os_path, st = self.lookup(ref)
        if os_path == self.root:
            raise ApiError(400, 'fs_access_denied_error', 'The root directory cannot be deleted')
        self._check_parent(user, os_path, ('DELETE_CHILD',))
        self.refuse_if_locked(os_path, st)
        file_id = self.ids.of(os_path, st)
        try:
            if stat.S_ISDIR(st.st_mode):
                os.rmdir(os_path)
            else:
                os.unlink(os_path)
        except OSError as e:
            if e.errno == errno.ENOTEMPTY:
                raise ApiError(400, 'fs_directory_not_empty_error', f'{self.cluster_path(os_path, True)} is not empty')
            raise
        self.forget(file_id)
        self.ids.forget(st)

    def create(self, user, ref, body):
        dir_path, dir_st = self.lookup(ref)
        if not stat.S_ISDIR(dir_st.st_mode):
            raise ApiError(400, 'fs_not_a_directory_error', f'{self.cluster_path(dir_path)} is not a directory')
        name = str(body.get('name', '')).rstrip('/')
        if not name or '/' in name or name in ('.', '..'):
            raise bad_request(f'Invalid name: {name!r}')
        target = os.path.join(dir_path, name)
        action = body.get('action')
        wanted = {'CREATE_FILE': 'ADD_FILE', 'CREATE_DIRECTORY': 'ADD_SUBDIR', 'RENAME': 'ADD_FILE'}
        if action not in wanted:
            raise bad_request(f'Unsupported action: {action!r}')
        self._check(user, dir_path, dir_st, (wanted[action],))
        try:
            if action == 'CREATE_FILE':
                os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                _own(target, user)
            elif action == 'CREATE_DIRECTORY':
                os.mkdir(target)
                _own(target, user)
            else:
                source, source_st = self.lookup(str(body.get('old_path', '')))
                self._check_parent(user, source, ('DELETE_CHILD',))
                self.refuse_if_locked(source, source_st)
                if os.path.lexists(target):
                    raise ApiError(409, 'fs_entry_exists_error', f'{self.cluster_path(target)} exists')
                os.rename(source, target)
        except FileExistsError:
            raise ApiError(409, 'fs_entry_exists_error', f'{self.cluster_path(target)} exists')
        return self.attributes(target, os.lstat(target))

    def check_readable_directory(self, user, ref):
        """-> the os path of a directory `user` may read (a non-recursive watch needs this)."""
        os_path, st = self.lookup(ref)
        if not stat.S_ISDIR(st.st_mode):
            raise ApiError(400, 'fs_not_a_directory_error', f'{ref} is not a directory')
        self._check(user, os_path, st, ('READ',))
        return os_path, st

    def set_permissions(self, os_path, owner_uid=None, group_gid=None, mode=None, acl=False):
        """The control surface's change of owner, group, mode or ACL, as an SMB client's."""
        if owner_uid is not None or group_gid is not None:
            os.chown(os_path, -1 if owner_uid is None else owner_uid, -1 if group_gid is None else group_gid)
        if mode is not None:
            os.chmod(os_path, _mode(mode))
        if acl is not False:
            access.write_acl(os_path, acl)
        return self.attributes(os_path, os.lstat(os_path))


SETTABLE_ATTRIBUTES = frozenset(
    {
        'size',
        'mode',
        'owner',
        'group',
        'owner_details',
        'group_details',
        'access_time',
        'modification_time',
        'creation_time',
        'change_time',
        'extended_attributes',
    }
)
EXTENDED_ATTRIBUTES = {
    'read_only': False,
    'hidden': False,
    'system': False,
    'archive': False,
    'temporary': False,
    'compressed': False,
    'not_content_indexed': False,
    'sparse_file': False,
    'offline': False,
}


def _own(path, user):
    # A file made through the API belongs to the user who made it. Only root can give files away:
    # an emulator run by another user leaves them its own.
    try:
        os.chown(path, user.uid, -1)
    except (OSError, AttributeError):
        pass


def _identity(body, key, id_type):
    """A uid or gid from `owner`/`group`, or from `owner_details`/`group_details` of the NFS type
    (the only identities a POSIX tree can hold); None when not given."""
    if key in body:
        return _number(body[key], key)
    details = body.get(f'{key}_details')
    if details is None:
        return None
    if not isinstance(details, dict) or details.get('id_type') != id_type:
        raise bad_request(f'{key}_details must be {{"id_type": "{id_type}", "id_value": ...}} here')
    return _number(details.get('id_value'), key)


def _mode(value):
    try:
        mode = int(str(value), 8)
    except ValueError:
        raise bad_request(f'mode must be octal digits: {value!r}')
    if not 0 <= mode <= 0o7777:
        raise bad_request(f'mode out of range: {value!r}')
    return mode


def _number(value, what):
    try:
        return int(str(value))
    except ValueError:
        raise bad_request(f'{what} must be a number: {value!r}')


def _non_negative(value, what):
    number = _number(value, what)
    if number < 0:
        raise bad_request(f'{what} may not be negative')
    return number
