"""Wire format: each handler turns a parsed request into the JSON (or stream) a cluster answers.

Handlers take (cluster, request) and return a Reply or a Stream; they raise ApiError for errors.
Privileges a route needs are declared in urls.py, not here.
"""

import json
import os
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from .errors import ApiError, bad_request
from .models import RECURSIVE_MODES
from .models.auth import RECURSIVE_NOTIFY_ROLES
from .models.smb import access_of
from .models.notify import EVENT_TYPES

DEFAULT_PAGE = 1000


@dataclass
class Reply:
    body: object = None
    status: int = 200
    raw: bytes = None  # an octet-stream body instead of JSON


@dataclass
class Stream:
    """A notify subscription to be streamed as server-sent events until it ends."""

    subscription: object
    close: object  # called once the stream is over


@dataclass
class Request:
    method: str
    path: str
    params: dict
    query: dict
    body: bytes
    client: str
    user: object = None
    headers: dict = field(default_factory=dict)

    def json(self):
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError:
            raise bad_request('Request body is not valid JSON')

    def ref(self):
        return unquote(self.params['ref'])

    def flag(self, name):
        return str(self.query.get(name, 'false')).lower() in ('true', '1', 'yes')

    def limit(self):
        try:
            limit = int(self.query.get('limit', DEFAULT_PAGE))
        except ValueError:
            raise bad_request('limit must be an integer')
        if limit < 1:
            raise bad_request('limit must be at least 1')
        return limit


def _next_uri(base, limit, after, **extra):
    if after is None:
        return ''
    params = ''.join(f'&{k}={v}' for k, v in extra.items() if v is not None)
    return f'{base}?limit={limit}&after={quote(str(after), safe="")}{params}'


# --- session and identity ------------------------------------------------------------------------
def login(cluster, req):
    body = req.json()
    if not isinstance(body, dict) or 'username' not in body or 'password' not in body:
        raise bad_request('login needs username and password')
    return Reply(cluster.sessions.login(body['username'], body['password']))


def who_am_i(cluster, req):
    token = cluster.sessions.token_of(req.headers.get('Authorization'))
    return Reply(req.user.who_am_i(token.id if token and token.id else None))


def my_roles(cluster, req):
    return Reply(list(req.user.roles))


def user_groups(cluster, req):
    return Reply(cluster.directory.local_groups(req.params['user_id']))


def expand_identity(cluster, req):
    body = req.json()
    if not isinstance(body.get('id'), dict):
        raise bad_request('expand needs an "id" identity')
    return Reply(cluster.directory.expand(body['id']))


def find_identity(cluster, req):
    return Reply(cluster.directory.find(req.json()))


def create_access_token(cluster, req):
    body = req.json()
    user = body.get('user') or {}
    auth_id = user.get('auth_id')
    if auth_id is None and user.get('name'):
        auth_id = cluster.directory.find({'name': user['name']})['auth_id']
    if auth_id is None:
        raise bad_request('user must name an auth_id or a name')
    return Reply(cluster.sessions.create_access_token(req.user, auth_id, body.get('expiration_time')))


def list_access_tokens(cluster, req):
    limit, user = req.limit(), req.query.get('user')
    tokens, after = cluster.sessions.access_tokens(user, req.query.get('after'), limit)
    nxt = _next_uri('/v1/auth/access-tokens/', limit, after, user=quote(user, safe='') if user else None)
    return Reply({'entries': tokens, 'paging': {'next': nxt or None}})


def get_access_token(cluster, req):
    return Reply(cluster.sessions.access_token_metadata(cluster.sessions.access_token(req.params['token_id'])))


def modify_access_token(cluster, req):
    return Reply(cluster.sessions.modify_access_token(req.params['token_id'], req.json()))


def delete_access_token(cluster, req):
    cluster.sessions.delete_access_token(req.params['token_id'])
    return Reply(None)


