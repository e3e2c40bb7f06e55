#!/usr/bin/python3
"""Connections that die silently, and a refused watch, on the real
kube-apiserver: HTTP/2 over TLS, every request of a replica multiplexed
onto one connection (issue 13, t/kube/README.md).

Three nginx replicas on leases/default/nginx-web with the least-privilege
Role of docs/examples/kubernetes.yaml, 4 s / 3 s / 0.5 s, each behind its
own t/chaos/proxy.py:

    1. freeze: every open connection of every replica stops passing bytes
       and is held open (no FIN, no RST, as when a NAT entry expires); new
       connections pass.  For three leases after it: the server's Lease
       keeps its holder and its transition count, and never goes longer
       than a renew deadline without a renewal; the leader leads at every
       sample; each follower's view of the Lease (its status renew_time)
       moves again within the renew deadline and in the last lease it
       sends nothing (its request count stands still while renew_time
       follows the leader's: it watches).
    2. the API server restarts (kill -9, started again on the same port and
       data): its RBAC cache may be empty for a moment and refuse the watch.
       Then one leader, and each follower watches again: within 20 s, a
       lease long window where its request count stands still while its
       renew_time follows the leader's.
Throughout: never two leaders in a sample (electors.py).
"""

import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, 't', 'py'))

from electors import LockWatch, Nginx, Sampler     # noqa: E402
from kube_server import KubeServer                  # noqa: E402

TIMINGS = (4, 3, 0.5)
LEASE, RENEW, RETRY = TIMINGS
LOCK = 'leases/default/nginx-web'
PORT = int(os.environ.get('TEST_NGINX_PORT', '1984')) + 100
PROXY = os.path.join(ROOT, 't', 'chaos', 'proxy.py')


class Proxy:
    def __init__(self, upstream_port):
        self.p = subprocess.Popen(
            [sys.executable, PROXY, '--upstream',
             '127.0.0.1:%d' % upstream_port], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, bufsize=1)
        self.port = int(self.p.stdout.readline().split()[1])

    def cmd(self, c):
        self.p.stdin.write(c + '\n')
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def stop(self):
        self.p.stdin.close()
        self.p.wait(5)


def through(kubeconfig, url, port, path):
    """A copy of kubeconfig that reaches the server through port."""
    with open(kubeconfig) as f:
        text = f.read()
    with open(path, 'w') as f:
        f.write(text.replace(url, 'https://127.0.0.1:%d' % port))
    return path


def views(cands, names):
    """name -> (renew_time, api requests) of each replica's status."""
    out = {}
    for n in names:
        try:
            s = cands[n].status()
            out[n] = (s.get('renew_time'), s['api']['requests'])
        except Exception:
            out[n] = (None, None)
    return out


def watching(t, cands, followers, secs, what):
    """Over secs, each follower's request count stands still while its
    view of the Lease moves: it learns the renewals from its watch."""
    a = views(cands, followers)
    time.sleep(secs)
    b = views(cands, followers)
    for f in followers:
        t.is_(b[f][1], a[f][1], what + f + ' sent no request in %.1f s'
              % secs)
        t.ok(b[f][0] and b[f][0] != a[f][0],
             what + f + ' saw the renewals', (a[f], b[f]))


