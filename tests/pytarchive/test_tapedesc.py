"""The tape's description of its archives: written, read back exactly, checked, readable with plain tools,
and imported into an empty catalog (on a folder standing for the mounted volume; the end-to-end import
on the virtual library is in tasks/test_tapeimport.py)."""

import os
import subprocess

import blake3
import pytest

from common.errors import ToolError
from pytarchive import tapedesc
from pytarchive.state import catalog, folders
from pytarchive.state.db import Database
from pytarchive.tasks import archive
from pytarchive.tasks.tapeimport import import_mounted

AWKWARD = [
    'tab\there',
    'new\nline',
    'back\\slash',
    'with spaces and \\t literally',
    'not utf-8 \udce9t\udcc3',  # the bytes b'\xe9' and b'\xc3' of a Latin-1 name, as os.fsdecode gives them
    'carriage\rreturn',
    'données été',
]


def _folder(**changes):
    record = {
        'id': 7,
        'path': '/data/projects/Q3\treport',
        'description': 'quarterly\nreport, two lines',
        'created': '2026-12-01T10:00:00+00:00',
        'tape': 'TPN001L9',
        'tape_path': 'data/projects/Q3\treport',
        'packed': None,
        'packed_checksum': None,
        'file_count': 2,
        'source_bytes': 11,
        'copy_number': 1,
    }
    record.update(changes)
    return record


def _entries(target='new\nline/link target'):
    rows = [
        {'path': 'sub', 'kind': 'dir', 'size': 0, 'mtime': 1_600_000_000.25, 'mode': 0o755, 'uid': 0, 'gid': 0},
        {'path': 'sub/a b.txt', 'kind': 'file', 'size': 5, 'mtime': 1.5e9, 'mode': 0o640, 'uid': 1000, 'gid': 100},
        {
            'path': 'sub/' + AWKWARD[0],
            'kind': 'file',
            'size': 6,
            'mtime': 0.123456789,
            'mode': 0o4755,
            'uid': 1,
            'gid': 2,
        },
        {'path': 'link', 'kind': 'link', 'size': 0, 'mtime': 2e9, 'mode': 0o777, 'uid': 0, 'gid': 0, 'target': target},
    ]
    for row in rows:
        row.setdefault('target', None)
        row['checksum'] = ('ab' * 32) if row['kind'] == 'file' else None
    return rows


@pytest.mark.parametrize('text', AWKWARD)
def test_escaped_text_is_one_field_of_one_line_and_comes_back_exactly(text):
    written = tapedesc.escape(text)
    assert '\t' not in written and '\n' not in written and '\r' not in written
    assert written.encode('utf-8')  # plain UTF-8: no lone surrogate is left
    assert tapedesc.unescape(written) == text


def test_the_escapes_are_the_documented_ones():
    assert tapedesc.escape('a\\b\tc\nd\re\udcff') == 'a\\\\b\\tc\\nd\\re\\xff'


def test_a_description_reads_back_as_written_and_plain_tools_read_it(tmp_path):
    written = tapedesc.write(str(tmp_path), _folder(), iter(_entries(AWKWARD[4])))
    directory = tmp_path / tapedesc.DIRECTORY
    assert sorted(os.listdir(directory)) == ['000001.header.txt', '000001.manifest.tsv', 'README.txt']
    assert tapedesc.check(str(tmp_path), written) == []

    header = tapedesc.read_header(str(directory / '000001.header.txt'))
    assert header['Folder'] == '/data/projects/Q3\treport' and header['Description'] == 'quarterly\nreport, two lines'
    assert (header['Packed'], header['Files'], header['Bytes'], header['Entries']) == ('no', '2', '11', '4')
    assert header['Format'] == str(tapedesc.FORMAT_VERSION) and header['Tape'] == 'TPN001L9'
    rows = list(tapedesc.read_manifest(str(directory / header['Manifest']), header['Manifest checksum']))
    expected = [
        (r['path'], r['kind'], r['size'], r['mtime'], r['mode'], r['uid'], r['gid'], r['checksum'], r['target'])
        for r in _entries(AWKWARD[4])
    ]
    assert rows == expected

    # A person's tools: one line per entry, the columns where the first line says.
    cut = subprocess.run(['cut', '-f1,3', str(directory / '000001.manifest.tsv')], capture_output=True, check=True)
    assert cut.stdout.decode().splitlines() == [
        '# path\tsize',
        'sub\t0',
        'sub/a b.txt\t5',
        'sub/tab\\there\t6',
        'link\t0',
    ]
    text = (directory / '000001.header.txt').read_text()
    assert 'Folder: /data/projects/Q3\\treport\n' in text and 'Description: quarterly\\nreport, two lines\n' in text


