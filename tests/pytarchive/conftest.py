"""Fixtures for the pytarchive tests: a service on a virtual library, and a real SMTP server."""

from tests.pytarchive.rig import make_rig  # noqa: F401 - a fixture: a service on a virtual tape library
from tests.pytarchive.smtp_inbox import smtp_server  # noqa: F401 - a fixture: a real SMTP server on loopback
