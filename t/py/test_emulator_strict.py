#!/usr/bin/python3
"""Where the emulator is as strict as kube-apiserver: 415 for a request
Content-Type the server does not read, injected 409s with the real Status
bodies, 504 for a watch from a resourceVersion the store has not reached,
BOOKMARK events, timeoutSeconds, the request log's watch record, and
core/v1 Events (create, get, list, kubectl's table)."""

import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'emulator'))

from tap import Tap                          # noqa: E402
from kle_fixtures import keep_or_remove, lease, status  # noqa: E402
from kube_emulator import EmulatorProcess    # noqa: E402

LEASES = '/apis/coordination.k8s.io/v1/namespaces/default/leases'
CMS = '/api/v1/namespaces/default/configmaps'
EVENTS = '/api/v1/namespaces/default/events'
CONFLICT = ('Operation cannot be fulfilled on leases.coordination.k8s.io '
            '"%s": the object has been modified; please apply your '
            'changes to the latest version and try again')


def test(t):
    tmp = tempfile.mkdtemp(prefix='kle-emu-')
    emu = EmulatorProcess(tmp).start()
    try:
        content_types(t, emu)
        injected_conflicts(t, emu)
        future_watch(t, emu)
        bookmarks(t, emu)
        events(t, emu)
    finally:
        emu.stop()
    keep_or_remove(t, tmp, 'emulator files kept in')


def last_request(emu, method=None):
    reqs = emu.requests(method=method)
    return reqs[-1] if reqs else None


def content_types(t, emu):
    body = json.dumps(lease('ct')).encode()
    accepted = ('the body of the request was in an unknown format - '
                'accepted media types include: application/json, '
                'application/yaml, application/vnd.kubernetes.protobuf')
    for ctype in ('text/plain', 'application/x-www-form-urlencoded',
                  '*/*'):
        code, _, out = emu.request('POST', LEASES, body,
                                   headers={'Content-Type': ctype})
        t.is_((code, out), (415, status(415, 'UnsupportedMediaType',
                                        accepted)),
              'POST with Content-Type %s: 415 UnsupportedMediaType' % ctype)
    code, _, out = emu.request('PUT', LEASES + '/ct', body,
                               headers={'Content-Type': 'text/plain'})
    t.is_(code, 415, 'PUT with Content-Type text/plain: 415')
    t.is_(emu.admin('GET', '/_emulator/objects/leases/default/ct')[0], 404,
          'nothing was stored')
    code, _, out = emu.request('POST', LEASES, body, headers={
        'Content-Type': 'application/json; charset=utf-8'})
    t.is_(code, 201, 'application/json with a charset parameter: 201')
    code, _, out = emu.request('POST', CMS, json.dumps(
        {'metadata': {'name': 'ct-yaml'}}).encode(),
        headers={'Content-Type': 'application/yaml'})
    t.is_(code, 201, 'application/yaml (in its JSON form): 201')
    # http.client sends no Content-Type unless told: JSON, as the server
    conn = emu.connection()
    conn.request('POST', CMS, json.dumps({'metadata': {'name': 'ct-none'}}),
                 headers={'Authorization': 'Bearer ' + emu.token})
    r = conn.getresponse()
    r.read()
    conn.close()
    t.is_(r.status, 201, 'no Content-Type: read as JSON, 201')


