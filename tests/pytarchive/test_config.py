"""pytarchive.config: a typical file as written, typed values, and one line naming file, section, key."""

import logging
import textwrap

import pytest

from common.config import ConfigError
from common.errors import CONFIG
from pytarchive import config as configuration

TYPICAL = """\
[General]
tape_max_size = 17138671616
exclude_folders = .local, .cache, .config 
source_folders = /path/to/user/homes, /another/network/drive # Paths for pytarchive inventory
scratch_path = /tmp # Path where compressed folders are stored.

[Device]
library = /dev/sch0 # the device id of the changer (not the tape drive)
drive_serial = 10WT012345 # obtain with sudo tapeinfo -f /dev/st0 

[Export]
to = 192.168.0.0/16 # Network to export to for pytarchive explore
settings = ro,fsid=1 # NFS export options
"""


def write(tmp_path, text, name='pytarchive.conf'):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_a_typical_file_reads_with_inline_comments_stripped(tmp_path):
    config = configuration.load(write(tmp_path, TYPICAL))
    assert config.general.tape_max_size == 17138671616
    assert config.general.exclude_folders == ('.local', '.cache', '.config')
    assert config.general.source_folders == ('/path/to/user/homes', '/another/network/drive')
    assert config.general.scratch_path == '/tmp'
    assert config.device.library == '/dev/sch0'
    assert [drive.serial for drive in config.device.drives] == ['10WT012345']
    assert config.export.to == '192.168.0.0/16'
    assert config.export.settings == 'ro,fsid=1'


def test_defaults_for_everything_a_typical_file_does_not_set(tmp_path):
    config = configuration.load(write(tmp_path, TYPICAL))
    assert config.service.socket == '/run/pytarchive/pytarchive.sock'
    assert config.service.database == '/var/lib/pytarchive/pytarchive.db'
    assert config.service.logging_config == '/etc/pytarchive/logging.conf'
    assert config.service.read_only_group == ''
    assert config.device.drives == (configuration.DriveConfig('10WT012345', 0, '/dev/nst0', '/ltfs'),)
    assert config.device.mtx == ('mtx',)
    assert config.device.umount == ('umount',)
    assert config.general.pack_threshold == 500_000
    assert config.general.catalog_backup == 'tape'
    assert config.export.exportfs == ('exportfs',)
    assert (config.email.starttls, config.email.username, config.email.configured) == (False, '', False)


def test_an_smtp_password_needs_a_private_file_and_never_shows_in_a_repr(tmp_path):
    text = (
        TYPICAL + '[Email]\nsmtp_host = mail.example.org\nsender = a@example.org\nrecipients = b@example.org\n'
        'starttls = yes\nusername = archiver\npassword = s3cret-Pa55\n'
    )
    path = write(tmp_path, text)
    (tmp_path / 'pytarchive.conf').chmod(0o644)
    with pytest.raises(ConfigError) as caught:
        configuration.load(path)
    assert caught.value.message == (
        f'{path}: holds [Email] password but is readable by others (mode 644); run: chmod 600 {path}'
    )
    (tmp_path / 'pytarchive.conf').chmod(0o600)
    email = configuration.load(path).email
    assert (email.starttls, email.username, email.password, email.configured) == (True, 'archiver', 's3cret-Pa55', True)
    assert 's3cret' not in repr(email)


def test_an_smtp_password_in_double_quotes_keeps_its_spaces(tmp_path):
    text = (
        TYPICAL + '[Email]\nsmtp_host = mail.example.org\nsender = a@example.org\nrecipients = b@example.org\n'
        'username = archiver\npassword = "  two words "\n'
    )
    path = write(tmp_path, text)
    (tmp_path / 'pytarchive.conf').chmod(0o600)
    assert configuration.load(path).email.password == '  two words '


def test_commands_are_split_like_a_shell_and_paths_can_be_moved(tmp_path):
    text = (
        TYPICAL.replace('[Export]', 'mtx = "/opt/mtx dir/mtx" -v\ndrive_index = 2\n\n[Export]')
        + """
[Service]
socket = /tmp/x/p.sock   # for tests
database = /tmp/x/p.db
read_only_group = tape
"""
    )
    config = configuration.load(write(tmp_path, text))
    assert config.device.mtx == ('/opt/mtx dir/mtx', '-v')
    assert config.device.drives[0].index == 2
    assert config.service.socket == '/tmp/x/p.sock'
    assert config.service.database == '/tmp/x/p.db'
    assert config.service.read_only_group == 'tape'


