"""Sample SMB opens for the emulator: who has what open, the picture the lock manager's demo,
tests and benchmark start from."""

from typing import List, Mapping

from sim.qumulo.launcher import SimCluster

# Who has what open: two users on one spreadsheet, a designer holding byte-range locks.
SAMPLE_OPENS = (
    {'path': '/finance/Q3.xlsx', 'user': 'alice', 'client': '10.0.0.5', 'access': 'write', 'byte_ranges': [[0, 4096]]},
    {'path': '/finance/Q3.xlsx', 'user': 'bob', 'client': '10.0.0.6', 'access': 'read'},
    {'path': '/finance/budget-2027.xlsx', 'user': 'alice', 'client': '10.0.0.5', 'access': 'write'},
    {
        'path': '/design/cover.psd',
        'user': 'carol',
        'client': '10.0.1.20',
        'access': 'write',
        'byte_ranges': [[0, 100], [512, 100]],
    },
    {'path': '/design/cover.psd', 'user': 'dave', 'client': '10.0.1.21', 'access': 'read'},
)


def open_sample_handles(cluster: SimCluster) -> List[Mapping]:
    """Open SAMPLE_OPENS on the emulator (one control call); returns the handles as listed."""
    return cluster.control('smb/open', list(SAMPLE_OPENS))
