"""The pytarchive service: owns the library, the drive and the queue; answers clients on a Unix socket.

    python -m pytarchive.service --config /etc/pytarchive/pytarchive.conf

Start: take the database lock, mark tasks a dead service left 'running' as interrupted, listen,
put any tape left in the drive back home, then run queued tasks. SIGTERM/SIGINT: stop listening,
let the running task finish its step or stop at its next checkpoint (it is marked interrupted),
make sure no tape is mounted or left in the drive, exit 0.
"""

import fcntl
import logging
import os
import signal
import socket
import stat
import threading
from typing import Optional

import pytarchive.tasks  # noqa: F401 - registers the task kinds
from common.errors import FAILURE, ArgumentParser, ToolError
from pytarchive import config as configuration, mail
from pytarchive.access import Access, peer_of, resolve_group
from pytarchive.cli import run
from pytarchive.commands import Commands, Queued
from pytarchive.db import Database
from pytarchive.library.errors import LibraryError
from pytarchive.protocol import TIMEOUT_S, Closed, ProtocolError, failed, ok, recv_message, send_message
from pytarchive.queue import Consumer, QueueApi, TaskStorage, registry
from pytarchive.resources import DriveResources

log = logging.getLogger('pytarchive.service')
ACCEPT_POLL_S = 0.5


def take_lock(database: str):
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
        log.warning('members of the read-only group cannot reach %s: run `chgrp %d %s; chmod g+x %s` '
                    '(or remove the directory so the service creates it)', path, group, parent, parent)
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
    def __init__(self, config: configuration.Config):
        self.config = config
        self.stopping = threading.Event()
        self._lock_handle = take_lock(config.service.database)
        group = resolve_group(config)
        self.access = Access(group, config.service.read_only_group)
        self.group = group
        self.db = Database(config.service.database)
        self.storage = TaskStorage(self.db)
        self.resources = DriveResources(config, self.db)
        self.consumer = Consumer(self.storage, registry, [self.resources])
        self.commands = Commands(QueueApi(self.storage, registry, self.consumer), self.db, config, self.resources)
        self.listener: Optional[socket.socket] = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        interrupted = self.storage.interrupt_leftovers()
        if interrupted:
            log.warning('task%s %s ran when the service last stopped: marked interrupted; `pytarchive requeue` '
                        'runs them again', 's' if len(interrupted) > 1 else '', ', '.join(map(str, interrupted)))
        self.listener = bind_socket(self.config.service.socket, self.group)
        acceptor = threading.Thread(target=self._accept, name='acceptor')
        acceptor.start()
        log.info('listening on %s', self.config.service.socket)
        self._release_drive('at start')
        self.consumer.start()
        self.stopping.wait()

        log.info('stopping: no new connections; waiting for the running task to finish or reach a checkpoint')
        self.consumer.request_stop()
        acceptor.join()
        self.listener.close()
        _unlink_quietly(self.config.service.socket)
        self.consumer.stop()
        released = self._release_drive('before exiting')
        self.db.close()
        log.info('stopped')
        return 0 if released else FAILURE

    def _on_signal(self, signum, _frame) -> None:
        if not self.stopping.is_set():
            log.info('%s received', signal.Signals(signum).name)
        self.stopping.set()

    def _release_drive(self, when: str) -> bool:
        """Unmount and unload whatever is in the drive. False (and a CRITICAL log) if that failed."""
        try:
            self.resources.release()
            return True
        except LibraryError as exc:
            log.critical('could not empty the drive %s: %s', when, exc)
            return False

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
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(TIMEOUT_S)
            try:
                peer = peer_of(connection)
                request = recv_message(connection)
            except Closed:
                return
            except (ProtocolError, OSError) as exc:
                log.warning('bad request: %s', exc)
                self._reply(connection, failed(f'bad request: {exc}'))
                return
            self._reply(connection, self._answer(peer, request))

    def _answer(self, peer, request) -> dict:
        command, args = request.get('command'), request.get('args', {})
        if not isinstance(command, str) or not isinstance(args, dict):
            return failed('bad request: needs "command" (text) and "args" (an object)')
        refusal = self.access.refusal(peer, command)
        if refusal:
            log.warning('refused %r from UID %d (pid %d)', command, peer.uid, peer.pid)
            return failed(refusal, 'refused')
        log.info('UID %d (pid %d): %s %s', peer.uid, peer.pid, command, args or '')
        try:
            output = self.commands.handle(command, args)
            if isinstance(output, Queued):
                return {**ok(output.text), 'task': output.task.id}
            return ok(output)
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


def main(argv=None) -> Optional[int]:
    parser = ArgumentParser(prog='python -m pytarchive.service',
                            description='The pytarchive service: runs as root, owns the tape library and the queue.')
    parser.add_argument('--config', metavar='PATH', default=configuration.DEFAULT_PATH,
                        help=f'config file (default {configuration.DEFAULT_PATH})')
    parser.add_argument('--debug', action='store_true', help='log everything, whatever logging.conf says')
    args = parser.parse_args(argv)
    config = configuration.load(args.config)
    configuration.setup_logging(config)
    if config.email.configured and not os.path.exists(config.service.logging_config):
        # No logging.conf (whose own SMTPHandler, as in the seed, is used as written): task failures
        # (logged CRITICAL) are still mailed, through [Email] with its STARTTLS and login.
        logging.getLogger().addHandler(mail.critical_mail_handler(config.email))
    if args.debug:
        logging.getLogger().setLevel(logging.DEBUG)
    return Service(config).run()


if __name__ == '__main__':
    raise SystemExit(run('pytarchive service', main))