def resolve_ips(cluster, req):
    ips = req.json()
    if not isinstance(ips, list) or not all(isinstance(ip, str) for ip in ips):
        raise bad_request('resolve-ips-to-names needs a list of IP addresses')
    return Reply([cluster.dns.resolve_ip(ip) for ip in ips])


def version(cluster, req):
    # qq and the SDK's numeric_version take the last word of revision_id as the version.
    return Reply(
        {
            'revision_id': 'Qumulo Core 7.10.2',
            'build_id': 'sim',
            'flavor': 'release',
            'build_date': '2026-10-01T00:00:00Z',
        }
    )


# --- files ---------------------------------------------------------------------------------------
def get_attributes(cluster, req):
    return Reply(cluster.fs.get_attributes(req.user, req.ref(), with_lock=req.flag('retrieve-file-lock')))


def set_attributes(cluster, req):
    return Reply(cluster.fs.set_attributes(req.user, req.ref(), req.json()))


def read_directory(cluster, req):
    return Reply(cluster.fs.read_directory(req.user, req.ref(), req.limit(), req.query.get('after', '')))


def create_entry(cluster, req):
    return Reply(cluster.fs.create(req.user, req.ref(), req.json()))


def delete_entry(cluster, req):
    cluster.fs.delete(req.user, req.ref())
    return Reply(None)


def read_data(cluster, req):
    return Reply(raw=cluster.fs.read(req.user, req.ref()))


def write_data(cluster, req):
    offset = req.query.get('offset')
    return Reply(cluster.fs.write(req.user, req.ref(), req.body, int(offset) if offset is not None else None))


def get_acl(cluster, req):
    return Reply(cluster.fs.get_acl(req.user, req.ref(), cluster.directory))


def set_acl(cluster, req):
    return Reply(cluster.fs.set_acl(req.user, req.ref(), req.json(), cluster.directory))


def list_named_streams(cluster, req):
    return Reply(cluster.fs.named_streams(req.user, req.ref()))


def copy_chunk(cluster, req):
    return Reply(cluster.fs.copy_chunk(req.user, req.ref(), req.json()))


def _id_list(ids):
    if not isinstance(ids, list) or not all(isinstance(i, (str, int)) for i in ids):
        raise bad_request('resolve needs a list of file ids')
    return ids


def resolve_paths(cluster, req):
    return Reply(cluster.fs.resolve(_id_list(req.json())))


def try_resolve_paths(cluster, req):
    body = req.json()
    return Reply(cluster.fs.try_resolve(_id_list(body.get('ids') if isinstance(body, dict) else None)))


def modify_file_lock(cluster, req):
    body = req.json()
    if not isinstance(body, dict):
        raise bad_request('file-lock needs a JSON object')
    return Reply(cluster.fs.modify_lock(req.user, req.ref(), body))


# --- change notify -------------------------------------------------------------------------------
def notify(cluster, req):
    recursive = req.flag('recursive')
    # The role is needed for a recursive watch even where the cluster then ignores recursion.
    if recursive and not RECURSIVE_NOTIFY_ROLES & set(req.user.roles):
        raise ApiError(403, 'privilege_denied_error', 'A recursive watch needs the DATA_ADMINISTRATOR role')
    path, _ = cluster.fs.check_readable_directory(req.user, req.ref())
    types = [t for t in req.query.get('filter', '').split(',') if t]
    unknown = sorted(set(types) - EVENT_TYPES)
    if unknown:
        raise bad_request(f'Unknown notify types: {", ".join(unknown)}')
    if recursive:
        mode = cluster.notify_settings['recursive_mode']
        if mode == 'DISABLED_ERROR':
            raise ApiError(
                400, 'fs_notify_recursive_disabled_error', 'Recursive change notify is disabled on this cluster'
            )
        recursive = mode != 'DISABLED_IGNORE'
    owner = req.headers.get('Authorization')
    if cluster.changes.missed_events(owner, cluster.fs.id_of(path)):
        raise ApiError(
            400,
            'fs_watcher_missed_events_error',
            'This watcher fell behind and change events were lost; watch again and rescan',
        )
    sub = cluster.changes.subscribe(path, recursive, types, owner)
    return Stream(sub, lambda: cluster.changes.unsubscribe(sub))


