#!/usr/bin/python3
"""Seeds from the emulator's own answers (t/fuzz/corpus/{lock,watch,
classify}/emu-*): Lease and ConfigMap objects as client-go, the Python
client and a third-party elector leave them, the Status bodies of real
failures, and a watch stream with ADDED, MODIFIED, DELETED, BOOKMARK and
ERROR 410 events, framed as the server frames it, with CRLF and empty
lines and a line just under the line cap added.  Run it again after the
emulator changes; the files are committed.
"""

import json
import os
import shutil
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 't', 'emulator'))

LEASES = '/apis/coordination.k8s.io/v1/namespaces/default/leases'
CMS = '/api/v1/namespaces/default/configmaps'
LEADER = 'control-plane.alpha.kubernetes.io/leader'
ADDRESS = 'leader-election.nginx.org/address'
# a Lease watch event larger than this is refused (kle_lock_watch_event)
LINE_MAX = 256 * 1024 + 1024


def put(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'emu-' + name), 'wb') as f:
        f.write(data)


def main():
    from kube_emulator import EmulatorProcess

    work = tempfile.mkdtemp(prefix='kle-capture-')
    emu = EmulatorProcess(os.path.join(work, 'emu'))
    try:
        emu.start()

        def req(method, path, body=None):
            code, r, out = emu.request(method, path, body)
            return code, r.body

        # a watch from the start, read later with a timeout
        code, first = req('GET', LEASES)
        rv0 = json.loads(first)['metadata']['resourceVersion']

        lease = {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease',
                 'metadata': {'name': 'web', 'namespace': 'default',
                              'labels': {'app': 'nginx'},
                              'annotations': {ADDRESS: '10.0.0.5:8080'}},
                 'spec': {'holderIdentity': 'nginx-0',
                          'leaseDurationSeconds': 15,
                          'acquireTime': '2026-01-01T10:00:00.000000Z',
                          'renewTime': '2026-01-01T10:00:00.000000Z',
                          'leaseTransitions': 0}}
        code, body = req('POST', LEASES, lease)
        put('lock', 'lease-created', b'\0' + body)
        obj = json.loads(body)
        obj['spec']['renewTime'] = '2026-01-01T10:00:02.123456Z'
        code, body = req('PUT', LEASES + '/web', obj)
        put('lock', 'lease-renewed', b'\0' + body)
        code, body = req('PUT', LEASES + '/web', obj)
        put('classify', 'conflict', struct.pack('>H', code) + body)
        code, body = req('GET', LEASES + '/web')
        put('lock', 'lease-get', b'\0' + body)
        put('classify', 'lease-get', struct.pack('>H', code) + body)
        obj = json.loads(body)
        obj['spec'] = {'holderIdentity': '', 'leaseDurationSeconds': 1,
                       'acquireTime': '2026-01-01T10:00:09.000000Z',
                       'renewTime': '2026-01-01T10:00:09.000000Z',
                       'leaseTransitions': 0}
        code, body = req('PUT', LEASES + '/web', obj)
        put('lock', 'lease-released', b'\0' + body)

        # a third-party elector's Lease: no duration, no transitions
        code, body = req('POST', LEASES, {
            'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease',
            'metadata': {'name': 'web', 'namespace': 'default',
                         'annotations': {'x': 'y'}},
            'spec': {'holderIdentity': 'node-app-1',
                     'renewTime': '2026-01-01T10:00:00.123000Z'}})
        if code == 409:
            req('DELETE', LEASES + '/web')
            code, body = req('POST', LEASES, {
                'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease',
                'metadata': {'name': 'web', 'namespace': 'default'},
                'spec': {'holderIdentity': 'node-app-1',
                         'renewTime': '2026-01-01T10:00:00.123000Z'}})
        put('lock', 'lease-third-party', b'\0' + body)
        code, body = req('POST', LEASES, lease)
        put('classify', 'already-exists', struct.pack('>H', code) + body)
        code, body = req('GET', LEASES + '/nope')
        put('classify', 'not-found', struct.pack('>H', code) + body)
        code, body = req('PUT', LEASES + '/web', {'kind': 'Lease',
                                                  'metadata': {'name': 'web'}})
        put('classify', 'invalid', struct.pack('>H', code) + body)

        # ConfigMaps: client-go's annotation, the Python client's, none
        for name, ann in (
                ('cm-client-go', json.dumps(
                    {'holderIdentity': 'nginx-1', 'leaseDurationSeconds': 15,
                     'acquireTime': '2026-01-01T10:00:00Z',
                     'renewTime': '2026-01-01T10:00:04Z',
                     'leaderTransitions': 2}, separators=(',', ':'))),
                ('cm-python', json.dumps(
                    {'holderIdentity': 'py-elector', 'leaseDurationSeconds':
                     '17', 'acquireTime': '2026-08-17 10:00:00.123456',
                     'renewTime': '2026-08-17 10:00:02'})),
                ('cm-none', None)):
            meta = {'name': 'web', 'namespace': 'default',
                    'labels': {'app': 'py'},
                    'annotations': {'other.example/keep': 'me'}}
            if ann is not None:
                meta['annotations'][LEADER] = ann
                meta['annotations'][ADDRESS] = '[fd00::5]:8080'
            req('DELETE', CMS + '/web')
            code, body = req('POST', CMS, {'apiVersion': 'v1',
                                           'kind': 'ConfigMap',
                                           'metadata': meta,
                                           'data': {'k': 'v'}})
            put('lock', name, b'\1' + body)

        # the watch stream so far, framed as the server frames it
        code, r, _ = emu.request(
            'GET', LEASES + '?watch=1&allowWatchBookmarks=true'
            '&fieldSelector=metadata.name%3Dweb&timeoutSeconds=1'
            '&resourceVersion=' + rv0, timeout=5)
        stream = r.body
        req('DELETE', LEASES + '/web')
        bookmark = json.dumps({'type': 'BOOKMARK', 'object': {
            'kind': 'Lease', 'apiVersion': 'coordination.k8s.io/v1',
            'metadata': {'resourceVersion': '12345'}}}).encode() + b'\n'
        expired = json.dumps({'type': 'ERROR', 'object': {
            'kind': 'Status', 'apiVersion': 'v1', 'metadata': {},
            'status': 'Failure', 'message': 'too old resource version: 1 '
            '(12345)', 'reason': 'Expired', 'code': 410}}).encode() + b'\n'
        lines = stream.split(b'\n')
        put('watch', 'stream', stream)
        put('watch', 'bookmark-error', stream + bookmark + expired)
        put('watch', 'crlf-empty', b'\r\n'.join(lines) + b'\r\n\r\n\n'
            + bookmark.replace(b'\n', b'\r\n'))
        put('watch', 'split', b'\n\n\n' + stream[:len(stream) // 2])
        pad = b'{"type":"BOOKMARK","object":{"kind":"Lease","metadata":' \
              b'{"resourceVersion":"7"}},"x":"'
        for name, n in (('line-at-cap', LINE_MAX), ('line-over-cap',
                                                    LINE_MAX + 1)):
            put('watch', name, pad + b'a' * (n - len(pad) - 3) + b'"}\n'
                + bookmark)
        put('lock', 'watch-line-bookmark', b'\2' + bookmark)
        put('lock', 'watch-line-expired', b'\2' + expired)
        for i, ln in enumerate(lines):
            if ln.strip():
                put('lock', 'watch-line-%d' % i, b'\2' + ln)
                put('watch', 'event-%d' % i, ln + b'\n')
                put('lock', 'watch-object-%d' % i, b'\0' + json.dumps(
                    json.loads(ln)['object']).encode())
    finally:
        emu.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
