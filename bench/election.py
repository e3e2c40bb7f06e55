#!/usr/bin/python3
"""The election benchmark: this module (real nginx replicas), the real
client-go elector (t/clientgo, client-go 1.20.2's leaderelection) and the
official Python client's elector, side by side in one run: on the real
kube-apiserver 1.20.2 + etcd (t/kube/kube_server.py), then on the API
emulator with a latency of 5, 50 and 200 ms (uniform jitter: each request
waits 0.5 to 1.5 times the figure before the server handles it).

For each server and each timing (15/10/2 s, client-go's defaults, and 4/3/0.5
s), GROUPS locks per system run at once, each with 3 candidates of one system
on a lock of its own (a Lease; the Python client has only a ConfigMap lock).
Every system's groups run at the same time, so the systems share the server
and the 2 CPUs alike.  Each group, in its own thread:

  first     start 3 candidates: the first holder's acquireTime minus the
            wall time just before the first candidate was started (process
            start-up included)
  steady    STEADY seconds of nothing: holder changes counted (spurious)
  crash     KILLS times: kill -9 the holder (its whole process group) at a
            random phase; excess = the successor's acquireTime - (the dead
            holder's last renewTime + the record's leaseDurationSeconds);
            a new candidate (new identity) replaces the dead one
  handoff   HANDOFFS times: stop the holder gracefully (nginx: SIGQUIT,
            client-go: SIGTERM, ReleaseOnCancel; Python: SIGTERM, it never
            releases); handoff = successor's acquireTime - the release
            record's renewTime (Python: - (last renewTime + lease))

Every time comes from the lock's records as the server stores them (read by
one watch per resource kind, admin token): renewTime and acquireTime are
written by the candidates from this machine's clock, so all share a clock.

Then the API cost (real server only): CANDIDATES of one system on one lock
at 15/10/2 s, settled past a lease, for COST_WINDOW s: the server's
requests by verb and watch events (its /metrics), bytes in each direction
(the candidates' /proc/PID/io, TLS included) and kube-apiserver's and etcd's
CPU (/proc/PID/stat) and RSS.  Results: OUT/election.json.
Environment: LOCKS (10), KILLS (10), HANDOFFS (2), STEADY (40 s),
SERVERS (real,emu5,emu50,emu200), TIMINGS (default,tight),
CANDIDATES (3,10,100,1000), COST_WINDOW (30 s), PHASES (election,cost;
probe: the real server's own answer and watch event times of a Lease
UPDATE),
SYSTEMS (module,client-go,python), RESULT (election.json: the file written
in OUT).
"""

import datetime
import http.client
import json
import os
import random
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, 't', 'emulator'))
sys.path.insert(0, os.path.join(TOP, 't', 'kube'))
from kube_emulator import EmulatorProcess    # noqa: E402
import kube_server                           # noqa: E402

NGINX = os.environ.get('NGINX', '/usr/sbin/nginx')
SO = os.path.join(TOP, 'build', 'modules',
                  'ngx_http_leader_election_module.so')
CLIENTGO = os.environ.get('KLE_CLIENTGO') or \
    os.path.join(TOP, 'build', 'kube', 'kle-clientgo')
PYTHON = '/usr/bin/python3'             # the one with python3-kubernetes
ANN = 'control-plane.alpha.kubernetes.io/leader'
NS = 'default'
TIMINGS = {'default': (15, 10, 2), 'tight': (4, 3, 0.5)}
HZ = os.sysconf('SC_CLK_TCK')


def env_int(name, default):
    return int(os.environ.get(name, default))


def env_list(name, default):
    return [x for x in os.environ.get(name, default).split(',') if x]


SYSTEMS = tuple(env_list('SYSTEMS', 'module,client-go,python'))


def log(*a):
    print(time.strftime('%H:%M:%S'), *a, flush=True)


# --- processes ---------------------------------------------------------------

