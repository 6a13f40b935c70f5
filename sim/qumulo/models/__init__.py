"""State and rules of the emulated cluster. Nothing here knows about HTTP."""

from .auth import Sessions, builtin_directory
from .dns import Dns
from .faults import Faults
from .files import FileSystem
from .notify import ChangeHub
from .smb import Smb

RECURSIVE_MODES = ('ENABLED', 'DISABLED_ERROR', 'DISABLED_IGNORE')


class Cluster:
    def __init__(self, root):
        self.fs = FileSystem(root)
        self.directory = builtin_directory()
        self.sessions = Sessions(self.directory)
        self.smb = Smb()
        self.dns = Dns()
        self.faults = Faults()
        self.changes = ChangeHub(self.fs)
        self.notify_settings = {'recursive_mode': 'ENABLED'}
