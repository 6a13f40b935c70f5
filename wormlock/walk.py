"""Walking a cluster directory tree with paged directory reads (one page of 1,000 at a time)."""

from typing import Any, Callable, Dict, Iterator, Union

from common.auth import Client, distinct_pages
from common.errors import reading_reply

FILE = 'FS_FILE_TYPE_FILE'
DIRECTORY = 'FS_FILE_TYPE_DIRECTORY'
PAGE_SIZE = 1000


def walk_files(
    client: Client, directory_id: Union[str, int], recursive: bool, should_stop: Callable[[], bool] = lambda: False
) -> Iterator[Dict[str, Any]]:
    """Yields the attributes of every regular file under the directory (by id, so a rename
    during the walk does not derail it)."""
    pending = [str(directory_id)]
    while pending and not should_stop():
        pages = client.fs.read_entire_directory(id_=pending.pop(), page_size=PAGE_SIZE)
        for page in distinct_pages(pages, 'a directory listing'):
            with reading_reply('a directory listing'):
                files = [entry for entry in page['files'] if entry['type'] == FILE]
                if recursive:
                    pending += [entry['id'] for entry in page['files'] if entry['type'] == DIRECTORY]
            yield from files
            if should_stop():
                return
