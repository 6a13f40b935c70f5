"""Every call the lock manager makes to the cluster, through the official SDK (`qumulo-api`).

Listing reads four things the cluster keeps apart (handles, share-mode grants, byte-range grants,
sessions) and joins them per file id (lockmanager.join). Closing sends one handle per request, so
that each handle gets its own answer and a vanished one does not stop the others.
"""

import contextlib
import gc
import itertools
import logging
import queue
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, ContextManager, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, TypeVar
from urllib.parse import parse_qs, urlsplit

from qumulo.rest_client import RestClient

from common.auth import ONE_SHOT_RETRIES, connect, distinct_pages, require_privileges, who_am_i
from common.config import ClusterConfig
from common.errors import AUTH, TLS, UNREACHABLE, BadReply, ToolError, reading_reply, translated
from lockmanager.closing import CloseOutcome
from lockmanager.lookups import FilePaths, HostNames, UserNames
from lockmanager.join import RowJoiner, session_rows
from lockmanager.model import HandleRow, SessionRow

log = logging.getLogger(__name__)

HANDLE_READ = 'PRIVILEGE_SMB_FILE_HANDLE_READ'
HANDLE_WRITE = 'PRIVILEGE_SMB_FILE_HANDLE_WRITE'
LOCK_READ = 'PRIVILEGE_FS_LOCK_READ'
IDENTITY_READ = 'PRIVILEGE_IDENTITY_READ'
SESSION_READ = 'PRIVILEGE_SMB_SESSION_READ'
SESSION_WRITE = 'PRIVILEGE_SMB_SESSION_WRITE'
SHARE_READ = 'PRIVILEGE_SMB_SHARE_READ'
LIST_PRIVILEGES = (HANDLE_READ, LOCK_READ)
CLOSE_PRIVILEGES = (HANDLE_WRITE,)
SESSION_LIST_PRIVILEGES = (SESSION_READ,)
SESSION_CLOSE_PRIVILEGES = (SESSION_WRITE,)

T = TypeVar('T')

PAGE_SIZE = 1000
RESOLVE_BATCH = 1000
# After these, every further call would fail the same way (and maybe wait for a timeout).
CONNECTION_FAILURES = frozenset({UNREACHABLE, TLS, AUTH})


@dataclass(frozen=True)
class Snapshot:
    """One listing of the cluster: the rows and what the logged-in user may do with them."""

    rows: Tuple[HandleRow, ...]
    taken_at: datetime
    user: str
    may_close: bool
    notes: Tuple[str, ...] = ()  # what is shown in a degraded way, and why
    sessions: Tuple[SessionRow, ...] = ()
    may_close_sessions: bool = False
    may_list_sessions: bool = True


_aged = itertools.count(1)
FULL_COLLECTION_EVERY = 64  # listings: the SDK leaves about 150 small objects in cycles a listing


@contextlib.contextmanager
def without_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a listing is decoded and joined.

    A listing of 20,000 handles allocates about a million containers, none of them in cycles;
    the collector would walk the growing heap again and again, a third of the CPU a listing
    costs. Reference counting still frees everything meanwhile. What is left at the end (the
    rows) lives until the next listing: it goes straight to the oldest generation (gc.freeze()
    then gc.unfreeze(), which only moves lists), instead of being walked by a young collection
    at the first allocation after this (20 ms for 20,000 rows) and again on its way up. The few
    cycles the SDK leaves (a closure per call) then wait for a full collection: one every
    FULL_COLLECTION_EVERY times, so they never pile up in a window that lists for days.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if next(_aged) % FULL_COLLECTION_EVERY:
                gc.freeze()
                gc.unfreeze()
            else:
                gc.collect()
            gc.enable()


