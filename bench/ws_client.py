"""A small websocket client for the open-loop bench's load generator (bench/open_loop.py, issue 20).

Why not the `websockets` asyncio client there: it runs a reader task per connection and hands
each message through a queue and a future to `recv()`. The server pushes to every console and
board at once (a burst of ~250 messages every 0.2 s with 200 consoles and 50 boards), and that
per-message machinery made the generator late on its own schedule by more than the server's
whole latency target. Here the sockets of all clients sit in one epoll set (`Poller`), which the
event loop watches as one fd: one loop callback reads every ready socket (`recv_into` a buffer
kept per connection, not a fresh 256 KiB bytes per read as asyncio's transports do), parses the
server's frames itself and calls `on_message(payload, now)` for each complete message in that
same call — no task, queue, future or transport per message. `now` is when the sockets were seen
readable (one clock read per batch).

What it does (RFC 6455, client side, no extensions): the HTTP/1.1 Upgrade handshake with a
random Sec-WebSocket-Key, the 101 status, Upgrade/Connection and Sec-WebSocket-Accept checked
(`HandshakeError` says what was wrong); server frames must be unmasked and use no RSV bit; text
and binary messages (payload bytes, as `recv(decode=False)`: text is not UTF-8-validated here),
fragmented messages reassembled, messages of any size (the buffer grows for a frame), ping
answered with pong, close answered with close (the server's code and reason kept; 1006 when the
socket just went away); client frames masked with a random key (websockets' C `apply_mask`).
Sends never block: a frame goes to `socket.send` at once; what the socket does not take waits in
the client and is written when it is writable, `paused` is true while more than HIGH_WATER bytes
wait, and `on_resume` is called when they are out, so a caller can hold its own requests instead
of piling them up. A protocol violation by the server, or an exception from `on_message`, drops
the connection with the reason in `error`. `on_lost` and `closed` follow from the loop, never
from inside a read or a send.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hashlib
import os
import select
import socket
import struct
import time
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from websockets.speedups import apply_mask

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
OPEN, CLOSING, CLOSED = range(3)  # a WSClient exists only once the handshake is done
perf = time.perf_counter


class HandshakeError(Exception):
    """The server did not switch protocols as RFC 6455 §4.1 requires."""


def accept_key(key: bytes) -> bytes:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (base64 of SHA-1 of key + GUID)."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """One final client frame (masked with `mask`, random when None)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    mask = os.urandom(4) if mask is None else mask
    return head + mask + apply_mask(payload, mask)


