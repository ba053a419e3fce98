"""A small websocket client for the open-loop bench's load generator (bench/open_loop.py, issue 20).

Why not the `websockets` asyncio client there: it runs a reader task per connection and hands
each message through a queue and a future to `recv()`. The server pushes to every console and
board at once (a burst of ~250 messages every 0.2 s with 200 consoles and 50 boards), and that
per-message machinery made the generator late on its own schedule by more than the server's
whole latency target. This client is an `asyncio.Protocol`: `data_received` parses the
server's frames itself and calls `on_message(payload, now)` for each complete message in the
same call as the socket read — no task, queue or future per message — and `now` is the time the
chunk was read from the socket (one `perf_counter` per read, not per message).

What it does (RFC 6455, client side, no extensions): the HTTP/1.1 Upgrade handshake with a
random Sec-WebSocket-Key, the 101 status, Upgrade/Connection and Sec-WebSocket-Accept checked;
server frames must be unmasked and use no RSV bit; text and binary messages (payload bytes, as
`recv(decode=False)`: text is not UTF-8-validated here), fragmented messages reassembled,
ping answered with pong, close answered with close (the server's code and reason kept); client
frames masked with a random key (websockets' C `apply_mask`). Sends never block: they go to
`transport.write`; `paused` is true while the transport's buffer is above its high-water mark
(`pause_writing`), and `on_resume` is called when it drains, so a caller can hold its own
requests instead of piling them up. A protocol violation by the server aborts the connection
with the reason in `error`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from websockets.speedups import apply_mask

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
CONNECTING, OPEN, CLOSING, CLOSED = range(4)
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


class WSClient(asyncio.BufferedProtocol):
    """One client connection; see the module docstring. Create it with `connect`."""

    def __init__(self, host: str, port: int, path: str, on_message: Callable[[bytes, float], Any],
                 on_lost: Callable[[WSClient], Any] | None = None, on_resume: Callable[[], Any] | None = None,
                 close_timeout: float = 2.0):
        loop = asyncio.get_running_loop()
        self.host, self.port, self.path = host, port, path
        self.on_message, self.on_lost, self.on_resume = on_message, on_lost, on_resume
        self.close_timeout = close_timeout
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.state = CONNECTING
        self.paused = False
        self.close_code: int | None = None  # the server's close code; 1006 when the socket just went away
        self.close_reason = ""
        self.error: str | None = None  # why this client aborted the connection (a protocol violation)
        self.received = 0  # complete messages handed to on_message
        self._key = base64.b64encode(os.urandom(16))
        self._head = b""  # the handshake response until its blank line
        # one buffer the socket reads into (recv_into: no 256 KiB allocation per read, which cost
        # more than the parsing); [_start, _end) is not parsed yet
        self._buf = bytearray(1 << 18)
        self._view = memoryview(self._buf)
        self._start = self._end = 0
        self._need = 0  # bytes of a frame that spans reads (0: its header is not complete yet)
        self._frags: list[bytes] | None = None  # a fragmented message being reassembled

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                        % (self.path.encode(), self.host.encode(), self.port, self._key))

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = CLOSED
        if self.close_code is None:
            self.close_code = 1006  # as websockets reports a connection closed without a close frame
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(self.error or f"connection closed during the handshake ({exc})"))
        if not self.closed.done():
            self.closed.set_result(None)
        if self.on_lost is not None:
            self.on_lost(self)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.on_resume is not None:
            self.on_resume()

    def get_buffer(self, sizehint: int) -> memoryview:
        buf, start, end = self._buf, self._start, self._end
        if start == end:  # everything parsed: read to the front again
            self._start = self._end = 0
        elif end == len(buf) or len(buf) - end < self._need - (end - start):
            # the frame in parse does not fit behind it: move it to the front, grow for a large one
            size = max(len(buf), self._need)
            if size > len(buf):
                grown = bytearray(size)
                grown[:end - start] = buf[start:end]
                self._buf, self._view = grown, memoryview(grown)
            else:
                buf[:end - start] = buf[start:end]
            self._start, self._end = 0, end - start
        return self._view[self._end:]

    def buffer_updated(self, nbytes: int) -> None:
        self._end += nbytes
        if self.state == OPEN or (self.state == CLOSING and self.close_code is None):
            self._parse()
        elif self.state == CONNECTING:
            data = bytes(self._view[self._start:self._end])
            self._start = self._end
            self._handshake(data)
        else:
            self._start = self._end  # after the server's close frame: nothing more is read

    # -- frames in
    def _parse(self) -> None:
        """Every complete frame in the buffer; a partial one stays for the next read."""
        data, i, n = self._buf, self._start, self._end
        if n - i < self._need:
            return
        now = perf()
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
                    self._need = h + ln  # the frame's whole size: get_buffer makes room for it
                    break
                payload = bytes(data[i + h:end])
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
        if self.transport is not None:
            self.transport.abort()
        return False

    # -- handshake
    def _handshake(self, data: bytes) -> None:
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > 65536:
                self._refuse("no end to the handshake response headers in 64 KiB")
            return
        head, rest = self._head[:end].decode("latin-1"), self._head[end + 4:]
        self._head = b""
        status, *lines = head.split("\r\n")
        fields: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        parts = status.split(" ", 2)
        if len(parts) < 2 or parts[0] != "HTTP/1.1" or parts[1] != "101":
            return self._refuse(f"the server answered {status!r}, not 101 Switching Protocols")
        if fields.get("upgrade", "").lower() != "websocket":
            return self._refuse(f"Upgrade: {fields.get('upgrade')!r}, not websocket")
        if "upgrade" not in [t.strip().lower() for t in fields.get("connection", "").split(",")]:
            return self._refuse(f"Connection: {fields.get('connection')!r} has no upgrade")
        if fields.get("sec-websocket-accept", "").encode() != accept_key(self._key):
            return self._refuse("Sec-WebSocket-Accept does not match the key sent")
        if "sec-websocket-extensions" in fields or "sec-websocket-protocol" in fields:
            return self._refuse("the server chose an extension or subprotocol this client did not offer")
        self.state = OPEN
        self.opened.set_result(None)
        if rest:  # frames right behind the handshake: back into the buffer
            self._buf[:len(rest)] = rest
            self._start, self._end = 0, len(rest)
            self._parse()

    def _refuse(self, why: str) -> None:
        self.error = why
        if not self.opened.done():
            self.opened.set_exception(HandshakeError(why))
        assert self.transport is not None
        self.transport.abort()

    # -- frames out
    def _write(self, raw: bytes) -> bool:
        t = self.transport
        if t is None or t.is_closing():
            return False
        t.write(raw)
        return True

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
            self.state = CLOSING
            self._write(frame(8, code.to_bytes(2, "big") + reason.encode()))
            self._abort_later()
        elif self.state == CONNECTING:
            self.abort()

    def abort(self) -> None:
        """Drop the connection at once, without a closing handshake (a network blip)."""
        if self.transport is not None:
            self.transport.abort()

    def _abort_later(self) -> None:
        asyncio.get_running_loop().call_later(self.close_timeout, self.abort)


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
    _, ws = await asyncio.wait_for(loop.create_connection(
        lambda: WSClient(host, port, path, on_message, on_lost, on_resume), host, port), timeout)
    try:
        await asyncio.wait_for(asyncio.shield(ws.opened), timeout)
    except BaseException:
        ws.abort()
        raise
    return ws
