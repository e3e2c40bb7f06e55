#!/usr/bin/env python3
"""make chaos: real nginx replicas, one API server, random faults.

    chaos.py --dir DIR [--seconds S] [--changes N] [--seed X] [--replicas R]
             [--module SO] [--nginx BIN] [--mix kind=weight,...]
             [--server emulator|real]

Starts the Kubernetes API emulator (or kube-apiserver and etcd), R nginx
replicas (master_process on, two workers each, the module built in this
tree, identities r1..rR) and, for each replica, a TCP proxy of its own
between it and the API server.
Probes every replica continuously and injects faults chosen at random
(seeded) until N leadership changes or S seconds, whichever comes first.
Then heals everything, checks that a leader comes back, stops every
process it started and runs the checker (check.py) on what was recorded.
Exit status: the checker's (non-zero on any violation or failure).

Everything it records is on CLOCK_BOOTTIME (mono_ms()), the clock the
module judges and logs its claims on:

    DIR/rN/logs/error.log   the replica's error log (debug_core: the
                            module's claim lines)
    DIR/probes/rN.log       "send_ms recv_ms HTTP is_leader token pid", or
                            "send_ms recv_ms ERR reason"
    DIR/faults.jsonl        one line per fault phase (start, end, ...)
    DIR/params.json         the run's parameters, seed included
"""

import argparse
import ctypes
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import check  # noqa: E402

# (lease_duration s, renew_deadline ms, retry_period ms): client-go's rules
# and lease - renew deadline >= 1 s, lease 2-4 s.  The first is the one
# every replica starts with.
TIMINGS = [(2, 1000, 400), (3, 2000, 500), (2, 1000, 800), (3, 2000, 1000),
           (4, 3000, 1000), (3, 1800, 600), (3, 1500, 600)]

# The faults and how often each is chosen (relative weights).
MIX = {
    'kill9': 8,             # kill -9 master and workers: a container dies
    'kill9_master': 3,      # kill -9 the master only; orphans run, then die
    'kill9_elector': 6,     # kill -9 the elector worker; the master respawns
    'stop_elector': 6,      # SIGSTOP the elector worker > renew_deadline
    'stop_replica': 4,      # SIGSTOP every process > lease_duration
    'quit': 8,              # nginx -s quit (releases), start again later
    'quit_slow': 4,         # the same while the API answers it slowly
    'restart': 4,           # nginx -s quit, start at once
    'reload': 5,            # nginx -s reload, same configuration
    'reload_timings': 6,    # configuration rewritten with other timings
    'reload_identity': 2,   # configuration rewritten with a new identity
    'cutoff': 7,            # the replica's proxy blackholes > lease
    'reload_cutoff': 2,     # cut off, then reloaded with other timings
    'slow_cutoff': 2,       # answers come late, then the replica is cut off
    'proxy_reset': 3,       # the replica's proxy resets every connection
    'proxy_latency': 4,     # the replica's proxy delays both directions
    'freeze': 3,            # the replica's open connections die silently
    'slow': 1,              # the replica's bytes slowed to a trickle
    'api_latency': 3,       # the API server answers late (everyone)
    'api_5xx': 3,           # the API server fails requests
    'api_lost_answer': 2,   # writes commit, their answer is a 500
    'api_reset': 2,         # the API server resets connections
    'api_410': 3,           # watch history compacted: 410 on resume
    'api_429': 1,           # too many requests, Retry-After 1
}

# Against the real kube-apiserver and etcd (--server real): the replicas'
# own faults, and the server's: what the emulator fakes (5xx, 429, lost
# answers) a real server does not do on demand; it dies, stops, forgets.
REAL_MIX = {k: w for k, w in MIX.items() if not k.startswith('api_')}
REAL_MIX.update({
    'freeze': 4,
    'slow': 2,
    'api_kill9': 2,         # kill -9 kube-apiserver, started again
    'api_etcd_kill9': 2,    # kill -9 etcd, started again
    'api_stop': 2,          # SIGSTOP kube-apiserver > renew_deadline
    'api_compact': 3,       # etcd compacted: resumed watches get 410
    'api_freeze': 2,        # every replica's open connections die silently
    'api_slow': 1,          # every replica's bytes slowed
    'api_latency': 2,       # every replica's answers late
    'api_reset': 1,         # every replica's connections reset
})
API_FAULTS = {k for k in list(MIX) + list(REAL_MIX) if k.startswith('api_')}

# The faults aimed at the current leader: each ends its term, at once (a
# release) or once its lease runs out.
LEADER_MIX = {
    'quit': 8, 'restart': 7, 'quit_slow': 2, 'kill9': 3, 'kill9_master': 1,
    'stop_replica': 1, 'cutoff': 1, 'stop_elector': 1, 'reload_identity': 1,
    'reload_cutoff': 1, 'slow_cutoff': 1,
}

ELECTION = 'chaos'
LOCK = 'leases default/chaos'
PROBE_TIMEOUT = 3.0
PROBE_GAP = 0.02


def mono_ms():
    # the module's clock: claims are judged on CLOCK_BOOTTIME
    return time.clock_gettime(time.CLOCK_BOOTTIME) * 1000.0


def set_subreaper():
    """Become the subreaper of what we start: nginx daemonizes, and a
    master killed alone leaves workers that must not end as zombies of a
    PID 1 that does not reap them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)          # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def proc_stat(pid):
    """(state, ppid, session, start time in ticks) of a process, or None
    if it is gone."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(')') + 2:].split()
    return rest[0], int(rest[1]), int(rest[3]), int(rest[19])


def all_pids():
    for d in os.listdir('/proc'):
        if d.isdigit():
            yield int(d)


