"""Key-based paging, as a cluster pages its listings.

Each entry of a listing has a key that only grows (a sequence number given when the entry is made);
`after` is the key of the last entry a page held, and the next page is the entries with a larger
key. So an entry that goes away between two pages (a handle closed, a grant released) neither ends
the listing early nor shifts the entries after it, as an offset would. Keys are opaque to clients:
they come back only inside the `next` link.
"""

import bisect

from ..errors import bad_request


def parse_after(after):
    """The `after` query value -> an int key, or None for the first page."""
    if after in (None, ''):
        return None
    try:
        return int(after)
    except ValueError:
        raise bad_request(f'after={after[:100]!r} is not a key this listing gave')


def page_after(items, key, after, size):
    """items: sorted by key(item), increasing. -> (the page of at most `size` entries with a key
    larger than `after`, whether entries are left after it)."""
    start = 0 if after is None else bisect.bisect_right(items, after, key=key)
    page = items[start : start + size]
    return page, start + size < len(items)


def short(limit, short_pages):
    """The page size the emulator chooses: the limit, or with short pages (`POST /sim/paging`) half
    of it (at least 1), since "the system may choose a smaller limit" and a short page does not by
    itself mean the end."""
    return max(1, limit // 2) if short_pages else limit