def injected_conflicts(t, emu):
    _, _, obj = emu.request('POST', LEASES, lease('c409'))
    rv = obj['metadata']['resourceVersion']
    emu.admin('POST', '/_emulator/faults', {'kind': 'status', 'code': 409,
                                            'method': 'PUT', 'count': 1})
    code, _, out = emu.request('PUT', LEASES + '/c409', lease('c409', 'b',
                                                              rv))
    t.is_((code, out), (409, status(409, 'Conflict', CONFLICT % 'c409', {
        'name': 'c409', 'group': 'coordination.k8s.io', 'kind': 'leases'})),
        "an injected 409 on PUT is the real Conflict Status")
    emu.admin('POST', '/_emulator/faults', {'kind': 'status', 'code': 409,
                                            'method': 'POST', 'count': 1})
    code, _, out = emu.request('POST', LEASES, lease('c409-new'))
    t.is_((code, out), (409, status(
        409, 'AlreadyExists',
        'leases.coordination.k8s.io "c409-new" already exists', {
            'name': 'c409-new', 'group': 'coordination.k8s.io',
            'kind': 'leases'})),
        "an injected 409 on POST is AlreadyExists, naming the body's name")
    emu.admin('POST', '/_emulator/faults', {'kind': 'status', 'code': 409,
                                            'method': 'PUT', 'count': 1})
    code, _, out = emu.request('PUT', CMS + '/x', {'metadata': {'name': 'x'}})
    t.is_(out.get('message'), 'Operation cannot be fulfilled on configmaps '
          '"x": the object has been modified; please apply your changes to '
          'the latest version and try again',
          'a ConfigMap conflict names configmaps')
    emu.admin('POST', '/_emulator/faults', {'kind': 'status', 'code': 409,
                                            'message': 'custom', 'count': 1})
    code, _, out = emu.request('GET', LEASES + '/c409')
    t.is_((code, out['reason'], out['message']), (409, 'Conflict', 'custom'),
          'a 409 fault with its own message keeps it')
    emu.admin('DELETE', '/_emulator/faults')


def future_watch(t, emu):
    emu.admin('POST', '/_emulator/config', {'too_large_wait': 0.5})
    cfg = emu.admin('GET', '/_emulator/config')[1]
    now = int(cfg['resourceVersion'])
    t0 = time.monotonic()
    code, r, out = emu.request(
        'GET', LEASES + '?watch=1&resourceVersion=%d' % (now + 5))
    took = time.monotonic() - t0
    t.is_((code, out), (504, status(
        504, 'Timeout', 'Timeout: Too large resource version: %d, '
        'current: %d' % (now + 5, now),
        {'causes': [{'reason': 'ResourceVersionTooLarge',
                     'message': 'Too large resource version'}],
         'retryAfterSeconds': 1})),
        'a watch from a future resourceVersion: 504 Timeout')
    t.ok(0.4 <= took < 3, 'after waiting too_large_wait (%.2f s)' % took)
    t.is_(r.getheader('Retry-After'), '1', 'with Retry-After: 1')
    rec = last_request(emu)
    t.is_((rec['code'], rec['watch']['end']), (504, 'too large'),
          'the request log says why the watch ended')

    # the store reaches it while the watch waits: events flow
    emu.admin('POST', '/_emulator/config', {'too_large_wait': 3})
    now = int(emu.admin('GET', '/_emulator/config')[1]['resourceVersion'])
    conn = emu.connection(timeout=5)
    conn.request('GET', LEASES + '?watch=1&timeoutSeconds=2&'
                 'resourceVersion=%d' % (now + 1),
                 headers={'Authorization': 'Bearer ' + emu.token})
    time.sleep(0.3)
    emu.request('POST', LEASES, lease('fw1'))
    emu.request('POST', LEASES, lease('fw2'))
    resp = conn.getresponse()
    line = resp.readline()
    ev = json.loads(line) if line else {}
    conn.close()
    t.is_((resp.status, ev.get('type'),
           ev.get('object', {}).get('metadata', {}).get('name')),
          (200, 'ADDED', 'fw2'),
          'the store caught up while the watch waited: it starts after '
          'that resourceVersion')


def read_events(resp, limit=50):
    out = []
    while len(out) < limit:
        line = resp.readline()
        if not line:
            break
        out.append((time.monotonic(), json.loads(line)))
    return out


