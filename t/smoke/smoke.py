#!/usr/bin/env python3
"""Smoke test of a built module in a given nginx binary.

Two nginx instances, "a" and "b", on one Lease held by the API emulator
(t/emulator/kube_emulator.py):

  1. nginx -t accepts a configuration with a leader_election block;
  2. a takes the free Lease: its status page says is_leader true, the
     Lease on the emulator names a, and the variables say so;
  3. b follows: not leader, names a and a's address;
  4. a reload of a keeps it leading: every answer during it says leader,
     the elector moves to the new worker, the Lease keeps its holder,
     acquireTime and transitions, and b never leads;
  5. a quits: it writes client-go's release record and b takes over
     sooner than the lease could have expired;
  6. b quits and releases; no error in either log.

With --stream (ngx_stream_leader_election_module loaded too), each instance
also has a stream{} server, on its port + 1000, that answers with the same
variables: wherever the http variables are checked, the stream ones must
say the same.

How the module is loaded is the caller's: --load-module SO (repeatable,
load_module with an absolute path) or --include FILES (an include line, e.g.
Debian's /etc/nginx/modules-enabled/*.conf).  nginx runs with its compiled-in
prefix, so a snippet's "modules/..." path resolves as in production; every
file it writes is under --dir.  Prints TAP; exits 1 on the first failure,
after the error logs' last lines.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
EMULATOR = os.path.join(HERE, '..', 'emulator', 'kube_emulator.py')

LOCK = 'smoke'
LEASE = 10          # seconds
RENEW = 6
RETRY = 1
TAKEOVER = 4        # b leads within this after a quits: only a release
                    # allows it, the lease itself runs ~9 s longer

VARS = ('is_leader=$leader_election_is_leader'
        ' identity=$leader_election_identity'
        ' holder=$leader_election_holder'
        ' holder_address=$leader_election_holder_address'
        ' transitions=$leader_election_transitions')


class Failed(Exception):
    pass


class Tap:
    def __init__(self):
        self.n = 0

    def ok(self, cond, what, diag=None):
        self.n += 1
        print('%s %d - %s' % ('ok' if cond else 'not ok', self.n, what),
              flush=True)
        if not cond:
            if diag is not None:
                for line in str(diag).splitlines():
                    print('#   ' + line)
            raise Failed(what)

    def eq(self, got, want, what):
        self.ok(got == want, what, 'got:  %r\nwant: %r' % (got, want))


T = Tap()


def http_get(port, path, timeout=2):
    """(code, body) of GET http://127.0.0.1:port/path; (0, error) if none."""
    try:
        with urllib.request.urlopen('http://127.0.0.1:%d%s' % (port, path),
                                    timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (OSError, ValueError) as e:
        return 0, str(e)


def wait_until(secs, fn):
    deadline = time.monotonic() + secs
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


class Emulator:
    def __init__(self, d):
        self.dir = d
        os.makedirs(d)
        self.log = open(os.path.join(d, 'stderr.log'), 'w')
        self.proc = subprocess.Popen(
            [sys.executable, EMULATOR, '--dir', d, '--admin-port', '0'],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            start_new_session=True)
        port = os.path.join(d, 'port')
        if not wait_until(20, lambda: os.path.exists(port)
                          or self.proc.poll() is not None) \
                or self.proc.poll() is not None:
            raise Failed('the emulator did not start: see %s' % d)
        with open(os.path.join(d, 'admin_port')) as f:
            self.admin = int(f.read())
        self.kubeconfig = os.path.join(d, 'kubeconfig')

    def get(self, what):
        code, body = http_get(self.admin, '/_emulator/' + what)
        if code == 404:
            return None
        if code != 200:
            raise Failed('emulator admin %s: %d %s' % (what, code, body))
        return json.loads(body)

    def lease(self):
        return self.get('objects/leases/default/' + LOCK)

    def writes(self):
        return [r for r in self.get('requests')['requests']
                if r['method'] in ('PUT', 'POST')
                and '/leases' in r['path']]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


STREAM_OFFSET = 1000   # a stream{} server on port + this, with --stream
STREAM = False


def stream_get(port, timeout=2):
    """What 127.0.0.1:port sends before it closes; an error text if not."""
    try:
        with socket.create_connection(('127.0.0.1', port), timeout) as c:
            data = b''
            while True:
                b = c.recv(4096)
                if not b:
                    return data.decode()
                data += b
    except OSError as e:
        return str(e)


class Nginx:
    def __init__(self, binary, load, d, name, port, kubeconfig):
        self.binary, self.name, self.dir, self.port = binary, name, d, port
        self.proc = None
        stream = ''
        if STREAM:
            stream = '''
stream {
    server {
        listen 127.0.0.1:%d;
        return "%s\\n";
    }
}
''' % (port + STREAM_OFFSET, VARS)
        os.makedirs(d)
        self.conf = os.path.join(d, 'nginx.conf')
        self.error_log = os.path.join(d, 'error.log')
        temp = ''.join('    %s_temp_path %s/%s;\n' % (t, d, t)
                       for t in ('client_body', 'proxy', 'fastcgi',
                                 'uwsgi', 'scgi'))
        with open(self.conf, 'w') as f:
            f.write('''%(load)s
worker_processes 2;
daemon off;
master_process on;
error_log %(d)s/error.log info;
pid %(d)s/nginx.pid;
%(user)s

events {
    worker_connections 64;
}

http {
    access_log off;
    default_type text/plain;
%(temp)s
    leader_election web {
        lock            leases default/%(lock)s;
        identity        %(name)s;
        address         127.0.0.1:%(port)d;
        lease_duration  %(lease)ds;
        renew_deadline  %(renew)ds;
        retry_period    %(retry)ds;
        api_server      kubeconfig %(kubeconfig)s;
    }

    server {
        listen 127.0.0.1:%(port)d;

        location = /leader         { leader_election_status; }
        location = /leader/healthz { leader_election_healthz; }
        location = /vars           { return 200 "%(vars)s\\n"; }
    }
}
%(stream)s''' % dict(load=load, d=d, name=name, port=self.port, lock=LOCK,
           lease=LEASE, renew=RENEW, retry=RETRY, kubeconfig=kubeconfig,
           vars=VARS, temp=temp, stream=stream,
           user='user root;' if os.geteuid() == 0 else ''))

    def cmd(self, *args):
        return [self.binary, '-e', self.error_log, '-c', self.conf] + \
            list(args)

    def test_config(self):
        r = subprocess.run(self.cmd('-t'), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        return r.returncode, r.stdout

    def start(self):
        self.out = open(os.path.join(self.dir, 'stderr.log'), 'w')
        self.proc = subprocess.Popen(self.cmd(), stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=self.out,
                                     start_new_session=True)
        up = wait_until(10, lambda: self.proc.poll() is not None
                        or http_get(self.port, '/vars')[0] == 200)
        T.ok(up and self.proc.poll() is None,
             '%s: nginx started on port %d' % (self.name, self.port),
             self.log_tail())

    def status(self):
        code, body = http_get(self.port, '/leader')
        if code != 200:
            return None
        return json.loads(body)

    def vars(self):
        return http_get(self.port, '/vars')[1]

    def expect_vars(self, leader, holder, holder_port, transitions):
        want = ('is_leader=%d identity=%s holder=%s '
                'holder_address=127.0.0.1:%d transitions=%d\n'
                % (leader, self.name, holder, holder_port, transitions))
        T.eq(self.vars(), want, '%s: the variables' % self.name)
        if STREAM:
            T.eq(stream_get(self.port + STREAM_OFFSET), want,
                 '%s: the same variables in stream{}' % self.name)

    def send(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGQUIT, secs=10):
        """Signals the master, waits for it; returns seconds taken."""
        if not self.proc or self.proc.poll() is not None:
            return 0
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(secs)
        except subprocess.TimeoutExpired:
            pass
        took = time.monotonic() - t0
        self.kill()
        return took

    def kill(self):
        """Whatever is left of the master and its workers."""
        if self.proc:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.out.close()

    def log(self):
        try:
            with open(self.error_log) as f:
                return f.read()
        except OSError:
            return ''

    def log_tail(self, n=15):
        return '\n'.join(('%s: ' % self.name) + line
                         for line in self.log().splitlines()[-n:])


def alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split(') ')[1][0] != 'Z'
    except (OSError, IndexError):
        return False


def smoke(binary, load, d, port):
    api = Emulator(os.path.join(d, 'api'))
    a = Nginx(binary, load, os.path.join(d, 'a'), 'a', port, api.kubeconfig)
    b = Nginx(binary, load, os.path.join(d, 'b'), 'b', port + 1,
              api.kubeconfig)
    try:
        run(api, a, b)
    except Failed:
        for n in (a, b):
            print(n.log_tail())
        raise
    finally:
        a.kill()
        b.kill()
        api.stop()


def run(api, a, b):
    code, out = a.test_config()
    T.ok(code == 0 and 'test is successful' in out,
         'nginx -t accepts the leader_election block', out)

    # 2. a takes the free Lease.
    a.start()
    s = wait_until(10, lambda: (a.status() or {}).get('is_leader') and
                   a.status())
    T.ok(s, 'a: the status page says is_leader true', a.status())
    T.eq((s['identity'], s['holder'], s['state'], s['lock']),
         ('a', 'a', 'leading',
          {'kind': 'leases', 'namespace': 'default', 'name': LOCK}),
         'a: identity, holder, state and lock in the status page')
    lease = api.lease()
    T.ok(lease, 'the Lease exists on the emulator')
    spec = lease['spec']
    T.eq((spec.get('holderIdentity'), spec.get('leaseDurationSeconds'),
          spec.get('leaseTransitions')), ('a', LEASE, 0),
         'the Lease names a, with its lease duration')
    T.eq(lease['metadata'].get('annotations', {})
         .get('leader-election.nginx.org/address'),
         '127.0.0.1:%d' % a.port, "the Lease carries a's address")
    a.expect_vars(1, 'a', a.port, 0)
    T.eq(http_get(a.port, '/leader/healthz')[0], 200, 'a: healthz 200')

    # 3. b follows a.
    T.eq(b.test_config()[0], 0, 'b: nginx -t')
    b.start()
    s = wait_until(10, lambda: (b.status() or {}).get('holder') == 'a' and
                   b.status())
    T.ok(s and not s['is_leader'] and s['state'] == 'following',
         'b: follows a', b.status())
    b.expect_vars(0, 'a', a.port, 0)

    # 4. A reload keeps a leading.
    before = api.lease()['spec']
    old = a.status()['elector_pid']
    a.send(signal.SIGHUP)
    bad, n, new = [], 0, None
    t0 = time.monotonic()
    while time.monotonic() < t0 + 10:
        v = a.vars()
        n += 1
        if not v.startswith('is_leader=1 '):
            bad.append(v)
        s = a.status() or {}
        if s.get('elector_pid') not in (None, old):
            new = s['elector_pid']
            if api.lease()['spec']['renewTime'] > before['renewTime'] and \
                    not alive(old) and time.monotonic() > t0 + 2 * RETRY:
                break
        time.sleep(0.05)
    T.ok(new, 'a reload: the elector moved to a new worker (%s -> %s)'
         % (old, new))
    T.ok(not alive(old), 'a reload: the old elector %d exited' % old)
    T.eq(bad, [], 'a reload: all %d answers during it said leader' % n)
    after = api.lease()['spec']
    T.eq((after['holderIdentity'], after['acquireTime'],
          after['leaseTransitions']),
         ('a', before['acquireTime'], before['leaseTransitions']),
         'a reload: same holder, acquireTime and transitions on the Lease')
    T.ok(after['renewTime'] > before['renewTime'],
         'a reload: the new elector renewed the Lease')
    a.expect_vars(1, 'a', a.port, 0)
    b.expect_vars(0, 'a', a.port, 0)

    # 5. a quits and releases; b takes over before the lease could expire.
    took = a.stop()
    T.ok(took < 8, 'a: quit (SIGQUIT) done in %.2f s' % took)
    released = [w for w in api.writes()
                if isinstance(w.get('body'), dict) and
                w['body'].get('spec', {}).get('holderIdentity') == '']
    T.ok(released and released[-1]['code'] == 200 and
         released[-1]['body']['spec'].get('leaseDurationSeconds') == 1,
         'a: wrote the release record (holderIdentity "", '
         'leaseDurationSeconds 1)',
         '\n'.join('%s %s %d %s' % (w['method'], w['path'], w['code'],
                                     json.dumps(w.get('body', {})
                                                .get('spec')))
                    for w in api.writes()[-4:]))
    t0 = time.monotonic()
    s = wait_until(LEASE, lambda: (b.status() or {}).get('is_leader') and
                   b.status())
    took = time.monotonic() - t0
    T.ok(s and took < TAKEOVER,
         'b: leads %.2f s after the quit (a lease is %d s)' % (took, LEASE),
         b.status())
    spec = api.lease()['spec']
    T.eq((spec['holderIdentity'], spec['leaseTransitions']), ('b', 1),
         'the Lease names b, one transition')
    b.expect_vars(1, 'b', b.port, 1)

    # 6. b quits and releases.
    took = b.stop()
    T.ok(took < 8, 'b: quit (SIGQUIT) done in %.2f s' % took)
    T.eq(api.lease()['spec']['holderIdentity'], '',
         'b released the Lease')
    for n in (a, b):
        bad = [line for line in n.log().splitlines()
               if any(x in line for x in
                      ('[error]', '[crit]', '[alert]', '[emerg]'))]
        T.eq(bad, [], '%s: no error in its log' % n.name)
    T.ok('started leading' in a.log() and 'started leading' in b.log(),
         'both logged "started leading"')


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--nginx', required=True, help='the nginx binary')
    p.add_argument('--load-module', action='append', default=[],
                   metavar='SO', help='load_module this .so (repeatable)')
    p.add_argument('--include', metavar='GLOB',
                   help='include these files for the load_module lines')
    p.add_argument('--port', type=int,
                   help='a listens on PORT, b on PORT + 1 (default: '
                   'TEST_NGINX_PORT, else 1984, + 96: clear of the ports '
                   'the .t files take)')
    p.add_argument('--dir', help='work directory (default: a new one)')
    p.add_argument('--stream', action='store_true',
                   help='check the variables in stream{} too (the stream '
                   'module is among those loaded)')
    p.add_argument('--keep', action='store_true',
                   help='keep the work directory')
    o = p.parse_args()
    global STREAM
    STREAM = o.stream

    port = o.port or int(os.environ.get('TEST_NGINX_PORT') or 1984) + 96
    load = ''.join('load_module %s;\n' % os.path.abspath(m)
                   for m in o.load_module)
    if o.include:
        load += 'include %s;\n' % o.include
    if not load:
        p.error('give --load-module or --include')

    # make's ^C or a CI timeout: stop nginx and the emulator on the way out
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda n, f: sys.exit(128 + n))

    d = o.dir or tempfile.mkdtemp(prefix='kle-smoke-')
    os.makedirs(d, exist_ok=True)
    d = tempfile.mkdtemp(dir=os.path.abspath(d), prefix='run-')
    v = subprocess.run([o.nginx, '-v'], stderr=subprocess.PIPE, text=True)
    print('# %s: %s' % (o.nginx, v.stderr.strip()))
    print('# loaded by: %s' % load.strip().replace('\n', ' '))
    print('# work directory: %s' % d)
    t0 = time.monotonic()
    try:
        smoke(o.nginx, load, d, port)
    except Failed as e:
        print('# FAILED: %s (files in %s)' % (e, d))
        return 1
    print('1..%d' % T.n)
    print('# smoke: all %d passed in %.1f s' % (T.n, time.monotonic() - t0))
    if not o.keep:
        subprocess.run(['rm', '-rf', d])
    return 0


if __name__ == '__main__':
    sys.exit(main())
