#!/usr/bin/python3
"""nginx replicas of the module on a real kube-apiserver and etcd, with the
least-privilege Role of docs/examples/kubernetes.yaml (t/kube/README.md).

Lease lock (leases/default/nginx-web), three replicas, 4 s / 3 s / 0.5 s:
    1. one leader; the server's Lease names it, 0 transitions
    2. kill -9 the leader: another leads within lease + 2 retry + 2 s, the
       Lease names it, transitions 1, and its acquireTime is not before the
       dead one's renewTime + lease
    3. the killed replica comes back and follows
    4. nginx -s quit of the leader: another leads within 1.5 s (released,
       not expired), transitions 2; the server stored the release (holder
       "") in between
    5. a replica of the same identity on another Lease name is refused by
       RBAC (the Role names only nginx-web): last_error says forbidden
ConfigMap lock (configmaps/default/nginx-web, the same Role on configmaps),
two replicas: one leader, kill -9 takeover, quit hand-off.
Throughout: never two leaders in a sample (electors.py), and every holder
change the server stored added one to the transition count.  Last, the
sampler must see two leaders when two replicas are given one identity.
"""

import os
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
TAKEOVER = LEASE + 2 * RETRY + 2.0      # kill -9: the lease runs out
HANDOFF = 1.5                           # quit: the release is seen at once
PORT = int(os.environ.get('TEST_NGINX_PORT', '1984')) + 80


def run_lock(t, k, workdir, lock, n, port):
    kind = lock.split('/')[0]
    kc = k.grant(lock)
    cands = {}
    sampler = Sampler(cands)
    watch = LockWatch(k, lock)
    what = kind + ': '

    def server_holder():
        return watch.versions[-1][2] if watch.versions else None

    def leader_now(timeout):
        s = sampler.wait_for(lambda ls: len(ls) == 1, timeout)
        return s and sampler.leaders(s)[0]

    try:
        watch.start()
        sampler.start()
        for i in range(n):
            name = '%s-%d' % ('web' if kind == 'leases' else 'cm', i)
            cands[name] = Nginx(workdir, name, lock, kc, port + i,
                                timings=TIMINGS).start()

        # 1. one leader, the one the server names
        first = leader_now(10)
        t.ok(first is not None, what + 'one replica leads')
        if first is None:
            raise RuntimeError('no leader')
        time.sleep(1)
        t.is_(sampler.leaders(), [first], what + 'and keeps leading')
        t.is_(server_holder(), first, what + 'the server holds ' + first)
        t.is_(watch.versions[-1][3], 0, what + '0 transitions')

        # 2. kill -9 the leader
        cands[first].kill()
        t0 = time.monotonic()
        s = sampler.wait_for(lambda ls: len(ls) == 1 and ls[0] != first,
                             TAKEOVER + 2)
        took = s and s[0] - t0
        t.ok(s is not None and took <= TAKEOVER,
             what + 'after kill -9 another leads within %.1f s' % TAKEOVER,
             'took %s' % took)
        if s is None:
            raise RuntimeError('no takeover')
        second = sampler.leaders(s)[0]
        t.diag('%s took over %.2f s after kill -9 of %s'
               % (second, took, first))
        time.sleep(0.3)
        t.is_(server_holder(), second, what + 'the server holds ' + second)
        t.is_(watch.versions[-1][3], 1, what + '1 transition')

        # 3. the killed one comes back as a follower
        cands[first].start()
        time.sleep(1.5)
        t.is_(sampler.leaders(), [second],
              what + first + ' comes back and follows')
        t.is_(cands[first].status().get('holder'), second,
              what + first + ' sees ' + second + ' as the holder')

        # 4. nginx -s quit of the leader: a hand-off
        nv = len(watch.versions)
        t0 = time.monotonic()
        cands[second].quit()
        s = sampler.wait_for(lambda ls: len(ls) == 1 and ls[0] != second,
                             HANDOFF + 3)
        took = s and s[0] - t0
        t.ok(s is not None and took <= HANDOFF,
             what + 'after quit another leads within %.1f s' % HANDOFF,
             'took %s' % took)
        if s is None:
            raise RuntimeError('no hand-off')
        third = sampler.leaders(s)[0]
        t.diag('%s took over %.2f s after quit of %s' % (third, took, second))
        time.sleep(0.3)
        t.ok('' in [v[2] for v in watch.versions[nv:]],
             what + 'the server stored the release (holder "")',
             watch.versions[nv - 1:])
        t.is_(server_holder(), third, what + 'the server holds ' + third)
        t.is_(watch.versions[-1][3], 2, what + '2 transitions')
        time.sleep(1)
    finally:
        sampler.stop()
        watch.stop()
        for c in cands.values():
            c.kill()

    many = sampler.overlaps()
    t.ok(not many and len(sampler.samples) > 50,
         what + 'never two leaders in %d samples' % len(sampler.samples),
         many[:10])
    t.ok(not watch.errors, what + 'the watch of the lock never broke',
         watch.errors[:5])
    bad = watch.check_transitions()
    t.ok(not bad and len(watch.changes()) == 2,
         what + 'the server stored 2 changes of holder after the first, '
         'each adding one transition',
         '\n'.join(map(str, watch.versions)))
    tk = watch.takeovers()
    t.diag(what + 'after kill -9 the lock was taken %s ms after the lease ran '
           'out' % ', '.join('%+d' % (d * 1000) for _, d in tk))
    if kind == 'leases':            # (ConfigMap records: whole seconds)
        t.ok(len(tk) == 1 and tk[0][1] >= -0.005,
             what + 'not before the lease ran out (server times)', tk)
    for c in sorted(cands):
        log = cands[c].error_log()
        bad = [l for l in log.splitlines() if '[error]' in l or '[alert]'
               in l or '[crit]' in l or 'forbidden' in l]
        t.ok(not bad, what + c + ' logged no error', '\n'.join(bad[:10]))


