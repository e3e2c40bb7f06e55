#!/usr/bin/env python3
"""A TCP proxy between one nginx replica and the API server, for chaos runs.

    proxy.py --upstream 127.0.0.1:PORT [--listen-port 0]

Prints "port N" once it listens, then reads one command a line on stdin and
answers "ok MODE" when it is in force:

    pass                    forward everything (the default)
    latency UP_MS DOWN_MS   delay every chunk, towards the API (UP) and back
                            (DOWN); a request reaches the server UP_MS late,
                            its answer comes back DOWN_MS after it was sent
    blackhole [up|down]     a partition: nothing is forwarded either way
                            (or only towards the API, or only back); new
                            connections are accepted and held while
                            nothing goes up; "pass" heals it (held bytes
                            then flow, as TCP would retransmit them)
    reset                   every connection is reset (RST), new ones too
    freeze                  every open connection dies silently, for good:
                            held open, nothing passes either way, no FIN
                            or RST (a NAT or conntrack entry gone, a node
                            gone behind an L4 balancer); new connections
                            pass, in the mode in force
    drop                    every frozen connection is reset (RST), as
                            the kernel gives up on it at last
    slow BYTES_PER_S        every connection is throttled to that rate in
                            each direction ("pass" ends it)
    quit                    exit

It exits when stdin closes, so that it never outlives the chaos run.  TLS
passes through untouched: the replica still verifies the API server.
"""

import argparse
import collections
import errno
import os
import selectors
import socket
import struct
import sys
import time

CHUNK = 65536
MAX_BUFFER = 1 << 20        # stop reading a side whose peer lags this much