@pytest.mark.parametrize(
    'change, message',
    [
        (
            ('drive_serial = 10WT012345 # obtain with sudo tapeinfo -f /dev/st0 ', ''),
            '[Device] drive_serial: is missing (required)',
        ),
        (
            ('drive_serial = 10WT012345 # obtain with sudo tapeinfo -f /dev/st0 ', 'drive_serial =   # later'),
            '[Device] drive_serial: is empty (required)',
        ),
        (
            ('tape_max_size = 17138671616', 'tape_max_size = 16T'),
            "[General] tape_max_size: '16T' is not a whole number (0 or more)",
        ),
        (('scratch_path = /tmp', 'scratch_path = tmp'), "[General] scratch_path: 'tmp' is not an absolute path"),
        (
            ('scratch_path = /tmp', 'catalog_backup = backups'),
            "[General] catalog_backup: 'backups' is not tape, no, or a full path",
        ),
        (('[Export]', 'drive_index = -1\n[Export]'), "[Device] drive_index: '-1' is not a whole number (0 or more)"),
        (('[Export]', 'mtx = "unbalanced\n[Export]'), "[Device] mtx: '\"unbalanced' is not a command"),
        (('[Export]', 'drive_seral = 1\n[Export]'), '[Device] drive_seral: unknown key (known: '),
        (('[Export]', '[Exports]'), '[Exports]: unknown section (known: General, Device, Export, Service, Email)'),
        (
            ('scratch_path = /tmp', 'pack_threshold = 0'),
            "[General] pack_threshold: '0' is not a whole number (1 or more)",
        ),
        (
            ('settings = ro,fsid=1', 'exportfs = "/usr/sbin/exportfs'),
            "[Export] exportfs: '\"/usr/sbin/exportfs' is not a command",
        ),
        (('[Export]', '[Email]\nstarttls = maybe\n[Export]'), "[Email] starttls: 'maybe' is not yes or no"),
        (
            ('[Export]', '[Email]\nsmtp_port = 70000\n[Export]'),
            "[Email] smtp_port: '70000' is not a whole number (from 1 to 65535)",
        ),
    ],
)
def test_a_bad_key_is_one_line_naming_file_section_and_key(tmp_path, change, message):
    path = write(tmp_path, TYPICAL.replace(*change))
    with pytest.raises(ConfigError) as caught:
        configuration.load(path)
    assert caught.value.exit_code == CONFIG
    assert caught.value.message.startswith(f'{path}: {message}')
    assert '\n' not in caught.value.message


TWO_DRIVES = """\
drive_serial = 10WT012345, 10WT067890
drive_index = 0, 1
drive_device = /dev/nst0, /dev/nst1
mountpoint = /ltfs/0, /ltfs/1
"""


def two_drives(tmp_path, key=None, value=None):
    """The typical file with two drives; key = value replaces that key's line."""
    lines = [line for line in TWO_DRIVES.splitlines() if key is None or not line.startswith(f'{key} ')]
    if key is not None and value is not None:
        lines.append(f'{key} = {value}')
    device = '\n'.join(lines)
    return write(
        tmp_path, TYPICAL.replace('drive_serial = 10WT012345 # obtain with sudo tapeinfo -f /dev/st0 ', device)
    )


def test_several_drives_are_listed_one_item_per_drive_in_each_key(tmp_path):
    drives = configuration.load(two_drives(tmp_path)).device.drives
    assert drives == (
        configuration.DriveConfig('10WT012345', 0, '/dev/nst0', '/ltfs/0'),
        configuration.DriveConfig('10WT067890', 1, '/dev/nst1', '/ltfs/1'),
    )