@contextlib.contextmanager
def quick_thread_switches(interval_s: float = 0.0002) -> Iterator[None]:
    """Let a thread waiting on the network take the interpreter back quickly while another joins.

    The handles are read on one thread while this one joins the pages already in: each read of
    a page releases the interpreter lock many times, and would wait the default 5 ms switch
    interval each time to get it back from the joining thread, doubling the time a page takes.
    """
    was = sys.getswitchinterval()
    sys.setswitchinterval(min(was, interval_s))
    try:
        yield
    finally:
        sys.setswitchinterval(was)


class _Beside:
    """Runs `work` on a daemon thread: a pool's threads would hold up quitting while they wait
    for a network timeout."""

    def __init__(self, work: Callable[[], object]):
        self._value: object = None
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, args=(work,), name='lockmanager-listing', daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], object]) -> None:
        try:
            self._value = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
            self._error = exc

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _after_token(next_link: Optional[str]) -> Optional[str]:
    if not next_link:
        return None
    return (parse_qs(urlsplit(next_link).query).get('after') or [None])[0]


class LockCluster:
    """Lists handles as rows and closes them, on one logged-in SDK client.

    Not thread-safe (one SDK client is one HTTP connection): call it from one thread at a time.
    A listing uses two connections: a clone of the client takes the lock grants, the sessions
    and the lookups, while the handles are paged on the client itself.
    """

    # page_size: the tests list a few handles in pages of one or two, to go through the paging.
    def __init__(self, client: RestClient, page_size: int = PAGE_SIZE):
        self.client = client
        self.page_size = page_size
        self.names = UserNames(lambda **query: self._side_client().auth.find_identity(**query))
        self.paths = FilePaths(
            lambda ids: self._side_client().fs.resolve_paths(ids),
            lambda ids: self._side_client().fs.try_resolve_paths(ids),
            RESOLVE_BATCH,
        )
        self.hosts = HostNames(lambda ips: self._side_client().dns.resolve_ips_to_names(ips))
        self._grant_client: Optional[RestClient] = None

    def _side_client(self) -> RestClient:
        """A second connection: the grants, sessions and lookups of a listing, while the handles
        are paged on the first."""
        if self._grant_client is None:
            self._grant_client = self.client.clone()
        return self._grant_client

    def _translated(self) -> ContextManager[None]:
        return translated(self.client.host, self.client.port)

    # --- listing ---------------------------------------------------------------------------------
    def fetch(self) -> Snapshot:
        """List every open handle as a row, and the sessions; raise ToolError (e.g. a missing
        privilege) if it can't."""
        require_privileges(self.client, LIST_PRIVILEGES)
        me = who_am_i(self.client)
        granted = set(me.get('privileges') or ())
        notes = []
        with_sessions = SESSION_READ in granted
        with_shares = SHARE_READ in granted
        if IDENTITY_READ not in granted:
            self.names.disable()
            if not with_sessions:
                notes.append(f'user names need {IDENTITY_READ}: showing auth ids')
        if not with_sessions:
            notes.append(f'without {SESSION_READ} a handle shows every client address of its file, and no sessions')
        if not with_shares:
            notes.append(f'share names need {SHARE_READ}')
        with self._translated(), reading_reply('the SMB listing'), without_cyclic_gc(), quick_thread_switches():
            # The grants and sessions first (on a second client), alone, so the cluster answers
            # them at once; then the handles are paged on this client by a thread of their own
            # while this one joins each page as it comes: the join runs while the cluster
            # prepares the next page, and a page's raw handles are let go once joined. The
            # lookups (names, host names, paths) go through the second client, which only this
            # thread uses.
            pages: 'queue.SimpleQueue[Optional[List[Mapping]]]' = queue.SimpleQueue()
            share, byte_range, sessions, shares = self._grants_and_sessions(with_sessions, with_shares)
            paging = _Beside(lambda: self._page_handles(pages))
            try:
                if sessions is not None:
                    self.names.learn_from_sessions(sessions)
                hosts = self.hosts.lookup(
                    [g.get('owner_address') or '' for g in share]
                    + [g.get('owner_address') or '' for g in byte_range]
                    + [s.get('originator') or '' for s in sessions or ()]
                )
                listed_at = time.time()
                joiner = RowJoiner(share, byte_range, self.names, sessions, {}, shares, hosts, listed_at)
                counts = (len(share), len(byte_range))
                del share, byte_range
                rows: List[HandleRow] = []
                pathless: List[Tuple[int, Mapping]] = []  # (where its rows go, the handle)
                open_ids: Set[str] = set()
                while True:
                    page = pages.get()
                    if page is None:
                        break
                    for handle in page:
                        open_ids.add(str(handle['file_number']))
                        if handle['handle_info'].get('path'):
                            rows += joiner.rows_of(handle)
                        else:
                            pathless.append((len(rows), handle))
                    del page
            finally:
                paging.result()
            # Paths the listing left empty, asked in batches once every handle is in.
            joiner.paths = self.paths.lookup((str(h['file_number']) for _, h in pathless), open_ids)
            for at, handle in reversed(pathless):
                rows[at:at] = joiner.rows_of(handle)
            session_list = tuple(session_rows(sessions or (), self.names, hosts, listed_at))
            rows_out = tuple(rows)
            del rows, joiner
        log.debug('listed %d handles, %d share-mode and %d byte-range grants', len(rows_out), *counts)
        return Snapshot(
            rows_out,
            datetime.now().astimezone(),
            str(me.get('name', '?')),
            HANDLE_WRITE in granted,
            tuple(notes),
            session_list,
            SESSION_WRITE in granted,
            with_sessions,
        )

    def _page_handles(self, pages: 'queue.SimpleQueue[Optional[List[Mapping]]]') -> None:
        """Every handle, handed over a page at a time; None at the end (or when paging failed)."""
        page: List[Mapping] = []
        try:
            for handle in self._handles():
                page.append(handle)
                if len(page) >= self.page_size:
                    pages.put(page)
                    page = []
            if page:
                pages.put(page)
        finally:
            pages.put(None)

    def _handles(self) -> Iterator[Mapping]:
        pages = self.client.smb.list_file_handles(resolve_paths=True, limit=self.page_size)
        for page in distinct_pages(pages, 'the SMB file handle listing'):
            yield from page['file_handles']

    def _grants_and_sessions(
        self, with_sessions: bool, with_shares: bool
    ) -> Tuple[List[Mapping], List[Mapping], Optional[List[Mapping]], List[Mapping]]:
        # On a connection of its own: the lookups share it while the handles are paged on the first.
        client = self._side_client()
        share = self._grants(client, 'share-mode')
        byte_range = self._grants(client, 'byte-range')
        sessions = self._sessions(client) if with_sessions else None
        shares = self._shares(client) if with_shares else []
        return share, byte_range, sessions, shares

    @staticmethod
    def _shares(client: RestClient) -> List[Mapping]:
        answer = client.smb.smb_list_shares()
        entries = answer.get('entries') if isinstance(answer, Mapping) else answer
        return [entry for entry in entries or () if isinstance(entry, Mapping)]

    def _grants(self, client: RestClient, lock_type: str) -> List[Mapping]:
        # A lock listing sends `next` after every page that held grants, the last one too, and the
        # cluster "may choose a smaller limit": a short page is not the end (the SDK's own
        # list_all_locks_by_client takes it for one, and would drop the rest). Only an empty page,
        # or a page without a next link, ends the listing.
        grants: List[Mapping] = []
        after, seen = None, set()
        while True:
            page = client.fs.list_locks_by_client('smb', lock_type, limit=self.page_size, after=after)
            grants.extend(page['grants'])
            after = _after_token((page.get('paging') or {}).get('next'))
            if not page['grants'] or after is None:
                return grants
            if after in seen:
                raise BadReply(
                    f'the {lock_type} lock listing: the cluster sent the page token {after[:100]} twice (a paging loop)'
                )
            seen.add(after)

    def _sessions(self, client: RestClient) -> List[Mapping]:
        pages = client.smb.list_smb_sessions(limit=self.page_size)
        return [
            session for page in distinct_pages(pages, 'the SMB session listing') for session in page['session_infos']
        ]

    # --- closing ---------------------------------------------------------------------------------
    def close(
        self, rows: Sequence[HandleRow], progress: Optional[Callable[[CloseOutcome], None]] = None
    ) -> List[CloseOutcome]:
        """Close exactly these handles; one outcome per row, in order. A handle that is gone or
        refused is reported and the others still closed; a lost connection ends the run."""
        require_privileges(self.client, CLOSE_PRIVILEGES)
        return self._close_each(rows, lambda row: self.client.smb.close_smb_file(location=row.location), progress)

    def close_sessions(
        self, rows: Sequence[SessionRow], progress: Optional[Callable[[CloseOutcome], None]] = None
    ) -> List[CloseOutcome]:
        """Close exactly these sessions (and with them every handle they hold), as close() does
        handles."""
        require_privileges(self.client, SESSION_CLOSE_PRIVILEGES)
        return self._close_each(
            rows, lambda row: self.client.smb.close_smb_sessions([{'location': row.location}]), progress
        )

    def _close_each(
        self,
        rows: Sequence[Any],
        send: Callable[[Any], Sequence[Mapping]],
        progress: Optional[Callable[[CloseOutcome], None]],
    ) -> List[CloseOutcome]:
        # One request a row: each gets its own answer, and one gone already does not stop the rest.
        outcomes: List[CloseOutcome] = []
        for n, row in enumerate(rows):
            try:
                with self._translated():
                    answers = send(row)
                message = (answers[0].get('error_message') if answers else '') or ''
                outcome = CloseOutcome(row, True)
                if message:
                    why = f'the cluster did not close it ({message.rstrip(".")}); it may have been closed already'
                    outcome = CloseOutcome(row, False, why)
            except ToolError as exc:
                if exc.exit_code in CONNECTION_FAILURES:
                    outcomes += [CloseOutcome(r, False, f'not attempted: {exc.message}') for r in rows[n:]]
                    break
                outcome = CloseOutcome(row, False, exc.message)
            outcomes.append(outcome)
            if progress:
                progress(outcome)
        return outcomes


