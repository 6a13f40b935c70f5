"""The pytarchive service: owns the library, its drives and the queue; answers clients on a Unix socket.

    python -m pytarchive.service --config /etc/pytarchive/pytarchive.conf

Start: take the database lock, mark tasks a dead service left 'running' as interrupted, listen,
put any tape left in a drive back home, then run queued tasks, one per drive at a time. SIGTERM/
SIGINT: stop listening, let the running tasks finish their step or stop at their next checkpoint
(they are marked interrupted), make sure no tape is mounted or left in any drive, exit 0.

A database that is missing from a used state directory, corrupt, or deleted, replaced or overwritten
while the service runs stops all work: one CRITICAL line, and the same line to every client until the
service is stopped (exit 1). See pytarchive.db for how each is detected.
"""

import fcntl
import logging
import os
import signal
import socket
import stat
import threading
from types import FrameType
from typing import IO, Any, Dict, List, Optional

from common.errors import FAILURE, ArgumentParser, ToolError
from pytarchive import config as configuration, mail
from pytarchive.client.protocol import MAX_REQUEST, Closed, ProtocolError, failed, ok, recv_message, send_message
from pytarchive.library.errors import LibraryError
from pytarchive import resources as drive_resources
from pytarchive.service.access import Access, Peer, peer_of, resolve_group
from pytarchive.service.commands import Commands, Queued
from pytarchive.state.db import Database, DatabaseUnusable, traces
from pytarchive.taskqueue.consumer import describe_failure
from pytarchive.taskqueue import Consumer, QueueApi, TaskStorage
from pytarchive.tasks import REGISTRY

log = logging.getLogger(__name__)
# The name in the service's one error line: the systemd unit's name too, so the journal reads alike.
PROG = 'pytarchive.service'
ACCEPT_POLL_S = 0.5
SIGNAL_POLL_S = 0.5  # how soon the main thread notices a SIGTERM the kernel gave another thread
# What one local user can make root spend: a thread and at most MAX_REQUEST bytes per connection,
# MAX_CONNECTIONS_PER_USER connections per UID, MAX_CONNECTIONS for all but root together (root, the
# admin, is never turned away), and each request must arrive whole within REQUEST_TIMEOUT_S.
MAX_CONNECTIONS_PER_USER = 8
MAX_CONNECTIONS = 32
REQUEST_TIMEOUT_S = 10.0  # the client sends its request as soon as it is connected
REPLY_TIMEOUT_S = 60.0  # for the whole reply (sendall's timeout is the total)
DATABASE_CHECK_S = 1.0  # a stat and a 16-byte read
FIXITY_CHECK_S = 3600.0  # how often [General] verify_every_days looks for tapes due


def take_lock(database: str) -> IO[str]:
    """One service per database: a second one would run the same tasks on the same drive."""
    path = f'{database}.lock'
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
        handle = open(path, 'a')
    except OSError as exc:
        raise ToolError(f'{path}: cannot create the service lock: {exc.strerror}') from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ToolError(f'another pytarchive service is already using {database}') from None
    return handle


def take_library_lock(device: str) -> Optional[int]:
    """One service per library, whatever database each has: an exclusive lock on the changer's
    device node itself (its real path, so /dev/tape/by-id/... and /dev/sch0 are one library). A
    second service would move tapes and unmount volumes under the first one's tasks. mtx takes no
    such lock, so the lock never gets in the way of the tasks' own mtx runs. A device that is not
    there yet (the library off at boot) cannot be locked: the tasks say so when they run."""
    real = os.path.realpath(device)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        log.warning('the library %s cannot be opened to lock it (%s): not locked', device, exc.strerror)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ToolError(
            f'another pytarchive service is already using the library {device}'
            + (f' ({real})' if real != device else '')
            + ': one service per library; stop the other one first'
        ) from None
    return fd


