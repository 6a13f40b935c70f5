"""ltfs stand-in: `ltfs -o devname=DEVICE_OR_SERIAL[,OPTIONS] MOUNTPOINT`, and `ltfs -o device_list`.

Like the real (FUSE) ltfs, the command returns once the volume is mounted and leaves a daemon
process behind (command name "ltfs", the mount point among its arguments). That process lives
until MOUNTPOINT is unmounted (`umount MOUNTPOINT`, or a SIGTERM/SIGINT to it), then "writes the
index" (takes the library's index_write_seconds, persists the tape's state) and exits. While it
lives, the changer refuses to move the tape (MOVE MEDIUM fails with sense 05/53/03)."""

import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from . import admin, frontend, host, media
from .ltfsmsg import FORMAT_SPEC_VERSION, PACKAGE_VERSION, PRODUCT, VENDOR, Messages, runtime_information
from .model import LibraryError, LtfsMount
from .store import ltfs_running, open_library

VALUE_OPTIONS = {
    'devname',
    'sync_type',
    'work_directory',
    'rules',
    'umask',
    'fmask',
    'dmask',
    'uid',
    'gid',
    'verbose',
    'min_pool_size',
    'max_pool_size',
    'tape_backend',
    'iosched_backend',
    'kmi_backend',
    'config_file',
    'capture_index',
    'symlink_type',
    'scsi_append_only_mode',
    'rollback_mount',
    'fsname',
    'subtype',
    'max_read',
    'max_write',
    'max_readahead',
    'entry_timeout',
    'attr_timeout',
    'negative_timeout',
}
FLAG_OPTIONS = {
    'eject',
    'noeject',
    'atime',
    'noatime',
    'device_list',
    'ro',
    'rw',
    'allow_other',
    'default_permissions',
    'nonempty',
    'trace',
    'quiet',
    'fulltrace',
    'syslogtrace',
    'release_device',
    'force_mount_no_eod',
    'big_writes',
    'hard_remove',
    'sync_read',
    'use_ino',
    'nosuid',
    'nodev',
    'suid',
    'dev',
    'exec',
    'noexec',
    'async',
    'sync',
    'auto_unmount',
}
POLL_SECONDS = 0.5


@dataclass
class Request:
    options: dict = field(default_factory=dict)
    mountpoint: str | None = None
    foreground: bool = False
    help: bool = False
    version: bool = False


def parse(arguments):
    """The request, or FUSE's complaint about the command line."""
    request = Request()
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        index += 1
        if argument == '-o' or (argument.startswith('-o') and len(argument) > 2):
            if argument == '-o':
                if index >= len(arguments):
                    return None, "fuse: missing argument after `-o'"
                value = arguments[index]
                index += 1
            else:
                value = argument[2:]
            for option in filter(None, value.split(',')):
                key, has_value, setting = option.partition('=')
                if (key in VALUE_OPTIONS and has_value) or (key in FLAG_OPTIONS and not has_value):
                    request.options[key] = setting if has_value else True
                else:
                    return None, f"fuse: unknown option `{option}'"
        elif argument in ('-f', '-d'):
            request.foreground = True
        elif argument == '-s':
            pass  # single-threaded FUSE loop: nothing to change here
        elif argument in ('-h', '--help', '-a'):
            request.help = True
        elif argument in ('-V', '--version'):
            request.version = True
        elif argument.startswith('-'):
            return None, f"fuse: unknown option `{argument}'"
        elif request.mountpoint is None:
            request.mountpoint = argument
        else:
            return None, f"fuse: invalid argument `{argument}'"
    return request, None


def sync_description(value):
    """The 14063I/14064I line for sync_type, or None if it is not valid."""
    value = value or 'time@5'
    kind, _, minutes = value.partition('@')
    if kind == 'time':
        try:
            seconds = int(minutes or '5') * 60
        except ValueError:
            return None
        if seconds <= 0:
            return None
        return '14063I', f'Sync type is "time", Sync time is {seconds} sec.'
    if kind in ('close', 'unmount') and not minutes:
        return '14064I', f'Sync type is "{kind}".'
    return None


