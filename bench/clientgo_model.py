#!/usr/bin/python3
"""A MODEL of client-go's leader elector (tools/leaderelection), not
client-go: the same schedule and the same requests on a Lease lock, in
Python, so that the benchmark can put client-go's figures next to ours
without a Go toolchain.  What it reproduces, from client-go's source:

  - acquire: wait.JitterUntil(tryAcquireOrRenew, retry, 1.2, sliding):
    an attempt, then a sleep of retry * [1, 2.2), until one succeeds;
  - renew: wait.Until(PollImmediateUntil(retry, tryAcquireOrRenew,
    renew deadline), retry): a successful renewal, then a sleep of retry;
    a renew deadline without success ends leadership (the candidate then
    competes again, where client-go's Run would return);
  - tryAcquireOrRenew: the leader's fast path (one UPDATE on the object of
    its last write while its own lease is valid), else GET, then CREATE on
    404, "held and not expired" when another holder's lease runs, else
    UPDATE; the observed time moves only when the record changes; expiry is
    observed time + the record's leaseDurationSeconds;
  - every request times out after max(1 s, renew deadline / 2);
  - SIGTERM with --release: ReleaseOnCancel, the release record (holder
    "", leaseDurationSeconds 1, transitions kept) as one UPDATE.

One process runs --count candidates, one thread each (own connection).
Connection parameters come from the emulator's directory (port, ca.crt,
token).  Standard library only.
"""

import argparse
import datetime
import http.client
import json
import os
import random
import signal
import ssl
import sys
import threading
import time

API = '/apis/coordination.k8s.io/v1/namespaces/%s/leases'


def microtime():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%S.%fZ')


class Candidate(threading.Thread):
    def __init__(self, args, ident, stop):
        super().__init__(daemon=True, name=ident)
        self.a = args
        self.id = ident
        self.stop = stop
        self.conn = None
        self.obj = None             # the Lease of the last GET or write
        self.observed = {}          # the observed record (spec)
        self.observed_raw = None
        self.observed_time = 0.0
        self.timeout = min(max(1.0, args.renew / 2), args.renew)
        self.coll = API % args.namespace
        self.path = self.coll + '/' + args.name

    # transport

    def request(self, method, path, body=None):
        """(status, parsed body or None); status 0 on a transport error."""
        data = json.dumps(body).encode() if body is not None else None
        h = {'Authorization': 'Bearer ' + self.a.token,
             'Accept': 'application/json', 'User-Agent': 'clientgo-model'}
        if data is not None:
            h['Content-Type'] = 'application/json'
        for attempt in (0, 1):      # a keep-alive connection the server closed
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(
                    '127.0.0.1', self.a.port, timeout=self.timeout,
                    context=self.a.ssl)
            try:
                self.conn.request(method, path, data, h)
                r = self.conn.getresponse()
                raw = r.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    return 0, None
                continue
            try:
                return r.status, json.loads(raw)
            except ValueError:
                return r.status, None
        return 0, None

    # the elector

    def is_leader(self):
        return self.observed.get('holderIdentity') == self.id

    def lease_valid(self, now):
        return self.observed_time + \
            self.observed.get('leaseDurationSeconds', 0) > now

    def set_observed(self, spec):
        self.observed = dict(spec)
        self.observed_time = time.monotonic()

    def write(self, spec):
        if self.obj is None:
            return False
        body = dict(self.obj)
        body['spec'] = spec
        code, out = self.request('PUT', self.path, body)
        if code != 200:
            return False
        self.obj = out
        return True

    def try_acquire_or_renew(self):
        now = time.monotonic()
        t = microtime()
        rec = {'holderIdentity': self.id,
               'leaseDurationSeconds': self.a.lease,
               'acquireTime': t, 'renewTime': t}
        # 1. the leader's fast path
        if self.is_leader() and self.lease_valid(now):
            rec['acquireTime'] = self.observed.get('acquireTime', t)
            rec['leaseTransitions'] = self.observed.get('leaseTransitions', 0)
            if self.write(rec):
                self.set_observed(rec)
                return True
        # 2. obtain or create
        code, out = self.request('GET', self.path)
        if code == 404:
            rec['leaseTransitions'] = 0
            body = {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease',
                    'metadata': {'name': self.a.name,
                                 'namespace': self.a.namespace},
                    'spec': rec}
            code, out = self.request('POST', self.coll, body)
            if code != 201:
                return False
            self.obj = out
            self.set_observed(rec)
            return True
        if code != 200 or not isinstance(out, dict):
            return False
        self.obj = out
        spec = out.get('spec') or {}
        raw = json.dumps(spec, sort_keys=True)
        # 3. the observed time moves only when the record changes
        if raw != self.observed_raw:
            self.set_observed(spec)
            self.observed_raw = raw
        if spec.get('holderIdentity') and self.lease_valid(now) \
                and not self.is_leader():
            return False
        # 4. take over or renew
        if self.is_leader():
            rec['acquireTime'] = spec.get('acquireTime', t)
            rec['leaseTransitions'] = spec.get('leaseTransitions', 0)
        else:
            rec['leaseTransitions'] = spec.get('leaseTransitions', 0) + 1
        if not self.write(rec):
            return False
        self.set_observed(rec)
        return True

    def release(self):
        if not self.is_leader():
            return
        t = microtime()
        self.write({'holderIdentity': '', 'leaseDurationSeconds': 1,
                    'acquireTime': t, 'renewTime': t,
                    'leaseTransitions':
                        self.observed.get('leaseTransitions', 0)})

    def acquire(self):
        while not self.stop.is_set():
            if self.try_acquire_or_renew():
                return True
            # JitterUntil(..., sliding): the wait starts after the attempt
            self.stop.wait(self.a.retry * (1 + random.random() * 1.2))
        return False

    def renew(self):
        while not self.stop.is_set():
            deadline = time.monotonic() + self.a.renew
            ok = False
            while not self.stop.is_set():
                if self.try_acquire_or_renew():
                    ok = True
                    break
                if time.monotonic() + self.a.retry >= deadline:
                    break
                self.stop.wait(self.a.retry)
            if not ok:
                return
            self.stop.wait(self.a.retry)

    def run(self):
        while not self.stop.is_set():
            if not self.acquire():
                break
            self.renew()
        if self.a.release:
            self.release()


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--api-dir', required=True)
    p.add_argument('--lock', required=True, help='NAMESPACE/NAME (a Lease)')
    p.add_argument('--identity', required=True)
    p.add_argument('--count', type=int, default=1,
                   help='candidates IDENTITY-0 .. -N-1 (1: IDENTITY)')
    p.add_argument('--lease', type=int, default=15)
    p.add_argument('--renew', type=float, default=10)
    p.add_argument('--retry', type=float, default=2)
    p.add_argument('--release', action='store_true',
                   help='ReleaseOnCancel: release on SIGTERM')
    a = p.parse_args()
    a.namespace, a.name = a.lock.split('/', 1)
    with open(os.path.join(a.api_dir, 'port')) as f:
        a.port = int(f.read())
    with open(os.path.join(a.api_dir, 'token')) as f:
        a.token = f.read().strip()
    a.ssl = ssl.create_default_context(
        cafile=os.path.join(a.api_dir, 'ca.crt'))

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    ids = [a.identity] if a.count == 1 else \
        ['%s-%d' % (a.identity, i) for i in range(a.count)]
    cands = [Candidate(a, i, stop) for i in ids]
    for c in cands:
        c.start()
    while not stop.is_set():
        stop.wait(1)
    for c in cands:
        c.join(a.renew + 2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
