"""The error a Qumulo cluster answers with: an HTTP status plus a JSON body of a known shape."""


class ApiError(Exception):
    def __init__(self, status, error_class, description, headers=None):
        super().__init__(description)
        self.status = status
        self.error_class = error_class
        self.description = description
        self.headers = headers or {}  # e.g. Retry-After on a 429 or 503

    def body(self):
        return {
            'module': 'sim.qumulo',
            'error_class': self.error_class,
            'description': self.description,
            'stack': [],
            'user_visible': True,
        }


def not_found(what):
    return ApiError(404, 'fs_no_such_entry_error', f'{what} does not exist')


def bad_request(description):
    return ApiError(400, 'invalid_request_error', description)


def need_login():
    # A real cluster answers a missing or expired session with 401 and no body; the SDK then
    # reports "Need to log in first".
    return ApiError(401, 'unauthorized_error', 'Need to log in first to establish credentials.')


def privilege_denied(privilege):
    return ApiError(403, 'privilege_denied_error', f'User lacks the privilege {privilege}')
