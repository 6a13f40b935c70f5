"""Walking a cluster directory tree with paged directory reads (one page of 1,000 at a time)."""

from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from qumulo.lib.request import RequestError

from common.auth import Client, distinct_pages
from common.errors import one_line, reading_reply

FILE = 'FS_FILE_TYPE_FILE'
DIRECTORY = 'FS_FILE_TYPE_DIRECTORY'
PAGE_SIZE = 1000

# Told of a directory the account may not list: (its id, its path, the cluster's refusal).
OnDenied = Callable[[str, str, RequestError], None]


def refusal(error: RequestError) -> str:
    """The cluster's reason for refusing a call, in one line: `403 fs_access_denied_error: ...`."""
    return f'{error.status_code} {error.error_class}: {one_line(error.description)}'


def walk_files(
    client: Client,
    directory_id: Union[str, int],
    recursive: bool,
    should_stop: Callable[[], bool] = lambda: False,
    top_path: Optional[str] = None,
    on_denied: Optional[OnDenied] = None,
) -> Iterator[Dict[str, Any]]:
    """Yields the attributes of every regular file under the directory (by id, so a rename
    during the walk does not derail it).

    A directory the account may not list (403: no READ on it) is handed to `on_denied` and the
    walk goes on with the others; without `on_denied` the refusal is raised. A directory below
    the top that is gone by the time it is listed (404) is passed over: it holds nothing now."""
    pending: List[Tuple[str, Optional[str]]] = [(str(directory_id), top_path)]
    top = True
    while pending and not should_stop():
        directory_id, path = pending.pop()
        try:
            pages = client.fs.read_entire_directory(id_=directory_id, page_size=PAGE_SIZE)
            for page in distinct_pages(pages, 'a directory listing'):
                with reading_reply('a directory listing'):
                    files = [entry for entry in page['files'] if entry['type'] == FILE]
                    if recursive:
                        pending += [
                            (entry['id'], entry['path']) for entry in page['files'] if entry['type'] == DIRECTORY
                        ]
                yield from files
                if should_stop():
                    return
        except RequestError as e:
            if e.status_code == 403 and on_denied is not None:
                on_denied(directory_id, path or f'directory id {directory_id}', e)
            elif not (e.status_code == 404 and not top):
                raise
        top = False
