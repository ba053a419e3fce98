"""The Kivy kiosk while the server cannot save tickets (issue 12): it says so on every screen,
holds the citizen's ticket on a clear page instead of failing, and issues it once storage works."""

from __future__ import annotations

import asyncio
import threading

import pytest

from kiosk import flow as F
from queue_server import writer as W
from queue_server.storage import Store
from tests.kiosk.test_kiosk_ui import Kiosk, KioskSettings, Window, window  # noqa: F401  (fixture)
from tests.queue_server.writer_support import InProcess, make_server
from tests.support.live_server import Client

pytestmark = pytest.mark.slow


def test_kiosk_stops_issuing_with_a_clear_message_and_issues_once_storage_works(tmp_path, monkeypatch):
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
    from kiosk.app import KioskShell

    settings = KioskSettings(server=srv.url, device="kiosk-st", token=qs.tokens.roles["kiosk"], printer=None)
    shell = KioskShell(settings)
    shell.repeat_window = 0.0
    root = shell.build()
    Window.add_widget(root)
    k = Kiosk(shell)
    try:
        k.pump(lambda: k.state.online)
        full.set()
        store.fail_after = 1

        async def refused():  # another kiosk's issue meets the full disk
            c, _ = await Client.open(srv.url, role="kiosk", device="k-other", token=qs.tokens.roles["kiosk"])
            r = await c.request("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key="o1")
            await c.close()
            return r

        assert asyncio.run(refused())["error"]["code"] == "storage_error"
        k.pump(lambda: not k.state.storage_ok)
        assert "ただいま番号札を発行できません" in k.texts()  # said before any question is answered
        k.shot("ja-13-storage-failing-start")
        k.tap("lang-en")
        k.tap("purpose-death")
        k.answer_death_1("en", shots=False)
        k.tap("take-number")
        assert k.state.screen is F.Screen.OFFLINE and k.state.pending_key
        assert "Numbers cannot be issued right now" in k.texts()
        k.shot("en-13-storage-failing-held")
        full.clear()  # space freed: the probe succeeds, the server says so, the held ticket goes out
        k.wait_screen(F.Screen.DONE, timeout=20)
        assert k.state.issue_result["ticket"]["number"] == "1"
        assert qs.writer.storage.errors == {"disk_full": 1}  # the held ticket never met the full disk
    finally:
        shell.stop()
        Window.remove_widget(root)
        srv.stop()
