"""pytarchive.conf: the sections and keys the service and the client read, typed.

    [General]  tape_max_size, exclude_folders, source_folders, scratch_path, pack_threshold, verify_every_days,
               copies (sound copies a folder needs before it is deleteable), catalog_backup
    [Device]   library, drive_serial (required); drive_index, drive_device, mountpoint (one item per drive:
               comma-separated lists as long as drive_serial, see _drives),
               mtx, tapeinfo, mkltfs, ltfs, ltfsck, umount (commands, split like a shell would),
               ltfsck_recovery (yes: check a volume whose index is behind, see tasks' recovery)
    [Export]   to, settings, exportfs (command)
    [Service]  socket, database, read_only_group, logging_config, queue_days
    [Email]    smtp_host, smtp_port, sender, recipients, starttls, username, password

Inline `# comments` are stripped (`scratch_path = /tmp # Path where ...` is common). A key
that is missing, empty where a value is needed, malformed or unknown is a ConfigError whose one
line names the file, the section and the key.
"""

import configparser
import logging
import logging.config
import os
import shlex
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Set, Tuple, TypeVar

from common.config import ConfigError, read_ini, unquote_secret

DEFAULT_PATH = '/etc/pytarchive/pytarchive.conf'
DEFAULT_SOCKET = '/run/pytarchive/pytarchive.sock'
DEFAULT_DATABASE = '/var/lib/pytarchive/pytarchive.db'
DEFAULT_LOGGING_CONFIG = '/etc/pytarchive/logging.conf'
LOG_FORMAT = '%(asctime)s - %(name)s - %(levelname)s - %(message)s'

T = TypeVar('T')
_FLAGS = {'yes': True, 'true': True, 'on': True, '1': True, 'no': False, 'false': False, 'off': False, '0': False}
_REQUIRED = object()


@dataclass(frozen=True)
class GeneralConfig:
    tape_max_size: int  # bytes; 0 means no limit beyond the tape's own capacity
    exclude_folders: Tuple[str, ...]
    source_folders: Tuple[str, ...]
    scratch_path: str
    pack_threshold: int  # folders with more files than this are packed into one tar.zst by prepare
    verify_every_days: int = 0  # each tape's archives re-read against their checksums this often (0: never)
    copies: int = 1  # sound copies (archived, read back, fixity not failed) before a folder is deleteable
    catalog_backup: str = 'tape'  # after each archive, the catalog's copy goes: tape (the one written), no, or a folder


@dataclass(frozen=True)
class DriveConfig:
    serial: str
    index: int  # the changer's data transfer element number of that drive
    device: str  # the drive's device, checked against the serial with tapeinfo before use
    mountpoint: str  # where LTFS mounts the tape in this drive


@dataclass(frozen=True)
class DeviceConfig:
    library: str  # changer device, e.g. /dev/sch0
    drives: Tuple[DriveConfig, ...]  # one or more, in the order drive_serial names them
    mtx: Tuple[str, ...]
    tapeinfo: Tuple[str, ...]
    mkltfs: Tuple[str, ...]
    ltfs: Tuple[str, ...]
    umount: Tuple[str, ...]
    ltfsck: Tuple[str, ...] = ('ltfsck',)
    # Run ltfsck by itself on a volume that refuses to mount because its index is behind its data
    # (what an ltfs killed mid-write leaves); no: stop and leave the check to the admin.
    ltfsck_recovery: bool = True


@dataclass(frozen=True)
class ExportConfig:
    to: str  # the NFS clients, e.g. 192.168.0.0/16
    settings: str  # exportfs -o options, e.g. ro,fsid=1
    exportfs: Tuple[str, ...]


@dataclass(frozen=True)
class ServiceConfig:
    socket: str
    database: str
    read_only_group: str  # empty: only root may use the service
    logging_config: str
    logging_config_given: bool  # named in the file: then it must exist
    queue_days: int = 7  # finished tasks older than this leave `pytarchive queue` (kept in the database)


@dataclass(frozen=True)
class EmailConfig:
    smtp_host: str
    smtp_port: int
    sender: str
    recipients: Tuple[str, ...]
    starttls: bool
    username: str  # empty: no login
    password: str = field(repr=False)  # never in a repr, so never in a log line

    @property
    def configured(self) -> bool:
        return bool(self.smtp_host and self.sender and self.recipients)


@dataclass(frozen=True)
class Config:
    path: str
    general: GeneralConfig
    device: DeviceConfig
    export: ExportConfig
    service: ServiceConfig
    email: EmailConfig


