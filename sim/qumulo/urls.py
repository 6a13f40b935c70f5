"""Routing: which handler answers which method and path, and the privilege it needs.

Every cluster route answers under both `/v1/...` and `/api/v1/...`, as clusters do.
"""

import re
from dataclasses import dataclass

from . import responses as r
from .models import auth as p

REF = r'(?P<ref>[^/]+)'


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern
    handler: object
    privilege: str = None
    login: bool = True  # False: answered without a session


def _route(method, path, handler, privilege=None, login=True):
    return Route(method, re.compile(f'^(?:/api)?{path}$'), handler, privilege, login)


CLUSTER_ROUTES = [
    _route('POST', '/v1/session/login', r.login, login=False),
    _route('GET', '/v1/version', r.version, login=False),
    _route('GET', '/v1/session/who-am-i', r.who_am_i),
    _route('GET', '/v1/session/roles', r.my_roles),
    _route('GET', '/v1/users/(?P<user_id>[0-9]+)/groups/?', r.user_groups, p.IDENTITY_READ),
    _route('POST', '/v1/identity/find', r.find_identity, p.IDENTITY_READ),
    _route('POST', '/v1/identity/expand', r.expand_identity, p.IDENTITY_READ),
    _route('POST', '/v1/auth/access-tokens/?', r.create_access_token, p.TOKENS_WRITE),
    _route('GET', '/v1/auth/access-tokens/?', r.list_access_tokens, p.TOKENS_READ),
    _route('GET', '/v1/auth/access-tokens/(?P<token_id>[^/]+)', r.get_access_token, p.TOKENS_READ),
    _route('PATCH', '/v1/auth/access-tokens/(?P<token_id>[^/]+)', r.modify_access_token, p.TOKENS_WRITE),
    _route('DELETE', '/v1/auth/access-tokens/(?P<token_id>[^/]+)', r.delete_access_token, p.TOKENS_WRITE),
    _route('POST', '/v1/dns/resolve-ips-to-names', r.resolve_ips),
    _route('GET', '/v1/file-system/settings/notify', r.get_notify_settings, p.NOTIFY_SETTINGS_READ),
    _route('PUT', '/v1/file-system/settings/notify', r.set_notify_settings, p.NOTIFY_SETTINGS_WRITE),
    # Fixed names under /v1/files/ first, so they are not taken for a file ref.
    _route('POST', '/v1/files/resolve', r.resolve_paths),
    _route('POST', '/v1/files/try-resolve', r.try_resolve_paths),
    _route('GET', '/v1/files/locks/(?P<protocol>[^/]+)/(?P<lock_type>[^/]+)/?', r.list_locks, p.LOCK_READ),
    _route('GET', f'/v1/files/{REF}/info/attributes', r.get_attributes),
    _route('PATCH', f'/v1/files/{REF}/info/attributes', r.set_attributes),
    _route('GET', f'/v2/files/{REF}/info/acl', r.get_acl),
    _route('PUT', f'/v2/files/{REF}/info/acl', r.set_acl),
    _route('GET', f'/v1/files/{REF}/streams/?', r.list_named_streams),
    _route('POST', f'/v1/files/{REF}/copy-chunk', r.copy_chunk),
    _route('GET', f'/v1/files/{REF}/entries/?', r.read_directory),
    _route('POST', f'/v1/files/{REF}/entries/?', r.create_entry),
    _route('GET', f'/v1/files/{REF}/data', r.read_data),
    _route('PUT', f'/v1/files/{REF}/data', r.write_data),
    _route('PATCH', f'/v1/files/{REF}/data', r.write_data),
    _route('PATCH', f'/v1/files/{REF}/file-lock', r.modify_file_lock, p.LOCK_WRITE),
    _route('GET', f'/v1/files/{REF}/notify', r.notify),
    _route('GET', f'/v1/files/{REF}/locks/(?P<protocol>[^/]+)/(?P<lock_type>[^/]+)/?', r.list_file_locks, p.LOCK_READ),
    _route('DELETE', f'/v1/files/{REF}', r.delete_entry),
    _route('GET', '/v1/smb/files/?', r.list_file_handles, p.HANDLE_READ),
    _route('POST', '/v1/smb/files/close', r.close_file_handles, p.HANDLE_WRITE),
    _route('GET', '/v1/smb/sessions/?', r.list_sessions, p.SESSION_READ),
    _route('POST', '/v1/smb/sessions/close', r.close_sessions, p.SESSION_WRITE),
    _route('GET', '/v3/smb/shares/?', r.list_shares, p.SHARE_READ),
    _route('GET', '/v3/smb/shares/(?P<share_id>[^/]+)', r.get_share, p.SHARE_READ),
    _route('GET', '/v2/smb/shares/?', r.list_shares_v2, p.SHARE_READ),
]

SIM_ROUTES = [
    Route('POST', re.compile('^/sim/smb/open$'), r.sim_smb_open, login=False),
    Route('POST', re.compile('^/sim/smb/share$'), r.sim_smb_share, login=False),
    Route('POST', re.compile('^/sim/paging$'), r.sim_paging, login=False),
    Route('POST', re.compile('^/sim/drop-streams$'), r.sim_drop_streams, login=False),
    Route('POST', re.compile('^/sim/notify/inject$'), r.sim_notify_inject, login=False),
    Route('POST', re.compile('^/sim/notify/stall$'), r.sim_notify_stall, login=False),
    Route('POST', re.compile('^/sim/notify/limit$'), r.sim_notify_limit, login=False),
    Route('POST', re.compile('^/sim/fs/permissions$'), r.sim_fs_permissions, login=False),
    Route('POST', re.compile('^/sim/expire-sessions$'), r.sim_expire_sessions, login=False),
    Route('POST', re.compile('^/sim/dns$'), r.sim_dns, login=False),
    Route('POST', re.compile('^/sim/fail-next$'), r.sim_fail_next, login=False),
    Route('POST', re.compile('^/sim/latency$'), r.sim_latency, login=False),
]


def match(method, path):
    """-> (route, params) ; (None, None) when no route has this path; (None, allowed) when the
    path exists for other methods only."""
    allowed = []
    for route in SIM_ROUTES if path.startswith('/sim/') else CLUSTER_ROUTES:
        found = route.pattern.match(path)
        if found:
            if route.method == method:
                return route, found.groupdict()
            allowed.append(route.method)
    return None, (allowed or None)
