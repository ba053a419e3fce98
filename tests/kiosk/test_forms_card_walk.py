"""The seed's 死亡① visit end to end, from the My Number card to the closed visit (issue 15's walk).

Real parts only: the Kivy kiosk (offscreen) reads the virtual card through pcscd + vpcd with the
PIN typed on its own pad, the citizen consents, the ticket is issued with the card's data and the
ticket and procedure list are printed to a file (bytes parsed back); the counter console and the
forms page run in chromium (Playwright) against the real server: the card fields are filled, the
clerk types the deceased's name and date of death once, three forms are printed (A4 PDFs read
back), the next department sees the same values untyped; the visit closes, and no form value is
left in the database or its WAL, the server log (DEBUG), the kiosk's log, or the board's and the
phone's traffic. The forms printed are in the KPI report's 書かない窓口 table.

tests/forms/test_forms_server.py and tests/web/test_forms_web.py send the card data in the issue
request instead: they test what this walk does not (refusals, /metrics, the A4 booklet in English,
no card at all).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
os.environ.setdefault("KIVY_HOME", "/tmp/madoguchi-kivy-test")

from kiosk.app import KioskSettings, prepare_kivy  # noqa: E402

prepare_kivy(1920, 1080)

from kivy.base import EventLoop  # noqa: E402
from kivy.config import Config  # noqa: E402
from kivy.core.window import Window  # noqa: E402

from kiosk import flow as F  # noqa: E402
from kiosk.card import flow as C  # noqa: E402
from tests.kiosk.test_kiosk_ui import Kiosk  # noqa: E402
from tests.kiosk.virtual_card import TEST_ADDRESS, TEST_NAME, TEST_PIN  # noqa: E402
from tests.printers.escpos_reader import parse  # noqa: E402
from tests.support.live_server import Client, LiveServer  # noqa: E402
from tests.web.conftest import as_counter, browser, console_url, context  # noqa: E402, F401
from tests.web.test_forms_web import A4_POINTS, MM, _pdf_text, _shot  # noqa: E402

Config.set("graphics", "maxfps", "0")

pytestmark = [pytest.mark.device, pytest.mark.browser, pytest.mark.slow]

# values no other test uses, so finding their bytes anywhere means they leaked
TYPED = {"deceased_name": "鳥海　記入一郎", "date_of_death": "令和8年11月25日"}
ROUTE = {"shimin": 1, "hoken_nenkin": 5, "kaigo": 6, "shogai": 12, "zeimu": 10, "nouzei": 10, "suido": 11}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    srv = LiveServer(db_url=f"sqlite:///{tmp_path / 'lobby.db'}", secrets=tmp_path / "secrets.toml",
                     log_level="DEBUG").start()
    yield srv
    srv.kill()


@pytest.fixture
def kiosk(live: LiveServer, tmp_path: Path) -> Iterator[Kiosk]:
    """The kiosk with the card reader on and a thermal printer that writes to a file (text mode)."""
    from kiosk.app import KioskShell

    EventLoop.ensure_window()
    settings = KioskSettings(server=live.url, device="kiosk-walk", token=live.tokens().roles["kiosk"], card=True,
                             printer=f"file://{tmp_path / 'roll.bin'}", renderer="kanji", speech=False)
    shell = KioskShell(settings)
    shell.repeat_window = 0.0  # test taps come faster than any hand
    root = shell.build()
    Window.add_widget(root)
    k = Kiosk(shell)
    k.pump(lambda: shell.state.online, 20)
    yield k
    shell.stop()
    Window.remove_widget(root)


class Watchers:
    """A board and the citizen's phone, connected the whole visit on their own event loop (sync
    Playwright owns this thread's), recording every push they get."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="watchers", daemon=True)
        self.thread.start()
        self.clients: list[Client] = []

    def open(self, live: LiveServer, **hello: object) -> Client:
        async def go() -> Client:
            c, r = await Client.open(live.url, site="honcho", **hello)
            assert "result" in r, r
            return c

        c = asyncio.run_coroutine_threadsafe(go(), self.loop).result(30)
        self.clients.append(c)
        return c

    def close(self) -> str:
        """Close every watcher; their pushes as one text."""
        import json

        async def go() -> None:
            for c in self.clients:
                await c.close()

        asyncio.run_coroutine_threadsafe(go(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        return json.dumps([p for c in self.clients for p in c.pushes], ensure_ascii=False)


def _roll_text(path: Path) -> str:
    try:
        return "\n".join(t.text for t in parse(path.read_bytes()).texts)
    except Exception:  # noqa: BLE001 - the printer thread is still writing the job
        return ""


def _forms_page(console) -> str:
    """The forms link of a signed-in console page."""
    href = console.get_attribute("#forms-link", "href")
    assert href.startswith("/forms/?"), href
    return href


def _console(context, live: LiveServer, counter: int, staff: str):  # noqa: F811
    page = context.new_page()
    page.goto(console_url(live, counter))
    page.fill("#staff", staff)
    page.keyboard.press("Enter")
    page.wait_for_selector("#app:not([hidden])")
    return page


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils is not installed (make test-deps)")
def test_death_1_from_the_virtual_card_to_forms_printed_and_nothing_left(live, kiosk, insert_card, context, tmp_path,  # noqa: F811
                                                                        caplog):
    caplog.set_level(logging.DEBUG)
    watch = Watchers()
    watch.open(live, role="display", device="board-walk", token=live.tokens().roles["display"])
    k = kiosk

    # -- the kiosk: 死亡① by touch, then the card (PIN on the kiosk's pad), consent, the number
    k.tap("lang-ja")
    k.tap("purpose-death")
    k.answer_death_1("ja", shots=False)
    k.pump(lambda: k.state.screen is F.Screen.PLAN and k.state.waits is not None, timeout=20)
    k.tap("take-number")
    insert_card()
    k.tap("card-use")
    k.pump(lambda: k.state.card is not None and k.state.card.step is C.Step.ENTER_PIN, timeout=30)
    for d in TEST_PIN:
        k.tap(f"digit-{d}")
    k.tap("pad-ok")
    k.pump(lambda: k.state.card is not None and k.state.card.step is C.Step.CONSENT, timeout=30)
    assert TEST_NAME in k.texts()  # the citizen sees what will be sent
    k.tap("card-send")
    k.wait_screen(F.Screen.DONE, timeout=30)
    issued = k.state.issue_result
    assert issued["prefilled"] is True
    tid = issued["ticket"]["id"]
    assert [s["department"] for s in k.state.plan["steps"]] == list(ROUTE)
    watch.open(live, role="public", ticket=issued["ticket"]["public_token"])

    # -- the roll: the ticket, then the personal list (parsed back from the printer's bytes)
    roll = tmp_path / "roll.bin"
    k.pump(lambda: "期限：" in _roll_text(roll), timeout=30)
    printed = _roll_text(roll)
    assert issued["ticket"]["number"] in printed and "あなたの手続きリスト" in printed
    assert "世帯主変更届" in printed and "葬祭費" in printed and "期限：" in printed
    assert printed.index(issued["ticket"]["number"]) < printed.index("あなたの手続きリスト")  # list after the ticket
    assert TEST_NAME not in printed and TEST_ADDRESS not in printed  # the list carries no card data
    k.tap("finish")
    assert TEST_NAME not in repr(k.state) and TEST_NAME not in k.texts() and k.shell.pin == bytearray()

    # -- 市民課 (counter 1): the console's forms page shows the card's fields filled
    as_counter(live, 1, ("open", {}), ("call", {"ticket": tid}), ("start", {}))
    console = _console(context, live, 1, "佐藤")
    href = _forms_page(console)
    page = context.new_page()
    page.goto(live.http + href)
    page.wait_for_selector(".sheet[data-form=juumin_idou]")
    assert [s.get_attribute("data-form") for s in page.locator(".sheet").all()] == ["juumin_idou", "inkan_haishi"]
    sheet = ".sheet[data-form=juumin_idou]"
    assert page.locator(f"{sheet} [data-field=informant_name] .value").inner_text() == TEST_NAME
    assert page.locator(f"{sheet} [data-field=informant_address] .value").inner_text() == TEST_ADDRESS
    assert page.locator("#no-card").is_hidden()  # the card was read: no "write by hand" note
    missing = page.locator(f"{sheet} [data-field=deceased_name]")
    assert "missing" in missing.get_attribute("class") and missing.locator(".value").inner_text() == ""
    page.screenshot(path=str(_shot("walk-card-shimin-before")), full_page=True)

    # typed once, for every form of the visit
    page.fill("input[name=deceased_name]", TYPED["deceased_name"])
    page.fill("input[name=date_of_death]", TYPED["date_of_death"])
    page.click("#save")
    page.wait_for_function(
        "t => document.querySelector('.sheet[data-form=inkan_haishi] [data-field=deceased_name] .value').textContent === t",
        arg=TYPED["deceased_name"])
    audit = page.locator("#audit").inner_text()
    assert "佐藤" in audit and TYPED["deceased_name"] not in audit  # who, never what

    pdfs = {}
    for form in ("juumin_idou", "inkan_haishi"):
        one = context.new_page()
        one.goto(live.http + href + f"&form={form}")
        one.wait_for_function(
            "([f, t]) => document.querySelector(`.sheet[data-form=${f}] [data-field=deceased_name] .value`)?.textContent === t",
            arg=[form, TYPED["deceased_name"]])
        one.evaluate("window.__forms.markPrinted()")
        pdfs[form] = _pdf_text(one.pdf(format="A4", print_background=True), tmp_path, f"walk-{form}")
        one.close()
    as_counter(live, 1, ("complete", {}))
    page.wait_for_function("document.querySelectorAll('.sheet').length === 0")  # left counter 1: values dropped

    # -- 国保年金課 (counter 5): the same values, nothing typed; the third form printed
    as_counter(live, 5, ("open", {}), ("call", {"ticket": tid}), ("start", {}))
    console5 = _console(context, live, 5, "鈴木")
    nxt = context.new_page()
    nxt.goto(live.http + _forms_page(console5))
    nxt.wait_for_selector(".sheet[data-form=sousaihi]")
    sousaihi = ".sheet[data-form=sousaihi]"
    assert nxt.locator(f"{sousaihi} [data-field=deceased_name] .value").inner_text() == TYPED["deceased_name"]
    assert nxt.locator("input[name=date_of_death]").input_value() == TYPED["date_of_death"]
    assert nxt.locator(f"{sousaihi} [data-field=applicant_name] .value").inner_text() == TEST_NAME
    assert nxt.locator(f"{sousaihi} [data-field=applicant_birth] .value").inner_text() == "1980年2月17日"
    assert "佐藤" in nxt.locator("#audit").inner_text()  # who entered them, shown to the next department
    nxt.screenshot(path=str(_shot("walk-card-hoken-nenkin")), full_page=True)
    one = context.new_page()
    one.goto(nxt.url + "&form=sousaihi")
    one.wait_for_selector(f"{sousaihi} [data-field=deceased_name] .value:text('{TYPED['deceased_name']}')")
    one.evaluate("window.__forms.markPrinted()")
    pdfs["sousaihi"] = _pdf_text(one.pdf(format="A4", print_background=True), tmp_path, "walk-sousaihi")
    one.close()

    for form, (info, text) in pdfs.items():
        size = next(line for line in info.splitlines() if line.startswith("Page size:"))
        w, h = (float(x) for x in size.split(":")[1].split("pts")[0].split("x"))
        assert abs(w - A4_POINTS[0]) < MM / 2 and abs(h - A4_POINTS[1]) < MM / 2, (form, size)
        assert "Pages:           1" in info, (form, info)
        flat = text.replace(" ", "").replace("\u3000", "")
        assert TEST_NAME.replace("\u3000", "") in flat, form  # from the card
        assert TYPED["deceased_name"].replace("\u3000", "") in flat, form  # typed once at 市民課
        assert TYPED["date_of_death"] in flat, form
    assert TEST_ADDRESS in pdfs["juumin_idou"][1].replace(" ", "")

    # -- the rest of the route, until the visit closes
    as_counter(live, 5, ("complete", {}))
    for n in (6, 12, 10, 10, 11):
        as_counter(live, n, ("open", {}), ("call", {"ticket": tid}), ("start", {}), ("complete", {}))
    nxt.wait_for_function("document.querySelectorAll('.sheet').length === 0")

    # the KPI report counts the printed forms (from the event log: counts only)
    from queue_server.config import load_city
    from queue_server.kpi import KpiContext, report_for, today
    from queue_server.storage import make_engine

    engine = make_engine(live.db_url)
    try:
        rep = report_for(engine, KpiContext.from_city(load_city(), "honcho"), "honcho",
                         today() - dt.timedelta(days=1), today())
    finally:
        engine.dispose()
    figures = {r[0]: r[2] for r in rep.tables["forms"].rows}
    assert figures["forms_visits_printed"] == 1 and figures["forms_printed"] == 3 and figures["kakanai_rate"] == 1.0
    assert figures["fields_card"] >= 6 and figures["fields_typed"] >= 6  # name and address on each of the three

    traffic = watch.close()
    assert '"call"' in traffic  # the board and the phone did hear the visit
    live.stop()  # SIGTERM: the server closes its database
    db = tmp_path / "lobby.db"
    con = sqlite3.connect(db)
    assert con.execute("SELECT closed FROM tickets WHERE id = ?", (tid,)).fetchone() == ("done",)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("lobby.db")]
    blob = b"".join(p.read_bytes() for p in files)
    server_log = "".join(live.log)
    kiosk_log = "\n".join(f"{r.getMessage()} {r.args!r}" for when in ("setup", "call")
                          for r in caplog.get_records(when))  # type: ignore[arg-type]
    for v in [*TYPED.values(), TEST_NAME, TEST_ADDRESS]:
        assert v.encode() not in blob, f"{v} found in {[p.name for p in files]}"
        assert v not in server_log and v not in traffic and v not in kiosk_log, v
    assert TEST_PIN not in kiosk_log and TEST_PIN not in server_log


def test_a_card_read_that_fails_leaves_the_forms_to_be_filled_by_hand_with_a_note(live, kiosk, insert_card,
                                                                                 context):  # noqa: F811
    """Bad input: the card on the reader is not a My Number card. The kiosk says so, the citizen
    goes on without it, and the forms page shows the card fields empty and marked, with the note."""
    k = kiosk
    k.tap("lang-ja")
    k.tap("purpose-death")
    k.answer_death_1("ja", shots=False)
    k.pump(lambda: k.state.screen is F.Screen.PLAN and k.state.waits is not None, timeout=20)
    k.tap("take-number")
    insert_card(has_ap=False)  # some other IC card: no My Number application on it
    k.tap("card-use")
    k.pump(lambda: k.state.card is not None and k.state.card.step is C.Step.FAILED, timeout=30)
    assert "マイナンバーカードではないようです" in k.texts()
    k.tap("card-skip")
    k.wait_screen(F.Screen.DONE, timeout=30)
    issued = k.state.issue_result
    assert issued["prefilled"] is False
    k.tap("finish")

    as_counter(live, 2, ("open", {}), ("call", {"ticket": issued["ticket"]["id"]}), ("start", {}))
    page = context.new_page()
    page.goto(live.http + _forms_page(_console(context, live, 2, "田中")))
    page.wait_for_selector(".sheet[data-form=juumin_idou]")
    assert page.locator("#no-card").is_visible() and "手書き" in page.locator("#no-card").inner_text()
    for field in ("informant_name", "informant_address"):
        cell = page.locator(f".sheet[data-form=juumin_idou] [data-field={field}]")
        assert "missing" in cell.get_attribute("class") and cell.locator(".value").inner_text() == ""
    assert page.locator(".sheet[data-form=juumin_idou] [data-field=remaining] .value").inner_text() == "3"  # answers
    page.screenshot(path=str(_shot("walk-card-failed")), full_page=True)
    as_counter(live, 2, ("complete", {}))
