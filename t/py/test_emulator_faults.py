#!/usr/bin/python3
"""The emulator's API semantics and every fault kind, over plain
http.client + ssl, against a fresh emulator process."""

import http.client
import json
import os
import socket
import ssl
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'emulator'))

from tap import Tap                          # noqa: E402
from kle_fixtures import keep_or_remove, lease, status  # noqa: E402
from kube_emulator import EmulatorProcess    # noqa: E402

LEASES = '/apis/coordination.k8s.io/v1/namespaces/default/leases'
CMS = '/api/v1/namespaces/default/configmaps'


def test(t):
    tmp = tempfile.mkdtemp(prefix='kle-emu-')
    emu = EmulatorProcess(tmp).start()
    try:
        basics(t, emu, tmp)
        conflicts(t, emu)
        faults(t, emu)
        watches(t, emu)
        concurrency(t, emu)
    finally:
        rc = emu.stop()
    t.is_(rc, 0, 'SIGTERM: clean exit')
    t.ok(not os.path.exists(os.path.join(tmp, 'port')),
         'port file removed on exit')
    keep_or_remove(t, tmp, 'emulator files kept in')


def basics(t, emu, tmp):
    for f in ('ca.crt', 'client.crt', 'client.key', 'token', 'kubeconfig',
              'emulator.log'):
        t.ok(os.path.exists(os.path.join(tmp, f)), 'wrote ' + f)
    code, _, body = emu.request('GET', LEASES + '/x', token=None)
    t.is_((code, body), (401, {'kind': 'Status', 'apiVersion': 'v1',
                               'metadata': {}, 'status': 'Failure',
                               'message': 'Unauthorized',
                               'reason': 'Unauthorized', 'code': 401}),
          '401 Status without a token')
    code, _, _ = emu.request('GET', LEASES + '/x', token='wrong')
    t.is_(code, 401, '401 with an unknown token')

    # client certificate instead of a token
    ctx = ssl.create_default_context(cafile=emu.ca)
    ctx.load_cert_chain(os.path.join(tmp, 'client.crt'),
                        os.path.join(tmp, 'client.key'))
    conn = emu.connection(context=ctx)
    conn.request('GET', LEASES)
    r = conn.getresponse()
    t.is_(r.status, 200, 'client certificate signed by the CA is accepted')
    r.read()
    conn.close()

    # tokens at runtime
    emu.admin('POST', '/_emulator/tokens', {'token': 'extra', 'user': 'bob'})
    t.is_(emu.request('GET', LEASES, token='extra')[0], 200,
          'token added at runtime is accepted')
    emu.admin('DELETE', '/_emulator/tokens/extra')
    t.is_(emu.request('GET', LEASES, token='extra')[0], 401,
          'revoked token gets 401')

    # discovery and version
    code, _, body = emu.request('GET', '/apis')
    t.is_(body['groups'][0]['preferredVersion']['groupVersion'],
          'coordination.k8s.io/v1', '/apis lists coordination.k8s.io/v1')
    code, _, body = emu.request('GET', '/api/v1')
    t.ok('configmaps' in [r['name'] for r in body['resources']],
         '/api/v1 lists configmaps')

    # create, resourceVersion, server-set metadata
    code, _, a = emu.request('POST', LEASES, lease('rv-a'))
    t.is_(code, 201, 'create a Lease: 201')
    m = a['metadata']
    t.ok(m.get('uid') and m.get('creationTimestamp') and
         m.get('namespace') == 'default', 'server sets uid, '
         'creationTimestamp, namespace')
    code, _, b = emu.request('POST', CMS, {'metadata': {'name': 'rv-b'}})
    t.is_(int(b['metadata']['resourceVersion']),
          int(m['resourceVersion']) + 1,
          'one resourceVersion counter across kinds')
    upd = lease('rv-a', 'b', m['resourceVersion'])
    code, _, c = emu.request('PUT', LEASES + '/rv-a', upd)
    t.is_((code, int(c['metadata']['resourceVersion'])),
          (200, int(m['resourceVersion']) + 2),
          'update: 200 and resourceVersion increments')
    t.is_(c['metadata']['uid'], m['uid'], 'uid kept across updates')
    code, _, same = emu.request('PUT', LEASES + '/rv-a',
                                lease('rv-a', 'b', c['metadata']
                                      ['resourceVersion']))
    t.is_(same['metadata']['resourceVersion'],
          c['metadata']['resourceVersion'],
          'a no-op update keeps the resourceVersion')
    code, stored = emu.admin('GET', '/_emulator/objects/leases/default/rv-a')
    t.is_((code, stored), (200, c), 'admin API returns the stored object')
    code, _, lst = emu.request('GET', LEASES)
    t.is_((lst['kind'], [i['metadata']['name'] for i in lst['items']]),
          ('LeaseList', ['rv-a']), 'list: LeaseList with the items')
    t.ok(int(lst['metadata']['resourceVersion']) >=
         int(c['metadata']['resourceVersion']), 'list carries a '
         'resourceVersion')

    # MicroTime is parsed strictly and stored in UTC
    code, _, z = emu.request('POST', LEASES, lease(
        'tz', renewTime='2026-01-01T02:00:00.250000+02:00'))
    t.is_(z['spec']['renewTime'], '2026-01-01T00:00:00.250000Z',
          'MicroTime with an offset is stored as UTC with 6 digits')
    code, _, bad = emu.request('POST', LEASES, lease(
        'tz2', renewTime='2026-01-01T00:00:00Z'))
    t.is_((code, bad['reason']), (400, 'BadRequest'),
          'MicroTime without 6 fraction digits: 400 as the real server')
    code, _, bad = emu.request('POST', LEASES, lease(
        'tz3', leaseDurationSeconds='15'))
    t.is_((code, bad['reason']), (400, 'BadRequest'),
          'leaseDurationSeconds as a string: 400')

    # keep-alive: two requests, one connection
    conn = emu.connection()
    hdr = {'Authorization': 'Bearer ' + emu.token}
    conn.request('GET', LEASES + '/rv-a', headers=hdr)
    r1 = conn.getresponse()
    d1 = r1.read()
    sock1 = conn.sock
    conn.request('GET', LEASES + '/nope', headers=hdr)
    r2 = conn.getresponse()
    r2.read()
    t.ok(r1.status == 200 and r2.status == 404 and conn.sock is sock1 and
         int(r1.getheader('Content-Length')) == len(d1),
         'keep-alive with correct Content-Length')
    conn.close()

    # patches
    code, _, p = emu.request(
        'PATCH', CMS + '/rv-b',
        {'metadata': {'annotations': {'x': '1', 'y': '2'}}},
        headers={'Content-Type': 'application/merge-patch+json'})
    t.is_((code, p['metadata'].get('annotations')), (200, {'x': '1',
                                                           'y': '2'}),
          'merge patch adds annotations')
    code, _, p = emu.request(
        'PATCH', CMS + '/rv-b', {'metadata': {'annotations': {'x': None}}},
        headers={'Content-Type': 'application/strategic-merge-patch+json'})
    t.is_(p['metadata'].get('annotations'), {'y': '2'},
          'strategic merge patch removes one and keeps the other')
    code, _, p = emu.request(
        'PATCH', CMS + '/rv-b',
        [{'op': 'add', 'path': '/data', 'value': {'k': 'v'}}],
        headers={'Content-Type': 'application/json-patch+json'})
    t.is_(p.get('data'), {'k': 'v'}, 'JSON patch')