class _Section:
    """Typed reads from one section; remembers which keys were read so unknown ones stand out."""

    def __init__(self, parser: configparser.ConfigParser, path: str, name: str):
        self.path = path
        self.name = name
        self.values: Dict[str, str] = dict(parser[name]) if parser.has_section(name) else {}
        self.known: Set[str] = set()

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f'{self.path}: [{self.name}] {key}: {problem}')

    def _raw(self, key: str, default: object) -> Optional[str]:
        self.known.add(key)
        value = self.values.get(key, '').strip()
        if value:
            return value
        if default is _REQUIRED:
            state = 'is empty' if key in self.values else 'is missing'
            raise self.error(key, f'{state} (required)')
        return None

    def _typed(self, key: str, default: Any, convert: Callable[[str], T], expected: str) -> T:
        value = self._raw(key, default)
        if value is None:
            return default
        try:
            return convert(value)
        except ValueError:
            raise self.error(key, f'{value!r} is not {expected}') from None

    def text(self, key: str, default: Any = _REQUIRED) -> str:
        value = self._raw(key, default)
        return default if value is None else value

    def path_value(self, key: str, default: Any = _REQUIRED) -> str:
        value = self.text(key, default)
        if value and not value.startswith('/'):
            raise self.error(key, f'{value!r} is not an absolute path')
        return value

    def integer(self, key: str, default: Any = _REQUIRED, minimum: int = 0, maximum: Optional[int] = None) -> int:
        def convert(text: str) -> int:
            number = int(text)
            if number < minimum or (maximum is not None and number > maximum):
                raise ValueError(text)
            return number

        bounds = f'from {minimum} to {maximum}' if maximum is not None else f'{minimum} or more'
        return self._typed(key, default, convert, f'a whole number ({bounds})')

    def items(self, key: str, default: Tuple[str, ...] = ()) -> Tuple[str, ...]:
        """A comma-separated list, e.g. `exclude_folders = .local, .cache`."""
        value = self._raw(key, default)
        if value is None:
            return default
        return tuple(item.strip() for item in value.split(',') if item.strip())

    def flag(self, key: str, default: bool) -> bool:
        def convert(text: str) -> bool:
            if text.lower() not in _FLAGS:
                raise ValueError(text)
            return _FLAGS[text.lower()]

        return self._typed(key, default, convert, 'yes or no')

    def command(self, key: str, default: str) -> Tuple[str, ...]:
        """A program and its fixed arguments, e.g. `mtx = /usr/sbin/mtx` or `sudo -n mtx`."""

        def convert(text: str) -> Tuple[str, ...]:
            words = tuple(shlex.split(text))
            if not words:
                raise ValueError(text)
            return words

        return self._typed(key, (default,), convert, 'a command (unbalanced quotes?)')

    def check_unknown(self) -> None:
        for key in self.values:
            if key not in self.known:
                raise self.error(key, f'unknown key (known: {", ".join(sorted(self.known))})')


def _backup_place(text: str) -> str:
    if text not in ('tape', 'no') and not text.startswith('/'):
        raise ValueError(text)
    return text


_SECTIONS = ('General', 'Device', 'Export', 'Service', 'Email')


def _read(path: str) -> configparser.ConfigParser:
    # Inline '#' comments, as config files written for pytarchive have them; no interpolation so a '%' stays a '%'.
    parser = read_ini(
        path,
        configparser.ConfigParser(interpolation=None, inline_comment_prefixes=('#',), default_section='\0'),
        'Device',
    )
    for name in parser.sections():
        if name not in _SECTIONS:
            raise ConfigError(f'{path}: [{name}]: unknown section (known: {", ".join(_SECTIONS)})')
    return parser


def load(path: str = DEFAULT_PATH) -> Config:
    """Read and check the whole file at once, so a mistake shows at start and not mid-task."""
    parser = _read(path)
    sections = {name: _Section(parser, path, name) for name in _SECTIONS}
    general, device, export, service, email = (sections[name] for name in _SECTIONS)
    logging_config = service.path_value('logging_config', '')
    config = Config(
        path=path,
        general=GeneralConfig(
            tape_max_size=general.integer('tape_max_size', 0),
            exclude_folders=general.items('exclude_folders'),
            source_folders=general.items('source_folders'),
            scratch_path=general.path_value('scratch_path', '/tmp'),
            pack_threshold=general.integer('pack_threshold', 500_000, minimum=1),
            verify_every_days=general.integer('verify_every_days', 0, minimum=0, maximum=36500),
            copies=general.integer('copies', 1, minimum=1, maximum=9),
            catalog_backup=general._typed('catalog_backup', 'tape', _backup_place, 'tape, no, or a full path'),
        ),
        device=DeviceConfig(
            library=device.text('library'),
            drives=_drives(device),
            mtx=device.command('mtx', 'mtx'),
            tapeinfo=device.command('tapeinfo', 'tapeinfo'),
            mkltfs=device.command('mkltfs', 'mkltfs'),
            ltfs=device.command('ltfs', 'ltfs'),
            umount=device.command('umount', 'umount'),
            ltfsck=device.command('ltfsck', 'ltfsck'),
            ltfsck_recovery=device.flag('ltfsck_recovery', True),
        ),
        export=ExportConfig(
            to=export.text('to', ''),
            settings=export.text('settings', 'ro'),
            exportfs=export.command('exportfs', 'exportfs'),
        ),
        service=ServiceConfig(
            socket=service.path_value('socket', DEFAULT_SOCKET),
            database=service.path_value('database', DEFAULT_DATABASE),
            read_only_group=service.text('read_only_group', ''),
            queue_days=service.integer('queue_days', 7, minimum=0, maximum=36500),
            logging_config=logging_config or DEFAULT_LOGGING_CONFIG,
            logging_config_given=bool(logging_config),
        ),
        email=EmailConfig(
            smtp_host=email.text('smtp_host', ''),
            smtp_port=email.integer('smtp_port', 25, minimum=1, maximum=65535),
            sender=email.text('sender', ''),
            recipients=email.items('recipients'),
            starttls=email.flag('starttls', False),
            username=email.text('username', ''),
            password=unquote_secret(email.text('password', '')),  # "..." keeps spaces at either end
        ),
    )
    if config.email.password:
        _check_private(path)
    for section in sections.values():
        section.check_unknown()
    return config


