"""SMB handles, sessions and lock grants (sim/qumulo/models/smb.py), and the control call that opens
handles, many in one call (the lock manager's tests and benchmark use it)."""

import time
import urllib.error

import pytest

from tests.sim.qumulo.conftest import error_of


def open_handle(sim, path, user='alice', client='10.0.0.5', access='write', **extra):
    return sim.control('smb/open', dict(path=path, user=user, client=client, access=access, **extra))


def test_smb_handles_grants_and_sessions_join_per_file(sim):
    handle = open_handle(sim, '/share/a.xlsx', byte_ranges=[[0, 100]])
    open_handle(sim, '/share/b.docx', user='bob', client='10.0.0.6', access='read')
    rc = sim.client()
    handles = [h for page in rc.smb.list_file_handles(resolve_paths=True) for h in page['file_handles']]
    assert {h['handle_info']['path'] for h in handles} == {'/share/a.xlsx', '/share/b.docx'}
    mine = next(h for h in handles if h['handle_info']['location'] == handle['handle_info']['location'])
    assert 'MS_ACCESS_FILE_WRITE_DATA' in mine['handle_info']['access_mask']
    owner = rc.auth.find_identity(auth_id=mine['handle_info']['owner'])
    assert owner['name'] == 'alice'
    grants = rc.fs.list_locks_by_file('smb', 'share-mode', file_path='/share/a.xlsx')['grants']
    assert [g['owner_address'] for g in grants] == ['10.0.0.5']
    assert grants[0]['file_id'] == mine['file_number']
    ranges = rc.fs.list_locks_by_client('smb', 'byte-range')['grants']
    assert [(r['offset'], r['size']) for r in ranges] == [('0', '100')]
    sessions = [s for page in rc.smb.list_smb_sessions() for s in page['session_infos']]
    assert {(s['user']['name'], s['originator']) for s in sessions} == {('alice', '10.0.0.5'), ('bob', '10.0.0.6')}


def test_closing_a_handle_releases_its_grants_and_reports_per_handle(sim):
    handle = open_handle(sim, '/share/c.xlsx')
    rc = sim.client()
    assert rc.smb.close_smb_file(location=handle['handle_info']['location']) == [{'error_message': ''}]
    assert rc.fs.list_locks_by_client('smb', 'share-mode')['grants'] == []
    again = rc.smb.close_smb_file(location=handle['handle_info']['location'])
    assert 'No open file handle' in again[0]['error_message']


def test_the_grant_listing_follows_every_open_and_close_between_listings(sim):
    # The whole listing is gathered once for its pages: an open or close must still show at once.
    rc = sim.client()
    first = open_handle(sim, '/share/g1.txt', byte_ranges=[[0, 10]])
    assert len(all_grants(rc, 'share-mode')) == 1 and len(all_grants(rc, 'byte-range')) == 1
    second = open_handle(sim, '/share/g2.txt', client='10.0.0.7', byte_ranges=[[0, 10]])
    both = sorted([first['file_number'], second['file_number']])
    assert sorted(g['file_id'] for g in all_grants(rc, 'share-mode')) == both
    assert [g['file_id'] for g in all_grants(rc, 'byte-range', owner_address='10.0.0.7')] == [second['file_number']]
    rc.smb.close_smb_file(location=first['handle_info']['location'])
    assert [g['file_id'] for g in all_grants(rc, 'share-mode')] == [second['file_number']]
    assert [g['file_id'] for g in all_grants(rc, 'byte-range')] == [second['file_number']]


def all_grants(rc, kind, **query):
    """Every grant of a lock listing, a page of one at a time, to the empty page."""
    grants, after = [], None
    while True:
        page = rc.fs.list_locks_by_client('smb', kind, limit=1, after=after, **query)
        grants += page['grants']
        if not page['grants'] or not page['paging']['next']:
            return grants
        after = page['paging']['next'].split('after=')[1].split('&')[0]


def test_closing_a_session_closes_its_handles(sim):
    open_handle(sim, '/share/s1.txt')
    open_handle(sim, '/share/s2.txt')
    rc = sim.client()
    sessions = next(iter(rc.smb.list_smb_sessions()))['session_infos']
    rc.smb.close_smb_sessions(sessions)
    assert next(iter(rc.smb.list_file_handles()))['file_handles'] == []


def test_handle_listing_pages(sim):
    for i in range(25):
        open_handle(sim, f'/share/p{i}.txt')
    pages = list(sim.client().smb.list_file_handles(limit=10))
    assert [len(p['file_handles']) for p in pages] == [10, 10, 5]


