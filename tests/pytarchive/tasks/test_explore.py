"""explore (read-only NFS export of an archived folder's tape) and inventory (report printed and mailed),
end to end through the service. exportfs is a configured command: here a script that records its
arguments, so the tests see the exact exports made."""

import json
import os
import time
from pathlib import Path

from tests.pytarchive.smtp_inbox import free_port
from tests.pytarchive.rig import TAPE, archived, formatted_rig, make_tree


def recording_exportfs(tmp_path: Path) -> tuple:
    log = tmp_path / 'exportfs.log'
    script = tmp_path / 'exportfs'
    script.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\n')
    script.chmod(0o755)
    return script, log


def mount_options(mountpoint: str) -> list:
    with open('/proc/self/mounts') as mounts:
        for line in mounts:
            fields = line.split()
            if fields[1] == mountpoint:
                return fields[3].split(',')
    return []


def test_explore_exports_the_tape_read_only_until_stopped(make_rig, tmp_path):
    exportfs, log = recording_exportfs(tmp_path)
    rig = formatted_rig(make_rig, extra=f'[Export]\nto = 10.1.0.0/16\nsettings = ro,fsid=1\nexportfs = {exportfs}\n')
    folder = make_tree(tmp_path / 'lab results')
    archived(rig, folder)

    assert rig.ok('explore', '--stop').strip() == 'nothing is being explored'
    task_id = int(rig.ok('explore', str(folder)).split()[2].rstrip(':'))
    deadline = time.monotonic() + 30
    while not (log.exists() and rig.tasks()[task_id]['step']):
        assert time.monotonic() < deadline, rig.tasks()[task_id]
        time.sleep(0.1)
    exported = f'{rig.mountpoint}/{str(folder).lstrip("/")}'
    assert log.read_text() == f'-o ro,fsid=1 10.1.0.0/16:{exported}\n'
    assert 'ro' in mount_options(rig.mountpoint)
    assert sorted(os.listdir(exported)) == sorted(os.listdir(folder))
    summary = json.loads(rig.ok('summary', '--json'))
    assert summary['drive']['tape'] == TAPE and summary['drive']['mounted'] == 'read-only'
    assert 'exported 10.1.0.0/16:' in rig.ok('queue')

    assert 'ending explore' in rig.ok('explore', '--stop')
    tasks = rig.wait_for({task_id: {'done'}})
    assert 'ended by explore --stop' in tasks[task_id]['result']
    assert log.read_text().splitlines()[-1] == f'-u 10.1.0.0/16:{exported}'
    assert not rig.mounted() and rig.drive().barcode is None


def test_inventory_is_printed_and_mailed(make_rig, smtp_server, tmp_path):
    inbox, port = smtp_server()
    homes = tmp_path / 'homes'
    for user, size in (('alice', 50_000), ('bob', 200_000)):
        (homes / user / '.cache').mkdir(parents=True)
        (homes / user / 'thesis.pdf').write_bytes(b'x' * size)
        (homes / user / '.cache' / 'junk').write_bytes(b'x' * 1_000_000)
    rig = make_rig(general=f'source_folders = {homes}\nexclude_folders = .cache',
                   extra=f'[Email]\nsmtp_host = 127.0.0.1\nsmtp_port = {port}\nsender = pytarchive@lab.example\n'
                         f'recipients = it@lab.example, boss@lab.example\n')
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
        (str(homes / 'bob'), 200_000), (str(homes / 'alice'), 50_000)]


def test_inventory_is_still_printed_when_the_mail_cannot_be_sent(make_rig, tmp_path):
    homes = tmp_path / 'homes'
    (homes / 'carol').mkdir(parents=True)
    (homes / 'carol' / 'data.csv').write_text('1,2\n')
    closed_port = free_port()
    rig = make_rig(general=f'source_folders = {homes}',
                   extra=f'[Email]\nsmtp_host = 127.0.0.1\nsmtp_port = {closed_port}\nsender = p@lab.example\n'
                         f'recipients = it@lab.example\n')
    rig.start()
    printed = rig.ok('inventory')
    assert str(homes / 'carol') in printed
    assert f'NOT emailed: cannot send mail through 127.0.0.1:{closed_port}: connection refused' in printed


def test_a_failed_task_is_mailed_as_the_seed_logging_conf_does(make_rig, smtp_server, tmp_path):
    inbox, port = smtp_server()
    logging_conf = tmp_path / 'logging.conf'
    logging_conf.write_text(
        '[loggers]\nkeys=root\n\n[handlers]\nkeys=emailHandler\n\n[formatters]\nkeys=defaultFormatter\n\n'
        '[logger_root]\nlevel=INFO\nhandlers=emailHandler\n\n'
        '[handler_emailHandler]\nclass=logging.handlers.SMTPHandler\nlevel=CRITICAL\nformatter=defaultFormatter\n'
        f"args=(('127.0.0.1', {port}), 'pytarchive@lab.example', ['it@lab.example'], 'pyarchive: Task failed')\n\n"
        '[formatter_defaultFormatter]\nformat=%(asctime)s - %(name)s - %(levelname)s - %(message)s\n')
    rig = formatted_rig(make_rig, extra=f'logging_config = {logging_conf}\n')
    failed = rig.client('format', 'TPN009L9', '--wait')
    assert failed.returncode == 1
    deadline = time.monotonic() + 10
    while not inbox.messages():
        assert time.monotonic() < deadline, 'no mail arrived'
        time.sleep(0.1)
    [message] = inbox.messages()
    assert message['Subject'] == 'pyarchive: Task failed'
    assert 'format' in message.get_content() and 'TPN009L9' in message.get_content()
