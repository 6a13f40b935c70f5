"""The cluster connection settings: finding, validating and interactively writing the INI file.

File format (host, port and credentials, plus two optional keys):

    [DEFAULT]
    API_HOST = qumulo-cluster.example.com
    API_PORT = 8000
    USERNAME = admin
    PASSWORD = ...
    ACCESS_TOKEN = access-v1:...   ; optional, used instead of USERNAME/PASSWORD
    CA_BUNDLE = /etc/ssl/qumulo.pem  ; optional, verify the cluster's certificate against it

Keys are case-insensitive. Other keys and sections (a tool's own settings) are left alone.
"""

import ast
import configparser
import contextlib
import getpass
import logging
import os
import shlex
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, TextIO, Union

from common.errors import CONFIG, ToolError

log = logging.getLogger(__name__)

DEFAULT_PORT = 8000
SECTION = 'DEFAULT'
KEYS = ('API_HOST', 'API_PORT', 'USERNAME', 'PASSWORD', 'ACCESS_TOKEN', 'CA_BUNDLE')

PathLike = Union[str, os.PathLike]


class ConfigError(ToolError):
    """The config file is missing, unreadable or invalid; the message names the file and key."""

    exit_code = CONFIG


@dataclass(frozen=True)
class ClusterConfig:
    host: str
    port: int = DEFAULT_PORT
    username: Optional[str] = None
    # Secrets stay out of repr() so that logging or printing a config never leaks them.
    password: Optional[str] = field(default=None, repr=False)
    access_token: Optional[str] = field(default=None, repr=False)
    ca_bundle: Optional[str] = None
    path: Optional[str] = None


# ---------------------------------------------------------------------------------------------
# Finding the file


def find_config_file(
    explicit: Optional[PathLike], env_var: Optional[str], filename: str, must_exist: bool = True
) -> str:
    """Return the config file to use.

    Order: the explicit --config-file value, the environment variable `env_var`, ./filename,
    ~/.config/filename, /etc/filename. A path the user named (explicit or environment) must exist;
    otherwise the first existing candidate wins. With must_exist=False (for --configure) a named
    path is returned even if missing, and ./filename when nothing exists yet.
    """
    named = explicit or (os.environ.get(env_var) if env_var else None)
    if named:
        path = os.path.expanduser(os.fspath(named))
        if must_exist and not os.path.exists(path):
            source = '--config-file' if explicit else f'${env_var}'
            raise ConfigError(f'{path}: config file not found (given by {source})')
        return path

    candidates = [
        os.path.join('.', filename),
        os.path.join(os.path.expanduser('~'), '.config', filename),
        os.path.join('/etc', filename),
    ]
    for candidate in candidates:
        if os.path.exists(candidate):
            return candidate
    if not must_exist:
        return candidates[0]
    raise ConfigError(
        f'no config file found (looked in {", ".join(candidates)}); '
        f'create one with --configure or name one with --config-file'
    )


# ---------------------------------------------------------------------------------------------
# Reading and validating


def _new_parser() -> configparser.ConfigParser:
    # No interpolation: a '%' in a password must be read and written literally.
    parser = configparser.ConfigParser(interpolation=None)
    # Keep the case of keys when rewriting the file; lookups go through _get() instead.
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    return parser


def _read(path: str) -> configparser.ConfigParser:
    return read_ini(path, _new_parser(), SECTION)


def read_ini(path: PathLike, parser: configparser.ConfigParser, example_section: str) -> configparser.ConfigParser:
    """Read an INI file into `parser`; every way it can fail is one ConfigError line naming the
    file (and the line, for syntax errors). Shared by every tool's config."""
    try:
        with open(path, encoding='utf-8') as handle:
            parser.read_file(handle, source=os.fspath(path))
    except FileNotFoundError:
        raise ConfigError(f'{path}: config file not found') from None
    except PermissionError:
        raise ConfigError(f'{path}: cannot read config file: permission denied') from None
    except IsADirectoryError:
        raise ConfigError(f'{path}: is a directory, not a config file') from None
    except UnicodeDecodeError:
        raise ConfigError(f'{path}: not a text file (expected UTF-8 INI)') from None
    except OSError as exc:
        raise ConfigError(f'{path}: cannot read config file: {exc.strerror}') from None
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(
            f'{path}, line {exc.lineno}: settings must follow a section header such as [{example_section}]'
        ) from None
    except configparser.ParsingError as exc:
        lineno, line = exc.errors[0]  # configparser stores the line as its repr()
        with contextlib.suppress(ValueError, SyntaxError):
            line = ast.literal_eval(line)
        raise ConfigError(f'{path}, line {lineno}: cannot parse {line.strip()!r}') from None
    except configparser.Error as exc:  # duplicate keys or sections
        raise ConfigError(f'{path}: invalid INI: {" ".join(str(exc).split())}') from None
    return parser


