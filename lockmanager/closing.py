"""What a close is about to do (the confirmation names files and users) and how it went."""

from dataclasses import dataclass
from typing import Iterable, List, Sequence, Set, Tuple, Union

from lockmanager.model import HandleRow, SessionRow, plural

# A confirmation lists this many handles; more would push the question off the screen.
LISTED_IN_QUESTION = 12

WARNING = (
    'The client programs keep these files open on their side: unsaved work in them may be '
    'lost, and they may need to reopen the files.'
)


@dataclass(frozen=True)
class ClosePlan:
    rows: Tuple[HandleRow, ...]
    scope: str  # 'the selected handles', 'all handles of user alice', ...

    @classmethod
    def of(cls, rows: Iterable[HandleRow], scope: str) -> 'ClosePlan':
        unique = {row.location: row for row in rows}
        return cls(tuple(unique.values()), scope)

    @classmethod
    def for_users(cls, rows: Iterable[HandleRow], users: Set[str]) -> 'ClosePlan':
        return cls.of((row for row in rows if row.user in users), f'all handles of {_named("user", users)}')

    @classmethod
    def for_clients(cls, rows: Iterable[HandleRow], clients: Set[str]) -> 'ClosePlan':
        return cls.of((row for row in rows if row.client in clients), f'all handles of {_named("client", clients)}')

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def title(self) -> str:
        return f'Close {plural(len(self.rows), "file handle")}?'

    @property
    def users(self) -> List[str]:
        return sorted({row.user for row in self.rows}, key=str.casefold)

    def question(self) -> str:
        """The confirmation text: which files, whose, and what the users may lose."""
        files = len({row.file_id for row in self.rows})
        lines = [
            f'Close {self.scope}: {plural(len(self.rows), "handle")} on {plural(files, "file")}, '
            f'held by {", ".join(self.users)}.',
            '',
        ]
        shown = sorted(self.rows, key=lambda r: (r.path.casefold(), r.user.casefold()))
        lines += [f'  {row.path}  ({row.who}, {row.access})' for row in shown[:LISTED_IN_QUESTION]]
        if len(shown) > LISTED_IN_QUESTION:
            lines.append(f'  ... and {len(shown) - LISTED_IN_QUESTION} more')
        lines += ['', WARNING]
        return '\n'.join(lines)


@dataclass(frozen=True)
class SessionPlan:
    """Closing whole SMB sessions: every file each holds is closed with it."""

    rows: Tuple[SessionRow, ...]
    scope: str

    @classmethod
    def of(cls, rows: Iterable[SessionRow], scope: str) -> 'SessionPlan':
        unique = {row.location: row for row in rows}
        return cls(tuple(unique.values()), scope)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def title(self) -> str:
        return f'Close {plural(len(self.rows), "SMB session")}?'

    def question(self) -> str:
        users = sorted({row.user for row in self.rows}, key=str.casefold)
        files = sum(row.open_handles for row in self.rows)
        lines = [
            f'Close {self.scope}: {plural(len(self.rows), "session")} of {", ".join(users)}, '
            f'holding {plural(files, "open file")}.',
            '',
        ]
        shown = sorted(self.rows, key=lambda r: (r.user.casefold(), r.client))
        lines += [
            f'  {row.who}: {", ".join(row.shares) or "no share"}, {plural(row.open_handles, "open file")}'
            for row in shown[:LISTED_IN_QUESTION]
        ]
        if len(shown) > LISTED_IN_QUESTION:
            lines.append(f'  ... and {len(shown) - LISTED_IN_QUESTION} more')
        lines += ['', 'Every file these sessions hold is closed with them. ' + WARNING]
        return '\n'.join(lines)


@dataclass(frozen=True)
class CloseOutcome:
    row: Union[HandleRow, SessionRow]
    closed: bool
    problem: str = ''  # why it was not closed, in words an admin can act on

    def describe(self) -> str:
        what = self.row.label
        return f'closed {what}' if self.closed else f'not closed: {what}: {self.problem}'


def summary(outcomes: Sequence[CloseOutcome], noun: str = 'handle') -> str:
    closed = sum(1 for outcome in outcomes if outcome.closed)
    text = f'closed {closed} of {plural(len(outcomes), noun)}'
    failed = len(outcomes) - closed
    return text + (f'; {failed} failed' if failed else '')


def _named(noun: str, names: Set[str]) -> str:
    return f'{noun}{"s" if len(names) != 1 else ""} {", ".join(sorted(names, key=str.casefold))}'
