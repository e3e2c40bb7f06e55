#!/usr/bin/env python3
"""The chaos checker: no two replicas may ever claim at the same time.

    check.py RUN_DIR [--json]

Reads what chaos.py recorded in RUN_DIR (the replicas' error logs, the
probes, the faults) and proves, or refutes:

1. No two replicas' claim intervals overlap.  A replica's claims come from
   the module's log lines (error_log at debug_core):

       leader_election "NAME": claim term=T until=U now=P
       leader_election "NAME": claim none now=P

   all on CLOCK_BOOTTIME ms.  P of a claim is read before the claim is
   written to shared memory, P of "none" after the revocation is written:
   so [P, min(U, next publication)) contains every instant at which a
   worker of that replica could have read that claim.  The next
   publication ends it at its P (a claim) or at P + 1 (a "none": P is the
   clock read after the write, rounded down).  A claim published with
   U <= P gives nobody a claim and does not end the one before it.
2. Every probe that answered "1 T" overlaps a claim of its replica with
   term T (otherwise the log or the readers lie).  A probe reads one
   snapshot, so "1 -" (leader, no token) is a fault too.
3. Fencing tokens never go backwards: a probe answered after another was
   received never carries a lower token, and the claims' terms, in time
   order, never decrease.

Prints the run's figures (leadership changes, faults by kind, overlaps,
the longest time with no leader and what came before it, probes served,
parameters) and exits non-zero on any violation, on a failure recorded by
the run, or when there was nothing to check.
"""

import bisect
import json
import os
import re
import sys

CLAIM_RE = re.compile(
    r'\[(\w+)\] (\d+)#\d+: (?:\*\d+ )?leader_election "([^"]*)": claim '
    r'(?:term=(-?\d+) until=(-?\d+) now=(-?\d+)|none now=(-?\d+))')

# faults that start this long before a gap are shown as its context (ms)
CONTEXT_MS = 6000


def parse_claim(line):
    m = CLAIM_RE.search(line)
    if not m:
        return None
    if m.group(4) is not None:
        return {'kind': 'claim', 'pid': int(m.group(2)),
                'election': m.group(3), 'term': int(m.group(4)),
                'until': int(m.group(5)), 'now': int(m.group(6))}
    return {'kind': 'none', 'pid': int(m.group(2)), 'election': m.group(3),
            'term': None, 'until': 0, 'now': int(m.group(7))}


def read_log(path):
    """Claim events in file order, and counts of notable lines."""
    events, notable = [], {}
    try:
        f = open(path, 'rb')
    except OSError:
        return events, notable
    with f:
        for i, raw in enumerate(f):
            line = raw.decode('utf-8', 'replace')
            ev = parse_claim(line)
            if ev:
                ev['seq'] = i
                events.append(ev)
                continue
            for key in ('[emerg]', '[alert]', '[crit]'):
                if key in line:
                    notable[key] = notable.get(key, 0) + 1
            if 'exited on signal' in line:
                notable['worker exited on signal'] = \
                    notable.get('worker exited on signal', 0) + 1
    return events, notable


def claim_intervals(events):
    """[(start, end, term, event)] of one replica, disjoint, by start; and
    the number of claims published already over."""
    evs = sorted(events, key=lambda e: (e['now'], e['seq']))
    out, stale = [], 0
    for i, e in enumerate(evs):
        if e['kind'] != 'claim':
            continue
        if e['until'] <= e['now']:
            stale += 1
            continue
        end = e['until']
        for f in evs[i + 1:]:
            if f['kind'] == 'none':
                end = min(end, f['now'] + 1)
                break
            if f['until'] > f['now']:
                end = min(end, f['now'])
                break
        if end > e['now']:
            out.append((e['now'], end, e['term'], e))
    return out, stale


def read_probes(path):
    out, errors = [], {}
    try:
        f = open(path)
    except OSError:
        return out, errors
    with f:
        for line in f:
            p = line.split()
            if len(p) < 3:
                continue
            s, r = float(p[0]), float(p[1])
            if p[2] != '200':
                key = p[3] if len(p) > 3 else p[2]
                errors[key] = errors.get(key, 0) + 1
                continue
            if len(p) < 6:
                continue
            token = None if p[4] == '-' else int(p[4])
            out.append((s, r, p[3] == '1', token, int(p[5])))
    return out, errors


