#!/usr/bin/python3
"""Turns a `make bench` run into bench/README.md's figures and plots.

    report.py OUT     (OUT: election.json, instructions.txt, wrk.txt)

Writes OUT/*.dat, runs gnuplot on bench/plots.gp (bench/failover.png,
bench/requests.png) and replaces the parts of bench/README.md between
<!-- bench:KEY --> and <!-- /bench:KEY --> (table, instructions, wrk,
machine).  The prose around them is written by hand.
"""

import json
import os
import platform
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(HERE, 'README.md')


def ms(x):
    return '%.1f' % x if x < 100 else '%.0f' % x


def dist(s, unit=' ms'):
    if not s:
        return 'n/a'
    return 'median %s, p95 %s, max %s%s (n = %d)' % (
        ms(s['median']), ms(s['p95']), ms(s['max']), unit, s['n'])


def dist_s(s):
    if not s:
        return 'n/a'
    return 'median %.3f s, p95 %.3f s, max %.3f s (n = %d)' % (
        s['median'] / 1000, s['p95'] / 1000, s['max'] / 1000, s['n'])


def verbs(st):
    p = st['per_period']
    out = '%.2f PUT + %.2f GET' % (p['PUT'], p['GET'])
    extra = ['%.2f %s' % (p[v], v) for v in ('POST', 'watch') if p[v]]
    return out + (' + ' + ' + '.join(extra) if extra else '')


def ratio(path, pattern):
    try:
        with open(path) as f:
            m = re.search(pattern, f.read())
        return m.group(1) if m else None
    except OSError:
        return None


def write_dat(out, r):
    def cdf(name, xs):
        xs = sorted(max(x, 0.5) for x in xs)
        with open(os.path.join(out, name), 'w') as f:
            f.write('# excess_ms fraction\n')
            for i, x in enumerate(xs):
                f.write('%.3f %.4f\n' % (x, (i + 1) / len(xs)))
            if not xs:
                f.write('1 0\n')
    for kind in ('module', 'python', 'model'):
        tk = r.get(kind, {}).get('crash', {}).get('takeovers', [])
        cdf('failover_%s.dat' % kind, [t['excess_ms'] for t in tk])
    tk = r.get('scale', {}).get('module', {}).get('100', {}) \
        .get('crash', {}).get('takeovers', [])
    cdf('failover_module100.dat', [t['excess_ms'] for t in tk])
    with open(os.path.join(out, 'requests.dat'), 'w') as f:
        f.write('# candidates module model python (requests per retry '
                'period, all verbs)\n')
        for n in (3, 10, 100):
            row = []
            for kind in ('module', 'model', 'python'):
                if n == 3:
                    st = r.get(kind, {}).get('steady')
                else:
                    st = r.get('scale', {}).get(kind, {}).get(str(n), {}) \
                        .get('steady')
                row.append('%.3f' % st['total_per_period'] if st else 'NaN')
            f.write('%d %s\n' % (n, ' '.join(row)))


