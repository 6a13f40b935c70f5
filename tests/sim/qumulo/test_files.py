"""The file system (sim/qumulo/models/files.py, urls.py): attributes by path and by id, listings,
every route under /api too."""

import os

import requests

from tests.sim.qumulo.conftest import error_of, make_files


def test_attributes_by_path_and_by_id_agree_and_ids_survive_rename(sim):
    make_files(sim.root, ['dir/a.txt'], b'hello')
    rc = sim.client()
    by_path = rc.fs.get_file_attr(path='/dir/a.txt')
    assert by_path['size'] == '5' and by_path['type'] == 'FS_FILE_TYPE_FILE'
    assert by_path['id'] == by_path['file_number'] == str(os.stat(sim.root / 'dir/a.txt').st_ino)
    os.rename(sim.root / 'dir/a.txt', sim.root / 'dir/b.txt')
    by_id = rc.fs.get_file_attr(id_=by_path['id'])
    assert by_id['path'] == '/dir/b.txt' and by_id['name'] == 'b.txt'
    assert rc.fs.get_file_attr(path='/dir')['type'] == 'FS_FILE_TYPE_DIRECTORY'
    assert rc.fs.resolve_paths([by_path['id']]) == [{'id': by_path['id'], 'path': '/dir/b.txt'}]


def test_missing_path_is_404(sim):
    error = error_of(lambda: sim.client().fs.get_file_attr(path='/no/such'))
    assert error.status_code == 404 and error.error_class == 'fs_no_such_path_error'


def test_directory_listing_pages_through_every_entry(sim):
    names = [f'f{i:03d}' for i in range(250)]
    make_files(sim.root, [f'big/{n}' for n in names])
    pages = list(sim.client().fs.read_entire_directory(path='/big', page_size=100))
    assert len(pages) == 3 and all(page['child_count'] == 250 for page in pages)
    assert [f['name'] for page in pages for f in page['files']] == names


def test_every_endpoint_answers_under_api_prefix(sim):
    make_files(sim.root, ['p.txt'])
    token = sim.client().credentials.bearer_token
    headers = {'Authorization': f'Bearer {token}'}
    for prefix in ('/v1', '/api/v1'):
        reply = requests.get(
            f'{sim.url}{prefix}/files/%2Fp.txt/info/attributes', headers=headers, verify=str(sim.cert_path), timeout=10
        )
        assert reply.status_code == 200 and reply.json()['path'] == '/p.txt'
        assert reply.headers['ETag']
