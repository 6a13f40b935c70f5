"""A private X display (Xvfb) for running the window where there is no screen: tests, bench."""

import os
import select
import shutil
import subprocess
from typing import Optional

START_TIMEOUT_S = 15


class VirtualDisplay:
    """`with VirtualDisplay() as display:` sets $DISPLAY to a fresh Xvfb screen, then restores it."""

    def __init__(self, size: str = '1280x800x24'):
        if shutil.which('Xvfb') is None:
            raise RuntimeError('Xvfb is not installed (make system-packages installs it)')
        read_end, write_end = os.pipe()
        # -displayfd: Xvfb takes the first free display number and tells it, so parallel runs
        # never race for one.
        self.proc = subprocess.Popen(
            ['Xvfb', '-displayfd', str(write_end), '-screen', '0', size, '-nolisten', 'tcp'],
            pass_fds=(write_end,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write_end)
        # Kept open while Xvfb runs: it dies of SIGPIPE if it writes to a closed pipe later.
        self._pipe = read_end
        ready, _, _ = select.select([read_end], [], [], START_TIMEOUT_S)
        number = os.read(read_end, 32).decode().strip() if ready else ''
        if not number.isdigit():
            self.stop()
            raise RuntimeError('Xvfb did not start')
        self.name = f':{number}'
        self._saved: Optional[str] = None

    def __enter__(self) -> 'VirtualDisplay':
        self._saved = os.environ.get('DISPLAY')
        os.environ['DISPLAY'] = self.name
        return self

    def __exit__(self, *_: object) -> None:
        if self._saved is None:
            os.environ.pop('DISPLAY', None)
        else:
            os.environ['DISPLAY'] = self._saved
        self.stop()

    def screenshot(self, path: os.PathLike) -> None:
        """The whole screen as a PNG (Pillow, a test and bench dependency)."""
        from PIL import ImageGrab

        ImageGrab.grab(xdisplay=self.name).save(path)

    def stop(self) -> None:
        self.proc.terminate()  # on SIGTERM Xvfb removes its lock file and socket; SIGKILL would not
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None