def bookmarks(t, emu):
    emu.admin('POST', '/_emulator/config', {'bookmark_interval': 0.3})
    _, _, obj = emu.request('POST', LEASES, lease('bm'))
    rv = obj['metadata']['resourceVersion']
    conn = emu.connection(timeout=10)
    conn.request('GET', LEASES + '?watch=1&fieldSelector=metadata.name%3Dbm'
                 '&allowWatchBookmarks=true&timeoutSeconds=3'
                 '&resourceVersion=' + rv,
                 headers={'Authorization': 'Bearer ' + emu.token})
    resp = conn.getresponse()
    time.sleep(0.5)
    _, _, upd = emu.request('PUT', LEASES + '/bm', lease('bm', 'b', rv))
    emu.request('POST', LEASES, lease('bm-other'))
    t0 = time.monotonic()
    evs = read_events(resp)
    took = time.monotonic() - t0
    conn.close()
    kinds = [e['type'] for _, e in evs]
    marks = [e['object'] for _, e in evs if e['type'] == 'BOOKMARK']
    t.ok(len(marks) >= 4, '%d BOOKMARKs in 3 s at an interval of 0.3 s'
         % len(marks), kinds)
    t.ok(all(m == {'kind': 'Lease', 'apiVersion': 'coordination.k8s.io/v1',
                   'metadata': {'resourceVersion':
                                m['metadata']['resourceVersion']}}
             for m in marks),
         'a BOOKMARK holds kind, apiVersion and metadata.resourceVersion '
         'only', marks[:1])
    rvs = [int(m['metadata']['resourceVersion']) for m in marks]
    t.ok(rvs == sorted(rvs) and rvs and rvs[0] >= int(rv),
         'their resourceVersions never go back', rvs)
    last = int(upd['metadata']['resourceVersion'])
    t.ok(rvs and rvs[-1] > last,
         'a bookmark moves past an event the selector filtered out '
         '(%s > %d)' % (rvs[-1:], last))
    t.ok('MODIFIED' in kinds, 'the MODIFIED event arrives among them')
    t.ok(1.5 <= took < 4.5, 'the watch ended at timeoutSeconds (%.2f s)'
         % (took + 0.5))
    rec = last_request(emu, 'GET')
    w = rec.get('watch') or {}
    t.is_((w.get('allowWatchBookmarks'), w.get('timeoutSeconds'),
           w.get('resourceVersion'), w.get('end')),
          (True, 3.0, rv, 'timeout'), 'the request log records the watch '
          'parameters and its end')
    t.is_([x.split()[0] for x in w.get('events', [])], kinds,
          'and every event sent, in order')

    # close-watches ends the open ones
    conn = emu.connection(timeout=10)
    conn.request('GET', LEASES + '?watch=1&resourceVersion=' + rv,
                 headers={'Authorization': 'Bearer ' + emu.token})
    resp = conn.getresponse()
    time.sleep(0.3)
    t0 = time.monotonic()
    emu.admin('POST', '/_emulator/close-watches')
    read_events(resp)
    conn.close()
    took = time.monotonic() - t0
    t.ok(took < 2 and last_request(emu, 'GET')['watch']['end'] == 'closed',
         'close-watches ends an open watch (%.2f s)' % took)

    # none unless asked for
    conn = emu.connection(timeout=10)
    conn.request('GET', LEASES + '?watch=1&timeoutSeconds=1&'
                 'resourceVersion=' + rv,
                 headers={'Authorization': 'Bearer ' + emu.token})
    kinds = [e['type'] for _, e in read_events(conn.getresponse())]
    conn.close()
    t.ok('BOOKMARK' not in kinds, 'no BOOKMARK without '
         'allowWatchBookmarks', kinds)

    # kube-apiserver's: one 2 s before the deadline, whatever the interval
    emu.admin('POST', '/_emulator/config', {'bookmark_interval': 60})
    conn = emu.connection(timeout=10)
    conn.request('GET', LEASES + '?watch=1&timeoutSeconds=3&'
                 'allowWatchBookmarks=1&resourceVersion=' + rv,
                 headers={'Authorization': 'Bearer ' + emu.token})
    t0 = time.monotonic()
    evs = read_events(conn.getresponse())
    conn.close()
    at = [round(when - t0, 1) for when, e in evs if e['type'] == 'BOOKMARK']
    t.ok(len(at) == 1 and 0.7 <= at[0] <= 1.6,
         'one BOOKMARK 2 s before the deadline of a 3 s watch (at %s s)'
         % at)


