"""The official `qq` CLI (qumulo-api 7.10.2.1), run unchanged as a subprocess against sim/qumulo.

Each test runs qq the way a user does, with its own credentials store (`--credentials-store`, so
~/.qfsd_cred is never touched), and checks what qq prints and its exit status.
"""

import contextlib
import json
import pathlib
import subprocess
import sys
import time
from urllib.parse import quote

import pytest
import requests

# Each qq run starts the SDK's whole CLI afresh (about a second), and most tests run it several
# times: the module takes minutes.
pytestmark = pytest.mark.slow

# The console script pip installs with the SDK (the SDK has no `python -m` entry point for qq).
QQ = pathlib.Path(sys.executable).with_name('qq')
FILE = '/share/a.xlsx'
CLIENT = '10.0.0.5'
RETENTION = '2031-12-31T00:00:00Z'
LIST_SMB_SHARE_MODE = ('fs_list_locks', '--protocol', 'smb', '--lock-type', 'share-mode')


def qq_argv(sim, *args, user='admin'):
    """`qq --host --port --credentials-store <per-user file in the test's tmp dir> ARGS`."""
    store = sim.root.parent / f'qq-credentials-{user}'
    return [
        sys.executable,
        str(QQ),
        '--host',
        sim.host,
        '--port',
        str(sim.port),
        '--credentials-store',
        str(store),
        *args,
    ]


def qq(sim, *args, user='admin', answer=None, ok=True):
    """Run qq ARGS; `answer` is typed at qq's confirmation prompt, otherwise stdin is /dev/null."""
    done = subprocess.run(
        qq_argv(sim, *args, user=user),
        input=answer,
        stdin=None if answer is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if ok:
        assert done.returncode == 0, f'qq {" ".join(args)} failed ({done.returncode}): {done.stderr}'
    return done


def json_docs(text):
    """Every JSON document qq printed one after the other (qq prints one per page)."""
    decoder, docs, at = json.JSONDecoder(), [], 0
    while text[at:].strip():
        at += len(text[at:]) - len(text[at:].lstrip())
        doc, at = decoder.raw_decode(text, at)
        docs.append(doc)
    return docs


def qq_json(sim, *args, **kwargs):
    return json_docs(qq(sim, *args, **kwargs).stdout)[0]


def login(sim, user='admin'):
    qq(sim, 'login', '-u', user, '-p', user, user=user)
    return sim


def make_file(sim, path, text='data'):
    target = sim.root / path.lstrip('/')
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def file_id(sim, path):
    return qq_json(sim, 'fs_file_get_attr', '--path', path)['id']


def smb_open(sim, path=FILE, user='alice', client=CLIENT, access='write'):
    make_file(sim, path)
    return sim.control('smb/open', {'path': path, 'user': user, 'client': client, 'access': access})


def wait_until(predicate, timeout=10.0, what='condition'):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f'timed out waiting for {what}')


@pytest.fixture
def cluster(sim):
    """The emulator, with qq logged in as admin."""
    return login(sim)


