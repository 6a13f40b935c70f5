"""WORM file locks (sim/qumulo/models/locks.py): a retention period only extended, legal holds,
locked files refused."""

from tests.sim.qumulo.conftest import error_of, make_files


def test_retention_can_be_extended_never_shortened_or_removed(sim):
    make_files(sim.root, ['r.txt'])
    rc = sim.client()
    lock = rc.fs.modify_file_lock(path='/r.txt', retention_period='2031-12-31T00:00:00Z')['lock']
    assert lock == {'legal_hold': False, 'retention_period': '2031-12-31T00:00:00Z'}
    for shorter in ('2030-01-01T00:00:00Z', ''):
        assert error_of(lambda: rc.fs.modify_file_lock(path='/r.txt', retention_period=shorter)).status_code == 400
    longer = rc.fs.modify_file_lock(path='/r.txt', retention_period='2032-01-01T00:00:00.5Z')['lock']
    assert longer['retention_period'] == '2032-01-01T00:00:00.500000000Z'
    attrs = rc.fs.get_file_attr(path='/r.txt', retrieve_file_lock=True)
    assert attrs['lock']['retention_period'] == '2032-01-01T00:00:00.500000000Z'


def test_legal_hold_sets_and_removes_and_only_files_lock(sim):
    make_files(sim.root, ['d/h.txt'])
    rc = sim.client()
    assert rc.fs.modify_file_lock(path='/d/h.txt', legal_hold=True)['lock']['legal_hold'] is True
    assert rc.fs.modify_file_lock(path='/d/h.txt', legal_hold=False)['lock']['legal_hold'] is False
    error = error_of(lambda: rc.fs.modify_file_lock(path='/d', legal_hold=True))
    assert error.status_code == 400 and error.error_class == 'fs_not_a_file_error'


def test_locked_file_cannot_be_written_or_deleted_through_the_api(sim):
    make_files(sim.root, ['w.txt', 'free.txt'], b'original')
    rc = sim.client()
    rc.fs.modify_file_lock(path='/w.txt', legal_hold=True)
    for call in (lambda: rc.fs.delete(path='/w.txt'), lambda: rc.fs.set_file_attr(path='/w.txt', size=0)):
        assert error_of(call).status_code == 403
    assert (sim.root / 'w.txt').read_bytes() == b'original'
    rc.fs.delete(path='/free.txt')
    assert not (sim.root / 'free.txt').exists()
