#!/usr/bin/python3
"""The kle CLI on its own against the emulator: status, run on a Lease,
release on SIGTERM, takeover, the command exiting, the command's life tied
to kle's, and the errors a user makes (kubeconfig, RBAC, lock syntax).
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, 't', 'emulator'))

KLE = os.environ.get('KLE_BIN') or os.path.join(ROOT, 'build', 'kle')
TIMING = ['--lease-duration', '4s', '--renew-deadline', '3s',
          '--retry-period', '1s']
LEASES = '/apis/coordination.k8s.io/v1/namespaces/default/leases'
MICRO = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$')


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def running(pid):
    """Alive and not a zombie (PID 1 in a container may not reap)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] not in 'ZX'
    except (OSError, IndexError):
        return False


def wait_until(cond, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


class Kle:
    """A `kle run` in a session of its own; its command writes its pid and
    a marker, and on SIGTERM removes the marker and leaves a note."""

    def __init__(self, workdir, ident, lock, kubeconfig, body=None,
                 extra=(), linger=0):
        self.id = ident
        self.marker = os.path.join(workdir, 'leader.' + ident)
        self.pidfile = os.path.join(workdir, 'pid.' + ident)
        self.termed = os.path.join(workdir, 'termed.' + ident)
        self.journal = os.path.join(workdir, 'journal.' + ident)
        self.log = os.path.join(workdir, ident + '.log')
        m, p, n, j = (shlex.quote(x) for x in (self.marker, self.pidfile,
                                               self.termed, self.journal))
        # linger: seconds the command takes to stop after SIGTERM
        script = ('trap "rm -f %s; touch %s; sleep %s; echo end $$ >> %s; '
                  'exit 0" TERM; echo $$ > %s; echo start $$ >> %s; '
                  'touch %s; ' % (m, n, linger, j, p, j, m))
        script += body or 'while :; do sleep 0.1; done'
        argv = [KLE, 'run', '--lock', lock, '--identity', ident] + TIMING \
            + ['--kubeconfig', kubeconfig] + list(extra) \
            + ['--', 'sh', '-c', script]
        with open(self.log, 'w') as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=out,
                                         start_new_session=True)

    def leads(self):
        return os.path.exists(self.marker)

    def history(self):
        """The command's lives: [('start', pid), ('end', pid), ...]."""
        try:
            with open(self.journal) as f:
                return [tuple(ln.split()) for ln in f if ln.strip()]
        except OSError:
            return []

    def command_pid(self):
        """The command's pid while it is ours, else None."""
        try:
            with open(self.pidfile) as f:
                pid = int(f.read())
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                if self.marker.encode() in f.read():
                    return pid
        except (OSError, ValueError):
            pass
        return None

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        pid = self.command_pid()
        for g in (self.proc.pid, pid):
            if g:
                try:
                    os.killpg(g, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.proc.wait()

    def stderr(self):
        with open(self.log, errors='replace') as f:
            return f.read()


def kle(*args, timeout=20):
    p = subprocess.run([KLE] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def main(t):
    from kle_fixtures import keep_or_remove
    from kube_emulator import EmulatorProcess

    if not t.ok(os.access(KLE, os.X_OK), 'kle is built: ' + KLE,
                'make lib, or set KLE_BIN'):
        return
    workdir = tempfile.mkdtemp(prefix='kle-cli-')
    emu = EmulatorProcess(os.path.join(workdir, 'emu'))
    runs = []

    def run(ident, lock, body=None, extra=(), linger=0):
        k = Kle(workdir, ident, lock, emu.kubeconfig, body, extra, linger)
        runs.append(k)
        return k

    def lease(name):
        code, _, obj = emu.request('GET', '%s/%s' % (LEASES, name))
        return obj.get('spec', {}) if code == 200 else None

    def requests(name, since=0):
        return [r for r in emu.requests(since)
                if r['path'] in (LEASES, LEASES + '/' + name)]

    try:
        emu.start()
        kc = emu.kubeconfig

        # status on a lock that does not exist
        rc, out, err = kle('status', '--lock', 'leases/default/cli',
                           '--kubeconfig', kc)
        t.is_(rc, 3, 'status of a missing lock exits 3')
        t.ok('not found' in err and '"cli"' in err and out == '',
             'status names the missing lock', err)

        # run: becomes leader on a new Lease
        one = run('one', 'leases/default/cli')
        t.ok(wait_until(one.leads, 5), 'run: the command starts as leader',
             one.stderr())
        spec = lease('cli') or {}
        t.is_(spec.get('holderIdentity'), 'one', 'Lease holderIdentity')
        t.ok(is_int(spec.get('leaseDurationSeconds'))
             and spec['leaseDurationSeconds'] == 4,
             'Lease leaseDurationSeconds is the number 4', spec)
        t.ok(is_int(spec.get('leaseTransitions'))
             and spec['leaseTransitions'] == 0, 'Lease leaseTransitions 0',
             spec)
        time.sleep(1.6)                 # a renew or two
        writes = [r for r in requests('cli') if r['method'] in ('POST', 'PUT')
                  and r.get('code') in (200, 201)]
        bodies = [(r.get('body') or {}).get('spec') or {} for r in writes]
        t.ok(len(bodies) >= 2 and all(
            MICRO.match(str(b.get('acquireTime')))
            and MICRO.match(str(b.get('renewTime')))
            and is_int(b.get('leaseDurationSeconds'))
            and is_int(b.get('leaseTransitions')) for b in bodies),
            'create and renews send MicroTime (6 digits, Z) and numbers',
            bodies)
        t.ok(len({b.get('acquireTime') for b in bodies}) == 1
             and len({b.get('renewTime') for b in bodies}) == len(bodies),
             'renews keep acquireTime and move renewTime', bodies)
        rc, out, err = kle('status', '--lock', 'leases/default/cli',
                           '--kubeconfig', kc)
        try:
            st = json.loads(out)
        except ValueError:
            st = {}
        t.ok(rc == 0 and st.get('holderIdentity') == 'one'
             and st.get('leaseTransitions') == 0
             and st.get('leaseDurationSeconds') == 4,
             'status prints the record', 'rc %d\n%s%s' % (rc, out, err))

        # SIGTERM: stop the command, write the release record, exit 0
        one.proc.send_signal(signal.SIGTERM)
        t.is_(one.wait(6), 0, 'SIGTERM: kle exits 0')
        t.ok(os.path.exists(one.termed) and not one.leads(),
             'SIGTERM: the command got SIGTERM and removed its marker')
        spec = lease('cli') or {}
        t.is_([spec.get(k) for k in ('holderIdentity',
                                     'leaseDurationSeconds',
                                     'leaseTransitions')], ['', 1, 0],
              'SIGTERM: release record (holder "", 1s, transitions kept)')
        t.ok(spec.get('acquireTime') == spec.get('renewTime') is not None,
             'release record: acquireTime = renewTime', spec)

        # a second kle takes over at once; its command exits by itself
        two = run('two', 'leases/default/cli',
                  'sleep 2; rm -f %s; exit 7' % shlex.quote(
                      os.path.join(workdir, 'leader.two')))
        t.ok(wait_until(two.leads, 4), 'a second kle takes over the '
             'released lock at once', two.stderr())
        spec = lease('cli') or {}
        t.is_([spec.get('holderIdentity'), spec.get('leaseTransitions')],
              ['two', 1], 'takeover: holder two, leaseTransitions 1')
        t.is_(two.wait(8), 7, 'the command exits 7: kle exits 7')
        spec = lease('cli') or {}
        t.is_([spec.get(k) for k in ('holderIdentity',
                                     'leaseDurationSeconds',
                                     'leaseTransitions')], ['', 1, 1],
              'the command exited: kle released the lock')
        t.like(two.stderr(), 'the command exited',
               'kle says why it stepped down')

        # kle dies by SIGKILL (OOM killer): its command must not lead on
        orphan = run('orphan', 'leases/default/orphan')
        t.ok(wait_until(orphan.leads, 5), 'orphan: the command leads')
        pid = orphan.command_pid()
        os.kill(orphan.proc.pid, signal.SIGKILL)
        orphan.proc.wait()
        t.ok(pid and wait_until(lambda: not running(pid), 2),
             'kle killed by SIGKILL: its command does not outlive it',
             'command pid %s still runs after kle died, as a leader nobody '
             'renews (lib/kle.c kle_child_start: no PR_SET_PDEATHSIG)'
             % pid)

        # a kubeconfig that cannot be read, or read as YAML
        bad = os.path.join(workdir, 'bad.kubeconfig')
        with open(bad, 'w') as f:
            f.write('apiVersion: v1\nclusters: [ {name: x\n')
        for path, what in ((os.path.join(workdir, 'missing'), 'missing'),
                           (bad, 'malformed')):
            for cmd in (['run', '--lock', 'leases/default/x',
                         '--kubeconfig', path, '--', 'true'],
                        ['status', '--lock', 'leases/default/x',
                         '--kubeconfig', path]):
                rc, out, err = kle(*cmd)
                lines = err.splitlines()
                t.ok(rc == 2 and len(lines) == 1 and path in lines[0],
                     '%s kubeconfig, %s: one error naming the file, exit 2'
                     % (what, cmd[0]), 'rc %d\n%s' % (rc, err))

        # RBAC: 403 on every request, logged once as an error
        emu.admin('POST', '/_emulator/forbid',
                  {'resource': 'leases', 'namespace': 'default',
                   'name': 'denied'})
        seq = emu.last_seq()
        denied = run('denied', 'leases/default/denied')

        def refused():
            return [r for r in requests('denied', seq)
                    if r.get('code') == 403]
        t.ok(wait_until(lambda: len(refused()) >= 3, 8, 0.2),
             '403: kle keeps trying (3 requests refused)', refused())
        lines = denied.stderr().splitlines()
        loud = [ln for ln in lines if re.search(r' (error|warn): ', ln)]
        t.ok(len(loud) == 1 and ' error: ' in loud[0]
             and 'forbidden' in loud[0] and 'denied' in loud[0]
             and 'RoleBinding' in loud[0],
             '403: one error line that names the lock and points at RBAC '
             '(Role/RoleBinding)', '\n'.join(lines))
        t.ok(denied.proc.poll() is None and not denied.leads(),
             '403: kle keeps running, the command never started')
        seq = emu.last_seq()
        denied.proc.send_signal(signal.SIGTERM)
        t.is_(denied.wait(5), 0, '403: SIGTERM ends kle with 0')
        t.is_([r['method'] for r in requests('denied', seq)
               if r['method'] != 'GET'], [],
              '403: nothing to release, nothing written')

        # SIGPIPE: ignored by kle (curl's guard is off), not by its command
        pipe = run('pipe', 'leases/default/pipe')
        t.ok(wait_until(pipe.leads, 5), 'sigpipe: the command leads')

        def ignored(pid):
            with open('/proc/%d/status' % pid) as f:
                for ln in f:
                    if ln.startswith('SigIgn:'):
                        return int(ln.split()[1], 16) >> (signal.SIGPIPE - 1) \
                            & 1
            return None
        t.is_(ignored(pipe.proc.pid), 1, 'kle ignores SIGPIPE')
        t.is_(ignored(pipe.command_pid() or 0), 0,
              'its command gets SIGPIPE back (ignored signals survive exec)')
        pipe.proc.send_signal(signal.SIGTERM)
        t.is_(pipe.wait(6), 0, 'sigpipe: SIGTERM ends kle with 0')

        # leadership lost and regained while the old command is still in
        # its grace period: the command runs again, after the old one
        regain = run('regain', 'leases/default/regain',
                     extra=['--lease-duration', '8s', '--grace', '4500ms'],
                     linger=4)
        t.ok(wait_until(regain.leads, 5), 'regain: the command leads',
             regain.stderr())
        first = regain.command_pid()
        emu.admin('POST', '/_emulator/faults',
                  {'kind': 'status', 'code': 500, 'method': 'PUT',
                   'path': '/leases/regain'})
        t.ok(wait_until(lambda: os.path.exists(regain.termed), 8),
             'regain: renewals fail, kle steps down, SIGTERM sent',
             regain.stderr())
        emu.admin('DELETE', '/_emulator/faults')
        t.ok(wait_until(lambda: 'started leading' in
                        regain.stderr().split('stopped leading')[-1], 4),
             'regain: kle leads again while the old command lingers',
             regain.stderr())
        t.ok(regain.command_pid() in (None, first) and first
             and running(first), 'regain: the old command is still in its '
             'grace period', regain.history())
        t.ok(wait_until(lambda: regain.leads()
                        and regain.command_pid() not in (None, first), 8),
             'regain: leading again, a new command runs',
             '%s\n%s' % (regain.history(), regain.stderr()))
        second = regain.command_pid()
        t.is_(regain.history()[:3],
              [('start', str(first)), ('end', str(first)),
               ('start', str(second))],
              'regain: the new command started after the old one ended')
        spec = lease('regain') or {}
        t.is_(spec.get('holderIdentity'), 'regain', 'regain: kle holds it')
        regain.proc.send_signal(signal.SIGTERM)
        t.is_(regain.wait(10), 0, 'regain: SIGTERM ends kle with 0')

        # --grace past lease_duration - renew_deadline: the old command
        # could run while another leader does; refused before anything
        seq = emu.last_seq()
        for extra, what in (([], 'default timings: 15s - 10s'),
                            (TIMING, '4s - 3s')):
            g = '4801ms' if not extra else '801ms'
            rc, out, err = kle('run', '--lock', 'leases/default/g',
                               '--kubeconfig', kc, *extra, '--grace', g,
                               '--', 'true')
            t.ok(rc == 2 and '--grace' in err and 'another candidate' in err
                 and len(err.splitlines()) == 1,
                 '--grace %s is refused (%s)' % (g, what),
                 'rc %d\n%s' % (rc, err))
        t.is_(emu.last_seq(), seq, 'a refused --grace sends no request')

        # durations: digits and a unit, no sign, no overflow
        for bad in ('2562047788015216h', '9223372036854775807',
                    '153722867280912931m', '+5s', ' 5s', '5 s', '-1',
                    '2147483648s', '0x10', ''):
            rc, out, err = kle('run', '--lock', 'leases/default/d',
                               '--kubeconfig', kc, '--retry-period', bad,
                               '--', 'true')
            t.ok(rc == 2 and 'invalid duration' in err,
                 'duration %r is refused' % bad, 'rc %d\n%s' % (rc, err))
        t.is_(emu.last_seq(), seq, 'refused durations send no request')

        # lock syntax
        seq = emu.last_seq()
        for cmd in (['run', '--lock', 'foo/x/y', '--kubeconfig', kc, '--',
                     'true'],
                    ['status', '--lock', 'foo/x/y', '--kubeconfig', kc]):
            rc, out, err = kle(*cmd)
            t.ok(rc == 2 and '"foo"' in err and len(err.splitlines()) == 1,
                 '--lock foo/x/y is rejected by %s' % cmd[0],
                 'rc %d\n%s' % (rc, err))
        rc, out, err = kle('run', '--lock', 'leases/default', '--kubeconfig',
                           kc, '--', 'true')
        t.ok(rc == 2 and 'NAMESPACE/NAME' in err,
             '--lock without a name is rejected', 'rc %d\n%s' % (rc, err))
        t.is_(emu.last_seq(), seq, 'rejected locks send no request')
        rc, out, err = kle()
        t.ok(rc == 2 and err.startswith('usage: kle run'),
             'no arguments: usage, exit 2', err)

    finally:
        for k in runs:
            k.kill()
        emu.stop()

    keep_or_remove(t, workdir)


if __name__ == '__main__':
    from tap import Tap
    Tap().run(main)