def test_a_list_of_opens_opens_them_all_in_one_call(sim):
    opened = sim.control(
        'smb/open',
        [
            {'path': f'/bulk/f{n}.txt', 'user': f'user{n % 3}', 'client': f'10.1.0.{n % 2}', 'access': 'write'}
            for n in range(50)
        ],
    )
    assert len(opened) == 50 and len({h['handle_info']['location'] for h in opened}) == 50
    rc = sim.client()
    listed = [h for page in rc.smb.list_file_handles(resolve_paths=True) for h in page['file_handles']]
    assert sorted(h['handle_info']['path'] for h in listed) == sorted(f'/bulk/f{n}.txt' for n in range(50))
    grants = rc.fs.list_locks_by_client('smb', 'share-mode', limit=100)['grants']
    assert {g['owner_address'] for g in grants} == {'10.1.0.0', '10.1.0.1'} and len(grants) == 50
    assert (sim.root / 'bulk' / 'f49.txt').is_file()


def test_a_bad_entry_in_the_list_is_a_400_naming_the_missing_key(sim):
    with pytest.raises(urllib.error.HTTPError) as refused:
        sim.control('smb/open', [{'path': '/a', 'user': 'alice', 'client': '10.0.0.1'}, {'path': '/b'}])
    assert refused.value.code == 400 and b'needs \\"user\\"' in refused.value.read()
    with pytest.raises(urllib.error.HTTPError) as refused:
        sim.control('smb/open', ['/a'])
    assert refused.value.code == 400


# --- sessions ------------------------------------------------------------------------------------
def sessions_of(rc, **query):
    return [s for page in rc.smb.list_smb_sessions(**query) for s in page['session_infos']]


def test_sessions_carry_times_as_nanoseconds_tenant_and_shares(sim):
    open_handle(sim, '/finance/q3.xlsx')
    open_handle(sim, '/design/cover.psd')
    time.sleep(0.2)
    rc = sim.client()
    (session,) = sessions_of(rc)
    assert session['tenant_id'] == 1 and session['share_names'] == ['finance', 'design']
    assert set(session) == {
        'location',
        'tenant_id',
        'originator',
        'server_address',
        'user',
        'num_opens',
        'time_open',
        'time_idle',
        'is_guest',
        'is_encrypted',
        'share_names',
    }
    open_ns, idle_ns = int(session['time_open']['nanoseconds']), int(session['time_idle']['nanoseconds'])
    assert set(session['time_open']) == {'nanoseconds'} and isinstance(session['time_open']['nanoseconds'], str)
    assert open_ns >= idle_ns >= 200_000_000
    handle = open_handle(sim, '/finance/b.xlsx')  # activity: idle counts again from here
    (again,) = sessions_of(rc)
    # Idle counts again from the open (on a loaded machine the open and the listing can take a
    # while, so the bound is the session's age, not a fixed time).
    idle_again, open_again = int(again['time_idle']['nanoseconds']), int(again['time_open']['nanoseconds'])
    assert idle_again < open_again - 200_000_000 and open_again > open_ns
    time.sleep(0.2)
    rc.smb.close_smb_file(location=handle['handle_info']['location'])  # a close is activity too
    (after_close,) = sessions_of(rc)
    idle_closed, open_closed = (
        int(after_close['time_idle']['nanoseconds']),
        int(after_close['time_open']['nanoseconds']),
    )
    assert idle_closed < open_closed - 400_000_000 and after_close['num_opens'] == 2


def test_one_session_per_user_and_client(sim):
    open_handle(sim, '/share/a.txt', client='10.0.0.5')
    open_handle(sim, '/share/b.txt', client='10.0.0.5')
    open_handle(sim, '/share/c.txt', client='10.0.0.9')  # alice again, from her laptop
    open_handle(sim, '/share/d.txt', user='bob', client='10.0.0.5')
    found = sorted((s['user']['name'], s['originator'], s['num_opens']) for s in sessions_of(sim.client()))
    assert found == [('alice', '10.0.0.5', 2), ('alice', '10.0.0.9', 1), ('bob', '10.0.0.5', 1)]


