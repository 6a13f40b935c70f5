"""Client <-> service messages over the Unix socket: length-prefixed JSON frames, both ways.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON. The reader
always knows how much is still to come, so a message split across reads, or one whose size is an
exact multiple of a buffer, is read whole and never waited on forever (the seed's two bugs).

    request  {"command": "format", "args": {"barcode": "TPN001L9"}}
    reply    {"ok": true, "output": "queued task 4: format TPN001L9"}
             {"ok": false, "error": "...", "code": "refused" | "failed"}
"""

import json
import socket
import struct
from typing import Any, Dict, Optional

from common.errors import ToolError

HEADER = struct.Struct('>I')
MAX_FRAME = 64 * 1024 * 1024  # a queue listing of years of tasks fits; a corrupt length does not
TIMEOUT_S = 60.0


class ProtocolError(ToolError):
    """The other side sent something that is not a frame, or hung up mid-frame."""


class Closed(ProtocolError):
    """The other side hung up before sending anything: not an error for a server."""


def _recv_exactly(sock: socket.socket, size: int, started: bool) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    received = 0
    while received < size:
        count = sock.recv_into(view[received:], size - received)
        if count == 0:
            if not started and received == 0:
                raise Closed('connection closed')
            raise ProtocolError(f'connection closed after {received} of {size} bytes')
        received += count
    return bytes(buffer)


def send_message(sock: socket.socket, message: Dict[str, Any]) -> None:
    body = json.dumps(message, separators=(',', ':')).encode('utf-8')
    if len(body) > MAX_FRAME:
        raise ProtocolError(f'message of {len(body)} bytes is larger than the {MAX_FRAME}-byte limit')
    sock.sendall(HEADER.pack(len(body)) + body)


def recv_message(sock: socket.socket) -> Dict[str, Any]:
    (size,) = HEADER.unpack(_recv_exactly(sock, HEADER.size, started=False))
    if size > MAX_FRAME:
        raise ProtocolError(f'frame of {size} bytes announced, more than the {MAX_FRAME}-byte limit')
    body = _recv_exactly(sock, size, started=True)
    try:
        message = json.loads(body.decode('utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f'frame is not UTF-8 JSON: {exc}') from None
    if not isinstance(message, dict):
        raise ProtocolError(f'frame holds a JSON {type(message).__name__}, not an object')
    return message


def request(sock: socket.socket, command: str, args: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Send one request on a connected socket and return the reply."""
    send_message(sock, {'command': command, 'args': args or {}})
    reply = recv_message(sock)
    if not isinstance(reply.get('ok'), bool):
        raise ProtocolError('reply without an "ok" field')
    return reply


def ok(output: Any) -> Dict[str, Any]:
    return {'ok': True, 'output': output}


def failed(error: str, code: str = 'failed') -> Dict[str, Any]:
    return {'ok': False, 'error': error, 'code': code}
