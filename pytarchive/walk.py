"""A folder's entries as prepare records them: files, directories and symlinks, never following links.

Paths are relative to the folder, with '/' separators, parents before their contents (so a
restore can create them in order). An entry that vanishes while the walk reads it is left out and
counted: a folder still in use is archived as it was when prepare saw it.

LTFS stores names normalised to Unicode NFC, so two names in one folder that differ only in
normalisation (NFC "café" and NFD "café", as macOS clients write them) would be one file on tape;
the walk records such pairs in `twins` for prepare to refuse them.
"""

import operator
import os
import stat
import unicodedata
from typing import Iterator, List, NamedTuple, Optional, Tuple

from common.errors import ToolError

FILE, DIR, LINK = 'file', 'dir', 'link'
_by_name = operator.attrgetter('name')


class Entry(NamedTuple):  # a tuple, not a dataclass: prepare makes millions of them
    path: str  # relative to the folder
    kind: str  # file | dir | link
    size: int  # bytes of a file; 0 for directories and links
    mtime: float
    mode: int  # permission bits
    uid: int
    gid: int
    target: Optional[str] = None  # a link's target, as written in the link


class Walk:
    """Iterate over entries(); afterwards `vanished` and `skipped` say what was left out and why."""

    def __init__(self, root: str):
        self.root = root
        self.vanished: List[str] = []  # gone between listing and reading
        self.skipped: List[str] = []  # sockets, fifos, devices: not archivable content
        self.twins: List[Tuple[str, str]] = []  # paths whose names are one name in NFC

    def entries(self) -> Iterator[Entry]:
        # A stack of listings rather than recursion: folders nest deeper than Python's call depth.
        listings = [iter(self._listing(''))]
        while listings:
            child = next(listings[-1], None)
            if child is None:
                listings.pop()
                continue
            path, dir_entry = child
            entry = self._entry(dir_entry, path)
            if entry is None:
                continue
            yield entry
            if entry.kind == DIR:
                listings.append(iter(self._listing(path)))

    def _listing(self, relative: str) -> List[Tuple[str, os.DirEntry]]:
        directory = os.path.join(self.root, relative) if relative else self.root
        try:
            with os.scandir(directory) as listing:
                children = sorted(listing, key=_by_name)
        except FileNotFoundError:
            self.vanished.append(relative)
            return []
        self._find_twins(relative, [child.name for child in children if not child.name.isascii()])
        return [(f'{relative}/{child.name}' if relative else child.name, child) for child in children]

    def _find_twins(self, relative: str, names: List[str]) -> None:
        seen = {}
        for name in names:
            normal = unicodedata.normalize('NFC', name)
            if normal in seen:
                self.twins.append(tuple(f'{relative}/{each}' if relative else each for each in (seen[normal], name)))
            else:
                seen[normal] = name

    def _entry(self, child: os.DirEntry, path: str) -> Optional[Entry]:
        try:
            info = child.stat(follow_symlinks=False)
            target = os.readlink(child.path) if stat.S_ISLNK(info.st_mode) else None
        except FileNotFoundError:
            self.vanished.append(path)
            return None
        if stat.S_ISREG(info.st_mode):
            kind, size = FILE, info.st_size
        elif stat.S_ISDIR(info.st_mode):
            kind, size = DIR, 0
        elif stat.S_ISLNK(info.st_mode):
            kind, size = LINK, 0
        else:
            self.skipped.append(path)
            return None
        for text in (path, target or ''):
            if not text.isascii():
                _check_utf8(text, os.path.join(self.root, path))
        return Entry(path, kind, size, info.st_mtime, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, target)


def _check_utf8(text: str, shown: str) -> None:
    """The manifest stores names as text: a name that is not UTF-8 (os.fsdecode's surrogates) is refused."""
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        raise ToolError(
            f'{ascii(shown)[1:-1]}: a name that is not UTF-8; rename it (e.g. convmv -f latin1 -t utf8) '
            f'and prepare again'
        ) from None
