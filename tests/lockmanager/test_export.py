"""lockmanager.export: the table, CSV and JSON carry every column."""

import csv
import io
import json

from lockmanager.export import table_lines, write_csv, write_json
from tests.lockmanager.conftest import row


def test_csv_json_and_table_carry_every_column():
    rows = [row('/fin/a, b.xlsx', 'alice', share_modes=('API_SHARE_MODE_READ',)), row('/eng/x', 'bob')]
    out = io.StringIO()
    write_csv(rows, out)
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert parsed[0]['path'] == '/fin/a, b.xlsx' and parsed[0]['locks'] == 'share read'
    assert parsed[1]['user'] == 'bob' and parsed[1]['location'] == '/eng/x:bob'
    out = io.StringIO()
    write_json(rows, out)
    record = json.loads(out.getvalue())[0]
    assert (record['client'], record['host'], record['share'], record['opened']) == ('10.0.0.5', '', '', None)
    heading, first, second = table_lines(rows)
    assert heading.split() == [
        'Path', 'Share', 'User', 'Client', 'Host', 'name', 'Access', 'Locks', 'held', 'Open', 'since', 'Idle', 'File', 'ID'
    ]  # fmt: skip
    assert first.index('alice') == second.index('bob') == heading.index('User')
