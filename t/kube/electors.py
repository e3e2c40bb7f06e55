"""Candidates on the real API server, and what the suites watch them with.

    Nginx(workdir, name, lock, kubeconfig, port)   an nginx replica of the
        module: start(), quit() (SIGQUIT: releases), kill() (kill -9 of its
        process group, as a crashed pod), is_leader(), status()
    ClientGo(workdir, name, lock, kubeconfig)      t/clientgo's elector
        (client-go's leaderelection): start(), quit() (SIGTERM: releases),
        kill(), is_leader()
    Sampler(candidates)      asks every candidate "do you lead?" every 50 ms
    LockWatch(server, lock)  every version of the lock the server stores,
        from a watch: versions, changes(), check_transitions(); errors
        (a broken watch: versions may be missing)

Sampling: a sample asks every candidate in order, then again in reverse
order.  Two candidates both answering "leader" does not by itself prove
they led at once (a hand-over can fall between the two questions); but the
outer one of a pair (asked first and last) answering "leader" twice, and
the inner one once, does: the inner answer falls between the outer two.
Those samples are what "two leaders" means here (overlaps()).
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NGINX = os.environ.get('KLE_NGINX') or '/usr/sbin/nginx'
MODULE = os.environ.get('TEST_NGINX_LOAD_MODULES', '').split(' ')[0] or \
    os.path.join(ROOT, 'build', 'modules',
                 'ngx_http_leader_election_module.so')
CLIENTGO = os.environ.get('KLE_CLIENTGO') or \
    os.path.join(ROOT, 'build', 'kube', 'kle-clientgo')
ANNOTATION = 'control-plane.alpha.kubernetes.io/leader'


def http_get(port, path, timeout=1.0):
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        c.request('GET', path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


class Candidate:
    kind = None

    def __init__(self, workdir, name, lock, kubeconfig, timings=(4, 3, 0.5)):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.name = name
        self.lock = lock
        self.kubeconfig = kubeconfig
        self.timings = timings
        self.proc = None
        self.port = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _popen(self, argv):
        self.log = os.path.join(self.dir, 'out.log')
        out = open(self.log, 'ab')
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=out,
                                     start_new_session=True)
        out.close()

    def _wait_port(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError('%s exited at start:\n%s'
                                   % (self.name, self.log_text()[-2000:]))
            try:
                if self.is_leader() is not None:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError('%s does not answer' % self.name)

    def kill(self):
        """kill -9 of every process, as a crash."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def quit(self, sig, timeout=15):
        if not self.alive():
            return
        os.kill(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError('%s did not exit in %d s' % (self.name,
                                                              timeout))
        try:                            # what the workers left
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def log_text(self):
        try:
            with open(self.log, errors='replace') as f:
                return f.read()
        except OSError:
            return ''


class Nginx(Candidate):
    kind = 'nginx'

    def __init__(self, workdir, name, lock, kubeconfig, port, identity=None,
                 **kw):
        super().__init__(workdir, name, lock, kubeconfig, **kw)
        self.port = port
        self.identity = identity or name
        os.makedirs(os.path.join(self.dir, 'logs'), exist_ok=True)

    def conf(self):
        ld, rd, rp = self.timings
        kind, ns, name = self.lock.split('/')
        user = 'user root;\n' if os.geteuid() == 0 else ''
        return f"""load_module {MODULE};
worker_processes 2;
master_process on;
daemon off;
{user}error_log logs/error.log info;
pid logs/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    leader_election web {{
        lock            {kind} {ns}/{name};
        identity        {self.identity};
        address         127.0.0.1:{self.port};
        lease_duration  {ld}s;
        renew_deadline  {int(rd * 1000)}ms;
        retry_period    {int(rp * 1000)}ms;
        api_server      kubeconfig {self.kubeconfig};
    }}
    server {{
        listen 127.0.0.1:{self.port};
        location = /is_leader {{ return 200 "$leader_election_is_leader"; }}
        location = /leader {{ leader_election_status; }}
    }}
}}
"""

    def start(self):
        path = os.path.join(self.dir, 'nginx.conf')
        with open(path, 'w') as f:
            f.write(self.conf())
        self._popen([NGINX, '-p', self.dir + '/', '-c', path,
                     '-e', 'logs/error.log'])
        self._wait_port()
        return self

    def is_leader(self):
        code, body = http_get(self.port, '/is_leader')
        return body == b'1' if code == 200 else None

    def status(self):
        return json.loads(http_get(self.port, '/leader')[1])

    def quit(self, timeout=15):
        """nginx -s quit: the leader releases the lock on its way out."""
        super().quit(signal.SIGQUIT, timeout)

    def error_log(self):
        try:
            with open(os.path.join(self.dir, 'logs', 'error.log'),
                      errors='replace') as f:
                return f.read()
        except OSError:
            return ''


class ClientGo(Candidate):
    kind = 'client-go'

    def start(self):
        ld, rd, rp = self.timings
        pf = os.path.join(self.dir, 'port')
        if os.path.exists(pf):
            os.unlink(pf)
        self._popen([CLIENTGO, '--kubeconfig', self.kubeconfig,
                     '--lock', self.lock, '--identity', self.name,
                     '--lease-duration', '%gs' % ld,
                     '--renew-deadline', '%gs' % rd,
                     '--retry-period', '%gs' % rp, '--port-file', pf])
        deadline = time.monotonic() + 10
        while not os.path.exists(pf):
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError('%s did not start:\n%s'
                                   % (self.name, self.log_text()[-2000:]))
            time.sleep(0.02)
        with open(pf) as f:
            self.port = int(f.read())
        self._wait_port()
        return self

    def is_leader(self):
        code, body = http_get(self.port, '/')
        return json.loads(body)['leader'] if code == 200 else None

    def quit(self, timeout=15):
        """SIGTERM: the elector's context is cancelled, ReleaseOnCancel."""
        super().quit(signal.SIGTERM, timeout)


class Sampler(threading.Thread):
    """samples: (monotonic time, {name: answer in pass 1},
    {name: answer in pass 2}, order); an answer is True, False or None (no
    answer: dead or busy)."""

    def __init__(self, candidates, period=0.05):
        super().__init__(daemon=True)
        self.cands = candidates           # dict name -> Candidate (live)
        self.period = period
        self.samples = []
        self.halt = threading.Event()

    def _ask(self, c):
        if not c.alive():
            return None
        try:
            return c.is_leader()
        except (OSError, ValueError, KeyError, http.client.HTTPException):
            return None

    def run(self):
        while not self.halt.is_set():
            cands = dict(self.cands)        # the test adds and removes
            order = sorted(cands)
            t = time.monotonic()
            p1 = {n: self._ask(cands[n]) for n in order}
            p2 = {n: self._ask(cands[n]) for n in reversed(order)}
            self.samples.append((t, p1, p2, order))
            self.halt.wait(self.period)

    def stop(self):
        self.halt.set()
        if self.is_alive():
            self.join()

    def leaders(self, sample=None):
        """The candidates that answered leader in both passes."""
        t, p1, p2, order = sample or self.samples[-1]
        return sorted(n for n in order if p1.get(n) and p2.get(n))

    def wait_for(self, cond, timeout):
        """The first sample from now on whose leaders() meet cond."""
        n = len(self.samples)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for s in self.samples[n:]:
                if cond(self.leaders(s)):
                    return s
            n = len(self.samples)
            time.sleep(0.02)
        return None

    def overlaps(self):
        """Samples that prove two leaders at once (module docstring)."""
        out = []
        for s in self.samples:
            t, p1, p2, order = s
            for i, a in enumerate(order):
                for b in order[i + 1:]:
                    if p1.get(a) and p2.get(a) and (p1.get(b) or p2.get(b)):
                        out.append((t, a, b))
        return out


def parse_time(text):
    """RFC 3339 UTC (a MicroTime or whole seconds) as epoch seconds."""
    import datetime
    if not text:
        return None
    text = text.rstrip('Z')
    fmt = '%Y-%m-%dT%H:%M:%S.%f' if '.' in text else '%Y-%m-%dT%H:%M:%S'
    return datetime.datetime.strptime(text, fmt).replace(
        tzinfo=datetime.timezone.utc).timestamp()


def lock_record(obj, kind):
    """(resourceVersion, holder, transitions, acquire, renew, lease) of a
    Lease or ConfigMap, times as epoch seconds."""
    rv = obj['metadata'].get('resourceVersion')
    if kind == 'leases':
        s = obj.get('spec') or {}
        return (rv, s.get('holderIdentity') or '',
                s.get('leaseTransitions', 0), parse_time(s.get('acquireTime')),
                parse_time(s.get('renewTime')), s.get('leaseDurationSeconds'))
    ann = (obj['metadata'].get('annotations') or {}).get(ANNOTATION)
    rec = json.loads(ann) if ann else {}
    return (rv, rec.get('holderIdentity') or '',
            rec.get('leaderTransitions', 0), parse_time(rec.get('acquireTime')),
            parse_time(rec.get('renewTime')), rec.get('leaseDurationSeconds'))


class LockWatch(threading.Thread):
    """Every version of the lock, from a watch of the admin (re-listed and
    watched again if the watch ends)."""

    def __init__(self, server, lock):
        super().__init__(daemon=True)
        self.server = server
        self.kind, self.ns, self.name = lock.split('/')
        # (monotonic time, rv, holder, transitions, acquire, renew, lease)
        self.versions = []
        self.halt = threading.Event()
        self.errors = []
        self.conn = None

    def _path(self):
        group = '/apis/coordination.k8s.io/v1' if self.kind == 'leases' \
            else '/api/v1'
        return '%s/namespaces/%s/%s' % (group, self.ns, self.kind)

    def _add(self, obj):
        rec = lock_record(obj, self.kind)
        if not self.versions or self.versions[-1][1] != rec[0]:
            self.versions.append((time.monotonic(),) + rec)

    def run(self):
        import ssl
        rv = None                       # where the next watch starts
        while not self.halt.is_set():
            try:
                if rv is None:
                    code, _, lst = self.server.request(
                        'GET', self._path() + '?fieldSelector='
                        'metadata.name%3D' + self.name)
                    for obj in lst.get('items', []):
                        self._add(obj)
                    rv = lst['metadata']['resourceVersion']
                ctx = ssl.create_default_context(cafile=self.server.ca)
                self.conn = c = http.client.HTTPSConnection(
                    '127.0.0.1', self.server.state['apiserver_port'],
                    context=ctx, timeout=30)
                c.request('GET', self._path() + '?watch=1&fieldSelector='
                          'metadata.name%3D' + self.name +
                          '&timeoutSeconds=20&resourceVersion=' + rv,
                          headers={'Authorization': 'Bearer ' +
                                   self.server.admin_token})
                r = c.getresponse()
                while not self.halt.is_set():
                    line = r.readline()
                    if not line:
                        break           # its timeout: watch on from rv
                    ev = json.loads(line)
                    if ev['type'] == 'ERROR':
                        raise RuntimeError(ev['object'].get('message'))
                    if ev['type'] in ('ADDED', 'MODIFIED'):
                        self._add(ev['object'])
                        rv = ev['object']['metadata']['resourceVersion']
                c.close()
            except Exception as e:       # the server restarting: list again
                if not self.halt.is_set():
                    self.errors.append(repr(e))
                    rv = None
                    self.halt.wait(0.2)

    def stop(self):
        self.halt.set()
        try:                            # wakes the read
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except (AttributeError, OSError):
            pass
        if self.is_alive():
            self.join(5)

    def holders(self):
        return [v[2] for v in self.versions]

    def check_transitions(self):
        """Every change of holder to someone adds one to the count, any
        other write keeps it.  Returns the pairs that break the rule."""
        bad = []
        for a, b in zip(self.versions, self.versions[1:]):
            want = a[3] + (1 if b[2] and b[2] != a[2] else 0)
            if b[3] != want:
                bad.append((a, b))
        return bad

    def takeovers(self):
        """Holder changes from a live record (not a release): (new holder,
        its acquireTime - (the old record's renewTime + its lease)), the
        time the old lease had run out when the new holder took it."""
        out = []
        for a, b in zip(self.versions, self.versions[1:]):
            if a[2] and b[2] and b[2] != a[2] and None not in (a[5], a[6],
                                                               b[4]):
                out.append((b[2], b[4] - (a[5] + a[6])))
        return out

    def changes(self):
        """Holder changes to a non-empty holder: (time, from, to)."""
        out = []
        for a, b in zip(self.versions, self.versions[1:]):
            if b[2] and b[2] != a[2]:
                out.append((b[0], a[2], b[2]))
        return out
