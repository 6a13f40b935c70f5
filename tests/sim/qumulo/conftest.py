"""Helpers for the emulated cluster's tests; the emulator itself is the `sim` fixture of
tests/conftest.py (one per test, its file system in the test's own directory)."""

import pytest
from qumulo.lib.request import RequestError


def make_files(root, names, data=b'x'):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def error_of(call):
    with pytest.raises(RequestError) as caught:
        call()
    return caught.value
