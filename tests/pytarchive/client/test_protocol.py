"""Framing: length-prefixed JSON both ways, whatever the size or how the bytes arrive."""

import json
import socket
import struct
import threading
import time
import tracemalloc

import pytest

from pytarchive.client import protocol
from pytarchive.client.protocol import (
    HEADER,
    MAX_FRAME,
    MAX_REQUEST,
    Closed,
    ProtocolError,
    recv_message,
    request,
    send_message,
)


@pytest.fixture
def pair():
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    left.settimeout(10)
    right.settimeout(10)
    yield left, right
    left.close()
    right.close()


def _json_of_size(size: int) -> dict:
    """A message whose encoded JSON is exactly `size` bytes."""
    overhead = len(json.dumps({'output': ''}, separators=(',', ':')))
    return {'output': 'x' * (size - overhead)}


@pytest.mark.parametrize('size', [13, 4096, 65536, 65536 * 4, 3 * 1024 * 1024 + 7])
def test_messages_of_any_size_and_exact_buffer_multiples_arrive_whole(pair, size):
    left, right = pair
    message = _json_of_size(size)
    assert len(json.dumps(message, separators=(',', ':'))) == size
    sender = threading.Thread(target=send_message, args=(left, message))
    sender.start()
    assert recv_message(right) == message
    sender.join()


def test_a_frame_dribbled_in_one_byte_at_a_time_is_read_whole(pair):
    left, right = pair
    body = json.dumps({'command': 'queue', 'args': {'json': True}}).encode()
    frame = HEADER.pack(len(body)) + body

    def dribble():
        for index in range(len(frame)):
            left.send(frame[index : index + 1])

    thread = threading.Thread(target=dribble)
    thread.start()
    assert recv_message(right) == {'command': 'queue', 'args': {'json': True}}
    thread.join()


def test_unicode_survives(pair):
    left, right = pair
    send_message(left, {'output': 'Größe: 5 TB — ✓'})
    assert recv_message(right) == {'output': 'Größe: 5 TB — ✓'}


def test_hang_up_before_a_frame_is_closed_and_mid_frame_is_an_error(pair):
    left, right = pair
    left.shutdown(socket.SHUT_WR)
    with pytest.raises(Closed):
        recv_message(right)
    a, b = socket.socketpair()
    a.sendall(struct.pack('>I', 100) + b'{"partial":')
    a.close()
    with pytest.raises(ProtocolError, match='connection closed after 11 of 100 bytes'):
        recv_message(b)
    b.close()


@pytest.mark.parametrize(
    'payload, message',
    [
        (
            struct.pack('>I', MAX_FRAME + 1),
            f'frame of {MAX_FRAME + 1} bytes announced, more than the {MAX_FRAME}-byte limit',
        ),
        (struct.pack('>I', 3) + b'\xff\xfe\x00', 'frame is not UTF-8 JSON'),
        (struct.pack('>I', 2) + b'[]', 'frame holds a JSON list, not an object'),
    ],
)
def test_bad_frames_are_refused(pair, payload, message):
    left, right = pair
    left.sendall(payload)
    with pytest.raises(ProtocolError, match=message):
        recv_message(right)


def test_oversized_messages_are_not_sent(pair, monkeypatch):
    monkeypatch.setattr(protocol, 'MAX_FRAME', 100)
    with pytest.raises(ProtocolError, match='larger than the 100-byte limit'):
        send_message(pair[0], {'output': 'x' * 200})


def test_request_sends_command_and_args_and_returns_the_reply(pair):
    left, right = pair

    def serve():
        received = recv_message(right)
        send_message(right, protocol.ok(f'got {received["command"]} {received["args"]}'))

    thread = threading.Thread(target=serve)
    thread.start()
    assert request(left, 'format', {'barcode': 'TPN001L9'}) == {
        'ok': True,
        'output': "got format {'barcode': 'TPN001L9'}",
    }
    thread.join()
    send_message(right, {'output': 'no ok field'})
    with pytest.raises(ProtocolError, match='reply without an "ok" field'):
        request(left, 'queue')


def test_a_request_larger_than_the_request_limit_is_refused_from_its_header(pair):
    left, right = pair
    left.sendall(struct.pack('>I', MAX_REQUEST + 1))
    with pytest.raises(
        ProtocolError, match=f'frame of {MAX_REQUEST + 1} bytes announced, more than the {MAX_REQUEST}-byte limit'
    ):
        recv_message(right, limit=MAX_REQUEST)


def test_memory_follows_the_bytes_received_not_the_size_announced(pair):
    """A header announcing 64 MiB followed by 1 kB and a hang-up: nothing near 64 MiB is allocated."""
    left, right = pair
    left.sendall(struct.pack('>I', MAX_FRAME) + b'x' * 1000)
    left.shutdown(socket.SHUT_WR)
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match=f'connection closed after 1000 of {MAX_FRAME} bytes'):
            recv_message(right)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024


def test_a_trickled_message_ends_at_its_overall_deadline(pair):
    """A byte a second keeps every single read within any per-read timeout: the deadline is for the whole."""
    left, right = pair
    stop = threading.Event()

    def trickle():
        left.sendall(struct.pack('>I', 100))
        while not stop.wait(0.2):
            left.send(b' ')

    thread = threading.Thread(target=trickle)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(ProtocolError, match=r'^no complete message within 1 s \(\d+ of 100 bytes\)$'):
            recv_message(right, timeout=1.0)
    finally:
        stop.set()
        thread.join()
    assert time.monotonic() - started < 5


def test_a_reply_sent_before_the_request_was_read_is_still_returned(pair):
    """A service that turns a connection away answers and hangs up without reading the request."""
    left, right = pair
    send_message(right, protocol.failed('too many connections from UID 1000: at most 8 at a time'))
    right.close()
    reply = request(left, 'queue', {'padding': 'x' * (4 * 1024 * 1024)})  # more than the socket buffer holds
    assert reply == protocol.failed('too many connections from UID 1000: at most 8 at a time')
