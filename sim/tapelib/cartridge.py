"""Cartridges and drives of the reference LTFS's `file` tape backend, which the real mkltfs, ltfs and
ltfsck use here in place of tape hardware.

A cartridge is a folder: each tape record is a file in it, and `filedebug_tc_conf.xml` says what the
cartridge is (capacity, generation). A drive is a file named `Drive_<SERIAL>.<PRODUCT>` (the backend
takes both from the name, and crashes on another name); its first 36 bytes name the loaded
cartridge's folder, relative to the drive file's own folder. An empty drive must be a missing file:
the backend spins for ever on a drive file that names nothing.
"""

import os
from pathlib import Path

DRIVE_PRODUCT = 'ULTRIUM-HH9'
NAME_FIELD = 36
MIN_CAPACITY_MB = 160  # below it the backend fails every write with ENOSPC at once

# An LTO-9 cartridge for an LTO-9 drive (the backend's default, LTO-5, is refused by an HH9 drive as
# an unsupported medium); no delays unless asked.
CONFIG = """<?xml version="1.0" encoding="UTF-8"?>
<filedebug_cartridge_config>
    <dummy_io>false</dummy_io>
    <emulate_readonly>false</emulate_readonly>
    <capacity_mb>{capacity_mb}</capacity_mb>
    <cart_type>L9</cart_type>
    <density_code>60</density_code>
    <delay_mode>None</delay_mode>
    <wraps>40</wraps>
    <eot_to_bot_sec>12</eot_to_bot_sec>
    <change_direction_us>2000000</change_direction_us>
    <change_track_us>10000</change_track_us>
    <threading_sec>0</threading_sec>
</filedebug_cartridge_config>
"""


def drive_file(folder: Path, serial: str) -> Path:
    return Path(folder) / f'Drive_{serial}.{DRIVE_PRODUCT}'


def new_cartridge(folder: Path, barcode: str, capacity_mb: int = 3072) -> Path:
    """An unformatted cartridge named by its barcode in folder; its path."""
    if capacity_mb < MIN_CAPACITY_MB:
        raise ValueError(f'a cartridge needs at least {MIN_CAPACITY_MB} MB')
    cartridge = Path(folder) / barcode
    cartridge.mkdir(parents=True)
    (cartridge / 'filedebug_tc_conf.xml').write_text(CONFIG.format(capacity_mb=capacity_mb))
    return cartridge


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