def conflicts(t, emu):
    code, _, a = emu.request('POST', LEASES, lease('c1'))
    rv = a['metadata']['resourceVersion']
    emu.request('PUT', LEASES + '/c1', lease('c1', 'b', rv))
    code, _, body = emu.request('PUT', LEASES + '/c1', lease('c1', 'c', rv))
    t.is_((code, body), (409, status(
        409, 'Conflict', 'Operation cannot be fulfilled on '
        'leases.coordination.k8s.io "c1": the object has been modified; '
        'please apply your changes to the latest version and try again',
        {'name': 'c1', 'group': 'coordination.k8s.io', 'kind': 'leases'})),
        '409 Conflict body exact')
    code, _, body = emu.request('POST', LEASES, lease('c1'))
    t.is_((code, body), (409, status(
        409, 'AlreadyExists',
        'leases.coordination.k8s.io "c1" already exists',
        {'name': 'c1', 'group': 'coordination.k8s.io', 'kind': 'leases'})),
        '409 AlreadyExists body exact')
    code, _, body = emu.request('GET', LEASES + '/none')
    t.is_((code, body), (404, status(
        404, 'NotFound', 'leases.coordination.k8s.io "none" not found',
        {'name': 'none', 'group': 'coordination.k8s.io', 'kind': 'leases'})),
        '404 NotFound body exact')
    code, _, body = emu.request('GET', CMS + '/none')
    t.is_((code, body), (404, status(
        404, 'NotFound', 'configmaps "none" not found',
        {'name': 'none', 'kind': 'configmaps'})),
        '404 for a ConfigMap: no group')
    code, _, body = emu.request('PUT', LEASES + '/c1', lease('c1', 'z'))
    t.is_((code, body['reason'], body['message']), (
        422, 'Invalid', 'Lease.coordination.k8s.io "c1" is invalid: '
        'metadata.resourceVersion: Invalid value: 0x0: must be specified '
        'for an update'), 'Lease PUT without resourceVersion: 422 Invalid')
    emu.request('POST', CMS, {'metadata': {'name': 'c2'},
                              'data': {'a': '1'}})
    code, _, body = emu.request('PUT', CMS + '/c2', {
        'metadata': {'name': 'c2'}, 'data': {'a': '2'}})
    t.is_((code, body.get('data')), (200, {'a': '2'}),
          'ConfigMap PUT without resourceVersion overwrites')
    code, _, body = emu.request('PUT', LEASES + '/c1', {
        'metadata': {'name': 'c1', 'namespace': 'other'}, 'spec': {}})
    t.is_((code, body['reason']), (400, 'BadRequest'),
          'namespace in body differs from URL: 400')
    code, _, body = emu.request('PUT', LEASES + '/c1', lease('c9', rv='1'))
    t.is_((code, body['reason']), (400, 'BadRequest'),
          'name in body differs from URL: 400')

    emu.admin('POST', '/_emulator/forbid', {
        'resource': 'leases', 'namespace': 'default', 'name': 'c1',
        'verbs': ['update']})
    code, _, cur = emu.request('GET', LEASES + '/c1')
    t.is_(code, 200, 'forbidden verbs only: get still allowed')
    code, _, body = emu.request('PUT', LEASES + '/c1', cur)
    t.is_((code, body), (403, status(
        403, 'Forbidden', 'leases.coordination.k8s.io "c1" is forbidden: '
        'User "system:serviceaccount:default:default" cannot update '
        'resource "leases" in API group "coordination.k8s.io" in the '
        'namespace "default"',
        {'name': 'c1', 'group': 'coordination.k8s.io', 'kind': 'leases'})),
        '403 Forbidden body exact')
    emu.admin('DELETE', '/_emulator/forbid')
    t.is_(emu.request('PUT', LEASES + '/c1', cur)[0], 200,
          'update allowed again after clearing')
    emu.admin('POST', '/_emulator/forbid', {'name': 'c1', 'verbs': ['watch']})
    code, _, body = emu.request(
        'GET', LEASES + '?watch=1&fieldSelector=metadata.name%3Dc1')
    t.is_((code, body['message']), (403, 'leases.coordination.k8s.io "c1" '
          'is forbidden: User "system:serviceaccount:default:default" cannot'
          ' watch resource "leases" in API group "coordination.k8s.io" in '
          'the namespace "default"'), 'a watch of one object is authorised '
          'as that object')
    emu.admin('DELETE', '/_emulator/forbid')


