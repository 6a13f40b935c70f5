"""How fast and how light the lock manager lists 20,000 SMB handles: from a refresh to the model
ready and to a filled table, each as a ratio to the raw SDK paging of the same listings measured in
the same run; and the window's peak memory against a stand-in of the original script's approach.

.venv/bin/python -m bench.lockmanager [--handles 20000] [--users 1000] [--repeat 5] [--json]   (from the project root)

The emulator runs as a subprocess; the timed tool runs in this process, its window on a private Xvfb
display when one can be started. Each time is the fastest of --repeat runs: other processes on the
machine only ever add time, so the minimum is the figure that repeats. Each is judged as a ratio to
the baseline, which is run again in every round between the measures, so that a load that comes and
goes slows both alike and does not flip the verdict.

Baseline ("raw SDK paging"): what a plain script reads to have the rows' facts, one listing after
another on one SDK client, 1,000 a page, no joins: the handles (resolve_paths), the share-mode and
byte-range lock grants (fs.list_locks_by_client, followed page after page) and the SMB sessions.

Memory: the real window (one listing and a refresh) and a stand-in of the original Qumulo Lock
Manager script (a single tkinter script that pages the handles and the share-mode grants, builds a
dict per row and inserts every row into a plain ttk.Treeview) each run in a subprocess of their own
on the same display, and report their own peak resident memory (VmHWM). The stand-in is not the
original's code (not shipped here): it does what the original does, with the same SDK and Tk.
"""

import _tkinter
import argparse
import contextlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from urllib.parse import parse_qs, urlsplit

from common.auth import connect
from common.config import load_cluster_config
from lockmanager import gui
from lockmanager.cluster import ConnectingCluster, LockCluster
from lockmanager.model import sort_rows
from lockmanager.presenter import LockManagerPresenter
from sim.qumulo.launcher import SimCluster
from sim.xvfb import VirtualDisplay

AIM_RATIO = 1.5  # each measure within 1.5x the baseline
OPEN_CHUNK = 5000
PAGE = 1000
PROJECT = pathlib.Path(__file__).resolve().parent.parent


def open_handles(cluster, handles, users):
    """Two handles a file in 100 folders; each user on one client; every 5th handle with a byte-range lock."""
    specs = [
        {
            'path': f'/share/d{n % 100}/file{n // 2}.xlsx',
            'user': f'user{n % users}',
            'client': f'10.{n % users // 250}.{n % users % 250}.1',
            'access': 'write' if n % 3 else 'read',
            'byte_ranges': [[0, 4096]] if n % 5 == 0 else [],
        }
        for n in range(handles)
    ]
    for start in range(0, handles, OPEN_CHUNK):
        cluster.control('smb/open', specs[start : start + OPEN_CHUNK])


def best_time(run, repeat):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def page_handles(client):
    return [h for page in client.smb.list_file_handles(resolve_paths=True, limit=PAGE) for h in page['file_handles']]


def page_grants(client, lock_type):
    """A lock listing followed as a plain script would: next page after next page, to an empty one."""
    grants, after = [], None
    while True:
        page = client.fs.list_locks_by_client('smb', lock_type, limit=PAGE, after=after)
        grants += page['grants']
        next_link = (page.get('paging') or {}).get('next')
        if not page['grants'] or not next_link:
            return grants
        after = parse_qs(urlsplit(next_link).query)['after'][0]


def raw_handles(client, expected):
    count = len(page_handles(client))
    assert count == expected, count


def raw_listings(client, expected):
    """The baseline: every listing the rows are built from, one after another, no joins."""
    handles = page_handles(client)
    share = page_grants(client, 'share-mode')
    byte_range = page_grants(client, 'byte-range')
    sessions = [s for page in client.smb.list_smb_sessions(limit=PAGE) for s in page['session_infos']]
    assert len(handles) == expected and len(share) == expected and byte_range and sessions, len(handles)


def model_ready(cluster, expected):
    rows = sort_rows(cluster.fetch().rows, 'path')
    assert len(rows) == expected, len(rows)


class WindowBench:
    """The real window on Xvfb; times a refresh until every row is in the Treeview."""

    def __init__(self, config):
        self.root = gui.open_root('bench')
        self.presenter = LockManagerPresenter(ConnectingCluster(config))
        self.window = gui.LockManagerWindow(self.root, self.presenter)
        self.longest_gap = 0.0

    def _pump_until(self, done):
        # One event at a time, as mainloop() runs them: the longest one is how long a click could
        # have waited. (update() would run every batch of rows in one call.) With nothing to do
        # it naps 4 ms, as mainloop() would wait for the next timer (the busy bar's is 12 ms),
        # rather than wake a thousand times a second and take the interpreter from the listing.
        while not done():
            started = time.perf_counter()
            if not self.root.tk.dooneevent(_tkinter.DONT_WAIT):
                time.sleep(0.004)
                continue
            self.longest_gap = max(self.longest_gap, time.perf_counter() - started)

    def refresh(self, expected):
        self.presenter.refresh()
        self._pump_until(lambda: not self.presenter.jobs.busy and not self.window.filling)
        shown = self.window.rows_shown()
        assert shown == expected, shown

    def filter(self, text):
        self.window.filter_text.set(text)
        self.presenter.apply_filter()  # what tick() does once typing pauses
        self._pump_until(lambda: not self.window.filling)
        return self.window.rows_shown()

    def close(self):
        self.window.quit()