def mountpoint_problem(root, request):
    """FUSE's complaint about the mount point, if it has one.

    A mount left by an ltfs that died is what FUSE calls a disconnected endpoint: it has to be
    unmounted before anything can be mounted there again."""
    path = request.mountpoint
    with open_library(root) as library:
        for drive in library.drives:
            mount = drive.mount
            if (
                mount is not None
                and not ltfs_running(library, mount)
                and os.path.realpath(path) == mount.mountpoint
                and host.mounted_at(mount.mountpoint, mount.device_numbers)
            ):
                return [f"fuse: bad mount point `{path}': Transport endpoint is not connected"]
    if not os.path.exists(path):
        return [f"fuse: bad mount point `{path}': No such file or directory"]
    if not os.path.isdir(path):
        return [f"fuse: bad mount point `{path}': Not a directory"]
    if os.listdir(path) and not request.options.get('nonempty'):
        return ['fuse: mountpoint is not empty', "fuse: if you are sure this is safe, use the 'nonempty' mount option"]
    return None


def device_list(library, say):
    say.plain('Tape Device list:.')
    for drive in library.drives:
        say.plain(
            f'Device Name = {drive.device} (0.0.{drive.index}.0), Vendor ID = {VENDOR}, '
            f'Product ID = {PRODUCT}, Serial Number = {drive.serial}, '
            f'Product Name =[{PRODUCT.strip()}].'
        )


def release_stale_mount(mount, image):
    """Undo the mounts an ltfs left when it died without unmounting (kill -9)."""
    if host.mounted_at(mount.mountpoint, mount.device_numbers):
        host.run(['umount', mount.mountpoint])
    media.detach(image, mount.private)


def mount_volume(root, request, say, pid):
    """Mount the tape in the requested drive at the mount point; returns (exit status, drive index)."""
    try:
        return _mount_volume(root, request, say, pid)
    except (LibraryError, host.HostError, OSError) as error:
        say('14013E', f'Cannot mount the volume from device ({error}).')
        return 1, None


def _mount_volume(root, request, say, pid):
    devname = request.options['devname']
    with open_library(root) as library:
        drive = library.drive_for(devname) or next(
            (drive for drive in library.drives if os.path.realpath(drive.device) == os.path.realpath(devname)), None
        )
        if drive is None or (drive.mount is not None and ltfs_running(library, drive.mount)):
            say('12012E', 'Cannot open device: failed backend open call.')
            say('10004E', f"Cannot open device '{devname}'.")
            return 1, None
        if drive.mount is not None:
            stale = library.tapes[drive.tape]
            release_stale_mount(drive.mount, media.image_path(root, stale))
            drive.mount = None
        say('11330I', 'Loading cartridge.')
        if drive.tape is None:
            say('12016E', 'No medium present.')
            say('14075E', 'Cannot set up tape drive.')
            return 1, None
        say('11332I', 'Load successful.')
        tape = library.tapes[drive.tape]
        say('11005I', 'Mounting the volume.')
        if tape.cleaning:
            say('11298E', 'Cannot read volume: unsupported medium.')
            say('14013E', 'Cannot mount the volume from device.')
            return 1, None
        if library.take_mount_failure() or not tape.formatted:
            say('11009E', 'Cannot read volume: failed to read partition labels.')
            say('14013E', 'Cannot mount the volume from device.')
            return 1, None
        image = media.image_path(root, tape)
        private = media.private_mount_dir(root, f'drive{drive.index}')
        numbers = None
        try:
            numbers = media.attach(image, private)
            media.apply_full_at(private, tape)
            admin.flip_pending(private, tape)
            media.write_volume_attributes(private, tape, library.capacity)
            media.show_at(private, request.mountpoint, read_only=bool(request.options.get('ro')))
        except (host.HostError, OSError) as error:
            if numbers and host.mounted_at(request.mountpoint, numbers):
                host.run(['umount', request.mountpoint])
            media.detach(image, private)
            say('14013E', f'Cannot mount the volume from device ({error}).')
            return 1, None
        drive.mount = LtfsMount(
            pid=pid,
            mountpoint=os.path.realpath(request.mountpoint),
            private=private,
            device_numbers=numbers,
            eject=bool(request.options.get('eject')),
        )
    say('11031I', 'Volume mounted successfully.')
    say('14111I', 'Initial setup completed successfully.')
    say('14112I', "Invoke 'mount' command to check the result of final setup.")
    say('14113I', 'Specified mount point is listed if succeeded.')
    return 0, drive.index