def fault(emu, **spec):
    code, body = emu.admin('POST', '/_emulator/faults', spec)
    assert code == 200, body
    return body['faults'][0]['id']


def faults(t, emu):
    emu.request('POST', LEASES, lease('f1'))
    path = LEASES + '/f1'

    fault(emu, kind='status', code=503, path='/leases/f1', count=1)
    code, _, body = emu.request('GET', path)
    t.is_((code, body.get('reason'), body.get('kind')),
          (503, 'ServiceUnavailable', 'Status'), 'status fault: 503 Status')
    t.is_(emu.request('GET', path)[0], 200, 'fault cleared after count')

    fault(emu, kind='status', code=429, retry_after=2, path='/leases/f1',
          method='PUT', count=1)
    t.is_(emu.request('GET', path)[0], 200, 'fault scoped by method')
    code, r, body = emu.request('PUT', path, lease('f1', rv='1'))
    t.is_((code, r.getheader('Retry-After'), body['reason'],
           body['details']), (429, '2', 'TooManyRequests',
                              {'retryAfterSeconds': 2}),
          '429 with Retry-After')

    fault(emu, kind='status', code=500, path='/leases/f1', count=1)
    code, _, body = emu.request('GET', path)
    t.is_((code, body['reason']), (500, 'InternalError'), '500 Status')

    fault(emu, kind='reset', path='/leases/f1', count=1)
    try:
        emu.request('GET', path)
        t.ok(False, 'reset: connection closed without an answer')
    except (ConnectionError, http.client.HTTPException, ssl.SSLError) as e:
        t.ok(True, 'reset: connection closed without an answer (%s)'
             % type(e).__name__)

    _, _, real = emu.request('GET', path)
    fault(emu, kind='malformed', path='/leases/f1', count=1)
    code, r, raw = emu.request('GET', path)
    t.ok(code == 200 and isinstance(raw, bytes) and
         json.dumps(real, separators=(',', ':')).startswith(
             raw.decode()) and int(r.getheader('Content-Length')) ==
         len(raw), 'malformed: 200, truncated JSON, consistent length')

    fault(emu, kind='html', path='/leases/f1', count=1)
    code, r, raw = emu.request('GET', path)
    t.ok(code == 502 and r.getheader('Content-Type') == 'text/html' and
         raw.startswith(b'<html>'), 'html: 502 with an HTML body')

    fault(emu, kind='oversized', mib=3, path='/leases/f1', count=1)
    code, r, _ = emu.request('GET', path)
    t.ok(code == 200 and len(r.body) == 3 * 1024 * 1024 and
         int(r.getheader('Content-Length')) == len(r.body),
         'oversized: 200 with a 3 MiB body')

    # stall: no answer until the fault is cleared
    fid = fault(emu, kind='stall', path='/leases/f1')
    t0 = time.monotonic()
    try:
        emu.request('GET', path, timeout=1)
        t.ok(False, 'stall: no answer')
    except socket.timeout:
        t.ok(time.monotonic() - t0 >= 0.9, 'stall: no answer')
    result = {}

    def stalled():
        result['code'] = emu.request('GET', path, timeout=10)[0]
        result['at'] = time.monotonic()
    th = threading.Thread(target=stalled)
    th.start()
    time.sleep(0.5)
    t.ok('code' not in result, 'stalled request still waiting')
    cleared = time.monotonic()
    emu.admin('DELETE', '/_emulator/faults/%d' % fid)
    th.join(5)
    t.ok(result.get('code') == 200 and result['at'] >= cleared,
         'stalled request answered once the fault is cleared')
    time.sleep(0.3)
    notes = [r.get('fault', '') for r in emu.requests() if r['path'] == path]
    t.ok(any('client went away' in n for n in notes),
         'request log notes the client that gave up')

    # after: the request is applied, the answer is lost
    _, _, cur = emu.request('GET', path)
    fault(emu, kind='reset', path='/leases/f1', method='PUT', after=True,
          count=1)
    try:
        emu.request('PUT', path, lease('f1', 'after', cur['metadata']
                                       ['resourceVersion']))
    except (ConnectionError, http.client.HTTPException):
        pass
    _, stored = emu.admin('GET', '/_emulator/objects/leases/default/f1')
    t.is_(stored['spec']['holderIdentity'], 'after',
          'after=true: update applied although the answer was lost')

    n = len([r for r in emu.requests(method='PUT') if r['path'] == path])
    t.is_(n, 2, 'request log counts the PUTs')
    emu.admin('DELETE', '/_emulator/faults')