def connect_once(config: ClusterConfig) -> RestClient:
    """The lock manager's client: each listing or close is asked for once, so a call the cluster
    was too busy for is tried again (ONE_SHOT_RETRIES) rather than reported at once."""
    return connect(config, user_agent='qumulo_lock_manager', retries=ONE_SHOT_RETRIES)


class ConnectingCluster:
    """A LockCluster that logs in on first use and again after a lost connection.

    The window calls it from its worker thread, so an unreachable cluster costs a timeout there,
    never a frozen window; after a failure the next refresh simply tries again.
    """

    def __init__(self, config: ClusterConfig):
        self.config = config
        self._cluster: Optional[LockCluster] = None
        self._lock = threading.Lock()

    def _connected(self) -> LockCluster:
        if self._cluster is None:
            self._cluster = LockCluster(connect_once(self.config))
        return self._cluster

    def _run(self, call: Callable[[LockCluster], T]) -> T:
        with self._lock:
            try:
                return call(self._connected())
            except ToolError as exc:
                if exc.exit_code in CONNECTION_FAILURES:
                    self._cluster = None
                raise

    def fetch(self) -> Snapshot:
        return self._run(lambda cluster: cluster.fetch())

    def close(self, rows: Sequence[HandleRow]) -> List[CloseOutcome]:
        return self._run(lambda cluster: cluster.close(rows))

    def close_sessions(self, rows: Sequence[SessionRow]) -> List[CloseOutcome]:
        return self._run(lambda cluster: cluster.close_sessions(rows))
