"""LTFS's message lines ("LTFS15024I Medium formatted successfully.") as ltfs 2.4 prints them.

All of them go to stderr. ltfs prefixes the thread id in hex ("1e4a LTFS14000I ..."); mkltfs
does not (it starts its logging without thread ids)."""

import os
import platform

PACKAGE_VERSION = '2.4.5.1 (10504)'
FORMAT_SPEC_VERSION = '2.4.0'
BLOCKSIZE = 524288

# The drive model every virtual drive reports (INQUIRY data, padded as the device sends them).
VENDOR = 'IBM     '
PRODUCT = 'ULTRIUM-HH9     '
REVISION = 'Q3G3'


class Messages:
    """Collects message lines; thread_id None means no prefix (mkltfs)."""

    def __init__(self, thread_id=None):
        self.thread_id = thread_id
        self.lines = []

    def __call__(self, message_id, text):
        prefix = f'{self.thread_id:x} ' if self.thread_id is not None else ''
        self.lines.append(f'{prefix}LTFS{message_id} {text}')

    def plain(self, text):
        """A line printed without an id (device lists, blank separators)."""
        self.lines.append(text)

    def take(self):
        lines, self.lines = self.lines, []
        return lines


def runtime_information(say, launched_id, build_id, gcc_id, argv):
    say(launched_id, f'Launched by "{" ".join(argv)}".')
    say(build_id, f'This binary is built for Linux ({platform.machine()}).')
    say(gcc_id, 'GCC version is 12.2.0.')
    say('17087I', f'Kernel version: {_kernel_version()}.')
    distribution = _distribution()
    if distribution:
        say('17089I', f'Distribution: {distribution}.')


def _kernel_version():
    try:
        with open('/proc/version') as file:
            return f'{file.read().strip()} {platform.machine()}'
    except OSError:
        return f'{platform.system()} version {platform.release()} {platform.machine()}'


def _distribution():
    try:
        with open('/etc/os-release') as file:
            for line in file:
                if line.startswith('NAME='):
                    return line.strip()
    except OSError:
        pass
    return None


def gigabytes(capacity):
    """Capacity in SI gigabytes, rounded as mkltfs rounds it."""
    return (capacity + 500_000_000) // 1_000_000_000


def thread_id():
    return os.getpid()
