"""Client <-> service messages over the Unix socket: length-prefixed JSON frames, both ways.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON. The reader
always knows how much is still to come, so a message split across reads, or one whose size is an
exact multiple of a buffer, is read whole and never waited on forever (the two ways a reader that
waits for the end of the data hangs).

    request  {"command": "format", "args": {"barcode": "TPN001L9"}}
    reply    {"ok": true, "output": "queued task 4: format TPN001L9", "task": 4}
             {"ok": false, "error": "...", "code": "refused" | "failed"}

A task travels as the fields of Task (the `task` command, `queue --json`): the service's queue
stores tasks in that shape, and the client reads them back into it to follow a task.
"""

import json
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional

from common.errors import ToolError

HEADER = struct.Struct('>I')
MAX_FRAME = 64 * 1024 * 1024  # a reply: a queue listing of years of tasks fits; a corrupt length does not
MAX_REQUEST = 1024 * 1024  # a request is a command and its arguments (paths, task ids): never near this
TIMEOUT_S = 60.0
_CHUNK = 64 * 1024  # memory grows with the bytes that arrive, never with the size a header announces


QUEUED, RUNNING, DONE, FAILED, INTERRUPTED = 'queued', 'running', 'done', 'failed', 'interrupted'
CANCELLED = 'cancelled'  # by `pytarchive cancel`: a queued task never ran, a running one stopped
ENDED = (DONE, FAILED, INTERRUPTED, CANCELLED)


@dataclass(frozen=True)
class Task:
    """One task of the queue: what it is, how far it got and how it ended."""

    id: int
    kind: str
    args: Dict[str, Any]
    state: str  # QUEUED -> RUNNING -> DONE | FAILED | INTERRUPTED | CANCELLED (or QUEUED -> CANCELLED)
    error: Optional[str]
    result: Optional[str]
    bytes_done: int
    bytes_total: Optional[int]
    files_done: int
    files_total: Optional[int]
    attempts: int
    created: str
    started: Optional[str]
    finished: Optional[str]
    step: Optional[str] = None
    drive: Optional[int] = None  # the changer's number of the drive that runs (or ran) it

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


class ProtocolError(ToolError):
    """The other side sent something that is not a frame, or hung up mid-frame."""


class Closed(ProtocolError):
    """The other side hung up before sending anything: not an error for a server."""


def _recv_exactly(sock: socket.socket, size: int, started: bool, timeout: Optional[float], deadline: float) -> bytes:
    buffer = bytearray()
    while len(buffer) < size:
        try:
            if timeout is not None:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = sock.recv(min(_CHUNK, size - len(buffer)))
        except TimeoutError:
            if timeout is None:
                raise
            raise ProtocolError(f'no complete message within {timeout:g} s ({len(buffer)} of {size} bytes)') from None
        if not chunk:
            if not started and not buffer:
                raise Closed('connection closed')
            raise ProtocolError(f'connection closed after {len(buffer)} of {size} bytes')
        buffer += chunk
    return bytes(buffer)


def send_message(sock: socket.socket, message: Dict[str, Any]) -> None:
    body = json.dumps(message, separators=(',', ':')).encode('utf-8')
    if len(body) > MAX_FRAME:
        raise ProtocolError(f'message of {len(body)} bytes is larger than the {MAX_FRAME}-byte limit')
    sock.sendall(HEADER.pack(len(body)) + body)


def recv_message(sock: socket.socket, limit: int = MAX_FRAME, timeout: Optional[float] = None) -> Dict[str, Any]:
    """One message of at most `limit` bytes; with `timeout`, all of it within that many seconds
    (a per-read timeout alone lets a peer sending a byte now and then hold the reader for ever)."""
    deadline = time.monotonic() + (timeout or 0)
    (size,) = HEADER.unpack(_recv_exactly(sock, HEADER.size, False, timeout, deadline))
    if size > limit:
        raise ProtocolError(f'frame of {size} bytes announced, more than the {limit}-byte limit')
    body = _recv_exactly(sock, size, True, timeout, deadline)
    try:
        message = json.loads(body.decode('utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f'frame is not UTF-8 JSON: {exc}') from None
    if not isinstance(message, dict):
        raise ProtocolError(f'frame holds a JSON {type(message).__name__}, not an object')
    return message


def request(sock: socket.socket, command: str, args: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Send one request on a connected socket and return the reply."""
    try:
        send_message(sock, {'command': command, 'args': args or {}})
    except (BrokenPipeError, ConnectionResetError):
        pass  # a service that turns the connection away answers and hangs up without reading: read why
    reply = recv_message(sock)
    if not isinstance(reply.get('ok'), bool):
        raise ProtocolError('reply without an "ok" field')
    return reply


def ok(output: Any) -> Dict[str, Any]:
    return {'ok': True, 'output': output}


def failed(error: str, code: str = 'failed') -> Dict[str, Any]:
    return {'ok': False, 'error': error, 'code': code}
