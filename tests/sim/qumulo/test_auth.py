"""Users, privileges, login sessions and access tokens (sim/qumulo/models/auth.py), through the
official SDK."""

from datetime import datetime, timedelta, timezone

import pytest
import requests
from qumulo.rest_client import RestClient

from tests.sim.qumulo.conftest import error_of, make_files


def test_login_and_who_am_i_for_each_builtin_user(sim):
    admin, viewer, nolock = (sim.client(u, u).auth.who_am_i() for u in ('admin', 'viewer', 'nolock'))
    assert admin['name'] == 'admin' and 'PRIVILEGE_FS_FILE_LOCK_WRITE' in admin['privileges']
    assert 'PRIVILEGE_SMB_FILE_HANDLE_READ' in viewer['privileges']
    assert 'PRIVILEGE_FS_FILE_LOCK_WRITE' not in viewer['privileges']
    assert 'PRIVILEGE_SMB_FILE_HANDLE_WRITE' not in viewer['privileges']
    assert nolock['privileges'] == []


def test_wrong_password_and_missing_session_are_401(sim):
    rc = RestClient(sim.host, sim.port)
    assert error_of(lambda: rc.login('admin', 'nope')).status_code == 401
    assert error_of(lambda: rc.auth.who_am_i()).status_code == 401


def test_a_non_ascii_password_logs_in_or_is_401_never_500(sim):
    # The built-in user `spaced` has a password with spaces at both ends and non-ASCII letters.
    assert sim.client('spaced', ' Grüße 2027 ').auth.who_am_i()['name'] == 'spaced'
    rc = RestClient(sim.host, sim.port)
    for wrong in ('Grüße 2027', 'pässwörd', '🔑', 'admin'):
        assert error_of(lambda: rc.login('spaced', wrong)).status_code == 401
    assert error_of(lambda: rc.login('admin', 'ädmin')).status_code == 401
    reply = requests.post(
        f'https://{sim.host}:{sim.port}/v1/session/login', verify=False, json={'username': 'admin', 'password': 42}
    )
    assert reply.status_code == 400 and reply.json()['error_class'] == 'invalid_request_error'


def test_expired_sessions_answer_401_until_login_again(sim):
    rc = sim.client()
    assert sim.control('expire-sessions')['expired'] >= 1
    assert error_of(lambda: rc.auth.who_am_i()).status_code == 401
    rc.login('admin', 'admin')
    assert rc.auth.who_am_i()['name'] == 'admin'


def test_access_token_works_and_survives_session_expiry(sim):
    from qumulo.lib.auth import Credentials
    from qumulo.lib.identity_util import Identity

    rc = sim.client()
    me = rc.auth.who_am_i()
    token = rc.access_tokens.create(Identity({'auth_id': me['id']}))
    assert token.bearer_token.startswith('access-v1:')
    sim.control('expire-sessions')
    with_token = RestClient(sim.host, sim.port, credentials=Credentials(token.bearer_token))
    assert with_token.auth.who_am_i()['name'] == 'admin'


def test_missing_privilege_is_403_naming_it(sim):
    make_files(sim.root, ['f.txt'])
    error = error_of(lambda: sim.client('viewer', 'viewer').fs.modify_file_lock(path='/f.txt', legal_hold=True))
    assert error.status_code == 403 and 'PRIVILEGE_FS_FILE_LOCK_WRITE' in error.description
    error = error_of(lambda: list(sim.client('nolock', 'nolock').smb.list_file_handles()))
    assert error.status_code == 403 and 'PRIVILEGE_SMB_FILE_HANDLE_READ' in error.description


# --- access tokens: expiry, PATCH, privileges, who-am-i ------------------------------------------
def token_client(sim, bearer):
    from qumulo.lib.auth import Credentials

    return RestClient(sim.host, sim.port, credentials=Credentials(bearer))


def me_identity(rc):
    from qumulo.lib.identity_util import Identity

    return Identity({'auth_id': rc.auth.who_am_i()['id']})


def test_an_access_token_past_its_expiration_time_is_refused_as_an_expired_session(sim):
    rc = sim.client()
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    token = rc.access_tokens.create(me_identity(rc), expiration_time=past)
    assert rc.access_tokens.get(token.id).expiration_time == past.strftime('%Y-%m-%dT%H:%M:%S.%f000Z')
    error = error_of(lambda: token_client(sim, token.bearer_token).auth.who_am_i())
    assert error.status_code == 401
    future = rc.access_tokens.create(me_identity(rc), expiration_time=datetime.now(timezone.utc) + timedelta(days=1))
    assert token_client(sim, future.bearer_token).auth.who_am_i()['name'] == 'admin'


