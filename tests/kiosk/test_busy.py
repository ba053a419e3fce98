"""A kiosk meeting an overloaded server (issue 20): the client retries ``busy`` answers with the
same idempotency key, backed off with jitter; after a few, the citizen is told it is busy (in
their language, no code); when the server admits the request again, exactly one ticket exists."""

from __future__ import annotations

import time

from kiosk import flow as F
from kiosk.client import BUSY_MAX_DELAY, BUSY_NOTICE, KioskClient, busy_delay
from queue_server.core.admission import Bounds
from queue_server.server import QueueServer
from queue_server.storage import Store
from tests.queue_server.writer_support import InProcess, make_server

from .test_flow import DEATH_1, answer_all, catalogue, make, run  # noqa: F401  (fixture)


def test_the_delay_follows_the_hint_doubles_and_is_jittered():
    assert busy_delay(0.5, 0, lambda: 0.0) == 0.5
    assert busy_delay(0.5, 0, lambda: 0.999) == 0.5 * 1.999
    assert busy_delay(0.5, 2, lambda: 0.0) == 2.0
    assert busy_delay(0.5, 9, lambda: 0.0) == 4.0  # doubling stops at 8×
    assert busy_delay(5.0, 9, lambda: 0.5) == BUSY_MAX_DELAY


def test_the_issuing_screen_says_it_is_busy_and_still_issues_once(catalogue):  # noqa: F811
    kiosk, s = make(catalogue)
    s, _ = run(kiosk, s, F.Connected(), F.ChooseLanguage("en"), F.ChoosePurpose("death"))
    s, _ = answer_all(kiosk, s, DEATH_1)
    s, _ = run(kiosk, s, F.TakeNumber())
    assert s.screen is F.Screen.ISSUING and s.notice is None
    key = s.pending_key
    s, _ = run(kiosk, s, F.IssueBusy("another-key"))
    assert s.notice is None  # not this citizen's ticket
    s, _ = run(kiosk, s, F.IssueBusy(key))
    assert s.screen is F.Screen.ISSUING and s.notice == "issuing.busy"
    s, _ = run(kiosk, s, F.IssueSucceeded(key, {"ticket": {"number": "7"}}))
    assert s.pending_key is None and s.screen in (F.Screen.PRINTING, F.Screen.DONE)


def test_the_client_retries_busy_with_its_key_and_gets_one_ticket(tmp_path):
    qs = make_server(tmp_path, cls=QueueServer)
    srv = InProcess(qs)
    events: list = []
    client = KioskClient(srv.url, "kiosk-b", qs.tokens.roles["kiosk"], events.append, site="honcho",
                         backoff=(0.05,), request_timeout=10.0)

    def wait(pred, what):
        end = time.monotonic() + 30  # a guard against hanging, never the measure of the test
        while not pred() and time.monotonic() < end:
            time.sleep(0.01)
        assert pred(), f"{what}: {events}"

    client.start()
    try:
        wait(lambda: client.online, "online")
        qs.admission = Bounds(max_queue=0, max_wait=0.0)  # every issue is shed
        client.issue({"purposes": ["certificate"], "answers": {}, "lang": "ja", "idempotency_key": "kiosk-b-1"})
        wait(lambda: any(isinstance(e, F.IssueBusy) for e in events), "told busy")
        assert qs.metrics.busy["issue"] >= BUSY_NOTICE
        assert not any(isinstance(e, F.IssueSucceeded | F.IssueFailed) for e in events)
        qs.admission = Bounds()
        wait(lambda: any(isinstance(e, F.IssueSucceeded) for e in events), "issued")
        (done,) = [e for e in events if isinstance(e, F.IssueSucceeded)]
        assert [type(e) for e in events].count(F.IssueBusy) == 1
        assert done.result["ticket"]["number"] == "1"
    finally:
        client.stop()
        srv.stop()
    stored = Store(qs.store.url).load_tickets("honcho", qs.hubs["honcho"].day)
    assert [t.id for t in stored] == [done.result["ticket"]["id"]]
