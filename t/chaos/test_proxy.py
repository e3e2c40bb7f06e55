#!/usr/bin/env python3
"""The chaos proxy does what chaos.py relies on (TAP output).

An echo server stands for the API server; each test talks to it through
proxy.py and checks when, and whether, the echo comes back.
"""

import os
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
n = 0
failed = 0


def ok(cond, name):
    global n, failed
    n += 1
    if not cond:
        failed += 1
    print('%s %d - %s' % ('ok' if cond else 'not ok', n, name), flush=True)


def echo_server():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(('127.0.0.1', 0))
    srv.listen(16)

    def serve(c):
        with c:
            while True:
                try:
                    d = c.recv(4096)
                except OSError:
                    return
                if not d:
                    return
                try:
                    c.sendall(d)
                except OSError:         # the proxy reset it
                    return

    def loop():
        while True:
            c, _ = srv.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]


class Proxy:
    def __init__(self, upstream):
        self.p = subprocess.Popen(
            [sys.executable, os.path.join(HERE, 'proxy.py'), '--upstream',
             '127.0.0.1:%d' % upstream], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, bufsize=1)
        self.port = int(self.p.stdout.readline().split()[1])

    def cmd(self, c):
        self.p.stdin.write(c + '\n')
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def conn(self):
        s = socket.create_connection(('127.0.0.1', self.port), 2)
        s.settimeout(2)
        return s

    def stop(self):
        self.p.stdin.close()
        self.p.wait(5)


def roundtrip(s, data=b'ping', timeout=2.0):
    """Seconds until the echo came back, None if it did not in time."""
    s.settimeout(timeout)
    t = time.monotonic()
    s.sendall(data)
    got = b''
    try:
        while len(got) < len(data):
            d = s.recv(4096)
            if not d:
                return None
            got += d
    except socket.timeout:
        return None
    return time.monotonic() - t


def main():
    up = echo_server()
    px = Proxy(up)

    s = px.conn()
    rt = roundtrip(s)
    ok(rt is not None and rt < 0.2, 'pass: the echo comes back at once')

    ok(px.cmd('latency 0 300') == 'ok latency', 'latency command answered')
    rt = roundtrip(s)
    ok(rt is not None and 0.29 <= rt < 0.8,
       'latency 0 300: the answer is 300 ms late (%.3f s)' % (rt or -1))
    px.cmd('latency 300 0')
    rt = roundtrip(s)
    ok(rt is not None and 0.29 <= rt < 0.8,
       'latency 300 0: the request is 300 ms late (%.3f s)' % (rt or -1))

    px.cmd('blackhole')
    rt = roundtrip(s, timeout=0.5)
    ok(rt is None, 'blackhole: nothing comes back on an open connection')
    s2 = px.conn()
    ok(True, 'blackhole: a new connection is accepted')
    s2.sendall(b'held')
    px.cmd('pass')
    try:
        s.settimeout(2)
        got = s.recv(4096)
        s2.settimeout(2)
        got2 = s2.recv(4096)
    except OSError:
        got = got2 = b''
    ok(got == b'ping' and got2 == b'held',
       'pass heals it: the held bytes flow on both connections')

    # an answer on its way still arrives when only requests are cut off
    px.cmd('latency 0 400')
    t = time.monotonic()
    s.sendall(b'late')
    time.sleep(0.1)
    px.cmd('blackhole up')
    s.settimeout(2)
    try:
        got = s.recv(4096)
    except OSError:
        got = b''
    took = time.monotonic() - t
    ok(got == b'late' and 0.39 <= took < 1.5,
       'blackhole up: an answer already on its way arrives (%.3f s)' % took)
    rt = roundtrip(s, b'lost', timeout=0.6)
    ok(rt is None, 'blackhole up: a new request gets no answer')
    px.cmd('pass')

    px.cmd('reset')
    try:
        s.settimeout(2)
        d = s.recv(4096)
        reset = d == b'lost' and s.recv(4096) == b''
    except ConnectionResetError:
        reset = True
    except OSError:
        reset = False
    ok(reset, 'reset: an open connection is reset')
    try:
        s3 = px.conn()
        s3.sendall(b'x')
        d = s3.recv(10)
        refused = d == b''
    except (ConnectionResetError, BrokenPipeError):
        refused = True
    ok(refused, 'reset: a new connection is reset too')
    px.cmd('pass')
    ok(roundtrip(px.conn()) is not None, 'pass again: a new connection works')

    # freeze: open connections die silently, new ones pass
    s = px.conn()
    ok(roundtrip(s) is not None, 'freeze: before it, the echo comes back')
    ok(px.cmd('freeze') == 'ok freeze', 'freeze command answered')
    rt = roundtrip(s, b'dead', timeout=0.6)
    ok(rt is None, 'freeze: nothing comes back on an open connection')
    s.settimeout(0.3)
    try:
        d = s.recv(10)
        silent = False                  # a FIN (b'') or data
    except socket.timeout:
        silent = True
    except OSError:
        silent = False                  # an RST
    ok(silent, 'freeze: the open connection is neither closed nor reset')
    s4 = px.conn()
    ok(roundtrip(s4) is not None, 'freeze: a new connection passes')
    px.cmd('pass')
    ok(roundtrip(s, b'gone', timeout=0.6) is None,
       'freeze: pass does not bring a frozen connection back')
    ok(roundtrip(s4) is not None, 'and the new one still passes')
    ok(px.cmd('drop') == 'ok drop', 'drop command answered')
    try:
        s.settimeout(2)
        d = s.recv(10)
        reset = False
    except ConnectionResetError:
        reset = True
    except OSError:
        reset = False
    ok(reset, 'drop: the frozen connection is reset')
    ok(roundtrip(s4) is not None, 'drop: the live one still passes')
    s.close()

    # slow: bytes at a rate
    px.cmd('slow 20000')
    rt = roundtrip(s4, b'x' * 20000, timeout=5)
    ok(rt is not None and 0.9 <= rt < 4,
       'slow 20000: 20 kB echoed through it take about 1 s (%.3f s)'
       % (rt or -1))
    px.cmd('pass')
    rt = roundtrip(s4, b'x' * 20000)
    ok(rt is not None and rt < 0.5, 'pass ends it (%.3f s)' % (rt or -1))

    px.stop()
    ok(px.p.returncode == 0, 'the proxy exits when its stdin closes')
    print('1..%d' % n)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
