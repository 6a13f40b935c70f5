"""Read a cartridge of LTFS's `file` backend without LTFS: its newest index and where a file's bytes lie.

Used to damage a cartridge the way a tape is damaged (one byte of a data record changed) and to
tell what a volume holds after a crash, without mounting it. An LTFS index is an XML document
written as records (files `<partition>_<block>_R`) ending at a filemark (`_F`); each file's
extents name a partition ('a' the index partition 0, 'b' the data partition 1), a start block,
a byte offset in that block and a byte count."""

import os
import re
import urllib.parse
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

RECORD = re.compile(r'(\d+)_(\d+)_([RFE])')
PARTITIONS = {'a': 0, 'b': 1}


class IndexReadError(Exception):
    """The cartridge holds no readable LTFS index, or not the file asked for."""


@dataclass
class Extent:
    partition: int
    start_block: int
    byte_offset: int
    byte_count: int
    file_offset: int


def records(cartridge: Path) -> dict:
    """{partition: {block: kind}} of the cartridge's records."""
    found: dict = {0: {}, 1: {}}
    for name in os.listdir(cartridge):
        match = RECORD.fullmatch(name)
        if match:
            found.setdefault(int(match[1]), {})[int(match[2])] = match[3]
    return found


def record_path(cartridge: Path, partition: int, block: int) -> Path:
    return Path(cartridge) / f'{partition}_{block}_R'


def indexes(cartridge: Path) -> list:
    """Every index on the cartridge, parsed: (generation, partition, root element)."""
    found = []
    for partition, blocks in records(cartridge).items():
        for block in sorted(blocks):
            if blocks[block] != 'R' or blocks.get(block - 1) == 'R':
                continue  # not the first record after a filemark
            with open(record_path(cartridge, partition, block), 'rb') as first:
                head = first.read(4096)
            if not head.startswith(b'<?xml') or b'<ltfsindex' not in head:
                continue
            text = b''
            while blocks.get(block) == 'R':
                text += record_path(cartridge, partition, block).read_bytes()
                block += 1
            try:
                root = ElementTree.fromstring(text)
            except ElementTree.ParseError:
                continue
            found.append((int(root.findtext('generationnumber', '0')), partition, root))
    return found


def newest_index(cartridge: Path):
    found = indexes(cartridge)
    if not found:
        raise IndexReadError(f'{cartridge} holds no LTFS index (not formatted?)')
    return max(found, key=lambda item: (item[0], item[1]))[2]


def _name(element) -> str:
    name = element.find('name')
    text = name.text or ''
    return urllib.parse.unquote(text) if name.get('percentencoded') == 'true' else text


def entries(index) -> dict:
    """{path: element} of every file and directory below the volume's root, paths with '/'."""
    found = {}

    def walk(directory, prefix):
        contents = directory.find('contents')
        for child in contents if contents is not None else []:
            path = f'{prefix}{_name(child)}'
            found[path] = child
            if child.tag == 'directory':
                walk(child, path + '/')

    walk(index.find('directory'), '')
    return found


def extents(cartridge: Path, path: str) -> list:
    """The extents of the file at path (as seen from the volume's root) in the newest index."""
    element = entries(newest_index(cartridge)).get(path.strip('/'))
    if element is None or element.tag != 'file':
        raise IndexReadError(f'no file {path} on the tape')
    return [
        Extent(
            PARTITIONS[extent.findtext('partition')],
            int(extent.findtext('startblock')),
            int(extent.findtext('byteoffset')),
            int(extent.findtext('bytecount')),
            int(extent.findtext('fileoffset')),
        )
        for extent in element.iter('extent')
    ]


def flip_byte(cartridge: Path, path: str) -> tuple:
    """Invert the byte in the middle of the file's first extent, in its data record; (record, offset, old, new)."""
    found = [extent for extent in extents(cartridge, path) if extent.byte_count]
    if not found:
        raise IndexReadError(f'{path} is empty on the tape: no byte to flip')
    extent = found[0]
    position = extent.byte_offset + extent.byte_count // 2
    block = extent.start_block
    while True:
        record = record_path(cartridge, extent.partition, block)
        size = record.stat().st_size
        if position < size:
            break
        position -= size
        block += 1
    with open(record, 'r+b') as file:
        file.seek(position)
        old = file.read(1)[0]
        file.seek(position)
        file.write(bytes([old ^ 0xFF]))
    return record.name, position, old, old ^ 0xFF
