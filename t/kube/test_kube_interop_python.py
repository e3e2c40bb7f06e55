#!/usr/bin/python3
"""t/py/test_interop_configmap.py (two `kle run` candidates and the official
Python client's elector on one ConfigMap lock, kill -9 takeovers) on the
real kube-apiserver, every candidate with the least-privilege Role of
docs/examples/kubernetes.yaml on configmaps/default/interop."""

import functools
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, 't', 'py'))

from kube_server import KubeServer          # noqa: E402
import test_interop_configmap               # noqa: E402

if __name__ == '__main__':
    from tap import Tap
    lock = 'configmaps/%s/%s' % (test_interop_configmap.NS,
                                 test_interop_configmap.NAME)
    Tap().run(lambda t: test_interop_configmap.main(
        t, functools.partial(KubeServer, lock=lock)))
