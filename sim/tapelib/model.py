"""The library's state and rules: slots, drives, tapes and pending faults. No I/O here."""

import dataclasses
from dataclasses import dataclass, field

from .sense import DESTINATION_FULL, ILLEGAL_REQUEST, REMOVAL_PREVENTED_BY_DRIVE, SOURCE_EMPTY, SenseError

STATE_VERSION = 1

# Element addresses as an IBM TS4300-class library reports them; mtx prints them in
# "MOVE MEDIUM from Element Address %d to %d Failed" and the 3B/0D, 3B/0E messages.
IMPORT_EXPORT_ADDRESS_BASE = 16
DRIVE_ADDRESS_BASE = 256
SLOT_ADDRESS_BASE = 4096


class LibraryError(Exception):
    """A request the model cannot carry out; the message says why in one line."""


@dataclass
class Tape:
    id: str  # the barcode, or NOBARCODE<n> for a cartridge without a label
    barcode: str | None
    formatted: bool = False
    volume_serial: str = ''
    volume_name: str = ''
    volume_uuid: str = ''
    format_time: str = ''
    baseline_used: int = 0  # bytes the empty file system uses, so data usage can be told apart
    generation: int = 0  # LTFS index generation: one more per index written at unmount
    full_at: int | None = None  # tape-full fault: the tape takes no more than this many data bytes
    flip_on_mount: list[str] = field(default_factory=list)  # flip-byte --on-next-mount: files to corrupt then

    @property
    def cleaning(self):
        return bool(self.barcode) and self.barcode.startswith('CLN')

    @property
    def label(self):
        return self.barcode or self.id


@dataclass
class Slot:
    number: int  # storage element number as mtx counts it, from 1
    address: int
    import_export: bool = False
    tape: str | None = None


@dataclass
class LtfsMount:
    """A running ltfs for a drive: its process, the mount point it serves and the tape image's mount."""

    pid: int
    mountpoint: str
    private: str  # where the tape image itself is loop-mounted
    device_numbers: str  # major:minor of that loop device, to recognise our mounts
    eject: bool = False


@dataclass
class Drive:
    index: int  # data transfer element number as mtx counts it, from 0
    address: int
    serial: str
    device: str
    tape: str | None = None
    source_slot: int | None = None
    mount: LtfsMount | None = None


@dataclass
class MtxFault:
    sense_key: int
    asc: int
    ascq: int
    remaining: int