def rst_close(sock):
    """Close with a TCP RST (SO_LINGER 0), as a crashed peer would."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack('ii', 1, 0))
    except OSError:
        pass
    sock.close()


class Direction:
    """Bytes read from src, due at a time, then written to dst."""

    def __init__(self):
        self.queue = collections.deque()      # (due, bytes)
        self.out = bytearray()
        self.eof = False                      # src said EOF
        self.shut = False                     # EOF passed on to dst

    def pending(self):
        return len(self.out) + sum(len(b) for _, b in self.queue)


class Conn:
    def __init__(self, client):
        self.client = client
        self.upstream = None
        self.up = Direction()                 # client -> upstream
        self.down = Direction()               # upstream -> client
        self.closed = False
        self.dead = False                     # frozen for good


class Proxy:
    def __init__(self, upstream, listen_port):
        self.upstream = upstream
        self.sel = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(('127.0.0.1', listen_port))
        self.listener.listen(128)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, 'listen')
        self.sel.register(sys.stdin.fileno(), selectors.EVENT_READ, 'stdin')
        self.stdin_buf = b''
        self.mode = 'pass'
        self.frozen = set()                   # directions held: up, down
        self.lat_up = self.lat_down = 0.0
        self.rate = 0.0                       # bytes/s; 0: no limit
        self.conns = []
        self.registered = {}                  # sock -> events
        self.running = True

    # connections

    def accept(self):
        while True:
            try:
                c, _ = self.listener.accept()
            except BlockingIOError:
                return
            except OSError:
                return
            if self.mode == 'reset':
                rst_close(c)
                continue
            c.setblocking(False)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Conn(c)
            self.conns.append(conn)
            if 'up' not in self.frozen:
                self.connect(conn)

    def connect(self, conn):
        u = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        u.settimeout(2.0)
        try:
            u.connect(self.upstream)
        except OSError:
            u.close()
            self.drop(conn, rst=True)
            return
        u.setblocking(False)
        u.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.upstream = u

    def drop(self, conn, rst=False):
        if conn.closed:
            return
        conn.closed = True
        for s in (conn.client, conn.upstream):
            if s is None:
                continue
            if s in self.registered:
                self.sel.unregister(s)
                del self.registered[s]
            if rst:
                rst_close(s)
            else:
                s.close()

    def read(self, conn, src, d, latency):
        try:
            data = src.recv(CHUNK if not self.rate else 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.drop(conn, rst=True)
            return
        if conn.dead:
            # bytes into the void; the client's end closing ends it here
            # (the server's end closing tells the client nothing)
            if not data and src is conn.client:
                self.drop(conn)
            elif not data:
                d.eof = True
            return
        if not data:
            d.eof = True
            return
        due = time.monotonic() + latency
        if d.queue and d.queue[-1][0] > due:
            due = d.queue[-1][0]
        if self.rate:
            due = max(due, d.queue[-1][0] if d.queue else 0.0,
                      time.monotonic()) + len(data) / self.rate
        d.queue.append((due, data))

    def flush(self, conn, dst, d, now):
        while d.queue and d.queue[0][0] <= now:
            d.out += d.queue.popleft()[1]
        if d.out:
            try:
                n = dst.send(d.out)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                self.drop(conn, rst=True)
                return
            del d.out[:n]
        if d.eof and not d.out and not d.queue and not d.shut:
            d.shut = True
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    # the loop

    def want(self, sock, events):
        old = self.registered.get(sock)
        if events == 0:
            if old is not None:
                self.sel.unregister(sock)
                del self.registered[sock]
            return
        if old is None:
            self.sel.register(sock, events, None)
        elif old != events:
            self.sel.modify(sock, events, None)
        self.registered[sock] = events

    def arm(self):
        """Registers each socket for what it may do now; returns when the
        next delayed chunk is due."""
        nxt = None
        for conn in self.conns:
            if conn.closed:
                continue
            if conn.upstream is None:
                self.want(conn.client, selectors.EVENT_READ if conn.dead
                          else 0)
                continue
            for src, dst, d, name in (
                    (conn.client, conn.upstream, conn.up, 'up'),
                    (conn.upstream, conn.client, conn.down, 'down')):
                frozen = name in self.frozen or conn.dead
                ev_src = 0
                if conn.dead and not d.eof:
                    ev_src = selectors.EVENT_READ
                elif not frozen and not d.eof and d.pending() < MAX_BUFFER:
                    ev_src = selectors.EVENT_READ
                self.want_add(src, ev_src, 'r')
                if d.queue:
                    due = d.queue[0][0]
                    nxt = due if nxt is None else min(nxt, due)
                if not frozen and d.out:
                    self.want_add(dst, selectors.EVENT_WRITE, 'w')
            for s in (conn.client, conn.upstream):
                self.want(s, self.pending_events.pop(s, 0))
        return nxt

    def want_add(self, sock, ev, _):
        self.pending_events[sock] = self.pending_events.get(sock, 0) | ev

    def command(self, line):
        words = line.split()
        if not words:
            return
        cmd = words[0]
        if cmd == 'quit':
            self.running = False
            return
        if cmd == 'pass':
            self.mode = 'pass'
            self.frozen = set()
            self.lat_up = self.lat_down = 0.0
            self.rate = 0.0
            for conn in self.conns:
                if (not conn.closed and conn.upstream is None
                        and not conn.dead):
                    self.connect(conn)
        elif cmd == 'latency':
            self.mode = 'pass'
            self.frozen = set()
            self.lat_up = float(words[1]) / 1000.0
            self.lat_down = float(words[2] if len(words) > 2
                                  else words[1]) / 1000.0
            for conn in self.conns:
                if (not conn.closed and conn.upstream is None
                        and not conn.dead):
                    self.connect(conn)
        elif cmd == 'blackhole':
            self.mode = 'blackhole'
            self.frozen = set(words[1:]) or {'up', 'down'}
            if not self.frozen <= {'up', 'down'}:
                self.frozen = {'up', 'down'}
        elif cmd == 'freeze':
            for conn in self.conns:
                if not conn.closed:
                    conn.dead = True
                    for d in (conn.up, conn.down):
                        d.queue.clear()
                        del d.out[:]
        elif cmd == 'drop':
            for conn in self.conns:
                if conn.dead:
                    self.drop(conn, rst=True)
        elif cmd == 'slow':
            self.rate = max(1.0, float(words[1]))
        elif cmd == 'reset':
            self.mode = 'reset'
            self.frozen = set()
            for conn in self.conns:
                self.drop(conn, rst=True)
        else:
            sys.stdout.write('error unknown command %s\n' % cmd)
            sys.stdout.flush()
            return
        sys.stdout.write('ok %s\n' % cmd)
        sys.stdout.flush()

    def stdin_ready(self):
        data = os.read(sys.stdin.fileno(), 4096)
        if not data:
            self.running = False
            return
        self.stdin_buf += data
        while b'\n' in self.stdin_buf:
            line, self.stdin_buf = self.stdin_buf.split(b'\n', 1)
            self.command(line.decode())

    def run(self):
        sys.stdout.write('port %d\n' % self.listener.getsockname()[1])
        sys.stdout.flush()
        while self.running:
            self.pending_events = {}
            nxt = self.arm()
            timeout = 0.5
            if nxt is not None:
                timeout = max(0.0, min(timeout, nxt - time.monotonic()))
            for key, ev in self.sel.select(timeout):
                if key.data == 'listen':
                    self.accept()
                elif key.data == 'stdin':
                    self.stdin_ready()
                else:
                    self.ready(key.fileobj, ev)
            now = time.monotonic()
            for conn in self.conns:
                if conn.closed or conn.upstream is None or conn.dead:
                    continue
                if 'up' not in self.frozen:
                    self.flush(conn, conn.upstream, conn.up, now)
                if 'down' not in self.frozen and not conn.closed:
                    self.flush(conn, conn.client, conn.down, now)
                if (not conn.closed and conn.up.shut and conn.down.shut):
                    self.drop(conn)
            self.conns = [c for c in self.conns if not c.closed]

    def ready(self, sock, ev):
        for conn in self.conns:
            if conn.closed:
                continue
            if sock is conn.client:
                if ev & selectors.EVENT_READ:
                    self.read(conn, conn.client, conn.up, self.lat_up)
                return
            if sock is conn.upstream:
                if ev & selectors.EVENT_READ:
                    self.read(conn, conn.upstream, conn.down, self.lat_down)
                return


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--upstream', required=True, help='HOST:PORT')
    ap.add_argument('--listen-port', type=int, default=0)
    a = ap.parse_args()
    host, port = a.upstream.rsplit(':', 1)
    try:
        Proxy((host, int(port)), a.listen_port).run()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
