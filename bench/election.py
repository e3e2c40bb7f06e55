#!/usr/bin/python3
"""The election benchmark: this module (real nginx replicas), the official
Python client's elector and a model of client-go's elector, side by side in
one run, on one API emulator, with the same timings (lease 4 s, renew
deadline 3 s, retry 0.5 s unless a phase says otherwise).  Every figure
comes from the emulator's request log (server arrival time of each request,
its verb, code and body), never from the candidates' own logs.

  steady   requests per retry period on the lock, by verb (GET, PUT, POST,
           watch = watch requests started), with N candidates settled
  crash    kill -9 the holder; excess = next holder's first successful
           write - (the dead holder's last successful write + lease)
  handoff  graceful stop of the holder (nginx -s quit, SIGTERM);
           release record -> next holder's write
  scale    10 and 100 candidates: requests; for the module, CPU per
           follower (/proc/PID/schedstat) and the crash excess at 100
  headline client-go's request rate at its defaults (15/10/2 s, 3
           replicas, the model) and this module's crash failover at the
           tightest timings that fit the same rate

A killed candidate is replaced by a new one with a new identity (a new
pod), after the takeover.  Results: OUT/election.json and the data files
plots.gp reads.  Environment: KILLS (20), HANDOFFS (10), KILLS_100 (5),
WINDOW (20 s), CPU_WINDOW (60 s), HEADLINE_WINDOW (60 s), HEADLINE_KILLS
(10), PHASES (comma list of: module,python,model,scale,headline).
"""

import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, 't', 'emulator'))
from kube_emulator import EmulatorProcess    # noqa: E402

NGINX = os.environ.get('NGINX', '/usr/sbin/nginx')
SO = os.path.join(TOP, 'build', 'modules',
                  'ngx_http_leader_election_module.so')
PYTHON = '/usr/bin/python3'             # the one with python3-kubernetes
ANN = 'control-plane.alpha.kubernetes.io/leader'
NS = 'default'


def env_int(name, default):
    return int(os.environ.get(name, default))


def log(*a):
    print(time.strftime('%H:%M:%S'), *a, flush=True)


class Timings:
    def __init__(self, lease, renew, retry):
        self.lease, self.renew, self.retry = lease, renew, retry

    def __str__(self):
        return '%g/%g/%g s' % (self.lease, self.renew, self.retry)


DEFAULT = Timings(4, 3, 0.5)


# --- processes ---------------------------------------------------------------

def children(pid):
    out = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d) as f:
                st = f.read()
        except OSError:
            continue
        if int(st[st.rfind(')') + 2:].split()[1]) == pid:
            out.append(int(d))
    return out


def cpu_ns(pid):
    """Time on CPU, ns (schedstat), or utime+stime ticks as ns."""
    try:
        with open('/proc/%d/schedstat' % pid) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open('/proc/%d/stat' % pid) as f:
            st = f.read()
        fields = st[st.rfind(')') + 2:].split()
        return (int(fields[11]) + int(fields[12])) * \
            (1000000000 // os.sysconf('SC_CLK_TCK'))
    except (OSError, ValueError, IndexError):
        return None


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split(') ')[1][0] != 'Z'
    except OSError:
        return False


class NginxCandidate:
    """One nginx instance: master + one worker, or (single) one process."""

    def __init__(self, group, ident):
        self.id = ident
        self.dir = os.path.join(group.dir, ident)
        os.makedirs(os.path.join(self.dir, 'conf'))
        os.makedirs(os.path.join(self.dir, 'logs'))
        t = group.t
        with open(os.path.join(self.dir, 'conf', 'nginx.conf'), 'w') as f:
            f.write('load_module %s;\n' % SO
                    + ('master_process off;\n' if group.single else '')
                    + 'worker_processes 1;\n'
                    'error_log logs/error.log notice;\n'
                    'pid logs/nginx.pid;\n'
                    'events { worker_connections 64; }\n'
                    'http {\n'
                    '    access_log off;\n'
                    '    leader_election bench {\n'
                    '        lock            leases %s/%s;\n'
                    '        identity        %s;\n'
                    '        lease_duration  %ds;\n'
                    '        renew_deadline  %dms;\n'
                    '        retry_period    %dms;\n'
                    '        api_server      kubeconfig %s;\n'
                    '    }\n'
                    '    server {\n'
                    '        listen unix:%s/http.sock;\n'
                    '        location / { return 200 '
                    '"$leader_election_is_leader\\n"; }\n'
                    '    }\n'
                    '}\n' % (NS, group.name, ident, t.lease,
                             round(t.renew * 1000), round(t.retry * 1000),
                             group.b.emu.kubeconfig, self.dir))
        subprocess.run([NGINX, '-p', self.dir, '-c', 'conf/nginx.conf',
                        '-e', 'logs/error.log'], check=True)
        pidfile = os.path.join(self.dir, 'logs', 'nginx.pid')
        for _ in range(100):
            try:
                with open(pidfile) as f:
                    self.pid = int(f.read())
                break
            except (OSError, ValueError):
                time.sleep(0.05)
        else:
            raise RuntimeError('nginx %s did not start' % ident)

    def pids(self):
        return [self.pid] + children(self.pid)

    def kill9(self):
        # the master first, in the same sweep: a live master respawns
        for p in self.pids():
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self):
        os.kill(self.pid, signal.SIGQUIT)

    def alive(self):
        return alive(self.pid)

    def cpu(self):
        total = 0
        for p in self.pids():
            c = cpu_ns(p)
            if c is not None:
                total += c
        return total


