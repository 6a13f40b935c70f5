"""wormlock.policy: the folders a policy file names, their rules, and which folder holds a file."""

import datetime as dt

import pytest

from common.errors import CONFIG
from wormlock.errors import PolicyError
from wormlock.policy import Folder, Folders, load

NOW = dt.datetime(2026, 12, 7, tzinfo=dt.timezone.utc)


def write(tmp_path, text):
    path = tmp_path / 'policy.toml'
    path.write_text(text)
    return str(path)


def test_folders_take_the_defaults_and_their_own_rules(tmp_path):
    folders = load(
        write(
            tmp_path,
            """
[defaults]
retention = "7y"
exclude = ["*.tmp", "~$*", ".~lock.*#"]

[[folder]]
name = "finance"
path = "/finance/records/"
recursive = true
settle = 60

[[folder]]
path = "/legal/case-17"
retention = "2031-12-31"
legal_hold = "CASE-2026-17"
interval = 0
events = ["child_size_changed"]
exclude = []
""",
        ),
        NOW,
    )
    finance, legal = folders
    assert (finance.name, finance.path, finance.recursive, finance.settle_s) == (
        'finance',
        '/finance/records',
        True,
        60,
    )
    assert str(finance.retention) == '7y' and finance.exclude == ('*.tmp', '~$*', '.~lock.*#')
    assert (legal.name, legal.legal_hold, legal.matter, legal.interval_s) == ('/legal/case-17', True, 'CASE-2026-17', 0)
    assert legal.events == ('child_size_changed',) and legal.exclude == ()


@pytest.mark.parametrize(
    'text, says',
    [
        ('not toml = = 1', 'not valid TOML'),
        ('[[folder]]\npath = "relative"\nretention = "7d"', 'absolute cluster path'),
        ('[[folder]]\npath = "/a"', 'nothing to lock with'),
        ('[[folder]]\npath = "/a"\nretention = "2020-01-01"', 'is in the past'),
        ('[[folder]]\npath = "/a"\nretention = "7d"\ncolour = "red"', 'unknown key colour'),
        ('[[folder]]\npath = "/a"\nretention = "7d"\nevents = ["child_file_add"]', 'unknown event type child_file_add'),
        ('[[folder]]\npath = "/a"\nretention = "7d"\nsettle = 0', 'settle must be more than 0'),
        ('[[folder]]\npath = "/a"\nretention = "7d"\nrecursive = "yes"', 'recursive must be true or false'),
        ('[[folder]]\npath = "/a"\nlegal_hold = "two\\nlines"', 'legal_hold must be'),
        (
            '[[folder]]\npath = "/a"\nretention = "7d"\n[[folder]]\npath = "/a/"\nretention = "1y"',
            'two folders have the path /a',
        ),
        ('[defaults]\nretention = "7d"', 'at least one folder'),
        ('[folders]\npath = "/a"', 'unknown section folders'),
    ],
)
def test_a_wrong_policy_file_is_refused_naming_what_is_wrong(tmp_path, text, says):
    with pytest.raises(PolicyError) as refused:
        load(write(tmp_path, text), NOW)
    assert says in refused.value.message and refused.value.exit_code == CONFIG


def test_a_missing_policy_file_is_a_config_error(tmp_path):
    with pytest.raises(PolicyError, match='cannot read it'):
        load(str(tmp_path / 'none.toml'), NOW)


def test_the_most_specific_folder_holds_a_file():
    top = Folder('top', '/data', recursive=True)
    nested = Folder('nested', '/data/legal', recursive=False)
    folders = Folders([top, nested])
    assert folders.for_path('/data/legal/contract.pdf') is nested
    assert folders.for_path('/data/legal/sub/draft.pdf') is top  # nested is not recursive
    assert folders.for_path('/data/x.txt') is top
    assert folders.for_path('/elsewhere/x.txt') is None
    assert Folders([Folder('flat', '/data')]).for_path('/data/sub/x.txt') is None


def test_excludes_match_the_file_name():
    folder = Folder('f', '/d', exclude=('*.tmp', '~$*', '.~lock.*#'))
    assert folder.excludes('/d/report.tmp') and folder.excludes('/d/~$budget.xlsx')
    assert folder.excludes('/d/.~lock.budget.ods#')
    assert not folder.excludes('/d/budget.xlsx') and not folder.excludes('/d.tmp/budget.xlsx')