def events(t, emu):
    ev = {'apiVersion': 'v1', 'kind': 'Event',
          'metadata': {'name': 'web.17a', 'namespace': 'default'},
          'involvedObject': {'kind': 'Lease', 'namespace': 'default',
                             'name': 'web', 'uid': 'u-1',
                             'apiVersion': 'coordination.k8s.io/v1',
                             'resourceVersion': '5'},
          'reason': 'LeaderElection', 'message': 'nginx-0 became leader',
          'source': {'component': 'nginx-leader-election'},
          'firstTimestamp': '2026-01-01T00:00:00Z',
          'lastTimestamp': '2026-01-01T00:00:00Z', 'count': 1,
          'type': 'Normal', 'eventTime': None,
          'reportingComponent': '', 'reportingInstance': ''}
    code, _, out = emu.request('POST', EVENTS, ev)
    t.is_(code, 201, 'POST an Event: 201')
    t.ok(out.get('metadata', {}).get('resourceVersion') and
         out['metadata'].get('uid') and
         out['involvedObject'] == ev['involvedObject'] and
         out['reason'] == 'LeaderElection' and 'eventTime' not in out,
         'the created Event as stored', out)
    code, _, got = emu.request('GET', EVENTS + '/web.17a')
    t.is_((code, got), (200, out), 'GET the Event')
    code, _, lst = emu.request('GET', EVENTS)
    t.is_((code, lst.get('kind'), [i['metadata']['name']
                                   for i in lst.get('items', [])]),
          (200, 'EventList', ['web.17a']), 'the events list holds it')
    code, _, lst = emu.request('GET', '/api/v1/events')
    t.is_((code, len(lst.get('items', []))), (200, 1),
          'and so does the list across namespaces')
    code, _, lst = emu.request(
        'GET', EVENTS + '?fieldSelector=metadata.name%3Dnope')
    t.is_(lst.get('items'), [], 'a field selector narrows the list')
    code, _, out = emu.request('POST', EVENTS, ev)
    t.is_((code, out.get('reason')), (409, 'AlreadyExists'),
          'the same name again: 409 AlreadyExists')
    bad = dict(ev, metadata={'name': 'bad'},
               involvedObject=dict(ev['involvedObject'], namespace='other'))
    code, _, out = emu.request('POST', EVENTS, bad)
    t.is_((code, out.get('reason')), (422, 'Invalid'),
          'involvedObject in another namespace: 422')
    code, _, out = emu.request('POST', EVENTS, dict(ev, metadata={
        'name': 'bad2'}, type='Info'))
    t.is_((code, out.get('reason')), (422, 'Invalid'),
          'type other than Normal or Warning: 422')
    code, _, out = emu.request('POST', EVENTS, dict(ev, metadata={
        'name': 'bad3'}, count='1'))
    t.is_(code, 400, 'count as a string: 400')
    emu.admin('POST', '/_emulator/forbid', {'resource': 'events',
                                            'verbs': ['create']})
    code, _, out = emu.request('POST', EVENTS, dict(ev, metadata={
        'name': 'web.17b'}))
    t.is_((code, out.get('message')), (403, 'events is forbidden: User '
          '"system:serviceaccount:default:default" cannot create resource '
          '"events" in API group "" in the namespace "default"'),
          'RBAC: create on events forbidden, as the real message says')
    emu.admin('DELETE', '/_emulator/forbid')
    code, _, doc = emu.request('GET', '/api/v1')
    t.ok('events' in [r['name'] for r in doc.get('resources', [])],
         'discovery lists events')
    code, _, tab = emu.request('GET', EVENTS, headers={
        'Accept': 'application/json;as=Table;v=v1;g=meta.k8s.io'})
    t.is_([c['name'] for c in tab.get('columnDefinitions', [])] +
          tab['rows'][0]['cells'][1:],
          ['Last Seen', 'Type', 'Reason', 'Object', 'Message', 'Normal',
           'LeaderElection', 'lease/web', 'nginx-0 became leader'],
          'the Table kubectl get events prints')


if __name__ == '__main__':
    Tap().run(test)