def freeze(t, k, cands, proxies, watch, sampler, leader):
    followers = sorted(n for n in cands if n != leader)
    nv = len(watch.versions)
    before = watch.versions[-1]
    seen = views(cands, followers)
    t0 = time.monotonic()
    for p in proxies.values():
        p.cmd('freeze')

    back = {}
    not_leading = []
    while time.monotonic() - t0 < 3 * LEASE - 2:
        if not cands[leader].is_leader():
            not_leading.append(round(time.monotonic() - t0, 2))
        now = views(cands, followers)
        for f in followers:
            if f not in back and time.monotonic() - t0 > 0.3 \
                    and now[f][0] != seen[f][0]:
                back[f] = time.monotonic() - t0
            if time.monotonic() - t0 <= 0.3:
                seen[f] = now[f]
        time.sleep(0.1)

    after = watch.versions[nv - 1:]
    t.is_(sorted(set(v[2] for v in after)), [leader],
          'freeze: the Lease named %s throughout' % leader)
    t.is_(sorted(set(v[3] for v in after)), [before[3]],
          'freeze: no transition (%d)' % before[3])
    times = [t0] + [v[0] for v in watch.versions[nv:]] + [time.monotonic()]
    gap = max(b - a for a, b in zip(times, times[1:]))
    t.ok(gap < RENEW, 'freeze: renewed at least every renew deadline '
         '(longest gap %.2f s, %d renewals)' % (gap, len(after) - 1))
    t.is_(not_leading, [], 'freeze: %s led at every sample' % leader)
    for f in followers:
        took = back.get(f)
        t.ok(took is not None and took <= RENEW + 0.5,
             'freeze: %s sees renewals again within the renew deadline '
             '(%s)' % (f, took and '%.2f s' % took))
    watching(t, cands, followers, LEASE - 1, 'freeze: then ')
    for f in followers:
        t.ok('watching again on a new connection' in cands[f].error_log(),
             'freeze: %s logged that its watch fell silent' % f)


def restart(t, k, cands, sampler):
    t0 = time.monotonic()
    k.kill('apiserver')
    k.restart('apiserver')
    t.diag('kube-apiserver back in %.1f s' % (time.monotonic() - t0))
    s = sampler.wait_for(lambda ls: len(ls) == 1, 15)
    t.ok(s is not None, 'restart: one leader')
    if s is None:
        return
    leader = sampler.leaders(s)[0]
    followers = sorted(n for n in cands if n != leader)
    deadline = time.monotonic() + 20
    quiet = False
    while not quiet and time.monotonic() < deadline:
        a = views(cands, followers)
        time.sleep(LEASE)
        b = views(cands, followers)
        quiet = all(a[f][1] == b[f][1] and b[f][0] != a[f][0]
                    for f in followers)
    t.ok(quiet, 'restart: the followers watch again and send nothing '
         '(%.1f s after the restart)' % (time.monotonic() - t0))
    refused = [f for f in followers
               if 'watching the lock was refused' in cands[f].error_log()]
    t.diag('restart: followers whose watch was refused for a while: %s'
           % (refused or 'none'))


def main(t):
    from kle_fixtures import keep_or_remove
    workdir = tempfile.mkdtemp(prefix='kle-test-kube-deadconn-')
    k = KubeServer(os.path.join(workdir, 'api'))
    cands, proxies = {}, {}
    sampler = Sampler(cands)
    watch = LockWatch(k, LOCK)
    try:
        k.start()
        kc = k.grant(LOCK)
        watch.start()
        sampler.start()
        for i in range(3):
            name = 'dc-%d' % i
            proxies[name] = Proxy(k.state['apiserver_port'])
            kci = through(kc, k.url, proxies[name].port,
                          os.path.join(workdir, 'kubeconfig-' + name))
            cands[name] = Nginx(workdir, name, LOCK, kci, PORT + i,
                                timings=TIMINGS).start()
        s = sampler.wait_for(lambda ls: len(ls) == 1, 10)
        t.ok(s is not None, 'one replica leads')
        if s is None:
            raise RuntimeError('no leader')
        leader = sampler.leaders(s)[0]
        followers = sorted(n for n in cands if n != leader)
        time.sleep(1)
        watching(t, cands, followers, 2, 'before: ')

        freeze(t, k, cands, proxies, watch, sampler, leader)
        restart(t, k, cands, sampler)
    finally:
        sampler.stop()
        watch.stop()
        for c in cands.values():
            c.kill()
        for p in proxies.values():
            p.stop()
        k.stop()

    many = sampler.overlaps()
    t.ok(not many and len(sampler.samples) > 100,
         'never two leaders in %d samples' % len(sampler.samples), many[:10])
    t.ok(not watch.check_transitions(),
         'every holder change the server stored added one transition',
         '\n'.join(map(str, watch.versions[-20:])))
    for c in sorted(cands):
        bad = [l for l in cands[c].error_log().splitlines()
               if '[alert]' in l or '[crit]' in l]
        t.ok(not bad, c + ' logged no alert', '\n'.join(bad[:10]))
    keep_or_remove(t, workdir)


if __name__ == '__main__':
    from tap import Tap
    Tap().run(main)
