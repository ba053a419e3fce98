"""The Kivy kiosk (offscreen) checks in a booking made at home from a scanner's keystrokes, against
the real server: the list is shown without a question, the number is issued, and counter 1 calls
the booked citizen before the walk-ins who came earlier (the priority rule, docs/planning.md).

Screenshots: tests/screenshots/kiosk/scan-*.png.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
os.environ.setdefault("KIVY_HOME", "/tmp/madoguchi-kivy-test")

from kiosk.app import KioskSettings, prepare_kivy  # noqa: E402

prepare_kivy(1920, 1080)

from kivy.base import EventLoop  # noqa: E402
from kivy.core.window import Window  # noqa: E402

from kiosk import flow as F  # noqa: E402
from tests.kiosk.test_flow import DEATH_1  # noqa: E402
from tests.support.booking_config import booking_config_dir, noon_clock  # noqa: E402
from tests.support.live_server import Client, LiveServer  # noqa: E402

pytestmark = pytest.mark.slow
SHOTS = Path(__file__).resolve().parents[2] / "tests" / "screenshots" / "kiosk"


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("scan")
    # three places per 5-minute slot: every booking of this module lands in the slot now starting
    cfg = booking_config_dir(tmp, capacity={"shimin": 3}, all_day=True, slot_minutes=5, min_lead_minutes=0)
    srv = LiveServer(db_url=f"sqlite:///{tmp / 'lobby.db'}", secrets=tmp / "secrets.toml", config_dir=cfg,
                     extra=noon_clock(tmp)).start()  # today's slots, whatever the hour
    yield srv
    srv.kill()


def pump(until, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        EventLoop.idle()
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)
    EventLoop.idle()


def shot(shell, name: str) -> None:
    from PIL import Image

    EventLoop.idle()
    SHOTS.mkdir(parents=True, exist_ok=True)
    texture = shell.root.export_as_image().texture
    Image.frombytes("RGBA", texture.size, texture.pixels).convert("RGB").save(SHOTS / f"{name}.png", compress_level=1)


def type_scan(text: str) -> None:
    """What a keyboard-like QR reader sends: one key per character, then Enter, a few ms apart."""
    for ch in text:
        Window.dispatch("on_key_down", ord(ch) if ord(ch) < 256 else 0, 0, ch, [])
    Window.dispatch("on_key_down", 13, 40, None, [])


async def book_and_walk_ins(live: LiveServer) -> tuple[dict, list[dict]]:
    p, _ = await Client.open(live.url, role="planner", site="honcho")
    body = {"purposes": ["death"], "answers": DEATH_1, "lang": "ja"}
    slots = await p.ok("slots", **body)
    day = slots["days"][0]
    start = next(s["start"] for s in day["slots"] if s["free"] > 0)
    booking = (await p.ok("book", day=day["day"], start=start, **body))["booking"]
    k, _ = await Client.open(live.url, role="kiosk", device="kiosk-2", token=live.tokens().roles["kiosk"], site="honcho")
    walk_ins = [await k.ok("issue", purposes=["death"], answers={}, lang="ja", idempotency_key=f"w-{i}") for i in range(3)]
    await asyncio.gather(p.close(), k.close())
    return booking, walk_ins


async def call_next(live: LiveServer, n: int = 1) -> dict:
    tok = live.tokens().counters["honcho"][n]
    c, _ = await Client.open(live.url, role="counter", site="honcho", counter=n, token=tok, staff="試験")
    await c.ok("open")
    got = await c.ok("call_next")
    await c.close()
    return got["ticket"]


def test_scanned_booking_is_listed_issued_and_called_before_walk_ins(live, tmp_path):
    from kiosk.app import KioskShell

    booking, walk_ins = asyncio.run(book_and_walk_ins(live))
    qr = "http://127.0.0.1:8765/plan/?" + urlencode({
        "site": "honcho", "b": booking["code"], "p": "death",
        "a": ";".join(f"{k}:{v}" for k, v in booking["answers"].items())})
    EventLoop.ensure_window()
    settings = KioskSettings(server=live.url, device="kiosk-scan", token=live.tokens().roles["kiosk"],
                             printer=f"file://{tmp_path / 'ticket.bin'}")
    shell = KioskShell(settings)
    root = shell.build()
    Window.add_widget(root)
    try:
        pump(lambda: shell.state.online)
        assert shell.state.screen is F.Screen.LANGUAGE
        type_scan(qr)
        pump(lambda: shell.state.screen is F.Screen.PLAN and shell.state.waits is not None)
        assert all(screen is not F.Screen.QUESTION for screen, _ in shell.screens_shown)  # nothing asked again
        assert shell.state.plan["purposes"] == ["death"]
        shot(shell, "scan-01-plan-from-booking")
        shell.dispatch(F.TakeNumber())
        pump(lambda: shell.state.screen is F.Screen.DONE, 20)
        shot(shell, "scan-02-done")
        issued = shell.state.issue_result
        assert issued["ticket"]["number"].startswith("R")
        assert issued["plan"]["purposes"] == ["death"]
    finally:
        shell.stop()
        Window.remove_widget(root)
    called = asyncio.run(call_next(live))
    assert called["id"] == issued["ticket"]["id"]  # before the three walk-ins who came earlier
    assert all(w["ticket"]["issued_at"] < issued["ticket"]["issued_at"] for w in walk_ins)


def book_in_browser(live: LiveServer) -> tuple[str, str]:
    """Plan 死亡 on a phone page in Vietnamese and book the first free slot: (QR text, code)."""
    from urllib.parse import parse_qs, urlsplit

    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.web.conftest import ARGS, CHROMIUM
    from tests.web.test_plan import PHONE, answer_all

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_context(viewport=PHONE, locale="vi-VN", timezone_id="Asia/Tokyo").new_page()
        page.goto(f"{live.http}/plan/?site=honcho&lang=vi")
        page.locator("[data-purpose=death]").click()
        page.click("#next")
        answer_all(page, "scan-phone-vi")
        page.locator("#book .slot:not([disabled])").first.click()
        page.click("#book-now")
        page.wait_for_selector("#booking[data-state=booked]")
        code = page.locator("#code").inner_text()
        src = page.locator("#booking-qr").get_attribute("src")  # /plan/qr.svg?t=<what the QR holds>
        browser.close()
    return parse_qs(urlsplit(src).query)["t"][0], code


def test_booked_on_a_phone_in_vietnamese_then_one_scan_at_the_kiosk(live, tmp_path):
    """The issue's whole path: plan and book at home (browser), scan at the kiosk (Kivy), called first."""
    from kiosk.app import KioskShell

    qr, code = book_in_browser(live)
    assert f"b={code}" in qr and "p=death" in qr
    walk_in = asyncio.run(book_and_walk_ins(live))[1]
    EventLoop.ensure_window()
    shell = KioskShell(KioskSettings(server=live.url, device="kiosk-scan-2", token=live.tokens().roles["kiosk"],
                                     printer=f"file://{tmp_path / 'ticket.bin'}"))
    root = shell.build()
    Window.add_widget(root)
    try:
        pump(lambda: shell.state.online)
        type_scan(qr)
        pump(lambda: shell.state.screen is F.Screen.PLAN)
        assert shell.state.reservation_code == code and shell.state.lang == "ja"  # the kiosk's language
        assert all(screen is not F.Screen.QUESTION for screen, _ in shell.screens_shown)
        shell.dispatch(F.TakeNumber())
        pump(lambda: shell.state.screen is F.Screen.DONE, 20)
        issued = shell.state.issue_result
    finally:
        shell.stop()
        Window.remove_widget(root)
    # counter 1 holds the first test's booking; counter 2 (also 市民課) calls this one before the walk-ins
    called = asyncio.run(call_next(live, 2))
    assert called["id"] == issued["ticket"]["id"], (called["number"], issued["ticket"]["number"])
    assert all(w["ticket"]["id"] != called["id"] for w in walk_in)