class Recorder:
    """faults.jsonl: one line per fault phase, with its monotonic time."""

    def __init__(self, path):
        self.f = open(path, 'a')
        self.lock = threading.Lock()
        self.counts = {}

    def __call__(self, kind, target, phase, **detail):
        rec = {'t': round(mono_ms(), 3), 'kind': kind, 'target': target,
               'phase': phase}
        rec.update(detail)
        with self.lock:
            self.f.write(json.dumps(rec) + '\n')
            self.f.flush()
            if phase == 'start':
                self.counts[kind] = self.counts.get(kind, 0) + 1


class Emulator:
    def __init__(self, run):
        self.dir = os.path.join(run.dir, 'api')
        os.makedirs(self.dir, exist_ok=True)
        for f in ('port', 'admin_port'):
            if os.path.exists(os.path.join(self.dir, f)):
                os.unlink(os.path.join(self.dir, f))
        self.out = open(os.path.join(run.dir, 'emulator.out'), 'a')
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(TOP, 't/emulator/kube_emulator.py'),
             '--dir', self.dir, '--admin-port', '0', '--history', '200'],
            stdout=self.out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not (os.path.exists(os.path.join(self.dir, 'port'))
                   and os.path.exists(os.path.join(self.dir, 'admin_port'))):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('the emulator did not start; see %s'
                                   % self.out.name)
            time.sleep(0.05)
        self.port = int(open(os.path.join(self.dir, 'port')).read())
        self.admin_port = int(open(os.path.join(self.dir,
                                                'admin_port')).read())
        self.token = open(os.path.join(self.dir, 'token')).read().strip()
        self.ca = os.path.join(self.dir, 'ca.crt')

    def admin(self, method, path, body=None, missing_ok=False):
        c = http.client.HTTPConnection('127.0.0.1', self.admin_port,
                                       timeout=10)
        try:
            data = json.dumps(body).encode() if body is not None else None
            c.request(method, '/_emulator/' + path, body=data,
                      headers={'Content-Type': 'application/json'})
            r = c.getresponse()
            out = r.read()
            if r.status == 404 and missing_ok:
                return None
            if r.status >= 300:
                raise RuntimeError('emulator admin %s %s: %d %s'
                                   % (method, path, r.status, out[:200]))
            return json.loads(out) if out else None
        finally:
            c.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class RealServer:
    """kube-apiserver and etcd (t/kube/kube_server.py, make
    kube-apiserver), with the least-privilege identity of
    docs/examples/kubernetes.yaml for the chaos lock."""

    def __init__(self, run):
        sys.path.insert(0, os.path.join(TOP, 't', 'kube'))
        from kube_server import KubeServer
        self.dir = os.path.join(run.dir, 'api')
        self.k = KubeServer(self.dir)
        self.k.start()
        kind, ns_name = LOCK.split(' ')
        path = self.k.grant('%s/%s' % (kind, ns_name))
        self.token = open(path + '.token').read().strip()
        self.port = int(self.k.url.rsplit(':', 1)[1])
        self.ca = self.k.ca

    def stop(self):
        self.k.stop()


