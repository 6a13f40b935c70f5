"""common.auth against the emulated cluster: login, re-login, TLS verification, privileges."""

import socket
import time

import pytest
from qumulo.lib.identity_util import Identity
from qumulo.lib.request import RequestError

from common import errors
from common.auth import Client, connect, require_privileges, who_am_i
from common.config import ConfigError, load_cluster_config
from common.errors import ToolError
from sim.qumulo.tls import make_certificate
from tests.hostile_proxy import HostileProxy


def config_for(sim, tmp_path, **overrides):
    return load_cluster_config(sim.write_config(tmp_path / 'tool.ini', **overrides))


def test_login_with_password(sim, tmp_path):
    client = connect(config_for(sim, tmp_path))
    assert isinstance(client, Client)
    assert client.credentials.bearer_token.startswith('session-v1:')
    assert who_am_i(client)['name'] == 'admin'


def make_access_token(sim, username='admin'):
    admin = sim.client()
    me = admin.auth.who_am_i()
    target = me if username == 'admin' else sim.client(username, username).auth.who_am_i()
    token = admin.access_tokens.create(Identity({'auth_id': target['id']}))
    return token.id, token.bearer_token


def test_login_with_access_token(sim, tmp_path):
    _, token = make_access_token(sim, 'viewer')
    client = connect(config_for(sim, tmp_path, USERNAME=None, PASSWORD=None, ACCESS_TOKEN=token))
    assert client.credentials.bearer_token == token
    assert who_am_i(client)['name'] == 'viewer'


def test_expired_session_logs_in_again_transparently(sim, tmp_path):
    client = connect(config_for(sim, tmp_path))
    first = client.credentials.bearer_token
    assert sim.control('expire-sessions')  # every session token is now invalid

    assert who_am_i(client)['name'] == 'admin'  # would be a 401 without the re-login
    second = client.credentials.bearer_token
    assert second != first and second.startswith('session-v1:')
    assert client._credentials == client.conninfo.credentials  # both copies updated

    # Raw requests and paged listings go through the same connection and recover the same way.
    (sim.root / 'a.txt').write_text('x')
    sim.control('expire-sessions')
    assert client.request('GET', '/v1/session/who-am-i')['name'] == 'admin'
    sim.control('expire-sessions')
    pages = list(client.fs.read_entire_directory(path='/', page_size=1))
    assert any(f['name'] == 'a.txt' for page in pages for f in page['files'])
    assert client.credentials.bearer_token not in (first, second)


def test_clone_keeps_the_session_and_the_relogin(sim, tmp_path):
    client = connect(config_for(sim, tmp_path, CA_BUNDLE=sim.cert_path))
    other = client.clone()
    assert isinstance(other, Client)
    assert other.credentials == client.credentials
    sim.control('expire-sessions')
    assert who_am_i(other)['name'] == 'admin'


def test_access_token_cannot_log_in_again_so_401_propagates(sim, tmp_path):
    token_id, token = make_access_token(sim)
    client = connect(config_for(sim, tmp_path, USERNAME=None, PASSWORD=None, ACCESS_TOKEN=token))
    sim.control('expire-sessions')  # only login sessions: the access token survives
    assert who_am_i(client)['name'] == 'admin'

    sim.client().access_tokens.delete(token_id)  # revoked: nothing to fall back on
    with pytest.raises(RequestError) as caught:
        client.request('GET', '/v1/session/who-am-i')
    assert caught.value.status_code == 401
    with pytest.raises(ToolError) as translated:
        who_am_i(client)
    assert translated.value.exit_code == errors.AUTH


def test_bad_password_is_one_line_auth_error(sim, tmp_path):
    config = config_for(sim, tmp_path, PASSWORD='wrong-password')
    with pytest.raises(ToolError) as caught:
        connect(config)
    error = caught.value
    assert error.exit_code == errors.AUTH
    assert '\n' not in error.message
    assert f'the cluster at {sim.host}:{sim.port} rejected the credentials' in error.message
    assert 'USERNAME (admin) and PASSWORD' in error.message and str(config.path) in error.message
    assert 'wrong-password' not in error.message