def table(r, out):
    g = lambda *k: _get(r, *k)      # noqa: E731
    rows = []
    t = r.get('timings', {})
    rows.append('| | this module (now) | client-go (model) | Python client '
                '| target |')
    rows.append('| --- | --- | --- | --- | --- |')
    rows.append('| crash, 3 replicas: next holder\'s write − (dead holder\'s '
                'last write + lease) | %s | %s | %s | ≤ 50 ms max, ≤ 10 ms '
                'median |' % tuple(dist(g(k, 'crash', 'excess_ms'))
                                   for k in ('module', 'model', 'python')))
    py = g('python', 'handoff')
    py_txt = 'never releases: the next write comes %s after its last ' \
        '(a lease, %d s, + the crash excess)' % (
            dist(py.get('ms')) if py else 'n/a', t.get('lease', 4)) \
        if py else 'n/a'
    rows.append('| graceful handoff: release record → next holder\'s write '
                '| %s | %s | %s | ≤ 20 ms |' % (
                    dist(g('module', 'handoff', 'ms')),
                    dist(g('model', 'handoff', 'ms')), py_txt))
    for n in (3, 10, 100):
        cells = []
        for k in ('module', 'model', 'python'):
            st = g(k, 'steady') if n == 3 else g('scale', k, str(n), 'steady')
            cells.append(verbs(st) if st else 'n/a')
        rows.append('| API requests per retry period, steady state, %d '
                    'candidates | %s | %s | %s | 1 PUT + 0 GET |'
                    % (n, *cells))
    c100 = g('scale', 'module', '100', 'crash', 'excess_ms')
    rows.append('| crash, 100 candidates (100 nginx, master_process off) '
                '| %s | | | ≤ 50 ms max, ≤ 10 ms median |' % dist(c100))
    cpu = g('scale', 'module', '100', 'steady')
    if cpu and cpu.get('cpu_follower'):
        f = cpu['cpu_follower']
        rows.append('| elector CPU per follower, 100 candidates, over %.0f s '
                    '| %.3f %% of a core median (max %.3f %%); leader %.3f %% '
                    '| | | measured |' % (
                        cpu['seconds'], 100 * f['median'], 100 * f['max'],
                        100 * cpu.get('cpu_leader', 0)))
    cg = ratio(os.path.join(out, 'instructions.txt'),
               r'leader: \S+ instructions per request vs core, a throughput '
               r'ratio of (\S+)')
    wrk = ratio(os.path.join(out, 'wrk.txt'),
                r'(?m)^/leader\s+\d+\s+\S+\s+(\S+)\s*$')
    rows.append('| `$leader_election_is_leader` vs a core variable | '
                'callgrind %s; wrk %s (noise ±10 %%) | — | — | ≥ 0.99 |'
                % (cg or 'n/a', wrk or 'n/a'))
    h = r.get('headline')
    if h:
        ct, mt = h['clientgo_timings'], h['module_timings']
        gap = h.get('crash', {}).get('gap_ms')
        # the model's crash excess at retry 0.5 s, scaled to client-go's
        # retry period: the excess is two jittered polls' residues
        ex = g('model', 'crash', 'excess_ms')
        k = ct['retry'] / t.get('retry', 0.5)
        est = ('; scaled from the model\'s excess at %g s: median %.1f s, '
               'max %.1f s' % (t.get('retry', 0.5), ct['lease'] +
                               k * ex['median'] / 1000, ct['lease'] +
                               k * ex['max'] / 1000)) if ex else ''
        rows.append(
            '| **headline**: crash failover (dead holder\'s last write → '
            'next holder\'s write) within client-go\'s request rate at its '
            'defaults, 3 replicas | **%s** at %g/%g/%g s, spending %.2f '
            'requests/s | %g s + up to %.1f s (two polls of up to 2.2 × %g s)'
            '%s; at %g/%g/%g s, spending %.2f requests/s (measured) | | '
            'the same request rate |' % (
                dist_s(gap),
                mt['lease'], mt['renew'], mt['retry'],
                h['module_total_per_second'], ct['lease'],
                2 * 2.2 * ct['retry'], ct['retry'], est, ct['lease'],
                ct['renew'], ct['retry'], h['clientgo_total_per_second']))
    return '\n'.join(rows)


def _get(r, *keys):
    for k in keys:
        if not isinstance(r, dict) or k not in r:
            return None
        r = r[k]
    return r


def machine(r):
    cpu = ''
    try:
        with open('/proc/cpuinfo') as f:
            m = re.search(r'model name\s*:\s*(.*)', f.read())
            cpu = m.group(1).strip() if m else ''
    except OSError:
        pass
    deb = ''
    try:
        with open('/etc/debian_version') as f:
            deb = 'Debian ' + f.read().strip()
    except OSError:
        pass
    ngx = subprocess.run([os.environ.get('NGINX', '/usr/sbin/nginx'), '-v'],
                         stderr=subprocess.PIPE, universal_newlines=True)
    ngx = ngx.stderr.strip().replace('nginx version: ', '')
    return ('Measured %s on %s, %d CPUs (%s), %s, kernel %s, %s; load '
            'average %s at the start of the election run (the machine is '
            'shared). Election run: %.0f s.' % (
                r.get('date', '?'), platform.node() or 'this machine',
                os.cpu_count(), cpu, deb, platform.release(), ngx,
                r.get('loadavg_start', '?'), r.get('wall_s', 0)))


def block(path, head=None):
    try:
        with open(path) as f:
            text = f.read().rstrip('\n')
    except OSError:
        return '(not run)'
    return '```\n' + text + '\n```'


def replace(text, key, body):
    pat = re.compile(r'(<!-- bench:%s -->\n)(?:.*?\n)?(<!-- /bench:%s -->)'
                     % (key, key), re.S)
    if not pat.search(text):
        print('README has no bench:%s section' % key, file=sys.stderr)
        return text
    return pat.sub(lambda m: m.group(1) + body + '\n' + m.group(2), text)


def main():
    out = sys.argv[1]
    with open(os.path.join(out, 'election.json')) as f:
        r = json.load(f)
    write_dat(out, r)
    if shutil.which('gnuplot'):
        subprocess.run(['gnuplot', '-e', "data='%s'; out='%s'" % (out, HERE),
                        os.path.join(HERE, 'plots.gp')], check=True)
    else:
        print('gnuplot is not installed: plots not redrawn', file=sys.stderr)
    with open(README) as f:
        text = f.read()
    text = replace(text, 'table', table(r, out))
    text = replace(text, 'machine', machine(r))
    text = replace(text, 'instructions',
                   block(os.path.join(out, 'instructions.txt')))
    text = replace(text, 'wrk', block(os.path.join(out, 'wrk.txt')))
    with open(README, 'w') as f:
        f.write(text)
    print(table(r, out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