def get_notify_settings(cluster, req):
    return Reply(dict(cluster.notify_settings))


def set_notify_settings(cluster, req):
    mode = req.json().get('recursive_mode')
    if mode not in RECURSIVE_MODES:
        raise bad_request(f'recursive_mode must be one of {", ".join(RECURSIVE_MODES)}')
    cluster.notify_settings['recursive_mode'] = mode
    return Reply(dict(cluster.notify_settings))


# --- SMB -----------------------------------------------------------------------------------------
def list_file_handles(cluster, req):
    limit = req.limit()
    file_number = req.query.get('file_number')
    resolver = None
    if req.flag('resolve_paths'):
        resolver = _path_resolver(cluster)
    handles, after = cluster.smb.list_handles(file_number, req.query.get('after'), limit, resolver)
    nxt = _next_uri('/v1/smb/files/', limit, after, resolve_paths='true' if resolver else None, file_number=file_number)
    return Reply({'file_handles': handles, 'paging': {'next': nxt}})


def _path_resolver(cluster):
    """file id -> its path now, for a listing with resolve_paths; "" for a file that cannot be
    resolved (removed while open), as a cluster leaves such a path empty."""
    cache = {}

    def resolve(file_id, opened_as):
        if file_id not in cache:
            path = cluster.fs.known_path(file_id)
            if path and os.path.lexists(path):
                cache[file_id] = cluster.fs.cluster_path(path)
            else:
                try:
                    cache[file_id] = cluster.fs.resolve([file_id])[0]['path']
                except ApiError:
                    cache[file_id] = ''
        return cache[file_id]

    return resolve


def close_file_handles(cluster, req):
    body = req.json()
    if not isinstance(body, list):
        raise bad_request('close needs a list of file handles')
    try:
        locations = [h['handle_info']['location'] for h in body]
    except (TypeError, KeyError):
        raise bad_request('each handle needs handle_info.location')
    return Reply(cluster.smb.close_handles(locations))


def list_sessions(cluster, req):
    """`identity` (a name, SID, uid:N, auth_id:N, local:name, ...) lists only that user's sessions;
    one naming no user known here lists none."""
    limit, identity = req.limit(), req.query.get('identity')
    user = cluster.directory.user_for_spec(identity) if identity is not None else None
    if identity is not None and user is None:
        return Reply({'session_infos': [], 'paging': {'next': ''}})
    sessions, after = cluster.smb.list_sessions(user, req.query.get('after'), limit)
    quoted = quote(identity, safe='') if identity is not None else None
    return Reply(
        {'session_infos': sessions, 'paging': {'next': _next_uri('/v1/smb/sessions/', limit, after, identity=quoted)}}
    )


def close_sessions(cluster, req):
    body = req.json()
    if not isinstance(body, list) or not all(isinstance(s, dict) and isinstance(s.get('location'), str) for s in body):
        raise bad_request('close needs a list of sessions, each with its location')
    return Reply(cluster.smb.close_sessions([s['location'] for s in body]))


def list_shares(cluster, req):
    return Reply({'entries': cluster.smb.list_shares()})


def list_shares_v2(cluster, req):
    newer = ('allow_fs_path_create', 'expand_fs_path_variables', 'offline_files_caching_mode')
    shares = [{k: v for k, v in share.items() if k not in newer} for share in cluster.smb.list_shares()]
    return Reply([dict(share, bytes_per_sector='512') for share in shares])


def get_share(cluster, req):
    share = cluster.smb.share(req.params['share_id'])
    if share is None:
        raise ApiError(404, 'smb_share_not_found_error', f'No SMB share with id {req.params["share_id"]}')
    return Reply(share)


