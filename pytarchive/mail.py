"""Mail from [Email]: the inventory report and the CRITICAL records that say a task failed.

smtplib directly, not logging.handlers.SMTPHandler: that handler cannot do STARTTLS with certificate
checks on a plain port nor report why a mail was not sent. Every failure is one ToolError line that
names host:port and the reason (never the password), so `pytarchive inventory --mail` and the
service's log can say what to fix.
"""

import base64
import logging
import smtplib
import socket
import ssl
import sys
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Optional

from common.errors import AUTH, CONFIG, FAILURE, TLS, UNREACHABLE, ToolError, one_line
from pytarchive.config import LOG_FORMAT, EmailConfig

TASK_FAILED_SUBJECT = 'pytarchive: Task failed'  # as the usual logging.conf's SMTPHandler names it
TIMEOUT = 30  # seconds for connecting and for each SMTP reply


def message(email: EmailConfig, subject: str, text: str, html: Optional[str] = None) -> EmailMessage:
    """multipart/alternative when there is HTML, so every mail reader shows one of the two."""
    msg = EmailMessage()
    msg['Subject'] = subject
    msg['From'] = email.sender
    msg['To'] = ', '.join(email.recipients)
    msg['Date'] = formatdate(localtime=True)
    # The sender's domain, not socket.getfqdn(): that can wait for a DNS timeout on a server.
    msg['Message-ID'] = make_msgid('pytarchive', email.sender.rpartition('@')[2] or 'localhost')
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype='html')
    return msg


def send(email: EmailConfig, subject: str, text: str, html: Optional[str] = None) -> None:
    if not email.configured:
        missing = [key for key in ('smtp_host', 'sender', 'recipients') if not getattr(email, key)]
        raise ToolError(f'cannot send mail: [Email] {", ".join(missing)} not set in the config', CONFIG)
    msg = message(email, subject, text, html)
    host = f'[{email.smtp_host}]' if ':' in email.smtp_host else email.smtp_host
    where = f'{host}:{email.smtp_port}'
    try:
        with smtplib.SMTP(email.smtp_host, email.smtp_port, timeout=TIMEOUT) as smtp:
            if email.starttls:
                # The default context verifies the certificate and the host name; OpenSSL reads
                # SSL_CERT_FILE / SSL_CERT_DIR for a private CA.
                smtp.starttls(context=ssl.create_default_context())
            if email.username:
                _login(smtp, email.username, email.password)
            refused = smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        error = _translate(exc, email)
        reason = error.message.replace(email.password, '***') if email.password else error.message
        raise ToolError(f'cannot send mail through {where}: {reason}', error.exit_code) from None
    if refused:
        raise ToolError(f'mail sent through {where}, but it refused {_refused(refused)}', FAILURE)


def _login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """smtplib's login (CRAM-MD5, PLAIN or LOGIN) for ASCII credentials; PLAIN or LOGIN in UTF-8 otherwise.

    smtplib encodes credentials as ASCII and raises UnicodeEncodeError on anything else. SASL PLAIN
    is defined on UTF-8 (RFC 4616, used by SMTP AUTH, RFC 4954) and servers take LOGIN the same way;
    CRAM-MD5 has no defined encoding, so it is not offered a non-ASCII password.
    """
    if (username + password).isascii():
        smtp.login(username, password)
        return
    smtp.ehlo_or_helo_if_needed()
    if not smtp.has_extn('auth'):
        raise smtplib.SMTPNotSupportedError('SMTP AUTH extension not supported by server.')
    offered = smtp.esmtp_features['auth'].upper().split()
    encode = lambda text: base64.b64encode(text.encode('utf-8')).decode('ascii')  # noqa: E731
    if 'PLAIN' in offered:
        code, reply = smtp.docmd('AUTH', 'PLAIN ' + encode(f'\0{username}\0{password}'))
    elif 'LOGIN' in offered:
        code, reply = smtp.docmd('AUTH', 'LOGIN ' + encode(username))
        if code == 334:
            code, reply = smtp.docmd(encode(password))
    else:
        raise smtplib.SMTPNotSupportedError(
            f'the server offers AUTH {" ".join(offered)} only, which cannot carry a non-ASCII password; '
            'it needs PLAIN or LOGIN.'
        )
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def _reply(code: int, reply: object) -> str:
    text = reply.decode('utf-8', 'replace') if isinstance(reply, bytes) else str(reply)
    return f'{code} {one_line(text)}'


