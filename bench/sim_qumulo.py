"""Throughput of the emulated Qumulo API (sim/qumulo) against a bare-stdlib HTTPS ceiling, in one run:
`.venv/bin/python -m bench.sim_qumulo [--seconds 5] [--files 10000] [--json]` from the project folder. Both
servers run as subprocesses; the client threads run in this process, on the same CPUs."""

import argparse
import http.client
import json
import os
import pathlib
import resource
import select
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

from qumulo.rest_client import RestClient

from bench.table import print_table
from sim.qumulo.launcher import SIM_HOST, SimCluster
from sim.qumulo.tls import make_certificate, server_context

PROJECT = pathlib.Path(__file__).resolve().parent.parent

THREADS, TREE_FILES, SUBDIRS = 8, 1000, 10
TARGET_CALLS, TARGET_EVENTS = 1500, 5000
BASE_RETENTION = 1893456000  # 2030-01-01T00:00:00Z; each lock call moves its file's retention later


# --- helper processes: the baseline server and the file creator ---------------------------------
def serve_baseline(host):
    answer = json.dumps({'bearer_token': 'session-v1:baseline', 'id': '2', 'name': 'f'}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def do_GET(self):
            self.rfile.read(int(self.headers.get('Content-Length') or 0))
            # One write, as sim/qumulo does: head and body in two writes meet Nagle + delayed ACK (40 ms).
            self.wfile.write(
                b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s'
                % (len(answer), answer)
            )

        do_POST = do_PATCH = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    with tempfile.TemporaryDirectory() as tmp:
        context = server_context(*make_certificate(host, tmp))
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    print(f'listening on https://{host}:{server.server_address[1]}', flush=True)
    server.serve_forever()


def create_files(top, count):
    start, cpu = time.monotonic(), time.process_time()
    for i in range(int(count)):
        fd = os.open(os.path.join(top, f'd{i % SUBDIRS}', f'f{i:05d}'), os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b'bench\n')
        os.close(fd)
    print(start, time.monotonic(), time.process_time() - cpu, flush=True)


def start_baseline():
    proc = subprocess.Popen(
        [sys.executable, '-m', 'bench.sim_qumulo', '--serve-baseline', SIM_HOST], cwd=PROJECT, stdout=subprocess.PIPE
    )
    if not select.select([proc.stdout], [], [], 20)[0]:
        proc.kill()
        raise RuntimeError('baseline server did not start')
    return proc, int(proc.stdout.readline().decode().rsplit(':', 1)[1])


# --- measuring -----------------------------------------------------------------------------------
def cpu_s(pid=None):
    """CPU seconds used so far by process `pid` (from /proc), or by this process."""
    if pid is None:
        return sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    fields = pathlib.Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def run_load(port, call, seconds, threads=THREADS):
    """`threads` threads, each with its own logged-in RestClient, call `call(rc, thread, n)` for
    `seconds`; -> dict of calls/s and errors."""
    ready = threading.Barrier(threads + 1)
    counts, errors, ends = [0] * threads, [], [0.0] * threads

    def worker(t):
        rc = RestClient(SIM_HOST, port, timeout=30)
        rc.login('admin', 'admin')  # one client, one connection, per thread
        ready.wait()
        deadline, n = time.monotonic() + seconds, 0
        while time.monotonic() < deadline:
            try:
                call(rc, t, n)
                counts[t] += 1
            except Exception as e:  # noqa: BLE001 - counted and reported
                errors.append(f'{type(e).__name__}: {e}')
            n += 1
        ends[t] = time.monotonic()

    workers = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
    [w.start() for w in workers]
    ready.wait()
    start = time.monotonic()
    [w.join() for w in workers]
    return {
        'calls': sum(counts),
        'rate': sum(counts) / (max(ends) - start),
        'errors': len(errors),
        'first_error': errors[0] if errors else None,
    }


def measured(fn, server_pid):
    """Runs fn(); adds the CPU used meanwhile by the server and by this process, in % of one core."""
    server0, own0, t0 = cpu_s(server_pid), cpu_s(), time.monotonic()
    result = fn()
    wall = time.monotonic() - t0
    result.update(server_cpu=100 * (cpu_s(server_pid) - server0) / wall, client_cpu=100 * (cpu_s() - own0) / wall)
    return result


def notify_burst(sim, top, count):
    """Watch `top` recursively with a blocking line reader while a subprocess creates `count` files."""
    token = sim.client().credentials.bearer_token  # same session token, its own connection
    conn = http.client.HTTPSConnection(sim.host, sim.port, timeout=None, context=ssl._create_unverified_context())
    conn.request(
        'GET',
        f'/v1/files/{quote("/" + top.name + "/", safe="")}/notify?recursive=True',
        headers={'Authorization': f'Bearer {token}'},
    )
    reply = conn.getresponse()
    if reply.status != 200 or not reply.readline().startswith(b': watching'):
        raise RuntimeError(f'notify stream refused: {reply.status} {reply.read(500)!r}')
    wanted = {f'd{i % SUBDIRS}/f{i:05d}' for i in range(count)}
    state = {'events': 0, 'lines': 0, 'last': None, 'types': {}}
    done = threading.Event()

    def reader():
        try:
            for line in iter(reply.readline, b''):
                if not line.startswith(b'data: '):
                    continue
                state['lines'] += 1
                for event in json.loads(line[6:]):
                    state['events'] += 1
                    state['types'][event['type']] = state['types'].get(event['type'], 0) + 1
                    if event['type'] == 'child_file_added' and event['path'] in wanted:
                        wanted.discard(event['path'])
                        if not wanted:
                            state['last'] = time.monotonic()
                            return done.set()
        except Exception:  # noqa: BLE001 - the stream broke, or we closed it
            pass
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    creator = subprocess.run(
        [sys.executable, '-m', 'bench.sim_qumulo', '--create', str(top), str(count)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    )
    first, written, writer_cpu = (float(x) for x in creator.stdout.split())
    done.wait(60)
    end = state['last'] or time.monotonic()
    conn.sock.shutdown(2)
    conn.close()
    elapsed = end - first
    return {
        'events': state['events'],
        'rate': state['events'] / elapsed,
        'files_rate': (count - len(wanted)) / elapsed,
        'elapsed': elapsed,
        'write_s': written - first,
        'lag_s': end - written,
        'data_lines': state['lines'],
        'types': state['types'],
        'missing': len(wanted),
        'missing_sample': sorted(wanted)[:5],
        'creator_cpu': 100 * writer_cpu / (written - first),
    }


def file_ids(sim, paths):
    """The emulator's ids of `paths` (its own numbers, not inodes), read through the SDK."""
    rc = sim.client()
    by_path = {}
    for directory in sorted({os.path.dirname(p) for p in paths}):
        for page in rc.fs.read_entire_directory(path=directory, page_size=1000):
            by_path.update({f['path']: f['id'] for f in page['files']})
    return [by_path[p] for p in paths]


# --- the run -------------------------------------------------------------------------------------
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seconds', type=float, default=5.0, help='duration of each call load (default 5)')
    parser.add_argument('--files', type=int, default=10000, help='files created under notify (default 10000)')
    parser.add_argument('--json', action='store_true', help='also print the results as JSON')
    parser.add_argument('--serve-baseline', help=argparse.SUPPRESS)  # helper process modes
    parser.add_argument('--create', nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline or args.create:
        return serve_baseline(args.serve_baseline) if args.serve_baseline else create_files(*args.create)
    with tempfile.TemporaryDirectory(prefix='bench-sim-') as work:
        root = pathlib.Path(work) / 'cluster'
        watched = root / 'notify'
        for i in range(SUBDIRS):
            (root / 'tree' / f'd{i}').mkdir(parents=True)
            (watched / f'd{i}').mkdir(parents=True)
        files = [root / 'tree' / f'd{i % SUBDIRS}' / f'f{i:04d}' for i in range(TREE_FILES)]
        [f.write_bytes(b'data\n') for f in files]
        paths = ['/' + str(f.relative_to(root)) for f in files]
        sim = SimCluster(work)
        ids = file_ids(sim, paths)
        baseline, baseline_port = start_baseline()
        try:
            mine = TREE_FILES // THREADS  # each thread owns its files, so every lock call extends

            def attr(rc, t, n):
                rc.fs.get_file_attr(path=paths[(t * mine + n) % TREE_FILES], retrieve_file_lock=True)

            def lock(rc, t, n):
                later = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(BASE_RETENTION + n))
                rc.fs.modify_file_lock(id_=ids[t * mine + n % mine], retention_period=later)

            results = {
                'baseline': measured(lambda: run_load(baseline_port, attr, args.seconds), baseline.pid),
                'attributes': measured(lambda: run_load(sim.port, attr, args.seconds), sim.proc.pid),
                'locks': measured(lambda: run_load(sim.port, lock, args.seconds), sim.proc.pid),
                'notify': measured(lambda: notify_burst(sim, watched, args.files), sim.proc.pid),
            }
        finally:
            baseline.terminate()
            baseline.wait()
            sim.stop()
    report(results, args)
    return 0


def report(results, args):
    ceiling, n = results['baseline']['rate'], results['notify']
    rows = [('measure', 'rate', 'unit', 'x baseline', 'target', 'x target', 'srv CPU', 'cli CPU', 'errors')]
    for name, label, unit, target in (
        ('baseline', 'bare stdlib HTTPS server, 8 thr', 'calls/s', None),
        ('attributes', 'get_file_attr(+lock), 8 thr', 'calls/s', TARGET_CALLS),
        ('locks', 'modify_file_lock, 8 thr', 'calls/s', TARGET_CALLS),
        ('notify', 'notify, 1 stream, all events', 'events/s', TARGET_EVENTS),
    ):
        r = results[name]
        rows.append(
            (
                label,
                f'{r["rate"]:.0f}',
                unit,
                '' if unit != 'calls/s' else f'{r["rate"] / ceiling:.2f}',
                str(target or ''),
                f'{r["rate"] / target:.2f}' if target else '',
                f'{r["server_cpu"]:.0f}%',
                f'{r["client_cpu"]:.0f}%',
                f'{n["missing"]} missing' if r is n else str(r['errors']),
            )
        )
    rows.append(('notify, files announced', f'{n["files_rate"]:.0f}', 'files/s') + ('',) * 6)
    print_table(rows)
    print(
        f'\nnotify: {args.files} files written in {n["write_s"]:.2f} s ({args.files / n["write_s"]:.0f} files/s, '
        f'writer CPU {n["creator_cpu"]:.0f}%); last child_file_added {n["elapsed"]:.2f} s after the first write, '
        f'{1000 * n["lag_s"]:.0f} ms after the last; {n["events"]} events in {n["data_lines"]} data lines {n["types"]}'
    )
    if n['missing']:
        print(f'notify: {n["missing"]} files never announced, e.g. {n["missing_sample"]}')
    for name in ('baseline', 'attributes', 'locks'):
        if results[name]['errors']:
            print(f'{name}: {results[name]["errors"]} errors, first: {results[name]["first_error"]}')
    print(f'CPU: % of one core ({os.cpu_count()} cores); clients run as threads of this process, servers apart.')
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == '__main__':
    sys.exit(main())
