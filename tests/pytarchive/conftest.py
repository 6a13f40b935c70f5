"""Fixtures for the pytarchive tests: a service on a virtual library, a real SMTP server, and a
database with its task storage in the test's folder."""

import pytest

from pytarchive.state.db import Database
from pytarchive.taskqueue import TaskStorage
from tests.pytarchive.rig import make_rig  # noqa: F401 - a fixture: a service on a virtual tape library
from tests.pytarchive.smtp_inbox import smtp_server  # noqa: F401 - a fixture: a real SMTP server on loopback


@pytest.fixture
def db(tmp_path):
    database = Database(str(tmp_path / 'state' / 'pytarchive.db'))
    yield database
    database.close()


@pytest.fixture
def storage(db):
    return TaskStorage(db)