def _refused(recipients: dict) -> str:
    return ', '.join(f'{address} ({_reply(*answer)})' for address, answer in recipients.items())


def _translate(exc: BaseException, email: EmailConfig) -> ToolError:
    """The reason alone; send() puts host:port in front."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return ToolError(f'login as {email.username} refused: {_reply(exc.smtp_code, exc.smtp_error)}', AUTH)
    if isinstance(exc, smtplib.SMTPNotSupportedError):  # STARTTLS or AUTH not offered
        return ToolError(f'{one_line(exc)} (check [Email] starttls and username)', CONFIG)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return ToolError(f'all recipients refused: {_refused(exc.recipients)}', FAILURE)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return ToolError(f'sender {email.sender} refused: {_reply(exc.smtp_code, exc.smtp_error)}', FAILURE)
    if isinstance(exc, smtplib.SMTPResponseException):
        return ToolError(f'the server answered {_reply(exc.smtp_code, exc.smtp_error)}', FAILURE)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return ToolError(f'the server closed the connection ({one_line(exc) or "no reason given"})', UNREACHABLE)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ToolError(f'cannot verify its TLS certificate: {exc.verify_message or one_line(exc)}', TLS)
    if isinstance(exc, ssl.SSLError):
        return ToolError(f'TLS failed: {exc.reason or one_line(exc)}', TLS)
    if isinstance(exc, socket.gaierror):
        return ToolError(f'host name not found ({exc.strerror})', UNREACHABLE)
    if isinstance(exc, ConnectionRefusedError):
        return ToolError('connection refused', UNREACHABLE)
    if isinstance(exc, TimeoutError):
        return ToolError(f'timed out (after {TIMEOUT}s)', UNREACHABLE)
    if isinstance(exc, OSError) and exc.strerror:
        return ToolError(exc.strerror, UNREACHABLE)
    return ToolError(f'{type(exc).__name__}: {one_line(exc)}', FAILURE)


class _CriticalMailHandler(logging.Handler):
    def __init__(self, email: EmailConfig):
        super().__init__(logging.CRITICAL)
        self.email = email
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        # A failed task says which in the subject and what to do in the body (consumer.py passes
        # them as `mail_subject` and `mail_advice`); any other CRITICAL record keeps the old subject.
        subject = getattr(record, 'mail_subject', None) or TASK_FAILED_SUBJECT
        advice = getattr(record, 'mail_advice', None)
        try:
            send(self.email, subject, self.format(record) + (f'\n\n{advice}\n' if advice else ''))
        except ToolError as exc:
            # Not logged: that could come back here. stderr is the journal under systemd.
            print(f'pytarchive: a CRITICAL record was not mailed: {exc.message}', file=sys.stderr, flush=True)
        except Exception as exc:  # noqa: BLE001 - logging must never raise into the task that logged
            # Not handleError(): that prints a traceback into the service's log.
            reason = one_line(exc).replace(self.email.password, '***') if self.email.password else one_line(exc)
            print(
                f'pytarchive: a CRITICAL record was not mailed: unexpected {type(exc).__name__}: {reason}',
                file=sys.stderr,
                flush=True,
            )


def critical_mail_handler(email: EmailConfig) -> logging.Handler:
    """Mails each CRITICAL record through send(), so STARTTLS and login work as for the report.

    It sends while the caller waits (up to TIMEOUT per SMTP step), as SMTPHandler does.
    """
    return _CriticalMailHandler(email)
