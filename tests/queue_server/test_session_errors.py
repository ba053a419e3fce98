"""A bug met by one request answers `internal` and is logged; the connection stays open.

Found when a module move left the planner's hello snapshot calling a function that had moved: every
planner hello closed its socket with 1011 and the server log said nothing.
"""

import asyncio
import json
import logging

from websockets.asyncio.client import connect

from queue_server import planner_api
from queue_server.server import QueueServer
from tests.queue_server.writer_support import InProcess, make_server


def test_an_unexpected_error_in_a_request_is_answered_and_logged_and_the_socket_stays_open(tmp_path, monkeypatch,
                                                                                            caplog):
    def broken(*_a, **_k):
        raise RuntimeError("a bug in the planner snapshot")

    monkeypatch.setattr(planner_api, "snapshot", broken)
    qs = make_server(tmp_path, cls=QueueServer)
    srv = InProcess(qs)
    try:
        async def go():
            async with connect(srv.url) as ws:
                await ws.send(json.dumps({"type": "hello", "id": 7, "role": "planner", "site": "honcho"}))
                reply = json.loads(await ws.recv())
                assert reply["re"] == 7 and reply["error"]["code"] == "internal"
                await ws.send(json.dumps({"type": "ping", "id": 8}))  # still open, still answering
                assert json.loads(await ws.recv())["re"] == 8

        with caplog.at_level(logging.ERROR, logger="madoguchi.server"):
            asyncio.run(go())
        assert any("request failed" in r.getMessage() and r.exc_info for r in caplog.records)
    finally:
        srv.stop()
