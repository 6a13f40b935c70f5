"""pytarchive.transfer: copies and hashes are byte-exact BLAKE3, errors come back as they happened."""

import contextlib
import errno
import os
import subprocess

import blake3
import pytest

from pytarchive import transfer

B = transfer.BUFFER
SIZES = [0, 1, 4096, B - 1, B, B + 1, 2 * B, 3 * B + 12345]


def blake3_of(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


@contextlib.contextmanager
def tiny_filesystem(path):
    """A 1 MiB tmpfs at path (the tests run as root), unmounted afterwards."""
    path.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(['umount', str(path)], check=True)


@pytest.mark.parametrize('size', SIZES)
def test_copy_file_reproduces_the_bytes_and_returns_their_blake3(tmp_path, size):
    data = os.urandom(size)
    (tmp_path / 'source').write_bytes(data)

    digest = transfer.copy_file(str(tmp_path / 'source'), str(tmp_path / 'copy'))

    assert (tmp_path / 'copy').read_bytes() == data
    assert digest == blake3_of(data)


def test_copy_file_truncates_an_existing_destination(tmp_path):
    (tmp_path / 'source').write_bytes(b'short')
    (tmp_path / 'copy').write_bytes(b'x' * (B + 10))

    transfer.copy_file(str(tmp_path / 'source'), str(tmp_path / 'copy'))

    assert (tmp_path / 'copy').read_bytes() == b'short'


def test_copy_file_of_a_missing_source_raises_and_creates_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        transfer.copy_file(str(tmp_path / 'missing'), str(tmp_path / 'copy'))
    assert not (tmp_path / 'copy').exists()


@pytest.mark.root  # mounts a tmpfs
@pytest.mark.parametrize('size', [B - 1, 3 * B])
def test_a_full_destination_raises_enospc_as_an_oserror(tmp_path, size):
    # A file that fits the buffer (written by the caller's thread) and one written by the helper thread.
    (tmp_path / 'source').write_bytes(os.urandom(size))
    with tiny_filesystem(tmp_path / 'full') as full:
        with pytest.raises(OSError) as raised:
            transfer.copy_file(str(tmp_path / 'source'), str(full / 'copy'))
        assert raised.value.errno == errno.ENOSPC
        # The same thread copies on afterwards: nothing was left half-done in the module.
        (full / 'copy').unlink()
        assert transfer.copy_file(str(tmp_path / 'source'), os.devnull) == blake3_of((tmp_path / 'source').read_bytes())


@pytest.mark.parametrize('size', SIZES)
def test_hash_file_is_the_blake3_of_the_bytes(tmp_path, size):
    data = os.urandom(size)
    (tmp_path / 'file').write_bytes(data)
    assert transfer.hash_file(str(tmp_path / 'file')) == blake3_of(data)


def test_hash_files_answers_in_input_order_with_errors_in_place(tmp_path):
    contents = {}
    paths = []
    for number in range(600):  # big files among small ones
        path = str(tmp_path / f'f{number}')
        if number == 250:
            paths.append(str(tmp_path / 'missing'))
        size = B + 7 if number % 97 == 0 else number
        contents[path] = os.urandom(size)
        with open(path, 'wb') as file:
            file.write(contents[path])
        paths.append(path)

    results = list(transfer.hash_files(path for path in paths))

    assert [path for path, _ in results] == paths
    for path, result in results:
        if path.endswith('missing'):
            assert isinstance(result, FileNotFoundError) and result.errno == errno.ENOENT
        else:
            assert result == blake3_of(contents[path])


def test_hash_files_of_nothing_is_nothing():
    assert list(transfer.hash_files([])) == []


def test_hash_files_can_be_abandoned_early(tmp_path):
    (tmp_path / 'f').write_bytes(b'data')
    hashed = []

    def paths():
        for _ in range(100_000):
            hashed.append(1)
            yield str(tmp_path / 'f')

    results = transfer.hash_files(paths())
    assert [next(results) for _ in range(5)] == [(str(tmp_path / 'f'), blake3_of(b'data'))] * 5
    results.close()
    assert len(hashed) == 5  # the remaining paths are not even taken from the walk


def test_hash_files_passes_on_a_failing_walk_after_the_paths_before_it(tmp_path):
    (tmp_path / 'f').write_bytes(b'data')

    def walk():
        yield from [str(tmp_path / 'f')] * 40
        raise PermissionError(errno.EACCES, 'Permission denied', 'some/dir')

    results = transfer.hash_files(walk())
    assert len([next(results) for _ in range(40)]) == 40
    with pytest.raises(PermissionError):
        next(results)


def test_a_big_copy_reports_its_buffers_and_can_be_stopped_between_them(tmp_path):
    source = tmp_path / 'big'
    source.write_bytes(os.urandom(3 * transfer.BUFFER + 5))
    seen = []
    digest = transfer.copy_file(str(source), str(tmp_path / 'copy'), on_chunk=seen.append)
    assert seen == [transfer.BUFFER] * 3 and digest == blake3.blake3(source.read_bytes()).hexdigest()

    class Stop(Exception):
        pass

    def stop_after_first(size):
        raise Stop()

    with pytest.raises(Stop):
        transfer.copy_file(str(source), str(tmp_path / 'stopped'), on_chunk=stop_after_first)
    assert (tmp_path / 'stopped').stat().st_size < source.stat().st_size
    hashed = []
    assert transfer.hash_file(str(source), on_chunk=hashed.append) == digest and sum(hashed) == source.stat().st_size


def _once(action):
    """An on_chunk callback that runs action the first time the copy reports a buffer (mid-copy)."""
    done = []

    def on_chunk(_size):
        if not done:
            done.append(action())

    return on_chunk


def _write_at(path, offset, data):
    with open(path, 'r+b') as file:
        file.seek(offset)
        file.write(data)


def _replace(path):
    replacement = path.with_name('replacement')
    replacement.write_bytes(path.read_bytes())
    os.replace(replacement, path)  # how editors save: a new file renamed over the old name


@pytest.mark.parametrize(
    'change',
    [
        lambda source: _write_at(source, 0, b'already copied, written again'),
        lambda source: _write_at(source, 3 * B, b'not yet copied'),
        lambda source: os.truncate(source, B),
        lambda source: os.chmod(source, 0o600),  # metadata only: the ctime moves
        _replace,
        os.unlink,
    ],
    ids=['write-behind', 'write-ahead', 'truncate', 'chmod', 'replaced', 'deleted'],
)
def test_a_source_changed_during_its_copy_is_never_returned_as_a_copy(tmp_path, change):
    source = tmp_path / 'source'
    source.write_bytes(os.urandom(4 * B))
    source.chmod(0o644)

    with pytest.raises(transfer.SourceChanged) as raised:
        transfer.copy_file(str(source), str(tmp_path / 'copy'), on_chunk=_once(lambda: change(source)))

    assert raised.value.path == str(source) and 'changed while being copied' in str(raised.value)


def test_a_source_that_is_a_link_is_not_followed(tmp_path):
    (tmp_path / 'secret').write_bytes(b'not to be copied through a link')
    (tmp_path / 'link').symlink_to(tmp_path / 'secret')
    with pytest.raises(OSError) as raised:
        transfer.copy_file(str(tmp_path / 'link'), str(tmp_path / 'copy'))
    assert raised.value.errno == errno.ELOOP


def test_copy_range_copies_and_hashes_the_bytes_asked_and_feeds_the_whole_file_hasher(tmp_path):
    source = tmp_path / 'big'
    data = os.urandom(3 * transfer.BUFFER + 123)
    source.write_bytes(data)
    whole = blake3.blake3()
    first = transfer.copy_range(str(source), str(tmp_path / 'piece 1'), 0, 5_000_000, whole)
    assert transfer.hash_range(str(source), 5_000_000, len(data) - 5_000_000, whole) == (
        blake3.blake3(data[5_000_000:]).hexdigest()
    )
    assert (tmp_path / 'piece 1').read_bytes() == data[:5_000_000]
    assert first == blake3.blake3(data[:5_000_000]).hexdigest()
    assert whole.hexdigest() == blake3.blake3(data).hexdigest()  # the pieces in order make the file
    with pytest.raises(transfer.SourceChanged):  # the file is shorter than the range: it changed
        transfer.copy_range(str(source), str(tmp_path / 'past the end'), len(data) - 10, 20, blake3.blake3())
