"""common.config: where the config file is found, what is wrong with a bad one, --configure."""

import io
import logging
import os
import stat
import sys
import textwrap
from pathlib import Path

import pexpect
import pytest

from common.config import (
    ClusterConfig,
    ConfigError,
    configure_interactively,
    find_config_file,
    load_cluster_config,
    write_cluster_config,
)
from common.errors import CONFIG

REPO = Path(__file__).resolve().parents[2]
NAME = 'common_test_tool_config.ini'  # unique, so that /etc/<NAME> never exists
ENV = 'COMMON_TEST_TOOL_CONFIG'

VALID = """\
[DEFAULT]
API_HOST = 10.1.2.3
API_PORT = 8000
USERNAME = admin
PASSWORD = p%ss;word
"""


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(textwrap.dedent(text))
    path.chmod(mode)
    return path


@pytest.fixture
def places(tmp_path, monkeypatch):
    """An isolated cwd and HOME, no environment override."""
    cwd = tmp_path / 'cwd'
    home = tmp_path / 'home'
    (home / '.config').mkdir(parents=True)
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv('HOME', str(home))
    monkeypatch.delenv(ENV, raising=False)
    assert not Path('/etc', NAME).exists()
    return cwd, home / '.config'


# ---------------------------------------------------------------------------------------------
# Lookup order


def test_explicit_path_wins_over_everything(places, tmp_path, monkeypatch):
    cwd, user_dir = places
    explicit = write(tmp_path / 'explicit.ini', VALID)
    from_env = write(tmp_path / 'env.ini', VALID)
    write(cwd / NAME, VALID)
    monkeypatch.setenv(ENV, str(from_env))
    assert find_config_file(str(explicit), ENV, NAME) == str(explicit)


def test_environment_variable_beats_working_directory(places, tmp_path, monkeypatch):
    cwd, _ = places
    from_env = write(tmp_path / 'env.ini', VALID)
    write(cwd / NAME, VALID)
    monkeypatch.setenv(ENV, str(from_env))
    assert find_config_file(None, ENV, NAME) == str(from_env)


def test_working_directory_beats_user_config(places):
    cwd, user_dir = places
    write(cwd / NAME, VALID)
    write(user_dir / NAME, VALID)
    assert Path(find_config_file(None, ENV, NAME)).resolve() == (cwd / NAME).resolve()


def test_user_config_used_when_working_directory_has_none(places):
    _, user_dir = places
    write(user_dir / NAME, VALID)
    assert find_config_file(None, ENV, NAME) == str(user_dir / NAME)


def test_missing_explicit_path_is_an_error_naming_it(places, tmp_path):
    missing = tmp_path / 'nope.ini'
    with pytest.raises(ConfigError) as caught:
        find_config_file(str(missing), ENV, NAME)
    assert str(missing) in caught.value.message
    assert '--config-file' in caught.value.message
    assert caught.value.exit_code == CONFIG


def test_missing_environment_path_is_an_error_naming_it(places, tmp_path, monkeypatch):
    missing = tmp_path / 'gone.ini'
    monkeypatch.setenv(ENV, str(missing))
    with pytest.raises(ConfigError) as caught:
        find_config_file(None, ENV, NAME)
    assert str(missing) in caught.value.message
    assert f'${ENV}' in caught.value.message


def test_nothing_found_lists_every_place_searched(places):
    with pytest.raises(ConfigError) as caught:
        find_config_file(None, ENV, NAME)
    message = caught.value.message
    assert f'./{NAME}' in message
    assert f'.config/{NAME}' in message
    assert f'/etc/{NAME}' in message
    assert '--configure' in message


def test_configure_gets_a_path_to_create(places, tmp_path):
    assert find_config_file(None, ENV, NAME, must_exist=False) == f'./{NAME}'
    new = tmp_path / 'new.ini'
    assert find_config_file(str(new), ENV, NAME, must_exist=False) == str(new)


# ---------------------------------------------------------------------------------------------
# Validation


def test_valid_file_loads(tmp_path):
    path = write(tmp_path / 'c.ini', VALID)
    config = load_cluster_config(path)
    assert config == ClusterConfig('10.1.2.3', 8000, 'admin', 'p%ss;word', None, None, str(path))


