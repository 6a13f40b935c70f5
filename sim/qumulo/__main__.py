"""python -m sim.qumulo --root DIR [--host 127.0.0.1] [--port 0]: an emulated Qumulo cluster."""

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading

from .models import Cluster
from .server import ClusterServer
from .tls import make_certificate, server_context


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='python -m sim.qumulo', description=__doc__)
    parser.add_argument('--root', required=True, help='directory that is the cluster file system')
    parser.add_argument('--host', default='127.0.0.1', help='address to listen on (default 127.0.0.1)')
    parser.add_argument('--port', type=int, default=0, help='port (default 0: any free port)')
    parser.add_argument('--cert-out', help='also write the server certificate (PEM) here')
    parser.add_argument(
        '--keepalive',
        type=float,
        default=10.0,
        help='seconds between keepalive comments on an idle notify stream (default 10)',
    )
    parser.add_argument('--debug', action='store_true', help='log every request to stderr')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        stream=sys.stderr,
        format='sim.qumulo %(levelname)s %(message)s',
    )
    if not os.path.isdir(args.root):
        print(f'error: --root {args.root} is not a directory', file=sys.stderr)
        return 2
    cert_dir = tempfile.mkdtemp(prefix='sim-qumulo-tls-')
    try:
        cert, key = make_certificate(args.host, cert_dir)
        if args.cert_out:
            shutil.copyfile(cert, args.cert_out)
        try:
            server = ClusterServer(
                (args.host, args.port), Cluster(args.root), server_context(cert, key), args.keepalive
            )
        except OSError as e:
            print(f'error: cannot listen on {args.host}:{args.port}: {e.strerror}', file=sys.stderr)
            return 1
        host, port = server.server_address[:2]
        shown = f'[{host}]' if ':' in host else host
        print(f'listening on https://{shown}:{port}', flush=True)
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        server.server_close()
        return 0
    finally:
        shutil.rmtree(cert_dir, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
