#!/usr/bin/python3
"""Candidates on the official Python client's elector
(kubernetes.leaderelection, python3-kubernetes from Debian, the seed this
project started from), ConfigMap lock, as shipped, with one exception:

  - its Config refuses a retry period under 1 s (sys.exit), so the
    benchmark's 0.5 s is set on the Config after validation; the elector
    itself only passes the value to time.sleep().

Its own faults stay (see t/py/test_emulator_clients.py): no release on
shutdown, no jitter, its own lease_duration for expiry, and an error that
is not an ApiException kills its thread.  One process runs --count
candidates, one thread each (each with its own ApiClient); INFO logging
(a line per attempt) is turned down to WARNING.
"""

import argparse
import logging
import os
import signal
import sys
import threading
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--kubeconfig', required=True)
    p.add_argument('--lock', required=True, help='NAMESPACE/NAME')
    p.add_argument('--identity', required=True)
    p.add_argument('--count', type=int, default=1)
    p.add_argument('--lease', type=int, default=15)
    p.add_argument('--renew', type=float, default=10)
    p.add_argument('--retry', type=float, default=2)
    a = p.parse_args()
    ns, name = a.lock.split('/', 1)

    from kubernetes import config
    from kubernetes.leaderelection import electionconfig, leaderelection
    from kubernetes.leaderelection.resourcelock.configmaplock import \
        ConfigMapLock
    logging.getLogger().setLevel(logging.WARNING)
    config.load_kube_config(config_file=a.kubeconfig)

    def candidate(ident):
        def started():
            pass

        def stopped():
            logging.warning('%s stopped leading', ident)

        lock = ConfigMapLock(name, ns, ident)
        cfg = electionconfig.Config(lock, a.lease, a.renew,
                                    max(a.retry, 1), started, stopped)
        cfg.retry_period = a.retry
        try:
            leaderelection.LeaderElection(cfg).run()
        except Exception as e:      # its thread dies on any non-API error
            logging.warning('%s: elector died: %r', ident, e)

    ids = [a.identity] if a.count == 1 else \
        ['%s-%d' % (a.identity, i) for i in range(a.count)]
    for i in ids:
        threading.Thread(target=candidate, args=(i,), daemon=True).start()
    # no release on shutdown: SIGTERM just ends the process
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        time.sleep(3600)


if __name__ == '__main__':
    sys.exit(main())