def rbac_refuses(t, k, workdir, port):
    """The documented Role names one Lease: another is refused."""
    kc = k.kubeconfig
    n = Nginx(workdir, 'other', 'leases/default/not-granted', kc, port,
              timings=TIMINGS).start()
    try:
        deadline = time.monotonic() + 5
        err = None
        while time.monotonic() < deadline:
            err = n.status().get('last_error')
            if err:
                break
            time.sleep(0.1)
        t.ok(err and 'forbidden' in err,
             'RBAC: a Lease the Role does not name is refused', err)
        t.is_(k.lease('default', 'not-granted'), None,
              'RBAC: and was not created')
    finally:
        n.kill()


def detector_sees_two(t, k, workdir, port):
    """The checks can fail: two replicas that each lead a lock of their own
    (as a split brain would look) are two leaders to the sampler.  And two
    replicas given one identity on one lock, which both led before each
    record carried its writer's instance nonce, never do now."""
    cands = {}
    sampler = Sampler(cands)
    try:
        sampler.start()
        for i, lock in enumerate(('leases/default/nginx-web',
                                  'leases/default/nginx-split')):
            cands['split-%d' % i] = Nginx(workdir, 'split-%d' % i, lock,
                                          k.grant(lock), port + i,
                                          timings=TIMINGS).start()
        s = sampler.wait_for(lambda ls: len(ls) == 2, 10)
        time.sleep(0.5)
    finally:
        sampler.stop()
        for c in cands.values():
            c.kill()
    t.ok(s is not None and sampler.overlaps(),
         'the sampler sees two replicas lead at once',
         sampler.samples[-3:])

    lock = 'leases/default/nginx-twin'
    cands = {}
    sampler = Sampler(cands)
    try:
        sampler.start()
        for i in range(2):
            cands['twin-%d' % i] = Nginx(workdir, 'twin-%d' % i, lock,
                                         k.grant(lock), port + i,
                                         identity='twin',
                                         timings=TIMINGS).start()
        one = sampler.wait_for(lambda ls: len(ls) == 1, 10)
        time.sleep(3)
    finally:
        sampler.stop()
        for c in cands.values():
            c.kill()
    t.ok(one is not None and not sampler.overlaps(),
         'two replicas of one identity: one leads, never both',
         sampler.samples[-3:])


def main(t):
    from kle_fixtures import keep_or_remove
    workdir = tempfile.mkdtemp(prefix='kle-test-kube-')
    k = KubeServer(os.path.join(workdir, 'api'))
    try:
        k.start()
        t.diag('kube-apiserver and etcd ready in %.1f s'
               % k.state['started_in'])
        run_lock(t, k, workdir, 'leases/default/nginx-web', 3, PORT)
        rbac_refuses(t, k, workdir, PORT + 3)
        run_lock(t, k, workdir, 'configmaps/default/nginx-web', 2, PORT + 4)
        detector_sees_two(t, k, workdir, PORT + 6)
    finally:
        k.stop()
    keep_or_remove(t, workdir)


if __name__ == '__main__':
    from tap import Tap
    Tap().run(main)
