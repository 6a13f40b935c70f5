"""lockmanager.lookups: user names and paths asked of the cluster once per id."""

from qumulo.lib.request import RequestError

from lockmanager.lookups import FilePaths, UserNames


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

    paths = FilePaths(resolve, batch=2)
    assert paths.lookup(['1', '2', '3', '5'], ['1', '2', '3', '5']) == {'1': '/p/1', '2': '/p/2', '3': '/p/3'}
    assert batches == [['1', '2'], ['3', '5']]
    assert paths.lookup(['1', '2'], ['1', '2']) == {'1': '/p/1', '2': '/p/2'}  # cached, and 3 closed
    assert batches[2:] == []
    paths.lookup(['3'], ['3'])
    assert batches[2:] == [['3']]
