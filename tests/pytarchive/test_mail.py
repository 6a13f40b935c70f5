"""pytarchive.mail against a real SMTP server on loopback (aiosmtpd): plain, login, STARTTLS, failures."""

import logging
import socket
import ssl

import pytest

from pytarchive.client.protocol import Task
from pytarchive.taskqueue.consumer import failure_mail
from aiosmtpd.smtp import AuthResult

from common.errors import AUTH, CONFIG, UNREACHABLE, ToolError
from pytarchive import mail
from pytarchive.tasks import inventory
from pytarchive.config import EmailConfig
from sim.qumulo.tls import make_certificate
from tests.pytarchive.smtp_inbox import free_port

PASSWORD = 's3cret-Pa55'


# smtplib encodes AUTH credentials as ASCII (UnicodeEncodeError otherwise); RFC 4616 (PLAIN) says
# UTF-8, and aiosmtpd hands the authenticator the UTF-8 bytes.
UNICODE_USER, UNICODE_PASSWORD = 'archivär', 'Grüße-€-パス'
ACCOUNTS = {'archiver': PASSWORD, UNICODE_USER: UNICODE_PASSWORD}


def check_login(server, session, envelope, mechanism, auth_data):
    # handled=False: aiosmtpd then answers a failure with 535 (True would leave the client waiting).
    wanted = {user.encode(): password.encode() for user, password in ACCOUNTS.items()}
    ok = auth_data.password == wanted.get(auth_data.login)
    return AuthResult(success=ok, handled=False)


def config(port, **changes):
    values = dict(
        smtp_host='127.0.0.1',
        smtp_port=port,
        sender='pytarchive@archive.example',
        recipients=('admin@example.org', 'backup@example.org'),
        starttls=False,
        username='',
        password='',
    )
    values.update(changes)
    return EmailConfig(**values)


def test_report_mail_has_text_and_html_parts(smtp_server, tmp_path):
    (tmp_path / 'homes' / 'alice').mkdir(parents=True)
    (tmp_path / 'homes' / 'alice' / 'data').write_bytes(b'x' * 12_345)
    (tmp_path / 'homes' / 'R&D <old>').mkdir()
    report = inventory.survey([str(tmp_path / 'homes')])
    inbox, port = smtp_server()
    mail.send(config(port), 'pytarchive inventory', inventory.render_text(report), inventory.render_html(report))
    [envelope] = inbox.envelopes
    assert envelope.mail_from == 'pytarchive@archive.example'
    assert envelope.rcpt_tos == ['admin@example.org', 'backup@example.org']
    [msg] = inbox.messages()
    assert msg['Subject'] == 'pytarchive inventory'
    assert msg['From'] == 'pytarchive@archive.example'
    assert msg['To'] == 'admin@example.org, backup@example.org'
    assert msg['Date'] and msg['Message-ID'].endswith('@archive.example>')
    assert msg.get_content_type() == 'multipart/alternative'
    text = msg.get_body(('plain',)).get_content()
    page = msg.get_body(('html',)).get_content()
    assert 'alice' in text and '12.3 kB' in text and 'R&D <old>' in text
    assert 'alice' in page and '12.3 kB' in page and 'R&amp;D &lt;old&gt;' in page


@pytest.mark.parametrize('username', ACCOUNTS)
def test_login(smtp_server, username):
    inbox, port = smtp_server(auth_require_tls=False, authenticator=check_login)
    mail.send(config(port, username=username, password=ACCOUNTS[username]), 'hello', 'body')
    assert [msg['Subject'] for msg in inbox.messages()] == ['hello']


@pytest.mark.parametrize('username', ACCOUNTS)
def test_wrong_password_is_one_line_without_the_password(smtp_server, username):
    inbox, port = smtp_server(auth_require_tls=False, authenticator=check_login)
    password = ACCOUNTS[username]
    with pytest.raises(ToolError) as caught:
        mail.send(config(port, username=username, password=password + 'x'), 'hello', 'body')
    message = caught.value.message
    assert message.startswith(f'cannot send mail through 127.0.0.1:{port}: login as {username} refused: 535')
    assert password not in message and '\n' not in message
    assert caught.value.exit_code == AUTH
    assert inbox.envelopes == []


def self_signed(tmp_path):
    """A certificate for localhost and 127.0.0.1 no client trusts yet: (cert file, key file)."""
    return tuple(str(path) for path in make_certificate('localhost', str(tmp_path)))


def test_starttls_then_login(smtp_server, tmp_path, monkeypatch):
    cert_file, key_file = self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    inbox, port = smtp_server(tls_context=server_context, require_starttls=True, authenticator=check_login)
    secure = config(port, starttls=True, username='archiver', password=PASSWORD)

    monkeypatch.delenv('SSL_CERT_FILE', raising=False)
    with pytest.raises(ToolError, match=r'cannot verify its TLS certificate'):  # not trusted yet
        mail.send(secure, 'hello', 'body')
    monkeypatch.setenv('SSL_CERT_FILE', cert_file)
    mail.send(secure, 'over TLS', 'body')
    assert [msg['Subject'] for msg in inbox.messages()] == ['over TLS']


def test_starttls_not_offered(smtp_server):
    _, port = smtp_server()
    with pytest.raises(ToolError) as caught:
        mail.send(config(port, starttls=True), 'hello', 'body')
    assert caught.value.message == (
        f'cannot send mail through 127.0.0.1:{port}: STARTTLS extension not supported '
        'by server. (check [Email] starttls and username)'
    )