class ProcCandidate:
    """A Python process running one or more candidates (threads)."""

    def __init__(self, group, ident, count=1):
        self.id = ident
        script = {'python': 'python_elector.py',
                  'model': 'clientgo_model.py'}[group.kind]
        t = group.t
        argv = [PYTHON, os.path.join(TOP, 'bench', script),
                '--api-dir', group.b.emu.dir,
                '--lock', '%s/%s' % (NS, group.name), '--identity', ident,
                '--count', str(count), '--lease', str(t.lease),
                '--renew', str(t.renew), '--retry', str(t.retry)]
        if group.kind == 'model':
            argv.append('--release')
        self.log = open(os.path.join(group.dir, ident + '.log'), 'w')
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        self.pid = self.proc.pid

    def kill9(self):
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)

    def alive(self):
        return self.proc.poll() is None

    def cpu(self):
        return cpu_ns(self.pid) or 0


class Group:
    """The candidates of one elector on one lock."""

    def __init__(self, b, kind, name, t=DEFAULT, single=False):
        self.b, self.kind, self.name, self.t = b, kind, name, t
        self.single = single
        self.res = 'configmaps' if kind == 'python' else 'leases'
        self.dir = os.path.join(b.work, name)
        os.makedirs(self.dir)
        self.cands = {}
        self.gen = 0
        self.prefix = {'module': 'nginx', 'python': 'py',
                       'model': 'cg'}[kind]

    def add(self, count=1):
        """A new candidate (a new identity); count > 1: one process of
        count threads (Python electors only)."""
        self.gen += 1
        ident = '%s-%d' % (self.prefix, self.gen)
        if self.kind == 'module':
            c = NginxCandidate(self, ident)
        else:
            c = ProcCandidate(self, ident, count)
        self.cands[ident] = c
        return c

    def start(self, n, per_process=1):
        while n > 0:
            k = min(n, per_process)
            self.add(k)
            n -= k
            if self.kind == 'module' and n > 0:
                time.sleep(0.02)

    def holder(self):
        code, obj = self.b.emu.admin(
            'GET', '/_emulator/objects/%s/%s/%s' % (self.res, NS, self.name))
        if code != 200:
            return None
        return record_holder(self.res, obj)

    def owner(self, ident):
        """The candidate object running identity ident."""
        if ident in self.cands:
            return self.cands[ident]
        base = ident.rsplit('-', 1)[0]
        return self.cands.get(base)

    def wait_holder(self, cond, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            h = self.holder()
            if cond(h):
                return h
            time.sleep(0.02)
        return None

    def settle(self):
        """A holder, and every candidate past its first lease."""
        h = self.wait_holder(lambda h: h, 30)
        if not h:
            raise RuntimeError('%s: nobody leads' % self.name)
        time.sleep(self.t.lease + 1)
        return self.holder()

    def close(self):
        for c in self.cands.values():
            if c.alive():
                c.kill9()


def record_holder(res, obj):
    if not isinstance(obj, dict):
        return None
    if res == 'leases':
        return (obj.get('spec') or {}).get('holderIdentity', '')
    ann = (obj.get('metadata') or {}).get('annotations') or {}
    try:
        return json.loads(ann.get(ANN) or '{}').get('holderIdentity', '')
    except ValueError:
        return None


# --- the request log ---------------------------------------------------------

class Bench:
    def __init__(self, out):
        self.out = out
        # under OUT, not /tmp: other people's cleanups sweep /tmp/kle-*
        self.work = tempfile.mkdtemp(prefix='work-', dir=out)
        self.emu = EmulatorProcess(os.path.join(self.work, 'api'),
                                   ['--history', '5000']).start()
        self.seq = 0
        self.entries = []
        self.results = {'timings': vars(DEFAULT)}

    def fetch(self):
        """The log entries since the last fetch, kept in self.entries."""
        code, out = self.emu.admin('GET', '/_emulator/requests?since=%d'
                                   % self.seq)
        new = out['requests'] if code == 200 else []
        if new:
            self.seq = new[-1]['seq']
        self.entries.extend(new)
        return new

    def forget(self):
        """Drop the log (server and ours), to keep fetches small."""
        self.fetch()
        self.emu.admin('DELETE', '/_emulator/requests')
        self.entries = []

    def close(self):
        self.emu.stop()
        shutil.rmtree(self.work, ignore_errors=True)


def on_lock(e, group):
    name = group.name
    if e['path'].endswith('/%s/%s' % (group.res, name)):
        return True
    q = e.get('query') or ''
    return e['path'].endswith('/' + group.res) and \
        ('metadata.name%%3D%s' % name in q or 'metadata.name=%s' % name in q)


def verb(e):
    if e['method'] == 'GET' and 'watch=' in (e.get('query') or ''):
        return 'watch'
    return e['method']


def writes(entries, group):
    """[(server time, holder written)] of the successful writes."""
    out = []
    for e in entries:
        if e['method'] not in ('PUT', 'POST') or e.get('code') not in \
                (200, 201) or not on_lock(e, group):
            continue
        h = record_holder(group.res, e.get('body'))
        if h is not None:
            out.append((e['time'], h))
    out.sort()
    return out


def summary(xs):
    xs = sorted(xs)
    if not xs:
        return {}
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return {'n': len(xs), 'min': xs[0], 'median': statistics.median(xs),
            'p95': p95, 'max': xs[-1],
            'mean': sum(xs) / len(xs)}


# --- the measurements --------------------------------------------------------

def steady(b, group, window, cpu=False):
    """Requests per retry period on the lock, by verb; CPU per candidate."""
    b.fetch()
    seq0 = b.seq
    c0 = {i: c.cpu() for i, c in group.cands.items()} if cpu else None
    t0 = time.time()
    time.sleep(window)
    t1 = time.time()
    c1 = {i: c.cpu() for i, c in group.cands.items()} if cpu else None
    leader = group.holder()
    b.fetch()
    got = [e for e in b.entries if e['seq'] > seq0 and t0 <= e['time'] < t1
           and on_lock(e, group)]
    periods = (t1 - t0) / group.t.retry
    counts = {}
    for e in got:
        counts[verb(e)] = counts.get(verb(e), 0) + 1
    per = {v: counts.get(v, 0) / periods
           for v in ('GET', 'PUT', 'POST', 'watch')}
    res = {'seconds': t1 - t0, 'periods': periods,
           'counts': counts, 'per_period': per,
           'total_per_period': sum(per.values()),
           'per_second': {v: n / (t1 - t0) for v, n in counts.items()}}
    if cpu:
        lc = group.owner(leader) if leader else None
        fol = [(c1[i] - c0[i]) / 1e9 / (t1 - t0) for i in c0
               if group.cands[i] is not lc and i in c1]
        res['cpu_follower'] = summary(fol)            # CPU s per s
        if lc is not None:
            i = lc.id
            res['cpu_leader'] = (c1[i] - c0[i]) / 1e9 / (t1 - t0)
    log('  steady %s: %s per retry period over %.1f s' % (
        group.name, ', '.join('%s %.2f' % kv for kv in per.items()),
        t1 - t0) + ('; CPU per follower median %.4f%%' % (
            100 * res['cpu_follower']['median']) if cpu and
            res['cpu_follower'] else ''))
    return res


def crashes(b, group, n, settle_s):
    """kill -9 the holder n times; the excess of each takeover, ms."""
    kills = []
    for k in range(n):
        time.sleep(settle_s + random.uniform(0, group.t.retry))
        h = group.holder()
        c = group.owner(h) if h else None
        if c is None or not c.alive():
            log('  %s: holder %r is not a live candidate' % (group.name, h))
            h = group.wait_holder(lambda x: x and group.owner(x) and
                                  group.owner(x).alive(), 3 * group.t.lease)
            c = group.owner(h) if h else None
            if c is None:
                continue
        t_kill = time.time()
        c.kill9()
        new = group.wait_holder(lambda x: x and x != h,
                                3 * group.t.lease + 10)
        kills.append((h, t_kill, new))
        del group.cands[c.id]
        group.add()
    time.sleep(0.5)
    b.fetch()
    ws = writes(b.entries, group)
    out = []
    for dead, t_kill, new in kills:
        last = [t for t, h in ws if h == dead]
        if not last:
            continue
        t_last = max(last)
        nxt = [(t, h) for t, h in ws if t > t_last and h not in ('', dead)]
        if not nxt:
            continue
        out.append({'dead': dead, 'next': nxt[0][1], 'kill': t_kill,
                    'last_write': t_last, 'next_write': nxt[0][0],
                    'excess_ms': (nxt[0][0] - t_last - group.t.lease)
                    * 1000.0,
                    'kill_to_write_ms': (nxt[0][0] - t_kill) * 1000.0})
    s = summary([o['excess_ms'] for o in out])
    log('  crash %s: %d takeovers, excess ms median %.1f p95 %.1f max %.1f'
        % (group.name, len(out), s.get('median', -1), s.get('p95', -1),
           s.get('max', -1)))
    return {'takeovers': out, 'excess_ms': s,
            'gap_ms': summary([(o['next_write'] - o['last_write']) * 1000.0
                               for o in out])}


def handoffs(b, group, n, settle_s):
    """Graceful stop of the holder n times: release -> next write, ms."""
    stops = []
    for k in range(n):
        time.sleep(settle_s + random.uniform(0, group.t.retry))
        h = group.holder()
        c = group.owner(h) if h else None
        if c is None or not c.alive():
            continue
        t_stop = time.time()
        c.stop()
        new = group.wait_holder(lambda x: x and x != h,
                                3 * group.t.lease + 10)
        stops.append((h, t_stop, new))
        deadline = time.monotonic() + 10
        while c.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if c.alive():
            c.kill9()
        del group.cands[c.id]
        group.add()
    time.sleep(0.5)
    b.fetch()
    ws = writes(b.entries, group)
    out = []
    for dead, t_stop, new in stops:
        rel = [t for t, h in ws if h == '' and t >= t_stop]
        last = max([t for t, h in ws if h == dead] or [0])
        start = rel[0] if rel else last
        nxt = [(t, h) for t, h in ws if t > start and h not in ('', dead)]
        if not nxt or not start:
            continue
        out.append({'dead': dead, 'next': nxt[0][1], 'released': bool(rel),
                    'stop': t_stop, 'from': start, 'next_write': nxt[0][0],
                    'ms': (nxt[0][0] - start) * 1000.0,
                    'stop_to_write_ms': (nxt[0][0] - t_stop) * 1000.0})
    s = summary([o['ms'] for o in out])
    log('  handoff %s: %d, %s -> next write ms median %.1f max %.1f'
        % (group.name, len(out), 'release' if out and out[0]['released']
           else 'last write (no release)', s.get('median', -1),
           s.get('max', -1)))
    return {'handoffs': out, 'ms': s,
            'released': all(o['released'] for o in out) if out else None}


def phase_three(b, kind, res):
    """3 replicas: steady state, crashes, graceful handoffs."""
    log('%s, 3 replicas, %s' % (kind, DEFAULT))
    b.forget()
    g = Group(b, kind, 'bench-%s-3' % kind)
    try:
        g.start(3)
        g.settle()
        r = {'steady': steady(b, g, env_int('WINDOW', 20),
                              cpu=(kind == 'module'))}
        settle_s = 3.0 if kind == 'python' else 1.5
        r['crash'] = crashes(b, g, env_int('KILLS', 20), settle_s)
        b.forget()
        r['handoff'] = handoffs(b, g, env_int('HANDOFFS', 10)
                                if kind != 'python' else 3, settle_s)
    finally:
        g.close()
    res[kind] = r


def phase_scale(b, res):
    out = res.setdefault('scale', {})
    for n in (10, 100):
        for kind in ('module', 'python', 'model'):
            log('%s, %d candidates, %s' % (kind, n, DEFAULT))
            b.forget()
            g = Group(b, kind, 'bench-%s-%d' % (kind, n),
                      single=(kind == 'module'))
            try:
                t0 = time.monotonic()
                g.start(n, per_process={'module': 1, 'python': 25,
                                        'model': 50}[kind])
                started = time.monotonic() - t0
                g.settle()
                if kind == 'python' and n == 100:
                    time.sleep(5)           # 4 interpreters importing
                r = {'start_s': started, 'candidates': n,
                     'processes': len(g.cands)}
                module100 = kind == 'module' and n == 100
                r['steady'] = steady(
                    b, g, env_int('CPU_WINDOW', 60) if module100
                    else env_int('WINDOW', 20), cpu=(kind == 'module'))
                if module100:
                    r['crash'] = crashes(b, g, env_int('KILLS_100', 5), 2.0)
            finally:
                g.close()
            out.setdefault(kind, {})[str(n)] = r
            time.sleep(1)


def phase_headline(b, res):
    """client-go at its defaults (the model, 3 replicas) for the request
    budget; this module at the tightest timings within it."""
    cg_t = Timings(15, 10, 2)
    tight = Timings(3, 2, 1)
    log('headline: model %s and module %s, 3 replicas each' % (cg_t, tight))
    b.forget()
    cg = Group(b, 'model', 'bench-model-defaults', cg_t)
    mod = Group(b, 'module', 'bench-module-tight', tight)
    r = {'clientgo_timings': vars(cg_t), 'module_timings': vars(tight)}
    try:
        cg.start(3)
        mod.start(3)
        cg.wait_holder(lambda h: h, 30)
        mod.settle()
        time.sleep(cg_t.lease - tight.lease)    # past the model's first lease
        b.fetch()
        seq0 = b.seq
        t0 = time.time()
        time.sleep(env_int('HEADLINE_WINDOW', 60))
        t1 = time.time()
        b.fetch()
        for key, g in (('clientgo', cg), ('module', mod)):
            got = [e for e in b.entries if e['seq'] > seq0 and
                   t0 <= e['time'] < t1 and on_lock(e, g)]
            ps = {}
            for e in got:
                ps[verb(e)] = ps.get(verb(e), 0) + 1
            r[key + '_per_second'] = {v: n / (t1 - t0)
                                      for v, n in ps.items()}
            r[key + '_total_per_second'] = len(got) / (t1 - t0)
            log('  %s: %.3f requests/s %s' % (key, len(got) / (t1 - t0),
                                                r[key + '_per_second']))
        cg.close()
        r['crash'] = crashes(b, mod, env_int('HEADLINE_KILLS', 10), 1.5)
    finally:
        cg.close()
        mod.close()
    res['headline'] = r


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else \
        os.path.join(TOP, 'build', 'bench')
    out = os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    phases = os.environ.get('PHASES',
                            'module,python,model,scale,headline').split(',')
    b = Bench(out)
    t_start = time.time()
    with open('/proc/loadavg') as f:
        b.results['loadavg_start'] = ' '.join(f.read().split()[:3])
    try:
        for kind in ('module', 'python', 'model'):
            if kind in phases:
                phase_three(b, kind, b.results)
        if 'scale' in phases:
            phase_scale(b, b.results)
        if 'headline' in phases:
            phase_headline(b, b.results)
    finally:
        b.close()
        b.results['wall_s'] = time.time() - t_start
        b.results['date'] = time.strftime('%Y-%m-%d %H:%M %Z')
        path = os.path.join(out, 'election.json')
        old = {}
        if os.path.exists(path) and set(phases) != set(
                'module,python,model,scale,headline'.split(',')):
            with open(path) as f:
                old = json.load(f)      # a partial run updates its phases
        old.update(b.results)
        with open(path, 'w') as f:
            json.dump(old, f, indent=1)
        log('wrote %s (%.0f s)' % (path, b.results['wall_s']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
