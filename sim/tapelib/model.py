"""The library's state and rules: slots, drives, tapes and pending faults. No I/O here.

This is what only the robot knows: which cartridge sits in which element. What is on a cartridge
belongs to the real LTFS (its `file` tape backend keeps each cartridge in a folder, see cartridge.py)."""

import dataclasses
from dataclasses import dataclass, field

from .sense import DESTINATION_FULL, ILLEGAL_REQUEST, SOURCE_EMPTY, SenseError

STATE_VERSION = 2

# Element addresses as an IBM TS4300-class library reports them; mtx prints them in
# "MOVE MEDIUM from Element Address %d to %d Failed" and the 3B/0D, 3B/0E messages.
IMPORT_EXPORT_ADDRESS_BASE = 16
DRIVE_ADDRESS_BASE = 256
SLOT_ADDRESS_BASE = 4096


class LibraryError(Exception):
    """A request the model cannot carry out; the message says why in one line."""


@dataclass
class Tape:
    id: str  # the barcode, or NOBARCODE<n> for a cartridge without a label; also its folder's name
    barcode: str | None

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
class Drive:
    index: int  # data transfer element number as mtx counts it, from 0
    address: int
    serial: str
    device: str  # the `file` backend's drive file: ltfs's devname, and the path tapeinfo opens
    tape: str | None = None
    source_slot: int | None = None


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
    changer_device: str
    slots: list[Slot]
    drives: list[Drive]
    tapes: dict[str, Tape]
    mtx_faults: list[MtxFault] = field(default_factory=list)

    # --- lookups -------------------------------------------------------------------------------

    @property
    def import_export_count(self):
        return sum(1 for slot in self.slots if slot.import_export)

    def element(self, address):
        for element in [*self.slots, *self.drives]:
            if element.address == address:
                return element
        raise LibraryError(f'no element at address {address}')

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

    def slot_holding(self, tape):
        return next((slot for slot in self.slots if slot.tape == tape.id), None)

    # --- the changer ---------------------------------------------------------------------------

    def move(self, source_address, destination_address):
        """MOVE MEDIUM as the library executes it; refusals raise SenseError like the device answers.

        An injected mtx fault is consumed first: it stands for a library that fails the next move
        whatever is asked of it. A drive that a process holds is the caller's check (it needs /proc)."""
        fault = self._take_mtx_fault()
        if fault:
            raise SenseError(fault.sense_key, fault.asc, fault.ascq)
        source = self.element(source_address)
        destination = self.element(destination_address)
        if source.tape is None:
            raise SenseError(ILLEGAL_REQUEST, *SOURCE_EMPTY)
        if destination.tape is not None:
            raise SenseError(ILLEGAL_REQUEST, *DESTINATION_FULL)
        destination.tape, source.tape = source.tape, None
        if isinstance(destination, Drive):
            destination.source_slot = source.number if isinstance(source, Slot) else None
        if isinstance(source, Drive):
            source.source_slot = None

    def move_by_hand(self, tape, slot_number):
        """An operator opens the door and puts a tape elsewhere: the library only sees it there."""
        slot = next((slot for slot in self.slots if slot.number == slot_number), None)
        if slot is None:
            raise LibraryError(f'no slot {slot_number} (slots 1-{len(self.slots)})')
        if slot.tape is not None:
            raise LibraryError(f'slot {slot_number} already holds {self.tapes[slot.tape].label}')
        holder = self.drive_holding(tape) or self.slot_holding(tape)
        if isinstance(holder, Drive):
            raise LibraryError(f'{tape.label} is in drive {holder.index}: a tape in a drive is moved by the robot')
        holder.tape, slot.tape = None, tape.id

    def _take_mtx_fault(self):
        if not self.mtx_faults:
            return None
        fault = self.mtx_faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            self.mtx_faults.pop(0)
        return fault

    # --- persistence ---------------------------------------------------------------------------

    def to_json(self):
        return {'version': STATE_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data):
        if data.get('version') != STATE_VERSION:
            raise LibraryError(f'state file version {data.get("version")!r} is not {STATE_VERSION}')
        return cls(
            root=data['root'],
            capacity=data['capacity'],
            changer_device=data['changer_device'],
            slots=[Slot(**raw) for raw in data['slots']],
            drives=[Drive(**raw) for raw in data['drives']],
            tapes={key: Tape(**raw) for key, raw in data['tapes'].items()},
            mtx_faults=[MtxFault(**raw) for raw in data['mtx_faults']],
        )


def drive_serial(index):
    """Serials in the style of an IBM LTO drive: 10WT000000, 10WT000010, ..."""
    return f'10WT{index:05d}0'


def new_library(root, *, slots, drives, tapes, capacity, drive_device, import_export=0):
    """A library with the tapes (barcodes, None for an unlabelled cartridge) in slots 1, 2, ...

    drive_device(serial) names a drive's device. Import/export slots are the last storage elements
    and count among the slots, as mtx reports."""
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
        Drive(index, DRIVE_ADDRESS_BASE + index, drive_serial(index), drive_device(drive_serial(index)))
        for index in range(drives)
    ]
    return Library(
        root=root,
        capacity=capacity,
        changer_device=f'{root}/dev/sch0',
        slots=slot_list,
        drives=drive_list,
        tapes=tape_map,
    )
