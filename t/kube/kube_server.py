#!/usr/bin/python3
"""A real Kubernetes API server for the tests: etcd (Debian's etcd-server) on
loopback with its data in /dev/shm, and kube-apiserver (make kube-apiserver)
over TLS with a CA of its own, a static admin token, RBAC and service
accounts.  t/kube/README.md has the how and why.

From Python:

    from kube_server import KubeServer
    with KubeServer(directory) as k:      # start(); stop() at the end
        k.url, k.ca, k.admin_token, k.admin_kubeconfig
        k.kubeconfig                      # least privilege: the documented
                                          # Role on leases/default/nginx-web
        k.grant('configmaps/default/x')   # the same Role for another lock:
                                          # returns that identity's kubeconfig
        k.request('GET', path)            # (code, headers, decoded body), admin
        k.lease('default', 'nginx-web')   # the object as the server holds it
        k.kill('apiserver'), k.restart('etcd'), k.pause('apiserver'),
        k.resume('apiserver'), k.compact()

From the shell (and Perl: t/lib/Kle/Kube.pm), the processes outlive the
command; `start` prints the environment (KLE_KUBE_*), also in DIR/env:

    kube_server.py start DIR [--owner PID]   # --owner: stop when PID ends
    kube_server.py grant DIR leases/NS/NAME  # prints the kubeconfig's path
    kube_server.py kill|restart|pause|resume DIR apiserver|etcd
    kube_server.py compact DIR
    kube_server.py get DIR KIND/NS/NAME      # the object as JSON, or nothing
    kube_server.py stop DIR
"""

import base64
import http.client
import json
import os
import random
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APISERVER = os.environ.get('KLE_KUBE_APISERVER') or \
    os.path.join(ROOT, 'build', 'kube', 'kube-apiserver')
ETCD = os.environ.get('KLE_KUBE_ETCD') or '/usr/bin/etcd'
EXAMPLE = os.path.join(ROOT, 'docs', 'examples', 'kubernetes.yaml')
DEFAULT_LOCK = 'leases/default/nginx-web'
PORTS = (61000, 65536)        # random ports from here (above the ephemeral
                              # range, above Test::Nginx's fixed ports): a
                              # taken one is retried, never probed
ISSUER = 'https://kubernetes.default.svc.cluster.local'


class KubeError(Exception):
    pass


def _run(argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def make_certs(d):
    """CA, a serving certificate for 127.0.0.1 and localhost, and the
    service-account key pair: once per directory."""
    if os.path.exists(os.path.join(d, 'sa.pub')):
        return
    ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']
    p = lambda f: os.path.join(d, f)
    _run(['openssl', 'req', '-x509', '-nodes', '-days', '3650'] + ec +
         ['-keyout', p('ca.key'), '-out', p('ca.crt'),
          '-subj', '/CN=kle-test-ca'])
    _run(['openssl', 'req', '-nodes'] + ec +
         ['-keyout', p('server.key'), '-out', p('server.csr'),
          '-subj', '/CN=kube-apiserver'])
    with open(p('server.ext'), 'w') as f:
        f.write('subjectAltName=IP:127.0.0.1,DNS:localhost,'
                'DNS:kubernetes.default.svc\n'
                'extendedKeyUsage=serverAuth\n')
    _run(['openssl', 'x509', '-req', '-in', p('server.csr'), '-CA',
          p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-days',
          '3650', '-extfile', p('server.ext'), '-out', p('server.crt')])
    _run(['openssl', 'genrsa', '-out', p('sa.key'), '2048'])
    _run(['openssl', 'rsa', '-in', p('sa.key'), '-pubout', '-out',
          p('sa.pub')])


def kubeconfig(path, url, ca, token, namespace='default'):
    with open(ca, 'rb') as f:
        ca_data = base64.b64encode(f.read()).decode()
    text = ('apiVersion: v1\nkind: Config\ncurrent-context: kle\n'
            'clusters:\n- name: kle\n  cluster:\n    server: %s\n'
            '    certificate-authority-data: %s\n'
            'users:\n- name: kle\n  user:\n    token: %s\n'
            'contexts:\n- name: kle\n  context:\n    cluster: kle\n'
            '    user: kle\n    namespace: %s\n'
            % (url, ca_data, token, namespace))
    tmp = path + '.tmp'
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
              'w') as f:
        f.write(text)
    os.rename(tmp, path)
    return path


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:                                # a zombie of ours is dead
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


