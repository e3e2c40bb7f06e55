#!/usr/bin/python3
"""Interop on one ConfigMap lock: two `kle run` candidates and one candidate
on the official Python client's elector (kubernetes.leaderelection) share
configmaps/default/interop on one emulator.

Each candidate shows "I lead" by a marker file DIR/leader.ID: kle's command
creates it and removes it on SIGTERM; the Python candidate creates it in
onstarted_leading and removes it (and exits) in onstopped_leading.  A
sampler looks at the markers every 100 ms for the whole run.

    1. py-1 leads first; kle-a and kle-b must follow it (they read the
       Python record: string leaseDurationSeconds, str(datetime) times in
       the Python process's local time zone, which is not UTC here).
    2. kill -9 py-1: a kle takes over within the bound, leaderTransitions
       becomes 1 (the Python record carries none).
    3. kill -9 that kle: the other one takes over (leaderTransitions 2).
    4. py-2 and a new kle-c join and must follow; kill -9 the leader: one
       of them takes over (py-2 writing on a kle record, or kle-c).
At every sample at most one marker exists; between takeovers exactly one,
and it names the holderIdentity the server holds.

The Python elector's own limits, and how this test stays honest about ours:
  - Its leader keeps leading until a renew loop of renew_deadline seconds,
    started retry_period after its last successful renew, has failed; the
    loop only ends after a sleep of retry_period, and requests have no
    timeout.  So a Python leader whose renewals fail may still lead up to
    2 * retry_period + renew_deadline (+ request time) after its last
    renew, while the others may take over lease_duration after they saw
    it.  Config accepts timings (like ours: 4/3/1) where that exceeds the
    lease.  The test therefore never makes a live Python leader's requests
    fail: leaders only ever stop by kill -9.  "At most one" is then a
    property of kle's behaviour (respecting the Python record for a full
    lease, taking over only through a conditional update) and of the
    Python follower's, both of which this test exercises as they are.
  - It uses its own lease_duration, not the record's; all candidates use
    the same timings.
  - It drops leaderTransitions when it writes, so a kle taking over from a
    Python record starts again at 1: the test expects the previous
    record's count (0 if absent) + 1.
  - kle runs its command in a process group of its own and nothing ties
    the command's life to kle's (see test_kle_cli.py): to kill a kle
    candidate the test kills kle's group and its command's group, as a
    crashed pod would.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, 't', 'emulator'))

KLE = os.environ.get('KLE_BIN') or os.path.join(ROOT, 'build', 'kle')
PYTHON = '/usr/bin/python3'          # the one with python3-kubernetes
PY_TZ = 'America/Los_Angeles'        # the Python record's times: not UTC
NS, NAME = 'default', 'interop'
ANNOTATION = 'control-plane.alpha.kubernetes.io/leader'
LEASE, RENEW, RETRY = 4, 3, 1        # seconds; valid for both electors
# A kle follower sees the dead leader's last write (made < 1 retry before
# the kill) at its next poll, up to 2.2 retry later, waits a lease from
# then and acts at its first poll after that, up to 2.2 retry late again.
# Both maxima together (9.4 s) are rare: lease + 2.2 retry + 2 s is passed
# about once in 10^4 takeovers (simulated); a kle that waits an extra
# lease does not make it.
TAKEOVER = LEASE + RETRY * 2.2 + 2.0
PY_TIME = re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$')
RFC3339 = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')
LOG_PROBLEM = re.compile(r' kle\[\d+\] (error|warn): |bad response|pars|'
                         r'invalid|malformed', re.I)


def python_candidate(ident, marker, kubeconfig):
    """Runs in its own /usr/bin/python3 process: the official elector."""
    from kubernetes import config
    from kubernetes.leaderelection import electionconfig, leaderelection
    from kubernetes.leaderelection.resourcelock.configmaplock import \
        ConfigMapLock

    config.load_kube_config(config_file=kubeconfig)

    def started():
        open(marker, 'w').close()

    def stopped():
        # run() returns after this; the onstarted thread has ended
        try:
            os.unlink(marker)
        except FileNotFoundError:
            pass
        os._exit(0)

    lock = ConfigMapLock(NAME, NS, ident)
    cfg = electionconfig.Config(lock, LEASE, RENEW, RETRY, started, stopped)
    leaderelection.LeaderElection(cfg).run()
    return 0


class Candidate:
    def __init__(self, ident, kind, workdir, kubeconfig):
        self.id = ident
        self.kind = kind
        self.marker = os.path.join(workdir, 'leader.' + ident)
        self.pidfile = os.path.join(workdir, 'pid.' + ident)
        self.log = os.path.join(workdir, ident + '.log')
        env = dict(os.environ)
        if kind == 'kle':
            m, p = shlex.quote(self.marker), shlex.quote(self.pidfile)
            script = ('trap "rm -f %s; exit 0" TERM; echo $$ > %s; '
                      'touch %s; while :; do sleep 0.1; done' % (m, p, m))
            argv = [KLE, 'run', '--lock', 'configmaps/%s/%s' % (NS, NAME),
                    '--identity', ident, '--lease-duration', '%ds' % LEASE,
                    '--renew-deadline', '%ds' % RENEW,
                    '--retry-period', '%ds' % RETRY,
                    '--kubeconfig', kubeconfig, '-v', '--', 'sh', '-c',
                    script]
        else:
            env['TZ'] = PY_TZ
            argv = [PYTHON, os.path.abspath(__file__), '--python-candidate',
                    ident, self.marker, kubeconfig]
        with open(self.log, 'w') as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=out, env=env,
                                         start_new_session=True)

    def alive(self):
        return self.proc.poll() is None

    def groups(self):
        """Process groups: the candidate's and, for kle, its command's."""
        out = [self.proc.pid]
        try:
            with open(self.pidfile) as f:
                pid = int(f.read())
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                if self.marker.encode() in f.read():
                    out.append(pid)
        except (OSError, ValueError):
            pass
        return out

    def kill(self):
        """kill -9, as a crash: the marker is then the dead one's, gone."""
        for g in self.groups():
            try:
                os.killpg(g, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        try:
            os.unlink(self.marker)
        except FileNotFoundError:
            pass

    def log_text(self):
        with open(self.log, errors='replace') as f:
            return f.read()


class Sampler(threading.Thread):
    """The markers present, every 100 ms: (monotonic time, (ids...))."""

    def __init__(self, workdir):
        super().__init__(daemon=True)
        self.dir = workdir
        self.samples = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            ids = tuple(sorted(f[len('leader.'):]
                               for f in os.listdir(self.dir)
                               if f.startswith('leader.')))
            self.samples.append((time.monotonic(), ids))
            self.halt.wait(0.1)

    def latest(self):
        return self.samples[-1][1] if self.samples else ()

    def between(self, t0, t1):
        return [s for s in self.samples if t0 <= s[0] <= t1]

    def wait_for(self, cond, timeout):
        """The first sample taken from now on that meets cond."""
        now = time.monotonic()
        deadline = now + timeout
        while time.monotonic() < deadline:
            last = self.samples[-1] if self.samples else (0, ())
            if last[0] > now and cond(last[1]):
                return last
            time.sleep(0.05)
        return None


def server_record(emu):
    """The lock's annotation as the server holds it, read with the token."""
    code, _, obj = emu.request('GET', '/api/v1/namespaces/%s/configmaps/%s'
                               % (NS, NAME))
    if code != 200:
        return None
    ann = (obj.get('metadata') or {}).get('annotations') or {}
    try:
        return json.loads(ann[ANNOTATION])
    except (KeyError, ValueError):
        return None


def main(t, server=None):
    """server(directory): the API server to run on, an object with start(),
    stop(), kubeconfig (an identity allowed on the lock) and request();
    the emulator by default (t/kube/test_kube_interop_python.py passes the
    real one)."""
    from kle_fixtures import keep_or_remove
    from kube_emulator import EmulatorProcess

    if not t.ok(os.access(KLE, os.X_OK), 'kle is built: ' + KLE,
                'make lib, or set KLE_BIN'):
        return
    workdir = tempfile.mkdtemp(prefix='kle-interop-')
    emu = (server or EmulatorProcess)(os.path.join(workdir, 'emu'))
    cands = {}
    sampler = Sampler(workdir)
    stable = []                     # (t0, t1, the one id expected)

    def start(ident, kind):
        cands[ident] = Candidate(ident, kind, workdir, emu.kubeconfig)
        return cands[ident]

    def hold(ident, seconds, what):
        """Sample for seconds; the same one leads throughout."""
        t0 = time.monotonic()
        time.sleep(seconds)
        t1 = time.monotonic()
        stable.append((t0, t1, ident))
        rec = server_record(emu) or {}
        t.is_(sampler.latest(), (ident,), what + ': %s leads' % ident)
        t.is_(rec.get('holderIdentity'), ident,
              what + ': the server holds %s as holderIdentity' % ident)
        return rec

    def takeover(dead, what):
        """kill -9 the leader; another leads within the bound."""
        before = server_record(emu) or {}
        cands[dead].kill()
        t0 = time.monotonic()
        got = sampler.wait_for(lambda ids: ids != (), TAKEOVER + 2)
        took = (got[0] - t0) if got else None
        t.ok(got is not None and took <= TAKEOVER,
             '%s: another candidate leads within %.1fs of kill -9 %s'
             % (what, TAKEOVER, dead),
             'took %s s; markers %s' % (took, sampler.latest()))
        if got is None:
            raise RuntimeError('no takeover: giving up')
        t.diag('%s took over after %.1fs' % (got[1][0], took))
        new = got[1][0]
        t.ok(new != dead and cands[new].alive(),
             '%s: the new leader %s is a live candidate' % (what, new))
        after = server_record(emu) or {}
        t.is_(after.get('holderIdentity'), new,
              '%s: the server holds the new leader %s' % (what, new))
        if cands[new].kind == 'kle':
            t.is_(after.get('leaderTransitions'),
                  before.get('leaderTransitions', 0) + 1,
                  '%s: kle takeover adds one to leaderTransitions' % what)
            t.ok(isinstance(after.get('leaseDurationSeconds'), int)
                 and RFC3339.match(str(after.get('renewTime'))),
                 '%s: kle wrote client-go\'s form' % what, after)
        return new

    try:
        emu.start()
        sampler.start()

        # 1. the Python candidate creates the lock and leads; the kles follow
        start('py-1', 'python')
        got = sampler.wait_for(lambda ids: ids == ('py-1',), 10)
        t.ok(got is not None, 'py-1 (Python elector) acquires the new lock',
             cands['py-1'].log_text()[-2000:])
        if got is None:
            raise RuntimeError('the Python candidate did not lead')
        start('kle-a', 'kle')
        start('kle-b', 'kle')
        rec = hold('py-1', LEASE + 2 * RETRY, 'kles follow a Python leader')
        t.ok(isinstance(rec.get('leaseDurationSeconds'), str)
             and PY_TIME.match(str(rec.get('renewTime')))
             and 'leaderTransitions' not in rec,
             'the lock holds the Python client\'s form', rec)
        out = subprocess.run([KLE, 'status', '--lock', 'configmaps/%s/%s'
                              % (NS, NAME), '--kubeconfig', emu.kubeconfig],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=15)
        try:
            st = json.loads(out.stdout)
        except ValueError:
            st = {}
        t.ok(out.returncode == 0 and st.get('holderIdentity') == 'py-1'
             and st.get('leaseDurationSeconds') == LEASE,
             'kle status reads the Python record',
             'rc %d\n%s%s' % (out.returncode, out.stdout, out.stderr))

        # 2. the Python leader dies: a kle takes over from its record
        k1 = takeover('py-1', 'Python leader dies')
        t.ok(cands[k1].kind == 'kle', 'a kle takes over from Python')

        # 3. that kle dies: the other takes over from a kle record (the
        # Python follower polls without jitter and would mostly win)
        hold(k1, 1.5, 'after the first takeover')
        k2 = takeover(k1, 'kle leader dies')
        t.ok(cands[k2].kind == 'kle', 'the other kle takes over')

        # 4. a Python candidate and a new kle follow it; it dies; they race
        start('py-2', 'python')
        start('kle-c', 'kle')
        hold(k2, LEASE + 2 * RETRY, 'py-2 and kle-c follow ' + k2)
        t.ok(cands['py-2'].alive() and cands['kle-c'].alive(),
             'py-2 and kle-c are still candidates')
        k3 = takeover(k2, 'second kle leader dies')
        t.ok(k3 in ('py-2', 'kle-c'), 'py-2 or kle-c took over')
        hold(k3, 1.5, 'after the third takeover')

    finally:
        sampler.halt.set()
        if sampler.is_alive():
            sampler.join()
        for c in cands.values():
            c.kill()
        emu.stop()

    many = [s for s in sampler.samples if len(s[1]) > 1]
    t.ok(not many and len(sampler.samples) > 150,
         'at most one marker in each of %d samples' % len(sampler.samples),
         '\n'.join('%.1f %s' % s for s in many[:20]))
    wrong = [(s, want) for t0, t1, want in stable
             for s in sampler.between(t0, t1) if s[1] != (want,)]
    t.ok(not wrong, 'exactly the expected leader between takeovers',
         '\n'.join('%.1f %s, expected %s' % (s[0], s[1], w)
                   for s, w in wrong[:20]))
    for c in sorted(cands):
        if cands[c].kind == 'kle':
            bad = [line for line in cands[c].log_text().splitlines()
                   if LOG_PROBLEM.search(line)]
            t.ok(not bad, '%s logged no error, warning or parse problem'
                 % c, '\n'.join(bad[:10]))

    keep_or_remove(t, workdir)


if __name__ == '__main__':
    if sys.argv[1:2] == ['--python-candidate']:
        sys.exit(python_candidate(*sys.argv[2:5]))
    from tap import Tap
    Tap().run(main)
