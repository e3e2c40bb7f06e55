#!/usr/bin/python3
"""Writes the seed corpora (t/fuzz/corpus/TARGET/seed-*) and dictionaries
(t/fuzz/dict/TARGET.dict) that need no server: unit-test fixtures, records
as client-go, the Python client and third-party electors write them, and
real-world kubeconfig shapes (EKS, GKE, kind, minikube, service account)
with every secret replaced.  Answers captured from the emulator come from
capture.py.  Re-running rewrites the seed-* files only; inputs the fuzzer
found (other names) are kept.
"""

import base64
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def b64(s):
    return base64.b64encode(s.encode()).decode()


PEM = b64('-----BEGIN CERTIFICATE-----\nMIIBscrubbed\n'
          '-----END CERTIFICATE-----\n')
KEY = b64('-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIscrubbed\n'
          '-----END EC PRIVATE KEY-----\n')
JWT = ('eyJhbGciOiJSUzI1NiIsImtpZCI6InNjcnViYmVkIn0.eyJzdWIiOiJzeXN0ZW06c2'
       'VydmljZWFjY291bnQ6ZGVmYXVsdDpuZ2lueCJ9.c2NydWJiZWQ')

KUBECONFIGS = {
    'kind': '''apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: %s
    server: https://127.0.0.1:40123
  name: kind-kind
contexts:
- context:
    cluster: kind-kind
    user: kind-kind
  name: kind-kind
current-context: kind-kind
kind: Config
preferences: {}
users:
- name: kind-kind
  user:
    client-certificate-data: %s
    client-key-data: %s
''' % (PEM, PEM, KEY),
    'eks': '''apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: %s
    server: https://0123456789ABCDEF0123456789ABCDEF.gr7.eu-west-1.eks.amazonaws.com
  name: arn:aws:eks:eu-west-1:111122223333:cluster/prod
contexts:
- context:
    cluster: arn:aws:eks:eu-west-1:111122223333:cluster/prod
    user: arn:aws:eks:eu-west-1:111122223333:cluster/prod
  name: arn:aws:eks:eu-west-1:111122223333:cluster/prod
current-context: arn:aws:eks:eu-west-1:111122223333:cluster/prod
kind: Config
preferences: {}
users:
- name: arn:aws:eks:eu-west-1:111122223333:cluster/prod
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args:
      - --region
      - eu-west-1
      - eks
      - get-token
      - --cluster-name
      - prod
      - --output
      - json
      command: aws
      env: null
      interactiveMode: IfAvailable
      provideClusterInfo: false
''' % PEM,
    'gke': '''apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: %s
    server: https://34.0.0.1
  name: gke_my-project_europe-west1_prod
contexts:
- context:
    cluster: gke_my-project_europe-west1_prod
    user: gke_my-project_europe-west1_prod
    namespace: web
  name: gke_my-project_europe-west1_prod
current-context: gke_my-project_europe-west1_prod
kind: Config
preferences: {}
users:
- name: gke_my-project_europe-west1_prod
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: gke-gcloud-auth-plugin
      installHint: Install gke-gcloud-auth-plugin for use with kubectl by
        following the GKE documentation
      provideClusterInfo: true
''' % PEM,
    'gke-legacy': '''apiVersion: v1
kind: Config
current-context: gke
contexts: [{name: gke, context: {cluster: gke, user: gke}}]
clusters: [{name: gke, cluster: {server: "https://35.0.0.1",
  certificate-authority-data: %s}}]
users:
- name: gke
  user:
    auth-provider:
      config:
        access-token: scrubbed
        cmd-args: config config-helper --format=json
        cmd-path: /usr/lib/google-cloud-sdk/bin/gcloud
        expiry: "2026-01-01T10:00:00Z"
        expiry-key: '{.credential.token_expiry}'
        token-key: '{.credential.access_token}'
      name: gcp
''' % PEM,
    'minikube': '''apiVersion: v1
clusters:
- cluster:
    certificate-authority: /nonexistent-kle-fuzz/.minikube/ca.crt
    extensions:
    - extension:
        last-update: Mon, 01 Jan 2024 10:00:00 UTC
        provider: minikube.sigs.k8s.io
        version: v1.32.0
      name: cluster_info
    server: https://192.168.49.2:8443
  name: minikube
contexts:
- context:
    cluster: minikube
    extensions:
    - extension:
        provider: minikube.sigs.k8s.io
      name: context_info
    namespace: default
    user: minikube
  name: minikube
current-context: minikube
kind: Config
preferences: {}
users:
- name: minikube
  user:
    client-certificate: /nonexistent-kle-fuzz/.minikube/client.crt
    client-key: /nonexistent-kle-fuzz/.minikube/client.key
''',
    'serviceaccount': '''apiVersion: v1
kind: Config
clusters:
- name: default-cluster
  cluster:
    certificate-authority-data: %s
    server: https://10.96.0.1:443
    tls-server-name: kubernetes.default.svc
contexts:
- name: default-context
  context:
    cluster: default-cluster
    namespace: default
    user: default-user
current-context: default-context
users:
- name: default-user
  user:
    token: %s
''' % (PEM, JWT),
    'emulator': '''apiVersion: v1
kind: Config
clusters:
- name: kle-emulator
  cluster:
    server: "https://127.0.0.1:39999"
    certificate-authority: ca.crt
users:
- name: kle-emulator
  user:
    token: "kle-scrubbed"
- name: kle-emulator-cert
  user:
    client-certificate: client.crt
    client-key: client.key
contexts:
- name: kle-emulator
  context:
    cluster: kle-emulator
    user: kle-emulator
    namespace: default
- name: kle-emulator-cert
  context:
    cluster: kle-emulator
    user: kle-emulator-cert
    namespace: default
current-context: kle-emulator
preferences: {}
''',
    'unit-main': '''apiVersion: v1
kind: Config
current-context: dev
preferences: {}
contexts:
- name: dev
  context:
    cluster: c1
    user: u1
    namespace: team-a
- name: prod
  context: {cluster: c2, user: u2}
- name: kind-kind
  context: {cluster: c4, user: u1}
clusters:
- name: c1
  cluster:
    server: https://c1.example:6443/
    certificate-authority: ca.crt
    tls-server-name: kube.internal
    proxy-url: http://proxy:3128
    insecure-skip-tls-verify: false
- name: c2
  cluster:
    server: "https://127.0.0.1:8001"
    certificate-authority-data: %s
- name: c4
  cluster:
    server: https://[fd00::10]:443/api//
    insecure-skip-tls-verify: yes
users:
- name: u1
  user:
    token: s3cr3t-t0ken
- name: u2
  user:
    token: replaced-by-the-file
    tokenFile: sub/tok
    client-certificate-data: AP8QgH8=
    client-key-data: |
      S0VZAGJ5
      dGVz/g==
''' % PEM,
    'anchors': '''base: &c {server: "https://h", insecure-skip-tls-verify: true}
current-context: kind-kind
contexts: [{name: kind-kind, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: *c}]
users: [{name: u, user: {token: "t"}}]
''',
    'http-proxy': '''current-context: kind-kind
contexts: [{name: kind-kind, context: {cluster: c}}]
clusters: [{name: c, cluster: {server: "http://127.0.0.1:8001"}}]
''',
    'dup-key': '''current-context: kind-kind
contexts: [{name: kind-kind, context: {cluster: c}}]
clusters: [{name: c, cluster: {server: "https://a", server: "https://b"}}]
''',
    'deep': 'current-context: ' + '[' * 70 + ']' * 70 + '\n',
}