def test_the_identity_filter_lists_one_users_sessions_in_any_form(sim):
    open_handle(sim, '/share/a.txt')
    open_handle(sim, '/share/b.txt', user='bob', client='10.0.0.6')
    rc = sim.client()
    alice = rc.auth.find_identity(name='alice')
    for spec in ('alice', 'local:alice', f'uid:{alice["uid"]}', f'auth_id:{alice["auth_id"]}', alice['sid']):
        assert [s['user']['name'] for s in sessions_of(rc, identity=spec)] == ['alice'], spec
    assert sessions_of(rc, identity='nobody-here') == [] and sessions_of(rc, identity='gid:513') == []
    refused = error_of(lambda: sessions_of(rc, identity='martian:alice'))
    assert refused.status_code == 400 and refused.error_class == 'invalid_request_error'


def test_closing_sessions_answers_per_session(sim):
    open_handle(sim, '/share/a.txt')
    open_handle(sim, '/share/b.txt', user='bob', client='10.0.0.6')
    rc = sim.client()
    alice = sessions_of(rc, identity='alice')
    ghost = dict(alice[0], location='session.999999')
    assert rc.smb.close_smb_sessions([alice[0], ghost]) == [
        {'error_message': ''},
        {'error_message': 'No SMB session at location session.999999'},
    ]
    assert [s['user']['name'] for s in sessions_of(rc)] == ['bob']
    handles = [h for page in rc.smb.list_file_handles() for h in page['file_handles']]
    assert [h['handle_info']['owner'] for h in handles] == [rc.auth.find_identity(name='bob')['auth_id']]
    refused = error_of(lambda: rc.smb.close_smb_sessions([{'originator': '10.0.0.6'}]))
    assert refused.status_code == 400


# --- shares --------------------------------------------------------------------------------------
def test_shares_are_top_level_folders_opened_and_those_registered(sim):
    open_handle(sim, '/finance/q3.xlsx')
    open_handle(sim, '/readme.txt', user='bob', client='10.0.0.6')
    registered = sim.control('smb/share', {'share_name': 'Reports$', 'fs_path': '/finance/reports/'})
    assert (registered['share_name'], registered['fs_path'], registered['tenant_id']) == (
        'Reports$',
        '/finance/reports',
        1,
    )
    assert (sim.root / 'finance' / 'reports').is_dir()
    open_handle(sim, '/finance/reports/may.pdf', share='Reports$')
    rc = sim.client()
    shares = rc.smb.smb_list_shares()['entries']
    assert [(s['id'], s['share_name'], s['fs_path']) for s in shares] == [
        ('1', 'finance', '/finance'),
        ('2', 'Files', '/'),
        ('3', 'Reports$', '/finance/reports'),
    ]
    assert shares[0]['description'] == '' and shares[0]['permissions'][0]['trustee']['name'] == 'Everyone'
    assert rc.smb.smb_list_share('3') == shares[2]
    assert error_of(lambda: rc.smb.smb_list_share('99')).status_code == 404
    v2 = rc.request('GET', '/v2/smb/shares/')  # the older shape: a list, bytes_per_sector
    assert [s['share_name'] for s in v2] == ['finance', 'Files', 'Reports$']
    assert v2[0]['bytes_per_sector'] == '512' and 'allow_fs_path_create' not in v2[0]
    names = {s['user']['name']: s['share_names'] for s in sessions_of(rc)}
    assert names == {'alice': ['finance', 'Reports$'], 'bob': ['Files']}
    denied = error_of(lambda: sim.client('viewer', 'viewer').smb.smb_list_shares())
    assert denied.status_code == 403 and 'PRIVILEGE_SMB_SHARE_READ' in denied.description


def test_an_open_outside_the_share_it_names_is_refused(sim):
    sim.control('smb/share', [{'share_name': 'Reports$', 'fs_path': '/finance/reports'}])
    for path, share in (('/design/x.psd', 'Reports$'), ('/finance/reportsX/a.pdf', 'Reports$')):
        with pytest.raises(urllib.error.HTTPError) as refused:
            open_handle(sim, path, share=share)
        assert refused.value.code == 400 and b'not in the share' in refused.value.read()
    with pytest.raises(urllib.error.HTTPError) as refused:
        sim.control('smb/share', {'share_name': 'Reports$', 'fs_path': '/elsewhere'})
    assert refused.value.code == 400


# --- access masks and share modes ----------------------------------------------------------------
def listed_handle(rc, location):
    handles = [h for page in rc.smb.list_file_handles() for h in page['file_handles']]
    return next(h for h in handles if h['handle_info']['location'] == location)


