#!/usr/bin/env python3
"""make chaos-plants: the checker must catch bugs planted in real nginx.

    plants.py --build DIR [--only NAME,...] [--no-build]

For each t/chaos/plants/NAME.patch: copies the module's sources (config,
module/, lib/) to DIR/src, applies the patch there (never to the tree),
builds the module against a copy of the nginx source configured once in
DIR/nginx, then runs a short chaos run against it (the patch's "Chaos:"
arguments) and expects it to FAIL with a violation matching "Expect:".
A patch starts with its description:

    Plant: what is wrong
    Chaos: arguments for chaos.py (a fault mix that exposes it)
    Expect: a regular expression for the violation it must cause

Exit status non-zero if a plant does not apply, does not build, or is not
caught.
"""

import argparse
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))


def header(path):
    meta = {}
    with open(path) as f:
        for line in f:
            if line.startswith(('diff ', '--- ', 'Index:')):
                break
            k, sep, v = line.partition(':')
            if sep and k.strip() in ('Plant', 'Chaos', 'Expect', 'Why'):
                meta[k.strip()] = v.strip()
    return meta


def sh(cmd, log, cwd=None):
    with open(log, 'a') as out:
        out.write('$ %s\n' % ' '.join(shlex.quote(c) for c in cmd))
        out.flush()
        r = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    return r.returncode == 0


def tail(path, n=15):
    try:
        with open(path) as f:
            return ''.join(f.readlines()[-n:])
    except OSError:
        return ''


def configure(a, build, log):
    ngx = os.path.join(build, 'nginx')
    made = os.path.join(ngx, 'objs', 'Makefile')
    if (os.path.exists(made) and os.path.getmtime(made)
            >= os.path.getmtime(os.path.join(TOP, 'config'))):
        return True
    shutil.rmtree(ngx, ignore_errors=True)
    shutil.copytree(a.nginx_src, ngx, symlinks=True)
    src = os.path.join(build, 'src')
    sync(src)
    flags = []
    conf = os.path.join(ngx, 'conf_flags')
    if os.path.exists(conf):
        out = subprocess.run(
            ['bash', '-c', '. ./conf_flags; printf "%s\\0" '
             '"${NGX_CONF_FLAGS[@]}"'], cwd=ngx, capture_output=True,
            text=True)
        flags = [f for f in out.stdout.split('\0') if f]
    return sh(['./configure'] + flags
              + ['--with-cc-opt=' + a.cc_opt, '--with-ld-opt=' + a.ld_opt,
                 '--add-dynamic-module=' + src], log, cwd=ngx)


def sync(src):
    """A fresh copy of the module's sources, as they are in the tree."""
    shutil.rmtree(src, ignore_errors=True)
    os.makedirs(src)
    shutil.copy2(os.path.join(TOP, 'config'), src)
    for d in ('module', 'lib'):
        shutil.copytree(os.path.join(TOP, d), os.path.join(src, d))


def build_plant(a, build, patch, name, log):
    src = os.path.join(build, 'src')
    sync(src)
    if not sh(['patch', '-p1', '--no-backup-if-mismatch', '-d', src,
               '-i', patch], log):
        return None, 'the patch does not apply'
    ngx = os.path.join(build, 'nginx')
    jobs = [] if '-j' in os.environ.get('MAKEFLAGS', '') else ['-j2']
    if not sh(['make'] + jobs + ['-C', ngx, '-f', 'objs/Makefile',
                                 'modules'], log):
        return None, 'the module does not build'
    out = os.path.join(build, name)
    os.makedirs(out, exist_ok=True)
    so = os.path.join(out, 'ngx_http_leader_election_module.so')
    # a new inode, never an overwrite of a mapped file
    if os.path.exists(so):
        os.unlink(so)
    shutil.copy2(os.path.join(ngx, 'objs',
                              'ngx_http_leader_election_module.so'), so)
    return so, None


def run_plant(a, build, name, so, meta):
    rundir = os.path.join(build, name, 'run')
    cmd = ([sys.executable, os.path.join(HERE, 'chaos.py'), '--dir', rundir,
            '--module', so, '--seed', str(a.seed)]
           + shlex.split(meta.get('Chaos', '')))
    if a.seconds:
        cmd += ['--seconds', str(a.seconds)]
    log = os.path.join(build, name, 'chaos.out')
    t = time.monotonic()
    with open(log, 'w') as out:
        r = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    took = time.monotonic() - t
    text = open(log).read()
    expect = re.compile(meta.get('Expect', 'OVERLAP|PROBE OUTSIDE'))
    hits = [l for l in text.splitlines() if expect.search(l)]
    figures = [l for l in text.splitlines()
               if l.startswith(('overlaps:', 'probes:'))]
    return r.returncode, hits, figures, took, log


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', required=True)
    ap.add_argument('--only', default='')
    ap.add_argument('--no-build', action='store_true')
    ap.add_argument('--seconds', type=float, default=None,
                    help='override every plant\'s run time')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--nginx-src', default='/usr/share/nginx/src')
    ap.add_argument('--cc-opt', default='-g -O2 -fPIC')
    ap.add_argument('--ld-opt', default='-fPIC')
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    os.makedirs(build, exist_ok=True)
    log = os.path.join(build, 'build.log')
    open(log, 'w').close()

    patches = sorted(glob.glob(os.path.join(HERE, 'plants', '*.patch')))
    only = set(filter(None, a.only.split(',')))
    if only:
        patches = [p for p in patches
                   if os.path.basename(p)[:-len('.patch')] in only]
    if not patches:
        print('no plants')
        return 1
    if not a.no_build and not configure(a, build, log):
        print('configuring nginx for the plants failed:\n' + tail(log))
        return 1

    results = []
    for patch in patches:
        name = os.path.basename(patch)[:-len('.patch')]
        meta = header(patch)
        print('plant %s: %s' % (name, meta.get('Plant', '?')), flush=True)
        so = os.path.join(build, name, 'ngx_http_leader_election_module.so')
        if not a.no_build:
            so, err = build_plant(a, build, patch, name, log)
            if err:
                print('  FAILED: %s\n%s' % (err, tail(log)))
                results.append((name, False))
                continue
        rc, hits, figures, took, out = run_plant(a, build, name, so, meta)
        caught = rc == 1 and bool(hits)
        for f in figures:
            print('  ' + f)
        if caught:
            print('  CAUGHT in %.0f s (%d matching violations), the first:'
                  '\n    %s' % (took, len(hits), hits[0][:600]))
        else:
            print('  NOT CAUGHT in %.0f s (exit %d); see %s'
                  % (took, rc, out))
        results.append((name, caught))
        sys.stdout.flush()

    bad = [n for n, ok in results if not ok]
    print('plants: %d of %d caught%s' % (len(results) - len(bad),
                                        len(results),
                                        ('; not: ' + ', '.join(bad))
                                        if bad else ''))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