KUBECONFIG_JSON = {
    'kind.json': {
        'kind': 'Config', 'apiVersion': 'v1', 'preferences': {},
        'clusters': [{'name': 'kind-kind', 'cluster': {
            'server': 'https://127.0.0.1:40123',
            'certificate-authority-data': PEM}}],
        'users': [{'name': 'kind-kind', 'user': {
            'client-certificate-data': PEM, 'client-key-data': KEY}}],
        'contexts': [{'name': 'kind-kind', 'context': {
            'cluster': 'kind-kind', 'user': 'kind-kind'}}],
        'current-context': 'kind-kind'},
    'token.json': {
        'kind': 'Config', 'apiVersion': 'v1',
        'clusters': [{'name': 'c', 'cluster': {
            'server': 'https://10.1.2.3:6443',
            'certificate-authority-data': PEM,
            'insecure-skip-tls-verify': False}}],
        'users': [{'name': 'u', 'user': {'token': JWT, 'tokenFile': None}}],
        'contexts': [{'name': 'kind-kind', 'context': {
            'cluster': 'c', 'user': 'u', 'namespace': 'jn'}}],
        'current-context': 'kind-kind'},
}

TIMES = ['2026-01-01T10:00:00Z', '2026-01-01T10:00:00.123456Z',
         '2026-01-01T10:00:00.123456789+02:00', '2026-08-17 10:00:00.123456',
         '2026-08-17 10:00:00', '1969-12-31T23:59:59.999999Z',
         '2024-02-29T00:00:00Z', '0001-01-01T00:00:00Z',
         '9999-12-31T23:59:59.999999Z', '2026-01-01t10:00:00z',
         '2026-01-01T10:00:00.123000Z', '2026-03-29 02:30:00',
         '2026-01-01T10:00:00-23:59', '2026-13-01T00:00:00Z']