def bind_socket(path: str, group: Optional[int]) -> socket.socket:
    """Listen on `path`: mode 0600, or 0660 owned by the read-only group so its members can connect."""
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        try:
            os.makedirs(parent, mode=0o700)
            if group is not None:  # members need to reach the socket: search permission, no listing
                os.chown(parent, -1, group)
                os.chmod(parent, 0o710)
        except OSError as exc:
            raise ToolError(f'cannot create the socket directory {parent}: {exc.strerror}') from None
    elif group is not None and not _group_can_enter(parent, group):
        # Not changed here: the directory may be shared (e.g. /tmp) or set up by the admin.
        log.warning(
            'members of the read-only group cannot reach %s: run `chgrp %d %s; chmod g+x %s` '
            '(or remove the directory so the service creates it)',
            path,
            group,
            parent,
            parent,
        )
    if os.path.lexists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise ToolError(f'{path} exists and is not a socket; remove it or change [Service] socket')
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            if probe.connect_ex(path) == 0:
                raise ToolError(f'another pytarchive service is already listening on {path}')
        os.unlink(path)  # left behind by a service that died
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)  # never accessible to others, not even between bind and chmod
    try:
        listener.bind(path)
    except OSError as exc:
        listener.close()
        raise ToolError(f'cannot listen on {path}: {exc.strerror}') from None
    finally:
        os.umask(previous)
    if group is not None:
        os.chown(path, -1, group)
        os.chmod(path, 0o660)
    else:
        os.chmod(path, 0o600)
    listener.listen(16)
    listener.settimeout(ACCEPT_POLL_S)
    return listener


def _group_can_enter(directory: str, group: int) -> bool:
    mode = os.stat(directory)
    return bool(mode.st_mode & stat.S_IXOTH or (mode.st_gid == group and mode.st_mode & stat.S_IXGRP))