# Keys whose value is kept exactly as written: spaces around a password are a part of it.
VERBATIM = ('PASSWORD',)


def _get(parser: configparser.ConfigParser, key: str) -> Optional[str]:
    """The value of a [DEFAULT] key, case-insensitively; None if missing or empty. A password is
    taken as written (unquoted, see quote_secret); other values are stripped."""
    for name, value in parser.defaults().items():
        if name.upper() == key:
            return (unquote_secret(value) if key in VERBATIM else value.strip()) or None
    return None


def quote_secret(value: str) -> str:
    """A secret as written to the INI file: INI drops spaces at either end of a value, so a secret
    with them is written in double quotes, as is one that is itself in double quotes."""
    if value != value.strip() or _quoted(value):
        return f'"{value}"'
    return value


def unquote_secret(value: str) -> str:
    return value[1:-1] if _quoted(value) else value


def _quoted(value: str) -> bool:
    return len(value) >= 2 and value[0] == value[-1] == '"'


def _parse_port(text: Optional[str]) -> Optional[int]:
    if text is None:
        return DEFAULT_PORT
    try:
        port = int(text)
    except ValueError:
        return None
    return port if 1 <= port <= 65535 else None


def _warn_if_exposed(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            '%s holds cluster credentials and is readable by other users; fix with: chmod 600 %s',
            path,
            shlex.quote(path),
        )


def load_cluster_config(path: PathLike) -> ClusterConfig:
    """Read and validate the [DEFAULT] cluster settings of `path`; raise ConfigError if unusable."""
    path = os.fspath(path)
    parser = _read(path)
    _warn_if_exposed(path)

    host = _get(parser, 'API_HOST')
    if host is None:
        raise ConfigError(f'{path}: API_HOST is missing or empty in [{SECTION}]')

    port_text = _get(parser, 'API_PORT')
    port = _parse_port(port_text)
    if port is None:
        raise ConfigError(f'{path}: API_PORT must be a number from 1 to 65535, not {port_text!r}')

    username = _get(parser, 'USERNAME')
    password = _get(parser, 'PASSWORD')
    access_token = _get(parser, 'ACCESS_TOKEN')
    if access_token is None:
        if password is None:
            raise ConfigError(f'{path}: no credentials: set USERNAME and PASSWORD, or ACCESS_TOKEN, in [{SECTION}]')
        if username is None:
            raise ConfigError(f'{path}: USERNAME is missing (PASSWORD is set) in [{SECTION}]')

    ca_bundle = _get(parser, 'CA_BUNDLE')
    if ca_bundle is not None:
        # A relative bundle path means "next to the config file", not "wherever we were run from".
        ca_bundle = os.path.join(os.path.dirname(path), os.path.expanduser(ca_bundle))
        if not os.path.isfile(ca_bundle):
            raise ConfigError(f'{path}: CA_BUNDLE file {ca_bundle} does not exist')

    return ClusterConfig(host, port, username, password, access_token, ca_bundle, path)


# ---------------------------------------------------------------------------------------------
# --configure


def _ask(
    label: str,
    current: Optional[str],
    ask_fn: Callable[[str], str],
    out: TextIO,
    secret: bool = False,
    exact: bool = False,
    check: Optional[Callable[[Optional[str]], Optional[str]]] = None,
) -> Optional[str]:
    """Prompt until `check` accepts the answer; blank keeps `current`. Secrets are never shown;
    an `exact` answer is kept as typed, spaces and all."""
    if current is None:
        hint = ''
    else:
        hint = ' [keep existing]' if secret else f' [{current}]'
    while True:
        answer = ask_fn(f'Enter {label}{hint}: ')
        answer = (answer if exact else answer.strip()) or current
        problem = check(answer) if check else None
        if problem is None:
            return answer
        print(problem, file=out, flush=True)