ANNOTATIONS = [
    {'holderIdentity': 'pod-a', 'leaseDurationSeconds': 15,
     'acquireTime': '2026-01-01T10:00:00Z',
     'renewTime': '2026-01-01T10:00:05Z', 'leaderTransitions': 3},
    {'holderIdentity': 'py-1', 'leaseDurationSeconds': '15',
     'acquireTime': '2026-08-17 10:00:00.123456',
     'renewTime': '2026-08-17 10:00:02'},
    {'holderIdentity': '', 'leaseDurationSeconds': 1,
     'acquireTime': '2026-01-01T10:00:09Z',
     'renewTime': '2026-01-01T10:00:09Z', 'leaderTransitions': 3},
    {'holderIdentity': 'x' * 300, 'leaseDurationSeconds': 15},
    {'holderIdentity': None, 'acquireTime': None, 'renewTime': ''},
    {'holderIdentity': 'a\u0000b', 'leaderTransitions': 2147483647},
    {},
]

STATUS = {
    409: {'reason': 'Conflict', 'message': 'Operation cannot be fulfilled on '
          'leases.coordination.k8s.io "web": the object has been modified; '
          'please apply your changes to the latest version and try again'},
    404: {'reason': 'NotFound',
          'message': 'leases.coordination.k8s.io "web" not found'},
    401: {'reason': 'Unauthorized', 'message': 'Unauthorized'},
    403: {'reason': 'Forbidden', 'message': 'leases.coordination.k8s.io '
          '"web" is forbidden: User "system:serviceaccount:default:nginx" '
          'cannot update resource "leases"'},
    429: {'reason': 'TooManyRequests', 'message': 'Too many requests',
          'details': {'retryAfterSeconds': 3}},
    500: {'reason': 'InternalError', 'message': 'Internal error occurred'},
    504: {'reason': 'Timeout', 'message': 'Too large resource version'},
    410: {'reason': 'Expired', 'message': 'too old resource version'},
}

ARGS = [
    ['--lock', 'leases/default/x', '--', 'sh', '-c', 'true'],
    ['--lock', 'configmaps/kube-system/lock', '--identity', 'pod-a',
     '--address', '10.0.0.1:8080', '--lease-duration', '15s',
     '--renew-deadline', '10000ms', '--retry-period', '2', '--grace', '5s',
     '--no-release', '-v', '--', 'nginx', '-g', 'daemon off;'],
    ['--lock', 'leases/a/b', '--kubeconfig', '/nonexistent', '--context',
     'kind-kind', '--lease-duration', '1h', '--renew-deadline', '59m',
     '--retry-period', '1m', '--', 'x'],
    ['--lock', 'leases/a/b', '--server', 'https://h:6443', '--token-file',
     '/t', '--ca-file', '/c', '--client-cert', '/e', '--client-key', '/k',
     '--lease-duration', '2147483647s', '--', 'x'],
    ['--lock', 'leases/a/b', '--grace', '99999999999999999999h', '--', 'x'],
    ['--help'], ['--lock'], ['--bogus', '--lock=leases/a/b', '--', 'x'],
]