class Poller:
    """One epoll set for every client of an event loop, itself watched by the loop (an epoll fd is
    readable while any socket in it is): one loop callback reads every ready socket, instead of a
    callback, handle and transport layer per socket per read (that overhead cost more than the
    parsing when the server pushes to 250 connections at once)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.ep = select.epoll()
        self.clients: dict[int, WSClient] = {}
        loop.add_reader(self.ep.fileno(), self._ready)

    LINGER = 0.0005  # seconds to keep polling after a batch (see _ready)

    def _ready(self) -> None:
        """Read every ready socket; then poll again while more comes, for up to LINGER: a server's
        push to hundreds of connections arrives over milliseconds, and on this kind of machine each
        time the process sleeps and is woken costs more CPU than reading a dozen messages."""
        clients, poll = self.clients, self.ep.poll
        start = now = perf()  # when the sockets were seen readable (one clock read per batch)
        while True:
            events = poll(0)
            if not events:
                return
            for fd, _ in events:
                c = clients.get(fd)
                if c is not None:
                    c._readable(now)
            now = perf()
            if now - start > self.LINGER:
                return

    def add_fd(self, fd: int, on_ready: Callable[[float], Any]) -> None:
        """Another fd read in the same callback (e.g. a timerfd): `on_ready(now)` when readable."""
        self.clients[fd] = _Hook(fd, on_ready)  # type: ignore[assignment]
        self.ep.register(fd, select.EPOLLIN)

    def remove_fd(self, fd: int) -> None:
        if self.clients.pop(fd, None) is not None:
            with contextlib.suppress(OSError):
                self.ep.unregister(fd)

    def add(self, c: WSClient) -> None:
        self.clients[c.fd] = c
        self.ep.register(c.fd, select.EPOLLIN)

    def remove(self, c: WSClient) -> None:
        if self.clients.get(c.fd) is c:
            del self.clients[c.fd]
            with contextlib.suppress(OSError):
                self.ep.unregister(c.fd)


class _Hook:
    __slots__ = ("fd", "_readable")

    def __init__(self, fd: int, on_ready: Callable[[float], Any]):
        self.fd, self._readable = fd, on_ready


_pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Poller] = weakref.WeakKeyDictionary()


def poller() -> Poller:
    loop = asyncio.get_running_loop()
    p = _pollers.get(loop)
    if p is None:
        p = _pollers[loop] = Poller(loop)
    return p


class WSClient:
    """One client connection (see the module docstring), made by `connect` once the handshake is done."""

    HIGH_WATER = 64 * 1024  # unsent bytes above this: `paused` until they are written

    def __init__(self, sock: socket.socket, on_message: Callable[[bytes, float], Any],
                 on_lost: Callable[[WSClient], Any] | None = None, on_resume: Callable[[], Any] | None = None,
                 close_timeout: float = 2.0):
        self._loop = asyncio.get_running_loop()
        self.sock, self.fd = sock, sock.fileno()
        self.on_message, self.on_lost, self.on_resume = on_message, on_lost, on_resume
        self.close_timeout = close_timeout
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self.state = OPEN
        self.paused = False
        self.close_code: int | None = None  # the server's close code; 1006 when the socket just went away
        self.close_reason = ""
        self.error: str | None = None  # why this client gave up the connection (a protocol violation)
        self.received = 0  # complete messages handed to on_message
        # the buffer the socket reads into (recv_into: no 256 KiB allocation per read, as
        # sock.recv(256 KiB) makes, which cost more than the parsing); [_start, _end) is not parsed yet
        self._buf = bytearray(1 << 16)
        self._view = memoryview(self._buf)
        self._start = self._end = 0
        self._need = 0  # bytes of a frame that spans reads (0: its header is not complete yet)
        self._frags: list[bytes] | None = None  # a fragmented message being reassembled
        self._out: collections.deque[bytes] = collections.deque()  # what the socket did not take yet
        self._out_size = 0
        self._poller = poller()
        self._poller.add(self)

    # -- reading (called by the poller)
    def _readable(self, now: float) -> None:
        buf, start, end = self._buf, self._start, self._end
        if start == end:  # everything parsed: read to the front again
            start = end = self._start = self._end = 0
        elif len(buf) - end < max(4096, self._need - (end - start)):
            # the frame in parse does not fit behind it: move it to the front, grow for a large one
            size = max(len(buf), 2 * self._need)
            if size > len(buf):
                grown = bytearray(size)
                grown[:end - start] = buf[start:end]
                self._buf, self._view = grown, memoryview(grown)
            else:
                buf[:end - start] = buf[start:end]
            start, end = self._start, self._end = 0, end - start
        try:
            n = self.sock.recv_into(self._view[end:])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            return self._gone(e)
        if n == 0:
            return self._gone(None)
        self._end = end + n
        if self.state == OPEN or (self.state == CLOSING and self.close_code is None):
            self._parse(now)
        else:
            self._start = self._end  # after the server's close frame nothing more is read

    # -- frames in
    def _parse(self, now: float) -> None:
        """Every complete frame in the buffer; a partial one stays for the next read."""
        data, view, i, n = self._buf, self._view, self._start, self._end
        if n - i < self._need:
            return
        got = 0
        deliver = self.on_message
        try:
            while n - i >= 2:
                b0, ln = data[i], data[i + 1]
                if ln < 126:
                    h = 2
                elif ln == 126:
                    if n - i < 4:
                        break
                    ln, h = (data[i + 2] << 8) | data[i + 3], 4
                elif ln == 127:
                    if n - i < 10:
                        break
                    ln, h = int.from_bytes(data[i + 2:i + 10], "big"), 10
                else:
                    self._fail("the server sent a masked frame (RFC 6455 §5.1)")
                    return
                end = i + h + ln
                if end > n:
                    self._need = h + ln  # the frame's whole size: _readable makes room for it
                    break
                payload = view[i + h:end].tobytes()
                i = end
                if b0 == 0x81 or b0 == 0x82:  # a whole text or binary message: the common case
                    got += 1
                    deliver(payload, now)
                elif not self._other(b0, payload, now):
                    return
            else:
                self._need = 0
        except Exception as e:  # the caller's surprise: say so, do not parse on half-handled
            self._fail(f"on_message raised {type(e).__name__}: {e}")
        finally:
            self._start = i
            self.received += got

    def _other(self, b0: int, payload: bytes, now: float) -> bool:
        """A frame other than a whole text/binary message; False when the connection is done."""
        if b0 & 0x70:
            return self._fail(f"the server set RSV bits ({b0:#04x}) without an extension")
        fin, op = b0 & 0x80, b0 & 0x0F
        if op >= 8:  # control frames: final, at most 125 bytes (§5.5), may come between fragments
            if not fin or len(payload) > 125:
                return self._fail(f"a fragmented or long control frame (opcode {op})")
            if op == 9:
                self._write(frame(0xA, payload))
            elif op == 8:
                return self._closing(payload)
            elif op != 0xA:
                return self._fail(f"unknown control opcode {op}")
            return True
        if op in (1, 2):
            if self._frags is not None:
                return self._fail("a new message began inside a fragmented one")
            self._frags = [payload]  # not final (the final case is the fast path)
            return True
        if op != 0 or self._frags is None:
            return self._fail(f"unknown opcode {op}" if op else "a continuation frame without a message")
        self._frags.append(payload)
        if fin:
            whole, self._frags = b"".join(self._frags), None
            self.received += 1
            self.on_message(whole, now)
        return True

    def _closing(self, payload: bytes) -> bool:
        if len(payload) == 1:
            return self._fail("a close frame with a one-byte payload")
        self.close_code = int.from_bytes(payload[:2], "big") if payload else 1005
        self.close_reason = payload[2:].decode("utf-8", "replace")
        if self.state == OPEN:  # echo it (§5.5.1); the server then closes the TCP connection
            self._write(frame(8, payload[:2]))
        self.state = CLOSING
        self._abort_later()
        return False

    def _fail(self, why: str) -> bool:
        self.error = why
        self.abort()
        return False

    # -- writing
    def _write(self, raw: bytes) -> bool:
        if self.state == CLOSED:
            return False
        if not self._out:
            try:
                n = self.sock.send(raw)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as e:
                self._gone(e)
                return False
            if n == len(raw):
                return True
            raw = raw[n:]
            self._loop.add_writer(self.fd, self._writable)
        self._out.append(raw)
        self._out_size += len(raw)
        if self._out_size > self.HIGH_WATER:
            self.paused = True
        return True

    def _writable(self) -> None:
        while self._out:
            chunk = self._out[0]
            try:
                n = self.sock.send(chunk)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                return self._gone(e)
            self._out_size -= n
            if n < len(chunk):
                self._out[0] = chunk[n:]
                return
            self._out.popleft()
        self._loop.remove_writer(self.fd)
        if self.paused:
            self.paused = False
            if self.on_resume is not None:
                self.on_resume()

    def send(self, message: str | bytes) -> bool:
        """Send one text message (bytes are sent as they are, as text); False when the connection is
        closing or closed (the message is dropped)."""
        if self.state != OPEN:
            return False
        return self._write(frame(1, message.encode() if isinstance(message, str) else message))

    def send_binary(self, payload: bytes) -> bool:
        return self.state == OPEN and self._write(frame(2, payload))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; the connection is aborted if the server does not finish it."""
        if self.state == OPEN:
            self._write(frame(8, code.to_bytes(2, "big") + reason.encode()))
            self.state = CLOSING
            self._abort_later()

    def abort(self) -> None:
        """Drop the connection at once, without a closing handshake (a network blip)."""
        self._gone(None)

    def _abort_later(self) -> None:
        self._loop.call_later(self.close_timeout, self.abort)

    def _gone(self, exc: Exception | None) -> None:
        """The socket is closed now; `on_lost` and `closed` follow from the loop (never from inside
        a read or a send of the caller's)."""
        if self.state == CLOSED:
            return
        self.state = CLOSED
        self._poller.remove(self)
        if self._out:
            self._loop.remove_writer(self.fd)
            self._out.clear()
        self.sock.close()
        if self.close_code is None:
            self.close_code = 1006  # as websockets reports a connection closed without a close frame
        self._loop.call_soon(self._lost)

    def _lost(self) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if self.on_lost is not None:
            self.on_lost(self)


