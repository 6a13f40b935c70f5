"""Tape cartridges as sparse ext4 images: format, attach, show at a mount point, age them.

An image is created by the first format, as big as the tape's capacity but sparse, so it takes
host disk space only for the data written. Its file system holds:
    data/       what an LTFS mount of the tape shows (bind-mounted onto the ltfs mount point)
    .ballast    allocated space that makes a tape-full fault stop writes early (outside data/)
"""

import errno
import os
import uuid

from . import host

DATA_DIR = 'data'
BALLAST = '.ballast'
XATTR_PREFIX = 'user.ltfs.'
MIB = 1024 * 1024


def image_path(root, tape):
    return os.path.join(root, 'tapes', f'{tape.id}.img')


def private_mount_dir(root, name):
    return os.path.join(root, 'run', name)


def format_image(image, capacity, scratch_dir):
    """A new, empty file system for the tape (whatever was on it is gone); returns its bytes in use."""
    if os.path.exists(image):
        os.unlink(image)
    with open(image, 'wb') as file:
        file.truncate(capacity)
    # -m 0: no blocks reserved for root (we are root, a reserve would not limit us anyway);
    # no journal: a tape's space should go to data, and we always unmount cleanly.
    host.run(['mkfs.ext4', '-q', '-F', '-m', '0', '-O', '^has_journal', '-b', '4096', '-i', '16384', image])
    attach(image, scratch_dir)
    try:
        os.mkdir(os.path.join(scratch_dir, DATA_DIR))
        os.rmdir(os.path.join(scratch_dir, 'lost+found'))  # LTFS volumes have no lost+found
        baseline = used_bytes(scratch_dir)
    finally:
        detach(image, scratch_dir)
    return baseline


def attach(image, directory):
    """Loop-mount the image at directory; returns the loop device's major:minor."""
    os.makedirs(directory, exist_ok=True)
    host.run(['mount', '-o', 'loop', image, directory])
    entry = host.mount_entry(directory)
    if entry is None:
        raise host.HostError(f'mount -o loop {image} {directory} left nothing mounted there')
    return entry.device_numbers


def detach(image, directory, timeout=30.0):
    """Unmount the image and wait until the kernel has let go of it (data is then in the image)."""
    if host.mounted_at(directory):
        host.run(['umount', directory])
    host.wait_until_released(image, timeout)


def show_at(directory, mountpoint, read_only=False):
    """Bind the tape's data directory onto the mount point the ltfs caller asked for."""
    options = 'bind,ro' if read_only else 'bind'
    host.run(['mount', '-o', options, os.path.join(directory, DATA_DIR), mountpoint])


def used_bytes(directory):
    stats = os.statvfs(directory)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize


def available_bytes(directory):
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def data_bytes(directory, tape):
    """Bytes the tape's files use: everything in use but the empty file system and the ballast."""
    return max(0, used_bytes(directory) - ballast_bytes(directory) - tape.baseline_used)


def ballast_bytes(directory):
    try:
        return os.stat(os.path.join(directory, BALLAST)).st_blocks * 512
    except FileNotFoundError:
        return 0


def apply_full_at(directory, tape):
    """Allocate ballast so that the tape runs out of space when its data reaches tape.full_at.

    fallocate only records the extents as allocated; it writes no data, so the host image stays
    sparse. Without the fault the ballast is removed."""
    path = os.path.join(directory, BALLAST)
    if os.path.exists(path):
        os.unlink(path)
    if tape.full_at is None:
        return
    wanted_free = max(0, tape.full_at - data_bytes(directory, tape))
    block = os.statvfs(directory).f_frsize
    size = (available_bytes(directory) - wanted_free) // block * block
    if size <= 0:
        return
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(descriptor, 0, size)
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
    finally:
        os.close(descriptor)


def write_volume_attributes(directory, tape, capacity):
    """The extended attributes LTFS offers on the volume root (values as strings, sizes in MiB)."""
    root = os.path.join(directory, DATA_DIR)
    attributes = {
        'volumeSerial': tape.volume_serial,
        'volumeName': tape.volume_name,
        'volumeUUID': tape.volume_uuid,
        'mediaDataPartitionTotalCapacity': str(capacity // MIB),
    }
    for name, value in attributes.items():
        os.setxattr(root, XATTR_PREFIX + name, value.encode())
    refresh_available_space(directory)


def refresh_available_space(directory):
    """Keep user.ltfs.mediaDataPartitionAvailableSpace current (the ltfs daemon calls this)."""
    root = os.path.join(directory, DATA_DIR)
    value = str(available_bytes(directory) // MIB).encode()
    name = XATTR_PREFIX + 'mediaDataPartitionAvailableSpace'
    try:
        if os.getxattr(root, name) == value:
            return
    except OSError:
        pass
    try:
        os.setxattr(root, name, value)
    except OSError:
        pass  # a full file system may refuse even this; the number is advisory


def data_path(directory, relative):
    """The file at relative (as seen from the tape's root) inside the attached image."""
    base = os.path.realpath(os.path.join(directory, DATA_DIR))
    path = os.path.realpath(os.path.join(base, relative.lstrip('/')))
    if path != base and not path.startswith(base + os.sep):
        raise host.HostError(f'{relative} is outside the tape')
    return path


def flip_byte(path):
    """Invert one byte in the middle of the file, keeping its size and times; returns (offset, old, new)."""
    stats = os.stat(path)
    if stats.st_size == 0:
        raise host.HostError(f'{path} is empty: there is no byte to flip')
    offset = stats.st_size // 2
    with open(path, 'r+b') as file:
        file.seek(offset)
        old = file.read(1)[0]
        new = old ^ 0xFF
        file.seek(offset)
        file.write(bytes([new]))
        file.flush()
        os.fsync(file.fileno())
    os.utime(path, ns=(stats.st_atime_ns, stats.st_mtime_ns))
    return offset, old, new


def new_volume_uuid():
    return str(uuid.uuid4())
