"""The inventory task: sizes, counts and ages of the subfolders, links not followed, nothing raised;
and end to end through the service, the report printed and mailed."""

import json
import os
import time

import pytest

from pytarchive.tasks import inventory
from tests.pytarchive.smtp_inbox import free_port

DAY = 86400
NOW = 1_700_000_000.0  # 2023-11-14


def write(path, size, mtime):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'x' * size)
    os.utime(path, (mtime, mtime))


@pytest.fixture
def tree(tmp_path):
    """Two source folders, an excluded .cache at two depths, a link to a big file, odd names."""
    one, two = tmp_path / 'homes', tmp_path / 'drive'
    alice, bob, carol = one / 'alice', one / 'bob', two / 'carol'
    write(alice / 'a.txt', 20_000, NOW - 40 * DAY)
    write(alice / 'sub' / 'b.bin', 3_000, NOW - 12 * DAY)
    write(alice / '.cache' / 'huge', 500_000, NOW)  # excluded below the first level too
    write(tmp_path / 'outside' / 'big', 1_000_000, NOW)
    (alice / 'link').symlink_to(tmp_path / 'outside' / 'big')
    os.utime(alice / 'link', (NOW - 100 * DAY, NOW - 100 * DAY), follow_symlinks=False)
    (one / 'dirlink').symlink_to(tmp_path / 'outside')  # a link is no subfolder: never followed
    write(one / '.cache' / 'junk', 900_000, NOW)  # excluded at the first level
    write(one / 'loose.txt', 7, NOW)  # not in any subfolder
    write(bob / 'old.doc', 500, NOW - 3 * 365 * DAY - 10 * DAY)
    write(carol / 'c.dat', 10_000, NOW - 150 * DAY)
    odd = two / '<b>&co ünï'
    write(odd / 'f', 1_000, NOW - 2 * DAY)
    (one / 'empty').mkdir()
    os.mkdir(os.path.join(os.fsencode(two), b'bad\xff'))  # not UTF-8
    for directory in (alice / 'sub', alice, bob, carol, odd):
        os.utime(directory, (NOW - 400 * DAY, NOW - 400 * DAY))
    sources = [str(one), str(tmp_path / 'gone'), str(one / 'loose.txt'), str(two)]
    return tmp_path, sources


def by_name(report):
    return {os.path.basename(folder.path): folder for folder in report.folders}


def test_sizes_counts_ages_and_order(tree):
    root, sources = tree
    seen = []
    report = inventory.survey(sources, ('.cache', '.local'), on_progress=seen.append, now=NOW)
    link_size = len(str(root / 'outside' / 'big'))
    names = [os.path.basename(folder.path) for folder in report.folders]
    assert names == ['alice', 'carol', '<b>&co ünï', 'bob', 'bad\udcff', 'empty']  # size, then path
    assert sorted(seen, key=lambda folder: folder.path) == sorted(report.folders, key=lambda folder: folder.path)
    folders = by_name(report)
    alice = folders['alice']
    assert alice.path == str(root / 'homes' / 'alice')
    assert (alice.bytes, alice.files, alice.errors) == (20_000 + 3_000 + link_size, 3, 0)
    assert alice.newest == NOW - 12 * DAY  # not the excluded .cache's NOW
    assert (folders['bob'].bytes, folders['bob'].files) == (500, 1)
    assert folders['empty'].newest is None and folders['empty'].files == 0
    assert report.missing == [
        (str(root / 'gone'), 'does not exist'),
        (str(root / 'homes' / 'loose.txt'), 'is not a directory'),
    ]
    assert inventory.age_words(alice.newest, NOW) == '12 days'
    assert inventory.age_words(folders['carol'].newest, NOW) == '5 months'
    assert inventory.age_words(folders['bob'].newest, NOW) == '3 years'
    assert inventory.age_words(NOW - 1 * DAY, NOW) == '1 day'
    assert inventory.age_words(NOW + 60, NOW) == 'under a day'  # a clock ahead of ours
    totals = report.totals
    assert (totals.bytes, totals.files) == (20_000 + 3_000 + link_size + 10_000 + 1_000 + 500, 6)


def test_text_report(tree):
    root, sources = tree
    text = inventory.render_text(inventory.survey(sources, ['.cache'], now=NOW))
    lines = text.splitlines()
    assert lines[0].split() == ['FOLDER', 'SIZE', 'FILES', 'NEWEST', 'AGE']
    carol = next(line for line in lines if line.startswith(str(root / 'drive' / 'carol')))
    newest = time.strftime('%Y-%m-%d', time.localtime(NOW - 150 * DAY))
    assert carol.split()[1:] == ['10.0', 'kB', '1', newest, '5', 'months']
    assert f'{root / "drive" / "bad"}\ufffd' in text
    assert f'missing source folder: {root / "gone"}: does not exist' in lines
    assert any(line.startswith('total: ') and line.endswith(' in 6 files, 6 folders') for line in lines)


def test_html_report_escapes_names(tree):
    _, sources = tree
    document = inventory.render_html(inventory.survey(sources, ['.cache'], now=NOW))
    assert document.startswith('<!DOCTYPE html>') and document.rstrip().endswith('</html>')
    assert '&lt;b&gt;&amp;co ünï' in document and '<b>' not in document
    assert '<td class="n">10.0 kB</td>' in document
    document.encode('utf-8')  # the non-UTF-8 name is shown with U+FFFD, not a lone surrogate