def _check_host(value: Optional[str]) -> Optional[str]:
    return None if value else 'The API host is required.'


def _check_port(value: Optional[str]) -> Optional[str]:
    return None if _parse_port(value) else 'The API port must be a number from 1 to 65535.'


def _set_key(parser: configparser.ConfigParser, key: str, value: Optional[str]) -> None:
    # Drop any differently-cased spelling so the file never holds two versions of one key.
    for name in [n for n in parser.defaults() if n.upper() == key]:
        del parser.defaults()[name]
    if value is not None:
        parser.defaults()[key] = quote_secret(value) if key in VERBATIM else value


def _write_private(path: str, parser: configparser.ConfigParser) -> None:
    """Replace `path` atomically with a file only the owner can read (it holds a password)."""
    target = os.path.realpath(path)  # rewrite a symlink's target, keep the link
    directory = os.path.dirname(target) or '.'
    fd, temp = tempfile.mkstemp(prefix='.' + os.path.basename(target) + '.', dir=directory)
    try:
        # mkstemp already creates 0600; fchmod makes it explicit whatever the umask.
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            parser.write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def configure_interactively(
    path: PathLike,
    input_fn: Callable[[str], str] = input,
    getpass_fn: Callable[[str], str] = getpass.getpass,
    out: TextIO = sys.stdout,
) -> ClusterConfig:
    """Prompt for the cluster settings and save them to `path` (mode 0600); return them.

    Existing values are offered as defaults, so re-running only changes what the user types.
    EOF or Ctrl-C while prompting raises ConfigError and leaves the file untouched.
    """
    path = os.fspath(path)
    parser = _read(path) if os.path.exists(path) else _new_parser()
    current: Dict[str, Optional[str]] = {key: _get(parser, key) for key in KEYS}

    print(f'Configuring {path}', file=out, flush=True)
    try:
        host = _ask('API Host', current['API_HOST'], input_fn, out, check=_check_host)
        port = _ask('API Port', current['API_PORT'] or str(DEFAULT_PORT), input_fn, out, check=_check_port)
        username = _ask('Username', current['USERNAME'], input_fn, out)
        password = _ask('Password', current['PASSWORD'], getpass_fn, out, secret=True, exact=True)
        token = _ask(
            'Access Token (optional, used instead of the password)',
            current['ACCESS_TOKEN'],
            getpass_fn,
            out,
            secret=True,
        )
    except (EOFError, KeyboardInterrupt):
        print(file=out, flush=True)  # end the half-typed prompt line
        raise ConfigError(f'{path}: configuration cancelled, file not changed') from None

    if token is None and (username is None or password is None):
        raise ConfigError(f'{path}: not saved: enter a username and password, or an access token')

    answers = {
        'API_HOST': host,
        'API_PORT': str(_parse_port(port)),
        'USERNAME': username,
        'PASSWORD': password,
        'ACCESS_TOKEN': token,
    }
    _save(path, parser, answers)
    print(f'Configuration saved to {path}', file=out, flush=True)
    return load_cluster_config(path)


def _save(path: str, parser: configparser.ConfigParser, answers: Dict[str, Optional[str]]) -> None:
    for key, value in answers.items():
        _set_key(parser, key, value)
    try:
        _write_private(path, parser)
    except OSError as exc:
        raise ConfigError(f'{path}: cannot save config file: {exc.strerror}') from None


def write_cluster_config(path: PathLike, config: ClusterConfig) -> ClusterConfig:
    """Save `config` to `path` as --configure does (same keys, mode 0600, other keys and sections
    kept), without asking anything; return it as read back. For a window's Connect dialog."""
    path = os.fspath(path)
    parser = _read(path) if os.path.exists(path) else _new_parser()
    answers = {
        'API_HOST': config.host,
        'API_PORT': str(config.port),
        'USERNAME': config.username,
        'PASSWORD': config.password,
        'ACCESS_TOKEN': config.access_token,
        # A bundle path is read relative to the file, so an absolute one stays right wherever it is saved.
        'CA_BUNDLE': os.path.abspath(config.ca_bundle) if config.ca_bundle else None,
    }
    _save(path, parser, answers)
    return load_cluster_config(path)
