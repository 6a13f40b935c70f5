"""Users, privileges, login sessions and access tokens (sim/qumulo/models/auth.py), through the
official SDK."""

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
