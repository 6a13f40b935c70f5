"""The window's remembered size and column widths (lockmanager.settings), without a screen."""

import json

import pytest

from lockmanager.settings import SettingsFile, WindowSettings, settings_path


def test_the_file_lives_under_xdg_config_home_or_dot_config(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert settings_path({'XDG_CONFIG_HOME': '/x/conf'}) == '/x/conf/qumulo_lock_manager/window.json'
    expected = str(tmp_path / 'home' / '.config' / 'qumulo_lock_manager' / 'window.json')
    assert settings_path({}) == expected
    assert settings_path({'XDG_CONFIG_HOME': 'relative'}) == expected  # the XDG spec: ignored
    monkeypatch.setenv('XDG_CONFIG_HOME', str(tmp_path / 'conf'))
    assert SettingsFile().path == str(tmp_path / 'conf' / 'qumulo_lock_manager' / 'window.json')


def test_saved_settings_are_read_back(tmp_path):
    store = SettingsFile(str(tmp_path / 'conf' / 'qumulo_lock_manager' / 'window.json'))
    assert store.load() == WindowSettings()  # no file yet
    assert store.save(WindowSettings('1300x720', {'files.path': 420, 'sessions.user': 90})) == ''
    assert store.load() == WindowSettings('1300x720', {'files.path': 420, 'sessions.user': 90})
    assert [p.name for p in (tmp_path / 'conf' / 'qumulo_lock_manager').iterdir()] == ['window.json']


@pytest.mark.parametrize(
    'text',
    ['', '{', '\xff\xfe', '[1, 2]', 'null', '{"size": 12, "widths": [1]}', '{"size": "big", "widths": {"a": "wide"}}'],
)
def test_a_damaged_file_is_ignored(tmp_path, text):
    path = tmp_path / 'window.json'
    path.write_bytes(text.encode('latin-1'))
    assert SettingsFile(str(path)).load() == WindowSettings()


def test_values_that_make_no_sense_are_dropped_and_the_rest_kept(tmp_path):
    path = tmp_path / 'window.json'
    widths = {'files.path': 300, 'files.user': -5, 'files.host': 99999, 'files.share': True, 'files.idle': 2.5}
    path.write_text(json.dumps({'size': '1x1', 'widths': widths}))
    assert SettingsFile(str(path)).load() == WindowSettings('', {'files.path': 300})


def test_a_place_it_cannot_write_is_said_not_raised(tmp_path):
    (tmp_path / 'file').write_text('')
    problem = SettingsFile(str(tmp_path / 'file' / 'window.json')).save(WindowSettings('800x600'))
    assert problem.startswith(f'cannot remember the window size in {tmp_path}/file/window.json: ')
