"""The window's size and column widths, remembered between runs in a small JSON file.

$XDG_CONFIG_HOME/qumulo_lock_manager/window.json (~/.config/... by default): written when the
window closes, read when it opens. It only holds looks, so a missing, unreadable or damaged file
is ignored, as is any value in it that does not make sense.
"""

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional

log = logging.getLogger(__name__)

SIZE = re.compile(r'^([0-9]{3,5})x([0-9]{3,5})$')
WIDTHS = range(20, 4001)  # pixels a column may be


def settings_path(environ: Mapping[str, str] = os.environ) -> str:
    # The XDG spec says a relative $XDG_CONFIG_HOME is to be ignored.
    base = environ.get('XDG_CONFIG_HOME', '')
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser('~'), '.config')
    return os.path.join(base, 'qumulo_lock_manager', 'window.json')


@dataclass
class WindowSettings:
    size: str = ''  # 'WIDTHxHEIGHT' in pixels; '' keeps the default
    widths: Dict[str, int] = field(default_factory=dict)  # table name -> column key -> pixels, as 'files.path'

    @classmethod
    def from_json(cls, data: object) -> 'WindowSettings':
        if not isinstance(data, dict):
            return cls()
        size = data.get('size')
        widths = data.get('widths')
        return cls(
            size if isinstance(size, str) and SIZE.match(size) else '',
            {
                key: width
                for key, width in (widths.items() if isinstance(widths, dict) else ())
                if isinstance(key, str) and type(width) is int and width in WIDTHS
            },
        )

    def to_json(self) -> Dict[str, object]:
        return {'size': self.size, 'widths': dict(sorted(self.widths.items()))}


class SettingsFile:
    def __init__(self, path: Optional[str] = None):
        self.path = path or settings_path()

    def load(self) -> WindowSettings:
        try:
            with open(self.path, encoding='utf-8') as handle:
                return WindowSettings.from_json(json.load(handle))
        except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8
            if not isinstance(exc, FileNotFoundError):
                log.debug('ignoring %s: %s', self.path, exc)
            return WindowSettings()

    def save(self, settings: WindowSettings) -> str:
        """Write the file (atomically: a crash never leaves half of one); '' or why it could not."""
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix='.window.', suffix='.json', dir=directory)
            try:
                with os.fdopen(fd, 'w', encoding='utf-8') as handle:
                    json.dump(settings.to_json(), handle, indent=1)
                os.replace(temp, self.path)
            except BaseException:
                os.unlink(temp)
                raise
        except OSError as exc:
            return f'cannot remember the window size in {self.path}: {exc.strerror or exc}'
        return ''
