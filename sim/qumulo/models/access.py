"""Who may do what to a file: its ACL, or else the rights its POSIX mode gives.

A cluster checks the file's own permissions for the authenticated user on every file call, on top
of the role-based privileges a route needs (urls.py); the privilege PRIVILEGE_FILE_FULL_ACCESS
(the Administrators and Data-Administrators roles) passes every file check. Rights are named as in
Qumulo's ACLs. Without an ACL, a mode is read the way Qumulo explains a POSIX mode as an ACL:
everyone may read a file's attributes and its ACL, only the owner may change the ACL (and so
set or remove a WORM lock), and the r, w and x bits give the read, write and execute rights to
the owner, the group (every cluster user is in Users, gid 513) and others.

An ACL, set through the API (PUT /v2/files/{ref}/info/acl) or the control surface, is kept in an
extended attribute of the real file: a list of entries {"type": "ALLOWED"|"DENIED", "trustee":
<user name>|"Everyone"|"uid:N"|"gid:N", "rights": [...]}, read in order, the first entry naming a
right deciding it; the owner keeps READ_ACL and WRITE_ACL whatever the ACL says, as on Windows.
"""

import json
import os
import stat

from ..errors import ApiError, bad_request
from .auth import FS_WRITE, USERS_GROUP

ACL_XATTR = 'user.qumulo_sim.acl'
RIGHTS = frozenset(
    {
        'READ',
        'READ_EA',
        'READ_ATTR',
        'READ_ACL',
        'WRITE_EA',
        'WRITE_ATTR',
        'WRITE_ACL',
        'CHANGE_OWNER',
        'WRITE_GROUP',
        'DELETE',
        'EXECUTE',
        'MODIFY',
        'EXTEND',
        'ADD_FILE',
        'ADD_SUBDIR',
        'DELETE_CHILD',
        'SYNCHRONIZE',
        'ACCESS_RIGHTS_ALL',
    }
)
EVERYONE_RIGHTS = frozenset({'READ_ATTR', 'READ_ACL', 'SYNCHRONIZE'})
OWNER_RIGHTS = frozenset({'WRITE_ACL', 'CHANGE_OWNER', 'WRITE_GROUP', 'WRITE_ATTR'})
BIT_RIGHTS = (
    (4, frozenset({'READ', 'READ_EA'})),
    (2, frozenset({'MODIFY', 'EXTEND', 'WRITE_EA', 'WRITE_ATTR', 'ADD_FILE', 'ADD_SUBDIR', 'DELETE_CHILD'})),
    (1, frozenset({'EXECUTE'})),
)
ACE_TYPES = ('ALLOWED', 'DENIED')


def check(user, os_path, st, rights, shown_path):
    """Raise 403 fs_access_denied_error unless `user` holds every one of `rights` on the file."""
    if user is None or FS_WRITE in user.privileges:
        return
    missing = [right for right in rights if not holds(user, os_path, st, right)]
    if missing:
        raise ApiError(
            403, 'fs_access_denied_error', f'Access denied: {user.name} lacks {", ".join(missing)} on {shown_path}'
        )


def holds(user, os_path, st, right):
    owner = st.st_uid == user.uid
    if owner and right in ('READ_ACL', 'WRITE_ACL'):
        return True
    acl = read_acl(os_path)
    if acl is not None:
        for ace in acl:
            if ace['trustee'] in ('Everyone', user.name, f'uid:{user.uid}', f'gid:{USERS_GROUP["gid"]}') and (
                right in ace['rights'] or 'ACCESS_RIGHTS_ALL' in ace['rights']
            ):
                return ace['type'] == 'ALLOWED'
        return False
    if right in EVERYONE_RIGHTS or (owner and right in OWNER_RIGHTS):
        return True
    mode = stat.S_IMODE(st.st_mode)
    bits = (mode >> 6) if owner else (mode >> 3) if st.st_gid == USERS_GROUP['gid'] else mode
    return any(bits & bit and right in granted for bit, granted in BIT_RIGHTS)


def read_acl(os_path):
    try:
        return json.loads(os.getxattr(os_path, ACL_XATTR, follow_symlinks=False))
    except (OSError, ValueError):
        return None


