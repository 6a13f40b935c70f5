"""Cartridges and drives of the reference LTFS's `file` tape backend, which the real mkltfs, ltfs and
ltfsck use here in place of tape hardware.

A cartridge is a folder: each tape record is a file in it, and `filedebug_tc_conf.xml` says what the
cartridge is (capacity, generation). A drive is a file named `Drive_<SERIAL>.<PRODUCT>` (the backend
takes both from the name, and crashes on another name); its first 36 bytes name the loaded
cartridge's folder, relative to the drive file's own folder. An empty drive must be a missing file:
the backend spins for ever on a drive file that names nothing.
"""

import os
import re
from pathlib import Path

DRIVE_PRODUCT = 'ULTRIUM-HH9'
NAME_FIELD = 36
MIN_CAPACITY_MB = 160  # below it the backend fails every write with ENOSPC at once
CONFIG_FILE = 'filedebug_tc_conf.xml'

# An LTO-9 cartridge for an LTO-9 drive (the backend's default, LTO-5, is refused by an HH9 drive as
# an unsupported medium); no emulated delays (they slow every positioning, mount included).
CONFIG = """<?xml version="1.0" encoding="UTF-8"?>
<filedebug_cartridge_config>
    <dummy_io>false</dummy_io>
    <emulate_readonly>false</emulate_readonly>
    <capacity_mb>{capacity_mb}</capacity_mb>
    <cart_type>L9</cart_type>
    <density_code>60</density_code>
    <delay_mode>None</delay_mode>
    <wraps>40</wraps>
    <eot_to_bot_sec>0</eot_to_bot_sec>
    <change_direction_us>0</change_direction_us>
    <change_track_us>0</change_track_us>
    <threading_sec>0</threading_sec>
</filedebug_cartridge_config>
"""


def drive_file(folder: Path, serial: str) -> Path:
    return Path(folder) / f'Drive_{serial}.{DRIVE_PRODUCT}'


def new_cartridge(folder: Path, barcode: str, capacity_mb: int = 3072) -> Path:
    """An unformatted cartridge named by its barcode in folder; its path."""
    cartridge = Path(folder) / barcode
    cartridge.mkdir(parents=True)
    configure(cartridge, capacity_mb)
    return cartridge


def configure(cartridge: Path, capacity_mb: int) -> None:
    """What the backend reads at every load: the capacity in MiB."""
    if capacity_mb < MIN_CAPACITY_MB:
        raise ValueError(f'a cartridge needs at least {MIN_CAPACITY_MB} MB')
    (Path(cartridge) / CONFIG_FILE).write_text(CONFIG.format(capacity_mb=capacity_mb))


def capacity_mb(cartridge: Path) -> int:
    text = (Path(cartridge) / CONFIG_FILE).read_text()
    return int(re.search(r'<capacity_mb>(\d+)</capacity_mb>', text).group(1))


def formatted(cartridge: Path) -> bool:
    """Whether mkltfs has partitioned it: the backend keeps partition 1's records as 1_<block>_<kind>."""
    return any(name.startswith('1_') for name in os.listdir(cartridge))


def load(drive: Path, cartridge: Path) -> None:
    """Put the cartridge into the drive: the drive file names it, written whole or not at all."""
    name = os.path.relpath(cartridge, drive.parent).encode() + b'\n'
    if len(name) > NAME_FIELD:
        raise ValueError(f'{cartridge} is too far from {drive} to be named in {NAME_FIELD} bytes')
    partial = drive.with_name(drive.name + '.loading')
    partial.write_bytes(name.ljust(NAME_FIELD, b'\0'))
    partial.replace(drive)


def unload(drive: Path) -> None:
    drive.unlink(missing_ok=True)


def loaded(drive: Path) -> str | None:
    """The folder name of the cartridge in the drive, or None when it is empty."""
    try:
        return drive.read_bytes()[:NAME_FIELD].split(b'\n')[0].rstrip(b'\0').decode() or None
    except FileNotFoundError:
        return None
