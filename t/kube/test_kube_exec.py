#!/usr/bin/python3
"""An exec credential plugin against the real kube-apiserver's token
authentication (t/kube/README.md): the kubeconfig's user runs
t/exec/kle-test-plugin, which prints the server's static admin token read
from a file at each run (so the test can change it), expiring in 8 s.

    1. nginx leads: the server's Lease names it; the plugin was given the
       cluster (server, CA) in KUBERNETES_EXEC_INFO
    2. the plugin runs again before the token expires, and nginx keeps
       leading
    3. the plugin prints a token the server does not know: 401s, the
       plugin runs again at each (its token is dropped); the leader steps
       down; once the file holds the right token again, nginx leads again
    4. no token in the error log
"""

import base64
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, 't', 'py'))

from electors import Nginx                          # noqa: E402
from kube_server import KubeServer                  # noqa: E402

PLUGIN = os.path.join(ROOT, 't', 'exec', 'kle-test-plugin')
PORT = int(os.environ.get('TEST_NGINX_PORT', '1984')) + 110
LOCK = 'leases/default/exec-real'


def runs(log):
    try:
        with open(log) as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError:
        return []


def wait(cond, timeout):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    return cond()


def kubeconfig(path, k, token_file, log):
    with open(path, 'w') as f:
        f.write(f"""apiVersion: v1
kind: Config
current-context: c
clusters:
- name: k
  cluster:
    server: {k.url}
    certificate-authority: {k.ca}
contexts:
- name: c
  context: {{cluster: k, user: exec}}
users:
- name: exec
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: {PLUGIN}
      args: [token, --token-file, {token_file}, --expires-in, "8",
             --log, {log}]
      interactiveMode: Never
      provideClusterInfo: true
""")


def main(t):
    from kle_fixtures import keep_or_remove
    workdir = tempfile.mkdtemp(prefix='kle-test-kube-exec-')
    token_file = os.path.join(workdir, 'token')
    log = os.path.join(workdir, 'plugin.log')
    kc = os.path.join(workdir, 'kubeconfig')
    k = KubeServer(os.path.join(workdir, 'api'))
    n = None
    try:
        k.start()
        with open(token_file, 'w') as f:
            f.write(k.admin_token)
        kubeconfig(kc, k, token_file, log)
        n = Nginx(workdir, 'x1', LOCK, kc, PORT, timings=(4, 3, 0.5)).start()

        t.ok(wait(n.is_leader, 15), 'leads with the plugin\'s token')
        lease = k.lease('default', 'exec-real') or {}
        t.is_(lease.get('holderIdentity'), 'x1',
              'the server\'s Lease names it')
        first = runs(log)
        info = json.loads((first[0] if first else {}).get('info') or '{}')
        cluster = (info.get('spec') or {}).get('cluster') or {}
        with open(k.ca, 'rb') as f:
            ca = base64.b64encode(f.read()).decode()
        t.is_((cluster.get('server'), cluster.get('certificate-authority-data')),
              (k.url, ca), 'KUBERNETES_EXEC_INFO: the real server and its CA')

        t.ok(wait(lambda: len(runs(log)) >= 2, 10),
             'the plugin ran again before the token expired')
        r = runs(log)
        t.ok(len(r) >= 2 and r[1]['time'] < r[0]['time'] + 8,
             'before expiry (%s)' % ['%.1f s' % (x['time'] - r[0]['time'])
                                     for x in r[1:2]])
        t.ok(n.is_leader(), 'still leading')

        with open(token_file, 'w') as f:
            f.write('not-a-token-the-server-knows')
        before = len(runs(log))
        t.ok(wait(lambda: 'unauthorized' in n.error_log().lower(), 15),
             'the server answers 401 to the wrong token')
        t.ok(wait(lambda: n.is_leader() is False, 10), 'the leader steps down')
        t.ok(len(runs(log)) >= before + 2,
             'the plugin runs again after the 401s (%d runs)'
             % (len(runs(log)) - before))
        with open(token_file, 'w') as f:
            f.write(k.admin_token)
        t.ok(wait(n.is_leader, 15), 'leads again with the right token')

        text = n.error_log()
        t.ok(k.admin_token not in text
             and 'not-a-token-the-server-knows' not in text,
             'no token in the error log')
        t.ok('unknown process' not in text and 'SIGCHLD' not in text,
             'nginx never saw the plugin exit')
    finally:
        if n is not None:
            n.kill()
        k.stop()
    keep_or_remove(t, workdir)


if __name__ == '__main__':
    from tap import Tap
    Tap().run(main)