def serve(root, drive_index, say):
    """Live until the mount point is unmounted, then write the index and let the tape go."""
    with open_library(root) as library:
        mount = library.drives[drive_index].mount
        tape = library.tapes[library.drives[drive_index].tape]
        image = media.image_path(root, tape)
        write_seconds = library.index_write_seconds
    stop_requested = []
    for signal_number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signal_number, lambda number, frame: stop_requested.append(number))
    say('14029I', 'Ready to receive file system requests.')
    log(say)
    with open('/proc/self/mounts') as mount_table:
        watcher = select.poll()
        watcher.register(mount_table, select.POLLPRI | select.POLLERR)  # the table changed
        while host.mounted_at(mount.mountpoint, mount.device_numbers):
            if stop_requested:
                unmount_on_signal(mount.mountpoint, say)
            media.refresh_available_space(mount.private)
            watcher.poll(POLL_SECONDS * 1000)
            mount_table.seek(0)
            mount_table.read()
    say('17068I', f'Syncing index of {tape.volume_serial or tape.label} (Reason: Unmount).')
    log(say)
    time.sleep(write_seconds)  # writing the index to tape takes a while on a real drive
    detach_when_free(image, mount.private, say)
    with open_library(root) as library:
        drive = library.drives[drive_index]
        library.tapes[drive.tape].generation += 1
        drive.mount = None
    if mount.eject:
        say('11289I', 'Ejecting cartridge.')
        say('11291I', 'Eject successful.')
    say('11034I', 'Volume unmounted successfully.')
    log(say)


def unmount_on_signal(mountpoint, say):
    """A signal asks ltfs to end: unmount as FUSE does (lazily if a file is still open)."""
    say.plain(f'Signal received: unmounting {mountpoint}.')
    try:
        host.run(['umount', mountpoint])
    except host.HostError:
        subprocess.run(['umount', '-l', mountpoint], capture_output=True)


def detach_when_free(image, private, say):
    while True:
        try:
            media.detach(image, private, timeout=None)
            return
        except host.HostError as error:
            say('11033E', f'Cannot unmount: failed to write an index ({error}).')
            log(say)
            time.sleep(POLL_SECONDS)


def log(say):
    """The daemon's stdout/stderr is the library's log file (DIR/log/ltfs.log)."""
    stamp = time.strftime('%Y-%m-%d %H:%M:%S')
    for line in say.take():
        sys.stderr.write(f'{stamp} [{os.getpid()}] {line}\n')
    sys.stderr.flush()


def run_daemonised(root, request, say):
    """Fork the daemon, wait until it has mounted (or failed), report as ltfs does, and return."""
    sys.stdout.flush()
    sys.stderr.flush()
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(reader)
        become_daemon(root, keep=writer)
        status, drive_index = 1, None
        try:
            status, drive_index = mount_volume(root, request, say, os.getpid())
        finally:
            with os.fdopen(writer, 'w') as report:
                json.dump({'status': status, 'lines': say.take()}, report)
        if status == 0:
            try:
                serve(root, drive_index, say)
            finally:
                log(say)
        os._exit(status)
    os.close(writer)
    with os.fdopen(reader) as report:
        text = report.read()
    try:
        outcome = json.loads(text)
    except ValueError:
        outcome = {'status': 1, 'lines': [f'{say.thread_id:x} LTFS14013E Cannot mount the volume from device.']}
    sys.stderr.write(''.join(line + '\n' for line in outcome['lines']))
    return outcome['status']


