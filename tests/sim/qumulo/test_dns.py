"""Reverse DNS of client addresses (sim/qumulo/models/dns.py): names registered through
POST /sim/dns, answered by POST /v1/dns/resolve-ips-to-names, through the official SDK."""

import urllib.error

import pytest
import requests


def resolve(sim, *ips):
    return sim.client().dns.resolve_ips_to_names(list(ips))


def test_registered_names_are_ok_others_not_found_and_garbage_an_error(sim):
    assert sim.control('dns', {'ip_address': '10.0.0.5', 'hostname': 'alice-pc.example.com'}) == {'registered': 1}
    registered = [
        {'ip_address': '10.0.0.6', 'hostname': 'bob-pc.example.com'},
        {'ip_address': 'fe80::0:1', 'hostname': 'carol-mac.example.com'},
    ]
    assert sim.control('dns', registered) == {'registered': 2}
    assert resolve(sim, '10.0.0.5', '10.0.0.6', 'fe80::1', '10.9.9.9', 'not-an-ip') == [
        {'ip_address': '10.0.0.5', 'hostname': 'alice-pc.example.com', 'result': 'OK'},
        {'ip_address': '10.0.0.6', 'hostname': 'bob-pc.example.com', 'result': 'OK'},
        {'ip_address': 'fe80::1', 'hostname': 'carol-mac.example.com', 'result': 'OK'},
        {'ip_address': '10.9.9.9', 'hostname': '', 'result': 'NOT_FOUND'},
        {'ip_address': 'not-an-ip', 'hostname': '', 'result': 'ERROR'},
    ]
    sim.control('dns', {'ip_address': '10.0.0.5', 'hostname': 'alice-laptop.example.com'})  # a new name replaces
    assert resolve(sim, '10.0.0.5')[0]['hostname'] == 'alice-laptop.example.com'


@pytest.mark.parametrize(
    'body',
    [
        {'ip_address': 'nope', 'hostname': 'x'},
        {'ip_address': '10.0.0.1'},
        {'ip_address': '10.0.0.1', 'hostname': ''},
        [5],
    ],
)
def test_a_bad_registration_is_a_400_and_registers_nothing(sim, body):
    with pytest.raises(urllib.error.HTTPError) as refused:
        sim.control('dns', [{'ip_address': '10.0.0.7', 'hostname': 'fine.example.com'}, body])
    assert refused.value.code == 400
    assert resolve(sim, '10.0.0.7')[0]['result'] == 'NOT_FOUND'


def test_resolving_needs_a_list_of_strings(sim):
    rc = sim.client()
    for body in ({'ips': ['10.0.0.1']}, [1, 2]):
        reply = requests.post(
            f'{sim.url}/v1/dns/resolve-ips-to-names',
            json=body,
            headers={'Authorization': f'Bearer {rc.credentials.bearer_token}'},
            verify=False,
            timeout=30,
        )
        assert reply.status_code == 400 and reply.json()['error_class'] == 'invalid_request_error'