def test_patch_disables_enables_and_moves_the_expiration_time(sim):
    rc = sim.client()
    token = rc.access_tokens.create(me_identity(rc))
    holder = token_client(sim, token.bearer_token)
    disabled = rc.access_tokens.modify(token.id, enabled=False)
    assert (disabled.id, disabled.enabled, disabled.expiration_time) == (token.id, False, None)
    assert disabled.user['name'] == 'admin' and disabled.creator['name'] == 'admin'
    assert error_of(holder.auth.who_am_i).status_code == 401
    assert rc.access_tokens.modify(token.id, enabled=True).enabled is True
    assert holder.auth.who_am_i()['access_token_id'] == token.id
    expired = rc.access_tokens.modify(token.id, expiration_time=datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    assert expired.expiration_time == '2020-01-02T03:04:05Z' and expired.enabled is True
    assert error_of(holder.auth.who_am_i).status_code == 401
    # null takes the expiration away (the SDK cannot send null: a raw PATCH does)
    cleared = rc.request('PATCH', f'/v1/auth/access-tokens/{token.id}', body={'expiration_time': None})
    assert cleared['expiration_time'] is None and holder.auth.who_am_i()['name'] == 'admin'


@pytest.mark.parametrize(
    'body, fragment',
    [
        ({'enabled': 'yes'}, 'enabled must be true or false'),
        ({'expiration_time': 'tomorrow'}, 'Invalid RFC 3339 time'),
        ({'expiration_time': 5}, 'expiration_time must be'),
        ({'owner': 'bob'}, 'Unknown access token fields: owner'),
        (['enabled'], 'needs a JSON object'),
    ],
)
def test_a_bad_patch_is_a_400_and_changes_nothing(sim, body, fragment):
    rc = sim.client()
    token = rc.access_tokens.create(me_identity(rc))
    error = error_of(lambda: rc.request('PATCH', f'/v1/auth/access-tokens/{token.id}', body=body))
    assert error.status_code == 400 and fragment in error.description
    assert rc.access_tokens.get(token.id).enabled is True
    missing = error_of(lambda: rc.access_tokens.modify('0123456789abcdef', enabled=False))
    assert missing.status_code == 404 and missing.error_class == 'access_token_not_found_error'


def test_token_privileges_are_access_tokens_read_and_write(sim):
    admin = sim.client().auth.who_am_i()['privileges']
    assert {'PRIVILEGE_ACCESS_TOKENS_READ', 'PRIVILEGE_ACCESS_TOKENS_WRITE'} <= set(admin)
    assert 'PRIVILEGE_ACCESS_TOKEN_WRITE' not in admin
    viewer = sim.client('viewer', 'viewer')
    listing = error_of(lambda: list(viewer.access_tokens.list()))
    assert listing.status_code == 403 and 'PRIVILEGE_ACCESS_TOKENS_READ' in listing.description
    creating = error_of(lambda: viewer.access_tokens.create(me_identity(viewer)))
    assert creating.status_code == 403 and 'PRIVILEGE_ACCESS_TOKENS_WRITE' in creating.description


def test_token_listing_filters_by_user_and_pages(sim):
    from qumulo.lib.identity_util import Identity

    rc = sim.client()
    mine = [rc.access_tokens.create(me_identity(rc)).id for _ in range(2)]
    viewers = rc.access_tokens.create(Identity('viewer')).id
    pages = list(rc.access_tokens.list(limit=1))
    assert [[e.id for e in p.entries] for p in pages] == [[mine[0]], [mine[1]], [viewers]]
    assert [e.id for p in rc.access_tokens.list(user=Identity('viewer')) for e in p.entries] == [viewers]
    # (the SDK cannot send user and limit together: it appends "?limit=" to a path that has a query)
    by_uid = rc.request('GET', f'/v1/auth/access-tokens/?user=uid%3A{rc.auth.who_am_i()["uid"]}&limit=1')
    assert [e['id'] for e in by_uid['entries']] == mine[:1]
    rest = rc.request('GET', by_uid['paging']['next'])
    assert [e['id'] for e in rest['entries']] == mine[1:] and rest['paging']['next'] is None


def test_who_am_i_names_the_access_token_home_directory_and_password_change(sim):
    rc = sim.client()
    me = rc.auth.who_am_i()
    assert (me['access_token_id'], me['home_directory'], me['can_change_password']) == (None, None, True)
    token = rc.access_tokens.create(me_identity(rc))
    assert token_client(sim, token.bearer_token).auth.who_am_i()['access_token_id'] == token.id


def test_locker_holds_only_what_locking_needs_and_no_role(sim):
    rc = sim.client('locker', 'locker')
    me = rc.auth.who_am_i()
    assert me['privileges'] == ['PRIVILEGE_FS_FILE_LOCK_WRITE', 'PRIVILEGE_FS_LOCK_READ', 'PRIVILEGE_IDENTITY_READ']
    assert rc.auth.my_roles() == []
    (sim.root / 'watched').mkdir()
    token = rc.credentials.bearer_token
    reply = requests.get(
        f'{sim.url}/v1/files/%2Fwatched%2F/notify?recursive=true',
        headers={'Authorization': f'Bearer {token}'},
        verify=False,
        timeout=30,
    )
    assert reply.status_code == 403 and 'DATA_ADMINISTRATOR' in reply.json()['description']
    refused = error_of(lambda: list(rc.smb.list_file_handles()))
    assert refused.status_code == 403 and 'PRIVILEGE_SMB_FILE_HANDLE_READ' in refused.description


def test_version_reads_qumulo_core_and_a_parsable_version(sim):
    from qumulo.rest.version import numeric_version

    rc = RestClient(sim.host, sim.port)  # no login needed
    assert rc.version.version()['revision_id'] == 'Qumulo Core 7.10.2'
    assert numeric_version(rc.conninfo, None).data == '7.10.2'
