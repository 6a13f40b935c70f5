"""Users, privileges, login sessions and access tokens."""

import re
import secrets
import threading
import time
from dataclasses import dataclass, field

from ..errors import ApiError, bad_request, need_login, privilege_denied
from .paging import page_after, parse_after
from .timefmt import format_ns, now_ns, parse_ns

LOCK_WRITE = 'PRIVILEGE_FS_FILE_LOCK_WRITE'
LOCK_READ = 'PRIVILEGE_FS_LOCK_READ'
HANDLE_READ = 'PRIVILEGE_SMB_FILE_HANDLE_READ'
HANDLE_WRITE = 'PRIVILEGE_SMB_FILE_HANDLE_WRITE'
SESSION_READ = 'PRIVILEGE_SMB_SESSION_READ'
SESSION_WRITE = 'PRIVILEGE_SMB_SESSION_WRITE'
IDENTITY_READ = 'PRIVILEGE_IDENTITY_READ'
TOKENS_READ = 'PRIVILEGE_ACCESS_TOKENS_READ'  # list and read access tokens
TOKENS_WRITE = 'PRIVILEGE_ACCESS_TOKENS_WRITE'  # create, modify and delete them
SHARE_READ = 'PRIVILEGE_SMB_SHARE_READ'
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
    TOKENS_READ,
    TOKENS_WRITE,
    SHARE_READ,
    NOTIFY_SETTINGS_READ,
    NOTIFY_SETTINGS_WRITE,
    FS_WRITE,
)
READ_ONLY_PRIVILEGES = (LOCK_READ, HANDLE_READ, SESSION_READ, IDENTITY_READ, NOTIFY_SETTINGS_READ)
# The least a WORM lock watcher needs: set locks, list lock grants, name users. No role, so no
# recursive watch and no PRIVILEGE_FILE_FULL_ACCESS: file calls follow each file's permissions.
LOCKER_PRIVILEGES = (LOCK_WRITE, LOCK_READ, IDENTITY_READ)

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

    def who_am_i(self, access_token_id=None):
        return {
            'id': self.auth_id,
            'name': self.name,
            'sid': self.identity()['sid'],
            'uid': str(self.uid),
            'primary_group': '513',
            'home_directory': None,
            'can_change_password': self.local,
            'role': None,
            'privileges': sorted(self.privileges),
            # The docs: "only present when access token authentication is used"; null otherwise here.
            'access_token_id': access_token_id,
        }


@dataclass
class Token:
    bearer: str
    user: User
    expires: float  # monotonic deadline of a login session; inf for access tokens
    id: str = ''  # an access token's id; '' for a login session
    creator: str = ''
    created: str = ''
    expiration_ns: int = None  # an access token's expiration_time (wall clock), None: never
    enabled: bool = True
    seq: int = 0  # creation order: the key access token listings page by

    def usable(self):
        if not self.enabled or self.expires < time.monotonic():
            return False
        return self.expiration_ns is None or now_ns() < self.expiration_ns


_SID = re.compile(r'S-[0-9]+-[0-9]+(?:-[0-9]+)+$')
_NAME_DOMAINS = ('local', 'ldap_user', 'ad', 'name')