def parents():
    """{pid: parent pid} of every process, read once."""
    out = {}
    for d in os.listdir('/proc'):
        if d.isdigit():
            try:
                with open('/proc/%s/stat' % d) as f:
                    st = f.read()
            except OSError:
                continue
            out[int(d)] = int(st[st.rfind(')') + 2:].split()[1])
    return out


def children(pid, tree=None):
    tree = parents() if tree is None else tree
    return [p for p, pp in tree.items() if pp == pid]


def proc_stat(pid):
    """(CPU seconds, RSS bytes) of a process, or None."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            st = f.read()
    except OSError:
        return None
    x = st[st.rfind(')') + 2:].split()
    return ((int(x[11]) + int(x[12])) / HZ,
            int(x[21]) * os.sysconf('SC_PAGE_SIZE'))


class Candidate:
    """One candidate of a system: its own process (group)."""

    def __init__(self, system, ident, lock, timings, kubeconfig, workdir,
                 single=False):
        self.system, self.id, self.lock = system, ident, lock
        self.t = timings
        self.dir = os.path.join(workdir, ident)
        os.makedirs(os.path.join(self.dir, 'logs'), exist_ok=True)
        self.kubeconfig = kubeconfig
        self.single = single          # nginx: master_process off
        self.proc = None
        self.count = 1

    def argv(self):
        ld, rd, rp = self.t
        kind, ns, name = self.lock.split('/')
        if self.system == 'module':
            conf = os.path.join(self.dir, 'nginx.conf')
            with open(conf, 'w') as f:
                f.write(
                    'load_module %s;\n' % SO +
                    ('user root;\n' if os.geteuid() == 0 else '') +
                    'master_process %s;\n' % ('off' if self.single else 'on')
                    + 'worker_processes 1;\n'
                    'daemon off;\n'
                    'error_log logs/error.log notice;\n'
                    'pid logs/nginx.pid;\n'
                    'events { worker_connections 64; }\n'
                    'http {\n'
                    '    access_log off;\n'
                    '    leader_election bench {\n'
                    '        lock            %s %s/%s;\n'
                    '        identity        %s;\n'
                    '        lease_duration  %ds;\n'
                    '        renew_deadline  %dms;\n'
                    '        retry_period    %dms;\n'
                    '        api_server      kubeconfig %s;\n'
                    '    }\n'
                    '}\n' % (kind, ns, name, self.id, ld, round(rd * 1000),
                             round(rp * 1000), self.kubeconfig))
            return [NGINX, '-p', self.dir + '/', '-c', conf,
                    '-e', 'logs/error.log']
        if self.system == 'client-go':
            return [CLIENTGO, '--kubeconfig', self.kubeconfig,
                    '--lock', self.lock, '--identity', self.id,
                    '--count', str(self.count),
                    '--lease-duration', '%gs' % ld,
                    '--renew-deadline', '%gs' % rd,
                    '--retry-period', '%gs' % rp]
        return [PYTHON, os.path.join(TOP, 'bench', 'python_elector.py'),
                '--kubeconfig', self.kubeconfig, '--lock', '%s/%s' % (ns, name),
                '--identity', self.id, '--count', str(self.count),
                '--lease', str(ld), '--renew', str(rd), '--retry', str(rp)]

    def start(self):
        out = open(os.path.join(self.dir, 'out.log'), 'ab')
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=out,
                                     start_new_session=True)
        out.close()
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self, tree=None):
        if not self.alive():
            return []
        return [self.proc.pid] + children(self.proc.pid, tree)

    def kill(self):
        """kill -9 of the whole process group, as a crashed pod."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def quit(self):
        """The system's graceful stop: it releases the lock (but Python)."""
        sig = signal.SIGQUIT if self.system == 'module' else signal.SIGTERM
        try:
            os.kill(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def reap(self, timeout=20):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill()


# --- the servers -------------------------------------------------------------

class Server:
    """The real API server (latency None) or the emulator with a latency."""

    def __init__(self, name, workdir):
        self.name = name
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        self.real = name == 'real'
        if self.real:
            self.k = kube_server.KubeServer(os.path.join(self.dir, 'kube'))
            self.k.start()
            self.url, self.ca = self.k.url, self.k.ca
            self.token = self.k.admin_token
            self.kubeconfig = self.k.admin_kubeconfig
            self.latency = 0
        else:
            self.latency = int(name[3:])
            self.emu = EmulatorProcess(os.path.join(self.dir, 'api'),
                                       ['--history', '200000']).start()
            self.url, self.ca = self.emu.url, self.emu.ca
            self.token, self.kubeconfig = self.emu.token, self.emu.kubeconfig
            if self.latency:
                # every API request (the watches' start too): 0.5 to 1.5 x
                code, _ = self.emu.admin('POST', '/_emulator/faults', {
                    'kind': 'latency', 'path': '/namespaces/',
                    'ms': self.latency / 2, 'jitter_ms': self.latency})
                assert code in (200, 201), code
        self.port = int(self.url.rsplit(':', 1)[1])

    def connection(self, timeout=30):
        ctx = ssl.create_default_context(cafile=self.ca)
        return http.client.HTTPSConnection('127.0.0.1', self.port,
                                           context=ctx, timeout=timeout)

    def get(self, path):
        c = self.connection()
        try:
            c.request('GET', path, headers={
                'Authorization': 'Bearer ' + self.token})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def pids(self):
        if not self.real:
            return {'emulator': self.emu.proc.pid}
        return {w: self.k.pid(w) for w in ('apiserver', 'etcd')}

    def close(self):
        if self.real:
            self.k.stop()
        else:
            self.emu.stop()


# --- the records -------------------------------------------------------------

def parse_time(text):
    """A MicroTime (RFC 3339, UTC) or the Python client's str(datetime)
    (local time: this machine's TZ) as epoch seconds."""
    if not text:
        return None
    if 'T' in text:
        text = text.rstrip('Z')
        fmt = '%Y-%m-%dT%H:%M:%S.%f' if '.' in text else '%Y-%m-%dT%H:%M:%S'
        return datetime.datetime.strptime(text, fmt).replace(
            tzinfo=datetime.timezone.utc).timestamp()
    fmt = '%Y-%m-%d %H:%M:%S.%f' if '.' in text else '%Y-%m-%d %H:%M:%S'
    return datetime.datetime.strptime(text, fmt).timestamp()


def record(obj, kind):
    """(holder, transitions, acquire, renew, lease) of a lock object."""
    if kind == 'leases':
        s = obj.get('spec') or {}
        return (s.get('holderIdentity') or '', s.get('leaseTransitions', 0),
                parse_time(s.get('acquireTime')),
                parse_time(s.get('renewTime')),
                s.get('leaseDurationSeconds'))
    ann = ((obj.get('metadata') or {}).get('annotations') or {}).get(ANN)
    r = json.loads(ann) if ann else {}
    return (r.get('holderIdentity') or '', r.get('leaderTransitions', 0),
            parse_time(r.get('acquireTime')), parse_time(r.get('renewTime')),
            int(r.get('leaseDurationSeconds') or 0) or None)


class Watcher(threading.Thread):
    """Every version of every lock of one kind in NS, from a watch."""

    def __init__(self, server, kind):
        super().__init__(daemon=True)
        self.server, self.kind = server, kind
        group = '/apis/coordination.k8s.io/v1' if kind == 'leases' \
            else '/api/v1'
        self.path = '%s/namespaces/%s/%s' % (group, NS, kind)
        self.versions = {}        # name -> [(wall arrival, rv, record...)]
        self.cond = threading.Condition()
        self.halt = False
        self.errors = []

    def add(self, obj):
        name = obj['metadata']['name']
        rv = obj['metadata']['resourceVersion']
        try:
            rec = record(obj, self.kind)
        except (ValueError, TypeError):
            return
        with self.cond:
            vs = self.versions.setdefault(name, [])
            if not vs or vs[-1][1] != rv:
                vs.append((time.time(), rv) + rec)
                self.cond.notify_all()

    def run(self):
        rv = None
        while not self.halt:
            try:
                if rv is None:
                    code, body = self.server.get(self.path)
                    lst = json.loads(body)
                    for o in lst.get('items', []):
                        self.add(o)
                    rv = lst['metadata']['resourceVersion']
                c = self.server.connection(timeout=300)
                c.request('GET', self.path + '?watch=1&timeoutSeconds=240'
                          '&resourceVersion=' + rv,
                          headers={'Authorization':
                                   'Bearer ' + self.server.token})
                r = c.getresponse()
                while not self.halt:
                    line = r.readline()
                    if not line:
                        break
                    ev = json.loads(line)
                    if ev['type'] == 'ERROR':
                        raise RuntimeError(ev['object'].get('message'))
                    if ev['type'] in ('ADDED', 'MODIFIED'):
                        self.add(ev['object'])
                        rv = ev['object']['metadata']['resourceVersion']
                c.close()
            except Exception as e:
                if not self.halt:
                    self.errors.append(repr(e))
                    rv = None
                    time.sleep(0.2)

    def of(self, name):
        with self.cond:
            return list(self.versions.get(name, ()))

    def wait(self, name, cond, timeout):
        """The first version (from the end) meeting cond, waiting for it."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for v in reversed(self.versions.get(name, ())):
                    if cond(v):
                        return v
                left = deadline - time.time()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.5))


# version fields
T, RV, HOLDER, TRANS, ACQ, RENEW, LEASE = range(7)


# --- one lock group ----------------------------------------------------------

class Group(threading.Thread):
    def __init__(self, run, system, index):
        super().__init__(daemon=True)
        self.run_, self.system = run, system
        self.kind = 'configmaps' if system == 'python' else 'leases'
        self.name = 'b-%s-%s-%s-%d' % (run.server.name, run.tname,
                                        {'module': 'mod', 'client-go': 'cg',
                                         'python': 'py'}[system], index)
        self.lock = '%s/%s/%s' % (self.kind, NS, self.name)
        self.watch = run.watchers[self.kind]
        self.cands = {}
        self.stopped = set()
        self.gen = 0
        self.samples = []
        self.error = None

    def add(self):
        self.gen += 1
        ident = '%s-%d' % (self.name, self.gen)
        c = Candidate(self.system, ident, self.lock, self.run_.t,
                      self.run_.server.kubeconfig, self.run_.dir)
        self.cands[ident] = c.start()
        return c

    def sample(self, kind, **kw):
        kw.update(server=self.run_.server.name, timing=self.run_.tname,
                  system=self.system, lock=self.name, kind=kind)
        self.samples.append(kw)

    def holder(self, timeout):
        """A live candidate holding the lock, by its latest version."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            vs = self.watch.of(self.name)
            if vs and vs[-1][HOLDER] in self.cands and \
                    self.cands[vs[-1][HOLDER]].alive():
                return vs[-1][HOLDER]
            time.sleep(0.05)
        return None

    def successor(self, old, since_rv_index, timeout):
        """The first version after since_rv_index held by someone else."""
        def cond(v):
            return v[HOLDER] not in ('', old)
        deadline = time.time() + timeout
        while time.time() < deadline:
            vs = self.watch.of(self.name)
            for v in vs[since_rv_index:]:
                if cond(v):
                    return vs.index(v), vs
            self.watch.wait(self.name, cond, 0.5)
        return None, self.watch.of(self.name)

    def run(self):
        try:
            self.campaign()
        except Exception as e:       # reported, not hidden
            self.error = repr(e)
            self.run_.barrier.abort()     # the others go on
            log('  %s: %r' % (self.name, e))
        finally:
            self.whole_run()
            for c in self.cands.values():
                if c.alive():
                    c.kill()

    def campaign(self):
        ld, rd, rp = self.run_.t
        time.sleep(random.uniform(0, rp))
        t0 = time.time()
        for _ in range(3):
            self.add()
        first = self.watch.wait(self.name, lambda v: v[HOLDER], 60)
        if not first:
            raise RuntimeError('no leader in 60 s')
        self.sample('first', value=first[ACQ] - t0)
        # every group up before the steady state: start-up is a CPU storm
        try:
            self.run_.barrier.wait()
        except threading.BrokenBarrierError:
            pass                    # another group failed: go on
        time.sleep(3)
        # steady: nobody is stopped; any change of holder is spurious
        s0 = time.time()
        n0 = len(self.watch.of(self.name))
        time.sleep(self.run_.steady)
        vs = self.watch.of(self.name)
        changes = [(a[HOLDER], b[HOLDER]) for a, b in
                   zip(vs[n0 - 1:], vs[n0:]) if a[HOLDER] != b[HOLDER]]
        self.sample('steady', seconds=time.time() - s0, changes=changes,
                    writes=len(vs) - n0)
        for k in range(self.run_.kills + self.run_.handoffs):
            crash = k < self.run_.kills
            time.sleep(2 + random.uniform(0, rp))
            h = self.holder(2 * ld + 10)
            if h is None:
                raise RuntimeError('no live holder')
            idx = len(self.watch.of(self.name))
            tk = time.time()
            if crash:
                self.cands[h].kill()
            else:
                self.cands[h].quit()
            i, vs = self.successor(h, idx - 1, 3 * ld + 20)
            if i is None:
                raise RuntimeError('no successor to %s' % h)
            new = vs[i]
            last = [v for v in vs[:i] if v[HOLDER] == h]
            last = last[-1] if last else None
            rel = [v for v in vs[idx - 1:i] if v[HOLDER] == '']
            s = dict(old=h, new=new[HOLDER], acquire=new[ACQ],
                     t_stop=tk, arrival=new[T],
                     last_renew=last and last[RENEW],
                     lease=last and last[LEASE])
            if last and last[RENEW] is not None and last[LEASE]:
                s['excess'] = new[ACQ] - (last[RENEW] + last[LEASE])
            if crash:
                self.sample('crash', value=s.get('excess'), **s)
            else:
                if rel:
                    s['release'] = rel[0][RENEW] or rel[0][T]
                    s['value'] = new[ACQ] - s['release']
                else:           # no release: the next holder waits a lease
                    s['value'] = s.get('excess')
                    s['released'] = False
                self.sample('handoff', **s)
                self.cands[h].reap()
            self.stopped.add(h)
            del self.cands[h]
            self.add()

    def whole_run(self):
        """Changes of holder that no stop of ours caused, from the first
        leader to the end: spurious (a leader that lost its lock)."""
        vs = [v for v in self.watch.of(self.name)]
        held = [i for i, v in enumerate(vs) if v[HOLDER]]
        if not held:
            return
        vs = vs[held[0]:]
        bad = [(a[HOLDER], b[HOLDER], b[T]) for a, b in zip(vs, vs[1:])
               if a[HOLDER] and b[HOLDER] and a[HOLDER] != b[HOLDER] and
               a[HOLDER] not in self.stopped]
        self.sample('spurious', seconds=time.time() - vs[0][T],
                    changes=bad)


class Run:
    """One server and one timing: GROUPS groups of every system at once."""

    def __init__(self, bench, server, tname):
        self.server, self.tname = server, tname
        self.t = TIMINGS[tname]
        self.watchers = bench.watchers
        self.dir = os.path.join(server.dir, tname)
        os.makedirs(self.dir)
        self.kills = env_int('KILLS', 10)
        self.handoffs = env_int('HANDOFFS', 2)
        self.steady = env_int('STEADY', 40)
        self.groups = env_int('LOCKS', 10)

    def go(self):
        groups = [Group(self, s, i) for i in range(self.groups)
                  for s in SYSTEMS]
        self.barrier = threading.Barrier(len(groups), timeout=600)
        t0 = time.time()
        info = {'server': self.server.name, 'timing': self.tname,
                'timings': self.t, 'groups_per_system': self.groups,
                'start': t0, 'loadavg_start': os.getloadavg()}
        log('%s %s: %d groups of 3 (%d per system)' % (
            self.server.name, self.tname, len(groups), self.groups))
        for g in groups:            # staggered: start-up is CPU-bound
            g.start()
            time.sleep(0.4)
        for g in groups:
            g.join()
        info.update(wall_s=time.time() - t0, loadavg_end=os.getloadavg(),
                    errors={g.name: g.error for g in groups if g.error})
        samples = [s for g in groups for s in g.samples]
        for s in SYSTEMS:
            c = sorted(x['value'] for x in samples if x['system'] == s and
                       x['kind'] == 'crash' and x.get('value') is not None)
            log('  %s: %d crashes, median %.1f ms' % (
                s, len(c), 1000 * c[len(c) // 2] if c else float('nan')))
        return info, samples


# --- the API cost ------------------------------------------------------------

def metrics(server):
    """apiserver_request_total and apiserver_watch_events_total of the
    lock kinds, as {series: value}."""
    code, body = server.get('/metrics')
    out = {}
    for line in body.decode().splitlines():
        if line.startswith(('apiserver_request_total{',
                            'apiserver_watch_events_total{',
                            'apiserver_watch_events_sizes_sum{',
                            'apiserver_response_sizes_sum{')) and \
                ('leases' in line or 'configmaps' in line or
                 'Lease' in line or 'ConfigMap' in line):
            k, v = line.rsplit(' ', 1)
            out[k] = float(v)
    return out


def sockets(port, pids):
    """{(pid, local address): [bytes sent, bytes received]} of the TCP
    connections of these processes to port (ss -tinp: the kernel's
    per-connection counters; TLS records, headers and bodies)."""
    out = {}
    try:
        text = subprocess.run(
            ['ss', '-tinpH', 'state', 'established',
             '( dport = :%d )' % port], capture_output=True, text=True,
            timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return out
    key = None
    pids = set(pids)
    for line in text.splitlines():
        if 'users:((' in line:
            key = None
            f = line.split()
            for pid in re.findall(r'pid=(\d+),', line):
                if int(pid) in pids:
                    key = (int(pid), f[2])
        elif key:
            kv = dict(x.split(':', 1) for x in line.split()
                      if x.startswith(('bytes_acked:', 'bytes_received:')))
            out[key] = [int(kv.get('bytes_acked', 0)),
                        int(kv.get('bytes_received', 0))]
            key = None
    return out


def snapshot(server, cands):
    snap = {'t': time.time(), 'metrics': metrics(server), 'server': {},
            'cand_cpu': 0.0}
    for w, pid in server.pids().items():
        snap['server'][w] = proc_stat(pid) if pid else None
    tree = parents()
    pids = [pid for c in cands for pid in c.pids(tree)]
    for pid in pids:
        st = proc_stat(pid)
        if st:
            snap['cand_cpu'] += st[0]
    snap['sockets'] = sockets(server.port, pids)
    return snap


def socket_delta(a, b):
    """Bytes (to the server, from it) between two snapshots: connections
    opened in between count from 0; those closed in between are lost."""
    up = down = 0
    for k, (s1, r1) in b.items():
        s0, r0 = a.get(k, (0, 0))
        up += s1 - s0
        down += r1 - r0
    return up, down, len(set(a) - set(b))


def cost(bench, server, system, n, window):
    """n candidates of one system on one lock at 15/10/2 s."""
    t = TIMINGS['default']
    kind = 'configmaps' if system == 'python' else 'leases'
    name = 'cost-%s-%d' % ({'module': 'mod', 'client-go': 'cg',
                            'python': 'py'}[system], n)
    lock = '%s/%s/%s' % (kind, NS, name)
    d = os.path.join(server.dir, name)
    cands = []
    # candidates per process: Python's are threads; client-go's are one
    # process each up to 100, then 25 electors a process (1,000 Go
    # processes would not fit in memory), each on a connection of its own
    per = 25 if system == 'python' or (system == 'client-go' and n > 100) \
        else 1
    k = 0
    while k < n:
        c = Candidate(system, '%s-%d' % (name, k), lock, t,
                      server.kubeconfig, d, single=(system == 'module'))
        c.count = min(per, n - k)
        cands.append(c.start())
        k += c.count
        time.sleep(0.02)
    try:
        if not bench.watchers[kind].wait(name, lambda v: v[HOLDER], 60):
            raise RuntimeError('%s: no leader' % name)
        time.sleep(t[0] + 2 * t[2] + 1)   # every candidate past a lease
        a = snapshot(server, cands)
        time.sleep(window)
        b = snapshot(server, cands)
        alive = sum(c.alive() for c in cands)
        up, down, closed = socket_delta(a['sockets'], b['sockets'])
    finally:
        for c in cands:
            c.kill()
    res = {'system': system, 'candidates': n, 'processes': len(cands),
           'alive_at_end': alive, 'seconds': b['t'] - a['t'],
           'periods': (b['t'] - a['t']) / t[2],
           'metrics': {k: b['metrics'].get(k, 0) - a['metrics'].get(k, 0)
                       for k in set(a['metrics']) | set(b['metrics'])
                       if name and b['metrics'].get(k, 0) !=
                       a['metrics'].get(k, 0)},
           'bytes_to_server': up, 'bytes_from_server': down,
           'connections_closed': closed,
           'connections': len(b['sockets']),
           'candidates_cpu_s': b['cand_cpu'] - a['cand_cpu'],
           'server': {w: {'cpu_s': b['server'][w][0] - a['server'][w][0],
                          'rss': b['server'][w][1]}
                      for w in b['server'] if a['server'].get(w) and
                      b['server'].get(w)}}
    log('  cost %s %d: %s' % (system, n, json.dumps(
        {k: v for k, v in res.items() if k != 'metrics'})))
    return res


def idle_cost(server, window):
    a = snapshot(server, [])
    time.sleep(window)
    b = snapshot(server, [])
    return {'seconds': b['t'] - a['t'],
            'server': {w: {'cpu_s': b['server'][w][0] - a['server'][w][0],
                           'rss': b['server'][w][1]} for w in b['server']}}


# --- the server's own write path ---------------------------------------------

def write_probe(server, n=200, gap=0.1):
    """n UPDATEs of a scratch Lease from one connection, gap s apart, with
    a watch of it open on another: how long the server takes to answer a
    write and to send its watch event, on nothing but its own path (the
    floor of a follower's view of a renewal).  Times from the monotonic
    clock of this process, in s."""
    path = '/apis/coordination.k8s.io/v1/namespaces/%s/leases' % NS
    hdr = {'Authorization': 'Bearer ' + server.token,
           'Content-Type': 'application/json'}
    c = server.connection()
    c.request('POST', path, json.dumps({
        'metadata': {'name': 'probe'},
        'spec': {'holderIdentity': 'probe', 'leaseTransitions': 0}}), hdr)
    obj = json.loads(c.getresponse().read())
    seen = {}

    def watch(rv):
        w = server.connection()
        w.request('GET', path + '?watch=1&fieldSelector=metadata.name%3D'
                  'probe&resourceVersion=' + rv, headers=hdr)
        r = w.getresponse()
        while True:
            line = r.readline()
            if not line:
                return
            ev = json.loads(line)['object']
            seen[ev['spec'].get('leaseTransitions')] = time.monotonic()

    threading.Thread(target=watch, daemon=True,
                     args=(obj['metadata']['resourceVersion'],)).start()
    time.sleep(1)
    sent, answered = {}, {}
    for i in range(1, n + 1):
        obj['spec']['leaseTransitions'] = i
        sent[i] = time.monotonic()
        c.request('PUT', path + '/probe', json.dumps(obj), hdr)
        obj = json.loads(c.getresponse().read())
        answered[i] = time.monotonic()
        time.sleep(gap)
    time.sleep(1)
    c.close()
    return {'updates': n, 'gap_s': gap,
            'answer_s': [answered[i] - sent[i] for i in sent],
            'event_s': [seen[i] - sent[i] for i in sent if i in seen]}


# --- the run -----------------------------------------------------------------

def versions():
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True,
                                  text=True, cwd=TOP).stdout.strip() or \
                None
        except OSError:
            return None
    return {
        'git': sh('git describe --always --dirty --abbrev=12'),
        # what was measured, as git trees: they survive a rebase
        'lib_module_trees': sh('git rev-parse HEAD:lib HEAD:module | '
                               'cut -c1-12 | paste -sd" "'),
        'nginx': sh('%s -v 2>&1' % NGINX),
        'kube-apiserver': sh('%s --version' % kube_server.APISERVER),
        'etcd': sh('%s --version | head -1' % kube_server.ETCD),
        'client-go': '1.20.2 (vendored in the kube-apiserver tree that '
                     't/kube/build.sh builds: t/clientgo)',
        'python-kubernetes': sh(PYTHON + ' -c "import kubernetes; '
                                'print(kubernetes.__version__)"'),
        'kernel': os.uname().release,
        'cpus': os.cpu_count(),
        'cpu': sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
    }


class Bench:
    def __init__(self, out):
        self.out = out
        self.work = tempfile.mkdtemp(prefix='work-', dir=out)
        self.watchers = None


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                          os.path.join(TOP, 'build', 'bench'))
    os.makedirs(out, exist_ok=True)
    b = Bench(out)
    phases = env_list('PHASES', 'election,cost')
    res = {'versions': versions(), 'start': time.time(),
           'loadavg_start': os.getloadavg(), 'runs': [], 'samples': [],
           'cost': [], 'env': {k: os.environ[k] for k in (
               'LOCKS', 'KILLS', 'HANDOFFS', 'STEADY', 'SERVERS',
               'TIMINGS', 'CANDIDATES', 'COST_WINDOW', 'PHASES', 'SYSTEMS',
               'RESULT')
               if k in os.environ}}
    log('versions: %s' % res['versions'])
    try:
        for sname in env_list('SERVERS', 'real,emu5,emu50,emu200'):
            server = Server(sname, b.work)
            b.watchers = {k: Watcher(server, k)
                          for k in ('leases', 'configmaps')}
            for w in b.watchers.values():
                w.start()
            try:
                if 'election' in phases:
                    for tname in env_list('TIMINGS', 'default,tight'):
                        info, samples = Run(b, server, tname).go()
                        res['runs'].append(info)
                        res['samples'].extend(samples)
                if 'probe' in phases and server.real:
                    res['probe'] = write_probe(server)
                if 'cost' in phases and server.real:
                    window = env_int('COST_WINDOW', 30)
                    res['cost_idle'] = idle_cost(server, window)
                    for n in [int(x) for x in
                              env_list('CANDIDATES', '3,10,100,1000')]:
                        for s in SYSTEMS:
                            r = cost(b, server, s, n, window)
                            r['loadavg'] = os.getloadavg()
                            res['cost'].append(r)
                res.setdefault('watch_errors', {})[sname] = {
                    k: w.errors[:5] for k, w in b.watchers.items()}
            finally:
                for w in b.watchers.values():
                    w.halt = True
                server.close()
    finally:
        res['wall_s'] = time.time() - res['start']
        res['loadavg_end'] = os.getloadavg()
        path = os.path.join(out, os.environ.get('RESULT', 'election.json'))
        with open(path, 'w') as f:
            json.dump(res, f, indent=1)
        log('wrote %s (%.0f s)' % (path, res['wall_s']))
        shutil.rmtree(b.work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
