"""What the host says: the mount table, loop devices, processes; and running its mount tools."""

import glob
import os
import re
import subprocess
import time
from dataclasses import dataclass


class HostError(Exception):
    """A host command failed; the message carries its own complaint."""


def run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        complaint = (result.stderr or result.stdout).strip().replace('\n', '; ')
        raise HostError(f'{" ".join(command)}: {complaint or f"exit status {result.returncode}"}')
    return result


@dataclass
class MountEntry:
    device_numbers: str  # major:minor
    root: str  # the directory of the file system shown there (not "/" for a bind mount)
    mountpoint: str
    fstype: str
    source: str


def _unescape(field):
    # mountinfo writes space, tab, newline and backslash as octal escapes
    return re.sub(r'\\([0-7]{3})', lambda match: chr(int(match.group(1), 8)), field)


def mounts():
    entries = []
    with open('/proc/self/mountinfo') as table:
        for line in table:
            fields = line.split()
            separator = fields.index('-')
            entries.append(
                MountEntry(
                    device_numbers=fields[2],
                    root=_unescape(fields[3]),
                    mountpoint=_unescape(fields[4]),
                    fstype=fields[separator + 1],
                    source=_unescape(fields[separator + 2]),
                )
            )
    return entries


def mounted_at(path, device_numbers=None):
    """Whether something (with these device numbers, if given) is mounted at path."""
    path = os.path.realpath(path)
    return any(entry.mountpoint == path and device_numbers in (None, entry.device_numbers) for entry in mounts())


def mount_entry(path):
    path = os.path.realpath(path)
    found = [entry for entry in mounts() if entry.mountpoint == path]
    return found[-1] if found else None


def loop_devices_backed_by(image):
    image = os.path.realpath(image)
    devices = []
    for backing in glob.glob('/sys/block/loop*/loop/backing_file'):
        try:
            with open(backing) as file:
                name = file.read().strip()
        except OSError:
            continue
        if name.removesuffix(' (deleted)') == image:
            devices.append('/dev/' + backing.split('/')[3])
    return devices


def wait_until_released(image, timeout=30.0):
    """Wait until no loop device reads the image any more (the kernel has let go of it).

    timeout None waits for as long as it takes: after a lazy unmount the kernel keeps the file
    system until the last file open on it is closed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while loop_devices_backed_by(image):
        if deadline is not None and time.monotonic() > deadline:
            raise HostError(f'{image} is still attached to {", ".join(loop_devices_backed_by(image))}')
        time.sleep(0.05)


def process_alive(pid, *markers):
    """Whether pid is a running (not zombie) process whose command line has all the markers.

    An exited daemon whose parent is gone may stay a zombie forever when PID 1 does not reap
    orphans (as in some containers); its command line is empty, so it does not count as alive."""
    try:
        with open(f'/proc/{pid}/stat') as stat:
            state = stat.read().rsplit(')', 1)[1].split()[0]
        with open(f'/proc/{pid}/cmdline', 'rb') as cmdline:
            arguments = cmdline.read().decode(errors='replace').split('\0')
    except (OSError, IndexError):
        return False
    return state != 'Z' and all(marker in arguments for marker in markers)