DICTS = {
    'kubeconfig': [
        'apiVersion', 'kind', 'Config', 'clusters', 'cluster', 'contexts',
        'context', 'users', 'user', 'current-context', 'server',
        'certificate-authority', 'certificate-authority-data',
        'insecure-skip-tls-verify', 'tls-server-name', 'proxy-url', 'token',
        'tokenFile', 'client-certificate', 'client-certificate-data',
        'client-key', 'client-key-data', 'exec', 'auth-provider', 'username',
        'password', 'namespace', 'name', 'preferences', 'extensions',
        'kind-kind', 'https://', 'http://', 'true', 'false', 'null', '~',
        'yes', 'off', '&a ', '*a', '? ', ': ', '- ', '{', '}', '[', ']', '"',
        "'", '|', '>', '---', '...', '!!str ', '%YAML 1.1', '\\n  ', '\\t',
        '/etc/passwd', '/dev/zero', '/nonexistent-kle-fuzz/', '\\xef\\xbb\\xbf'],
    'annotation': [
        'holderIdentity', 'leaseDurationSeconds', 'acquireTime', 'renewTime',
        'leaderTransitions', '"2026-01-01T10:00:00Z"',
        '"2026-08-17 10:00:00.123456"', 'null', '"15"', '2147483647',
        '-2147483649', '1e3', '\\\\u0000', '\\\\ud800', '{', '}', ':', ','],
    'time': ['T', 'Z', 'z', ' ', ':', '-', '.', '+00:00', '-23:59', '.000000',
             '.123456789', '2024-02-29', '1969-12-31', '9999', '0000',
             '23:59:59', '24:00:00'],
    'classify': [
        'kind', 'Status', 'apiVersion', 'metadata', 'status', 'Failure',
        'message', 'reason', 'details', 'retryAfterSeconds', 'code',
        'Conflict', 'AlreadyExists', 'NotFound', 'Expired', 'Timeout',
        'TooManyRequests', '<html>', '\\x00\\xc8', '\\x01\\xad', '\\x01\\xf4',
        '\\x01\\x93', '\\x01\\x91', '\\x01\\x9a', 'Wed, 21 Oct 2015 07:28:00 GMT',
        '2147483648', '-1'],
    'paths': ['leases', 'configmaps', 'default', 'kube-system', '/', '.',
              '-', '%', '%2F', '&', '=', '?', '#', ' ', 'a' * 63],
    'base64': ['=', '==', '\\n', ' ', '+', '/', '-', '_', 'AAAA', 'LS0t'],
    'token': ['\\n', '\\r\\n', ' ', '\\t', '\\x00', '\\x7f', 'eyJ', '.',
              'Bearer '],
    'lock': ['kind', 'Lease', 'ConfigMap', 'apiVersion',
             'coordination.k8s.io/v1', 'v1', 'metadata', 'name', 'web',
             'namespace', 'resourceVersion', 'annotations', 'labels',
             'managedFields', 'spec', 'holderIdentity',
             'leaseDurationSeconds', 'acquireTime', 'renewTime',
             'leaseTransitions', 'leaderTransitions', 'preferredHolder',
             'strategy', 'control-plane.alpha.kubernetes.io/leader',
             'leader-election.nginx.org/address',
             'leader-election.nginx.org/address-holder',
             'leader-election.nginx.org/instance',
             '0123456789abcdef0123456789abcdef',
             '2026-01-01T10:00:00.000000Z', '2026-08-17 10:00:00.123456',
             'null', '\\\\u0000', '\\\\"', '{', '}', '[', ']', ':', ','],
    'watch': ['type', 'ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR',
              'object', 'kind', 'Lease', 'Status', 'metadata',
              'resourceVersion', 'spec', 'holderIdentity', 'code', '410',
              'Expired', 'reason', '\\n', '\\r\\n', '{', '}'],
    'election': [],
    'args': ['--lock', '--identity', '--address', '--lease-duration',
             '--renew-deadline', '--retry-period', '--grace', '--no-release',
             '--kubeconfig', '--context', '--server', '--token-file',
             '--ca-file', '--client-cert', '--client-key', '--verbose',
             '--help', '-v', '-h', '--', 'leases/default/x', 'ms', 's', 'm',
             'h', '\\x00', '9223372036854775807', '2147483647'],
}


def put(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, 'seed-' + name), 'wb') as f:
        f.write(data)


def status_body(code, st):
    body = {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {},
            'status': 'Failure', 'code': code}
    body.update(st)
    return json.dumps(body)