def test_connection_refused_names_host_and_port():
    port = free_port()
    with pytest.raises(ToolError) as caught:
        mail.send(config(port), 'hello', 'body')
    assert caught.value.message == f'cannot send mail through 127.0.0.1:{port}: connection refused'
    assert caught.value.exit_code == UNREACHABLE


def test_unknown_host(monkeypatch):
    def no_such_host(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, 'Name or service not known')

    monkeypatch.setattr(mail.smtplib, 'SMTP', no_such_host)
    with pytest.raises(ToolError) as caught:
        mail.send(config(25, smtp_host='mail.invalid'), 'hello', 'body')
    assert caught.value.message == (
        'cannot send mail through mail.invalid:25: host name not found (Name or service not known)'
    )


def test_refused_recipients(smtp_server):
    inbox, port = smtp_server(refuse={'admin@example.org', 'backup@example.org'})
    with pytest.raises(ToolError, match=r'all recipients refused: admin@example.org \(550 5.1.1 no such mailbox\)'):
        mail.send(config(port), 'hello', 'body')
    inbox.refuse = {'backup@example.org'}
    with pytest.raises(ToolError, match=r'mail sent through .*, but it refused backup@example.org \(550'):
        mail.send(config(port), 'hello', 'body')
    assert [envelope.rcpt_tos for envelope in inbox.envelopes] == [['admin@example.org']]


def test_not_configured_names_the_missing_keys():
    with pytest.raises(ToolError) as caught:
        mail.send(config(25, smtp_host='', recipients=()), 'hello', 'body')
    assert caught.value.message == 'cannot send mail: [Email] smtp_host, recipients not set in the config'
    assert caught.value.exit_code == CONFIG


@pytest.fixture
def logger():
    log = logging.getLogger('x')
    log.propagate = False
    yield log
    log.handlers.clear()
    log.propagate = True


def test_critical_records_are_mailed(smtp_server, logger):
    inbox, port = smtp_server(auth_require_tls=False, authenticator=check_login)
    logger.addHandler(mail.critical_mail_handler(config(port, username='archiver', password=PASSWORD)))
    logger.error('only an error: not mailed')
    logger.critical('task 3 archive failed: tape TPN001L9 is full')
    [msg] = inbox.messages()
    assert msg['Subject'] == 'pytarchive: Task failed'
    body = msg.get_content()
    assert ' - x - CRITICAL - task 3 archive failed: tape TPN001L9 is full' in body


def test_a_failed_tasks_mail_names_the_task_in_its_subject_and_says_what_to_do(smtp_server, logger):
    inbox, port = smtp_server(auth_require_tls=False, authenticator=check_login)
    logger.addHandler(mail.critical_mail_handler(config(port, username='archiver', password=PASSWORD)))
    task = Task(
        7,
        'archive',
        {'path': '/data/projects/x', 'barcode': 'TPN001L9'},
        'failed',
        None,
        None,
        0,
        None,
        0,
        None,
        1,
        '',
        None,
        None,
    )
    logger.critical('task 7 failed: tape TPN001L9 is full', extra=failure_mail(task, 'tape TPN001L9 is full'))
    [msg] = inbox.messages()
    assert msg['Subject'] == 'pytarchive: task 7 archive /data/projects/x TPN001L9 failed'
    body = msg.get_content()
    assert 'The error: tape TPN001L9 is full' in body and '`pytarchive requeue 7`' in body


def test_a_mail_that_cannot_be_sent_never_raises_into_the_caller(logger, capsys):
    port = free_port()
    logger.addHandler(mail.critical_mail_handler(config(port)))
    logger.critical('task 4 format failed')
    err = capsys.readouterr().err
    assert err == (
        f'pytarchive: a CRITICAL record was not mailed: cannot send mail through 127.0.0.1:{port}: connection refused\n'
    )


def test_the_message_id_does_not_ask_dns(monkeypatch):
    monkeypatch.setattr(socket, 'getfqdn', lambda *args: pytest.fail('getfqdn called'))
    msg = mail.message(config(25), 'subject', 'text')
    assert msg['Message-ID'].endswith('@archive.example>') and msg.get_content_type() == 'text/plain'


def test_critical_records_are_mailed_with_a_non_ascii_password(smtp_server, logger, capsys):
    inbox, port = smtp_server(auth_require_tls=False, authenticator=check_login)
    logger.addHandler(mail.critical_mail_handler(config(port, username=UNICODE_USER, password=UNICODE_PASSWORD)))
    logger.critical('task 5 archive failed')
    [msg] = inbox.messages()
    assert 'task 5 archive failed' in msg.get_content()
    assert capsys.readouterr().err == ''


def test_a_mail_handler_failure_is_one_line_never_a_traceback(smtp_server, logger, capsys):
    inbox, port = smtp_server(auth_require_tls=False, authenticator=check_login)
    logger.addHandler(mail.critical_mail_handler(config(port, username=UNICODE_USER, password='wrong-ü')))
    logger.critical('task 6 archive failed')
    err = capsys.readouterr().err
    assert err == (
        f'pytarchive: a CRITICAL record was not mailed: cannot send mail through 127.0.0.1:{port}: '
        f'login as {UNICODE_USER} refused: 535 5.7.8 Authentication credentials invalid\n'
    )
    assert 'wrong-ü' not in err and inbox.envelopes == []