def read_event(resp):
    line = resp.readline()
    return json.loads(line) if line else None


def watches(t, emu):
    _, _, w = emu.request('POST', LEASES, lease('w1'))
    rv = w['metadata']['resourceVersion']
    conn = emu.connection(timeout=5)
    conn.request('GET', LEASES + '?watch=1&fieldSelector=metadata.name%3Dw1'
                 '&resourceVersion=' + rv,
                 headers={'Authorization': 'Bearer ' + emu.token})
    resp = conn.getresponse()
    t.is_((resp.status, resp.getheader('Transfer-Encoding')),
          (200, 'chunked'), 'watch: 200, chunked')
    emu.request('POST', LEASES, lease('w-other'))
    _, _, w2 = emu.request('PUT', LEASES + '/w1', lease('w1', 'new', rv))
    ev = read_event(resp)
    t.is_((ev['type'], ev['object']['spec']['holderIdentity'],
           ev['object']['metadata']['resourceVersion']),
          ('MODIFIED', 'new', w2['metadata']['resourceVersion']),
          'watch delivers MODIFIED after a PUT (field selector applied)')
    emu.admin('DELETE', '/_emulator/objects/leases/default/w1')
    ev = read_event(resp)
    t.is_(ev['type'], 'DELETED', 'watch delivers DELETED')
    conn.close()

    # without a resourceVersion: current state first
    conn = emu.connection(timeout=5)
    conn.request('GET', LEASES + '?watch=true&timeoutSeconds=1',
                 headers={'Authorization': 'Bearer ' + emu.token})
    resp = conn.getresponse()
    t0 = time.monotonic()
    names = []
    while True:
        ev = read_event(resp)
        if ev is None:
            break
        names.append((ev['type'], ev['object']['metadata']['name']))
    took = time.monotonic() - t0
    t.ok(('ADDED', 'w-other') in names, 'watch without rv starts with '
         'ADDED for existing objects')
    t.ok(0.7 <= took <= 3, 'timeoutSeconds honoured (%.2fs)' % took)
    conn.close()

    emu.admin('POST', '/_emulator/compact')
    conn = emu.connection(timeout=5)
    conn.request('GET', LEASES + '?watch=1&resourceVersion=' + rv,
                 headers={'Authorization': 'Bearer ' + emu.token})
    resp = conn.getresponse()
    ev = read_event(resp)
    t.ok(resp.status == 200 and ev['type'] == 'ERROR' and
         ev['object']['code'] == 410 and
         ev['object']['reason'] == 'Expired',
         'expired resourceVersion: ERROR event with 410 Expired',
         json.dumps(ev))
    t.is_(read_event(resp), None, 'stream ends after the ERROR event')
    conn.close()
    emu.admin('POST', '/_emulator/config', {'watch_expired': 'http'})
    code, _, body = emu.request('GET', LEASES + '?watch=1&resourceVersion='
                                + rv)
    t.is_((code, body['reason']), (410, 'Expired'),
          'watch_expired=http: HTTP 410')
    emu.admin('POST', '/_emulator/config', {'watch_expired': 'event'})