class Proxy:
    def __init__(self, run, name, upstream_port):
        self.log = open(os.path.join(run.dir, 'proxy-%s.log' % name), 'a')
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, 'proxy.py'),
             '--upstream', '127.0.0.1:%d' % upstream_port],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log, text=True, bufsize=1)
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != 'port':
            raise RuntimeError('proxy for %s did not start' % name)
        self.port = int(line[1])
        self.lock = threading.Lock()
        self.mode = 'pass'

    def command(self, cmd):
        with self.lock:
            self.proc.stdin.write(cmd + '\n')
            self.proc.stdin.flush()
            ans = self.proc.stdout.readline().strip()
            if not ans.startswith('ok'):
                raise RuntimeError('proxy: %s: %r' % (cmd, ans))
            if cmd not in ('freeze', 'drop'):     # connections, not a mode
                self.mode = cmd

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Replica:
    def __init__(self, run, idx, port):
        self.run = run
        self.idx = idx
        self.name = 'r%d' % idx
        self.port = port
        self.prefix = os.path.join(run.dir, self.name)
        self.identity = self.name
        self.identity_gen = 0
        self.timings = run.timings[0]
        self.masters = []           # every master pid started, in order
        self.sessions = {}          # live ones: master pid -> start time
        self.lock = threading.Lock()    # one fault at a time
        self.up = False
        self.starts = 0
        os.makedirs(os.path.join(self.prefix, 'conf'), exist_ok=True)
        os.makedirs(os.path.join(self.prefix, 'logs'), exist_ok=True)
        self.proxy = Proxy(run, self.name, run.emu.port)
        self.kubeconfig = os.path.join(self.prefix, 'conf', 'kubeconfig')
        with open(self.kubeconfig, 'w') as f:
            f.write(kubeconfig(self.proxy.port, run.emu.ca, run.emu.token))
        os.chmod(self.kubeconfig, 0o600)

    # configuration

    def conf_text(self):
        ld, rd, rp = self.timings
        user = 'user root;\n' if os.geteuid() == 0 else ''
        return f"""load_module {self.run.module};
worker_processes 2;
master_process on;
daemon on;
{user}error_log logs/error.log debug_core;
pid logs/nginx.pid;

events {{
    worker_connections 256;
    accept_mutex off;
}}

http {{
    access_log off;
    default_type text/plain;

    leader_election {ELECTION} {{
        lock            {LOCK};
        identity        {self.identity};
        address         127.0.0.1:{self.port};
        lease_duration  {ld}s;
        renew_deadline  {rd}ms;
        retry_period    {rp}ms;
        api_server      kubeconfig {self.kubeconfig};
    }}

    server {{
        listen 127.0.0.1:{self.port};

        # one read of the shared state: the token is empty unless this
        # instance leads, so "leader" and "token" come from one snapshot
        # ($leader_election_is_leader beside it would be a second read)
        location = /probe {{
            set $probe_token $leader_election_fencing_token;
            return 200 "$probe_token $pid\\n";
        }}
        location = /leader {{
            leader_election_status;
        }}
    }}
}}
"""

    def write_conf(self):
        path = os.path.join(self.prefix, 'conf', 'nginx.conf')
        with open(path + '.tmp', 'w') as f:
            f.write(self.conf_text())
        os.replace(path + '.tmp', path)

    def nginx(self, *args):
        return subprocess.run(
            [self.run.nginx, '-p', self.prefix + '/', '-c', 'conf/nginx.conf',
             '-e', 'logs/error.log'] + list(args),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=30)

    # processes

    def pid_file(self):
        return os.path.join(self.prefix, 'logs', 'nginx.pid')

    def master(self):
        try:
            with open(self.pid_file()) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def procs(self):
        """Live processes of this replica: the members of the sessions of
        its masters (nginx calls setsid(); workers keep the session when
        their master dies).  A session counts only while it lives: once
        its last member is gone, its number may be any process's, so it is
        forgotten (PIDs wrap within minutes on a busy machine)."""
        members = {}
        for pid in all_pids():
            st = proc_stat(pid)
            if st is None or st[2] not in self.sessions:
                continue
            if st[0] in ('Z', 'X'):
                self.run.reap(pid, st)
                continue
            members.setdefault(st[2], []).append((pid, st))
        out = []
        for sid, start in list(self.sessions.items()):
            mem = members.get(sid, [])
            leader = [st for pid, st in mem if pid == sid]
            if leader:
                if leader[0][3] != start:
                    # not our master: the number was reused
                    del self.sessions[sid]
                    continue
                out += [pid for pid, _ in mem]
                continue
            # the master is gone: its orphans are ours (we are their
            # subreaper), anything else in a session of that number is not
            orphans = [pid for pid, st in mem if st[1] == os.getpid()]
            if not orphans:
                del self.sessions[sid]
                continue
            out += orphans
        return out

    def signal_all(self, sig, master_first=True):
        pids = self.procs()
        m = self.master()
        pids.sort(key=lambda p: (p != m) if master_first else (p == m))
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return pids

    def kill_all(self, timeout=10.0):
        """SIGKILL to every process of the replica, until none is left."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.signal_all(signal.SIGKILL)
            if not pids:
                break
            if time.monotonic() > deadline:
                raise RuntimeError('%s: processes %s survive SIGKILL'
                                   % (self.name, pids))
            time.sleep(0.02)
        self.up = False
        try:
            os.unlink(self.pid_file())
        except OSError:
            pass

    def start(self):
        if self.procs():
            raise RuntimeError('%s: start with processes left: %s'
                               % (self.name, self.procs()))
        self.write_conf()
        try:
            os.unlink(self.pid_file())
        except OSError:
            pass
        # the clean-up either sees this master or stops it from starting
        with self.run.proc_lock:
            if self.run.closing:
                raise RuntimeError('%s: not started: the run is closing'
                                   % self.name)
            r = self.nginx()
            if r.returncode != 0:
                raise RuntimeError('%s: nginx did not start: %s'
                                   % (self.name, r.stdout.strip()))
            deadline = time.monotonic() + 10
            while self.master() is None:
                if time.monotonic() > deadline:
                    raise RuntimeError('%s: no pid file' % self.name)
                time.sleep(0.01)
            m = self.master()
            st = proc_stat(m)
            if st is None:
                raise RuntimeError('%s: master %d is gone at once'
                                   % (self.name, m))
            self.masters.append(m)
            self.sessions[m] = st[3]
        self.starts += 1
        while True:
            try:
                socket.create_connection(('127.0.0.1', self.port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError('%s: does not listen' % self.name)
                time.sleep(0.02)
        self.up = True

    def quit(self, timeout=15.0):
        """nginx -s quit, then waits for every process to exit."""
        r = self.nginx('-s', 'quit')
        if r.returncode != 0:
            self.run.note('%s: nginx -s quit: %s' % (self.name,
                                                     r.stdout.strip()))
        deadline = time.monotonic() + timeout
        while self.procs():
            if time.monotonic() > deadline:
                self.run.note('%s: still running %.0f s after quit; '
                              'killed' % (self.name, timeout))
                break
            time.sleep(0.02)
        self.kill_all()

    def reload(self):
        self.write_conf()
        r = self.nginx('-s', 'reload')
        if r.returncode != 0:
            raise RuntimeError('%s: nginx -s reload: %s'
                               % (self.name, r.stdout.strip()))

    def status(self):
        c = http.client.HTTPConnection('127.0.0.1', self.port, timeout=1.5)
        try:
            c.request('GET', '/leader')
            r = c.getresponse()
            return json.loads(r.read())
        finally:
            c.close()

    def elector_pid(self):
        """The elector worker, from the status page, if it is ours."""
        try:
            pid = self.status().get('elector_pid')
        except (OSError, ValueError, http.client.HTTPException):
            return None
        if not isinstance(pid, int) or pid not in self.procs():
            return None
        if pid == self.master():
            return None
        return pid


class Prober(threading.Thread):
    """GET /probe on a new connection each time, so that both workers
    answer; the send and receive times bracket the moment the variables
    were evaluated."""

    def __init__(self, chaos, rep):
        super().__init__(daemon=True, name='probe-' + rep.name)
        self.chaos = chaos
        self.rep = rep
        self.out = open(os.path.join(chaos.dir, 'probes', rep.name + '.log'),
                        'a')

    def run_one(self):
        s = mono_ms() / 1000.0
        try:
            sock = socket.create_connection(('127.0.0.1', self.rep.port),
                                            timeout=PROBE_TIMEOUT)
            try:
                sock.settimeout(PROBE_TIMEOUT)
                sock.sendall(b'GET /probe HTTP/1.0\r\nHost: chaos\r\n\r\n')
                data = b''
                while True:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            finally:
                sock.close()
            r = mono_ms() / 1000.0
        except OSError as e:
            r = mono_ms() / 1000.0
            self.out.write('%.3f %.3f ERR %s\n'
                           % (s * 1000, r * 1000,
                              type(e).__name__))
            return False
        head, _, body = data.partition(b'\r\n\r\n')
        code = head.split(b' ', 2)[1].decode() if b' ' in head else '000'
        fields = body.decode('ascii', 'replace').split(' ')
        if code != '200' or len(fields) != 2:
            self.out.write('%.3f %.3f ERR http-%s %r\n'
                           % (s * 1000, r * 1000, code, body[:40]))
            return False
        token, pid = fields[0] or '-', fields[1].strip()
        leader = '0' if token == '-' else '1'
        self.out.write('%.3f %.3f 200 %s %s %s\n'
                       % (s * 1000, r * 1000, leader, token, pid))
        if leader == '1':
            self.chaos.leader_hint = (self.rep, r)
        return True

    def run(self):
        while not self.chaos.probes_stop.is_set():
            ok = self.run_one()
            self.out.flush()
            self.chaos.probes_stop.wait(PROBE_GAP if ok else 0.05)
        self.out.close()


class LogTail:
    """Counts the terms claimed so far from the replicas' error logs, as
    they grow, so that the run knows when it has seen enough changes."""

    def __init__(self, paths):
        self.paths = paths
        self.offsets = {p: 0 for p in paths}
        self.terms = set()
        self.partial = {p: b'' for p in paths}

    def poll(self):
        for p in self.paths:
            try:
                with open(p, 'rb') as f:
                    f.seek(self.offsets[p])
                    data = f.read()
            except OSError:
                continue
            self.offsets[p] += len(data)
            data = self.partial[p] + data
            lines = data.split(b'\n')
            self.partial[p] = lines.pop()
            for line in lines:
                ev = check.parse_claim(line.decode('utf-8', 'replace'))
                if ev and ev['kind'] == 'claim' and ev['until'] > ev['now']:
                    self.terms.add(ev['term'])
        return max(0, len(self.terms) - 1)


class Chaos:
    def __init__(self, a):
        self.a = a
        self.dir = os.path.abspath(a.dir)
        self.rng = random.Random(a.seed)
        self.timings = list(TIMINGS)
        if a.timings:
            first = tuple(int(x) for x in a.timings.split(','))
            if first in self.timings:
                self.timings.remove(first)
            self.timings.insert(0, first)
        self.nginx = a.nginx
        self.module = os.path.abspath(a.module)
        base = REAL_MIX if a.server == 'real' else MIX
        self.mix = parse_mix(a.mix) if a.mix is not None else dict(base)
        self.leader_mix = (parse_mix(a.leader_mix)
                           if a.leader_mix is not None else dict(LEADER_MIX))
        self.replicas = []
        self.emu = None
        self.probers = []
        self.probes_stop = threading.Event()
        self.stop_faults = threading.Event()
        self.leader_hint = None
        self.fault_threads = []
        self.api_lock = threading.Lock()
        self.disrupted = 0
        self.disrupted_lock = threading.Lock()
        self.notes = []
        self.errors = []
        self.t0 = None
        self.proc_lock = threading.Lock()
        self.closing = False

    # bookkeeping

    def note(self, msg):
        line = '%9.3f %s' % ((time.monotonic() - (self.t0 or 0)), msg)
        self.notes.append(line)
        with open(os.path.join(self.dir, 'notes.log'), 'a') as f:
            f.write(line + '\n')
        if self.a.verbose:
            print(line, flush=True)

    def reap(self, pid, st):
        if st[1] == os.getpid():
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass

    # set-up and tear-down

    def setup(self):
        if os.path.exists(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(os.path.join(self.dir, 'probes'))
        self.record = Recorder(os.path.join(self.dir, 'faults.jsonl'))
        self.record('run', None, 'setup')
        self.emu = (RealServer(self) if self.a.server == 'real'
                    else Emulator(self))
        ports = free_ports(self.a.port, self.a.replicas)
        for i in range(self.a.replicas):
            self.replicas.append(Replica(self, i + 1, ports[i]))
        params = {
            'seed': self.a.seed, 'replicas': self.a.replicas,
            'seconds': self.a.seconds, 'changes': self.a.changes,
            'timings_start': list(self.timings[0]),
            'timings': [list(t) for t in self.timings],
            'mix': self.mix, 'fault_gap_s': self.a.fault_gap,
            'leader_mix': self.leader_mix, 'leader_gap_s': self.a.leader_gap,
            'max_disrupted': self.a.max_disrupted,
            'nginx': self.nginx, 'module': self.module,
            'server': self.a.server,
            'ports': ports, 'api_port': self.emu.port,
            'proxy_ports': [r.proxy.port for r in self.replicas],
            'probe_gap_s': PROBE_GAP, 'probe_timeout_s': PROBE_TIMEOUT,
            'election': ELECTION, 'lock': LOCK,
            'nginx_version': nginx_version(self.nginx),
            'commit': git_commit(),
        }
        with open(os.path.join(self.dir, 'params.json'), 'w') as f:
            json.dump(params, f, indent=1)
        self.t0 = time.monotonic()
        for rep in self.replicas:
            rep.start()
        for rep in self.replicas:
            p = Prober(self, rep)
            p.start()
            self.probers.append(p)

    def cleanup(self):
        """Every process this run started ends here, whatever happened."""
        self.stop_faults.set()
        self.probes_stop.set()
        with self.proc_lock:
            self.closing = True
        for rep in self.replicas:
            try:
                rep.signal_all(signal.SIGCONT)
                rep.kill_all()
            except Exception as e:          # keep cleaning up
                self.errors.append('cleanup %s: %s' % (rep.name, e))
        for rep in self.replicas:
            rep.proxy.stop()
        if self.emu:
            self.emu.stop()
        for p in self.probers:
            p.join(PROBE_TIMEOUT + 1)

    # the faults

    def start_fault(self, kind, target=None):
        """Starts a fault in a thread of its own; False if it cannot run
        now (the API already faulted, too many replicas disrupted, the
        target busy)."""
        if kind in API_FAULTS:
            if not self.api_lock.acquire(blocking=False):
                return False
            target = None
        else:
            with self.disrupted_lock:
                if self.disrupted >= self.a.max_disrupted:
                    return False
                if target is None:
                    free = [r for r in self.replicas if not r.lock.locked()]
                    if not free:
                        return False
                    target = self.rng.choice(free)
                if not target.lock.acquire(blocking=False):
                    return False
                self.disrupted += 1
        seed = self.rng.getrandbits(32)
        t = threading.Thread(target=self.fault_thread,
                             args=(kind, target, random.Random(seed)),
                             daemon=True, name='fault-' + kind)
        t.start()
        self.fault_threads.append(t)
        return True

    def current_leader(self):
        """The replica whose probe said leader last, if that was recent."""
        hint = self.leader_hint
        if hint and time.monotonic() - hint[1] < 0.5:
            return hint[0]
        return None

    def fault_thread(self, kind, rep, rng):
        try:
            getattr(self, 'f_' + kind)(rep, rng)
        except Exception as e:
            msg = 'fault %s on %s failed: %s' % (kind, rep.name if rep
                                                 else 'api', e)
            self.errors.append(msg)
            self.note(msg)
        finally:
            if rep is None:
                self.api_lock.release()
            else:
                rep.lock.release()
                with self.disrupted_lock:
                    self.disrupted -= 1

    def sleep(self, s):
        # faults finish their course even when the run is stopping: a
        # stopped process is continued, a proxy healed, a replica started
        time.sleep(max(0.0, s))

    def f_kill9(self, rep, rng):
        # a container's death: every process of it at once.  Killing the
        # master alone is another fault (f_kill9_master).
        self.record('kill9', rep.name, 'start', pids=rep.procs())
        rep.kill_all()
        self.record('kill9', rep.name, 'dead')
        self.sleep(rng.uniform(0.2, 2.0))
        rep.start()
        self.record('kill9', rep.name, 'end', master=rep.master())

    def f_kill9_master(self, rep, rng):
        # the workers survive their master and keep running the elector,
        # under the same identity: they must all be gone before the replica
        # starts again, or two electors would share one identity
        m = rep.master()
        self.record('kill9_master', rep.name, 'start', master=m)
        if m:
            os.kill(m, signal.SIGKILL)
        self.sleep(rng.uniform(0.5, 2.5))
        self.record('kill9_master', rep.name, 'orphans', pids=rep.procs())
        rep.kill_all()
        self.sleep(rng.uniform(0.1, 1.0))
        rep.start()
        self.record('kill9_master', rep.name, 'end', master=rep.master())

    def f_kill9_elector(self, rep, rng):
        pid = rep.elector_pid()
        if pid is None:
            self.record('kill9_elector', rep.name, 'skip')
            return
        self.record('kill9_elector', rep.name, 'start', pid=pid)
        os.kill(pid, signal.SIGKILL)
        self.sleep(0.5)
        self.record('kill9_elector', rep.name, 'end')

    def f_stop_elector(self, rep, rng):
        pid = rep.elector_pid()
        if pid is None:
            self.record('stop_elector', rep.name, 'skip')
            return
        secs = rep.timings[1] / 1000.0 + rng.uniform(0.3, 2.0)
        self.record('stop_elector', rep.name, 'start', pid=pid, secs=secs)
        os.kill(pid, signal.SIGSTOP)
        self.sleep(secs)
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        self.record('stop_elector', rep.name, 'end')

    def f_stop_replica(self, rep, rng):
        secs = rep.timings[0] + rng.uniform(0.3, 2.0)
        pids = rep.signal_all(signal.SIGSTOP)
        self.record('stop_replica', rep.name, 'start', pids=pids, secs=secs)
        self.sleep(secs)
        rep.signal_all(signal.SIGCONT, master_first=False)
        self.record('stop_replica', rep.name, 'end')

    def f_quit(self, rep, rng, kind='quit', down=None):
        self.record(kind, rep.name, 'start', master=rep.master())
        t = time.monotonic()
        rep.quit()
        self.record(kind, rep.name, 'exited',
                    secs=round(time.monotonic() - t, 3))
        self.sleep(rng.uniform(0.2, 2.0) if down is None else down)
        rep.start()
        self.record(kind, rep.name, 'end', master=rep.master())

    def f_quit_slow(self, rep, rng):
        # the release reaches the server at once; its answer comes late
        ms = rng.randint(200, 700)
        rep.proxy.command('latency 0 %d' % ms)
        self.record('quit_slow', rep.name, 'latency', down_ms=ms)
        try:
            self.f_quit(rep, rng, 'quit_slow')
        finally:
            rep.proxy.command('pass')

    def f_restart(self, rep, rng):
        self.f_quit(rep, rng, 'restart', down=0)

    def f_reload(self, rep, rng):
        self.record('reload', rep.name, 'start', master=rep.master())
        rep.reload()
        self.sleep(0.3)
        self.record('reload', rep.name, 'end')

    def f_reload_timings(self, rep, rng):
        old = rep.timings
        rep.timings = rng.choice([t for t in self.timings if t != old])
        self.record('reload_timings', rep.name, 'start', old=list(old),
                    new=list(rep.timings))
        rep.reload()
        self.sleep(0.3)
        self.record('reload_timings', rep.name, 'end')

    def f_reload_identity(self, rep, rng):
        # identities stay unique: the old one is never used again
        rep.identity_gen += 1
        old = rep.identity
        rep.identity = '%s-%d' % (rep.name, rep.identity_gen)
        self.record('reload_identity', rep.name, 'start', old=old,
                    new=rep.identity)
        rep.reload()
        self.sleep(0.3)
        self.record('reload_identity', rep.name, 'end')

    def f_cutoff(self, rep, rng):
        secs = rep.timings[0] + rng.uniform(0.5, 3.0)
        rep.proxy.command('blackhole')
        self.record('cutoff', rep.name, 'start', secs=secs)
        self.sleep(secs)
        rep.proxy.command('pass')
        self.record('cutoff', rep.name, 'end')

    def f_reload_cutoff(self, rep, rng):
        # an API outage, and a reload with other timings during it: the
        # claim made before must end when it was made to end
        ld = rep.timings[0]
        secs = ld + rng.uniform(0.5, 2.5)
        rep.proxy.command('blackhole')
        self.record('reload_cutoff', rep.name, 'start', secs=secs)
        self.sleep(rng.uniform(0.05, 0.5))
        old = rep.timings
        rep.timings = rng.choice([t for t in self.timings if t != old])
        rep.reload()
        self.record('reload_cutoff', rep.name, 'reloaded', old=list(old),
                    new=list(rep.timings))
        self.sleep(secs)
        rep.proxy.command('pass')
        self.record('reload_cutoff', rep.name, 'end')

    def f_slow_cutoff(self, rep, rng):
        # writes reach the server at once, their answers come back late
        # (within the request timeout), then nothing reaches the server
        # while the answers on their way still arrive: the last claim must
        # run from when its write was sent, not from its late answer
        # (a request times out after renew_deadline / 2, and a new
        # connection takes two answers: its TLS handshake and the request)
        ld, rd, rp = rep.timings
        down = int(rng.uniform(0.3, 0.95) * rd / 4)
        rep.proxy.command('latency 0 %d' % down)
        self.record('slow_cutoff', rep.name, 'start', down_ms=down)
        self.sleep(rng.uniform(2.5, 4.0))
        secs = ld + rng.uniform(0.5, 2.0)
        rep.proxy.command('blackhole up')
        self.record('slow_cutoff', rep.name, 'cutoff', secs=secs)
        self.sleep(secs)
        rep.proxy.command('pass')
        self.record('slow_cutoff', rep.name, 'end')

    def f_proxy_reset(self, rep, rng):
        secs = rng.uniform(0.3, 2.0)
        rep.proxy.command('reset')
        self.record('proxy_reset', rep.name, 'start', secs=secs)
        self.sleep(secs)
        rep.proxy.command('pass')
        self.record('proxy_reset', rep.name, 'end')

    def f_proxy_latency(self, rep, rng):
        up, down = rng.randint(20, 600), rng.randint(20, 600)
        secs = rng.uniform(1.0, 4.0)
        rep.proxy.command('latency %d %d' % (up, down))
        self.record('proxy_latency', rep.name, 'start', up_ms=up,
                    down_ms=down, secs=secs)
        self.sleep(secs)
        rep.proxy.command('pass')
        self.record('proxy_latency', rep.name, 'end')

    def api_fault(self, kind, spec, secs):
        f = self.emu.admin('POST', 'faults', spec)['faults'][0]
        self.record(kind, None, 'start', fault=spec, secs=secs)
        try:
            self.sleep(secs)
        finally:
            # gone already if it had a count and used it up
            self.emu.admin('DELETE', 'faults/%d' % f['id'], missing_ok=True)
        self.record(kind, None, 'end')

    def f_api_latency(self, rep, rng):
        ms, secs = rng.randint(100, 800), rng.uniform(1.0, 4.0)
        if self.a.server == 'real':
            self.api_proxies('api_latency', 'latency 0 %d' % ms, secs, ms=ms)
            return
        self.api_fault('api_latency', {'kind': 'latency', 'ms': ms}, secs)

    def f_api_5xx(self, rep, rng):
        spec = {'kind': 'status', 'code': rng.choice([500, 503, 504])}
        m = rng.choice(['PUT', 'GET', None])
        if m:
            spec['method'] = m
        self.api_fault('api_5xx', spec, rng.uniform(0.5, 3.0))

    def f_api_lost_answer(self, rep, rng):
        self.api_fault('api_lost_answer',
                       {'kind': 'status', 'code': 500, 'after': True,
                        'method': 'PUT', 'count': rng.randint(1, 3)},
                       rng.uniform(1.0, 3.0))

    def f_api_reset(self, rep, rng):
        secs = rng.uniform(0.3, 2.0)
        if self.a.server == 'real':
            self.api_proxies('api_reset', 'reset', secs)
            return
        self.api_fault('api_reset', {'kind': 'reset'}, secs)

    def f_api_429(self, rep, rng):
        self.api_fault('api_429',
                       {'kind': 'status', 'code': 429, 'retry_after': 1,
                        'count': rng.randint(1, 5)},
                       rng.uniform(1.0, 3.0))

    def f_api_410(self, rep, rng):
        self.record('api_410', None, 'start')
        self.emu.admin('POST', 'compact')
        self.record('api_410', None, 'end')

    # connections that die silently, bytes slowed: at the replicas'
    # proxies, against either server

    def f_freeze(self, rep, rng):
        # every open connection of the replica stops passing bytes, held
        # open (a NAT entry gone); new ones pass.  Past the renew deadline:
        # a leader that keeps using them loses its lease.  Then the frozen
        # ones are reset, as the kernel would give up on them at last.
        secs = rep.timings[1] / 1000.0 + rng.uniform(0.5, 4.0)
        rep.proxy.command('freeze')
        self.record('freeze', rep.name, 'start', secs=secs)
        self.sleep(secs)
        rep.proxy.command('drop')
        self.record('freeze', rep.name, 'end')

    def f_slow(self, rep, rng):
        rate, secs = rng.choice([300, 1000, 4000]), rng.uniform(1.0, 4.0)
        rep.proxy.command('slow %d' % rate)
        self.record('slow', rep.name, 'start', rate=rate, secs=secs)
        self.sleep(secs)
        rep.proxy.command('pass')
        self.record('slow', rep.name, 'end')

    def api_proxies(self, kind, cmd, secs, **detail):
        """An API fault made at the proxy of every replica not under a
        fault of its own (one that sets its proxy's mode)."""
        reps = [r for r in self.replicas if r.lock.acquire(blocking=False)]
        try:
            for r in reps:
                r.proxy.command(cmd)
            self.record(kind, None, 'start', secs=secs,
                        replicas=[r.name for r in reps], **detail)
            self.sleep(secs)
        finally:
            for r in reps:
                try:
                    r.proxy.command('pass')
                finally:
                    r.lock.release()
        self.record(kind, None, 'end')

    def f_api_freeze(self, rep, rng):
        # every replica's open connections at once (an API server's node
        # gone behind an L4 balancer): freezing sets no mode, so replicas
        # under faults of their own are frozen too
        secs = (max(r.timings[1] for r in self.replicas) / 1000.0
                + rng.uniform(0.5, 4.0))
        for r in self.replicas:
            r.proxy.command('freeze')
        self.record('api_freeze', None, 'start', secs=secs)
        self.sleep(secs)
        for r in self.replicas:
            r.proxy.command('drop')
        self.record('api_freeze', None, 'end')

    def f_api_slow(self, rep, rng):
        rate = rng.choice([300, 1000, 4000])
        self.api_proxies('api_slow', 'slow %d' % rate, rng.uniform(1.0, 4.0),
                         rate=rate)

    # the real server's own faults (--server real)

    def f_api_kill9(self, rep, rng, what='apiserver', kind='api_kill9'):
        self.record(kind, None, 'start', pid=self.emu.k.pid(what))
        self.emu.k.kill(what)
        self.record(kind, None, 'dead')
        self.sleep(rng.uniform(0.2, 2.0))
        self.emu.k.restart(what)
        self.record(kind, None, 'end', pid=self.emu.k.pid(what))

    def f_api_etcd_kill9(self, rep, rng):
        self.f_api_kill9(rep, rng, 'etcd', 'api_etcd_kill9')

    def f_api_stop(self, rep, rng):
        secs = (max(r.timings[1] for r in self.replicas) / 1000.0
                + rng.uniform(0.3, 2.0))
        self.emu.k.pause('apiserver')
        self.record('api_stop', None, 'start', secs=secs)
        try:
            self.sleep(secs)
        finally:
            self.emu.k.resume('apiserver')
        self.record('api_stop', None, 'end')

    def f_api_compact(self, rep, rng):
        self.record('api_compact', None, 'start')
        rev = self.emu.k.compact()
        self.record('api_compact', None, 'end', revision=rev)

    # the run

    def run(self):
        """Two streams of faults, both drawn from the seeded generator: one
        hits the current leader (each such fault ends its term, at once or
        after a lease), the other hits anything at random."""
        self.setup()
        tail = LogTail([os.path.join(r.prefix, 'logs', 'error.log')
                        for r in self.replicas])
        kinds = sorted(self.mix)
        weights = [self.mix[k] for k in kinds]
        lkinds = sorted(self.leader_mix)
        lweights = [self.leader_mix[k] for k in lkinds]
        end = self.t0 + self.a.seconds
        # the first leader, before any fault
        self.sleep(self.timings[0][0] + 1)
        self.record('run', None, 'faults-start')
        changes = 0
        last_poll = 0
        now = time.monotonic()
        next_bg = now + self.rng.expovariate(1.0 / self.a.fault_gap)
        next_leader = now + self.rng.expovariate(1.0 / self.a.leader_gap)
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if now - last_poll > 2:
                last_poll = now
                changes = tail.poll()
                if self.a.changes and changes >= self.a.changes:
                    break
                self.fault_threads = [t for t in self.fault_threads
                                      if t.is_alive()]
                if len(self.errors) > 10:
                    self.note('too many errors; stopping the faults')
                    break
            if lkinds and now >= next_leader:
                leader = self.current_leader()
                if leader is not None and self.start_fault(
                        self.rng.choices(lkinds, lweights)[0], leader):
                    next_leader = now + self.rng.expovariate(
                        1.0 / self.a.leader_gap)
            if kinds and now >= next_bg:
                self.start_fault(self.rng.choices(kinds, weights)[0])
                next_bg = now + self.rng.expovariate(1.0 / self.a.fault_gap)
            time.sleep(0.02)
        self.record('run', None, 'faults-stop', changes=changes)
        self.note('faults stop: about %d changes' % changes)
        self.settle()

    def settle(self):
        """Every fault ends its course; then the replicas must elect one
        leader again within a lease and a few retries."""
        for t in self.fault_threads:
            t.join(60)
        if self.a.server == 'real':
            for what in ('etcd', 'apiserver'):
                self.emu.k.resume(what)
                if not self.emu.k.pid(what):
                    self.emu.k.restart(what)
        else:
            self.emu.admin('DELETE', 'faults')
        for rep in self.replicas:
            rep.signal_all(signal.SIGCONT)
            if rep.proxy.mode != 'pass':
                rep.proxy.command('pass')
            if not rep.procs():
                rep.start()
        t = time.monotonic()
        self.record('run', None, 'healed')
        limit = max(ld + 2.2 * rp / 1000.0 for ld, _, rp in
                    (r.timings for r in self.replicas)) + 5.0
        leader = None
        while time.monotonic() - t < limit:
            hint = self.leader_hint
            if hint and hint[1] > t:
                leader = hint[0]
                break
            time.sleep(0.05)
        took = time.monotonic() - t
        self.record('run', None, 'liveness',
                    leader=leader.name if leader else None,
                    secs=round(took, 3), limit=round(limit, 3))
        if leader is None:
            self.errors.append('no leader within %.1f s after the faults '
                               'stopped' % limit)
        self.sleep(1.0)
        self.probes_stop.set()
        for p in self.probers:
            p.join(PROBE_TIMEOUT + 1)
        self.record('run', None, 'shutdown')
        for rep in self.replicas:
            rep.quit()
        self.record('run', None, 'end')


def kubeconfig(port, ca, token):
    """The API server as a replica reaches it: through its own proxy."""
    q = json.dumps
    return '\n'.join([
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: chaos',
        '  cluster:',
        '    server: ' + q('https://127.0.0.1:%d' % port),
        '    certificate-authority: ' + q(ca),
        'users:',
        '- name: chaos',
        '  user:',
        '    token: ' + q(token),
        'contexts:',
        '- name: chaos',
        '  context:',
        '    cluster: chaos',
        '    user: chaos',
        '    namespace: default',
        'current-context: chaos',
        '']) + '\n'


def parse_mix(text):
    mix = {}
    for item in filter(None, text.split(',')):
        k, _, w = item.partition('=')
        k = k.strip()
        if k not in MIX and k not in REAL_MIX:
            raise SystemExit('unknown fault kind %r (known: %s)'
                             % (k, ', '.join(sorted(set(MIX)
                                                    | set(REAL_MIX)))))
        mix[k] = float(w) if w else 1.0
    return mix


def free_ports(base, n):
    """n consecutive free ports from base (below the ephemeral range, so
    that nothing else takes them between the replicas' restarts)."""
    port = base
    while port + n < 32768:
        ok = True
        for p in range(port, port + n):
            s = socket.socket()
            try:
                s.bind(('127.0.0.1', p))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        if ok:
            return list(range(port, port + n))
        port += n
    raise RuntimeError('no %d free ports from %d' % (n, base))


def git_commit():
    """The tree's commit, "+" if it has changes; None outside git."""
    try:
        head = subprocess.run(['git', '-C', TOP, 'rev-parse', '--short',
                               'HEAD'], capture_output=True, text=True)
        dirty = subprocess.run(['git', '-C', TOP, 'status', '--porcelain',
                                '--untracked-files=no'],
                               capture_output=True, text=True)
    except OSError:
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ('+' if dirty.stdout.strip() else '')


def nginx_version(nginx):
    try:
        r = subprocess.run([nginx, '-v'], capture_output=True, text=True)
        return (r.stderr or r.stdout).strip()
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dir', required=True)
    ap.add_argument('--seconds', type=float, default=1800)
    ap.add_argument('--changes', type=int, default=1000,
                    help='stop after this many leadership changes (0: '
                    'run for --seconds)')
    ap.add_argument('--seed', type=int, default=None)
    ap.add_argument('--replicas', type=int, default=4)
    ap.add_argument('--max-disrupted', type=int, default=None,
                    help='replicas under a fault at once (default R-2)')
    ap.add_argument('--fault-gap', type=float, default=1.5,
                    help='mean seconds between two faults at random')
    ap.add_argument('--leader-gap', type=float, default=0.3,
                    help='mean seconds between two faults on the leader')
    ap.add_argument('--mix', default=None,
                    help='kind=weight,... for the faults at random '
                    '(empty: none)')
    ap.add_argument('--leader-mix', default=None,
                    help='kind=weight,... for the faults on the leader '
                    '(empty: none)')
    ap.add_argument('--timings', default=None,
                    help='LEASE_S,RENEW_MS,RETRY_MS every replica starts '
                    'with (default %d,%d,%d)' % TIMINGS[0])
    ap.add_argument('--port', type=int,
                    default=int(os.environ.get('CHAOS_PORT', 18600)))
    ap.add_argument('--nginx', default=os.environ.get('TEST_NGINX_BINARY',
                                                      '/usr/sbin/nginx'))
    ap.add_argument('--module', default=os.path.join(
        TOP, 'build/modules/ngx_http_leader_election_module.so'))
    ap.add_argument('--server', choices=('emulator', 'real'),
                    default=os.environ.get('CHAOS_SERVER') or 'emulator',
                    help='the emulator (t/emulator) or a real '
                    'kube-apiserver and etcd (t/kube, make kube-apiserver)')
    ap.add_argument('--verbose', '-v', action='store_true')
    a = ap.parse_args()
    if not 3 <= a.replicas <= 5:
        raise SystemExit('--replicas: 3 to 5')
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1 << 31)
    if a.max_disrupted is None:
        a.max_disrupted = a.replicas - 2
    for ld, rd, rp in TIMINGS + ([tuple(int(x) for x in
                                        a.timings.split(','))]
                                 if a.timings else []):
        if not ld * 1000 > rd > 1.2 * rp > 0 or ld * 1000 - rd < 1000:
            raise SystemExit('timings %s,%s,%s break client-go\'s rules '
                             'or the 1 s margin' % (ld, rd, rp))

    print('chaos: seed %d, %d replicas, up to %d changes or %.0f s; '
          'run directory %s' % (a.seed, a.replicas, a.changes, a.seconds,
                                a.dir), flush=True)
    set_subreaper()
    ch = Chaos(a)

    def on_signal(signum, frame):
        raise KeyboardInterrupt('signal %d' % signum)

    # explicitly: a shell starts background jobs with SIGINT ignored
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    interrupted = False
    try:
        ch.run()
    except KeyboardInterrupt:
        interrupted = True
        print('chaos: interrupted; stopping everything', flush=True)
    except Exception as e:
        ch.errors.append('run failed: %s: %s' % (type(e).__name__, e))
        print('chaos: %s' % ch.errors[-1], flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        ch.cleanup()
    with open(os.path.join(ch.dir, 'errors.log'), 'w') as f:
        for e in ch.errors:
            f.write(e + '\n')
    if interrupted:
        return 130
    return check.main([ch.dir])


if __name__ == '__main__':
    sys.exit(main())