class Timings:
    """The fastest run of each measure. The baseline is run again between the measures, in the
    same rounds, so a load that comes and goes slows both alike and the ratio keeps its verdict."""

    def __init__(self):
        self.best = {}

    def time(self, key, run):
        started = time.perf_counter()
        run()
        took = time.perf_counter() - started
        self.best[key] = min(self.best.get(key, took), took)
        return took


def measure(args):
    results = {}
    timings = Timings()
    with tempfile.TemporaryDirectory(prefix='bench-lock-manager-') as workdir:
        cluster = SimCluster(workdir)
        try:
            started = time.perf_counter()
            open_handles(cluster, args.handles, args.users)
            results['setup_s'] = time.perf_counter() - started
            config_path = cluster.write_config(pathlib.Path(workdir) / 'lock.ini')
            config = load_cluster_config(config_path)
            client = connect(config)
            raw_listings(client, args.handles)  # warm the emulator's and the connection's caches alike
            try:
                display = VirtualDisplay()
            except RuntimeError as exc:
                results['window_skipped'] = str(exc)
                display = contextlib.nullcontext()
            with display:
                results.update(run_rounds(client, config, config_path, args, timings, display))
        finally:
            cluster.stop()
    results.update(timings.best)
    results['load'] = os.getloadavg()[0]
    return results


def run_rounds(client, config, config_path, args, timings, display):
    """Every measure once a round, each right after a run of the baseline, so that each is
    sampled across the whole run: a load that comes and goes meets them all alike."""
    windows = isinstance(display, VirtualDisplay)
    warm = LockCluster(client)
    model_ready(warm, args.handles)
    bench = None
    if windows:
        bench = WindowBench(config)
        bench.refresh(args.handles)
        bench.longest_gap = 0.0

    def after_baseline(key, run):
        timings.time('baseline_s', lambda: raw_listings(client, args.handles))
        timings.time(key, run)

    def new_window_first_listing():
        first = WindowBench(config)
        try:
            started = time.perf_counter()
            first.refresh(args.handles)
            return time.perf_counter() - started
        finally:
            first.close()

    for _ in range(args.repeat):
        timings.time('handles_only_s', lambda: raw_handles(client, args.handles))
        after_baseline('model_first_s', lambda: model_ready(LockCluster(client), args.handles))
        after_baseline('model_refresh_s', lambda: model_ready(warm, args.handles))
        if windows:
            # the window's own set-up (Tk widgets, login) is not timed, only its first listing
            timings.time('baseline_s', lambda: raw_listings(client, args.handles))
            took = new_window_first_listing()
            timings.best['table_first_s'] = min(timings.best.get('table_first_s', took), took)
            after_baseline('table_refresh_s', lambda: bench.refresh(args.handles))
    if not windows:
        return {}
    gap = bench.longest_gap
    shown = []
    filtering = best_time(lambda: shown.append(bench.filter('user7')) or bench.filter(''), args.repeat)
    bench.close()
    return {
        'longest_gap_s': gap,
        'filter_s': filtering,
        'filter_rows': shown[0],
        'window_peak_mib': peak_of_child('--window-child', config_path, args),
        'standin_peak_mib': peak_of_child('--standin-child', config_path, args),
    }