def test_rejected_access_token_is_auth_error(sim, tmp_path):
    config = config_for(sim, tmp_path, USERNAME=None, PASSWORD=None, ACCESS_TOKEN='access-v1:bogus')
    with pytest.raises(ToolError) as caught:
        connect(config)
    assert caught.value.exit_code == errors.AUTH
    assert 'ACCESS_TOKEN' in caught.value.message


def free_port(host):
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def test_refused_port_is_unreachable(sim, tmp_path):
    port = free_port(sim.host)
    with pytest.raises(ToolError) as caught:
        connect(config_for(sim, tmp_path, API_PORT=port))
    assert caught.value.exit_code == errors.UNREACHABLE
    assert caught.value.message == f'cannot reach the cluster at {sim.host}:{port}: connection refused'


def test_ca_bundle_of_the_cluster_verifies(sim, tmp_path):
    client = connect(config_for(sim, tmp_path, CA_BUNDLE=sim.cert_path))
    assert who_am_i(client)['name'] == 'admin'
    assert client.conninfo.conn.sock.getpeercert()  # a verified peer: its certificate is parsed


def test_other_ca_bundle_is_tls_error(sim, tmp_path):
    (tmp_path / 'other').mkdir()
    other, _ = make_certificate(sim.host, str(tmp_path / 'other'))  # same host, another key: not the cluster's
    with pytest.raises(ToolError) as caught:
        connect(config_for(sim, tmp_path, CA_BUNDLE=other))
    assert caught.value.exit_code == errors.TLS
    assert caught.value.message.startswith(f'cannot verify the TLS certificate of the cluster at {sim.host}:')
    assert 'certificate' in caught.value.message


def test_ca_bundle_that_is_not_pem_is_config_error(sim, tmp_path):
    junk = tmp_path / 'junk.pem'
    junk.write_text('not a certificate\n')
    with pytest.raises(ConfigError) as caught:
        connect(config_for(sim, tmp_path, CA_BUNDLE=junk))
    assert 'CA_BUNDLE' in caught.value.message and str(junk) in caught.value.message


def test_viewer_lacks_lock_privilege(sim, tmp_path):
    client = connect(config_for(sim, tmp_path, USERNAME='viewer', PASSWORD='viewer'))
    require_privileges(client, ['PRIVILEGE_FS_LOCK_READ', 'PRIVILEGE_SMB_FILE_HANDLE_READ'])
    with pytest.raises(ToolError) as caught:
        require_privileges(
            client, ['PRIVILEGE_FS_LOCK_READ', 'PRIVILEGE_FS_FILE_LOCK_WRITE', 'PRIVILEGE_SMB_FILE_HANDLE_WRITE']
        )
    assert caught.value.exit_code == errors.PRIVILEGE
    assert caught.value.message.startswith(
        'user viewer lacks the privilege PRIVILEGE_FS_FILE_LOCK_WRITE, PRIVILEGE_SMB_FILE_HANDLE_WRITE'
    )


def test_server_refusal_names_the_privilege(sim, tmp_path):
    client = connect(config_for(sim, tmp_path, USERNAME='nolock', PASSWORD='nolock'))
    (sim.root / 'f.txt').write_text('x')
    with pytest.raises(ToolError) as caught, errors.translated(sim.host, sim.port):
        client.fs.modify_file_lock(path='/f.txt', legal_hold=True)
    assert caught.value.exit_code == errors.PRIVILEGE
    assert 'PRIVILEGE_FS_FILE_LOCK_WRITE' in caught.value.message


def test_missing_file_is_not_found(sim, tmp_path):
    client = connect(config_for(sim, tmp_path))
    with pytest.raises(ToolError) as caught, errors.translated(sim.host, sim.port):
        client.fs.get_file_attr(path='/no/such/file')
    assert caught.value.exit_code == errors.NOT_FOUND


def test_server_error_after_login_is_a_failure_with_status(sim, tmp_path):
    client = connect(config_for(sim, tmp_path))
    sim.control('fail-next', {'count': 1, 'status': 503})
    with pytest.raises(ToolError) as caught:
        who_am_i(client)
    assert caught.value.exit_code == errors.FAILURE
    assert 'answered 503' in caught.value.message
    assert who_am_i(client)['name'] == 'admin'  # the next call works again


