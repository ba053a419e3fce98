"""Issue 12 in the browser: a console says plainly that tickets cannot be saved, and a board whose
history the server cannot replay rebuilds from the snapshot instead of silently dropping calls."""

from __future__ import annotations

import threading

import pytest

from queue_server import writer as W
from queue_server.storage import Store
from tests.queue_server.writer_support import InProcess, make_server
from tests.support.live_server import Client, LiveServer
from tests.web.conftest import as_counter, board_url, console_url, issue, run, shot

pytestmark = pytest.mark.browser


def test_console_shows_tickets_cannot_be_saved_until_storage_works_again(tmp_path, context, monkeypatch):
    monkeypatch.setattr(W, "PROBE_INTERVAL", 0.2)
    qs = make_server(tmp_path)
    store = qs.store
    full = threading.Event()

    def probe():
        if full.is_set():
            raise OSError("still full")
        Store.probe(store)

    store.probe = probe  # type: ignore[method-assign]
    srv = InProcess(qs)
    try:
        page = context.new_page()
        page.goto(console_url(srv, 1))
        page.fill("#staff", "佐藤")
        page.keyboard.press("Enter")
        page.wait_for_selector("#app:not([hidden])")
        assert page.locator("#storage").is_hidden()
        full.set()
        store.fail_after = 1

        async def refused():
            k, _ = await Client.open(srv.url, role="kiosk", device="k", token=srv.tokens().roles["kiosk"], site="honcho")
            r = await k.request("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key="x")
            await k.close()
            return r

        assert run(refused())["error"]["code"] == "storage_error"
        banner = page.locator("#storage")
        banner.wait_for(state="visible", timeout=5000)
        assert "受付を保存できません" in banner.inner_text() and "ディスクが満杯" in banner.inner_text()
        shot(page, "console-storage-failing")
        full.clear()  # space freed: the server's probe succeeds and tells every console
        banner.wait_for(state="hidden", timeout=5000)
        assert issue(srv)["ticket"]["number"] == "1"
    finally:
        srv.stop()


def test_board_rebuilds_from_the_snapshot_when_its_history_cannot_be_replayed(tmp_path, context):
    """The server comes back on another database (seqs start again): the board must not drop the
    new calls as "already seen" because an old call had the same seq."""
    secrets = tmp_path / "secrets.toml"
    first = LiveServer(db_url=f"sqlite:///{tmp_path / 'a.db'}", secrets=secrets).start()
    second = None
    try:
        board = context.new_page()
        board.goto(board_url(first, mute="1"))
        board.wait_for_function("window.__link && window.__link.state === 'online'")
        old = [issue(first)["ticket"] for _ in range(4)]  # seq 1-4
        for n, t in enumerate(old, start=1):  # open and call: calls at seq 6, 8, 10, 12
            as_counter(first, n, ("open", {}), ("call", {"ticket": t["id"]}))
        board.wait_for_selector(f'.call-card[data-number="{old[-1]["number"]}"]', timeout=3000)
        board.wait_for_function("window.__link.lastSeq >= 12", timeout=3000)
        port = first.port
        first.kill()
        board.wait_for_selector("#offline:not([hidden])", timeout=5000)
        second = LiveServer(db_url=f"sqlite:///{tmp_path / 'b.db'}", secrets=secrets).start(port=port)
        t0, t1, t2 = (issue(second)["ticket"] for _ in range(3))  # seq 1-3, numbers 1-3 again
        as_counter(second, 2, ("open", {}), ("call", {"ticket": t2["id"]}))  # seq 4, 5
        board.wait_for_selector("#offline", state="hidden", timeout=40000)
        board.wait_for_selector(f'.call-card[data-number="{t2["number"]}"][data-counter="2"]', timeout=5000)
        hello = board.evaluate("window.__link.lastHello")
        assert hello["lastSeqSent"] >= 12 and hello["missed"] == 0
        assert board.evaluate("window.__link.lastSeq") < 12  # it starts over from the new server's seq
        shot(board, "board-history-truncated")
        # a later call at seq 8, the seq of an old call at counter 2: shown, not taken for the old one
        as_counter(second, 2, ("start", {}), ("complete", {}), ("call", {"ticket": t1["id"]}))
        board.wait_for_selector(f'.call-card[data-number="{t1["number"]}"][data-counter="2"]', timeout=5000)
    finally:
        if second is not None:
            second.kill()
        first.kill()
