#!/usr/bin/python3
"""The emulator against real clients: kubectl and the official Python
client, including its leader elector.  kubectl is $KUBECTL, else the one
in PATH (make deps installs Debian's kubernetes-client when there is
none); without one its tests are skipped, or fail when
KLE_REQUIRE_KUBECTL=1 (make test sets it).

Faults of the Python client's elector (kubernetes/leaderelection, 22.6),
read from its source and reproduced against this emulator; the module must
not copy them:
- Any answer that is not a JSON Status (a proxy's HTML 502, a truncated
  body) makes try_acquire_or_renew raise json.JSONDecodeError, and a JSON
  body without "code" a KeyError; connection errors (urllib3 exceptions)
  are not ApiException either.  Each one kills the elector thread:
  no onstopped_leading, no further attempts.
- No per-request timeout: a stalled API server blocks get/update forever,
  and the renew deadline is only checked between attempts, so a leader
  never steps down while its request hangs.
- Expiry uses its own configured lease_duration, not the record's
  leaseDurationSeconds.
- It writes leaseDurationSeconds as a string and times as str(datetime) in
  local time, with no leaderTransitions (dropped on takeover).
- When the ConfigMap exists without the leader annotation, get() replaces
  all annotations with the leader key alone: other annotations are lost on
  the next update.
- threading.daemon = True sets a module attribute: the onstarted_leading
  thread is not a daemon and is never stopped when leadership is lost.
- No release on shutdown, no jitter, run() returns after losing the lease.
- Config needs lease > renew > 1.2 * retry and every value >= 1 (it calls
  sys.exit() otherwise): lease 3, renew 2, retry 1 is the smallest.
"""

import datetime
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'emulator'))

from tap import Tap                          # noqa: E402
from kle_fixtures import keep_or_remove      # noqa: E402
from kube_emulator import EmulatorProcess    # noqa: E402

KUBECTL = os.environ.get('KUBECTL') or shutil.which('kubectl')
KUBECTL_MINOR = 0
LEADER = 'control-plane.alpha.kubernetes.io/leader'
LEASE_YAML = """\
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: kubectl-lease
  namespace: default
spec:
  holderIdentity: %s
  leaseDurationSeconds: 15
  leaseTransitions: 4
  acquireTime: "2026-01-01T00:00:00.000000Z"
  renewTime: "2026-01-01T00:00:05.123456Z"
"""


def test(t):
    tmp = tempfile.mkdtemp(prefix='kle-emu-')
    emu = EmulatorProcess(tmp).start()
    try:
        if KUBECTL and os.path.exists(KUBECTL):
            global KUBECTL_MINOR
            KUBECTL_MINOR = kubectl_minor()
            t.diag('kubectl %s (1.%d)' % (KUBECTL, KUBECTL_MINOR))
            kubectl_tests(t, emu, tmp)
        elif os.environ.get('KLE_REQUIRE_KUBECTL') == '1':
            t.ok(False, 'kubectl installed (KLE_REQUIRE_KUBECTL=1)')
        else:
            t.skip('kubectl', 'no kubectl in PATH')
        python_client_tests(t, emu)
        elector_tests(t, emu)
    finally:
        emu.stop()
    keep_or_remove(t, tmp, 'emulator files kept in')


def kubectl_minor():
    """kubectl's minor version (32 for 1.32), 0 if it cannot be told."""
    try:
        p = subprocess.run([KUBECTL, 'version', '--client', '-o', 'json'],
                           capture_output=True, text=True, timeout=30)
        return int(json.loads(p.stdout)['clientVersion']['minor']
                   .rstrip('+'))
    except (OSError, ValueError, KeyError, subprocess.SubprocessError):
        return 0