def become_daemon(root, keep):
    """Detach from the caller: new session, no inherited descriptors, output to the log file."""
    os.setsid()
    os.chdir('/')
    os.makedirs(os.path.join(root, 'log'), exist_ok=True)
    log_file = os.open(os.path.join(root, 'log', 'ltfs.log'), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log_file, 1)
    os.dup2(log_file, 2)
    for descriptor in (null, log_file):
        os.close(descriptor)
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)


def main(argv=None):
    root, program, arguments = frontend.split_wrapper_arguments(sys.argv[1:] if argv is None else argv)
    request, problem = parse(arguments)
    if problem:
        return _say_fuse(problem)
    if request.help:
        sys.stderr.write(
            f'usage: {program} mountpoint [options]\n\nLTFS options:\n'
            '    -o devname=<dev>          Tape device\n'
            '    -o sync_type=<type>       Specify sync type (default: time@5)\n'
            '    -o eject                  Eject the cartridge after unmount\n'
            '    -o noeject                Do not eject the cartridge after unmount (default)\n'
            '    -o device_list            Show available tape devices\n'
        )
        return 0
    if request.version:
        sys.stderr.write(f'LTFS version {PACKAGE_VERSION}\nLTFS Format Specification version {FORMAT_SPEC_VERSION}\n')
        return 0
    say = Messages(os.getpid())
    say('14000I', f'LTFS starting, LTFS version {PACKAGE_VERSION}, log level 2.')
    say('14058I', f'LTFS Format Specification version {FORMAT_SPEC_VERSION}.')
    runtime_information(say, '14104I', '14105I', '14106I', [program, *arguments])
    if request.options.get('device_list'):
        say('17085I', 'Plugin: Loading "sg" tape backend.')
        try:
            with open_library(root) as library:
                device_list(library, say)
        except LibraryError as error:
            say('14054E', f'Failed to load tape drive plug-in ({error}).')
        emit(say)
        return 1  # ltfs exits 1 after listing the devices, even when it found them
    sync = sync_description(request.options.get('sync_type'))
    if sync is None:
        say('14061E', f'Unknown type of sync ({request.options["sync_type"]}).')
        emit(say)
        return 1
    say(*sync)
    if request.mountpoint is None:
        emit(say)
        return _say_fuse('fuse: no mount point')
    if 'devname' not in request.options:
        say('14009E', 'The backend \'sg\' does not have a default device. Specify one using the "-o devname=" option.')
        emit(say)
        return 1
    say('17085I', 'Plugin: Loading "sg" tape backend.')
    say('17085I', 'Plugin: Loading "unified" iosched backend.')
    if not request.options.get('eject'):
        say('14095I', 'Set the tape device write-anywhere mode to avoid cartridge ejection.')
    emit(say)
    try:
        problem = mountpoint_problem(os.path.abspath(root), request)
    except LibraryError as error:
        problem = [f'{say.thread_id:x} LTFS14013E Cannot mount the volume from device ({error}).']
    if problem:
        for line in problem:
            sys.stderr.write(line + '\n')
        return 1
    request.mountpoint = os.path.realpath(request.mountpoint)  # as FUSE does: the daemon runs in /
    if not request.foreground:
        return run_daemonised(os.path.abspath(root), request, say)
    status, drive_index = mount_volume(os.path.abspath(root), request, say, os.getpid())
    emit(say)
    if status == 0:
        serve(os.path.abspath(root), drive_index, say)
    return status


def _say_fuse(problem):
    sys.stderr.write(problem + '\n')
    return 1


def emit(say):
    sys.stderr.write(''.join(line + '\n' for line in say.take()))
    sys.stderr.flush()


if __name__ == '__main__':
    sys.exit(main())
