"""A real SMTP server on loopback (aiosmtpd) whose inbox tests read: the smtp_server fixture."""

import email
import email.policy
import socket

import pytest
from aiosmtpd.controller import Controller


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class Inbox:
    def __init__(self, refuse=()):
        self.envelopes = []
        self.refuse = set(refuse)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return '550 5.1.1 no such mailbox'
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return '250 Message accepted for delivery'

    def messages(self):
        return [email.message_from_bytes(envelope.content, policy=email.policy.default) for envelope in self.envelopes]


@pytest.fixture
def smtp_server(request):
    """start(**controller_options) -> (inbox, port); stopped after the test."""
    controllers = []

    def start(refuse=(), **options):
        inbox, port = Inbox(refuse), free_port()
        controller = Controller(inbox, hostname='127.0.0.1', port=port, **options)
        controller.start()
        controllers.append(controller)
        return inbox, port

    yield start
    for controller in controllers:
        controller.stop()
