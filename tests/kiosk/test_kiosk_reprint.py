"""A ticket that did not print, end to end: the Kivy kiosk (offscreen) prints on a fake network
printer that goes offline during the job, the real server flags the ticket, the staff console in
chromium shows it "not printed", staff press 「番号札を再印刷」 once the printer is back, and the same
kiosk prints it again — the bytes parsed back hold the same number and the same QR.

Screenshots: tests/screenshots/web/console-not-printed.png, console-reprinted.png."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk import flow as F
from tests.kiosk.test_kiosk_ui import Kiosk, KioskSettings, Window, window  # noqa: F401  (fixture)
from tests.printers import fake_printer as fp
from tests.printers.escpos_reader import parse
from tests.support.live_server import Client, LiveServer
from tests.web.conftest import ARGS, CHROMIUM, console_url, shot

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    d = tmp_path_factory.mktemp("reprint-ui")
    srv = LiveServer(db_url=f"sqlite:///{d / 'lobby.db'}", secrets=d / "secrets.toml").start()
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def page(live: LiveServer):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which(CHROMIUM) or CHROMIUM, headless=True, args=ARGS)
        ctx = b.new_context(viewport={"width": 1600, "height": 900}, locale="ja-JP", timezone_id="Asia/Tokyo")
        yield ctx.new_page()
        ctx.close()
        b.close()


def _kiosk(live: LiveServer, printer: str, device: str) -> Kiosk:
    from kiosk.app import KioskShell

    settings = KioskSettings(server=live.url, device=device, token=live.tokens().roles["kiosk"], printer=printer,
                             renderer="kanji", printer_timeout=5.0, speech=False)
    shell = KioskShell(settings)
    shell.repeat_window = 0.0
    Window.add_widget(shell.build())
    k = Kiosk(shell)
    k.pump(lambda: shell.state.online, 20)
    return k


def _stop(k: Kiosk) -> None:
    k.shell.stop()
    Window.remove_widget(k.shell.root)


def _mute_kiosk(live: LiveServer, device: str, connected: threading.Event, leave: threading.Event) -> None:
    """A kiosk connection that takes pushes and answers none (in its own thread and loop)."""
    async def go() -> None:
        c, r = await Client.open(live.url, role="kiosk", device=device, token=live.tokens().roles["kiosk"],
                                 site="honcho")
        assert "result" in r, r
        connected.set()
        while not leave.is_set():
            await asyncio.sleep(0.05)
        await c.close()

    asyncio.run(go())


def _qr(data: bytes) -> list[str]:
    from pyzbar.pyzbar import decode

    return [d.data.decode() for img in parse(data).rasters for d in decode(img.convert("L"))]


def test_a_ticket_that_went_offline_mid_job_is_flagged_and_reprinted_from_the_console(live, page):
    # answers "ready", reads the job, then reports itself offline: the ticket did not come out whole
    printer = fp.FakePrinter(status=dict(fp.NORMAL), change_after=2_000, status_later=dict(fp.OFFLINE))
    k = _kiosk(live, printer.url, "kiosk-rp")
    try:
        k.tap("lang-ja")
        k.tap("purpose-certificate")
        k.tap("choice-nouzei")
        k.tap("answer-next")
        k.pump(lambda: k.state.screen is F.Screen.PLAN)
        k.tap("take-number")
        k.wait_screen(F.Screen.DONE, 30)
        assert k.state.print_error == "error.offline" and not k.state.printed
        result = k.state.issue_result
        tid, number, url = result["ticket"]["id"], result["ticket"]["number"], result["ticket"]["status_url"]
        first = bytes(printer.received)
        assert number in "\n".join(t.text for t in parse(first).texts)  # it was sent, then the printer failed

        # the console of a counter that serves the ticket: flagged in its list (from the hello snapshot)
        counter = result["route"][0]["counters"][0]
        page.goto(console_url(live, counter))
        page.fill("#staff", "佐藤")
        page.keyboard.press("Enter")
        page.wait_for_selector("#app:not([hidden])")
        page.wait_for_function("window.__console.counter && window.__console.counter.state === 'open'")
        item = page.wait_for_selector(f'#not-printed-list li[data-ticket="{tid}"]', timeout=20_000)
        text = item.inner_text()
        assert number in text and "kiosk-rp" in text and "オフライン" in text
        admin = page.context.new_page()  # the admin's live view says so too
        admin.goto(f"{live.http}/admin/?token={live.tokens().roles['admin']}")
        admin.wait_for_selector("#not-printed-live:not([hidden])")
        assert number in admin.locator("#not-printed-live").inner_text().split("：")[-1].split("、")
        shot(admin, "admin-not-printed")

        # still offline: the reprint fails, and the console says so with the reason
        page.locator(f'#not-printed-list li[data-ticket="{tid}"] button.reprint').click()
        outcome = f"document.querySelector('#message').textContent.startsWith('{number} の番号札を')"
        k.pump(lambda: page.evaluate(outcome), timeout=60)
        message = page.locator("#message").inner_text()
        assert message == f"{number} の番号札を発券機 kiosk-rp で印刷できませんでした：プリンターがオフライン", message
        assert page.locator(f'#not-printed-list li[data-ticket="{tid}"]').count() == 1  # still flagged

        # call it to the counter: the ticket there is marked, with the same action beside its number
        page.locator("body").focus()
        page.keyboard.press("n")
        page.wait_for_selector("#current-not-printed")
        assert page.locator("#current-number").inner_text() == number
        button = page.locator("#reprint-current")
        assert button.inner_text() == "番号札を再印刷"
        page.wait_for_function("!document.querySelector('#reprint-current').disabled")
        shot(page, "console-not-printed")

        # staff put the printer back online and press it: the same kiosk prints it again
        printer.change_after = None
        printer.received.clear()
        button.click()
        reprinted = "document.querySelector('#message').textContent.endsWith('で再印刷しました')"
        k.pump(lambda: page.evaluate(reprinted), timeout=60)
        assert page.locator("#message").inner_text() == f"{number} の番号札を発券機 kiosk-rp で再印刷しました"
        assert page.locator("#not-printed").is_hidden() and page.locator("#current-not-printed").count() == 0
        admin.wait_for_selector("#not-printed-live", state="hidden")  # by push, no reload
        again = bytes(printer.received)
        lines = [t.text for t in parse(again).texts]
        assert number in lines, lines  # the same number, big, on its own line
        assert _qr(again) == [url]  # the same QR: the citizen's status page
        assert result["route"][0]["name"]["ja"] in "\n".join(lines)  # the route is on it
        assert k.state.screen is F.Screen.DONE and k.state.printed  # the citizen's own screen caught up
        shot(page, "console-reprinted")

        # with no kiosk connected the console says so at once, naming what to check
        _stop(k)
        no_kiosk = "接続している発券機がありません。発券機の電源とネットワークを確認してください"
        for _ in range(100):  # until the server has dropped the kiosk's closed connection (soon)
            button.click()
            page.wait_for_function("!window.__console.reprinting")
            if page.locator("#message").inner_text() == no_kiosk:
                break
            page.wait_for_timeout(100)
        assert page.locator("#message").inner_text() == no_kiosk
        shot(page, "console-reprint-no-kiosk")

        # another kiosk is connected but never answers (it went away with the job): the console
        # sends it there, says the issuing kiosk is not connected, and then that no answer came
        connected, leave = threading.Event(), threading.Event()
        mute = threading.Thread(target=_mute_kiosk, args=(live, "kiosk-mute", connected, leave), daemon=True)
        mute.start()
        try:
            assert connected.wait(20)
            page.evaluate("""() => {
                window.__console.answerWithin = 300;
                window.__said = [];  // every text of the message line, in order
                const m = document.querySelector('#message');
                new MutationObserver(() => window.__said.push(m.textContent))
                    .observe(m, { childList: true, characterData: true, subtree: true });
            }""")
            button.click()
            page.wait_for_function("window.__said.some((x) => x.startsWith('発券機 kiosk-mute から'))")
            said = list(dict.fromkeys(page.evaluate("window.__said")))
            assert said == [f"発行した発券機 kiosk-rp が接続していないため、{number} を発券機 kiosk-mute で印刷しています…",
                            f"発券機 kiosk-mute から {number} の印刷結果が届きません。発券機とプリンターを確認してください"]
        finally:
            leave.set()
            mute.join(10)
    finally:
        if k.shell.root.parent is not None:
            _stop(k)
        printer.close()


def _two_kiosks(live: LiveServer, ready: dict, leave: threading.Event) -> None:
    """kiosk-a, whose printer ran out of paper on the ticket it issued, and kiosk-b, whose printer
    works: both stay connected (in their own thread and loop) and keep the reprint jobs they get."""
    async def go() -> None:
        tok = live.tokens().roles["kiosk"]
        a, _ = await Client.open(live.url, role="kiosk", device="kiosk-a", token=tok, site="honcho")
        b, _ = await Client.open(live.url, role="kiosk", device="kiosk-b", token=tok, site="honcho")
        issued = await a.ok("issue", purposes=["certificate"], answers={}, lang="ja",
                            idempotency_key="two-kiosks-1")
        await a.ok("print_result", ticket=issued["ticket"]["id"], printed=False, code="paper_out")
        ready.update(issued=issued, jobs={"kiosk-a": a, "kiosk-b": b})
        ready["event"].set()
        while not leave.is_set():
            await asyncio.sleep(0.05)
        for c in (a, b):
            await c.close()

    asyncio.run(go())


def test_a_reprint_goes_to_a_kiosk_whose_printer_works_or_to_the_one_staff_choose(live, page):
    ready, leave = {"event": threading.Event()}, threading.Event()
    kiosks = threading.Thread(target=_two_kiosks, args=(live, ready, leave), daemon=True)
    kiosks.start()
    try:
        assert ready["event"].wait(20)
        ticket = ready["issued"]["ticket"]
        tid, number = ticket["id"], ticket["number"]
        page.goto(console_url(live, ready["issued"]["route"][0]["counters"][0]))
        page.fill("#staff", "佐藤")
        page.keyboard.press("Enter")
        page.wait_for_selector(f'#not-printed-list li[data-ticket="{tid}"]', timeout=20_000)
        # the choice lists the connected kiosks with their printers (from the hello), automatic first
        options = page.locator("#reprint-kiosk option").all_inner_texts()
        assert options[0] == "自動（プリンターが使える発券機）", options
        # (the kiosks of the test before may still be listed while the server notices they left)
        assert [o for o in options if o.startswith(("kiosk-a", "kiosk-b"))] == ["kiosk-a（用紙切れ）", "kiosk-b"], options
        assert page.locator("label[for=reprint-kiosk]").inner_text() == "印刷する発券機"

        # automatic: not back to kiosk-a, out of paper, but to kiosk-b, and the console says why
        page.locator(f'#not-printed-list li[data-ticket="{tid}"] button.reprint').click()
        page.wait_for_function("!window.__console.reprinting")
        assert page.locator("#message").inner_text() == (
            f"発行した発券機 kiosk-a のプリンターが使えないため（用紙切れ）、{number} を発券機 kiosk-b で印刷しています…")
        shot(page, "console-reprint-elsewhere")
        jobs = ready["jobs"]
        assert [p["data"]["result"]["ticket"]["number"] for p in jobs["kiosk-b"].pushes
                if p.get("push") == "reprint"] == [number]

        # staff refilled kiosk-a and choose it: the job goes there, as asked
        page.select_option("#reprint-kiosk", "kiosk-a")
        page.locator(f'#not-printed-list li[data-ticket="{tid}"] button.reprint').click()
        page.wait_for_function("!window.__console.reprinting")
        assert page.locator("#message").inner_text() == f"{number} を発券機 kiosk-a で印刷しています…"
        for _ in range(100):  # (the push crosses the other thread's loop)
            if [p for p in jobs["kiosk-a"].pushes if p.get("push") == "reprint"]:
                break
            page.wait_for_timeout(50)
        assert [p["data"]["result"]["ticket"]["number"] for p in jobs["kiosk-a"].pushes
                if p.get("push") == "reprint"] == [number]

        # a kiosk switched on now joins the choice, and leaves it when it goes (by push, no reload)
        connected, gone = threading.Event(), threading.Event()
        third = threading.Thread(target=_mute_kiosk, args=(live, "kiosk-c", connected, gone), daemon=True)
        third.start()
        assert connected.wait(20)
        page.wait_for_selector('#reprint-kiosk option[value="kiosk-c"]', state="attached", timeout=10_000)
        assert page.locator("#reprint-kiosk").input_value() == "kiosk-a"  # staff's choice is kept
        gone.set()
        third.join(10)
        page.wait_for_selector('#reprint-kiosk option[value="kiosk-c"]', state="detached", timeout=10_000)
    finally:
        leave.set()
        kiosks.join(10)
