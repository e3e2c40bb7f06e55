#!/usr/bin/env python3
"""The figures of a chaos run, for docs/chaos.md, from the run's own output.

    figures.py RUN_DIR [--doc docs/chaos.md --name NAME] [--commit C]

Prints a Markdown table made from RUN_DIR/summary.json and params.json,
followed by the checker's report (report.txt) as it was written.  With
--doc, replaces what lies between the lines "<!-- figures NAME -->" and
"<!-- /figures NAME -->" in that file instead, so that no figure in the
documentation is typed by hand.
"""

import argparse
import json
import os
import sys


def figures(run, commit=None):
    with open(os.path.join(run, 'summary.json')) as f:
        s = json.load(f)
    with open(os.path.join(run, 'params.json')) as f:
        p = json.load(f)
    with open(os.path.join(run, 'report.txt')) as f:
        report = f.read().rstrip('\n')
    faults = ', '.join('%s %d' % kv for kv in sorted(
        s['faults'].items(), key=lambda kv: (-kv[1], kv[0])))
    rows = [
        ('server', p.get('server', 'emulator')),
        ('module built from', p.get('commit') or commit or 'not recorded'),
        ('seed, replicas', '%s, %s' % (s['seed'], s['replicas'])),
        ('leadership changes', '%d new terms claimed, %d handovers between '
         'replicas' % (s['term_changes'], s['holder_changes'])),
        ('faults', '%d: %s' % (s['faults_total'], faults)),
        ('**overlaps**', '**%d**' % s['overlaps']),
        ('probes', '%d answered, %d of them "leader"; %d outside a claim, %d '
         'with a token other than the claim\'s term, %d tokens backwards, '
         '%d leader without a token'
         % (s['probes'], s['leader_probes'], s['probes_outside'],
            s['token_mismatch'], s['tokens_backwards'],
            s.get('leader_without_token', 0))),
        ('longest leaderless', '%s ms' % s['longest_leaderless_ms']),
        ('problems', '; '.join(s['problems']) or 'none'),
    ]
    out = ['| figure | value |', '| --- | --- |']
    out += ['| %s | %s |' % (k, str(v).replace('|', '\\|')) for k, v in rows]
    out += ['', 'The checker\'s report:', '', '```', report, '```']
    return '\n'.join(out) + '\n'


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('run')
    ap.add_argument('--doc')
    ap.add_argument('--name', default='run')
    ap.add_argument('--commit', help='for runs that did not record it')
    a = ap.parse_args(argv)
    text = figures(a.run, a.commit)
    if not a.doc:
        sys.stdout.write(text)
        return 0
    begin = '<!-- figures %s -->' % a.name
    end = '<!-- /figures %s -->' % a.name
    with open(a.doc) as f:
        doc = f.read()
    i, j = doc.find(begin), doc.find(end)
    if i < 0 or j < i:
        sys.stderr.write('%s: no "%s" ... "%s" block\n' % (a.doc, begin, end))
        return 1
    doc = doc[:i + len(begin)] + '\n\n' + text + '\n' + doc[j:]
    with open(a.doc + '.tmp', 'w') as f:
        f.write(doc)
    os.replace(a.doc + '.tmp', a.doc)
    return 0


if __name__ == '__main__':
    sys.exit(main())
