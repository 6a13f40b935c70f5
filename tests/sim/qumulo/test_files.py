"""The file system (sim/qumulo/models/files.py, ids.py, urls.py): attributes by path and by id,
ids that are never reused, listings, resolving, attribute changes, every route under /api too."""

import io
import os
import subprocess

import requests

from tests.sim.qumulo.conftest import error_of, make_files


def test_attributes_by_path_and_by_id_agree_and_ids_survive_rename(sim):
    make_files(sim.root, ['dir/a.txt'], b'hello')
    rc = sim.client()
    by_path = rc.fs.get_file_attr(path='/dir/a.txt')
    assert by_path['size'] == '5' and by_path['type'] == 'FS_FILE_TYPE_FILE'
    assert by_path['id'] == by_path['file_number'] != str(os.stat(sim.root / 'dir/a.txt').st_ino)
    os.rename(sim.root / 'dir/a.txt', sim.root / 'dir/b.txt')
    by_id = rc.fs.get_file_attr(id_=by_path['id'])
    assert by_id['path'] == '/dir/b.txt' and by_id['name'] == 'b.txt'
    assert rc.fs.get_file_attr(path='/dir')['type'] == 'FS_FILE_TYPE_DIRECTORY'
    assert rc.fs.get_file_attr(path='/')['id'] == '2'  # a cluster's root directory
    assert rc.fs.resolve_paths([by_path['id']]) == [{'id': by_path['id'], 'path': '/dir/b.txt'}]


def test_ids_are_never_reused_even_when_the_kernel_reuses_the_inode(sim):
    rc = sim.client()
    ids, inodes = set(), set()
    for _ in range(30):
        make_files(sim.root, ['short-lived.tmp'])
        inodes.add(os.stat(sim.root / 'short-lived.tmp').st_ino)
        ids.add(rc.fs.get_file_attr(path='/short-lived.tmp')['id'])
        os.unlink(sim.root / 'short-lived.tmp')
    assert len(ids) == 30 and len(inodes) < 30  # the kernel handed the same inode out again


def test_a_copy_that_carries_the_id_attribute_along_is_a_new_file(sim):
    make_files(sim.root, ['orig.txt'])
    rc = sim.client()
    original = rc.fs.get_file_attr(path='/orig.txt')['id']
    subprocess.run(['cp', '-a', str(sim.root / 'orig.txt'), str(sim.root / 'copy.txt')], check=True)
    assert rc.fs.get_file_attr(path='/copy.txt')['id'] not in (original, '')
    assert rc.fs.get_file_attr(path='/orig.txt')['id'] == original


def test_ids_and_creation_times_survive_an_emulator_restart(sim):
    make_files(sim.root, ['kept.txt'])
    before = sim.client().fs.get_file_attr(path='/kept.txt')
    sim.restart()
    make_files(sim.root, ['new.txt'])
    rc = sim.client()
    after = rc.fs.get_file_attr(id_=before['id'])
    assert (after['path'], after['creation_time']) == ('/kept.txt', before['creation_time'])
    assert rc.fs.get_file_attr(path='/new.txt')['id'] != before['id']


def test_creation_time_stays_put_through_writes_chmod_and_locks(sim):
    make_files(sim.root, ['born.txt'])
    rc = sim.client()
    born = rc.fs.get_file_attr(path='/born.txt')['creation_time']
    rc.fs.write_file(data_file=io.BytesIO(b'more data'), path='/born.txt')
    os.chmod(sim.root / 'born.txt', 0o600)
    rc.fs.modify_file_lock(path='/born.txt', legal_hold=True)
    attrs = rc.fs.get_file_attr(path='/born.txt')
    assert attrs['creation_time'] == born and attrs['change_time'] != born and attrs['mode'] == '0600'


def test_a_missing_entry_and_a_missing_directory_on_the_way_answer_different_errors(sim):
    (sim.root / 'there').mkdir()
    rc = sim.client()
    entry = error_of(lambda: rc.fs.get_file_attr(path='/there/no-such-file'))
    assert (entry.status_code, entry.error_class) == (404, 'fs_no_such_entry_error')
    path = error_of(lambda: rc.fs.get_file_attr(path='/no-such-dir/file'))
    assert (path.status_code, path.error_class) == (404, 'fs_no_such_path_error')
    gone_id = error_of(lambda: rc.fs.get_file_attr(id_='99999999'))
    assert (gone_id.status_code, gone_id.error_class) == (404, 'fs_no_such_entry_error')


def test_resolve_fails_the_batch_that_holds_a_vanished_id_and_try_resolve_sets_it_apart(sim):
    make_files(sim.root, ['stays.txt', 'goes.txt'])
    rc = sim.client()
    stays, goes = (rc.fs.get_file_attr(path=f'/{n}')['id'] for n in ('stays.txt', 'goes.txt'))
    os.unlink(sim.root / 'goes.txt')
    error = error_of(lambda: rc.fs.resolve_paths([stays, goes]))
    assert (error.status_code, error.error_class) == (404, 'fs_no_such_entry_error') and goes in error.description
    assert rc.fs.try_resolve_paths([stays, goes]) == {
        'resolved': [{'id': stays, 'path': '/stays.txt'}],
        'unresolved': [goes],
    }
    assert error_of(lambda: rc.fs.try_resolve_paths('not a list')).status_code == 400