class KubeServer:
    def __init__(self, directory=None, lock=DEFAULT_LOCK):
        self.dir = os.path.abspath(directory or
                                   tempfile.mkdtemp(prefix='kle-kube-'))
        os.makedirs(self.dir, exist_ok=True)
        self.default_lock = lock
        self.state_file = os.path.join(self.dir, 'state.json')
        self.state = {}
        self.procs = {}                 # Popen objects we own (to reap)
        if os.path.exists(self.state_file):
            with open(self.state_file) as f:
                self.state = json.load(f)
        self._set_paths()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _set_paths(self):
        s = self.state
        self.ca = os.path.join(self.dir, 'ca.crt')
        self.admin_token = s.get('admin_token')
        self.url = ('https://127.0.0.1:%d' % s['apiserver_port']
                    if s.get('apiserver_port') else None)
        self.etcd_url = ('http://127.0.0.1:%d' % s['etcd_port']
                         if s.get('etcd_port') else None)
        self.admin_kubeconfig = os.path.join(self.dir, 'admin.kubeconfig')
        self.kubeconfig = s.get('kubeconfigs', {}).get(self.default_lock)

    def _save(self):
        tmp = self.state_file + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.state, f, indent=1)
        os.rename(tmp, self.state_file)
        self._set_paths()

    # --- processes ---------------------------------------------------------

    def _argv(self, what):
        s, d = self.state, self.dir
        if what == 'etcd':
            c, p = s['etcd_port'], s['etcd_peer_port']
            return [ETCD, '--name', 'kle', '--data-dir', s['etcd_data'],
                    '--listen-client-urls', 'http://127.0.0.1:%d' % c,
                    '--advertise-client-urls', 'http://127.0.0.1:%d' % c,
                    '--listen-peer-urls', 'http://127.0.0.1:%d' % p,
                    '--initial-advertise-peer-urls',
                    'http://127.0.0.1:%d' % p,
                    '--initial-cluster', 'kle=http://127.0.0.1:%d' % p,
                    # one member: it elects itself after one election
                    # timeout (1 s by default)
                    '--heartbeat-interval', '10', '--election-timeout', '50',
                    '--logger', 'zap', '--log-level', 'warn']
        p = lambda f: os.path.join(d, f)
        return [APISERVER,
                '--etcd-servers', 'http://127.0.0.1:%d' % s['etcd_port'],
                '--bind-address', '127.0.0.1',
                '--advertise-address', '127.0.0.1',
                '--secure-port', str(s['apiserver_port']),
                '--insecure-port', '0',
                '--tls-cert-file', p('server.crt'),
                '--tls-private-key-file', p('server.key'),
                '--token-auth-file', p('tokens.csv'),
                '--authorization-mode', 'RBAC',
                '--service-account-issuer', ISSUER,
                '--service-account-key-file', p('sa.pub'),
                '--service-account-signing-key-file', p('sa.key'),
                '--service-cluster-ip-range', '10.96.0.0/24',
                '--endpoint-reconciler-type', 'none',
                '--profiling=false', '--logtostderr', '--v', '1']

    def _spawn(self, what):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('ETCD_')}   # etcd: each is a flag
        log = open(os.path.join(self.dir, what + '.log'), 'ab')
        proc = subprocess.Popen(self._argv(what), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, env=env,
                                start_new_session=True)
        log.close()
        self.procs[what] = proc
        self.state[what + '_pid'] = proc.pid
        self._save()
        return proc

    def _log_tail(self, what, n=3000):
        try:
            with open(os.path.join(self.dir, what + '.log'), 'rb') as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - n))
                return f.read().decode(errors='replace')
        except OSError:
            return ''

    def _wait_ready(self, what, proc, timeout, mark):
        """True when ready; False when it exited on a port in use; raises
        otherwise."""
        deadline = time.monotonic() + timeout
        size0 = mark
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                with open(os.path.join(self.dir, what + '.log'), 'rb') as f:
                    f.seek(size0)
                    out = f.read().decode(errors='replace')
                if 'address already in use' in out:
                    return False
                raise KubeError('%s exited (%s) at start:\n%s'
                                % (what, proc.returncode, out[-3000:]))
            if self._ready(what):
                return True
            time.sleep(0.05)
        raise KubeError('%s not ready in %d s:\n%s'
                        % (what, timeout, self._log_tail(what)))

    def _ready(self, what):
        try:
            if what == 'etcd':
                c = http.client.HTTPConnection('127.0.0.1',
                                               self.state['etcd_port'],
                                               timeout=1)
                c.request('GET', '/health')
                r = c.getresponse()
                body = r.read()
                c.close()
                return r.status == 200 and b'true' in body
            code, _, _ = self.request('GET', '/readyz', timeout=1)
            return code == 200
        except (OSError, http.client.HTTPException, ValueError):
            return False

    def _start_one(self, what, keep_port, timeout):
        """Starts etcd or the apiserver until it is ready, on a new random
        port each time the port is in use (the same port on a restart:
        clients hold its URL, so then wait for it instead)."""
        ports = {'etcd': ('etcd_port', 'etcd_peer_port'),
                 'apiserver': ('apiserver_port',)}[what]
        for attempt in range(40):
            if not keep_port:
                for k in ports:
                    self.state[k] = random.randrange(*PORTS)
            logf = os.path.join(self.dir, what + '.log')
            mark = os.path.getsize(logf) if os.path.exists(logf) else 0
            proc = self._spawn(what)
            if self._wait_ready(what, proc, timeout, mark):
                return
            if keep_port:
                time.sleep(0.25)
        raise KubeError('%s: no free port after 40 tries' % what)

    def start(self):
        t0 = time.monotonic()
        if not os.access(APISERVER, os.X_OK):
            raise KubeError('no kube-apiserver at %s: make kube-apiserver'
                            % APISERVER)
        make_certs(self.dir)
        if not self.state.get('admin_token'):
            self.state['admin_token'] = base64.b32encode(
                os.urandom(20)).decode().lower()
            with open(os.path.join(self.dir, 'tokens.csv'), 'w') as f:
                f.write('%s,kle-admin,kle-admin,"system:masters"\n'
                        % self.state['admin_token'])
        self.state['etcd_data'] = tempfile.mkdtemp(
            prefix='kle-etcd-', dir='/dev/shm' if os.path.isdir('/dev/shm')
            else None)
        try:
            self._start_one('etcd', False, 30)
            self._start_one('apiserver', False, 120)
            kubeconfig(self.admin_kubeconfig, self.url, self.ca,
                       self.admin_token)
            self.grant(self.default_lock)
        except BaseException:
            self.stop()
            raise
        self.state['started_in'] = round(time.monotonic() - t0, 2)
        self._save()
        self._write_env()
        return self

    def pid(self, what):
        pid = self.state.get(what + '_pid')
        return pid if pid and _alive(pid) else None

    def send(self, what, sig):
        pid = self.pid(what)
        if pid:
            os.kill(pid, sig)
        return pid

    def _reap(self, what, timeout=10):
        pid = self.state.get(what + '_pid')
        deadline = time.monotonic() + timeout
        while pid and _alive(pid) and time.monotonic() < deadline:
            if what in self.procs:
                try:
                    self.procs[what].wait(0.05)
                except subprocess.TimeoutExpired:
                    pass
            else:
                time.sleep(0.05)
        if pid and _alive(pid):
            os.kill(pid, signal.SIGKILL)
            if what in self.procs:
                self.procs[what].wait()
        self.procs.pop(what, None)

    def kill(self, what, sig=signal.SIGKILL):
        """kill -9 (or sig) and wait for it to be gone."""
        self.send(what, signal.SIGCONT)
        self.send(what, sig)
        self._reap(what)

    def restart(self, what, timeout=120):
        """Starts it again on the same port and data (kill it first)."""
        if self.pid(what):
            self.kill(what, signal.SIGTERM)
        self._start_one(what, True, timeout)

    def pause(self, what='apiserver'):
        """SIGSTOP: connections stay open, nothing answers."""
        self.send(what, signal.SIGSTOP)

    def resume(self, what='apiserver'):
        self.send(what, signal.SIGCONT)

    def compact(self):
        """Compacts etcd to its current revision: watches from an older
        resourceVersion get 410 Gone.  Returns the revision."""
        rev = int(self._etcd('/v3/kv/range', {
            'key': base64.b64encode(b'/').decode()})['header']['revision'])
        try:
            self._etcd('/v3/kv/compaction', {'revision': rev,
                                             'physical': True})
        except KubeError as e:          # nothing written since the last one
            if 'compacted' not in str(e):
                raise
        return rev

    def _etcd(self, path, body):
        c = http.client.HTTPConnection('127.0.0.1', self.state['etcd_port'],
                                       timeout=10)
        c.request('POST', path, json.dumps(body),
                  {'Content-Type': 'application/json'})
        r = c.getresponse()
        data = r.read()
        c.close()
        if r.status != 200:
            raise KubeError('etcd %s: %d %s' % (path, r.status, data[:300]))
        return json.loads(data)

    def stop(self):
        for what in ('apiserver', 'etcd'):
            if self.pid(what):
                self.kill(what, signal.SIGTERM)
        data = self.state.get('etcd_data')
        if data and os.path.basename(data).startswith('kle-etcd-'):
            shutil.rmtree(data, ignore_errors=True)
        wd = self.state.get('watchdog_pid')
        if wd and wd != os.getpid() and _alive(wd):
            os.kill(wd, signal.SIGTERM)

    # --- the API -----------------------------------------------------------

    def request(self, method, path, body=None, token=None, timeout=10,
                headers=None):
        """(status, headers, decoded JSON or text) with the admin token or
        the given one."""
        ctx = ssl.create_default_context(cafile=self.ca)
        c = http.client.HTTPSConnection('127.0.0.1',
                                        self.state['apiserver_port'],
                                        context=ctx, timeout=timeout)
        h = {'Authorization': 'Bearer ' + (token or self.admin_token),
             'Accept': 'application/json'}
        h.update(headers or {})
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
            h.setdefault('Content-Type', 'application/json')
        try:
            c.request(method, path, body, h)
            r = c.getresponse()
            data = r.read()
        finally:
            c.close()
        try:
            obj = json.loads(data) if data else None
        except ValueError:
            obj = data.decode(errors='replace')
        return r.status, dict(r.getheaders()), obj

    def must(self, method, path, body=None, ok=(200, 201)):
        code, _, obj = self.request(method, path, body)
        if code not in ok:
            raise KubeError('%s %s: %d %s' % (method, path, code, obj))
        return obj

    def get(self, kind, ns, name):
        """The object as the server holds it, or None."""
        group = '/apis/coordination.k8s.io/v1' if kind == 'leases' \
            else '/api/v1'
        code, _, obj = self.request(
            'GET', '%s/namespaces/%s/%s/%s' % (group, ns, kind, name))
        if code == 404:
            return None
        if code != 200:
            raise KubeError('GET %s/%s/%s: %d %s' % (kind, ns, name, code,
                                                     obj))
        return obj

    def lease(self, ns, name):
        obj = self.get('leases', ns, name)
        return obj and obj.get('spec')

    def grant(self, lock, events=False):
        """The least-privilege identity of docs/examples/kubernetes.yaml for
        the lock KIND/NS/NAME: its ServiceAccount, Role and RoleBinding as
        written there, for this lock (configmaps: the same verbs on
        configmaps in the core group, as docs/operations.md says; events:
        the commented-out rule).  Returns its kubeconfig's path."""
        import yaml
        kind, ns, name = lock.split('/')
        if kind not in ('leases', 'configmaps'):
            raise KubeError('lock kind: leases or configmaps, not ' + kind)
        known = self.state.setdefault('kubeconfigs', {})
        if lock in known and not events:
            return known[lock]
        with open(EXAMPLE) as f:
            docs = {d['kind']: d for d in yaml.safe_load_all(f) if d}
        sa, role, rb = (docs['ServiceAccount'], docs['Role'],
                        docs['RoleBinding'])
        suffix = '' if kind == 'leases' else '-cm'
        sa_name = name + suffix
        role_name = name + suffix + '-leader-election'
        sa['metadata'] = {'name': sa_name, 'namespace': ns}
        role['metadata'] = {'name': role_name, 'namespace': ns}
        for rule in role['rules']:
            if kind == 'configmaps':
                rule['apiGroups'], rule['resources'] = [''], ['configmaps']
            if 'resourceNames' in rule:
                rule['resourceNames'] = [name]
        if events:
            role['rules'].append({'apiGroups': [''], 'resources': ['events'],
                                  'verbs': ['create']})
        rb['metadata'] = {'name': role_name, 'namespace': ns}
        rb['subjects'] = [{'kind': 'ServiceAccount', 'name': sa_name,
                           'namespace': ns}]
        rb['roleRef']['name'] = role_name
        self.must('POST', '/api/v1/namespaces', {
            'apiVersion': 'v1', 'kind': 'Namespace',
            'metadata': {'name': ns}}, ok=(201, 409))
        rbac = '/apis/rbac.authorization.k8s.io/v1/namespaces/%s/' % ns
        for base, obj, plural in (('/api/v1/namespaces/%s/' % ns, sa,
                                   'serviceaccounts'),
                                  (rbac, role, 'roles'),
                                  (rbac, rb, 'rolebindings')):
            code, _, _ = self.request('POST', base + plural, obj)
            if code == 409:
                self.must('PUT', base + plural + '/' + obj['metadata']['name'],
                          obj)
            elif code != 201:
                self.must('POST', base + plural, obj)
        # a bound token (TokenRequest): no token controller runs here
        tr = self.must('POST', '/api/v1/namespaces/%s/serviceaccounts/%s/token'
                       % (ns, sa_name), {
                           'apiVersion': 'authentication.k8s.io/v1',
                           'kind': 'TokenRequest',
                           'spec': {'expirationSeconds': 86400}})
        token = tr['status']['token']
        path = os.path.join(self.dir, 'kubeconfig.%s.%s.%s' % (kind, ns, name))
        with open(path + '.token', 'w') as f:
            f.write(token)
        kubeconfig(path, self.url, self.ca, token, ns)
        self._wait_allowed(token, kind, ns, name)
        known[lock] = path
        self._save()
        return path

    def _wait_allowed(self, token, kind, ns, name):
        """RBAC is cached: until the new Role is seen, a get is 403."""
        group = '/apis/coordination.k8s.io/v1' if kind == 'leases' \
            else '/api/v1'
        path = '%s/namespaces/%s/%s/%s' % (group, ns, kind, name)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            code, _, _ = self.request('GET', path, token=token)
            if code in (200, 404):
                return
            time.sleep(0.05)
        raise KubeError('the Role for %s/%s/%s never took effect'
                        % (kind, ns, name))

    def env(self):
        return {'KLE_KUBE_DIR': self.dir, 'KLE_KUBE_URL': self.url,
                'KLE_KUBE_CA': self.ca, 'KLE_KUBE_ADMIN_TOKEN':
                self.admin_token, 'KLE_KUBE_ADMIN_KUBECONFIG':
                self.admin_kubeconfig, 'KLE_KUBE_KUBECONFIG': self.kubeconfig,
                'KLE_KUBE_TOKEN_FILE': self.kubeconfig + '.token',
                'KLE_KUBE_TOKEN': self.token(),
                'KLE_KUBE_LOCK': self.default_lock,
                'KLE_KUBE_ETCD_URL': self.etcd_url}

    def token(self, lock=None):
        """The least-privilege identity's token (of grant(lock))."""
        path = self.state['kubeconfigs'][lock or self.default_lock]
        with open(path + '.token') as f:
            return f.read()

    def _write_env(self):
        with open(os.path.join(self.dir, 'env'), 'w') as f:
            for k, v in sorted(self.env().items()):
                f.write('%s=%s\n' % (k, v))