def _lock_kind(req):
    proto, kind = req.params['protocol'], req.params['lock_type']
    if (proto, kind) not in (
        ('smb', 'share-mode'),
        ('smb', 'byte-range'),
        ('nlm', 'byte-range'),
        ('nfs4', 'byte-range'),
    ):
        raise bad_request(f'Listing lock type {kind} for protocol {proto} is not supported')
    return proto, kind


def _grants_page(cluster, req, grants, base):
    # A lock listing sends a next link after every page that held grants, the last one too, and
    # none after an empty page: a client takes the empty page, not a short one, for the end.
    limit = req.limit()
    page, last = cluster.smb.grants_page(grants, req.query.get('after'), limit)
    extra = ''.join(f'&{k}={quote(req.query[k], safe="")}' for k in ('owner_address', 'owner_name') if req.query.get(k))
    return Reply({'grants': page, 'paging': {'next': f'{base}?limit={limit}&after={last}{extra}' if page else None}})


def list_locks(cluster, req):
    proto, kind = _lock_kind(req)
    grants = (
        cluster.smb.grants(kind, owner_address=req.query.get('owner_address'), owner_name=req.query.get('owner_name'))
        if proto == 'smb'
        else []
    )
    return _grants_page(cluster, req, grants, f'/v1/files/locks/{proto}/{kind}/')


def list_file_locks(cluster, req):
    proto, kind = _lock_kind(req)
    ref = req.ref()
    os_path, st = cluster.fs.lookup(ref)
    grants = cluster.smb.grants(kind, file_id=cluster.fs.id_of(os_path, st)) if proto == 'smb' else []
    return _grants_page(cluster, req, grants, f'/v1/files/{req.params["ref"]}/locks/{proto}/{kind}/')


# --- the /sim/ control surface ------------------------------------------------------------------
def sim_smb_open(cluster, req):
    body = req.json()
    # A list of open requests opens them all in one call (benchmarks need tens of thousands).
    if isinstance(body, list):
        return Reply([_sim_open_one(cluster, spec).body for spec in body])
    return _sim_open_one(cluster, body)


def _sim_open_one(cluster, body):
    """{"path", "user", "client", "access": "read"|"write" | "access_mask": [MS_ACCESS_...],
    "share_mode": [API_SHARE_MODE_...], "share", "machine", "byte_ranges": [[offset, size]]}."""
    if not isinstance(body, dict):
        raise bad_request('/sim/smb/open needs an object (or a list of objects)')
    for key in ('path', 'user', 'client'):
        if not body.get(key):
            raise bad_request(f'/sim/smb/open needs "{key}"')
    access_of(body.get('access'), body.get('access_mask'), body.get('share_mode'))  # before the file is made
    try:
        ranges = [(int(o), int(s)) for o, s in body.get('byte_ranges', [])]
    except (TypeError, ValueError):
        raise bad_request('byte_ranges must be a list of [offset, size] pairs')
    os_path = cluster.fs.os_path(body['path'])
    if not os.path.lexists(os_path):  # an SMB client may create the file it opens
        os.makedirs(os.path.dirname(os_path), exist_ok=True)
        open(os_path, 'ab').close()
    st = os.lstat(os_path)
    user = cluster.directory.identity_for_name(body['user'])
    handle = cluster.smb.open(
        cluster.fs.id_of(os_path, st),
        cluster.fs.cluster_path(os_path),
        user,
        body['client'],
        access=body.get('access'),
        byte_ranges=ranges,
        access_mask=body.get('access_mask'),
        share_mode=body.get('share_mode'),
        share=body.get('share'),
        machine=body.get('machine'),
    )
    return Reply(handle)