# --- peak memory, each in a process of its own ---------------------------------------------------
def peak_of_child(mode, config_path, args):
    """Runs this module as `mode` in a new process on the current display; -> its peak RSS in MiB."""
    answer = subprocess.run(
        [sys.executable, '-m', 'bench.lockmanager', mode, str(config_path), '--handles', str(args.handles)],
        cwd=PROJECT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(answer.stdout.strip().splitlines()[-1])['peak_mib']


def own_peak_mib():
    """This process's peak resident memory (VmHWM), in MiB."""
    for line in pathlib.Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def window_child(config_path, expected):
    """The real window: a first listing and a refresh, until every row is in its table."""
    bench = WindowBench(load_cluster_config(config_path))
    for _ in range(2):
        bench.presenter.refresh()
        bench._pump_until(lambda: not bench.presenter.jobs.busy and not bench.window.filling)
    assert len(bench.presenter.snapshot.rows) == expected
    bench.close()
    print(json.dumps({'peak_mib': own_peak_mib()}))


def standin_child(config_path, expected):
    """A stand-in of the original Qumulo Lock Manager script (one tkinter script, no joins kept):
    log in, page the handles and the share-mode grants, one dict per row, every row inserted into a
    plain ttk.Treeview; listed twice (the first listing and a refresh), as the window is."""
    import tkinter as tk
    from tkinter import ttk

    client = connect(load_cluster_config(config_path))  # the SDK's RestClient, logged in
    root = tk.Tk()
    columns = ('path', 'file_id', 'owner', 'client', 'access', 'location')
    tree = ttk.Treeview(root, columns=columns, show='headings')
    for column in columns:
        tree.heading(column, text=column)
    tree.pack(fill='both', expand=True)
    for _ in range(2):
        handles = page_handles(client)
        grants = page_grants(client, 'share-mode')
        clients = {}
        for grant in grants:
            clients.setdefault(grant['file_id'], []).append(grant['owner_address'])
        rows = [
            {
                'path': h['handle_info'].get('path', ''),
                'file_id': h['file_number'],
                'owner': h['handle_info']['owner'],
                'client': ', '.join(clients.get(h['file_number'], ())),
                'access': ', '.join(h['handle_info']['access_mask']),
                'location': h['handle_info']['location'],
            }
            for h in handles
        ]
        tree.delete(*tree.get_children())
        for row in rows:
            tree.insert('', 'end', values=[row[c] for c in columns])
        root.update()
    assert len(tree.get_children()) == expected
    root.destroy()
    print(json.dumps({'peak_mib': own_peak_mib()}))


# --- the report ----------------------------------------------------------------------------------
def verdicts(results):
    """Each time measure as a ratio to the baseline; -> [(key, ratio, met)]."""
    base = results['baseline_s']
    keys = ('model_first_s', 'model_refresh_s', 'table_first_s', 'table_refresh_s')
    return [(key, results[key] / base, results[key] / base <= AIM_RATIO) for key in keys if key in results]


def report(results, args):
    base = results['baseline_s']
    lines = [
        f'lock manager, {args.handles:,} SMB handles of {args.users:,} users on the emulator '
        f'(best of {args.repeat}; setup {results["setup_s"]:.1f} s; load average {results["load"]:.1f} '
        f'on {os.cpu_count()} CPUs)',
        '',
        f'{"measure":<66}{"seconds":>9}{"x baseline":>12}',
    ]

    def row(label, seconds):
        lines.append(f'{label:<66}{seconds:>9.3f}{seconds / base:>12.2f}')

    row('baseline: raw SDK paging of handles, grants, sessions (no joins)', base)
    row('  of which the handles alone (resolve_paths)', results['handles_only_s'])
    row('model ready, first listing (empty name and path caches)', results['model_first_s'])
    row('model ready, refresh', results['model_refresh_s'])
    if 'window_skipped' in results:
        lines.append(f'table: not measured ({results["window_skipped"]})')
    else:
        row('table filled, first listing (new window)', results['table_first_s'])
        row('table filled, refresh', results['table_refresh_s'])
        row(f'filter typed: table refilled ({results["filter_rows"]:,} rows) and cleared', results['filter_s'])
        row('longest single event on the Tk thread during refreshes', results['longest_gap_s'])
    judged = verdicts(results)
    worst_key, worst, _ = max(judged, key=lambda v: v[1])
    verdict = 'met' if all(met for _, _, met in judged) else 'NOT met'
    lines += [
        '',
        f'aim: model and table within {AIM_RATIO:g}x the baseline, first listing and refresh: {verdict} '
        f'(worst {worst:.2f}x, {worst_key[:-2].replace("_", " ")})',
    ]
    if 'window_peak_mib' in results:
        window, standin = results['window_peak_mib'], results['standin_peak_mib']
        ratio = window / standin
        lines += [
            '',
            'peak memory (VmHWM), each in its own process on the same display, a first listing and a refresh:',
            f'  {"the window (lockmanager.gui)":<64}{window:>9.0f} MiB',
            f'  {"stand-in of the original script (a dict a row, ttk.Treeview)":<64}{standin:>9.0f} MiB',
            '  (the stand-in does what the original Qumulo Lock Manager script does; it is not its code)',
            f'aim: the window below the stand-in: {"met" if ratio < 1 else "NOT met"} ({ratio:.2f}x)',
        ]
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--handles', type=int, default=20000)
    parser.add_argument('--users', type=int, default=1000)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--json', action='store_true', help='print the figures as JSON')
    children = parser.add_mutually_exclusive_group()
    children.add_argument('--window-child', metavar='CONFIG', help=argparse.SUPPRESS)
    children.add_argument('--standin-child', metavar='CONFIG', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.window_child:
        return window_child(args.window_child, args.handles)
    if args.standin_child:
        return standin_child(args.standin_child, args.handles)
    results = measure(args)
    if not args.json:
        print(report(results, args))
        return None
    results['ratios'] = {key: round(ratio, 3) for key, ratio, _ in verdicts(results)}
    results['aim_met'] = all(met for _, _, met in verdicts(results))
    if 'window_peak_mib' in results:
        results['memory_ratio'] = round(results['window_peak_mib'] / results['standin_peak_mib'], 3)
    print(json.dumps(results, indent=2))
    return None


if __name__ == '__main__':
    main()