def check_handshake(head: bytes, key: bytes) -> None:
    """The server's response to the Upgrade request (up to its blank line): HandshakeError unless it
    switches to websocket as RFC 6455 §4.1 requires (101, Upgrade, Connection, the Accept of `key`,
    no extension or subprotocol this client did not offer)."""
    status, *lines = head.decode("latin-1").split("\r\n")
    fields: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    parts = status.split(" ", 2)
    if len(parts) < 2 or parts[0] != "HTTP/1.1" or parts[1] != "101":
        raise HandshakeError(f"the server answered {status!r}, not 101 Switching Protocols")
    if fields.get("upgrade", "").lower() != "websocket":
        raise HandshakeError(f"Upgrade: {fields.get('upgrade')!r}, not websocket")
    if "upgrade" not in [t.strip().lower() for t in fields.get("connection", "").split(",")]:
        raise HandshakeError(f"Connection: {fields.get('connection')!r} has no upgrade")
    if fields.get("sec-websocket-accept", "").encode() != accept_key(key):
        raise HandshakeError("Sec-WebSocket-Accept does not match the key sent")
    if "sec-websocket-extensions" in fields or "sec-websocket-protocol" in fields:
        raise HandshakeError("the server chose an extension or subprotocol this client did not offer")


async def connect(url: str, on_message: Callable[[bytes, float], Any], *, timeout: float = 60.0,
                  on_lost: Callable[[WSClient], Any] | None = None,
                  on_resume: Callable[[], Any] | None = None) -> WSClient:
    """Open a ws:// connection and complete the handshake (HandshakeError, OSError or TimeoutError)."""
    u = urlsplit(url)
    if u.scheme != "ws" or not u.hostname:
        raise ValueError(f"only ws://host:port/path URLs: {url!r}")
    host, port = u.hostname, u.port or 80
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    loop = asyncio.get_running_loop()
    family, kind, proto, _, addr = (await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16))
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, addr)
            await loop.sock_sendall(sock, b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                                          b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                                          b"Sec-WebSocket-Version: 13\r\n\r\n" % (path.encode(), host.encode(), port, key))
            head = b""
            while (end := head.find(b"\r\n\r\n")) < 0:
                if len(head) > 65536:
                    raise HandshakeError("no end to the handshake response headers in 64 KiB")
                chunk = await loop.sock_recv(sock, 65536)
                if not chunk:
                    raise ConnectionError("the server closed the connection during the handshake")
                head += chunk
        check_handshake(head[:end], key)
    except BaseException:
        sock.close()
        raise
    ws = WSClient(sock, on_message, on_lost, on_resume)
    rest = head[end + 4:]
    if rest:  # frames right behind the handshake
        ws._buf[:len(rest)] = rest
        ws._end = len(rest)
        ws._parse(perf())
    return ws