@dataclass
class Library:
    root: str
    capacity: int
    index_write_seconds: float
    changer_device: str
    slots: list[Slot]
    drives: list[Drive]
    tapes: dict[str, Tape]
    mtx_faults: list[MtxFault] = field(default_factory=list)
    mount_failures: int = 0

    # --- lookups -------------------------------------------------------------------------------

    @property
    def import_export_count(self):
        return sum(1 for slot in self.slots if slot.import_export)

    def element(self, address):
        for element in [*self.slots, *self.drives]:
            if element.address == address:
                return element
        raise LibraryError(f'no element at address {address}')

    def drive_for(self, name):
        """The drive a device path or drive serial names (None if none does)."""
        for drive in self.drives:
            if name in (drive.device, drive.serial):
                return drive
        return None

    def tape_named(self, name):
        """A tape by barcode or internal id."""
        for tape in self.tapes.values():
            if name in (tape.id, tape.barcode):
                return tape
        raise LibraryError(
            f'no tape {name!r} in this library (tapes: {", ".join(tape.label for tape in self.tapes.values())})'
        )

    def drive_holding(self, tape):
        return next((drive for drive in self.drives if drive.tape == tape.id), None)

    # --- the changer ---------------------------------------------------------------------------

    def move(self, source_address, destination_address):
        """MOVE MEDIUM as the library executes it; refusals raise SenseError like the device answers.

        An injected mtx fault is consumed first: it stands for a library that fails the next move
        whatever is asked of it."""
        fault = self._take_mtx_fault()
        if fault:
            raise SenseError(fault.sense_key, fault.asc, fault.ascq)
        source = self.element(source_address)
        destination = self.element(destination_address)
        if source.tape is None:
            raise SenseError(ILLEGAL_REQUEST, *SOURCE_EMPTY)
        if isinstance(source, Drive) and source.mount is not None:
            # ltfs holds PREVENT MEDIUM REMOVAL until its index is on tape: a real library then refuses
            # the move with ASC/ASCQ 53/03 (medium removal prevented).
            raise SenseError(ILLEGAL_REQUEST, *REMOVAL_PREVENTED_BY_DRIVE)
        if destination.tape is not None:
            raise SenseError(ILLEGAL_REQUEST, *DESTINATION_FULL)
        destination.tape, source.tape = source.tape, None
        if isinstance(destination, Drive):
            destination.source_slot = source.number if isinstance(source, Slot) else None
        if isinstance(source, Drive):
            source.source_slot = None

    def _take_mtx_fault(self):
        if not self.mtx_faults:
            return None
        fault = self.mtx_faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            self.mtx_faults.pop(0)
        return fault

    def take_mount_failure(self):
        if self.mount_failures <= 0:
            return False
        self.mount_failures -= 1
        return True

    # --- persistence ---------------------------------------------------------------------------

    def to_json(self):
        return {'version': STATE_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data):
        if data.get('version') != STATE_VERSION:
            raise LibraryError(f'state file version {data.get("version")!r} is not {STATE_VERSION}')
        drives = []
        for raw in data['drives']:
            mount = LtfsMount(**raw['mount']) if raw.get('mount') else None
            drives.append(Drive(**{**raw, 'mount': mount}))
        return cls(
            root=data['root'],
            capacity=data['capacity'],
            index_write_seconds=data['index_write_seconds'],
            changer_device=data['changer_device'],
            slots=[Slot(**raw) for raw in data['slots']],
            drives=drives,
            tapes={key: Tape(**raw) for key, raw in data['tapes'].items()},
            mtx_faults=[MtxFault(**raw) for raw in data['mtx_faults']],
            mount_failures=data['mount_failures'],
        )


def drive_serial(index):
    """Serials in the style of an IBM LTO drive: 10WT000000, 10WT000010, ..."""
    return f'10WT{index:05d}0'


def new_library(root, *, slots, drives, tapes, capacity, import_export=0, index_write_seconds=0.5):
    """A library with the tapes (barcodes, None for an unlabelled cartridge) in slots 1, 2, ...

    Import/export slots are the last storage elements and count among the slots, as mtx reports."""
    if not 1 <= drives <= 16:
        raise LibraryError(f'--drives {drives}: a library has 1 to 16 drives here')
    if import_export < 0 or import_export >= slots:
        raise LibraryError(
            f'--import-export {import_export}: must be 0 to {slots - 1} (they count among the {slots} slots)'
        )
    if len(tapes) > slots:
        raise LibraryError(f'{len(tapes)} tapes do not fit into {slots} slots')
    labelled = [barcode for barcode in tapes if barcode]
    duplicates = sorted({barcode for barcode in labelled if labelled.count(barcode) > 1})
    if duplicates:
        raise LibraryError(f'barcode given twice: {", ".join(duplicates)}')
    storage = slots - import_export
    slot_list = []
    for number in range(1, slots + 1):
        if number <= storage:
            slot_list.append(Slot(number, SLOT_ADDRESS_BASE + number - 1))
        else:
            slot_list.append(Slot(number, IMPORT_EXPORT_ADDRESS_BASE + number - storage - 1, import_export=True))
    tape_map = {}
    unlabelled = 0
    for slot, barcode in zip(slot_list, tapes):
        if barcode is None:
            unlabelled += 1
            tape = Tape(id=f'NOBARCODE{unlabelled}', barcode=None)
        else:
            tape = Tape(id=barcode, barcode=barcode)
        tape_map[tape.id] = tape
        slot.tape = tape.id
    drive_list = [
        Drive(index, DRIVE_ADDRESS_BASE + index, drive_serial(index), f'{root}/dev/nst{index}')
        for index in range(drives)
    ]
    return Library(
        root=root,
        capacity=capacity,
        index_write_seconds=index_write_seconds,
        changer_device=f'{root}/dev/sch0',
        slots=slot_list,
        drives=drive_list,
        tapes=tape_map,
    )