def main():
    for name, text in KUBECONFIGS.items():
        put('kubeconfig', name, text)
    for name, obj in KUBECONFIG_JSON.items():
        put('kubeconfig', name, json.dumps(obj, indent=2))

    for i, s in enumerate(TIMES):
        put('time', '%02d' % i, s)

    for i, a in enumerate(ANNOTATIONS):
        put('annotation', '%02d' % i, json.dumps(a))
    put('annotation', 'truncated', json.dumps(ANNOTATIONS[0])[:40])
    put('annotation', 'trailing', json.dumps(ANNOTATIONS[0]) + ' x')

    for code, st in STATUS.items():
        retry = b'3\n' if code in (429, 500, 503) else b''
        put('classify', str(code), struct.pack('>H', code) + retry
            + status_body(code, st).encode())
    put('classify', '200-lease', struct.pack('>H', 200) + json.dumps(
        {'kind': 'Lease', 'metadata': {'name': 'web',
                                       'resourceVersion': '101'}}).encode())
    put('classify', '502-html', struct.pack('>H', 502)
        + b'<html><body><h1>502 Bad Gateway</h1></body></html>')
    put('classify', '429-huge', struct.pack('>H', 429)
        + b'2147483647\n' + status_body(429, STATUS[429]).encode())
    put('classify', '503-date', struct.pack('>H', 503)
        + b'Wed, 21 Oct 2015 07:28:00 GMT\n')
    put('classify', '200-empty', struct.pack('>H', 200))

    for i, (kind, where, rv) in enumerate([
            (0, 'default/nginx-web', '12345'), (1, 'kube-system/lock', ''),
            (0, 'a/b.c-d', 'a b/c?d#e%&='), (1, 'x/' + 'a' * 253, '9' * 63),
            (0, 'Default/x', '1'), (0, 'default/', '1'), (1, '/x', '')]):
        put('paths', '%02d' % i, bytes([kind]) + ('%s\n%s' % (where, rv))
            .encode())

    for i, s in enumerate([PEM, KEY, 'YWI=', 'YWI', 'YWJj\n ZA', 'YWJjZA=',
                           '====', 'YW=I', 'YWJj-_', PEM[:61] + '\n'
                           + PEM[61:]]):
        put('base64', '%02d' % i, s)

    for i, s in enumerate([JWT, JWT + '\n', '  ' + JWT + '\r\n', 'a\nb',
                           '\n', '', 'tok\x00en', 'tok\x7f', '\xc3\xa9t']):
        put('token', '%02d' % i, s)

    for i, a in enumerate(ARGS):
        put('args', '%02d' % i, '\0'.join(a))

    # the instance nonce beside the record: a Lease, a ConfigMap, a watch
    # event, and values that must read as no nonce
    nonce = '0123456789abcdef0123456789abcdef'
    for i, (value, holder) in enumerate([
            (nonce, 'nginx-0'), (nonce, ''), (nonce.upper(), 'nginx-0'),
            (nonce[:31], 'nginx-0'), (7, 'nginx-0'), (None, 'nginx-0')]):
        lease = {'kind': 'Lease', 'apiVersion': 'coordination.k8s.io/v1',
                 'metadata': {'name': 'web', 'namespace': 'default',
                              'resourceVersion': '7', 'annotations': {
                                  'leader-election.nginx.org/instance': value,
                                  'team': 'edge'}},
                 'spec': {'holderIdentity': holder,
                          'leaseDurationSeconds': 15,
                          'acquireTime': '2026-01-01T10:00:00.000000Z',
                          'renewTime': '2026-01-01T10:00:30.250000Z',
                          'leaseTransitions': 2147483647}}
        put('lock', 'instance-lease-%02d' % i,
            b'\x00' + json.dumps(lease).encode())
    cm = {'kind': 'ConfigMap', 'apiVersion': 'v1',
          'metadata': {'name': 'web', 'namespace': 'default',
                       'resourceVersion': '9', 'annotations': {
                           'control-plane.alpha.kubernetes.io/leader':
                           json.dumps({'holderIdentity': 'nginx-1',
                                       'leaseDurationSeconds': 15,
                                       'acquireTime': '2026-01-01T10:00:00Z',
                                       'renewTime': '2026-01-01T10:00:10Z',
                                       'leaderTransitions': 2}),
                           'leader-election.nginx.org/instance': nonce}}}
    put('lock', 'instance-configmap', b'\x01' + json.dumps(cm).encode())
    put('lock', 'instance-watch', b'\x02' + json.dumps(
        {'type': 'MODIFIED', 'object': json.loads(json.dumps(
            {'kind': 'Lease', 'metadata': {
                'name': 'web', 'resourceVersion': '8', 'annotations': {
                    'leader-election.nginx.org/instance': nonce}},
             'spec': {'holderIdentity': 'nginx-0'}}))}).encode())

    d = os.path.join(HERE, 'dict')
    os.makedirs(d, exist_ok=True)
    for target, words in DICTS.items():
        if not words:
            continue
        with open(os.path.join(d, target + '.dict'), 'w') as f:
            f.write('# %s: Kubernetes and format words for libFuzzer\n'
                    % target)
            for w in words:
                w = w.replace('"', '\\"').replace('\\n', '\\x0a')
                w = w.replace('\\r', '\\x0d').replace('\\t', '\\x09')
                f.write('"%s"\n' % w)


if __name__ == '__main__':
    main()
