"""While the server cannot save tickets, kiosks stop issuing and say so (issue 12, Deliver 4):
the flow holds the citizen's ticket on a clear screen, the client holds the request until the
server's ``storage`` push says it works again, and then issues it once."""

from __future__ import annotations

import asyncio
import threading
import time

from kiosk import flow as F
from kiosk.client import KioskClient
from queue_server import writer as W
from queue_server.server import run_server
from queue_server.storage import Store
from tests.queue_server.writer_support import make_server

from .test_flow import DEATH_1, answer_all, catalogue, make, run  # noqa: F401  (fixture)


def test_flow_holds_the_ticket_while_storage_fails_and_issues_when_it_works(catalogue):  # noqa: F811
    kiosk, s = make(catalogue)
    s, _ = run(kiosk, s, F.StorageChanged(False), F.ChooseLanguage("ja"), F.ChoosePurpose("death"))
    s, _ = answer_all(kiosk, s, DEATH_1)
    s, cmds = run(kiosk, s, F.TakeNumber())
    assert any(isinstance(c, F.Issue) for c in cmds)
    assert s.screen is F.Screen.OFFLINE and s.pending_key is not None and not s.storage_ok
    s, _ = run(kiosk, s, F.Connected())
    assert s.screen is F.Screen.OFFLINE  # connected is not enough: nothing can be saved
    s, _ = run(kiosk, s, F.StorageChanged(True))
    assert s.screen is F.Screen.ISSUING
    s, _ = run(kiosk, s, F.StorageChanged(False))
    assert s.screen is F.Screen.OFFLINE
    s, cmds = run(kiosk, s, F.Abandon())
    assert s.screen is F.Screen.ABANDONED and any(isinstance(c, F.AbandonIssue) for c in cmds)


def test_client_holds_the_issue_until_the_server_can_save_it(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "PROBE_INTERVAL", 0.1)
    qs = make_server(tmp_path)
    store = qs.store
    probe_ok = threading.Event()

    def probe():
        if not probe_ok.is_set():
            raise OSError("still full")
        Store.probe(store)

    store.probe = probe  # type: ignore[method-assign]
    loop = asyncio.new_event_loop()
    port: list[int] = []
    stop = loop.create_future()
    thread = threading.Thread(target=lambda: loop.run_until_complete(
        run_server(qs, "127.0.0.1", 0, port.append, stop)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not port and time.monotonic() < deadline:
        time.sleep(0.01)
    events: list = []
    client = KioskClient(f"ws://127.0.0.1:{port[0]}/ws", "kiosk-s", qs.tokens.roles["kiosk"], events.append,
                         site="honcho", backoff=(0.05,), request_timeout=5.0)
    client.start()

    def wait(pred, what):
        end = time.monotonic() + 10
        while not pred() and time.monotonic() < end:
            time.sleep(0.01)
        assert pred(), f"{what}: {events}"

    try:
        wait(lambda: client.online, "online")
        store.fail_after = 1  # the next commit meets a full disk
        client.issue({"purposes": ["certificate"], "answers": {}, "lang": "ja", "idempotency_key": "kiosk-s-1"})
        wait(lambda: any(isinstance(e, F.StorageChanged) and not e.ok for e in events), "told storage fails")
        assert not client.storage_ok
        time.sleep(0.5)
        assert not any(isinstance(e, F.IssueSucceeded | F.IssueFailed) for e in events)
        assert qs.writer.storage.errors == {"disk_full": 1}  # held: not sent again and again
        probe_ok.set()
        wait(lambda: any(isinstance(e, F.IssueSucceeded) for e in events), "issued after recovery")
        assert any(isinstance(e, F.StorageChanged) and e.ok for e in events)
        (done,) = [e for e in events if isinstance(e, F.IssueSucceeded)]
        assert done.result["ticket"]["number"] == "1"
    finally:
        client.stop()
        loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(10)