def concurrency(t, emu):
    emu.request('POST', LEASES, lease('slow'))
    emu.request('POST', LEASES, lease('fast'))
    fault(emu, kind='latency', ms=1500, path='/leases/slow')
    done = {}

    def slow():
        t0 = time.monotonic()
        code = emu.request('GET', LEASES + '/slow')[0]
        done['slow'] = (code, time.monotonic() - t0)
    th = threading.Thread(target=slow)
    th.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    code = emu.request('GET', LEASES + '/fast')[0]
    fast = time.monotonic() - t0
    th.join(5)
    t.ok(code == 200 and fast < 0.5, 'concurrent request not delayed '
         '(%.3fs)' % fast)
    t.ok(done['slow'][0] == 200 and done['slow'][1] >= 1.4,
         'latency fault delays its own request (%.2fs)' % done['slow'][1])
    emu.admin('DELETE', '/_emulator/faults')
    # jitter_ms: ms + a uniform 0 to jitter_ms, drawn for each request
    fault(emu, kind='latency', ms=100, jitter_ms=200, path='/leases/fast')
    took = []
    for _ in range(8):
        t0 = time.monotonic()
        emu.request('GET', LEASES + '/fast')
        took.append(time.monotonic() - t0)
    t.ok(min(took) >= 0.099 and max(took) - min(took) > 0.02,
         'latency jitter_ms: each request waits its own 100 to 300 ms '
         '(%s)' % ' '.join('%.3f' % x for x in took))
    emu.admin('DELETE', '/_emulator/faults')
    code, body = emu.admin('POST', '/_emulator/reset')
    t.is_(emu.request('GET', LEASES)[2]['items'], [],
          'reset empties the store')


if __name__ == '__main__':
    Tap().run(test)
