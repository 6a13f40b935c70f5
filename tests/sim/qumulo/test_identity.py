"""Identities (sim/qumulo/models/auth.py Directory): expand, a user's groups, and the identity strings
the `identity` and `user` query parameters carry, through the official SDK."""

import pytest
from qumulo.lib.identity_util import Identity

from sim.qumulo.errors import ApiError
from sim.qumulo.models.auth import builtin_directory, identity_query
from tests.sim.qumulo.conftest import error_of


def test_expand_names_the_nfs_and_smb_identities_and_the_groups(sim):
    rc = sim.client()
    expanded = rc.auth.expand_identity(Identity('viewer'))
    me = expanded['id']
    assert (me['name'], expanded['type']) == ('viewer', 'USER')
    assert expanded['nfs_id'] == me and expanded['nfs_id']['uid'] == int(me['uid'])
    assert expanded['smb_id']['sid'] == me['sid'] and expanded['equivalent_ids'] == [me]
    assert [g['name'] for g in expanded['group_ids']] == ['Users']
    missing = error_of(lambda: rc.auth.expand_identity(Identity('nobody-here')))
    assert missing.status_code == 404 and missing.error_class == 'identity_not_found_error'


def test_a_users_groups_have_the_documented_shape_and_others_have_none(sim):
    rc = sim.client()
    me = rc.auth.who_am_i()
    groups = rc.users.list_groups_for_user(me['id'])
    assert groups == [
        {'id': '513', 'name': 'Users', 'sid': 'S-1-5-21-2222222222-3333333333-4444444444-513', 'gid': '513'}
    ]
    sim.control('smb/open', {'path': '/share/a.txt', 'user': 'alice', 'client': '10.0.0.5'})
    alice = rc.auth.find_identity(name='alice')  # seen only as an SMB client: not a local user
    assert rc.users.list_groups_for_user(alice['auth_id']) == []
    assert rc.users.list_groups_for_user('987654321') == []


@pytest.mark.parametrize(
    'spec, query',
    [
        ('alice', {'name': 'alice'}),
        ('local:alice', {'name': 'alice'}),
        ('ad:alice', {'name': 'alice'}),
        ('uid:2001', {'uid': 2001}),
        ('auth_id:0x9c5', {'auth_id': '2501'}),
        ('s-1-5-21-1-2-3-500', {'sid': 'S-1-5-21-1-2-3-500'}),
        ('SID:S-1-5-21-1-2-3-500', {'sid': 'S-1-5-21-1-2-3-500'}),
        ('world:Everyone', None),
        ('gid:513', None),
        ('CN=a:b,DC=example', {'name': 'CN=a:b,DC=example'}),
    ],
)
def test_identity_strings_read_as_the_sdk_writes_them(spec, query):
    assert identity_query(spec) == query


@pytest.mark.parametrize('spec', ['', 'uid:alice', 'auth_id:x', 'martian:alice'])
def test_a_malformed_identity_string_is_a_400(spec):
    with pytest.raises(ApiError) as refused:
        identity_query(spec)
    assert (refused.value.status, refused.value.error_class) == (400, 'invalid_request_error')


def test_an_identity_string_names_the_user_or_nobody():
    directory = builtin_directory()
    admin = directory.users['admin']
    assert directory.user_for_spec('admin') is admin
    assert directory.user_for_spec(f'uid:{admin.uid}') is admin
    assert directory.user_for_spec(f'auth_id:{admin.auth_id}') is admin
    assert directory.user_for_spec(admin.identity()['sid']) is admin
    assert directory.user_for_spec('nobody-here') is None and directory.user_for_spec('gid:513') is None