def _watchdog(directory, owner):
    """Stops the server when the owner process has gone (a test that died
    without its END)."""
    pid = os.fork()
    if pid:
        return pid
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    while _alive(owner):
        time.sleep(0.5)
    try:
        KubeServer(directory).stop()
    finally:
        os._exit(0)


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, directory = argv[0], argv[1]
    k = KubeServer(directory)
    if cmd == 'start':
        k.start()
        if argv[2:3] == ['--owner']:
            k.state['watchdog_pid'] = _watchdog(k.dir, int(argv[3]))
            k._save()
        sys.stdout.write(open(os.path.join(k.dir, 'env')).read())
    elif cmd == 'stop':
        k.stop()
    elif cmd == 'grant':
        print(k.grant(argv[2], events='--events' in argv[3:]))
    elif cmd in ('kill', 'restart', 'pause', 'resume'):
        what = argv[2]
        if what not in ('apiserver', 'etcd'):
            raise KubeError('apiserver or etcd, not ' + what)
        if cmd == 'kill':
            k.kill(what, int(argv[3]) if argv[3:] else signal.SIGKILL)
        else:
            getattr(k, cmd)(what)
    elif cmd == 'compact':
        print(k.compact())
    elif cmd == 'get':
        obj = k.get(*argv[2].split('/'))
        if obj is not None:
            print(json.dumps(obj))
    elif cmd == 'env':
        sys.stdout.write(open(os.path.join(k.dir, 'env')).read())
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except KubeError as e:
        print('kube_server.py: %s' % e, file=sys.stderr)
        sys.exit(1)
