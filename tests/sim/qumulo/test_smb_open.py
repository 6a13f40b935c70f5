"""The emulator's control call that opens many SMB handles at once (the lock manager's tests and bench use it)."""

import urllib.error

import pytest


def test_a_list_of_opens_opens_them_all_in_one_call(sim):
    opened = sim.control('smb/open', [
        {'path': f'/bulk/f{n}.txt', 'user': f'user{n % 3}', 'client': f'10.1.0.{n % 2}', 'access': 'write'}
        for n in range(50)])
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