@pytest.mark.parametrize(
    'open_spec, mask, modes',
    [
        (
            {'access_mask': ['MS_ACCESS_DELETE', 'MS_ACCESS_FILE_READ_ATTRIBUTES']},
            ['MS_ACCESS_DELETE', 'MS_ACCESS_FILE_READ_ATTRIBUTES'],
            ['API_SHARE_MODE_DELETE'],
        ),
        (
            {'access_mask': ['MS_ACCESS_GENERIC_ALL']},
            ['MS_ACCESS_GENERIC_ALL'],
            ['API_SHARE_MODE_READ', 'API_SHARE_MODE_WRITE', 'API_SHARE_MODE_DELETE'],
        ),
        ({'access_mask': ['MS_ACCESS_GENERIC_READ']}, ['MS_ACCESS_GENERIC_READ'], ['API_SHARE_MODE_READ']),
        ({'access_mask': ['MS_ACCESS_MAXIMUM_ALLOWED'], 'share_mode': []}, ['MS_ACCESS_MAXIMUM_ALLOWED'], []),
        (
            {
                'access_mask': ['MS_ACCESS_GENERIC_WRITE', 'MS_ACCESS_FILE_ALL'],
                'share_mode': ['API_SHARE_MODE_EXCLUDE_DELETE', 'API_SHARE_MODE_EXCLUDE_READ', 'API_SHARE_MODE_WRITE'],
            },
            ['MS_ACCESS_GENERIC_WRITE', 'MS_ACCESS_FILE_ALL'],
            ['API_SHARE_MODE_WRITE', 'API_SHARE_MODE_EXCLUDE_READ', 'API_SHARE_MODE_EXCLUDE_DELETE'],
        ),
        (
            {'access': 'read', 'share_mode': ['API_SHARE_MODE_READ', 'API_SHARE_MODE_EXCLUDE_WRITE']},
            [
                'MS_ACCESS_FILE_READ_DATA',
                'MS_ACCESS_FILE_READ_ATTRIBUTES',
                'MS_ACCESS_FILE_READ_EA',
                'MS_ACCESS_READ_CONTROL',
                'MS_ACCESS_SYNCHRONIZE',
            ],
            ['API_SHARE_MODE_READ', 'API_SHARE_MODE_EXCLUDE_WRITE'],
        ),
    ],
)
def test_any_access_mask_and_share_mode_the_api_can_show(sim, open_spec, mask, modes):
    spec = dict({'path': '/share/m.docx', 'user': 'alice', 'client': '10.0.0.5'}, **open_spec)
    handle = sim.control('smb/open', spec)
    rc = sim.client()
    assert listed_handle(rc, handle['handle_info']['location'])['handle_info']['access_mask'] == mask
    (grant,) = rc.fs.list_locks_by_file('smb', 'share-mode', file_path='/share/m.docx')['grants']
    assert grant['mode'] == modes and grant['snapshot_id'] == ''


@pytest.mark.parametrize(
    'bad, fragment',
    [
        ({'access_mask': ['MS_ACCESS_TELEPORT']}, b'unknown names MS_ACCESS_TELEPORT'),
        ({'access_mask': 'MS_ACCESS_DELETE'}, b'must be a list'),
        ({'share_mode': ['API_SHARE_MODE_EXCLUSIVE']}, b'unknown names API_SHARE_MODE_EXCLUSIVE'),
        ({'access': 'delete'}, b'access must be'),
        ({'access': 'read', 'access_mask': ['MS_ACCESS_DELETE']}, b'not both'),
        ({'byte_ranges': [['a', 1]]}, b'byte_ranges'),
    ],
)
def test_an_access_the_api_cannot_show_is_a_400_and_opens_nothing(sim, bad, fragment):
    with pytest.raises(urllib.error.HTTPError) as refused:
        sim.control('smb/open', dict({'path': '/share/never.txt', 'user': 'alice', 'client': '10.0.0.5'}, **bad))
    assert refused.value.code == 400 and fragment in refused.value.read()
    assert not (sim.root / 'share' / 'never.txt').exists()
    assert next(iter(sim.client().smb.list_file_handles()))['file_handles'] == []


def test_byte_range_grants_name_the_machine_that_owns_them(sim):
    open_handle(sim, '/share/a.xlsx', byte_ranges=[[0, 10]], machine='ALICE-PC')
    open_handle(sim, '/share/b.xlsx', user='bob', client='10.0.0.6', access='read', byte_ranges=[[5, 5]])
    grants = sim.client().fs.list_locks_by_client('smb', 'byte-range')['grants']
    assert [(g['owner_name'], g['mode']) for g in grants] == [
        ('ALICE-PC', ['API_BYTE_RANGE_EXCLUSIVE']),
        ('10.0.0.6', ['API_BYTE_RANGE_SHARED']),
    ]
