"""lockmanager.lookups: user names, host names and paths asked of the cluster once per id or address."""

import pytest
from qumulo.lib.request import RequestError

from lockmanager.lookups import FilePaths, HostNames, UserNames


def test_user_names_are_asked_once_and_fall_back_to_the_auth_id():
    asked = []

    def find(auth_id):
        asked.append(auth_id)
        if auth_id == '999':
            raise RequestError(404, 'Not Found', {'error_class': 'identity_not_found_error', 'description': 'x'})
        return {'name': 'alice'}

    names = UserNames(find)
    assert [names('501'), names('501'), names('999'), names('999')] == ['alice', 'alice', '999', '999']
    assert asked == ['501', '999']


def test_without_the_identity_privilege_names_stay_auth_ids():
    def find(auth_id):
        raise RequestError(
            403, 'Forbidden', {'error_class': 'privilege_denied_error', 'description': 'needs PRIVILEGE_IDENTITY_READ'}
        )

    names = UserNames(find)
    assert names('501') == '501' and not names.enabled


def test_missing_paths_are_resolved_in_batches_once_and_forgotten_when_closed():
    batches = []

    def resolve(ids):
        batches.append(list(ids))
        return [{'id': i, 'path': f'/p/{i}' if i != '5' else ''} for i in ids]

    paths = FilePaths(resolve, batch=2)  # a cluster without try-resolve: resolve alone
    assert paths.lookup(['1', '2', '3', '5'], ['1', '2', '3', '5']) == {'1': '/p/1', '2': '/p/2', '3': '/p/3'}
    assert batches == [['1', '2'], ['3', '5']]
    assert paths.lookup(['1', '2'], ['1', '2']) == {'1': '/p/1', '2': '/p/2'}  # cached, and 3 closed
    assert batches[2:] == []
    paths.lookup(['3'], ['3'])
    assert batches[2:] == [['3']]


def not_found(error_class):
    return RequestError(404, 'Not Found', {'error_class': error_class, 'description': 'x'})


def test_try_resolve_is_asked_first_and_a_vanished_id_just_stays_without_a_path():
    asked = []

    def try_resolve(ids):
        asked.append(list(ids))
        return {'resolved': [{'id': i, 'path': f'/p/{i}'} for i in ids if i != '2'], 'unresolved': ['2']}

    def resolve(ids):
        raise AssertionError('resolve is not asked where try-resolve answers')

    paths = FilePaths(resolve, try_resolve, batch=10)
    assert paths.lookup(['1', '2', '3'], ['1', '2', '3']) == {'1': '/p/1', '3': '/p/3'}
    assert paths.lookup(['2'], ['1', '2', '3']) == {'1': '/p/1', '3': '/p/3'}  # asked again: it may be back
    assert asked == [['1', '2', '3'], ['2']]


def test_without_try_resolve_a_batch_that_fails_for_one_gone_id_is_asked_one_id_at_a_time():
    calls = []

    def try_resolve(ids):
        calls.append(('try', list(ids)))
        raise not_found('http_not_found_error')  # a cluster older than try-resolve

    def resolve(ids):
        calls.append(('resolve', list(ids)))
        if '2' in ids:
            raise not_found('fs_no_such_entry_error')  # one gone id fails the whole batch
        return [{'id': i, 'path': f'/p/{i}'} for i in ids]

    paths = FilePaths(resolve, try_resolve, batch=10)
    assert paths.lookup(['1', '2', '3'], ['1', '2', '3']) == {'1': '/p/1', '3': '/p/3'}
    assert calls == [
        ('try', ['1', '2', '3']),
        ('resolve', ['1', '2', '3']),
        ('resolve', ['1']),
        ('resolve', ['2']),
        ('resolve', ['3']),
    ]
    paths.lookup(['4'], ['1', '3', '4'])
    assert calls[5:] == [('resolve', ['4'])]  # try-resolve is not asked again


@pytest.mark.parametrize(
    'error',
    [
        RequestError(403, 'Forbidden', {'error_class': 'privilege_denied_error', 'description': 'x'}),
        RequestError(500, 'Internal Server Error', {'error_class': 'internal_error', 'description': 'x'}),
    ],
)
def test_other_failures_of_a_lookup_are_not_taken_for_a_gone_file(error):
    def fail(ids):
        raise error

    with pytest.raises(RequestError) as raised:
        FilePaths(fail, fail).lookup(['1'], ['1'])
    assert raised.value is error


def test_host_names_are_asked_once_per_new_address_and_failed_lookups_again():
    asked = []

    def resolve(ips):
        asked.append(list(ips))
        return [
            {'ip_address': ip, 'hostname': {'10.0.0.5': 'ws-alice'}.get(ip, ''), 'result': result}
            for ip, result in zip(ips, ['OK', 'NOT_FOUND', 'TIMEOUT'])
        ]

    hosts = HostNames(resolve)
    assert hosts.lookup(['10.0.0.5', '10.0.0.6', '10.0.0.7', '']) == {
        '10.0.0.5': 'ws-alice',
        '10.0.0.6': '',
        '10.0.0.7': '',
    }
    hosts.lookup(['10.0.0.5', '10.0.0.6', '10.0.0.7'])
    assert asked == [['10.0.0.5', '10.0.0.6', '10.0.0.7'], ['10.0.0.7']]  # the timed-out one again


def test_a_cluster_refusing_dns_lookups_leaves_names_empty_and_is_not_asked_again():
    calls = []

    def refuse(ips):
        calls.append(ips)
        raise RequestError(403, 'Forbidden', {'error_class': 'http_forbidden_error', 'description': 'no'})

    hosts = HostNames(refuse)
    assert hosts.lookup(['10.0.0.5']) == {'10.0.0.5': ''} and hosts.lookup(['10.0.0.6']) == {'10.0.0.6': ''}
    assert len(calls) == 1
