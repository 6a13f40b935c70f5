"""Start and stop the emulated cluster as a real subprocess: for tests, benchmarks and the demo."""

import json
import os
import pathlib
import re
import select
import subprocess
import sys
import time
import ssl
import urllib.request

PROJECT = pathlib.Path(__file__).resolve().parents[2]
# Tests run as root: the SDK binds a privileged source port for 127.0.0.1/localhost, so the
# emulator listens on another loopback address.
SIM_HOST = '127.0.0.2'


class SimCluster:
    def __init__(self, workdir, keepalive=10.0, host=SIM_HOST):
        workdir = pathlib.Path(workdir)
        self.root = workdir / 'cluster'
        self.root.mkdir(parents=True, exist_ok=True)
        self.cert_path = workdir / 'sim-cert.pem'
        self.host = host
        self.keepalive = keepalive
        self.log_path = workdir / 'sim-qumulo.log'
        self._log = None
        self.port = self._start(0)
        self.url = f'https://{host}:{self.port}'

    def _start(self, port):
        self._log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(
            [
                sys.executable,
                '-m',
                'sim.qumulo',
                '--root',
                str(self.root),
                '--host',
                self.host,
                '--port',
                str(port),
                '--cert-out',
                str(self.cert_path),
                '--keepalive',
                str(self.keepalive),
            ],
            cwd=PROJECT,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        return self._read_port()

    def restart(self, down_s=0.0):
        """Stop the emulator, stay down `down_s` seconds, start again on the same port: what a
        cluster restart looks like to a client (connections reset, then refused, sessions gone;
        the file system and its locks kept). A new certificate is made, as at every start. The
        process is killed, not asked to stop: a node going down answers nothing more, where a
        graceful stop would still answer on connections already open."""
        self.stop(hard=True)
        time.sleep(down_s)
        deadline = time.monotonic() + 30
        while True:  # the port can stay busy for a moment after the old process exits
            try:
                self._start(self.port)
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _read_port(self):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline().decode()
                found = re.match(r'listening on https://\S+:(\d+)$', line.strip())
                if found:
                    return int(found.group(1))
                raise RuntimeError(f'unexpected first line from sim.qumulo: {line!r}')
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f'sim.qumulo did not start: {self.log_path.read_text()}')

    def control(self, path, body=None):
        """POST a JSON body to the /sim/ control surface; returns the decoded answer."""
        context = ssl.create_default_context(cafile=str(self.cert_path))
        request = urllib.request.Request(
            f'{self.url}/sim/{path.lstrip("/")}',
            method='POST',
            data=json.dumps(body or {}).encode(),
            headers={'Content-Type': 'application/json'},
        )
        with urllib.request.urlopen(request, context=context, timeout=30) as reply:
            data = reply.read()
        return json.loads(data) if data else None

    def client(self, username='admin', password='admin'):
        """A logged-in official SDK client."""
        from qumulo.rest_client import RestClient

        rc = RestClient(self.host, self.port, timeout=30)
        rc.login(username, password)
        return rc

    def write_config(self, path, **overrides):
        """A tool config file (the INI every tool reads: API_HOST, API_PORT, USERNAME, PASSWORD)
        pointing at this emulator, mode 0600."""
        values = {'API_HOST': self.host, 'API_PORT': str(self.port), 'USERNAME': 'admin', 'PASSWORD': 'admin'}
        values.update({k: str(v) for k, v in overrides.items() if v is not None})
        for key in [k for k, v in overrides.items() if v is None]:
            values.pop(key, None)
        text = '[DEFAULT]\n' + ''.join(f'{k} = {v}\n' for k, v in values.items())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        return pathlib.Path(path)

    def stop(self, hard=False):
        if self.proc.poll() is None and hard:
            self.proc.kill()
            self.proc.wait()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self._log.close()
