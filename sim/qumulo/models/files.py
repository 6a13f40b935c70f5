"""The cluster's file system: a real directory tree, with the inode number as the file id.

An inode number is what a Qumulo file id is: stable for the life of the file and unchanged by a
rename, so a client that locks "by id" is exercised the way a cluster would exercise it.
"""

import errno
import os
import stat
import threading
from urllib.parse import quote

from ..errors import ApiError, bad_request, not_found
from . import locks as lockrules
from .timefmt import format_ns

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
        self.locks = lockrules.LockStore()
        self._paths_by_id = {}  # id -> os path, refreshed by lookups, listings and notify
        self._index_lock = threading.Lock()
        self.root_id = str(os.lstat(self.root).st_ino)

    # --- paths and ids -------------------------------------------------------------------------
    def os_path(self, cluster_path):
        if not cluster_path.startswith('/'):
            raise bad_request(f'Path must be absolute: {cluster_path}')
        parts = [p for p in cluster_path.split('/') if p not in ('', '.')]
        if '..' in parts:
            raise bad_request(f'Path may not contain "..": {cluster_path}')
        return os.path.join(self.root, *parts) if parts else self.root

    def cluster_path(self, os_path, is_dir=False):
        rel = os.path.relpath(os_path, self.root)
        path = '/' if rel == '.' else '/' + rel
        return path + '/' if is_dir and path != '/' else path

    def remember(self, file_id, os_path):
        self._paths_by_id[file_id] = os_path

    def forget(self, file_id):
        self._paths_by_id.pop(file_id, None)

    def known_path(self, file_id):
        return self._paths_by_id.get(file_id)

    def lookup(self, ref):
        """A ref (file id or absolute path) -> (os path, lstat result); 404 when it is gone."""
        if ref.startswith('/'):
            path = self.os_path(ref)
            try:
                return path, os.lstat(path)
            except OSError:
                raise ApiError(404, 'fs_no_such_path_error', f'{ref} does not exist')
        if not ref.isdigit():
            raise not_found(f'File id {ref}')
        return self._lookup_id(ref)

    def _lookup_id(self, file_id):
        path = self._paths_by_id.get(file_id)
        if path is not None:
            try:
                st = os.lstat(path)
                if str(st.st_ino) == file_id:
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
            if file_id == self.root_id:
                return self.root
            stack = [self.root]
            while stack:
                try:
                    entries = list(os.scandir(stack.pop()))
                except OSError:
                    continue
                for entry in entries:
                    ino = str(entry.inode())
                    self._paths_by_id[ino] = entry.path
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
            path = self._paths_by_id.get(file_id)
            return path if path and os.path.lexists(path) else None

    # --- attributes ----------------------------------------------------------------------------
    def attributes(self, os_path, st, with_lock=False):
        file_id = str(st.st_ino)
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
            'creation_time': format_ns(st.st_ctime_ns),
            'modification_time': format_ns(st.st_mtime_ns),
            'change_time': format_ns(st.st_ctime_ns),
            'access_time': format_ns(st.st_atime_ns),
            'symlink_target_type': 'FS_FILE_TYPE_UNKNOWN',
            'major_minor_numbers': {'major': 0, 'minor': 0},
            'extended_attributes': {
                'read_only': False,
                'hidden': False,
                'system': False,
                'archive': False,
                'temporary': False,
                'compressed': False,
                'not_content_indexed': False,
                'sparse_file': False,
                'offline': False,
            },
        }
        if with_lock:
            attrs['lock'] = lockrules.wire(self.lock_of(os_path, st))
        return attrs

    def lock_of(self, os_path, st):
        if not stat.S_ISREG(st.st_mode):
            return dict(lockrules.UNLOCKED)
        return self.locks.get(os_path, str(st.st_ino))

    # --- directories ---------------------------------------------------------------------------
    def read_directory(self, ref, os_path, st, limit, after):
        if not stat.S_ISDIR(st.st_mode):
            raise ApiError(400, 'fs_not_a_directory_error', f'{self.cluster_path(os_path)} is not a directory')
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
            'id': str(st.st_ino),
            'child_count': len(names),
            'files': files,
            'paging': {'next': next_uri, 'prev': ''},
        }

    def resolve(self, ids):
        out = []
        for file_id in ids:
            try:
                path, st = self._lookup_id(str(file_id))
                out.append({'id': str(file_id), 'path': self.cluster_path(path, stat.S_ISDIR(st.st_mode))})
            except ApiError:
                out.append({'id': str(file_id), 'path': ''})
        return out

    # --- changes through the API ---------------------------------------------------------------
    def modify_lock(self, os_path, st, body):
        if not stat.S_ISREG(st.st_mode):
            raise ApiError(
                400,
                'fs_not_a_file_error',
                f'{self.cluster_path(os_path, stat.S_ISDIR(st.st_mode))} is not a regular file; only files can be locked',
            )
        lock = self.locks.modify(os_path, str(st.st_ino), body)
        attrs = self.attributes(os_path, os.lstat(os_path))
        attrs['lock'] = lockrules.wire(lock)
        return attrs

    def refuse_if_locked(self, os_path, st):
        if lockrules.is_locked(self.lock_of(os_path, st)):
            raise locked_error(self.cluster_path(os_path))

    def write(self, os_path, st, data, offset=None):
        self.refuse_if_locked(os_path, st)
        if stat.S_ISDIR(st.st_mode):
            raise ApiError(400, 'fs_not_a_file_error', f'{self.cluster_path(os_path, True)} is a directory')
        with open(os_path, 'r+b' if offset is not None else 'wb') as f:
            if offset is not None:
                f.seek(offset)
            f.write(data)
        return self.attributes(os_path, os.lstat(os_path))

    def read(self, os_path, st):
        if stat.S_ISDIR(st.st_mode):
            raise ApiError(400, 'fs_not_a_file_error', f'{self.cluster_path(os_path, True)} is a directory')
        with open(os_path, 'rb') as f:
            return f.read()

    def set_size(self, os_path, st, size):
        self.refuse_if_locked(os_path, st)
        os.truncate(os_path, int(size))
        return self.attributes(os_path, os.lstat(os_path))

    def delete(self, os_path, st):
        if os_path == self.root:
            raise ApiError(400, 'fs_access_denied_error', 'The root directory cannot be deleted')
        self.refuse_if_locked(os_path, st)
        try:
            if stat.S_ISDIR(st.st_mode):
                os.rmdir(os_path)
            else:
                os.unlink(os_path)
        except OSError as e:
            if e.errno == errno.ENOTEMPTY:
                raise ApiError(400, 'fs_directory_not_empty_error', f'{self.cluster_path(os_path, True)} is not empty')
            raise
        self.forget(str(st.st_ino))

    def create(self, dir_path, dir_st, body):
        if not stat.S_ISDIR(dir_st.st_mode):
            raise ApiError(400, 'fs_not_a_directory_error', f'{self.cluster_path(dir_path)} is not a directory')
        name = str(body.get('name', '')).rstrip('/')
        if not name or '/' in name or name in ('.', '..'):
            raise bad_request(f'Invalid name: {name!r}')
        target = os.path.join(dir_path, name)
        action = body.get('action')
        try:
            if action == 'CREATE_FILE':
                os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            elif action == 'CREATE_DIRECTORY':
                os.mkdir(target)
            elif action == 'RENAME':
                source, source_st = self.lookup(str(body.get('old_path', '')))
                self.refuse_if_locked(source, source_st)
                if os.path.lexists(target):
                    raise ApiError(409, 'fs_entry_exists_error', f'{self.cluster_path(target)} exists')
                os.rename(source, target)
            else:
                raise bad_request(f'Unsupported action: {action!r}')
        except FileExistsError:
            raise ApiError(409, 'fs_entry_exists_error', f'{self.cluster_path(target)} exists')
        return self.attributes(target, os.lstat(target))
