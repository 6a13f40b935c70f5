"""wormlock.watcher without a cluster: the shape of a notify event and the notify refusals that end
the watch, each with its exit code."""

import pytest

from qumulo.lib.request import RequestError

from common.errors import AUTH, FAILURE, NOT_FOUND, PRIVILEGE
from wormlock.errors import CredentialsRejected, DirectoryMissing, WatchForbidden, WatchRefused
from wormlock.stream import StreamError
from wormlock.watcher import WatchOptions, Watcher, parse_event


@pytest.mark.parametrize(
    'event',
    [
        None,
        1,
        [1, 2],
        'child_file_added',
        {'type': 'child_file_added', 'path': 'a', 'spine': 7},
        {'type': 'child_file_added', 'path': 7, 'spine': ['1']},
        {'type': 7, 'path': 'a', 'spine': ['1']},
        {'type': 'child_file_added', 'path': 'a', 'spine': ['1', 2]},
        {'type': 'child_file_added', 'path': 'a', 'spine': ['1', '12ab']},
        {'type': 'child_file_added', 'path': 'a', 'spine': ['1', '\u00b2']},  # a digit, but not 0-9
        {'type': 'child_file_added', 'path': '../x', 'spine': ['1', '']},
        {'type': 'child_file_added', 'path': 'sub/../../x', 'spine': ['1', '']},
        {'type': 'child_file_added', 'path': '/etc/x', 'spine': ['1', '']},
    ],
)
def test_a_malformed_event_is_recognised(event):
    assert parse_event(event) is None


def test_a_well_formed_event_gives_type_path_and_id():
    assert parse_event(
        {'type': 'child_file_added', 'path': 'sub/a.txt', 'spine': ['2', '3', '42'], 'stream_name': None}
    ) == ('child_file_added', 'sub/a.txt', '42')
    # The emulator's known difference: a file gone before it was read has no id left.
    assert parse_event({'type': 'child_file_removed', 'path': 'gone', 'spine': ['2', '']}) == (
        'child_file_removed',
        'gone',
        '',
    )
    assert parse_event({'type': 'self_removed', 'path': '', 'spine': ['2']}) == ('self_removed', '', '2')


class _Refusing:
    """A stand-in client whose re-login after a 401 is refused with a 401 as well."""

    class auth:
        @staticmethod
        def who_am_i():
            raise RequestError(401, 'Unauthorized', {'error_class': 'http_unauthorized_error', 'description': 'no'})


@pytest.mark.parametrize(
    'status, error_class, refusal, exit_code',
    [
        (404, 'fs_no_such_entry_error', DirectoryMissing, NOT_FOUND),
        (403, 'http_forbidden_error', WatchForbidden, PRIVILEGE),
        (400, 'http_bad_request_error', WatchRefused, FAILURE),
        (401, 'http_unauthorized_error', CredentialsRejected, AUTH),
    ],
)
def test_a_notify_refusal_waiting_cannot_fix_ends_the_watch_with_its_exit_code(status, error_class, refusal, exit_code):
    watcher = Watcher(_Refusing(), None, WatchOptions(directory_path='/drop'), None, None, None)
    watcher.directory_id, watcher.directory_path = '2', '/drop'
    with pytest.raises(refusal) as ended:
        watcher._on_stream_error(StreamError(status, f'{error_class}: refused', error_class))
    assert ended.value.exit_code == exit_code
