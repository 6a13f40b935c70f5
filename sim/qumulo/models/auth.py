"""Users, privileges, login sessions and access tokens."""

import secrets
import threading
import time
from dataclasses import dataclass, field

from ..errors import ApiError, need_login, privilege_denied

LOCK_WRITE = 'PRIVILEGE_FS_FILE_LOCK_WRITE'
LOCK_READ = 'PRIVILEGE_FS_LOCK_READ'
HANDLE_READ = 'PRIVILEGE_SMB_FILE_HANDLE_READ'
HANDLE_WRITE = 'PRIVILEGE_SMB_FILE_HANDLE_WRITE'
SESSION_READ = 'PRIVILEGE_SMB_SESSION_READ'
SESSION_WRITE = 'PRIVILEGE_SMB_SESSION_WRITE'
IDENTITY_READ = 'PRIVILEGE_IDENTITY_READ'
TOKEN_WRITE = 'PRIVILEGE_ACCESS_TOKEN_WRITE'
NOTIFY_SETTINGS_READ = 'PRIVILEGE_FS_SETTINGS_READ'
NOTIFY_SETTINGS_WRITE = 'PRIVILEGE_FS_SETTINGS_WRITE'
# Full access to every file regardless of its ACL: what lets a user write through the API here.
FS_WRITE = 'PRIVILEGE_FILE_FULL_ACCESS'

ALL_PRIVILEGES = (
    LOCK_WRITE,
    LOCK_READ,
    HANDLE_READ,
    HANDLE_WRITE,
    SESSION_READ,
    SESSION_WRITE,
    IDENTITY_READ,
    TOKEN_WRITE,
    NOTIFY_SETTINGS_READ,
    NOTIFY_SETTINGS_WRITE,
    FS_WRITE,
)
READ_ONLY_PRIVILEGES = (LOCK_READ, HANDLE_READ, SESSION_READ, IDENTITY_READ, NOTIFY_SETTINGS_READ)

# A recursive watch needs the DATA_ADMINISTRATOR role (Qumulo's built-in Data-Administrators).
RECURSIVE_NOTIFY_ROLES = frozenset({'Administrators', 'Data-Administrators'})
USERS_GROUP = {
    'domain': 'LOCAL',
    'auth_id': '513',
    'gid': 513,
    'name': 'Users',
    'sid': 'S-1-5-21-2222222222-3333333333-4444444444-513',
}

SESSION_LIFETIME_S = 10 * 3600
MAX_ACCESS_TOKENS_PER_USER = 2


@dataclass
class User:
    name: str
    password: str
    auth_id: str
    uid: int
    privileges: tuple
    roles: tuple = ()
    local: bool = True  # a cluster-local user (SMB users seen only as clients are not)

    def identity(self):
        return {
            'domain': 'LOCAL',
            'auth_id': self.auth_id,
            'uid': self.uid,
            'gid': None,
            'sid': f'S-1-5-21-2222222222-3333333333-4444444444-{self.uid}',
            'name': self.name,
        }

    def who_am_i(self):
        return {
            'id': self.auth_id,
            'name': self.name,
            'sid': self.identity()['sid'],
            'uid': str(self.uid),
            'primary_group': '513',
            'role': None,
            'privileges': sorted(self.privileges),
        }


@dataclass
class Token:
    bearer: str
    user: User
    expires: float  # monotonic deadline; inf for access tokens
    id: str = ''
    creator: str = ''
    created: str = ''
    expiration_time: str = None
    enabled: bool = True


@dataclass
class Directory:
    """Cluster users and every identity seen (SMB users), by auth id."""

    users: dict = field(default_factory=dict)
    identities: dict = field(default_factory=dict)
    _next_uid: int = 2000
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_user(self, name, password, privileges, roles=(), local=True):
        with self.lock:
            self._next_uid += 1
            user = User(
                name, password, str(500 + self._next_uid), self._next_uid, tuple(privileges), tuple(roles), local
            )
            self.users[name] = user
            self.identities[user.auth_id] = user
            return user

    def identity_for_name(self, name):
        """An SMB user: known users keep their id, others get one on first sight."""
        user = self.users.get(name)
        return user if user else self.add_user(name, secrets.token_hex(8), (), local=False)

    def local_user(self, auth_id):
        user = self.identities.get(str(auth_id))
        if user is None or not user.local:
            raise ApiError(404, 'local_user_not_found_error', f'No local user with id {auth_id}')
        return user

    def expand(self, query):
        identity = self.find(query)
        user = self.identities[identity['auth_id']]
        return {
            'id': identity,
            'type': 'USER',
            'equivalent_ids': [identity],
            'group_ids': [dict(USERS_GROUP)] if user.local else [],
            'smb_id': identity,
        }

    def find(self, query):
        for key in ('auth_id', 'name', 'uid', 'sid'):
            if query.get(key) is None:
                continue
            wanted = str(query[key])
            for user in self.identities.values():
                if str(user.identity().get(key)) == wanted:
                    return user.identity()
            raise ApiError(404, 'identity_not_found_error', f'No identity with {key} {wanted}')
        raise ApiError(400, 'invalid_request_error', 'identity find needs auth_id, name, uid or sid')