def write_acl(os_path, aces):
    """Set (a list of entries) or clear (None) a file's ACL; entries are checked first."""
    if aces is None:
        try:
            os.removexattr(os_path, ACL_XATTR, follow_symlinks=False)
        except OSError:
            pass
        return
    if not isinstance(aces, list):
        raise bad_request('acl must be a list of entries, or null')
    clean = []
    for ace in aces:
        if not isinstance(ace, dict) or ace.get('type') not in ACE_TYPES or not isinstance(ace.get('trustee'), str):
            raise bad_request('each ACL entry needs "type" (ALLOWED or DENIED), "trustee" and "rights"')
        rights = ace.get('rights')
        if not isinstance(rights, list) or not rights or not set(rights) <= RIGHTS:
            raise bad_request(f'rights must be a list of: {", ".join(sorted(RIGHTS))}')
        clean.append({'type': ace['type'], 'trustee': ace['trustee'], 'rights': list(rights)})
    os.setxattr(os_path, ACL_XATTR, json.dumps(clean).encode(), follow_symlinks=False)


# --- the ACL as the API shows it (/v2/files/{ref}/info/acl) ---------------------------------------
EVERYONE = {'domain': 'WORLD', 'auth_id': '8589934592', 'uid': None, 'gid': None, 'sid': 'S-1-1-0', 'name': 'Everyone'}


def acl_wire(os_path, st, directory):
    """The file's ACL in the API's shape: the stored one, or the one its mode stands for."""
    aces = read_acl(os_path)
    if aces is None:
        mode = stat.S_IMODE(st.st_mode)
        aces = [
            {'type': 'ALLOWED', 'trustee': f'uid:{st.st_uid}', 'rights': _mode_rights(mode >> 6, owner=True)},
            {'type': 'ALLOWED', 'trustee': f'gid:{st.st_gid}', 'rights': _mode_rights(mode >> 3)},
            {'type': 'ALLOWED', 'trustee': 'Everyone', 'rights': _mode_rights(mode)},
        ]
    return {
        'control': ['PRESENT'],
        'posix_special_permissions': [],
        'aces': [
            {'type': a['type'], 'flags': [], 'trustee': _trustee_wire(a['trustee'], directory), 'rights': a['rights']}
            for a in aces
        ],
    }


def acl_from_wire(body):
    """An ACL PUT through the API -> the stored entries (checked by write_acl)."""
    if not isinstance(body, dict) or not isinstance(body.get('aces'), list):
        raise bad_request('an ACL needs "aces", a list of entries')
    aces = []
    for ace in body['aces']:
        trustee = ace.get('trustee') if isinstance(ace, dict) else None
        if not isinstance(trustee, dict):
            raise bad_request('each ACL entry needs a "trustee" object')
        aces.append(dict(ace, trustee=_trustee_name(trustee)))
    return aces


def _mode_rights(bits, owner=False):
    rights = set(EVERYONE_RIGHTS) | (OWNER_RIGHTS | {'READ_ACL', 'WRITE_ACL'} if owner else set())
    for bit, granted in BIT_RIGHTS:
        if bits & bit:
            rights |= granted
    return sorted(rights)


def _trustee_wire(trustee, directory):
    if trustee == 'Everyone':
        return dict(EVERYONE)
    kind, _, number = trustee.partition(':')
    if kind == 'uid' and number.isdigit():
        return {
            'domain': 'POSIX_USER',
            'auth_id': str(12884901888 + int(number)),
            'uid': int(number),
            'gid': None,
            'sid': None,
            'name': None,
        }
    if kind == 'gid' and number.isdigit():
        return {
            'domain': 'POSIX_GROUP',
            'auth_id': str(17179869184 + int(number)),
            'uid': None,
            'gid': int(number),
            'sid': None,
            'name': None,
        }
    user = directory.users.get(trustee)
    return (
        user.identity()
        if user
        else {'domain': 'LOCAL', 'auth_id': None, 'uid': None, 'gid': None, 'sid': None, 'name': trustee}
    )


def _trustee_name(trustee):
    if trustee.get('domain') == 'WORLD' or trustee.get('name') == 'Everyone':
        return 'Everyone'
    if trustee.get('name'):
        return str(trustee['name'])
    if trustee.get('uid') is not None:
        return f'uid:{int(trustee["uid"])}'
    if trustee.get('gid') is not None:
        return f'gid:{int(trustee["gid"])}'
    raise bad_request('an ACL trustee needs a name, a uid or a gid')