def test_slow_cluster_times_out_as_unreachable(sim, tmp_path):
    sim.control('latency', {'ms': 2500})
    with pytest.raises(ToolError) as caught:
        connect(config_for(sim, tmp_path), timeout=1)
    assert caught.value.exit_code == errors.UNREACHABLE
    assert caught.value.message == f'cannot reach the cluster at {sim.host}:{sim.port}: timed out'


@pytest.mark.slow  # waits out the proxy's idle cut four times (8 s of sleeps)
def test_a_kept_alive_connection_cut_while_idle_is_replaced_transparently(sim, tmp_path):
    proxy = HostileProxy(sim, tmp_path, idle_cut_s=1)
    try:
        client = connect(config_for(sim, tmp_path, API_PORT=proxy.port))
        for _ in range(2):
            time.sleep(2)  # the proxy hangs up the idle connection
            assert who_am_i(client)['name'] == 'admin'  # would be RemoteDisconnected
            sim.control('expire-sessions')
            time.sleep(2)
            assert client.request('GET', '/v1/session/who-am-i')['name'] == 'admin'  # re-login on a new one
        assert proxy.cuts >= 4
    finally:
        proxy.stop()


def test_a_429_carries_the_clusters_retry_after(sim, tmp_path):
    client = connect(config_for(sim, tmp_path))
    sim.control('fail-next', {'count': 1, 'status': 429, 'retry_after': 7})
    with pytest.raises(RequestError) as first:
        client.request('GET', '/v1/session/who-am-i')
    assert (first.value.status_code, first.value.retry_after) == (429, 7.0)
    sim.control('fail-next', {'count': 1, 'status': 503, 'retry_after': 'Wed, 21 Oct 2015 07:28:00 GMT'})
    with pytest.raises(RequestError) as second:
        client.request('GET', '/v1/session/who-am-i')
    assert second.value.retry_after == 0.0  # a date already past: no wait
    sim.control('fail-next', {'count': 1, 'status': 429, 'retry_after': '99999999'})
    with pytest.raises(RequestError) as third:
        client.request('GET', '/v1/session/who-am-i')
    assert third.value.retry_after == 600.0  # bounded: a server cannot park the tool for ever


def test_a_one_shot_client_asks_a_busy_cluster_again(sim, tmp_path, caplog):
    client = connect(config_for(sim, tmp_path), retries=3)
    (sim.root / 'f.txt').write_text('x')
    sim.control('fail-next', {'count': 2, 'status': 503, 'retry_after': 0})
    assert who_am_i(client)['name'] == 'admin'
    sim.control('fail-next', {'count': 1, 'status': 429, 'retry_after': 1})
    started = time.monotonic()
    client.request('PUT', '/v1/files/%2Ff.txt/data', body='ok')  # any call may be sent again after a 429/503
    assert time.monotonic() - started >= 1  # the cluster's Retry-After was honoured
    retries = [r.getMessage() for r in caplog.records if 'trying again' in r.getMessage()]
    assert len(retries) == 3 and all('\n' not in line for line in retries), retries
    sim.control('fail-next', {'count': 4, 'status': 503, 'retry_after': 0})
    with pytest.raises(ToolError) as caught:  # the cluster still busy after every retry: reported
        who_am_i(client)
    assert 'answered 503' in caught.value.message


def test_a_change_the_cluster_may_have_made_is_not_sent_again(sim, tmp_path):
    client = connect(config_for(sim, tmp_path), retries=3)
    (sim.root / 'f.txt').write_text('x')
    sim.control('fail-next', {'count': 1, 'status': 500})
    with pytest.raises(RequestError) as caught:  # a 500 may come after the change was made
        client.request('PUT', '/v1/files/%2Ff.txt/data', body='x')
    assert caught.value.status_code == 500
    sim.control('fail-next', {'count': 1, 'status': 500})
    assert client.request('GET', '/v1/session/who-am-i')['name'] == 'admin'  # a read is asked again


def test_the_watchers_client_is_not_retried_inside_a_call(sim, tmp_path):
    client = connect(config_for(sim, tmp_path))  # retries=0: the watcher rides out outages itself
    sim.control('fail-next', {'count': 1, 'status': 503})
    with pytest.raises(RequestError):
        client.request('GET', '/v1/session/who-am-i')
    assert client.clone().retries == 0 and connect(config_for(sim, tmp_path), retries=2).clone().retries == 2