def test_keys_are_case_insensitive_and_port_defaults_to_8000(tmp_path):
    path = write(tmp_path / 'c.ini', '[DEFAULT]\napi_host = h\naccess_token = access-v1:x\n')
    config = load_cluster_config(path)
    assert (config.host, config.port, config.access_token) == ('h', 8000, 'access-v1:x')


def test_repr_never_shows_secrets(tmp_path):
    path = write(tmp_path / 'c.ini', VALID + 'ACCESS_TOKEN = access-v1:tok\n')
    shown = repr(load_cluster_config(path))
    assert 'p%ss;word' not in shown and 'access-v1:tok' not in shown
    assert '10.1.2.3' in shown


def assert_config_error(path, *expected):
    with pytest.raises(ConfigError) as caught:
        load_cluster_config(path)
    message = caught.value.message
    assert '\n' not in message
    assert str(path) in message
    for text in expected:
        assert text in message
    return message


@pytest.mark.parametrize(
    'text, expected',
    [
        ('[DEFAULT]\nAPI_PORT = 8000\nUSERNAME = a\nPASSWORD = b\n', ['API_HOST']),
        ('[DEFAULT]\nAPI_HOST =\nUSERNAME = a\nPASSWORD = b\n', ['API_HOST']),
        ('[DEFAULT]\nAPI_HOST = h\nAPI_PORT = eight\nUSERNAME = a\nPASSWORD = b\n', ['API_PORT', "'eight'"]),
        ('[DEFAULT]\nAPI_HOST = h\nAPI_PORT = 0\nUSERNAME = a\nPASSWORD = b\n', ['API_PORT', '65535']),
        ('[DEFAULT]\nAPI_HOST = h\nAPI_PORT = 65536\nUSERNAME = a\nPASSWORD = b\n', ['API_PORT']),
        ('[DEFAULT]\nAPI_HOST = h\nUSERNAME = a\n', ['PASSWORD', 'ACCESS_TOKEN']),
        ('[DEFAULT]\nAPI_HOST = h\nPASSWORD = b\n', ['USERNAME']),
        ('API_HOST = h\n', ['line 1', '[DEFAULT]']),
        ('[DEFAULT]\nAPI_HOST = h\nthis is not a setting\n', ['line 3', 'this is not a setting']),
        ('[DEFAULT]\nAPI_HOST = h\nAPI_HOST = g\n', ['API_HOST']),
    ],
    ids=[
        'no-host',
        'empty-host',
        'port-word',
        'port-zero',
        'port-too-big',
        'no-credentials',
        'password-without-user',
        'no-section',
        'garbage-line',
        'duplicate-key',
    ],
)
def test_invalid_file_names_file_and_key(tmp_path, text, expected):
    assert_config_error(write(tmp_path / 'bad.ini', text), *expected)


def test_missing_file(tmp_path):
    assert_config_error(tmp_path / 'absent.ini', 'not found')


def test_a_directory_given_as_the_config_file(tmp_path):
    # Tests run as root, which reads any file whatever its mode: a directory is unreadable to all.
    directory = tmp_path / 'dir.ini'
    directory.mkdir()
    assert_config_error(directory, 'is a directory, not a config file')


def test_missing_ca_bundle_is_named(tmp_path):
    path = write(tmp_path / 'c.ini', VALID + 'CA_BUNDLE = missing.pem\n')
    assert_config_error(path, 'CA_BUNDLE', str(tmp_path / 'missing.pem'))


def test_relative_ca_bundle_is_next_to_the_config_file(tmp_path, monkeypatch):
    (tmp_path / 'cluster.pem').write_text('pem')
    path = write(tmp_path / 'c.ini', VALID + 'CA_BUNDLE = cluster.pem\n')
    monkeypatch.chdir('/')
    assert load_cluster_config(path).ca_bundle == str(tmp_path / 'cluster.pem')


