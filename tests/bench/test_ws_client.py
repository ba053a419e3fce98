"""bench/ws_client.py, the open-loop generator's own websocket client, talks RFC 6455 right: against
a real `websockets` server (fragmented and large messages, ping, a close with its code and reason,
client frames the server unmasks), against the real queue server (hello, and the 1009 close a
too-large frame gets), and with a peer that does not read (sends held, then written in order).
No timing is checked here."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from websockets.asyncio.server import serve
from websockets.speedups import apply_mask

from bench.ws_client import HandshakeError, accept_key, check_handshake, connect
from queue_server import protocol as P
from tests.support.live_server import LiveServer


def test_accept_key_is_the_rfc_example() -> None:
    assert accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 §1.3


def test_a_handshake_response_that_does_not_switch_is_refused_with_the_reason() -> None:
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    ok = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
    check_handshake(ok + b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", key)
    with pytest.raises(HandshakeError, match="503"):
        check_handshake(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0", key)
    with pytest.raises(HandshakeError, match="Accept"):
        check_handshake(ok + b"AAAAAAAAAAAAAAAAAAAAAAAAAAA=", key)
    with pytest.raises(HandshakeError, match="extension"):
        check_handshake(ok + b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Extensions: permessage-deflate", key)


def test_fragmented_large_ping_and_close_against_websockets() -> None:
    big = "大" * 400_000  # 1.2 MB of UTF-8: many socket reads, a grown buffer
    pieces = ["first ", "second ", "third"]
    seen: dict[str, object] = {}

    async def handler(ws) -> None:
        echo = await ws.recv()  # the client's masked frame, unmasked by the library
        await ws.send(echo)
        await ws.send(iter(pieces))  # one message in three frames (a text frame, two continuations)
        await ws.send(big)
        await ws.send(b"\x00\x01binary")
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 10)  # the client answered the ping
        seen["pong"] = True
        await ws.close(4000, "bye")
        seen["server_close"] = (ws.close_code, ws.close_reason)

    async def main() -> None:
        got: list[bytes] = []
        async with serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            ws = await connect(f"ws://127.0.0.1:{port}/", lambda raw, now: got.append(raw))
            ws.send("héllo ✓")
            await asyncio.wait_for(ws.closed, 20)
            seen["client"] = (ws.close_code, ws.close_reason, ws.error, ws.received)
        assert got == ["héllo ✓".encode(), "".join(pieces).encode(), big.encode(), b"\x00\x01binary"]

    asyncio.run(main())
    assert seen["pong"] is True
    assert seen["client"] == (4000, "bye", None, 4)
    # the server received the client's echo of its code (1006 there would mean no close frame came back)
    assert seen["server_close"] == (4000, "")



async def accept_upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A fake server's side of the handshake: read the Upgrade request, answer 101 with its key."""
    head = await reader.readuntil(b"\r\n\r\n")
    key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:"))
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n")

def test_a_masked_server_frame_is_refused_clearly() -> None:
    async def main() -> str | None:
        async def fake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await accept_upgrade(reader, writer)
            writer.write(b"\x81\x82abcd" + bytes(x ^ y for x, y in zip(b"hi", b"ab", strict=True)))  # masked
            await writer.drain()
            await reader.read()

        server = await asyncio.start_server(fake, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            ws = await connect(f"ws://127.0.0.1:{port}/", lambda raw, now: None)
            await asyncio.wait_for(ws.closed, 10)
            return ws.error

    assert "masked" in (asyncio.run(main()) or "")


def test_hello_and_the_too_large_close_against_the_queue_server(tmp_path: Path) -> None:
    srv = LiveServer(db_url=f"sqlite:///{tmp_path / 'lobby.db'}", secrets=tmp_path / "secrets.toml").start()

    async def main() -> tuple[dict, int | None]:
        got: list[bytes] = []
        ws = await connect(srv.url, lambda raw, now: got.append(raw))
        ws.send(json.dumps({"type": "hello", "id": 1, "role": "display", "site": "honcho", "device": "t",
                            "token": srv.tokens().roles["display"]}))
        for _ in range(200):
            if any(r.startswith(b'{"re":1') for r in got):
                break
            await asyncio.sleep(0.05)
        reply = json.loads(next(r for r in got if r.startswith(b'{"re":1')))
        ws.send("x" * (P.MAX_FRAME_BYTES + 1))  # over the frame limit: the server closes with 1009
        await asyncio.wait_for(ws.closed, 20)
        return reply, ws.close_code

    try:
        reply, code = asyncio.run(main())
    finally:
        srv.stop()
    assert "result" in reply, reply
    assert code == 1009


def test_sends_to_a_server_that_does_not_read_wait_in_the_client_and_go_out_in_order() -> None:
    async def main() -> tuple[bool, int, list[bytes], list[bytes]]:
        release = asyncio.Event()
        frames: list[bytes] = []

        async def fake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await accept_upgrade(reader, writer)
            await writer.drain()
            await release.wait()  # not reading: the client's socket buffer fills
            while len(frames) < len(sent):
                b0, b1 = await reader.readexactly(2)
                n = b1 & 0x7F
                if n == 126:
                    n = int.from_bytes(await reader.readexactly(2), "big")
                elif n == 127:
                    n = int.from_bytes(await reader.readexactly(8), "big")
                mask = await reader.readexactly(4)
                data = await reader.readexactly(n)
                frames.append(apply_mask(data, mask))  # websockets' own unmasking
            writer.close()

        resumed = 0

        def on_resume() -> None:
            nonlocal resumed
            resumed += 1

        sent = [f"{i:06d}".encode() * 5000 for i in range(200)]  # 30 KB each, 6 MB in all
        server = await asyncio.start_server(fake, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            ws = await connect(f"ws://127.0.0.1:{port}/", lambda raw, now: None, on_resume=on_resume)
            paused_seen = False
            for m in sent:
                ws.send(m)
                paused_seen = paused_seen or ws.paused
            release.set()
            for _ in range(400):
                if len(frames) == len(sent) and not ws.paused:
                    break
                await asyncio.sleep(0.05)
            ws.abort()
        return paused_seen, resumed, frames, sent

    paused_seen, resumed, frames, sent = asyncio.run(main())
    assert paused_seen and resumed == 1  # held above the high-water mark, told once when written out
    assert frames == sent  # every frame whole, masked right, in order