def test_a_resumed_archive_rewrites_its_own_description_and_the_next_archive_takes_the_next_number(tmp_path):
    tapedesc.write(str(tmp_path), _folder(description='first try'), iter(_entries()))
    again = tapedesc.write(str(tmp_path), _folder(description='resumed'), iter(_entries()))
    other = tapedesc.write(str(tmp_path), _folder(tape_path='data/other', path='/data/other'), iter(_entries()))
    assert sorted(again) == [f'{tapedesc.DIRECTORY}/000001.header.txt', f'{tapedesc.DIRECTORY}/000001.manifest.tsv']
    assert f'{tapedesc.DIRECTORY}/000002.header.txt' in other
    headers = [tapedesc.read_header(path) for path in tapedesc.listed(str(tmp_path))]
    assert [(h['Description'], h['Tape path']) for h in headers] == [
        ('resumed', 'data/projects/Q3\treport'),
        ('quarterly\nreport, two lines', 'data/other'),
    ]


def test_check_names_a_description_that_does_not_read_back_and_withdraw_removes_it(tmp_path):
    written = tapedesc.write(str(tmp_path), _folder(), iter(_entries()))
    manifest = tmp_path / tapedesc.DIRECTORY / '000001.manifest.tsv'
    manifest.write_bytes(manifest.read_bytes().replace(b'a b.txt', b'a c.txt'))
    assert tapedesc.check(str(tmp_path), written) == [
        (f'{tapedesc.DIRECTORY}/000001.manifest.tsv', 'checksum differs from what was written')
    ]
    tapedesc.withdraw(str(tmp_path), written)
    assert os.listdir(tmp_path / tapedesc.DIRECTORY) == ['README.txt']


def test_the_catalog_backup_is_a_whole_database_on_the_tape_or_in_the_folder_named(tmp_path, db):
    db.query('SELECT 1')
    with db.transaction() as conn:
        conn.execute("INSERT INTO tapes (barcode) VALUES ('TPN001L9')")
    written = tapedesc.back_up_catalog(db, str(tmp_path / 'mnt'), str(tmp_path), 'tape')
    copy = tmp_path / 'mnt' / tapedesc.DIRECTORY / tapedesc.CATALOG_NAME
    assert list(written) == [f'{tapedesc.DIRECTORY}/{tapedesc.CATALOG_NAME}']
    assert tapedesc.check(str(tmp_path / 'mnt'), written) == []
    backup = Database(str(copy), create=False)
    assert backup.query('SELECT barcode FROM tapes')[0][0] == 'TPN001L9'
    backup.close()
    elsewhere = tmp_path / 'backups'
    assert tapedesc.back_up_catalog(db, str(tmp_path / 'mnt2'), str(tmp_path), str(elsewhere)) == {}
    assert (elsewhere / tapedesc.CATALOG_NAME).stat().st_size > 0 and not (tmp_path / 'mnt2').exists()
    assert tapedesc.back_up_catalog(db, str(tmp_path / 'mnt3'), str(tmp_path), 'no') == {}
    assert not (tmp_path / 'mnt3').exists()
    assert [name for name in os.listdir(tmp_path) if name.startswith('pytarchive-catalog-')] == []  # scratch cleaned


def test_import_records_every_described_archive_once_and_refuses_a_tape_without_description(tmp_path, db):
    mountpoint = str(tmp_path / 'mnt')
    os.makedirs(mountpoint)
    with pytest.raises(ToolError, match=r'^TPN001L9 has no pytarchive description \(no pytarchive-descriptions'):
        import_mounted(db, mountpoint, 'TPN001L9')
    tapedesc.write(mountpoint, _folder(), iter(_entries()))
    tapedesc.write(mountpoint, _folder(path='/data/other', tape_path='data/other', description='x'), iter(_entries()))
    with db.transaction() as conn:
        conn.execute("INSERT INTO tapes (barcode) VALUES ('TPN001L9')")

    said = import_mounted(db, mountpoint, 'TPN001L9')
    assert said == 'TPN001L9: 2 archives imported (4 files, 22 B)'
    [record] = [f for f in folders.archived_on(db, 'TPN001L9') if f['path'] == '/data/other']
    assert (record['state'], record['tape_path'], record['file_count'], record['description']) == (
        'archived',
        'data/other',
        2,
        'x',
    )
    entries, total = catalog.contents(db, record['id'], '', 10)
    assert total == 4 and {e['path'] for e in entries} == {r['path'] for r in _entries()}

    again = import_mounted(db, mountpoint, 'TPN001L9')
    assert again == (
        'TPN001L9: 0 archives imported (0 files, 0 B), 2 skipped (already in the catalog: '
        '/data/projects/Q3\treport, /data/other)'
    )
    assert len(folders.archived_on(db, 'TPN001L9')) == 2


def test_import_refuses_a_damaged_manifest_in_one_line(tmp_path, db):
    mountpoint = str(tmp_path)
    tapedesc.write(mountpoint, _folder(), iter(_entries()))
    manifest = tmp_path / tapedesc.DIRECTORY / '000001.manifest.tsv'
    manifest.write_bytes(manifest.read_bytes()[:-3])
    with db.transaction() as conn:
        conn.execute("INSERT INTO tapes (barcode) VALUES ('TPN001L9')")
    with pytest.raises(ToolError) as refused:
        import_mounted(db, mountpoint, 'TPN001L9')
    assert refused.value.message == (
        'TPN001L9: 000001.manifest.tsv differs from the checksum its header gives: the description is damaged; '
        '0 archives imported before it, 0 skipped'
    )
    assert folders.archived_on(db, 'TPN001L9') == []