def test_json_shape(tree):
    root, sources = tree
    data = inventory.as_json(inventory.survey(sources, ['.cache'], now=NOW))
    json.dumps(data, ensure_ascii=False).encode('utf-8')
    assert data['generated'] == '2023-11-14T22:13:20+00:00'
    carol = next(folder for folder in data['folders'] if folder['path'].endswith('/carol'))
    assert carol == {
        'path': str(root / 'drive' / 'carol'),
        'bytes': 10_000,
        'files': 1,
        'newest': '2023-06-17T22:13:20+00:00',
        'age': '5 months',
        'errors': 0,
    }
    empty = next(folder for folder in data['folders'] if folder['path'].endswith('/empty'))
    assert empty['newest'] is None and empty['age'] == '-'
    assert data['missing'][0] == {'path': str(root / 'gone'), 'reason': 'does not exist'}
    assert data['totals']['folders'] == 6 and data['totals']['files'] == 6
    assert isinstance(data['totals']['bytes'], int)


def test_unreadable_and_vanishing_entries_are_counted_not_raised(tmp_path, monkeypatch):
    # Root reads everything, so the failures are made where the walk meets them: a directory that
    # refuses to be listed, and a file removed between its listing and its lstat.
    home = tmp_path / 'homes' / 'dave'
    write(home / 'keep', 100, NOW)
    write(home / 'locked' / 'secret', 5_000, NOW)
    write(home / 'busy' / 'tmpfile', 7_000, NOW)
    write(home / 'busy' / 'stays', 1, NOW)
    real_scandir = os.scandir

    class Listing:
        def __init__(self, path):
            with real_scandir(path) as listing:
                self.entries = list(listing)
            os.unlink(os.path.join(path, 'tmpfile'))

        def __enter__(self):
            return iter(self.entries)

        def __exit__(self, *exc):
            return False

    def scandir(path):
        if os.path.basename(path) == 'locked':
            raise PermissionError(13, 'Permission denied', path)
        if os.path.basename(path) == 'busy':
            return Listing(path)
        return real_scandir(path)

    monkeypatch.setattr(inventory.os, 'scandir', scandir)
    report = inventory.survey([str(tmp_path / 'homes')], now=NOW)
    [dave] = report.folders
    assert (dave.bytes, dave.files, dave.errors) == (101, 2, 2)
    assert '    2 entries could not be read' in inventory.render_text(report).splitlines()
    assert 'total: 101 B in 2 files, 1 folder, 2 entries could not be read' in inventory.render_text(report)


@pytest.mark.root  # the service on the virtual library
def test_inventory_is_printed_and_mailed(make_rig, smtp_server, tmp_path):
    inbox, port = smtp_server()
    homes = tmp_path / 'homes'
    for user, size in (('alice', 50_000), ('bob', 200_000)):
        (homes / user / '.cache').mkdir(parents=True)
        (homes / user / 'thesis.pdf').write_bytes(b'x' * size)
        (homes / user / '.cache' / 'junk').write_bytes(b'x' * 1_000_000)
    rig = make_rig(
        general=f'source_folders = {homes}\nexclude_folders = .cache',
        extra=f'[Email]\nsmtp_host = 127.0.0.1\nsmtp_port = {port}\nsender = pytarchive@lab.example\n'
        f'recipients = it@lab.example, boss@lab.example\n',
    )
    rig.start()
    printed = rig.ok('inventory')
    lines = printed.splitlines()
    assert lines[0].split()[:2] == ['FOLDER', 'SIZE']
    assert lines[1].startswith(str(homes / 'bob')) and lines[2].startswith(str(homes / 'alice'))
    assert 'emailed to it@lab.example, boss@lab.example' in printed
    [message] = inbox.messages()
    assert message['To'] == 'it@lab.example, boss@lab.example' and 'inventory' in message['Subject']
    assert str(homes / 'bob') in message.get_body(('plain',)).get_content()
    assert '<table' in message.get_body(('html',)).get_content()
    report = json.loads(rig.ok('inventory', '--json'))
    assert [(row['path'], row['bytes']) for row in report['folders']] == [
        (str(homes / 'bob'), 200_000),
        (str(homes / 'alice'), 50_000),
    ]


@pytest.mark.root  # the service on the virtual library
def test_inventory_is_still_printed_when_the_mail_cannot_be_sent(make_rig, tmp_path):
    homes = tmp_path / 'homes'
    (homes / 'carol').mkdir(parents=True)
    (homes / 'carol' / 'data.csv').write_text('1,2\n')
    closed_port = free_port()
    rig = make_rig(
        general=f'source_folders = {homes}',
        extra=f'[Email]\nsmtp_host = 127.0.0.1\nsmtp_port = {closed_port}\nsender = p@lab.example\n'
        f'recipients = it@lab.example\n',
    )
    rig.start()
    printed = rig.ok('inventory')
    assert str(homes / 'carol') in printed
    assert f'NOT emailed: cannot send mail through 127.0.0.1:{closed_port}: connection refused' in printed