def test_world_readable_file_warns_with_the_fix(tmp_path, caplog):
    path = write(tmp_path / 'c.ini', VALID, mode=0o644)
    with caplog.at_level(logging.WARNING):
        load_cluster_config(path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(path) in warnings[0]
    assert f'chmod 600 {path}' in warnings[0]


def test_private_file_does_not_warn(tmp_path, caplog):
    path = write(tmp_path / 'c.ini', VALID, mode=0o600)
    with caplog.at_level(logging.WARNING):
        load_cluster_config(path)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


# ---------------------------------------------------------------------------------------------
# --configure, called directly


def scripted(answers):
    """An input function answering prompts in order, recording them."""
    prompts = []
    queue = list(answers)

    def ask(prompt):
        prompts.append(prompt)
        if not queue:
            raise EOFError
        return queue.pop(0)

    return ask, prompts


def test_configure_reasks_an_invalid_port(tmp_path):
    path = tmp_path / 'new.ini'
    ask, prompts = scripted(['h', 'http', '70000', '8443', 'u'])
    secret, _ = scripted(['pw', ''])
    out = io.StringIO()
    config = configure_interactively(path, ask, secret, out)
    assert config.port == 8443
    assert prompts[1:4] == ['Enter API Port [8000]: '] * 3
    assert out.getvalue().count('must be a number from 1 to 65535') == 2


def test_configure_without_credentials_writes_nothing(tmp_path):
    path = tmp_path / 'new.ini'
    ask, _ = scripted(['h', '', ''])
    secret, _ = scripted(['', ''])
    with pytest.raises(ConfigError) as caught:
        configure_interactively(path, ask, secret, io.StringIO())
    assert 'access token' in caught.value.message
    assert not path.exists()


def test_configure_token_only(tmp_path):
    path = tmp_path / 'new.ini'
    ask, _ = scripted(['h', '', ''])
    secret, prompts = scripted(['', 'access-v1:abc'])
    config = configure_interactively(path, ask, secret, io.StringIO())
    assert prompts[1] == 'Enter Access Token (optional, used instead of the password): '
    assert config.access_token == 'access-v1:abc' and config.password is None


@pytest.mark.parametrize('password', ['  pass word ', ' lead', 'trail\t', '"quoted"', 'in"side', 'plain'])
def test_configure_keeps_a_password_exactly_as_typed(tmp_path, password):
    path = tmp_path / 'new.ini'
    ask, _ = scripted(['h', '', 'admin'])
    secret, _ = scripted([password, ''])
    out = io.StringIO()
    assert configure_interactively(path, ask, secret, out).password == password
    assert load_cluster_config(path).password == password
    assert password not in out.getvalue()


def test_a_password_in_double_quotes_is_read_without_them(tmp_path):
    path = write(tmp_path / 'c.ini', '[DEFAULT]\nAPI_HOST = h\nUSERNAME = u\nPASSWORD = "  my secret "\n')
    assert load_cluster_config(path).password == '  my secret '
    path = write(tmp_path / 'c.ini', '[DEFAULT]\nAPI_HOST = h\nUSERNAME = u\nPASSWORD = my "secret"\n')
    assert load_cluster_config(path).password == 'my "secret"'


# ---------------------------------------------------------------------------------------------
# --configure through a real terminal

SCRIPT = textwrap.dedent(
    """
    import sys
    from common.config import configure_interactively
    from common.errors import run_main

    def main():
        configure_interactively(sys.argv[1])

    sys.exit(run_main(main, 'tool'))
    """
)


def spawn_configure(path: Path):
    transcript = io.StringIO()
    child = pexpect.spawn(
        sys.executable,
        ['-c', SCRIPT, str(path)],
        cwd=str(REPO),
        encoding='utf-8',
        timeout=20,
        env={**os.environ, 'PYTHONPATH': str(REPO)},
    )
    child.logfile_read = transcript
    return child, transcript


def finish(child):
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def test_configure_new_file_in_a_terminal(tmp_path):
    path = tmp_path / 'tool_config.ini'
    child, transcript = spawn_configure(path)
    child.expect_exact(f'Configuring {path}')
    child.expect_exact('Enter API Host: ')
    child.sendline('10.1.2.3')
    child.expect_exact('Enter API Port [8000]: ')
    child.sendline('')
    child.expect_exact('Enter Username: ')
    child.sendline('admin')
    child.expect_exact('Enter Password: ')
    child.sendline('MyPassword2!')
    child.expect_exact('Enter Access Token (optional, used instead of the password): ')
    child.sendline('')
    child.expect_exact(f'Configuration saved to {path}')
    assert finish(child) == 0

    shown = transcript.getvalue()
    assert '10.1.2.3' in shown  # ordinary answers echo...
    assert 'MyPassword2!' not in shown  # ...the password does not
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_cluster_config(path) == ClusterConfig('10.1.2.3', 8000, 'admin', 'MyPassword2!', None, None, str(path))


def test_configure_offers_existing_values_and_keeps_other_settings(tmp_path):
    path = write(
        tmp_path / 'tool_config.ini',
        """\
        [DEFAULT]
        API_HOST = 10.0.0.1
        API_PORT = 8000
        USERNAME = admin
        PASSWORD = OldSecret99
        CA_BUNDLE = /etc/ssl/certs/ca-certificates.crt

        [qfs_filelock]
        interval = 5
        """,
        mode=0o644,
    )
    child, transcript = spawn_configure(path)
    child.expect_exact('Enter API Host [10.0.0.1]: ')
    child.sendline('')
    child.expect_exact('Enter API Port [8000]: ')
    child.sendline('9000')
    child.expect_exact('Enter Username [admin]: ')
    child.sendline('')
    child.expect_exact('Enter Password [keep existing]: ')
    child.sendline('')
    child.expect_exact('Enter Access Token (optional, used instead of the password): ')
    child.sendline('')
    child.expect_exact(f'Configuration saved to {path}')
    assert finish(child) == 0

    assert 'OldSecret99' not in transcript.getvalue()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # tightened from 0644
    config = load_cluster_config(path)
    assert (config.host, config.port, config.username, config.password) == ('10.0.0.1', 9000, 'admin', 'OldSecret99')
    assert config.ca_bundle == '/etc/ssl/certs/ca-certificates.crt'
    text = path.read_text()
    assert '[qfs_filelock]' in text and 'interval = 5' in text


def test_configure_end_of_input_writes_nothing(tmp_path):
    path = tmp_path / 'tool_config.ini'
    child, transcript = spawn_configure(path)
    child.expect_exact('Enter API Host: ')
    child.sendline('10.1.2.3')
    child.expect_exact('Enter API Port [8000]: ')
    child.sendeof()
    assert finish(child) == CONFIG
    shown = transcript.getvalue()
    assert f'tool: error: {path}: configuration cancelled, file not changed' in shown
    assert 'Traceback' not in shown
    assert not path.exists()


# ---------------------------------------------------------------------------------------------
# write_cluster_config (a window's Connect dialog): the file --configure writes, without prompts


def test_write_cluster_config_writes_the_configure_file_0600_and_keeps_other_settings(tmp_path):
    path = tmp_path / 'tool.ini'
    write(path, '[DEFAULT]\nAPI_HOST = old\napi_port = 9000\nPASSWORD = old\nKEEP = me\n[tool]\nx = 1\n', 0o644)
    bundle = tmp_path / 'ca.pem'
    bundle.write_text('pem')
    wanted = ClusterConfig('10.1.2.3', 8443, 'admin', ' p%ss ', None, str(bundle))
    config = write_cluster_config(path, wanted)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (config.host, config.port, config.username, config.password) == ('10.1.2.3', 8443, 'admin', ' p%ss ')
    assert config.ca_bundle == str(bundle) and config.path == str(path)
    text = path.read_text()
    assert 'API_PORT = 8443' in text and 'api_port' not in text and 'PASSWORD = " p%ss "' in text
    assert 'KEEP = me' in text and '[tool]' in text
    assert load_cluster_config(path) == config


def test_write_cluster_config_with_a_token_and_an_unwritable_place(tmp_path):
    config = write_cluster_config(tmp_path / 'new.ini', ClusterConfig('h', 8000, None, None, 'access-v1:abc'))
    assert config.access_token == 'access-v1:abc' and config.username is None
    with pytest.raises(ConfigError, match='cannot save config file'):
        write_cluster_config(tmp_path / 'missing' / 'x.ini', ClusterConfig('h', 8000, 'u', 'p'))