def test_import_refuses_a_name_the_catalog_cannot_hold_in_one_line(tmp_path, db):
    tapedesc.write(str(tmp_path), _folder(), iter(_entries(AWKWARD[4])))
    with db.transaction() as conn:
        conn.execute("INSERT INTO tapes (barcode) VALUES ('TPN001L9')")
    with pytest.raises(ToolError, match=r'^TPN001L9: 000001.manifest.tsv names a path that is not UTF-8, which the'):
        import_mounted(db, str(tmp_path), 'TPN001L9')
    assert folders.archived_on(db, 'TPN001L9') == []


@pytest.mark.parametrize(
    'line, number',
    [
        ('extra\tfile\t1\t2.0\t0644\t0\t0\t\t\tone column too many', 3),
        ('short\tfile\t1\t2.0\t0644\t0\t0\t', 3),
        ('word\tfile\tten\t2.0\t0644\t0\t0\t\t', 3),
        ('octal\tfile\t1\t2.0\t0999\t0\t0\t\t', 3),
        ('kind\tsocket\t1\t2.0\t0644\t0\t0\t\t', 3),
    ],
)
def test_a_manifest_line_that_is_not_an_entry_is_named_with_its_number(tmp_path, line, number):
    good = 'ok\tdir\t0\t1.0\t0755\t0\t0\t\t'
    data = f'{tapedesc.FIRST_LINE}\n{good}\n{line}\n{good}\n'.encode()
    path = tmp_path / 'x.manifest.tsv'
    path.write_bytes(data)
    checksum = blake3.blake3(data).hexdigest()
    with pytest.raises(tapedesc.NoDescription, match=rf'^x.manifest.tsv: line {number} is not a manifest entry: '):
        list(tapedesc.read_manifest(str(path), checksum))


def test_import_refuses_a_manifest_that_disagrees_with_its_header_and_records_nothing_of_it(tmp_path, db):
    tapedesc.write(str(tmp_path), _folder(), iter(_entries()))
    header = tmp_path / tapedesc.DIRECTORY / '000001.header.txt'
    header.write_text(header.read_text().replace('\nFiles: 2\n', '\nFiles: 3\n'))  # edited by hand, say
    with db.transaction() as conn:
        conn.execute("INSERT INTO tapes (barcode) VALUES ('TPN001L9')")
    with pytest.raises(ToolError) as refused:
        import_mounted(db, str(tmp_path), 'TPN001L9')
    assert refused.value.message == (
        'TPN001L9: 000001.manifest.tsv lists 2 files of 11 bytes, its header 3 of 11: the description is damaged; '
        '0 archives imported before it, 0 skipped'
    )
    assert folders.archived_on(db, 'TPN001L9') == [] and db.query('SELECT COUNT(*) FROM manifest')[0][0] == 0


def test_a_manifest_larger_than_one_read_is_parsed_across_the_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(tapedesc, '_READ', 100)  # lines split across reads, as a big manifest's are
    entries = [
        {
            'path': f'dir {n}/file\t{n}',
            'kind': 'file',
            'size': n,
            'mtime': n / 3,
            'mode': 0o600,
            'uid': n,
            'gid': 0,
            'checksum': f'{n:064x}',
            'target': None,
        }
        for n in range(500)
    ]
    tapedesc.write(str(tmp_path), _folder(), iter(entries))
    [header] = [tapedesc.read_header(path) for path in tapedesc.listed(str(tmp_path))]
    manifest = tmp_path / tapedesc.DIRECTORY / header['Manifest']
    rows = list(tapedesc.read_manifest(str(manifest), header['Manifest checksum']))
    assert rows == [tuple(entry[column] for column in tapedesc.COLUMNS) for entry in entries]


def test_no_archive_is_copied_into_the_description_folder(tmp_path):
    folder = {'id': 3, 'path': '/pytarchive-descriptions/x', 'packed': None}
    assert archive.free_tape_path(str(tmp_path), folder) == 'folder-3-pytarchive-descriptions/x'
    assert archive.free_tape_path(str(tmp_path), {**folder, 'path': '/data/pytarchive-descriptions'}) == (
        'data/pytarchive-descriptions'
    )


def test_import_records_the_tape_read_and_says_when_the_headers_name_another(tmp_path, db):
    tapedesc.write(str(tmp_path), _folder(tape='TPN009L9'), iter(_entries()))
    with db.transaction() as conn:
        conn.execute("INSERT INTO tapes (barcode) VALUES ('TPN001L9')")
    said = import_mounted(db, str(tmp_path), 'TPN001L9')
    assert said == (
        'TPN001L9: 1 archives imported (2 files, 11 B); their headers name the tape TPN009L9: '
        'recorded on TPN001L9, the tape read'
    )
    assert [folder['path'] for folder in folders.archived_on(db, 'TPN001L9')] == ['/data/projects/Q3\treport']
