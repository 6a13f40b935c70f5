"""`make demo` (`python -m demo`): start the stand-ins and show, step by step, what the tools do.

With no cluster and no tape library on this machine, everything runs against the stand-ins under
sim/. A tour of the emulated cluster comes first (steps 1 to 5: login, change notify, a WORM lock,
SMB handles), then each tool's own step from its module here, in the order TOOL_STEPS lists them.
"""

import json
import os
import sys
import tempfile
import threading
import time

import requests

from common.auth import connect, require_privileges
from common.config import load_cluster_config
from common.errors import ToolError, run_main
from demo.lockmanager import demo_step as lockmanager_step
from demo.pytarchive import demo_step as pytarchive_step
from demo.wormlock import demo_step as wormlock_step
from sim.qumulo.launcher import SimCluster

PROG = 'demo'
# Each tool's own step, run in this order after the cluster tour: qfs_filelock.py (demo/wormlock.py),
# qumulo_lock_manager.py (demo/lockmanager.py), pytarchive (demo/pytarchive.py).
TOOL_STEPS = [wormlock_step, lockmanager_step, pytarchive_step]


def say(text='', end='\n'):
    print(text, end=end, flush=True)


def table(rows, headers):
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    for row in [headers, ['-' * w for w in widths]] + rows:
        say('  ' + '  '.join(str(v).ljust(w) for v, w in zip(row, widths)))


def watch(cluster, path, token, received, ready):
    """Reads the notify stream line by line, the way a watcher that needs low latency must."""
    url = f'{cluster.url}/v1/files/{requests.utils.quote(path, safe="")}/notify?recursive=true'
    try:
        with requests.get(
            url, headers={'Authorization': f'Bearer {token}'}, verify=str(cluster.cert_path), stream=True, timeout=30
        ) as reply:
            buffer = ''
            for chunk in reply.iter_content(chunk_size=None):
                buffer += chunk.decode()
                *lines, buffer = buffer.split('\n')
                for line in lines:
                    if line.startswith(': watching'):
                        ready.set()
                    elif line.startswith('data: '):
                        received.extend(json.loads(line[len('data: ') :]))
    except requests.RequestException:
        pass  # the emulator stopped at the end of the demo


def demo(workdir):
    cluster = SimCluster(workdir)
    try:
        say(f'1. Emulated Qumulo cluster (sim/qumulo) at {cluster.url}, file system in {cluster.root}')
        config_path = cluster.write_config(os.path.join(workdir, 'demo_config.ini'))
        config = load_cluster_config(config_path)
        client = connect(config)
        me = client.auth.who_am_i()
        say(
            f'2. common/ read {config_path} (mode {os.stat(config_path).st_mode & 0o777:o}) and logged in '
            f'as {me["name"]} with {len(me["privileges"])} privileges'
        )
        require_privileges(client, ['PRIVILEGE_FS_FILE_LOCK_WRITE', 'PRIVILEGE_SMB_FILE_HANDLE_READ'])

        (cluster.root / 'finance').mkdir()
        received, ready = [], threading.Event()
        threading.Thread(
            target=watch, args=(cluster, '/finance', client.credentials.bearer_token, received, ready), daemon=True
        ).start()
        ready.wait(10)
        for name in ('Q3.xlsx', 'Q4.xlsx'):
            (cluster.root / 'finance' / name).write_bytes(b'numbers')
        os.rename(cluster.root / 'finance' / 'Q4.xlsx', cluster.root / 'finance' / 'Q4-final.xlsx')
        time.sleep(0.5)
        say('3. Files written under /finance by another process arrive on the change-notify stream:')
        table([[e['type'], e['path'], e['spine'][-1]] for e in received], ['event', 'path', 'file id'])

        locked = client.fs.modify_file_lock(path='/finance/Q3.xlsx', retention_period='2031-12-31T00:00:00Z')
        say(f'4. WORM lock on /finance/Q3.xlsx: {locked["lock"]}')
        for label, call in (
            (
                'shorten its retention',
                lambda: client.fs.modify_file_lock(path='/finance/Q3.xlsx', retention_period='2030-01-01T00:00:00Z'),
            ),
            ('delete it', lambda: client.fs.delete(path='/finance/Q3.xlsx')),
        ):
            try:
                call()
                say(f'   {label}: allowed (unexpected!)')
            except client.Error as e:
                say(f'   {label}: refused, {e.status_code} {e.error_class}')

        for path, user, ip in (
            ('/finance/Q3.xlsx', 'alice', '10.0.0.5'),
            ('/finance/Q4-final.xlsx', 'bob', '10.0.0.6'),
        ):
            cluster.control('smb/open', {'path': path, 'user': user, 'client': ip, 'access': 'write'})
        handles = [h for page in client.smb.list_file_handles(resolve_paths=True) for h in page['file_handles']]
        say('5. SMB file handles opened by clients, as the lock manager will list them:')
        table(
            [
                [
                    h['handle_info']['path'],
                    client.auth.find_identity(auth_id=h['handle_info']['owner'])['name'],
                    h['handle_info']['location'],
                ]
                for h in handles
            ],
            ['path', 'user', 'handle location'],
        )
        for number, step in enumerate(TOOL_STEPS, start=6):
            say()
            say(f'{number}. ', end='')
            step(cluster, client, say)
        say()
        say('Try the emulator by hand: .venv/bin/python -m sim.qumulo --root DIR --host 127.0.0.2, then')
        say('  .venv/bin/qq --host 127.0.0.2 --port PORT login -u admin -p admin')
        return 0
    finally:
        cluster.stop()


def main():
    with tempfile.TemporaryDirectory(prefix='qumulo-demo-') as workdir:
        try:
            return demo(workdir)
        except RuntimeError as e:  # the emulator did not start
            raise ToolError(str(e).splitlines()[0])


if __name__ == '__main__':
    sys.exit(run_main(main, PROG))