def identity_query(spec):
    """An identity as qq and the API's `identity`/`user` query parameters write it ("alice",
    "local:alice", "uid:2001", "auth_id:2501", "sid:S-1-5-...", "S-1-5-...", "ad:alice") -> the
    identity/find query it stands for; None for identities that are never a user (groups, Everyone).
    Parsed as the SDK's `build_api_identity` parses it; a malformed one is a 400."""
    prefix, sep, value = (part.strip() for part in str(spec).partition(':'))
    if not sep:
        if not prefix:
            raise bad_request('An identity cannot be empty')
        return {'sid': prefix.capitalize()} if _SID.match(prefix.capitalize()) else {'name': prefix}
    prefix = prefix.lower()
    try:
        if prefix == 'uid':
            return {'uid': int(value)}
        if prefix == 'auth_id':
            return {'auth_id': str(int(value, 0))}
    except ValueError:
        raise bad_request(f'Invalid identity {spec!r}: {prefix} needs a number')
    if prefix == 'sid':
        return {'sid': value}
    if prefix in _NAME_DOMAINS:
        return {'name': value}
    if prefix in ('gid', 'ldap_group', 'world'):
        return None
    if '=' in prefix:  # an LDAP distinguished name holding a ':'
        return {'name': str(spec)}
    raise bad_request(f'Invalid identity {spec!r}: unknown prefix {prefix!r}')


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

    def local_groups(self, auth_id):
        """`GET /v1/users/{id}/groups/`: the local groups of a local user as the docs shape them
        ({id, name, sid, gid}, gid a string); "an empty array if the provided user is not a local
        user"."""
        user = self.identities.get(str(auth_id))
        if user is None or not user.local:
            return []
        return [
            {
                'id': USERS_GROUP['auth_id'],
                'name': USERS_GROUP['name'],
                'sid': USERS_GROUP['sid'],
                'gid': str(USERS_GROUP['gid']),
            }
        ]

    def expand(self, query):
        identity = self.find(query)
        user = self.identities[identity['auth_id']]
        return {
            'id': identity,
            'type': 'USER',
            'equivalent_ids': [identity],
            'group_ids': [dict(USERS_GROUP)] if user.local else [],
            'smb_id': identity,
            'nfs_id': identity,  # every user here has a uid, which NFS clients see
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

    def user_for_spec(self, spec):
        """The user an identity string names (see identity_query); None when it names no user
        known here. A malformed string is a 400."""
        query = identity_query(spec)
        if query is None:
            return None
        try:
            return self.identities[self.find(query)['auth_id']]
        except ApiError:
            return None


class Sessions:
    """Bearer tokens: login sessions expire after SESSION_LIFETIME_S; access tokens live until
    deleted, and are refused (401, as an expired session) once past their expiration_time or while
    disabled."""

    def __init__(self, directory):
        self.directory = directory
        self.tokens = {}
        self._seq = 0
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

    def token_of(self, header):
        """The token an Authorization header carries (usable or not); None without one."""
        if not header or not header.startswith('Bearer '):
            return None
        return self.tokens.get(header[len('Bearer ') :].strip())

    def authenticate(self, header):
        token = self.token_of(header)
        if token is None or not token.usable():
            raise need_login()
        return token.user

    def expire_sessions(self):
        with self._lock:
            doomed = [b for b in self.tokens if b.startswith('session-v1:')]
            for bearer in doomed:
                del self.tokens[bearer]
        return len(doomed)

    def create_access_token(self, creator, auth_id, expiration_time=None):
        """A token for the user `auth_id`; expiration_time (RFC 3339) may lie in the past: the token
        is then refused from the start."""
        expiration_ns = _expiration(expiration_time)
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
            self._seq += 1
            token = Token(
                'access-v1:' + secrets.token_urlsafe(32),
                owner,
                float('inf'),
                id=secrets.token_hex(8),
                creator=creator.auth_id,
                created=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
                expiration_ns=expiration_ns,
                seq=self._seq,
            )
            self.tokens[token.bearer] = token
        return {'id': token.id, 'bearer_token': token.bearer}

    def access_tokens(self, user_spec=None, after=None, limit=1000):
        """-> (metadata of a page of access tokens, in creation order, the key after it or None);
        user_spec: only that user's tokens (an identity string, as `?user=` carries it)."""
        tokens = sorted((t for t in list(self.tokens.values()) if t.id), key=lambda t: t.seq)
        if user_spec is not None:
            user = self.directory.user_for_spec(user_spec)
            tokens = [t for t in tokens if t.user is user]
        page, more = page_after(tokens, lambda t: t.seq, parse_after(after), limit)
        return [self.access_token_metadata(t) for t in page], (page[-1].seq if more and page else None)

    def access_token(self, token_id):
        for token in list(self.tokens.values()):
            if token.id and token.id == token_id:
                return token
        raise ApiError(404, 'access_token_not_found_error', f'No access token {token_id}')

    def access_token_metadata(self, token):
        return {
            'id': token.id,
            'user': token.user.identity(),
            'creator': self.directory.identities[token.creator].identity(),
            'creation_time': token.created,
            'expiration_time': format_ns(token.expiration_ns) if token.expiration_ns is not None else None,
            'enabled': token.enabled,
        }

    def modify_access_token(self, token_id, body):
        """`PATCH /v1/auth/access-tokens/{id}`: `enabled` (bool) and `expiration_time` (RFC 3339,
        or null for none), either or both; answers the token's metadata."""
        if not isinstance(body, dict):
            raise bad_request('An access token change needs a JSON object')
        unknown = set(body) - {'enabled', 'expiration_time'}
        if unknown:
            raise bad_request(f'Unknown access token fields: {", ".join(sorted(unknown))}')
        if 'enabled' in body and not isinstance(body['enabled'], bool):
            raise bad_request('enabled must be true or false')
        expiration_ns = _expiration(body['expiration_time']) if 'expiration_time' in body else None
        with self._lock:
            token = self.access_token(token_id)
            if 'enabled' in body:
                token.enabled = body['enabled']
            if 'expiration_time' in body:
                token.expiration_ns = expiration_ns
        return self.access_token_metadata(token)

    def delete_access_token(self, token_id):
        with self._lock:
            for bearer, token in list(self.tokens.items()):
                if token.id and token.id == token_id:
                    del self.tokens[bearer]
                    return
        raise ApiError(404, 'access_token_not_found_error', f'No access token {token_id}')


def _expiration(text):
    if text is None:
        return None
    if not isinstance(text, str):
        raise bad_request('expiration_time must be an RFC 3339 time or null')
    return parse_ns(text)


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
    directory.add_user('locker', 'locker', LOCKER_PRIVILEGES)
    return directory
