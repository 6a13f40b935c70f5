"""Reverse DNS as the cluster sees it: the names of client addresses.

The emulator asks no DNS server. An address has a name only once the control surface registered
one (`POST /sim/dns`); `POST /v1/dns/resolve-ips-to-names` then answers it `OK` with that name, any
other well-formed address `NOT_FOUND` (a client without a reverse record), and a string that is
not an IP address `ERROR`, each with the hostname "" when there is none.
"""

import ipaddress
import threading

from ..errors import bad_request


class Dns:
    def __init__(self):
        self._names = {}  # normalised address -> hostname
        self._lock = threading.Lock()

    def register(self, entries):
        """entries: {"ip_address", "hostname"} or a list of them; a later name for an address
        replaces the earlier one. -> the number registered."""
        entries = entries if isinstance(entries, list) else [entries]
        parsed = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get('hostname'), str) or not entry['hostname']:
                raise bad_request('/sim/dns needs {"ip_address": "10.0.0.5", "hostname": "name"} (or a list of them)')
            address = _address(entry.get('ip_address'))
            if address is None:
                raise bad_request(f'/sim/dns: {entry.get("ip_address")!r} is not an IP address')
            parsed.append((address, entry['hostname']))
        with self._lock:
            self._names.update(parsed)
        return len(parsed)

    def resolve_ip(self, text):
        address = _address(text)
        if address is None:
            return {'ip_address': text, 'hostname': '', 'result': 'ERROR'}
        name = self._names.get(address)
        return {'ip_address': text, 'hostname': name or '', 'result': 'OK' if name else 'NOT_FOUND'}


def _address(text):
    if not isinstance(text, str):
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None