def kubectl(emu, tmp, *args, context=None):
    env = dict(os.environ, KUBECONFIG=emu.kubeconfig, HOME=tmp)
    cmd = [KUBECTL, '--cache-dir', os.path.join(tmp, 'kcache')]
    # Before 1.23 kubectl validates files against OpenAPI v2, which the
    # emulator does not serve (Debian 12's kubernetes-client is 1.20)
    if args[0] in ('create', 'apply') and '-f' in args \
            and KUBECTL_MINOR < 23:
        cmd.append('--validate=false')
    if context:
        cmd += ['--context', context]
    p = subprocess.run(cmd + list(args), env=env, capture_output=True,
                       text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def stored(emu, kind, name):
    return emu.admin('GET', '/_emulator/objects/%s/default/%s'
                     % (kind, name))


def kubectl_tests(t, emu, tmp):
    rc, out, err = kubectl(emu, tmp, 'get', 'leases', '-n', 'default')
    t.is_((rc, err.strip()), (0, 'No resources found in default '
                              'namespace.'), 'kubectl get leases -n default')

    rc, out, err = kubectl(emu, tmp, 'create', 'configmap', 'kc-cm',
                           '--from-literal=color=blue')
    t.is_((rc, out.strip()), (0, 'configmap/kc-cm created'),
          'kubectl create configmap (protobuf body)')
    rc, out, err = kubectl(emu, tmp, 'annotate', 'configmap', 'kc-cm',
                           'example.com/owner=tests')
    t.is_((rc, out.strip()), (0, 'configmap/kc-cm annotated'),
          'kubectl annotate (merge patch)')
    rc, out, err = kubectl(emu, tmp, 'get', 'configmap', 'kc-cm', '-o',
                           'json')
    cm = json.loads(out) if rc == 0 else {}
    t.is_((cm.get('metadata', {}).get('annotations'), cm.get('data')),
          ({'example.com/owner': 'tests'}, {'color': 'blue'}),
          'kubectl get configmap -o json shows annotation and data')
    code, obj = stored(emu, 'configmaps', 'kc-cm')
    t.is_(obj['metadata'].get('annotations'), {'example.com/owner': 'tests'},
          'server holds the annotation')
    rc, out, err = kubectl(emu, tmp, 'get', 'configmap', 'kc-cm', '-o',
                           'yaml')
    t.ok(rc == 0 and 'example.com/owner: tests' in out,
         'kubectl get configmap -o yaml', err)

    path = os.path.join(tmp, 'lease.yaml')
    with open(path, 'w') as f:
        f.write(LEASE_YAML % 'kubectl-a')
    rc, out, err = kubectl(emu, tmp, 'create', '-f', path)
    t.is_((rc, out.strip()), (0, 'lease.coordination.k8s.io/kubectl-lease '
                              'created'), 'kubectl create -f lease.yaml',)
    rc, out, err = kubectl(emu, tmp, 'get', 'lease', 'kubectl-lease', '-o',
                           'json')
    spec = json.loads(out).get('spec') if rc == 0 else None
    t.is_(spec, {'holderIdentity': 'kubectl-a', 'leaseDurationSeconds': 15,
                 'acquireTime': '2026-01-01T00:00:00.000000Z',
                 'renewTime': '2026-01-01T00:00:05.123456Z',
                 'leaseTransitions': 4}, 'kubectl get lease -o json: spec')
    rc, out, err = kubectl(emu, tmp, 'get', 'leases')
    lines = out.split('\n')
    t.ok(rc == 0 and lines[0].split() == ['NAME', 'HOLDER', 'AGE'] and
         lines[1].split()[:2] == ['kubectl-lease', 'kubectl-a'],
         'kubectl get leases prints the table', out + err)

    with open(path, 'w') as f:
        f.write(LEASE_YAML % 'kubectl-b')
    rc, out, err = kubectl(emu, tmp, 'apply', '-f', path)
    code, obj = stored(emu, 'leases', 'kubectl-lease')
    t.is_((rc, obj['spec']['holderIdentity']), (0, 'kubectl-b'),
          'kubectl apply -f (strategic merge patch) changes the holder')

    rc, out, err = kubectl(emu, tmp, 'get', 'configmap', 'kc-cm',
                           context='kle-emulator-cert')
    t.ok(rc == 0 and 'kc-cm' in out, 'kubectl with the client '
         'certificate context', err)

    rc, out, err = kubectl(emu, tmp, 'delete', 'lease', 'kubectl-lease')
    t.is_((rc, out.strip()), (0, 'lease.coordination.k8s.io '
                              '"kubectl-lease" deleted'),
          'kubectl delete lease')
    t.is_(stored(emu, 'leases', 'kubectl-lease')[0], 404,
          'server no longer holds the lease')

    emu.admin('DELETE', '/_emulator/tokens/' + emu.token)
    rc, out, err = kubectl(emu, tmp, 'get', 'configmap', 'kc-cm')
    t.ok(rc != 0 and 'Unauthorized' in err,
         'kubectl reports Unauthorized with a revoked token', err)
    emu.admin('POST', '/_emulator/tokens', {'token': emu.token})


def python_client_tests(t, emu):
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException
    config.load_kube_config(config_file=emu.kubeconfig)
    api = client.CoordinationV1Api()
    utc = datetime.timezone.utc
    acquired = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=utc)
    body = client.V1Lease(
        metadata=client.V1ObjectMeta(name='py-lease'),
        spec=client.V1LeaseSpec(holder_identity='py-a',
                                lease_duration_seconds=10,
                                acquire_time=acquired, renew_time=acquired,
                                lease_transitions=0))
    created = api.create_namespaced_lease('default', body)
    t.ok(created.metadata.resource_version and created.metadata.uid,
         'python: create_namespaced_lease')
    got = api.read_namespaced_lease('py-lease', 'default')
    t.is_((got.spec.holder_identity, got.spec.lease_duration_seconds,
           got.spec.acquire_time == acquired),
          ('py-a', 10, True), 'python: read_namespaced_lease')
    code, obj = stored(emu, 'leases', 'py-lease')
    t.is_(obj['spec']['renewTime'], '2026-01-02T03:04:05.678901Z',
          'python: server holds a MicroTime')

    stale = got
    fresh = api.read_namespaced_lease('py-lease', 'default')
    fresh.spec.holder_identity = 'py-b'
    fresh.spec.lease_transitions = 1
    replaced = api.replace_namespaced_lease('py-lease', 'default', fresh)
    t.ok(replaced.spec.holder_identity == 'py-b' and
         int(replaced.metadata.resource_version) >
         int(got.metadata.resource_version),
         'python: replace_namespaced_lease')

    stale.spec.holder_identity = 'py-c'
    try:
        api.replace_namespaced_lease('py-lease', 'default', stale)
        t.ok(False, 'python: stale replace raises 409 Conflict')
    except ApiException as e:
        t.is_((e.status, e.reason, json.loads(e.body)['reason']),
              (409, 'Conflict', 'Conflict'),
              'python: stale replace raises 409 Conflict')
    try:
        api.create_namespaced_lease('default', body)
        t.ok(False, 'python: create of an existing name: 409 AlreadyExists')
    except ApiException as e:
        t.is_((e.status, json.loads(e.body)['reason']),
              (409, 'AlreadyExists'),
              'python: create of an existing name: 409 AlreadyExists')
    try:
        api.read_namespaced_lease('py-none', 'default')
        t.ok(False, 'python: read of a missing lease: 404')
    except ApiException as e:
        t.is_(e.status, 404, 'python: read of a missing lease: 404')