def read_faults(path):
    out = []
    try:
        f = open(path)
    except OSError:
        return out
    with f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def union(intervals):
    out = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1][1] = e
        else:
            out.append([s, e])
    return out


class Check:
    def __init__(self, run_dir):
        self.dir = run_dir
        with open(os.path.join(run_dir, 'params.json')) as f:
            self.params = json.load(f)
        self.faults = read_faults(os.path.join(run_dir, 'faults.jsonl'))
        self.t0 = self.faults[0]['t'] if self.faults else 0.0
        self.names = ['r%d' % (i + 1)
                      for i in range(self.params['replicas'])]
        self.events, self.notable, self.ivs, self.stale = {}, {}, {}, {}
        self.probes, self.probe_errors = {}, {}
        for n in self.names:
            ev, nt = read_log(os.path.join(run_dir, n, 'logs', 'error.log'))
            ev = [e for e in ev if e['election'] == self.params['election']]
            self.events[n] = ev
            self.notable[n] = nt
            self.ivs[n], self.stale[n] = claim_intervals(ev)
            self.probes[n], self.probe_errors[n] = read_probes(
                os.path.join(run_dir, 'probes', n + '.log'))
        self.violations = []
        try:
            with open(os.path.join(run_dir, 'errors.log')) as f:
                self.run_errors = [l.strip() for l in f if l.strip()]
        except OSError:
            self.run_errors = ['no errors.log: the run did not finish']

    # helpers

    def rel(self, ms):
        return '+%.3fs' % ((ms - self.t0) / 1000.0)

    def fault_at(self, name):
        for f in self.faults:
            if f['kind'] == 'run' and f['phase'] == name:
                return f
        return None

    def context(self, lo, hi, target=None):
        out = []
        for f in self.faults:
            if f['kind'] == 'run' or not lo <= f['t'] <= hi:
                continue
            if f['phase'] not in ('start', 'skip'):
                continue
            out.append('%s %s %s%s' % (self.rel(f['t']), f['kind'],
                                       f['target'] or 'api',
                                       '' if f['phase'] == 'start'
                                       else ' (skipped)'))
        return out

    def describe(self, n, iv):
        s, e, term, ev = iv
        return ('%s term %d [%s, %s) (claim now=%d until=%d pid %d)'
                % (n, term, self.rel(s), self.rel(e), ev['now'], ev['until'],
                   ev['pid']))

    # the checks

    def overlaps(self):
        allv = sorted((iv[0], iv[1], n, iv) for n in self.names
                      for iv in self.ivs[n])
        active, found = [], []
        for s, e, n, iv in allv:
            active = [a for a in active if a[1] > s]
            for a in active:
                if a[2] != n:
                    found.append((a, (s, e, n, iv)))
            active.append((s, e, n, iv))
        for a, b in found:
            lo, hi = b[0], min(a[1], b[1])
            self.violations.append(
                'OVERLAP %.0f ms: %s  and  %s;  faults before: %s'
                % (hi - lo, self.describe(a[2], a[3]),
                   self.describe(b[2], b[3]),
                   '; '.join(self.context(min(a[0], b[0]) - CONTEXT_MS,
                                          hi)) or 'none'))
        return len(found)

    def probe_checks(self):
        outside = mismatch = notoken = 0
        for n in self.names:
            ivs = self.ivs[n]
            starts = [iv[0] for iv in ivs]
            for s, r, leader, token, pid in self.probes[n]:
                if not leader:
                    continue
                if token is None:
                    # a leader has a token: "1 -" is two reads of the
                    # shared state in one probe, or a bug
                    notoken += 1
                    if notoken <= 10:
                        self.violations.append(
                            'PROBE LEADER WITHOUT TOKEN: %s pid %d answered '
                            '"1 -" in [%s, %s]'
                            % (n, pid, self.rel(s), self.rel(r)))
                i = bisect.bisect_right(starts, r) - 1
                hit = []
                while i >= 0 and ivs[i][1] > s:
                    hit.append(ivs[i])
                    i -= 1
                if not hit:
                    outside += 1
                    if outside <= 10:
                        prev = ivs[bisect.bisect_right(starts, r) - 1] \
                            if bisect.bisect_right(starts, r) else None
                        self.violations.append(
                            'PROBE OUTSIDE CLAIMS: %s pid %d answered '
                            '"1 %s" in [%s, %s]; its last claim before: %s;'
                            '  faults before: %s'
                            % (n, pid, token, self.rel(s), self.rel(r),
                               self.describe(n, prev) if prev else 'none',
                               '; '.join(self.context(s - CONTEXT_MS, r))
                               or 'none'))
                elif token is not None and token not in [h[2] for h in hit]:
                    mismatch += 1
                    if mismatch <= 10:
                        self.violations.append(
                            'PROBE TOKEN %s is not the term of the claims '
                            'it overlaps: %s pid %d in [%s, %s]: %s'
                            % (token, n, pid, self.rel(s), self.rel(r),
                               ', '.join(self.describe(n, h) for h in hit)))
        return outside, mismatch, notoken

    def token_order(self):
        lp = sorted((s, r, t, n) for n in self.names
                    for s, r, leader, t, _ in self.probes[n]
                    if leader and t is not None)
        by_r = sorted(lp, key=lambda p: p[1])
        j, best, back = 0, None, 0
        for q in lp:
            while j < len(by_r) and by_r[j][1] < q[0]:
                if best is None or by_r[j][2] > best[2]:
                    best = by_r[j]
                j += 1
            if best is not None and q[2] < best[2]:
                back += 1
                if back <= 10:
                    self.violations.append(
                        'FENCING TOKEN BACKWARDS: %s answered %d in [%s, %s]'
                        ' after %s answered %d by %s'
                        % (q[3], q[2], self.rel(q[0]), self.rel(q[1]),
                           best[3], best[2], self.rel(best[1])))
        claims = sorted((iv[0], iv[2], n, iv) for n in self.names
                        for iv in self.ivs[n])
        for a, b in zip(claims, claims[1:]):
            if b[1] < a[1]:
                back += 1
                self.violations.append(
                    'TERM BACKWARDS: %s then %s'
                    % (self.describe(a[2], a[3]), self.describe(b[2], b[3])))
        return back, claims

    def leaderless(self, claims):
        lo = self.fault_at('faults-start')
        hi = self.fault_at('liveness') or self.fault_at('faults-stop')
        if not claims:
            return None, []
        start = max(claims[0][0], lo['t'] if lo else claims[0][0])
        end = hi['t'] if hi else max(iv[1] for _, _, _, iv in claims)
        u = union([(iv[0], iv[1]) for _, _, _, iv in claims])
        gaps, cur = [], start
        for s, e in u:
            if e <= cur:
                continue
            if s > cur:
                gaps.append((cur, min(s, end)))
            cur = max(cur, e)
            if cur >= end:
                break
        if cur < end:
            gaps.append((cur, end))
        gaps = [g for g in gaps if g[1] > g[0]]
        return gaps, u

    # the report

    def run(self):
        p = self.params
        out = []
        w = out.append
        overlaps = self.overlaps()
        outside, mismatch, notoken = self.probe_checks()
        back, claims = self.token_order()
        gaps, _ = self.leaderless(claims)

        # the changes until the replicas are shut down at the end
        shut = self.fault_at('shutdown')
        during = [c for c in claims if shut is None or c[0] < shut['t']]
        term_changes = holder_changes = 0
        for a, b in zip(during, during[1:]):
            term_changes += a[1] != b[1]
            holder_changes += a[2] != b[2]

        w('chaos run %s' % self.dir)
        w('  seed %s, %d replicas, nginx %s, lease/renew/retry at start '
          '%ss/%sms/%sms; changes target %s, time limit %ss; a fault on '
          'the leader every %ss, one at random every %ss (means); at most '
          '%s replicas disrupted at once'
          % (p['seed'], p['replicas'],
             (p.get('nginx_version') or '?').split('/')[-1],
             *p['timings_start'], p['changes'], p['seconds'],
             p['leader_gap_s'], p['fault_gap_s'], p['max_disrupted']))
        stop = self.fault_at('faults-stop')
        fstart = self.fault_at('faults-start')
        if stop and fstart:
            w('  faults for %.1f s' % ((stop['t'] - fstart['t']) / 1000.0))
        kinds = {}
        skipped = {}
        for f in self.faults:
            if f['kind'] == 'run':
                continue
            if f['phase'] == 'start':
                kinds[f['kind']] = kinds.get(f['kind'], 0) + 1
            elif f['phase'] == 'skip':
                skipped[f['kind']] = skipped.get(f['kind'], 0) + 1
        w('faults: %d  %s' % (sum(kinds.values()), ', '.join(
            '%s %d' % kv for kv in sorted(kinds.items(),
                                          key=lambda kv: -kv[1]))))
        if skipped:
            w('  skipped (no elector pid to signal): %s' % ', '.join(
                '%s %d' % kv for kv in sorted(skipped.items())))
        w('leadership changes: %d new terms claimed, %d handovers between '
          'replicas; %d claims published (%s), %d already over when '
          'published'
          % (term_changes, holder_changes,
             sum(len(self.events[n]) for n in self.names),
             ', '.join('%s %d' % (n, len(self.ivs[n])) for n in self.names),
             sum(self.stale.values())))
        w('overlaps: %d' % overlaps)
        nprobes = sum(len(self.probes[n]) for n in self.names)
        nlead = sum(1 for n in self.names for x in self.probes[n] if x[2])
        errs = {}
        for n in self.names:
            for k, v in self.probe_errors[n].items():
                errs[k] = errs.get(k, 0) + v
        w('probes: %d answered (%d said leader), %d not answered (%s); '
          'outside claims: %d, token not the claim\'s term: %d, tokens '
          'backwards: %d, leader without a token: %d'
          % (nprobes, nlead, sum(errs.values()),
             ', '.join('%s %d' % kv for kv in sorted(errs.items())) or '-',
             outside, mismatch, back, notoken))
        if gaps:
            g = max(gaps, key=lambda g: g[1] - g[0])
            before = [c for c in claims if c[0] < g[0]]
            after = [c for c in claims if c[0] >= g[1]]
            lens = sorted(x[1] - x[0] for x in gaps)
            w('leaderless: %d gaps, median %.0f ms, p99 %.0f ms, total '
              '%.1f s; longest %.0f ms [%s, %s]'
              % (len(gaps), lens[len(lens) // 2],
                 lens[min(len(lens) - 1, int(len(lens) * 0.99))],
                 sum(lens) / 1000.0, g[1] - g[0], self.rel(g[0]),
                 self.rel(g[1])))
            if before:
                w('  after: %s' % self.describe(before[-1][2],
                                                before[-1][3]))
            if after:
                w('  until: %s' % self.describe(after[0][2], after[0][3]))
            w('  faults before and during it: %s'
              % ('; '.join(self.context(g[0] - CONTEXT_MS, g[1])) or 'none'))
        live = self.fault_at('liveness')
        if live:
            w('after the faults: %s leads %.1f s after healing (limit '
              '%.1f s)' % (live.get('leader'), live.get('secs', 0),
                           live.get('limit', 0)))
        for n in self.names:
            if self.notable[n]:
                w('  %s error log: %s' % (n, ', '.join(
                    '%s %d' % kv for kv in sorted(self.notable[n].items()))))

        problems = list(self.violations)
        problems += ['RUN: ' + e for e in self.run_errors]
        if not claims:
            problems.append('NOTHING TO CHECK: no claim was logged (is the '
                            'error log at debug_core? does the module log '
                            'its claims?)')
        elif nlead == 0:
            problems.append('NOTHING TO CHECK: no probe ever said leader')
        for v in problems:
            w(v)
        w('RESULT: %s' % ('FAIL (%d problems)' % len(problems) if problems
                          else 'PASS: 0 overlaps, every leader probe inside '
                          'a claim of its term, tokens never backwards'))
        self.summary = {
            'seed': p['seed'], 'replicas': p['replicas'],
            'faults': kinds, 'faults_total': sum(kinds.values()),
            'term_changes': term_changes, 'holder_changes': holder_changes,
            'overlaps': overlaps, 'probes': nprobes, 'leader_probes': nlead,
            'probes_outside': outside, 'token_mismatch': mismatch,
            'tokens_backwards': back, 'leader_without_token': notoken,
            'longest_leaderless_ms': (max(g[1] - g[0] for g in gaps)
                                      if gaps else None),
            'problems': problems,
        }
        return out, not problems


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__)
        return 2
    c = Check(argv[0])
    lines, ok = c.run()
    text = '\n'.join(lines) + '\n'
    sys.stdout.write(text)
    with open(os.path.join(argv[0], 'report.txt'), 'w') as f:
        f.write(text)
    with open(os.path.join(argv[0], 'summary.json'), 'w') as f:
        json.dump(c.summary, f, indent=1)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
