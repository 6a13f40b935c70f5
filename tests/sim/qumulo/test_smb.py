"""SMB handles, sessions and lock grants (sim/qumulo/models/smb.py), and the control call that opens
handles, many in one call (the lock manager's tests and benchmark use it)."""

import urllib.error

import pytest


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