def sim_smb_share(cluster, req):
    """{"share_name", "fs_path"} (or a list of them): registers SMB shares (the folder is made if
    missing); answers the shares as listed."""
    body = req.json()
    shares = []
    for spec in body if isinstance(body, list) else [body]:
        if not isinstance(spec, dict):
            raise bad_request('/sim/smb/share needs {"share_name", "fs_path"} (or a list of them)')
        os_path = cluster.fs.os_path(spec.get('fs_path') if isinstance(spec.get('fs_path'), str) else '')
        shares.append(cluster.smb.register_share(spec.get('share_name'), spec.get('fs_path')))
        os.makedirs(os_path, exist_ok=True)
    return Reply(shares if isinstance(body, list) else shares[0])


def sim_paging(cluster, req):
    body = req.json()
    short_pages = body.get('short_pages') if isinstance(body, dict) else None
    if not isinstance(short_pages, bool):
        raise bad_request('/sim/paging needs {"short_pages": true|false}')
    cluster.smb.short_pages = short_pages
    return Reply({'short_pages': short_pages})


def sim_drop_streams(cluster, req):
    return Reply({'dropped': cluster.changes.drop_all()})


def sim_notify_inject(cluster, req):
    line = req.json().get('line') if isinstance(req.json(), dict) else None
    if not isinstance(line, str) or '\n' in line or '\r' in line:
        raise bad_request('/sim/notify/inject needs {"line": "one line of text"}')
    return Reply({'streams': cluster.changes.inject(line)})


def sim_notify_stall(cluster, req):
    body = req.json()
    seconds = body.get('seconds') if isinstance(body, dict) else None
    if not isinstance(seconds, (int, float)) or not 0 <= seconds <= 600:
        raise bad_request('/sim/notify/stall needs {"seconds": 0-600}')
    cluster.changes.stall(seconds)
    return Reply({'seconds': seconds})


def sim_notify_limit(cluster, req):
    body = req.json()
    events = body.get('events') if isinstance(body, dict) else None
    if not isinstance(events, int) or events < 1:
        raise bad_request('/sim/notify/limit needs {"events": N} with N at least 1')
    cluster.changes.queue_limit = events
    return Reply({'events': events})


def sim_fs_permissions(cluster, req):
    """Change a file's owner, group, mode or ACL as an SMB or NFS client would: {"path", "owner"
    (a user name or uid), "group" (gid), "mode" (octal text), "acl" (entries, or null to clear)}."""
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get('path'), str):
        raise bad_request('/sim/fs/permissions needs {"path": ...}')
    unknown = set(body) - {'path', 'owner', 'group', 'mode', 'acl'}
    if unknown:
        raise bad_request(f'/sim/fs/permissions does not take: {", ".join(sorted(unknown))}')
    os_path, _ = cluster.fs.lookup(body['path'])
    owner = body.get('owner')
    if isinstance(owner, str) and not owner.isdigit():
        owner = cluster.directory.identity_for_name(owner).uid
    return Reply(
        cluster.fs.set_permissions(
            os_path,
            owner_uid=None if owner is None else int(owner),
            group_gid=None if body.get('group') is None else int(body['group']),
            mode=body.get('mode'),
            acl=body['acl'] if 'acl' in body else False,
        )
    )


def sim_expire_sessions(cluster, req):
    return Reply({'expired': cluster.sessions.expire_sessions()})


def sim_dns(cluster, req):
    return Reply({'registered': cluster.dns.register(req.json())})


def sim_fail_next(cluster, req):
    body = req.json()
    cluster.faults.fail_next(body.get('count', 1), body.get('status', 503), body.get('retry_after'))
    return Reply(
        {
            'count': cluster.faults.fail_count,
            'status': cluster.faults.fail_status,
            'retry_after': cluster.faults.fail_retry_after,
        }
    )


def sim_latency(cluster, req):
    cluster.faults.set_latency(req.json().get('ms', 0))
    return Reply({'ms': int(cluster.faults.latency_s * 1000)})
