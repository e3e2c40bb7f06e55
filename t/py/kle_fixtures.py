"""What the Python test scripts share beyond TAP: the Lease and Status
bodies the emulator tests send and expect, and the end of a test that keeps
its files when something failed."""

import shutil


def lease(name, holder='a', rv=None, **spec):
    meta = {'name': name}
    if rv is not None:
        meta['resourceVersion'] = rv
    s = {'holderIdentity': holder, 'leaseDurationSeconds': 15,
         'acquireTime': '2026-01-01T00:00:00.000000Z',
         'renewTime': '2026-01-01T00:00:00.000000Z', 'leaseTransitions': 0}
    s.update(spec)
    return {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease',
            'metadata': meta, 'spec': s}


def status(code, reason, message, details=None):
    body = {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {},
            'status': 'Failure', 'message': message, 'reason': reason}
    if details is not None:
        body['details'] = details
    body['code'] = code
    return body


def keep_or_remove(t, path, kept='kept'):
    """After a failure say where the files are ("KEPT PATH"), else remove
    them."""
    if t.failed:
        t.diag('%s %s' % (kept, path))
    else:
        shutil.rmtree(path, ignore_errors=True)
