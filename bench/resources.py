#!/usr/bin/python3
"""nginx with the module against the same nginx without it: memory (RSS and
PSS of master and worker, /proc/PID/status and smaps_rollup) and CPU time
(/proc/PID/stat, utime + stime) over the same WINDOW seconds, all instances
side by side on one API emulator (no latency):

  plain          Debian's nginx, master + 1 worker, no load_module
  leader-15/10/2 the module, alone on its lock (leads), 15/10/2 s
  follower-15/10/2  a second instance on that lock (follows)
  leader-4/3/0.5, follower-4/3/0.5   the same at 4/3/0.5 s

Every instance has the same http{} server (one location).  Results:
OUT/resources.json.  Environment: WINDOW (60 s).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 't', 'emulator'))
from election import NGINX, SO, children, log   # noqa: E402
from kube_emulator import EmulatorProcess                   # noqa: E402


def cpu_s(pid):
    """Time on CPU, s (/proc/PID/schedstat: ns, finer than clock ticks)."""
    with open('/proc/%d/schedstat' % pid) as f:
        return int(f.read().split()[0]) / 1e9


def memory(pid):
    out = {}
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    out['rss_kb'] = int(line.split()[1])
        with open('/proc/%d/smaps_rollup' % pid) as f:
            for line in f:
                if line.startswith('Pss:'):
                    out['pss_kb'] = int(line.split()[1])
    except OSError:
        pass
    return out


def conf(d, kubeconfig, timings, with_module):
    le = ''
    if with_module:
        ld, rd, rp = timings
        le = ('    leader_election bench {\n'
              '        lock            leases default/res-%g;\n'
              '        identity        %s;\n'
              '        lease_duration  %ds;\n'
              '        renew_deadline  %dms;\n'
              '        retry_period    %dms;\n'
              '        api_server      kubeconfig %s;\n'
              '    }\n' % (rp, os.path.basename(d), ld, round(rd * 1000),
                           round(rp * 1000), kubeconfig))
    text = (('load_module %s;\n' % SO if with_module else '') +
            ('user root;\n' if os.geteuid() == 0 else '') +
            'worker_processes 1;\ndaemon off;\n'
            'error_log logs/error.log notice;\npid logs/nginx.pid;\n'
            'events { worker_connections 64; }\n'
            'http {\n    access_log off;\n' + le +
            '    server {\n        listen unix:%s/http.sock;\n'
            '        location / { return 200 "ok\\n"; }\n    }\n}\n' % d)
    os.makedirs(os.path.join(d, 'logs'), exist_ok=True)
    with open(os.path.join(d, 'nginx.conf'), 'w') as f:
        f.write(text)
    return subprocess.Popen([NGINX, '-p', d + '/', '-c', d + '/nginx.conf',
                             '-e', 'logs/error.log'],
                            stdin=subprocess.DEVNULL,
                            start_new_session=True)


def main():
    out = os.path.abspath(sys.argv[1])
    window = int(os.environ.get('WINDOW', 60))
    work = tempfile.mkdtemp(prefix='res-', dir=out)
    emu = EmulatorProcess(os.path.join(work, 'api')).start()
    procs = {}
    try:
        procs['plain'] = conf(os.path.join(work, 'plain'), None, None, False)
        for t in ((15, 10, 2), (4, 3, 0.5)):
            tag = '%g/%g/%g' % t
            procs['leader-' + tag] = conf(
                os.path.join(work, 'l%g' % t[2]), emu.kubeconfig, t, True)
            time.sleep(3)           # it leads before the follower starts
            procs['follower-' + tag] = conf(
                os.path.join(work, 'f%g' % t[2]), emu.kubeconfig, t, True)
        time.sleep(20)              # past a lease: settled
        pids = {k: {'master': p.pid, 'worker': children(p.pid)[0]}
                for k, p in procs.items()}
        a = {k: {r: cpu_s(pid) for r, pid in v.items()}
             for k, v in pids.items()}
        t0 = time.time()
        time.sleep(window)
        res = {'window_s': time.time() - t0, 'loadavg': os.getloadavg(),
               'instances': {}}
        for k, v in pids.items():
            res['instances'][k] = {
                r: dict(memory(pid), cpu_s=cpu_s(pid) - a[k][r])
                for r, pid in v.items()}
        for k, v in res['instances'].items():
            log('%-20s %s' % (k, v))
        res['holders'] = {}
        for rp in ('2', '0.5'):
            code, obj = emu.admin(
                'GET', '/_emulator/objects/leases/default/res-' + rp)
            res['holders']['res-' + rp] = obj['spec']['holderIdentity'] \
                if code == 200 else None
    finally:
        for p in procs.values():
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass
            p.wait()
        emu.stop()
        shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(out, 'resources.json'), 'w') as f:
        json.dump(res, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