@contextlib.contextmanager
def notify(sim, directory, *args):
    """`qq fs_notify --path DIRECTORY ARGS --file OUT` in the background; yields a reader of OUT.

    qq stops watching when its stdin reaches EOF (its CTRL+D canceler), so stdin is a pipe kept
    open while watching and closed to stop it (a kill is only the fallback). The watch is known to
    be live once an event for a probe file created in the directory has reached OUT."""
    out = sim.root.parent / f'notify-{time.monotonic_ns()}.out'
    proc = subprocess.Popen(
        qq_argv(sim, 'fs_notify', '--path', directory, *args, '--file', str(out)),
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def read():
        return out.read_text() if out.exists() else ''

    try:
        for attempt in range(8):
            (sim.root / directory.strip('/') / f'probe{attempt}').write_text('')
            with contextlib.suppress(AssertionError):
                wait_until(lambda: 'probe' in read() or proc.poll() is not None, 2.0)
                break
        assert 'probe' in read(), f'fs_notify never reported an event: {read()!r}'
        yield read
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stderr = proc.stderr.read()
        proc.stderr.close()
    assert proc.returncode == 0, stderr


def test_login_stores_a_token_and_a_wrong_password_fails(sim):
    store = sim.root.parent / 'qq-credentials-admin'
    wrong = qq(sim, 'login', '-u', 'admin', '-p', 'wrong', ok=False)
    assert wrong.returncode != 0
    assert 'Error 401' in wrong.stderr and 'auth_login_error' in wrong.stderr
    assert not store.exists()
    assert login(sim) and json.loads(store.read_text())['bearer_token'].startswith('session-v1:')


def test_who_am_i_names_the_user_and_lists_privileges(cluster):
    # qq who_am_i also reads GET /v1/session/roles (then /v1/users/ID/groups/, /v1/identity/expand).
    out = qq(cluster, 'who_am_i').stdout
    me = json_docs(out.split('This user is granted')[0])[0]
    assert me['name'] == 'admin'
    assert {'PRIVILEGE_FS_FILE_LOCK_WRITE', 'PRIVILEGE_SMB_FILE_HANDLE_READ'} <= set(me['privileges'])
    assert 'This user is granted the following roles:' in out


def test_get_attr_retrieves_the_file_lock(cluster):
    make_file(cluster, FILE)
    attrs = qq_json(cluster, 'fs_file_get_attr', '--path', FILE, '--retrieve-file-lock')
    assert (attrs['path'], attrs['name'], attrs['type']) == (FILE, 'a.xlsx', 'FS_FILE_TYPE_FILE')
    assert attrs['id'] == attrs['file_number']
    assert attrs['lock'] == {'legal_hold': False, 'retention_period': None}


def test_modify_lock_extends_holds_and_refuses_to_shorten(cluster):
    make_file(cluster, FILE)

    def modify(*flags, ok=True):
        return qq(cluster, 'fs_file_modify_lock', '--path', FILE, *flags, ok=ok)

    lock = json.loads(modify('--retention-period', RETENTION).stdout)
    assert lock['legal_hold'] is False and lock['retention_period'].startswith('2031-12-31T00:00:00')
    lock = json.loads(modify('--enable-legal-hold').stdout)
    assert lock['legal_hold'] is True and lock['retention_period'].startswith('2031-12-31T00:00:00')
    shorter = modify('--retention-period', '2030-01-01T00:00:00Z', ok=False)
    assert shorter.returncode == 1 and 'Error 4' in shorter.stderr and 'retention' in shorter.stderr.lower()
    lock = qq_json(cluster, 'fs_file_get_attr', '--path', FILE, '--retrieve-file-lock')['lock']
    assert lock['legal_hold'] is True and lock['retention_period'].startswith('2031-12-31T00:00:00')
    assert json.loads(modify('--disable-legal-hold').stdout)['legal_hold'] is False


def test_modify_lock_on_a_directory_fails(cluster):
    (cluster.root / 'dir').mkdir()
    failed = qq(cluster, 'fs_file_modify_lock', '--path', '/dir', '--enable-legal-hold', ok=False)
    assert failed.returncode == 1 and 'Error 400' in failed.stderr and 'not_a_file' in failed.stderr


def test_qq_has_no_fs_file_set_lock_only_fs_file_modify_lock(sim):
    # Older Qumulo documentation names `qq fs_file_set_lock`; the pinned SDK (7.10.2.1) has only
    # `fs_file_modify_lock`, and says so.
    old = qq(sim, 'fs_file_set_lock', '--path', FILE, ok=False)
    assert old.returncode == 2
    assert "invalid choice: 'fs_file_set_lock'" in old.stderr and 'fs_file_modify_lock' in old.stderr


def test_read_dir_returns_every_entry_across_small_pages(cluster):
    names = [f'file{n:02}' for n in range(23)]
    for name in names:
        make_file(cluster, name)
    pages = json_docs(qq(cluster, 'fs_read_dir', '--path', '/', '--page-size', '4').stdout)
    assert len(pages) == 6 and [len(p['files']) for p in pages] == [4, 4, 4, 4, 4, 3]
    assert sorted(f['name'] for page in pages for f in page['files']) == names
    assert pages[-1]['paging']['next'] == '' and all(page['path'] == '/' for page in pages)


def test_resolve_paths_maps_ids_to_paths(cluster):
    make_file(cluster, FILE)
    (cluster.root / 'dir').mkdir()
    ids = [file_id(cluster, FILE), file_id(cluster, '/dir')]
    resolved = qq_json(cluster, 'fs_resolve_paths', '--ids', *ids)
    assert resolved == [{'id': ids[0], 'path': FILE}, {'id': ids[1], 'path': '/dir/'}]


def test_notify_reports_new_files_as_json(cluster):
    (cluster.root / 'watch').mkdir()
    with notify(cluster, '/watch', '--json') as output:
        make_file(cluster, '/watch/new.txt')
        wait_until(lambda: '"new.txt"' in output(), what='an event for new.txt')
    events = [e for batch in json.loads(output()) for e in batch if e['path'] == 'new.txt']
    assert events[0]['type'] == 'child_file_added'
    assert events[0]['spine'] == [file_id(cluster, '/watch'), file_id(cluster, '/watch/new.txt')]


def test_notify_recursive_reports_changes_in_subdirectories(cluster):
    (cluster.root / 'watch' / 'sub').mkdir(parents=True)
    with notify(cluster, '/watch', '--recursive') as output:
        make_file(cluster, '/watch/sub/deep.txt')
        wait_until(lambda: 'sub/deep.txt' in output(), what='an event for sub/deep.txt')
    rows = [line.split() for line in output().splitlines()]
    assert rows[0] == ['Type', 'Path', 'Stream', 'Name']
    assert ['child_file_added', 'sub/deep.txt', 'None'] in rows


def test_list_share_mode_locks_all_and_by_path(cluster):
    smb_open(cluster)
    smb_open(cluster, '/share/b.docx', user='bob', client='10.0.0.6', access='read')
    grants = qq_json(cluster, *LIST_SMB_SHARE_MODE, '--json')
    assert sorted((g['path'], g['owner_address']) for g in grants) == [
        ('/share/a.xlsx', CLIENT),
        ('/share/b.docx', '10.0.0.6'),
    ]
    mine = next(g for g in grants if g['path'] == FILE)
    assert mine['file_id'] == file_id(cluster, FILE) and 'API_SHARE_MODE_WRITE' in mine['mode']
    table = qq(cluster, *LIST_SMB_SHARE_MODE, '--path', FILE).stdout
    assert table.splitlines() == [f'Read, Write, Exclude write\t{CLIENT}\t{FILE}']


def test_list_file_handles_resolves_paths(cluster):
    handle = smb_open(cluster)
    listed = qq_json(cluster, 'smb_list_file_handles', '--resolve-paths')['file_handles']
    assert [(h['file_number'], h['handle_info']['location'], h['handle_info']['path']) for h in listed] == [
        (file_id(cluster, FILE), handle['handle_info']['location'], FILE)
    ]
    plain = qq_json(cluster, 'smb_list_file_handles')['file_handles']
    assert 'path' not in plain[0]['handle_info']


def test_close_file_handle_asks_first_then_the_handle_is_gone(cluster):
    doomed = smb_open(cluster)['handle_info']['location']
    kept = smb_open(cluster, '/share/b.docx')['handle_info']['location']

    def listed():
        return [h['handle_info']['location'] for h in qq_json(cluster, 'smb_list_file_handles')['file_handles']]

    declined = qq(cluster, 'smb_close_file_handle', '--location', doomed, answer='no\n')
    assert 'Are you sure' in declined.stdout and 'Canceling' in declined.stdout
    assert listed() == [doomed, kept]
    assert 'Are you sure' in qq(cluster, 'smb_close_file_handle', '--location', doomed, answer='yes\n').stdout
    assert listed() == [kept]


def test_list_sessions_shows_the_client_address(cluster):
    smb_open(cluster)
    sessions = qq_json(cluster, 'smb_list_sessions')['session_infos']
    assert [(s['originator'], s['user']['name'], s['num_opens']) for s in sessions] == [(CLIENT, 'alice', 1)]


@pytest.mark.parametrize(
    'user, args, privilege',
    [
        ('viewer', ('fs_file_modify_lock', '--path', FILE, '--enable-legal-hold'), 'PRIVILEGE_FS_FILE_LOCK_WRITE'),
        ('nolock', ('smb_list_file_handles',), 'PRIVILEGE_SMB_FILE_HANDLE_READ'),
    ],
)
def test_a_missing_privilege_is_a_403_naming_it(sim, user, args, privilege):
    make_file(sim, FILE)
    denied = qq(login(sim, user), *args, user=user, ok=False)
    assert denied.returncode == 1 and 'Error 403' in denied.stderr and privilege in denied.stderr
    lock = qq_json(sim, 'fs_file_get_attr', '--path', FILE, '--retrieve-file-lock', user=user)['lock']
    assert lock == {'legal_hold': False, 'retention_period': None}


@pytest.mark.parametrize('prefix', ['/api/v1', '/v1'])
def test_endpoints_answer_under_both_prefixes(sim, prefix):
    make_file(sim, FILE)

    def call(method, path, **kw):
        return requests.request(method, f'{sim.url}{prefix}{path}', verify=sim.cert_path, timeout=30, **kw)

    token = call('POST', '/session/login', json={'username': 'admin', 'password': 'admin'}).json()['bearer_token']
    auth = {'Authorization': f'Bearer {token}'}
    me = call('GET', '/session/who-am-i', headers=auth)
    assert me.status_code == 200 and me.json()['name'] == 'admin'
    attrs = call('GET', f'/files/{quote(FILE, safe="")}/info/attributes?retrieve-file-lock=true', headers=auth)
    assert attrs.status_code == 200 and attrs.json()['path'] == FILE
    assert attrs.json()['lock'] == {'legal_hold': False, 'retention_period': None}


# --- identities, sessions, shares, DNS, version, access tokens -----------------------------------
def test_expand_identity_names_the_nfs_and_smb_mappings(cluster):
    table = qq(cluster, 'auth_expand_identity', 'admin').stdout
    me = qq_json(cluster, 'auth_expand_identity', 'local:admin', '--json')
    uid = me['id']['uid']
    assert f'NFS Mapping: admin (uid:{uid})' in table and f'SMB Mapping: admin ({me["id"]["sid"]})' in table
    assert 'Users' in table.split('Group Membership:')[1]
    assert me['nfs_id'] == me['smb_id'] == me['id'] and me['type'] == 'USER'
    missing = qq(cluster, 'auth_expand_identity', 'nobody-here', ok=False)
    assert missing.returncode == 1 and 'identity_not_found_error' in missing.stderr


def test_who_am_i_shows_the_groups_and_the_new_fields(cluster):
    out = qq(cluster, 'who_am_i').stdout
    me = json_docs(out.split('This user is granted')[0])[0]
    assert (me['access_token_id'], me['home_directory'], me['can_change_password']) == (None, None, True)
    groups_text = out.split('is a member of following groups:')[1].split('Expanded identity information')[0]
    assert json_docs(groups_text)[0] == [
        {'id': '513', 'name': 'Users', 'sid': 'S-1-5-21-2222222222-3333333333-4444444444-513', 'gid': '513'}
    ]
    expanded = json_docs(out.split(f'Expanded identity information for user {me["id"]}:')[1])[0]
    assert expanded['nfs_id']['name'] == 'admin'


def test_close_sessions_by_identity_closes_only_that_users_sessions(cluster):
    smb_open(cluster)
    smb_open(cluster, '/share/b.docx', client='10.0.0.9')  # alice from a second machine
    smb_open(cluster, '/share/c.docx', user='bob', client='10.0.0.6')
    listed = qq_json(cluster, 'smb_list_sessions', '--identity', 'alice')['session_infos']
    assert sorted(s['originator'] for s in listed) == [CLIENT, '10.0.0.9']
    assert all(set(s['time_idle']) == {'nanoseconds'} and s['tenant_id'] == 1 for s in listed)
    closed = qq(cluster, 'smb_close_sessions', '--identity', 'alice', answer='yes\n')
    assert 'About to force close (2) sessions' in closed.stdout
    left = qq_json(cluster, 'smb_list_sessions')['session_infos']
    assert [(s['user']['name'], s['originator']) for s in left] == [('bob', '10.0.0.6')]
    handles = qq_json(cluster, 'smb_list_file_handles', '--resolve-paths')['file_handles']
    assert [h['handle_info']['path'] for h in handles] == ['/share/c.docx']
    nobody = qq(cluster, 'smb_close_sessions', '--identity', 'alice', answer='yes\n', ok=False)
    assert nobody.returncode != 0 and 'No sessions found to close' in nobody.stderr


def test_list_shares_shows_the_folders_opened_and_those_registered(cluster):
    smb_open(cluster)
    cluster.control('smb/share', {'share_name': 'Reports$', 'fs_path': '/finance/reports'})
    rows = [line.split() for line in qq(cluster, 'smb_list_shares').stdout.splitlines()]
    assert rows[0] == ['ID', 'Tenant', 'ID', 'Name', 'Path', 'Description']
    assert rows[2:] == [['1', '1', 'share', '/share'], ['2', '1', 'Reports$', '/finance/reports']]
    shares = qq_json(cluster, 'smb_list_shares', '--json')['entries']
    assert [s['share_name'] for s in shares] == ['share', 'Reports$']
    one = qq(cluster, 'smb_list_share', '--name', 'Reports$').stdout.splitlines()
    assert one[:4] == ['ID: 2', 'Tenant ID: 1', 'Name: Reports$', 'Path: /finance/reports']
    assert 'Offline Files Caching Mode: NO_CACHING' in one


def test_dns_resolve_ips_and_lock_listings_name_registered_clients(cluster):
    cluster.control('dns', {'ip_address': CLIENT, 'hostname': 'alice-pc.example.com'})
    resolved = qq_json(cluster, 'dns_resolve_ips', '--ips', CLIENT, '10.0.0.99', 'bogus')
    assert resolved == [
        {'ip_address': CLIENT, 'hostname': 'alice-pc.example.com', 'result': 'OK'},
        {'ip_address': '10.0.0.99', 'hostname': '', 'result': 'NOT_FOUND'},
        {'ip_address': 'bogus', 'hostname': '', 'result': 'ERROR'},
    ]
    smb_open(cluster)
    smb_open(cluster, '/share/b.docx', user='bob', client='10.0.0.6', access='read')
    table = qq(cluster, *LIST_SMB_SHARE_MODE, '--sort', 'file').stdout.splitlines()
    assert table == [
        f'Read, Write, Exclude write\talice-pc.example.com\t{FILE}',
        'Read\t10.0.0.6\t/share/b.docx',
    ]


def test_version_prints_the_revision(sim):
    shown = json_docs(qq(sim, 'version').stdout)[0]
    assert shown['revision_id'] == 'Qumulo Core 7.10.2'


def token_store(sim, name):
    return sim.root.parent / f'qq-token-{name}'


def qq_with_token(sim, store, *args, ok=True):
    argv = [sys.executable, str(QQ), '--host', sim.host, '--port', str(sim.port), '--credentials-store', str(store)]
    done = subprocess.run(argv + list(args), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    if ok:
        assert done.returncode == 0, f'qq {" ".join(args)} failed ({done.returncode}): {done.stderr}'
    return done


def test_access_tokens_created_listed_modified_and_deleted(cluster):
    store = token_store(cluster, 'mine')
    created = qq_json(cluster, 'auth_create_access_token', '--self', '-f', str(store))
    assert created['bearer_token'].startswith('access-v1:')
    me = json_docs(qq_with_token(cluster, store, 'who_am_i').stdout.split('This user is granted')[0])[0]
    assert me['name'] == 'admin' and me['access_token_id'] == created['id']
    viewer = qq_json(cluster, 'auth_create_access_token', 'viewer')
    listed = json.loads(qq(cluster, 'auth_list_access_tokens', '--json').stdout)
    assert [(t['id'], t['user']['name'], t['enabled']) for t in listed] == [
        (created['id'], 'admin', True),
        (viewer['id'], 'viewer', True),
    ]
    assert [
        t['id'] for t in json.loads(qq(cluster, 'auth_list_access_tokens', '--json', '--user', 'viewer').stdout)
    ] == [viewer['id']]
    table = qq(cluster, 'auth_list_access_tokens').stdout.splitlines()
    assert table[0].split() == ['id', 'user', 'creator', 'creation', 'time', 'expiration', 'time', 'enabled']
    disabled = qq_json(cluster, 'auth_modify_access_token', created['id'], '--disable')
    assert disabled['enabled'] is False and disabled['id'] == created['id']
    refused = qq_with_token(cluster, store, 'who_am_i', ok=False)
    assert refused.returncode != 0 and '401' in refused.stderr
    later = qq_json(
        cluster, 'auth_modify_access_token', created['id'], '--enable', '--expiration-time', '2031-12-31 12:00'
    )
    assert later['enabled'] is True and later['expiration_time'] == '2031-12-31T12:00:00Z'
    assert qq_json(cluster, 'auth_get_access_token', created['id']) == later
    qq_with_token(cluster, store, 'who_am_i')
    qq(cluster, 'auth_delete_access_token', viewer['id'])
    gone = qq(cluster, 'auth_get_access_token', viewer['id'], ok=False)
    assert gone.returncode == 1 and 'access_token_not_found_error' in gone.stderr


def test_an_expired_access_token_is_refused(cluster):
    store = token_store(cluster, 'expired')
    qq(cluster, 'auth_create_access_token', '--self', '--expiration-time', 'Jan 20 2024', '-f', str(store))
    refused = qq_with_token(cluster, store, 'who_am_i', ok=False)
    assert refused.returncode != 0 and 'Error 401' in refused.stderr
    listed = json.loads(qq(cluster, 'auth_list_access_tokens', '--json').stdout)
    assert [t['expiration_time'] for t in listed] == ['2024-01-20T00:00:00Z']


def test_a_viewer_may_not_list_access_tokens(sim):
    denied = qq(login(sim, 'viewer'), 'auth_list_access_tokens', user='viewer', ok=False)
    assert denied.returncode == 1 and 'Error 403' in denied.stderr and 'PRIVILEGE_ACCESS_TOKENS_READ' in denied.stderr


def test_try_resolve_sets_a_vanished_id_apart_where_resolve_fails(cluster):
    make_file(cluster, '/stays.txt')
    make_file(cluster, '/goes.txt')
    stays, goes = file_id(cluster, '/stays.txt'), file_id(cluster, '/goes.txt')
    (cluster.root / 'goes.txt').unlink()
    failed = qq(cluster, 'fs_resolve_paths', '--ids', stays, goes, ok=False)
    assert failed.returncode == 1 and 'fs_no_such_entry_error' in failed.stderr
    answer = qq_json(cluster, 'fs_try_resolve_paths', '--ids', stays, goes)
    assert answer == {'resolved': [{'id': stays, 'path': '/stays.txt'}], 'unresolved': [goes]}


def test_copy_makes_a_new_file_with_the_source_data_attributes_and_acl(cluster):
    source = make_file(cluster, '/reports/q3.csv', 'a,b\n1,2\n')
    source.chmod(0o640)
    qq(cluster, 'fs_copy', '/reports/q3.csv', '/reports/q3-copy.csv', '--quiet')
    copy = cluster.root / 'reports/q3-copy.csv'
    assert copy.read_text() == 'a,b\n1,2\n'
    original, copied = (
        qq_json(cluster, 'fs_file_get_attr', '--path', p) for p in ('/reports/q3.csv', '/reports/q3-copy.csv')
    )
    assert copied['id'] != original['id'] and copied['modification_time'] == original['modification_time']
    assert copied['creation_time'] == original['creation_time']
    again = qq(cluster, 'fs_copy', '/reports/q3.csv', '/reports/q3-copy.csv', '--quiet', ok=False)
    assert again.returncode != 0 and 'exists' in again.stderr  # qq saw fs_no_such_entry_error only the first time
    missing = qq(cluster, 'fs_copy', '/reports/none.csv', '/reports/x.csv', '--quiet', ok=False)
    assert missing.returncode == 1 and 'fs_no_such_entry_error' in missing.stderr


def test_set_attr_changes_mode_and_times_and_get_acl_shows_the_mode(cluster):
    make_file(cluster, '/attrs.txt')
    qq(
        cluster,
        'fs_file_set_attr',
        '--path',
        '/attrs.txt',
        '--mode',
        '0600',
        '--modification-time',
        '2020-02-02T00:00:00Z',
    )
    attrs = qq_json(cluster, 'fs_file_get_attr', '--path', '/attrs.txt')
    assert (attrs['mode'], attrs['modification_time']) == ('0600', '2020-02-02T00:00:00Z')
    acl = qq_json(cluster, 'fs_get_acl', '--path', '/attrs.txt', '--json')
    assert [('READ' in a['rights'], a['trustee']['domain']) for a in acl['aces']] == [
        (True, 'POSIX_USER'),
        (False, 'POSIX_GROUP'),
        (False, 'WORLD'),
    ]


def test_a_lock_by_an_account_without_write_acl_is_refused_with_the_reason(sim):
    make_file(sim, '/smb/contract.pdf')  # root's, as a file written over SMB by someone else
    denied = qq(
        login(sim, 'locker'),
        'fs_file_modify_lock',
        '--path',
        '/smb/contract.pdf',
        '--enable-legal-hold',
        user='locker',
        ok=False,
    )
    assert denied.returncode == 1 and 'fs_access_denied_error' in denied.stderr and 'WRITE_ACL' in denied.stderr