class Sessions:
    """Bearer tokens: login sessions expire; access tokens live until deleted."""

    def __init__(self, directory):
        self.directory = directory
        self.tokens = {}
        self._lock = threading.Lock()

    def login(self, username, password):
        if not isinstance(username, str) or not isinstance(password, str):
            raise ApiError(400, 'invalid_request_error', 'username and password must be strings')
        user = self.directory.users.get(username)
        # compare_digest takes str of ASCII only: compare the UTF-8 bytes, so any password is a 401.
        if user is None or not secrets.compare_digest(user.password.encode(), password.encode()):
            raise ApiError(401, 'auth_login_error', 'Invalid username or password')
        token = Token('session-v1:' + secrets.token_urlsafe(24), user, time.monotonic() + SESSION_LIFETIME_S)
        with self._lock:
            self.tokens[token.bearer] = token
        return {'bearer_token': token.bearer}

    def authenticate(self, header):
        if not header or not header.startswith('Bearer '):
            raise need_login()
        token = self.tokens.get(header[len('Bearer ') :].strip())
        if token is None or not token.enabled or token.expires < time.monotonic():
            raise need_login()
        return token.user

    def expire_sessions(self):
        with self._lock:
            doomed = [b for b in self.tokens if b.startswith('session-v1:')]
            for bearer in doomed:
                del self.tokens[bearer]
        return len(doomed)

    def create_access_token(self, creator, auth_id, expiration_time=None):
        owner = self.directory.identities.get(str(auth_id))
        if owner is None or owner.name not in self.directory.users:
            raise ApiError(404, 'identity_not_found_error', f'No user with auth id {auth_id}')
        with self._lock:
            owned = [t for t in self.tokens.values() if t.id and t.user is owner]
            if len(owned) >= MAX_ACCESS_TOKENS_PER_USER:
                raise ApiError(
                    400,
                    'access_token_limit_error',
                    f'User {owner.name} already has {MAX_ACCESS_TOKENS_PER_USER} access tokens',
                )
            token = Token(
                'access-v1:' + secrets.token_urlsafe(32),
                owner,
                float('inf'),
                id=secrets.token_hex(8),
                creator=creator.auth_id,
                created=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
                expiration_time=expiration_time,
            )
            self.tokens[token.bearer] = token
        return {'id': token.id, 'bearer_token': token.bearer}

    def access_tokens(self):
        return [t for t in self.tokens.values() if t.id]

    def access_token_metadata(self, token):
        return {
            'id': token.id,
            'user': token.user.identity(),
            'creator': self.directory.identities[token.creator].identity(),
            'creation_time': token.created,
            'expiration_time': token.expiration_time,
            'enabled': token.enabled,
        }

    def delete_access_token(self, token_id):
        with self._lock:
            for bearer, token in list(self.tokens.items()):
                if token.id == token_id:
                    del self.tokens[bearer]
                    return
        raise ApiError(404, 'access_token_not_found_error', f'No access token {token_id}')


def require(user, privilege):
    if privilege not in user.privileges:
        raise privilege_denied(privilege)


def builtin_directory():
    directory = Directory()
    directory.add_user('admin', 'admin', ALL_PRIVILEGES, ('Administrators', 'Data-Administrators'))
    directory.add_user('viewer', 'viewer', READ_ONLY_PRIVILEGES, ('Observers',))
    directory.add_user('nolock', 'nolock', ())
    # A password as users choose them: spaces at both ends, letters beyond ASCII.
    directory.add_user('spaced', ' Grüße 2027 ', READ_ONLY_PRIVILEGES, ('Observers',))
    return directory