def test_attribute_patch_applies_mode_owner_and_times(sim):
    make_files(sim.root, ['attrs.txt'], b'0123456789')
    rc = sim.client()
    rc.fs.set_file_attr(
        path='/attrs.txt',
        mode='0640',
        owner='4242',
        group='513',
        size=4,
        modification_time='2020-01-02T03:04:05Z',
        access_time='2021-01-02T03:04:05.5Z',
        creation_time='2019-05-06T07:08:09Z',
    )
    attrs = rc.fs.get_file_attr(path='/attrs.txt')
    st = os.stat(sim.root / 'attrs.txt')
    assert (attrs['mode'], attrs['owner'], attrs['group'], attrs['size']) == ('0640', '4242', '513', '4')
    assert (st.st_uid, st.st_gid, oct(st.st_mode & 0o7777)) == (4242, 513, '0o640')
    assert attrs['modification_time'] == '2020-01-02T03:04:05Z'
    assert attrs['access_time'] == '2021-01-02T03:04:05.500000000Z'
    assert attrs['creation_time'] == '2019-05-06T07:08:09Z'


def test_attribute_patch_refuses_what_it_cannot_apply(sim):
    make_files(sim.root, ['strict.txt'])
    rc = sim.client()
    for bad in ({'change_time': 'yesterday'}, {'extended_attributes': {'colour': True}}, {'mode': '99'}, {'size': -1}):
        error = error_of(lambda: rc.fs.set_file_attr(path='/strict.txt', **bad))
        assert error.status_code == 400, bad
    rc.fs.modify_file_lock(path='/strict.txt', legal_hold=True)
    locked = error_of(lambda: rc.fs.set_file_attr(path='/strict.txt', mode='0600'))
    assert (locked.status_code, locked.error_class) == (403, 'fs_access_denied_error')


def test_directory_listing_pages_through_every_entry(sim):
    names = [f'f{i:03d}' for i in range(250)]
    make_files(sim.root, [f'big/{n}' for n in names])
    pages = list(sim.client().fs.read_entire_directory(path='/big', page_size=100))
    assert len(pages) == 3 and all(page['child_count'] == 250 for page in pages)
    assert [f['name'] for page in pages for f in page['files']] == names


def test_a_write_at_an_offset_patches_the_file(sim):
    make_files(sim.root, ['patch.txt'], b'aaaaaa')
    sim.client().fs.write_file(data_file=io.BytesIO(b'BB'), path='/patch.txt', offset=2)
    assert (sim.root / 'patch.txt').read_bytes() == b'aaBBaa'


def test_every_endpoint_answers_under_api_prefix(sim):
    make_files(sim.root, ['p.txt'])
    token = sim.client().credentials.bearer_token
    headers = {'Authorization': f'Bearer {token}'}
    for prefix in ('/v1', '/api/v1'):
        reply = requests.get(
            f'{sim.url}{prefix}/files/%2Fp.txt/info/attributes', headers=headers, verify=str(sim.cert_path), timeout=10
        )
        assert reply.status_code == 200 and reply.json()['path'] == '/p.txt'
        assert reply.headers['ETag']


def test_a_file_without_xattr_support_still_gets_a_stable_id(sim):
    # Symlinks cannot carry user xattrs on Linux: their ids are kept in memory.
    os.symlink('target', sim.root / 'link')
    rc = sim.client()
    first = rc.fs.get_file_attr(path='/link')
    assert first['type'] == 'FS_FILE_TYPE_SYMLINK'
    assert rc.fs.get_file_attr(path='/link')['id'] == first['id']


def test_windows_attributes_are_kept_and_shown(sim):
    make_files(sim.root, ['win.txt'])
    rc = sim.client()
    rc.fs.set_file_attr(path='/win.txt', extended_attributes={'hidden': True, 'read_only': True})
    shown = rc.fs.get_file_attr(path='/win.txt')['extended_attributes']
    assert shown['hidden'] is shown['read_only'] is True and shown['archive'] is False


def test_the_acl_reads_as_the_mode_stands_and_a_put_acl_is_enforced(sim):
    make_files(sim.root, ['acl.txt'])
    rc = sim.client()
    acl = rc.fs.get_acl_v2(path='/acl.txt')
    assert [(a['trustee']['domain'], 'WRITE_ACL' in a['rights'], 'MODIFY' in a['rights']) for a in acl['aces']] == [
        ('POSIX_USER', True, True),  # the owner: 6
        ('POSIX_GROUP', False, False),  # group: 4
        ('WORLD', False, False),  # others: 4
    ]
    locker = sim.client('locker', 'locker')
    assert error_of(lambda: locker.fs.modify_file_lock(path='/acl.txt', legal_hold=True)).status_code == 403
    acl['aces'].append(
        {'type': 'ALLOWED', 'flags': [], 'trustee': {'domain': 'LOCAL', 'name': 'locker'}, 'rights': ['WRITE_ACL']}
    )
    rc.fs.set_acl_v2(path='/acl.txt', acl=acl)
    assert locker.fs.modify_file_lock(path='/acl.txt', legal_hold=True)['lock']['legal_hold'] is True
    assert error_of(lambda: locker.fs.set_acl_v2(path='/acl.txt', acl=acl)).status_code == 403  # not its file
