"""The change-notify stream, read on its own connection with a line reader that hands every event
over the moment its line arrives (the SDK's ChangesIterator can hold one back; see the reference)."""

import json
import logging
import warnings
from urllib.parse import quote

import requests
import urllib3

log = logging.getLogger(__name__)

# Keepalives come at least every 30 s from a cluster; silence for longer means a dead connection.
READ_TIMEOUT_S = 75


class StreamError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class StreamEnded(Exception):
    """The stream stopped: the cluster ended it, the connection dropped, or it went silent."""


def base_url(config):
    host = f'[{config.host}]' if ':' in config.host else config.host
    return f'https://{host}:{config.port}'


class ChangeStream:
    def __init__(self, config, bearer_token, directory_id, recursive, types, clock=None):
        self._url = (f'{base_url(config)}/v1/files/{quote(str(directory_id), safe="")}/notify'
                     f'?recursive={"true" if recursive else "false"}')
        if types:
            self._url += '&filter=' + ','.join(sorted(types))
        self._headers = {'Authorization': f'Bearer {bearer_token}'}
        # The SDK does not verify the cluster's certificate; with CA_BUNDLE set, this verifies too.
        self._verify = config.ca_bundle or False
        self._clock = clock
        self._response = None

    def __enter__(self):
        with warnings.catch_warnings():
            # Not verifying is the SDK's default; the tool says so once at start instead.
            warnings.simplefilter('ignore', urllib3.exceptions.InsecureRequestWarning)
            response = requests.get(self._url, headers=self._headers, verify=self._verify, stream=True,
                                    timeout=(15, READ_TIMEOUT_S))
        if response.status_code != 200:
            message = _error_description(response)
            response.close()
            raise StreamError(response.status_code, message)
        if response.headers.get('Content-Type') != 'text/event-source':
            response.close()
            raise StreamError(0, f'the cluster answered the notify request with '
                                 f'{response.headers.get("Content-Type")!r}, not an event stream')
        if self._clock:
            self._clock.observe(response.headers.get('Date'))
        self._response = response
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._response is not None:
            self._response.close()

    def batches(self):
        """Yields each `data:` line's list of events; raises StreamEnded when the stream stops."""
        buffer = b''
        try:
            for chunk in self._response.iter_content(chunk_size=None):
                buffer += chunk
                *lines, buffer = buffer.split(b'\n')
                for line in lines:
                    if line.startswith(b'data: '):
                        try:
                            yield json.loads(line[6:])
                        except ValueError:
                            raise StreamEnded(f'malformed event line from the cluster: {line[:80]!r}')
                    elif line.startswith(b': ') and not line.startswith(b': keepalive'):
                        log.debug('notify: %s', line[2:].decode(errors='replace'))
        except (requests.RequestException, OSError, urllib3.exceptions.HTTPError) as e:
            raise StreamEnded(f'the notify connection dropped ({type(e).__name__})')
        raise StreamEnded('the cluster ended the notify stream')


def _error_description(response):
    try:
        body = response.json()
        return f'{body.get("error_class", "error")}: {body.get("description", "")}'.strip()
    except ValueError:
        return f'HTTP {response.status_code}'
