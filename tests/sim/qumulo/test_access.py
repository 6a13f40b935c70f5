"""File permissions (sim/qumulo/models/access.py): every file call checks the file's mode or ACL
for the user, on top of the privilege its route needs; full access passes every check."""

import io
import os

import pytest

from tests.sim.qumulo.conftest import error_of, make_files

GRANT_LOCKING = [{'type': 'ALLOWED', 'trustee': 'locker', 'rights': ['READ', 'READ_ACL', 'WRITE_ACL']}]


def test_a_lock_needs_write_acl_on_the_file_as_well_as_the_privilege(sim):
    make_files(sim.root, ['smb/report.pdf', 'smb/mine.pdf', 'smb/granted.pdf'])  # root's, 0644, as over SMB
    locker = sim.client('locker', 'locker')
    error = error_of(lambda: locker.fs.modify_file_lock(path='/smb/report.pdf', legal_hold=True))
    assert (error.status_code, error.error_class) == (403, 'fs_access_denied_error')
    assert 'WRITE_ACL' in error.description and '/smb/report.pdf' in error.description
    sim.control('fs/permissions', {'path': '/smb/mine.pdf', 'owner': 'locker'})
    assert locker.fs.modify_file_lock(path='/smb/mine.pdf', legal_hold=True)['lock']['legal_hold'] is True
    sim.control('fs/permissions', {'path': '/smb/granted.pdf', 'acl': GRANT_LOCKING})
    assert locker.fs.modify_file_lock(path='/smb/granted.pdf', legal_hold=True)['lock']['legal_hold'] is True
    assert sim.client().fs.modify_file_lock(path='/smb/report.pdf', legal_hold=True)['lock']['legal_hold'] is True


def test_the_privilege_is_still_needed_with_every_right_on_the_file(sim):
    make_files(sim.root, ['owned.txt'])
    sim.control('fs/permissions', {'path': '/owned.txt', 'owner': 'nolock'})
    error = error_of(lambda: sim.client('nolock', 'nolock').fs.modify_file_lock(path='/owned.txt', legal_hold=True))
    assert error.status_code == 403 and 'PRIVILEGE_FS_FILE_LOCK_WRITE' in error.description


def test_reading_the_lock_needs_read_acl(sim):
    make_files(sim.root, ['private.txt'])
    locker = sim.client('locker', 'locker')
    assert locker.fs.get_file_attr(path='/private.txt', retrieve_file_lock=True)['lock']['legal_hold'] is False
    deny = [
        {'type': 'DENIED', 'trustee': 'locker', 'rights': ['READ_ACL']},
        {'type': 'ALLOWED', 'trustee': 'Everyone', 'rights': ['READ_ATTR']},
    ]
    sim.control('fs/permissions', {'path': '/private.txt', 'acl': deny})
    assert locker.fs.get_file_attr(path='/private.txt')['name'] == 'private.txt'  # attributes alone: allowed
    error = error_of(lambda: locker.fs.get_file_attr(path='/private.txt', retrieve_file_lock=True))
    assert error.status_code == 403 and 'READ_ACL' in error.description


def test_a_watch_and_a_listing_need_read_on_the_directory(sim):
    make_files(sim.root, ['closed/a.txt', 'open/b.txt'])
    sim.control('fs/permissions', {'path': '/closed', 'mode': '0700'})
    locker = sim.client('locker', 'locker')
    for call in (
        lambda: locker.fs.get_change_notify_listener(recursive=False, path='/closed'),
        lambda: locker.fs.read_directory(path='/closed'),
    ):
        error = error_of(call)
        assert (error.status_code, error.error_class) == (403, 'fs_access_denied_error') and 'READ' in error.description
    watcher = sim.client('locker', 'locker')  # a stream holds its client's one connection
    assert watcher.fs.get_change_notify_listener(recursive=False, path='/open').started()
    assert [f['name'] for f in locker.fs.read_directory(path='/open')['files']] == ['b.txt']


@pytest.mark.parametrize('mode', ['ENABLED', 'DISABLED_IGNORE'])
def test_a_recursive_watch_needs_the_role_even_where_recursion_is_ignored(sim, mode):
    sim.client().fs.set_notify_settings(recursive_mode=mode)
    error = error_of(lambda: sim.client('locker', 'locker').fs.get_change_notify_listener(recursive=True, path='/'))
    assert error.status_code == 403 and 'DATA_ADMINISTRATOR' in error.description


def test_writes_follow_the_mode_and_files_made_through_the_api_belong_to_their_maker(sim):
    make_files(sim.root, ['shared/readonly.txt'])
    sim.control('fs/permissions', {'path': '/shared', 'mode': '0777'})
    viewer = sim.client('viewer', 'viewer')
    error = error_of(lambda: viewer.fs.write_file(data_file=io.BytesIO(b'x'), path='/shared/readonly.txt'))
    assert error.status_code == 403 and 'MODIFY' in error.description
    made = viewer.fs.create_file(name='new.txt', dir_path='/shared')
    assert made['owner'] == str(os.stat(sim.root / 'shared/new.txt').st_uid) != '0'
    viewer.fs.write_file(data_file=io.BytesIO(b'mine'), path='/shared/new.txt')
    assert (sim.root / 'shared/new.txt').read_bytes() == b'mine'
    error = error_of(lambda: viewer.fs.create_file(name='x.txt', dir_path='/'))  # root's 0755 directory
    assert error.status_code == 403 and 'ADD_FILE' in error.description


def test_permissions_control_checks_its_input(sim):
    make_files(sim.root, ['c.txt'])
    for bad in (
        {'path': '/c.txt', 'acl': [{'type': 'MAYBE', 'trustee': 'x', 'rights': ['READ']}]},
        {'path': '/c.txt', 'acl': [{'type': 'ALLOWED', 'trustee': 'x', 'rights': ['FLY']}]},
        {'path': '/c.txt', 'colour': 'red'},
        {'path': '/c.txt', 'mode': 'rwx'},
        {},
    ):
        with pytest.raises(Exception, match='400'):
            sim.control('fs/permissions', bad)
