"""Minimal TAP output for the Python test scripts.

    t = Tap()
    t.ok(cond, 'name')
    t.is_(got, want, 'name')
    t.skip('name', 'why')
    t.done()            # prints the plan, exits 1 if anything failed

Tap.run(fn) calls fn(t) and turns an uncaught exception into a failure.
"""

import json
import sys
import traceback


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def _line(self, text):
        sys.stdout.write(text + '\n')
        sys.stdout.flush()

    def diag(self, msg):
        for line in str(msg).splitlines() or ['']:
            self._line('# ' + line)

    def ok(self, cond, name, diag=None):
        self.n += 1
        self._line('%s %d - %s' % ('ok' if cond else 'not ok', self.n, name))
        if not cond:
            self.failed += 1
            if diag is not None:
                self.diag(diag)
        return bool(cond)

    def is_(self, got, want, name):
        return self.ok(got == want, name, '     got: %s\nexpected: %s'
                       % (_show(got), _show(want)))

    def like(self, got, needle, name):
        return self.ok(isinstance(got, str) and needle in got, name,
                       '%s\ndoes not contain: %r' % (_show(got), needle))

    def skip(self, name, why):
        self.n += 1
        self._line('ok %d - %s # skip %s' % (self.n, name, why))

    def done(self):
        self._line('1..%d' % self.n)
        if self.failed:
            self.diag('failed %d of %d' % (self.failed, self.n))
        sys.exit(1 if self.failed else 0)

    def run(self, fn):
        try:
            fn(self)
        except Exception:
            self.ok(False, 'no uncaught exception', traceback.format_exc())
        self.done()


def _show(v):
    try:
        return json.dumps(v, sort_keys=True)
    except (TypeError, ValueError):
        return repr(v)