@pytest.mark.parametrize(
    'key, value, message',
    [
        (
            'drive_index',
            None,
            '[Device] drive_index: is missing: drive_serial names 2 drives, so give one item per drive',
        ),
        (
            'mountpoint',
            None,
            '[Device] mountpoint: is missing: drive_serial names 2 drives, so give one item per drive',
        ),
        (
            'drive_device',
            '/dev/nst0',
            '[Device] drive_device: lists 1 items but drive_serial names 2 drives: one per drive',
        ),
        (
            'drive_index',
            '0, 1, 2',
            '[Device] drive_index: lists 3 items but drive_serial names 2 drives: one per drive',
        ),
        (
            'drive_serial',
            '10WT012345, 10WT012345',
            '[Device] drive_serial: 10WT012345 named twice: each drive needs its own',
        ),
        ('drive_index', '1, 1', '[Device] drive_index: 1 named twice: each drive needs its own'),
        ('drive_index', '0, x', "[Device] drive_index: 'x' is not a whole number (0 or more)"),
        (
            'drive_device',
            '/dev/nst0, /dev/nst0/',
            '[Device] drive_device: /dev/nst0 named twice: each drive needs its own',
        ),
        ('drive_device', '/dev/nst0, nst1', "[Device] drive_device: 'nst1' is not an absolute path"),
        ('mountpoint', '/ltfs, /ltfs', '[Device] mountpoint: /ltfs named twice: each drive needs its own'),
        (
            'mountpoint',
            '/ltfs, /ltfs/second',
            '[Device] mountpoint: /ltfs/second is inside /ltfs: each drive needs a separate one',
        ),
        ('drive_serial', ' , ', '[Device] drive_serial: names no drive'),
    ],
)
def test_a_bad_list_of_drives_is_one_line_naming_file_section_and_key(tmp_path, key, value, message):
    path = two_drives(tmp_path, key, value)
    with pytest.raises(ConfigError) as caught:
        configuration.load(path)
    assert caught.value.message == f'{path}: {message}'


def test_mount_points_side_by_side_are_separate_even_when_one_name_starts_the_other(tmp_path):
    drives = configuration.load(two_drives(tmp_path, 'mountpoint', '/ltfs, /ltfs1')).device.drives
    assert [drive.mountpoint for drive in drives] == ['/ltfs', '/ltfs1']


def test_missing_and_unparsable_files(tmp_path):
    missing = str(tmp_path / 'nope.conf')
    with pytest.raises(ConfigError, match=f'^{missing}: config file not found$'):
        configuration.load(missing)
    broken = write(tmp_path, 'library = /dev/sch0\n')
    with pytest.raises(ConfigError, match=r'line 1: settings must follow a section header'):
        configuration.load(broken)
    garbage = write(tmp_path, '[Device]\nthis is not a setting\n')
    with pytest.raises(ConfigError, match=r"line 2: cannot parse 'this is not a setting'"):
        configuration.load(garbage)


def test_client_socket_comes_from_the_named_config_or_the_default(tmp_path, monkeypatch):
    path = write(tmp_path, TYPICAL + '[Service]\nsocket = /tmp/elsewhere.sock\n')
    assert configuration.socket_path_for_client(path) == '/tmp/elsewhere.sock'
    with pytest.raises(ConfigError, match='config file not found'):
        configuration.socket_path_for_client(str(tmp_path / 'missing.conf'))
    # The default file unreadable or absent (a read-only group member): the default socket.
    monkeypatch.setattr(configuration, 'DEFAULT_PATH', str(tmp_path / 'absent.conf'))
    assert configuration.socket_path_for_client(None) == configuration.DEFAULT_SOCKET


def test_logging_config_is_read_with_fileconfig_when_present(tmp_path):
    log_file = tmp_path / 'pytarchive.log'
    logging_conf = write(
        tmp_path,
        f"""\
        [loggers]
        keys=root

        [handlers]
        keys=fileHandler

        [formatters]
        keys=plain

        [logger_root]
        level=INFO
        handlers=fileHandler

        [handler_fileHandler]
        class=FileHandler
        level=INFO
        formatter=plain
        args=('{log_file}', 'a')

        [formatter_plain]
        format=%(levelname)s %(message)s
        """,
        name='logging.conf',
    )
    config = configuration.load(write(tmp_path, TYPICAL + f'[Service]\nlogging_config = {logging_conf}\n'))
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configuration.setup_logging(config)
        logging.getLogger('pytarchive.test').info('hello from the test')
        for handler in root.handlers:
            handler.flush()
        assert log_file.read_text() == 'INFO hello from the test\n'
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_a_named_logging_config_must_exist_and_parse(tmp_path):
    missing = str(tmp_path / 'nope.conf')
    config = configuration.load(write(tmp_path, TYPICAL + f'[Service]\nlogging_config = {missing}\n'))
    with pytest.raises(ConfigError, match=rf'\[Service\] logging_config: {missing} does not exist'):
        configuration.setup_logging(config)
    bad = write(tmp_path, '[loggers]\nkeys=root\n', name='bad-logging.conf')
    config = configuration.load(write(tmp_path, TYPICAL + f'[Service]\nlogging_config = {bad}\n'))
    with pytest.raises(ConfigError, match=f'^{bad}: bad logging config: '):
        configuration.setup_logging(config)