def _drives(device: _Section) -> Tuple[DriveConfig, ...]:
    """[Device] drive_serial, drive_index, drive_device and mountpoint, one comma-separated item per
    drive. One drive keeps the old defaults (index 0, /dev/nst0, /ltfs); with several, no default
    could be right for all of them, so each key must list one item per drive."""
    serials = tuple(item.strip() for item in device.text('drive_serial').split(',') if item.strip())
    if not serials:
        raise device.error('drive_serial', 'names no drive')
    count = len(serials)

    def listed(key: str, default: str) -> Tuple[str, ...]:
        items = device.items(key, (default,) if count == 1 else None)
        if items is None:
            raise device.error(key, f'is missing: drive_serial names {count} drives, so give one item per drive')
        if len(items) != count:
            raise device.error(key, f'lists {len(items)} items but drive_serial names {count} drives: one per drive')
        return items

    def integer(key: str, text: str) -> int:
        if not text.isdigit():
            raise device.error(key, f'{text!r} is not a whole number (0 or more)')
        return int(text)

    def absolute(key: str, text: str) -> str:
        if not text.startswith('/'):
            raise device.error(key, f'{text!r} is not an absolute path')
        return text

    drives = tuple(
        DriveConfig(serial, integer('drive_index', index), absolute('drive_device', dev), absolute('mountpoint', mount))
        for serial, index, dev, mount in zip(
            serials, listed('drive_index', '0'), listed('drive_device', '/dev/nst0'), listed('mountpoint', '/ltfs')
        )
    )
    for key, values in (
        ('drive_serial', [d.serial for d in drives]),
        ('drive_index', [d.index for d in drives]),
        ('drive_device', [os.path.normpath(d.device) for d in drives]),
        ('mountpoint', [os.path.normpath(d.mountpoint) for d in drives]),
    ):
        repeated = sorted({str(value) for value in values if values.count(value) > 1})
        if repeated:
            raise device.error(key, f'{", ".join(repeated)} named twice: each drive needs its own')
    mountpoints = [os.path.normpath(d.mountpoint) for d in drives]
    for inner in mountpoints:
        for outer in mountpoints:
            # A volume mounted inside another would hide in, or be written into, the other tape.
            if inner != outer and inner.startswith(outer.rstrip('/') + '/'):
                raise device.error('mountpoint', f'{inner} is inside {outer}: each drive needs a separate one')
    return drives


def _check_private(path: str) -> None:
    """A file holding the SMTP password must be readable by its owner only."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ConfigError(f'{path}: cannot read it: {exc.strerror}') from None
    if mode & 0o077:
        raise ConfigError(
            f'{path}: holds [Email] password but is readable by others (mode {mode & 0o777:o}); run: chmod 600 {path}'
        )


def socket_path_for_client(path: Optional[str]) -> str:
    """The socket a client should use: from --config PATH, else from the default file if readable.

    /etc/pytarchive is usually 0700 (root's alone), so a member of the read-only group cannot read the
    default file; the default socket path is then the best guess. A file named with --config must
    be readable and valid.
    """
    if path is not None:
        return load(path).service.socket
    try:
        return load(DEFAULT_PATH).service.socket
    except ConfigError:
        if os.path.exists(DEFAULT_PATH) and os.access(DEFAULT_PATH, os.R_OK):
            raise  # readable but wrong: say so rather than guess
        return DEFAULT_SOCKET


def setup_logging(config: Config) -> None:
    """The logging.conf (fileConfig) when present, else INFO and above to stderr (the journal)."""
    path = config.service.logging_config
    if os.path.exists(path):
        try:
            logging.config.fileConfig(path, disable_existing_loggers=False)
        except Exception as exc:  # noqa: BLE001 - fileConfig raises anything from KeyError to OSError
            detail = ' '.join(f'{type(exc).__name__}: {exc}'.split())
            raise ConfigError(f'{path}: bad logging config: {detail}') from None
        return
    if config.service.logging_config_given:
        raise ConfigError(f'{config.path}: [Service] logging_config: {path} does not exist')
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
