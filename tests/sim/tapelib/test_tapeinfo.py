"""The tapeinfo stand-in (sim/tapelib/tapeinfo.py): the drive's inquiry lines and its medium."""


def test_tapeinfo_reports_the_drive_serial_and_the_medium(library):
    empty = library.run('tapeinfo', '-f', library.drive)
    assert empty.returncode == 0
    assert empty.stdout.splitlines()[:11] == [
        'Product Type: Tape Drive',
        "Vendor ID: 'IBM     '",
        "Product ID: 'ULTRIUM-HH9     '",
        "Revision: 'Q3G3'",
        'Attached Changer API: No',
        "SerialNumber: '10WT000000'",
        'MinBlock: 1',
        'MaxBlock: 8388608',
        'SCSI ID: 0',
        'SCSI LUN: 0',
        'Ready: no',
    ]
    assert 'Medium Type: Not Loaded\n' in empty.stdout
    library.mtx('load', 1)
    loaded = library.run('tapeinfo', '-f', library.drive).stdout
    assert 'Ready: yes\n' in loaded and 'Density Code: 0x60\n' in loaded
    missing = library.run('tapeinfo', '-f', '/dev/nst9')
    assert (missing.returncode, missing.stderr) == (
        1,
        f"{library.root}/bin/tapeinfo: cannot open SCSI device '/dev/nst9' - No such file or directory\n",
    )