class Service:
    def __init__(self, config: configuration.Config, new_database: bool = False):
        self.config = config
        self.stopping = threading.Event()
        group = resolve_group(config)  # before the lock: a config error must leave no trace of a run
        self.access = Access(group, config.service.read_only_group)
        self.group = group
        path = config.service.database
        # A missing database is created only on a first run (no lock, WAL or rescued copy next to it,
        # checked before take_lock makes the lock) or when asked: otherwise it is a lost catalog.
        create = new_database or not traces(path)
        self._lock_handle = take_lock(path)
        self._library_lock = take_library_lock(config.device.library)
        self.db: Optional[Database] = None
        self.consumer: Optional[Consumer] = None
        self.unusable: Optional[str] = None  # why the service takes no work: the line every client gets
        self._unusable_lock = threading.Lock()
        if new_database:
            _remove_stale_wal(path)
        try:
            self.db = Database(path, create)
        except DatabaseUnusable as exc:
            self.unusable = exc.message
        # One per drive; the drives are emptied at start and stop either way.
        self.resources = drive_resources.for_drives(config, self.db)
        if self.db is not None:
            self.storage = TaskStorage(self.db)
            self.consumer = Consumer(self.storage, REGISTRY, self.resources)
            self.commands = Commands(QueueApi(self.storage, REGISTRY, self.consumer), self.db, config, self.resources)
        self.listener: Optional[socket.socket] = None
        self._connections: Dict[int, int] = {}  # UID -> connections being served, root not counted
        self._connections_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------------

    def run(self) -> int:
        """0 when stopped cleanly; 1 when a drive could not be emptied or the database was unusable."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        if self.db is not None:
            interrupted = self.storage.interrupt_leftovers()
            if interrupted:
                log.warning(
                    'task%s %s ran when the service last stopped: marked interrupted; `pytarchive requeue` '
                    'runs them again',
                    's' if len(interrupted) > 1 else '',
                    ', '.join(map(str, interrupted)),
                )
        self.listener = bind_socket(self.config.service.socket, self.group)
        acceptor = threading.Thread(target=self._accept, name='acceptor')
        acceptor.start()
        log.info('listening on %s', self.config.service.socket)
        self._release_drives('at start')
        if self.db is None:
            # Up, so that every client is told why (and systemd does not restart it in a loop).
            log.critical('%s', self.unusable)
        else:
            self.consumer.start()
            threading.Thread(target=self._watch_database, name='database-watch', daemon=True).start()
            if self.config.general.verify_every_days:
                threading.Thread(target=self._schedule_fixity, name='fixity-schedule', daemon=True).start()
        # In slices, not one wait: the kernel may hand SIGTERM to a worker thread, and Python runs the
        # handler only when the main thread next runs; a wait without a timeout would never return.
        while not self.stopping.wait(SIGNAL_POLL_S):
            pass

        log.info('stopping: no new connections; waiting for the running tasks to finish or reach a checkpoint')
        if self.consumer is not None:
            self.consumer.request_stop()
        acceptor.join()
        self.listener.close()
        _unlink_quietly(self.config.service.socket)
        if self.consumer is not None:
            self.consumer.stop()
        released = self._release_drives('before exiting')
        if self.db is not None:
            self.db.close()
        log.info('stopped')
        return 0 if released and not self.unusable else FAILURE

    def _schedule_fixity(self) -> None:
        """[General] verify_every_days: each tape whose archives were last re-read longer ago than
        that (or never) gets a verify task, queued like any other, unless one is queued or running."""
        while True:
            try:
                self.commands.queue_due_fixity(self.config.general.verify_every_days)
            except ToolError as exc:  # the database unusable: the service says so elsewhere
                log.warning('fixity schedule: %s', exc.message)
            if self.stopping.wait(FIXITY_CHECK_S):
                return

    def _watch_database(self) -> None:
        """Notice a database deleted, replaced or overwritten while idle too, not only at the next command."""
        while not self.stopping.wait(DATABASE_CHECK_S):
            try:
                self.db.check(header=True)
            except DatabaseUnusable as exc:
                self._database_unusable(exc)
                return

    def _database_unusable(self, exc: DatabaseUnusable) -> str:
        """Stop taking work and say why, once (CRITICAL: mailed); the line for every client from now on."""
        with self._unusable_lock:
            if self.unusable is None:
                self.unusable = exc.message
                self.consumer.request_stop()
                log.critical('%s', self.unusable)
        return self.unusable

    def _on_signal(self, signum: int, _frame: Optional[FrameType]) -> None:
        if not self.stopping.is_set():
            log.info('%s received', signal.Signals(signum).name)
        self.stopping.set()

    def _release_drives(self, when: str) -> bool:
        """Unmount and unload whatever is in each drive. False (and a CRITICAL log) if that failed for one."""
        released = True
        for resources in self.resources:  # every drive, even after one failed: each tape goes home if it can
            try:
                resources.release()
            except LibraryError as exc:
                log.critical('could not empty drive %d %s: %s', resources.index, when, exc)
                released = False
            except Exception as exc:  # noqa: BLE001 - a tool that timed out, a lost file: the service stays up
                log.critical('could not empty drive %d %s: %s', resources.index, when, describe_failure(exc))
                released = False
        return released

    # -- connections -------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError as exc:
                log.error('accept failed: %s', exc)
                continue
            try:
                peer = peer_of(connection)
            except OSError as exc:
                log.warning('cannot tell who connected: %s', exc)
                connection.close()
                continue
            refusal = self._admit(peer)
            if refusal:
                connection.settimeout(1)  # a line this small fits in the socket's buffer
                self._reply(connection, failed(refusal))
                connection.close()
                continue
            threading.Thread(target=self._serve, args=(connection, peer), daemon=True).start()

    def _admit(self, peer: Peer) -> Optional[str]:
        """None if the connection may be served (and is then counted), else why not."""
        if peer.uid == 0:
            return None
        with self._connections_lock:
            if self._connections.get(peer.uid, 0) >= MAX_CONNECTIONS_PER_USER:
                why = (
                    f'too many connections from UID {peer.uid}: at most {MAX_CONNECTIONS_PER_USER} at a time; '
                    'try again when one ends'
                )
            elif sum(self._connections.values()) >= MAX_CONNECTIONS:
                why = f'too many connections: at most {MAX_CONNECTIONS} at a time from users other than root; try again'
            else:
                self._connections[peer.uid] = self._connections.get(peer.uid, 0) + 1
                return None
        log.warning('refused a connection from UID %d (pid %d): %s', peer.uid, peer.pid, why)
        return why

    def _serve(self, connection: socket.socket, peer: Peer) -> None:
        try:
            with connection:
                try:
                    request = recv_message(connection, MAX_REQUEST, REQUEST_TIMEOUT_S)
                except Closed:
                    return
                except (ProtocolError, OSError) as exc:
                    log.warning('bad request from UID %d (pid %d): %s', peer.uid, peer.pid, exc)
                    connection.settimeout(REPLY_TIMEOUT_S)
                    self._reply(connection, failed(f'bad request: {exc}'))
                    return
                reply = self._answer(peer, request)
                connection.settimeout(REPLY_TIMEOUT_S)
                self._reply(connection, reply)
        finally:
            if peer.uid != 0:
                with self._connections_lock:
                    self._connections[peer.uid] -= 1
                    if not self._connections[peer.uid]:
                        del self._connections[peer.uid]

    def _answer(self, peer: Peer, request: Dict[str, Any]) -> Dict[str, Any]:
        command, args = request.get('command'), request.get('args', {})
        if not isinstance(command, str) or not isinstance(args, dict):
            return failed('bad request: needs "command" (text) and "args" (an object)')
        refusal = self.access.refusal(peer, command)
        if refusal:
            log.warning('refused %r from UID %d (pid %d)', command, peer.uid, peer.pid)
            return failed(refusal, 'refused')
        if self.unusable:
            return failed(self.unusable)
        log.info('UID %d (pid %d): %s %s', peer.uid, peer.pid, command, args or '')
        try:
            self.db.check()
            output = self.commands.handle(command, args)
            if isinstance(output, Queued):
                return {**ok(output.text), 'task': output.task.id}
            return ok(output)
        except DatabaseUnusable as exc:
            return failed(self._database_unusable(exc))
        except ToolError as exc:
            return failed(exc.message)
        except Exception as exc:  # noqa: BLE001 - one bad request must not take the service down
            log.exception('command %r failed', command)
            return failed(f'internal error in {command!r}: {type(exc).__name__}: {exc} (see the service log)')

    @staticmethod
    def _reply(connection: socket.socket, reply: dict) -> None:
        try:
            send_message(connection, reply)
        except (OSError, ProtocolError) as exc:
            log.warning('could not send the reply: %s', exc)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _remove_stale_wal(database: str) -> None:
    """--new-database: a WAL left by the lost database must not be replayed into the new one."""
    if os.path.exists(database):
        return
    for leftover in (f'{database}-wal', f'{database}-shm'):
        if os.path.exists(leftover):
            log.warning('removing %s, left by the missing database', leftover)
            _unlink_quietly(leftover)


def main(argv: Optional[List[str]] = None) -> Optional[int]:
    """The service's command line; a failure raises a ToolError (common.errors.run_main prints it)."""
    parser = ArgumentParser(
        prog=PROG,
        usage='python -m pytarchive.service [options]',
        description='The pytarchive service: runs as root, owns the tape library and the queue.',
    )
    # --config: the option's older name, kept so that existing units and scripts go on working.
    parser.add_argument(
        '--config-file',
        '--config',
        dest='config',
        metavar='PATH',
        default=configuration.DEFAULT_PATH,
        help=f'config file (default {configuration.DEFAULT_PATH})',
    )
    parser.add_argument('--debug', action='store_true', help='log everything, whatever logging.conf says')
    parser.add_argument(
        '--new-database',
        action='store_true',
        help='create the database if it is missing even though its state directory was in use '
        '(the catalog of what is on which tape then starts empty)',
    )
    args = parser.parse_args(argv)
    config = configuration.load(args.config)
    configuration.setup_logging(config)
    if config.email.configured and not os.path.exists(config.service.logging_config):
        # No logging.conf (whose own SMTPHandler, if it has one, is used as written): task failures
        # (logged CRITICAL) are still mailed, through [Email] with its STARTTLS and login.
        logging.getLogger().addHandler(mail.critical_mail_handler(config.email))
    if args.debug:
        logging.getLogger().setLevel(logging.DEBUG)
    return Service(config, args.new_database).run()