def elector_tests(t, emu):
    from kubernetes.leaderelection import electionconfig, leaderelection
    from kubernetes.leaderelection.resourcelock.configmaplock import \
        ConfigMapLock
    logging.getLogger().setLevel(logging.WARNING)
    started = threading.Event()
    lock = ConfigMapLock('py-election', 'default', 'py-candidate-1')
    cfg = electionconfig.Config(lock, lease_duration=3, renew_deadline=2,
                                retry_period=1,
                                onstarted_leading=started.set,
                                onstopped_leading=lambda: None)
    elector = leaderelection.LeaderElection(cfg)
    th = threading.Thread(target=elector.run, daemon=True,
                          name='py-elector')
    hook = threading.excepthook
    # the elector dies on any error once the emulator stops: keep quiet
    threading.excepthook = lambda a: None if a.thread is th else hook(a)
    th.start()
    t.ok(started.wait(8), 'python elector: onstarted_leading ran')
    deadline = time.monotonic() + 6
    puts = []
    while time.monotonic() < deadline and not puts:
        time.sleep(0.2)
        puts = [r for r in emu.requests(method='PUT')
                if r['path'].endswith('/configmaps/py-election')]
    t.ok(puts and puts[0]['code'] == 200, 'python elector renews (PUT 200)')
    code, obj = stored(emu, 'configmaps', 'py-election')
    ann = (obj.get('metadata', {}).get('annotations') or {}).get(LEADER)
    rec = json.loads(ann) if ann else {}
    t.is_((rec.get('holderIdentity'), rec.get('leaseDurationSeconds')),
          ('py-candidate-1', '3'), 'server holds the elector identity in '
          'the leader annotation (duration as a string)')
    t.ok(puts and 'resourceVersion' in (puts[0].get('body') or {})
         .get('metadata', {}), 'python elector sends the resourceVersion')


if __name__ == '__main__':
    Tap().run(test)
