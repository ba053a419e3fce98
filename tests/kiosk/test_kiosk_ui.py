"""The Kivy kiosk under SDL_VIDEODRIVER=offscreen, driven by simulated touches, against the real
server on a loopback port: the whole 死亡① visit, the offline path, the printer-failure path.

Every screen is saved as a PNG under tests/screenshots/kiosk/ (git-ignored) in ja and en, with
one in large-text mode, one in high contrast and one in portrait: look at them after a change.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
os.environ.setdefault("KIVY_HOME", "/tmp/madoguchi-kivy-test")

from kiosk.app import KioskSettings, prepare_kivy  # noqa: E402

prepare_kivy(1920, 1080)

from kivy.config import Config  # noqa: E402

Config.set("graphics", "maxfps", "0")  # tests pump frames themselves: no 60 fps pacing sleeps

from kivy.base import EventLoop  # noqa: E402
from kivy.core.window import Window  # noqa: E402
from kivy.tests.common import UnitTestTouch  # noqa: E402

from kiosk import flow as F  # noqa: E402
from kiosk.card import flow as C  # noqa: E402
from kiosk.screens.widgets import MIN_TARGET_PX, BigButton  # noqa: E402
from tests.kiosk.test_flow import DEATH_1  # noqa: E402
from tests.support.live_server import Client, LiveServer  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "tests" / "screenshots" / "kiosk"
STAFF_PIN = "2468"


# ------------------------------------------------------------------ fixtures and helpers
@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    d = tmp_path_factory.mktemp("kiosk-server")
    srv = LiveServer(db_url=f"sqlite:///{d / 'lobby.db'}", secrets=d / "secrets.toml").start()

    async def open_counters():  # open counters, so the lists show real wait estimates
        for n in (1, 5, 6, 7, 10, 11):
            c, r = await Client.open(srv.url, role="counter", site="honcho", counter=n,
                                     token=srv.tokens().counters["honcho"][n], staff="テスト")
            await c.ok("open")
            await c.close()

    run(open_counters())
    yield srv
    srv.kill()


@pytest.fixture(scope="module", autouse=True)
def window() -> Iterator[None]:
    EventLoop.ensure_window()
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield


class Kiosk:
    """A KioskShell in the offscreen window, with touch and screenshot helpers."""

    def __init__(self, shell):
        self.shell = shell

    @property
    def state(self) -> F.KioskState:
        return self.shell.state

    def pump(self, until: Callable[[], bool] = lambda: True, timeout: float = 10.0, frames: int = 2) -> None:
        deadline = time.monotonic() + timeout
        while True:
            EventLoop.idle()
            if until():
                for _ in range(frames):
                    EventLoop.idle()
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out on screen {self.state.screen}: {self.state.notice}")
            time.sleep(0.005)

    def buttons(self) -> list[BigButton]:
        return [w for w in self.shell.root.walk(restrict=True) if isinstance(w, BigButton)]

    def button(self, name: str) -> BigButton:
        found = [b for b in self.buttons() if b.name == name]
        assert found, f"no button {name!r} on {self.state.screen}: {[b.name for b in self.buttons()]}"
        return found[0]

    def texts(self) -> str:
        return "\n".join(getattr(w, "plain", "") for w in self.shell.root.walk(restrict=True))

    def tap(self, name: str) -> None:
        """A real touch at the button's centre, through the window's input dispatch."""
        EventLoop.idle()  # lay out a page built since the last frame, so the centre is real
        EventLoop.idle()
        b = self.button(name)
        x, y = b.to_window(*b.center)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        touch.touch_up()
        self.pump(frames=1)

    def wait_screen(self, screen: F.Screen, timeout: float = 10.0) -> None:
        self.pump(lambda: self.state.screen is screen, timeout)

    def shot(self, name: str) -> Path:
        EventLoop.idle()
        path = SHOTS / f"{name}.png"
        # export_as_image + Pillow: Kivy's own PNG writer takes ~1.5 s a screen, this ~0.1 s
        from PIL import Image

        texture = self.shell.root.export_as_image().texture
        img = Image.frombytes("RGBA", texture.size, texture.pixels)
        img.convert("RGB").save(path, compress_level=1)
        self.check_targets()
        return path

    def check_targets(self) -> None:
        for b in self.buttons():
            assert b.height >= MIN_TARGET_PX and b.width >= MIN_TARGET_PX, (b.name, b.size)
        self.check_wording()
        self.check_inside()

    def check_inside(self) -> None:
        """Nothing spills off the screen (a column too full pushes its top over the language bar),
        except what a scroll view holds."""
        from kivy.uix.scrollview import ScrollView

        if self.shell.overlay is not None:
            return
        top = Window.height
        bar = [b for b in self.buttons() if b.name.startswith("lang-")] if self.state.screen is not F.Screen.LANGUAGE else []
        if bar:  # the language bar: the page body starts below it
            top = min(b.to_window(b.x, b.y)[1] for b in bar)
        bar_ids = {id(b) for b in bar}
        for w in self.shell.page.walk(restrict=True):
            if id(w) in bar_ids:
                continue
            if not (isinstance(w, BigButton) or getattr(w, "plain", "")) or w.height <= 0:
                continue
            parent, scrolled = w.parent, False
            while parent is not None and parent is not self.shell.root and not scrolled:
                scrolled = isinstance(parent, ScrollView)
                parent = parent.parent
            if scrolled:
                continue
            x, y = w.to_window(w.x, w.y)
            assert y >= -2 and y + w.height <= top + 2, (self.state.screen, getattr(w, "plain", ""), y, w.height)

    def drawn_lines(self) -> list[tuple[str, list[str]]]:
        """Each label's lines as Kivy laid them out (after our kinsoku breaks and its own wrap)."""
        out = []
        for w in self.shell.root.walk(restrict=True):
            core = getattr(w, "_label", None)
            if not getattr(w, "plain", "") or core is None or not w.text:
                continue
            w.texture_update()
            lines = ["".join(word.text for word in line.words) for line in getattr(core, "_cached_lines", [])]
            out.append((w.plain, [ln for ln in lines if ln.strip()]))
        return out

    def check_wording(self) -> None:
        """No internal code on a citizen's screen, and no line that breaks a kinsoku rule."""
        from printers.linebreak import violations

        texts = self.texts()
        assert "{" not in texts and "}" not in texts, texts  # ruby markup or a format field
        assert not re.search(r"(?<![\w/.])[a-z][a-z0-9]*_[a-z0-9_]+\b", texts), texts
        for plain, lines in self.drawn_lines():
            assert not violations(lines), (self.state.screen, plain, lines)

    def answer_death_1(self, lang: str, shots: bool) -> None:
        seen = set()
        while self.state.screen is F.Screen.QUESTION:
            q = self.shell.kiosk.catalogue.questions[self.state.question]
            value = DEATH_1[q.id]
            if shots and q.kind not in seen:
                self.shot(f"{lang}-04-question-{q.kind}")
                seen.add(q.kind)
            before = len(self.state.answers)
            if q.kind == "number":
                for d in value:
                    self.tap(f"digit-{d}")
                if shots and q.id == "deceased_age":
                    self.shot(f"{lang}-04-question-number-entered")
                self.tap("pad-ok")
            else:
                self.tap(f"answer-{value}")
            assert len(self.state.answers) == before + 1, q.id


@pytest.fixture
def kiosk(live: LiveServer, tmp_path: Path) -> Iterator[Callable[..., Kiosk]]:
    made: list = []

    def make(**kw) -> Kiosk:
        from kiosk.app import KioskShell

        settings = KioskSettings(
            server=kw.pop("server", live.url), device=kw.pop("device", "kiosk-ui"),
            token=live.tokens().roles["kiosk"], staff_pin=STAFF_PIN,
            printer=kw.pop("printer", f"file://{tmp_path / 'ticket.bin'}"), speech=kw.pop("speech", False), **kw,
        )
        shell = KioskShell(settings)
        shell.repeat_window = 0.0  # test taps come faster than any hand; the doubling has its own test
        root = shell.build()
        Window.add_widget(root)
        made.append((shell, root))
        k = Kiosk(shell)
        k.pump(lambda: shell.state.online or settings.server != live.url, 10)
        return k

    yield make
    for shell, root in made:
        shell.stop()
        Window.remove_widget(root)


def run(coro):
    return asyncio.run(coro)


async def admin_tickets(live: LiveServer) -> list[dict]:
    c, r = await Client.open(live.url, role="admin", token=live.tokens().roles["admin"], site="honcho")
    assert "result" in r, r
    tickets = (await c.ok("snapshot"))["tickets"]
    await c.close()
    return tickets


class FakeCard:
    """Stands in for the reader thread: records what the flow asked for, posts nothing itself."""

    def __init__(self) -> None:
        self.pins: list[bytes] = []

    def wait(self) -> None: ...
    def tries(self) -> None: ...
    def read(self) -> None: ...
    def close(self) -> None: ...

    def verify(self, pin: bytearray, confirm_last_try: bool) -> None:
        self.pins.append(bytes(pin))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ the whole visit
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_death_1_by_touch_issues_one_ticket_prints_it_and_shows_its_number(kiosk, live, lang, tmp_path):
    k = kiosk()
    before = len(run(admin_tickets(live)))
    k.shot(f"{lang}-01-language")
    k.tap(f"lang-{lang}")
    assert k.state.screen is F.Screen.PURPOSE and k.state.lang == lang
    k.shot(f"{lang}-02-purpose")
    k.tap("purpose-death")
    k.answer_death_1(lang, shots=True)
    assert k.state.screen is F.Screen.PLAN
    k.pump(lambda: k.state.waits is not None)  # the server's wait estimate arrived
    k.shot(f"{lang}-05-plan")
    assert [s["department"] for s in k.state.plan["steps"]] == [
        "shimin", "hoken_nenkin", "kaigo", "shogai", "zeimu", "nouzei", "suido"]
    k.tap("take-number")
    k.wait_screen(F.Screen.DONE)
    number = k.state.issue_result["ticket"]["number"]
    assert k.state.printed and number in k.texts().split("\n")
    k.shot(f"{lang}-09-done")
    data = (tmp_path / "ticket.bin").read_bytes()
    assert data.startswith(b"\x1b@") and len(data) > 5000  # an image ticket went to the printer file
    tickets = run(admin_tickets(live))
    assert len(tickets) == before + 1  # issued exactly once
    k.tap("finish")
    assert k.state.screen is F.Screen.LANGUAGE and k.state.answers == () and k.state.issue_result is None


def test_other_screens_in_ja_and_en_and_large_text_high_contrast_portrait(kiosk, live):
    """Screens the death walk does not pass: certificates (convenience store, multi-select),
    reservation, choice question, card screens, staff PIN, idle countdown, issuing/printing, errors."""
    from kiosk.card.errors import WrongPin
    from kiosk.card.record import CardRecord, Sex

    k = kiosk(card=True)
    for lang in ("ja", "en"):
        sh = k.shell
        k.tap(f"lang-{lang}")
        k.tap("purpose-certificate")
        k.tap("choice-juminhyo")
        k.tap("choice-koseki")
        k.shot(f"{lang}-04-question-multi-selected")
        k.tap("answer-next")
        k.pump(lambda: k.state.screen is F.Screen.CONVENIENCE)
        k.shot(f"{lang}-03-convenience")
        k.tap("convenience-continue")
        k.pump(lambda: k.state.waits is not None)
        k.tap("take-number")
        assert k.state.screen is F.Screen.CARD_OFFER
        k.shot(f"{lang}-06-card-offer")
        # the card screens, fed with the results the reader thread would post
        sh.card = FakeCard()
        k.tap("card-use")
        k.shot(f"{lang}-07-card-insert")
        sh.dispatch(F.CardEvent(C.CardPresented()))
        sh.dispatch(F.CardEvent(C.TriesRead(3)))
        k.tap("digit-1")
        k.tap("digit-2")
        assert "●●" in k.texts() and "12" not in k.texts()  # masked
        k.shot(f"{lang}-07-card-pin")
        for d in "34":
            k.tap(f"digit-{d}")
        k.tap("pad-ok")
        assert sh.card.pins == [b"1234"] and sh.pin == bytearray()  # handed to the reader, not kept
        sh.dispatch(F.CardEvent(C.Failed(WrongPin(1))))
        k.shot(f"{lang}-07-card-one-try-left")
        record = CardRecord("黒桐\u3000幹也", "山形県酒田市本町二丁目2番45号", dt.date(1980, 2, 17), Sex.MALE)
        for e in (C.LastTryConfirmed(), C.PinSubmitted(), C.PinVerified(), C.RecordRead(record)):
            sh.dispatch(F.CardEvent(e))
        k.shot(f"{lang}-07-card-consent")
        k.tap("card-decline")  # declined: the ticket is issued without the card data
        k.wait_screen(F.Screen.DONE)
        assert k.state.issue_result["prefilled"] is False
        k.tap("finish")
        # reservation check-in with a code the server does not know, then a choice question
        k.tap(f"lang-{lang}")
        k.tap("purpose-reservation")
        for d in "203199":
            k.tap(f"digit-{d}")
        k.shot(f"{lang}-02-reservation")
        k.tap("pad-ok")  # the code is looked up first: refused before the card offer or any number
        k.wait_screen(F.Screen.ERROR)
        assert k.state.error_code == "unknown_reservation" and k.state.pending_key is None
        k.shot(f"{lang}-12-error-unknown-reservation")
        k.tap("back")
        assert k.state.screen is F.Screen.RESERVATION
        k.tap("restart")
        k.tap(f"lang-{lang}")
        k.tap("purpose-consultation")
        k.shot(f"{lang}-04-question-choice")
        k.tap("restart")
        # staff PIN and assist mode
        k.tap("staff")
        for d in "1111":
            k.tap(f"digit-{d}")
        k.tap("pad-ok")
        k.shot(f"{lang}-08-staff-pin-wrong")
        for d in STAFF_PIN:
            k.tap(f"digit-{d}")
        k.tap("pad-ok")
        assert k.state.assist and k.state.screen is F.Screen.PURPOSE
        k.tap(f"lang-{lang}")
        k.shot(f"{lang}-08-staff-assist-purpose")
        k.tap("staff-exit")
        # transient screens, shown from states the flow produces
        for screen, name in ((F.Screen.ISSUING, "10-issuing"), (F.Screen.PRINTING, "10-printing"),
                             (F.Screen.ABANDONED, "12-abandoned")):
            sh.state = F.KioskState(last_activity=sh.clock(), screen=screen, lang=lang, online=True)
            sh.render(force=True)
            k.shot(f"{lang}-{name}")
        # the server kept answering busy: the citizen is told why it takes long (issue 20)
        sh.state = F.KioskState(last_activity=sh.clock(), screen=F.Screen.ISSUING, lang=lang, online=True,
                                pending_key="x", notice="issuing.busy")
        sh.render(force=True)
        k.shot(f"{lang}-10-issuing-busy")
        sh.state = F.KioskState(last_activity=sh.clock(), screen=F.Screen.ERROR, lang=lang, online=True, error_code="storage_error")
        sh.render()
        k.shot(f"{lang}-12-error")
        sh.state = F.KioskState(last_activity=sh.clock(), screen=F.Screen.OFFLINE, lang=lang, online=False, retry_in=4.0, pending_key="x")
        sh.render()
        k.shot(f"{lang}-11-offline-screen")
        from kiosk.card.errors import NoCard

        sh.state = F.KioskState(last_activity=sh.clock(), screen=F.Screen.CARD, lang=lang, online=True,
                                card=C.CardFlow.start().on(C.Failed(NoCard("no card within 60 s"))))
        sh.render()
        assert {"card-retry", "card-skip"} <= {b.name for b in k.buttons()}
        k.shot(f"{lang}-07-card-error")
        # the idle countdown over a question
        sh.state = F.KioskState(last_activity=sh.clock(), lang=lang, online=True)
        sh.render()
        k.tap(f"lang-{lang}")
        k.tap("purpose-move_in")
        sh.state = F.replace(sh.state, last_activity=sh.clock() - sh.kiosk.config.idle_seconds - 3)
        sh.tick()
        k.pump(frames=1)
        assert sh.overlay is not None
        k.shot(f"{lang}-13-idle-countdown")
        if lang == "ja":  # a tap on the dimmed "start over" continues, and presses nothing else
            b = k.button("restart")
            t = UnitTestTouch(*b.to_window(*b.center))
            t.touch_down()
            t.touch_up()
            k.pump(frames=1)
            assert sh.overlay is None and k.state.screen is F.Screen.QUESTION
            sh.state = F.replace(sh.state, last_activity=sh.clock() - sh.kiosk.config.idle_seconds - 3)
            sh.tick()
            k.pump(frames=1)
        k.tap("idle-continue")
        assert sh.overlay is None and k.state.screen is F.Screen.QUESTION
        k.tap("restart")

    # the other languages' purpose screens: every script drawn (no boxes)
    for lang in ("zh", "ko", "vi", "pt", "ja-easy"):
        k.tap(f"lang-{lang}")
        k.shot(f"{lang}-02-purpose")
        k.tap("restart")

    # large text, high contrast, portrait: the done screen and the plan
    k.tap("lang-ja")
    k.tap("toggle-large")
    k.tap("purpose-death")
    k.answer_death_1("ja", shots=False)
    k.pump(lambda: k.state.waits is not None)
    k.shot("ja-large-05-plan")
    k.tap("toggle-large")
    k.tap("toggle-contrast")
    k.shot("ja-contrast-05-plan")
    k.tap("toggle-contrast")
    Window.size = (1080, 1920)
    try:
        k.pump(frames=2)
        k.shell.render(force=True)
        k.shot("ja-portrait-05-plan")
        k.tap("take-number")
        k.tap("card-skip")
        k.wait_screen(F.Screen.DONE)
        k.shot("ja-portrait-09-done")
        k.tap("finish")
        k.shell.render(force=True)
        k.shot("ja-portrait-01-language")
        k.tap("lang-ja")
        k.shot("ja-portrait-02-purpose")
        k.tap("purpose-death")
        k.shot("ja-portrait-04-question-yesno")
        k.tap("restart")
    finally:
        Window.size = (1920, 1080)
        k.pump(frames=2)


# ------------------------------------------------------------------ faults
def test_offline_shows_a_clear_screen_reconnects_and_issues_exactly_once(kiosk, tmp_path):
    port = free_port()
    srv = LiveServer(db_url=f"sqlite:///{tmp_path / 'offline.db'}", secrets=tmp_path / "secrets.toml")
    srv.start(port=port)
    tokens = srv.tokens()
    srv.kill()  # down before the kiosk ever sees it
    from kiosk.app import KioskShell

    settings = KioskSettings(server=f"ws://127.0.0.1:{port}/ws", device="kiosk-off", token=tokens.roles["kiosk"],
                             printer=None)
    shell = KioskShell(settings)
    shell.repeat_window = 0.0
    root = shell.build()
    Window.add_widget(root)
    k = Kiosk(shell)
    try:
        k.tap("lang-en")
        k.tap("purpose-death")
        k.answer_death_1("en", shots=False)
        assert k.state.plan_offline
        k.shot("en-05-plan-offline")
        k.tap("take-number")
        assert k.state.screen is F.Screen.OFFLINE
        k.pump(lambda: k.state.retry_in > 0)
        k.shot("en-11-offline")
        assert "Cannot reach the server" in k.texts()
        key = k.state.pending_key
        srv.start(port=port)
        k.wait_screen(F.Screen.DONE, timeout=30)
        number = k.state.issue_result["ticket"]["number"]
        assert number in k.texts().split("\n")
        tickets = run(admin_tickets(srv))
        assert len(tickets) == 1
        # the same key again (a retry after a lost reply) returns the same ticket, never a second one
        async def again():
            c, _ = await Client.open(srv.url, role="kiosk", device="kiosk-off", token=tokens.roles["kiosk"])
            r = await c.ok("issue", purposes=["death"], answers={}, lang="en", idempotency_key=key)
            await c.close()
            return r
        assert run(again())["ticket"]["number"] == number
        assert len(run(admin_tickets(srv))) == 1
    finally:
        shell.stop()
        Window.remove_widget(root)
        srv.kill()


def test_reservation_check_in_by_code_gets_an_R_number(kiosk, live):
    """A booking made at the admin end, checked in at the kiosk with its 6-digit code."""
    import datetime as _dt
    from zoneinfo import ZoneInfo

    today = _dt.datetime.now(ZoneInfo("Asia/Tokyo")).date().isoformat()

    async def book():
        c, _ = await Client.open(live.url, role="admin", token=live.tokens().roles["admin"], site="honcho")
        r = await c.ok("reserve", day=today, start="08:30", minutes=60, purposes=["death"])
        await c.close()
        return r["reservation"]

    booking = run(book())
    before = len(run(admin_tickets(live)))
    k = kiosk(device="kiosk-rsv")
    k.tap("lang-en")
    k.tap("purpose-reservation")
    for d in booking["code"]:
        k.tap(f"digit-{d}")
    k.tap("pad-ok")
    # the list before the number: the booking (made at the desk, no answers) names its purpose,
    # so only its questions are asked, then the list with the server's waits
    k.pump(lambda: k.state.screen is not F.Screen.RESERVATION)
    assert k.state.screen is F.Screen.QUESTION and k.state.pending_key is None
    assert len(run(admin_tickets(live))) == before  # no ticket yet
    k.answer_death_1("en", shots=False)
    k.pump(lambda: k.state.waits is not None)
    assert k.state.screen is F.Screen.PLAN and "shimin" in [s["department"] for s in k.state.plan["steps"]]
    k.shot("en-05-plan-reservation-typed")
    k.tap("take-number")
    k.wait_screen(F.Screen.DONE)
    number = k.state.issue_result["ticket"]["number"]
    assert number.startswith("R") and number in k.texts().split("\n")
    k.shot("en-09-done-reservation")
    # the same code again: used, said before any number, and "back" lets the citizen retype it
    k.tap("finish")
    k.tap("lang-en")
    k.tap("purpose-reservation")
    for d in booking["code"]:
        k.tap(f"digit-{d}")
    k.tap("pad-ok")
    k.wait_screen(F.Screen.ERROR)
    assert k.state.error_code == "reservation_used" and k.state.pending_key is None
    k.shot("en-09-error-reservation-used")


def test_procedure_list_on_request_prints_once_from_the_done_screen(kiosk, live, tmp_path):
    """[printing] list = "on_request": the ticket alone, then the list when the button is tapped."""
    import shutil

    from tests.printers.escpos_reader import parse

    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    (cfg / "printing.toml").write_text('[printing]\nlist = "on_request"\n')
    k = kiosk(config_dir=cfg, renderer="kanji", device="kiosk-list")
    k.tap("lang-ja")
    k.tap("purpose-death")
    k.answer_death_1("ja", shots=False)
    k.pump(lambda: k.state.screen is F.Screen.PLAN)
    k.tap("take-number")
    k.wait_screen(F.Screen.DONE)
    roll = tmp_path / "ticket.bin"
    ticket = roll.read_bytes()
    assert "あなたの手続きリスト" not in "\n".join(t.text for t in parse(ticket).texts)  # not unasked
    k.check_targets()  # the button is as reachable as the others
    k.shot("ja-09-done-list-on-request")
    k.tap("print-list")

    def printed() -> str:
        try:
            return "\n".join(t.text for t in parse(roll.read_bytes()[len(ticket):]).texts)
        except Exception:  # noqa: BLE001 - the job is still being written
            return ""

    k.pump(lambda: "期限：" in printed())
    text = printed()
    assert "あなたの手続きリスト" in text and "世帯主変更届" in text
    assert "print-list" not in [b.name for b in k.buttons()]  # once: the button is gone
    k.shell.dispatch(F.PrintListPressed())  # a late second tap
    size = roll.stat().st_size
    k.pump(frames=10)
    assert roll.stat().st_size == size and k.state.list_printed
    k.shot("ja-09-done-list-printed")


def test_printer_failure_shows_the_ticket_with_its_qr_and_alerts_staff(kiosk, live):
    k = kiosk(printer="network://127.0.0.1:9", printer_timeout=1.0, device="kiosk-pf")  # refused
    k.tap("lang-ja")
    k.tap("purpose-certificate")
    k.tap("choice-nouzei")
    k.tap("answer-next")
    k.pump(lambda: k.state.waits is not None)
    loop = asyncio.new_event_loop()
    try:
        tok = live.tokens().counters["honcho"][1]
        console, _ = loop.run_until_complete(
            Client.open(live.url, role="counter", site="honcho", counter=1, token=tok, staff="佐藤"))
        k.tap("take-number")
        k.wait_screen(F.Screen.DONE)
        assert k.state.print_error == "error.refused" and not k.state.printed
        qrs = [w for w in k.shell.root.walk(restrict=True) if getattr(w, "qr_data", "")]
        assert [q.qr_data for q in qrs] == [k.state.issue_result["ticket"]["status_url"]]
        assert k.state.issue_result["ticket"]["number"] in k.texts().split("\n")
        k.shot("ja-09-done-printer-failed")
        push = loop.run_until_complete(console.wait_push(
            lambda p: p.get("push") == "help" and p["data"].get("device") == "kiosk-pf", timeout=10))
        assert push["data"]["kind"] == "fault" and push["data"]["device_kind"] == "printer"
        assert push["data"]["code"] == "refused"
        # "call staff" reaches the same console with the kiosk's id
        k.tap("help")
        assert k.state.notice == "help.sent"
        push = loop.run_until_complete(console.wait_push(
            lambda p: p.get("push") == "help" and p["data"].get("device") == "kiosk-pf"
            and p["data"].get("kind") != "fault", timeout=10))
        loop.run_until_complete(console.close())
    finally:
        loop.close()


def test_a_touch_reported_twice_acts_once(kiosk):
    k = kiosk()
    k.shell.repeat_window = 0.25
    k.tap("lang-ja")
    k.tap("purpose-death")
    assert k.state.question == "death_filed"
    b = k.button("answer-no")
    x, y = b.to_window(*b.center)
    # The two reports arrive within the window by the shell's clock, however long this busy
    # machine takes to build the next page between them (no wall time in the result).
    frozen = time.monotonic()
    k.shell.clock = lambda: frozen
    try:
        for _ in range(2):  # mouse and touch providers both report the same press
            t = UnitTestTouch(x, y)
            t.touch_down()
            t.touch_up()
            k.pump(frames=1)
    finally:
        k.shell.clock = time.monotonic
    assert k.state.answers == (("death_filed", "no"),)


def test_client_resends_a_lost_issue_with_the_same_key_and_completes_once():
    """A server that drops the connection after reading ``issue`` (reply lost): the client
    reconnects, sends the same idempotency key again, and reports the ticket exactly once."""
    import json
    import threading

    from websockets.asyncio.server import serve

    from kiosk.client import KioskClient

    seen: list[str] = []
    tickets: dict[str, dict] = {}
    ready = threading.Event()
    stop = threading.Event()
    port_box: list[int] = []

    async def handler(ws):
        async for raw in ws:
            msg = json.loads(raw)
            if msg["type"] == "hello":
                await ws.send(json.dumps({"re": msg["id"], "result": {"role": "kiosk"}}))
            elif msg["type"] == "issue":
                key = msg["idempotency_key"]
                seen.append(key)
                result = tickets.setdefault(key, {"ticket": {"number": str(len(tickets) + 1)}})
                if len(seen) == 1:
                    await ws.close()  # committed, but the reply never leaves
                    return
                await ws.send(json.dumps({"re": msg["id"], "result": result}))

    async def server():
        async with serve(handler, "127.0.0.1", 0) as srv:
            port_box.append(srv.sockets[0].getsockname()[1])
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.02)

    thread = threading.Thread(target=lambda: asyncio.run(server()), daemon=True)
    thread.start()
    ready.wait(5)
    events: list = []
    client = KioskClient(f"ws://127.0.0.1:{port_box[0]}/ws", "kiosk-x", "t", events.append,
                         backoff=(0.05,), request_timeout=2.0)
    client.start()
    try:
        deadline = time.monotonic() + 5
        while not client.online and time.monotonic() < deadline:
            time.sleep(0.01)
        client.issue({"purposes": ["death"], "answers": {}, "lang": "ja", "idempotency_key": "kiosk-x-1"})
        while not any(isinstance(e, F.IssueSucceeded) for e in events) and time.monotonic() < deadline + 5:
            time.sleep(0.01)
        time.sleep(0.3)  # nothing more may arrive
    finally:
        client.stop()
        stop.set()
        thread.join(5)
    assert seen == ["kiosk-x-1", "kiosk-x-1"]
    done = [e for e in events if isinstance(e, F.IssueSucceeded)]
    assert len(done) == 1 and done[0].result["ticket"]["number"] == "1"
    assert any(isinstance(e, F.Disconnected) for e in events)


def test_card_driver_drops_the_results_of_a_closed_session():
    """"Try again" closes the session whose wait is still running: its Cancelled must not reach
    the new card screens (it would skip the card the citizen is about to present)."""
    import threading

    from kiosk.app import CardDriver
    from kiosk.card.errors import Cancelled

    posted: list = []
    release = threading.Event()

    class Session:
        def __init__(self, block: bool):
            self.block = block

        def wait_for_card(self) -> str:
            if self.block:
                release.wait(5)
                raise Cancelled("cancelled by close")
            return "reader"

        def cancel(self) -> None:
            release.set()

        def close(self) -> None: ...

    driver = CardDriver(posted.append)
    driver._session = Session(block=True)
    driver.wait()
    time.sleep(0.05)
    driver.close()  # "try again": the old wait ends with Cancelled
    driver._session = Session(block=False)
    driver.wait()
    deadline = time.monotonic() + 5
    while not posted and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert posted == [C.CardPresented()]


def test_my_number_card_prefill_end_to_end_with_the_virtual_card(kiosk, live, insert_card):
    """The real reader thread against pcscd + the virtual card: present, PIN on the kiosk's pad,
    consent, and the card data arrives on the ticket at the counter — and nowhere on the kiosk after."""
    from tests.kiosk.virtual_card import TEST_NAME, TEST_PIN

    k = kiosk(card=True, device="kiosk-card")
    k.tap("lang-ja")
    k.tap("purpose-certificate")
    k.tap("choice-nouzei")
    k.tap("answer-next")
    k.pump(lambda: k.state.waits is not None)
    k.tap("take-number")
    insert_card()
    k.tap("card-use")
    k.pump(lambda: k.state.card is not None and k.state.card.step is C.Step.ENTER_PIN, timeout=20)
    for d in TEST_PIN:
        k.tap(f"digit-{d}")
    k.tap("pad-ok")
    k.pump(lambda: k.state.card is not None and k.state.card.step is C.Step.CONSENT, timeout=20)
    assert TEST_NAME in k.texts()
    k.tap("card-send")
    k.wait_screen(F.Screen.DONE)
    result = k.state.issue_result
    assert result["prefilled"] is True
    assert k.state.prefill is None and k.state.card is None and k.shell.pin == bytearray()

    async def at_counter():
        tok = live.tokens().counters["honcho"][10]
        c, _ = await Client.open(live.url, role="counter", site="honcho", counter=10, token=tok, staff="佐藤")
        await c.ok("open")
        await c.ok("call", ticket=result["ticket"]["id"])
        current = await c.ok("current")
        await c.ok("requeue")
        await c.close()
        return current

    current = run(at_counter())
    assert current["ticket"]["prefill"]["name"] == TEST_NAME
    k.tap("finish")
    assert TEST_NAME not in repr(k.state) and TEST_NAME not in k.texts()


# ------------------------------------------------------------------ reach and size, in millimetres
#: 16:9 full-HD panels: pixels per millimetre along the 1920-pixel side.
PANELS = {'21.5"': 1920 / (21.5 * 25.4 * 16 / (16**2 + 9**2) ** 0.5),
          '32"': 1920 / (32 * 25.4 * 16 / (16**2 + 9**2) ** 0.5)}
BAND = ("read-aloud", "toggle-large", "toggle-contrast", "with-staff", "help")


def _measure_band(k: Kiosk) -> dict[str, tuple[float, float, float]]:
    """(bottom, top, height) of each bottom-band control in pixels from the screen's bottom edge."""
    EventLoop.idle()
    EventLoop.idle()
    out = {}
    for name in BAND:
        b = k.button(name)
        x, y = b.to_window(b.x, b.y)
        out[name] = (y, y + b.height, b.height)
        assert b.width >= MIN_TARGET_PX, (name, b.size)
    return out


def test_controls_sit_in_the_bottom_band_with_15_mm_targets_on_21_5_and_32_inch_panels(kiosk):
    """Help, large text, contrast, read aloud and "with staff" within a seated user's reach (the
    bottom 15 % of the panel) in both orientations, ≥ 15 mm on both panel sizes, larger in
    large-text mode; screenshots of the list and the done screen for each combination."""
    k = kiosk()
    figures = []
    try:
        for orient, size in (("landscape", (1920, 1080)), ("portrait", (1080, 1920))):
            Window.size = size
            k.pump(frames=2)
            k.shell.render(force=True)
            for lang in ("ja", "en"):
                heights = {}
                for large in (False, True):
                    tag = f"{lang}-{orient}-{'large' if large else 'normal'}"
                    if large:
                        k.tap("toggle-large")
                    seen = {}
                    k.tap(f"lang-{lang}")
                    seen["purpose"] = _measure_band(k)
                    purposes = [b for b in k.buttons() if b.name.startswith("purpose-")]
                    assert len(purposes) == 10 and all(b.icon for b in purposes), [b.name for b in purposes]
                    k.shot(f"mm-{tag}-02-purpose")
                    k.tap("purpose-certificate")
                    k.tap("choice-juminhyo")
                    seen["question"] = _measure_band(k)
                    k.tap("answer-next")
                    k.pump(lambda: k.state.screen in (F.Screen.CONVENIENCE, F.Screen.PLAN))
                    if k.state.screen is F.Screen.CONVENIENCE:
                        k.tap("convenience-continue")
                    k.pump(lambda: k.state.waits is not None)
                    seen["plan"] = _measure_band(k)
                    k.shot(f"mm-{tag}-05-plan")
                    k.tap("take-number")
                    k.wait_screen(F.Screen.DONE)
                    seen["done"] = _measure_band(k)
                    k.shot(f"mm-{tag}-09-done")
                    number = next(w for w in k.shell.root.walk(restrict=True) if getattr(w, "name", "") == "ticket-number")
                    assert number.parent.height >= 0.25 * Window.height, (tag, number.parent.height)
                    assert number.texture_size[1] >= 0.2 * Window.height, (tag, number.texture_size)
                    k.tap("finish")
                    for screen, band in seen.items():
                        for name, (_bottom, top, h) in band.items():
                            for panel, ppm in PANELS.items():
                                assert h / ppm >= 15, (tag, screen, name, panel, h / ppm)
                                # reachable from a chair: the whole control in the bottom 15 % of the panel
                                assert top <= 0.15 * Window.height, (tag, screen, name, top)
                    heights[large] = max(h for band in seen.values() for _, _, h in band.values())
                    top = max(t for band in seen.values() for _, t, _ in band.values())
                    small, big = PANELS['21.5"'], PANELS['32"']
                    figures.append(f"{tag}: band controls {heights[large] / small:.1f} mm high on 21.5 in, "
                                   f"{heights[large] / big:.1f} mm on 32 in; top edge "
                                   f"{top / small:.0f} mm / {top / big:.0f} mm above the bottom")
                assert heights[True] >= 1.25 * heights[False], heights  # enlarged in large-text mode
                if k.state.large_text:
                    k.shell.dispatch(F.ToggleLargeText())
    finally:
        Window.size = (1920, 1080)
        k.pump(frames=2)
    print("\n".join(figures))



# ------------------------------------------------------------------ audio-first: keys only
def _key(name: str) -> None:
    from kiosk.app import KEY_NAMES

    code = next((c for c, n in KEY_NAMES.items() if n == name), None)
    if name.isdigit():
        Window.dispatch("on_key_down", 256 + int(name), 0, name, [])  # the keypad's digit keys
    else:
        Window.dispatch("on_key_down", code, 0, None, [])


def test_audio_first_certificate_ticket_with_key_events_only(kiosk):
    """A blind citizen: no touch at all. Each screen is read aloud with its keys; the number and
    the first counter are announced at the end."""
    from kiosk.keypad import options

    k = kiosk(device="kiosk-audio")
    sh = k.shell

    def press(name: str) -> None:
        _key(name)
        k.pump(frames=1)

    k.tap("read-aloud")  # the band's button reads the screen once, without turning the keypad mode on
    assert sh.speech.texts()[0].startswith("ようこそ") and not sh.audio_first
    press("1")  # the first key turns reading on and, on the language screen, chooses 日本語
    assert sh.audio_first and k.state.screen is F.Screen.PURPOSE
    assert "ご用件を選んでください" in sh.speech.texts()
    cert = next(i for i, (_, e) in enumerate(options(sh.kiosk, k.state, sh.messages), 1)
                if getattr(e, "purpose", "") == "certificate")
    assert f"{cert}、証明書。" in sh.speech.texts()
    press(str(cert))
    assert k.state.question == "certificates"
    juminhyo = next(i for i, (_, e) in enumerate(options(sh.kiosk, k.state, sh.messages), 1)
                    if getattr(e, "value", "") == "juminhyo")
    press(str(juminhyo))
    # the idle countdown is announced; any key continues and chooses nothing
    before = k.state
    sh.state = F.replace(sh.state, last_activity=sh.clock() - sh.kiosk.config.idle_seconds - 3)
    sh.tick()
    k.pump(frames=1)
    assert sh.overlay is not None and "操作を続けますか？" in [u.text for u in sh.speech.said[-1]]
    press("1")
    assert sh.overlay is None and k.state.selection == before.selection == ("juminhyo",)
    press("enter")
    k.pump(lambda: k.state.screen in (F.Screen.CONVENIENCE, F.Screen.PLAN))
    if k.state.screen is F.Screen.CONVENIENCE:
        assert "エンターキーで番号札を受け取ります。" in sh.speech.texts()
        press("enter")
    k.pump(lambda: k.state.screen is F.Screen.PLAN)
    press("enter")  # get the number
    k.wait_screen(F.Screen.DONE)
    k.pump(lambda: any(t.startswith("受付番号は、") for t in sh.speech.texts()))
    number = k.state.issue_result["ticket"]["number"]
    last = [u.text for u in sh.speech.said[-1]]
    assert last[0] == f"受付番号は、{number}番です。" and last[-1] == last[0]
    assert any(t.startswith("最初に、市民課、1階") for t in last), last
    k.shot("ja-14-audio-first-done")
    press("enter")  # finish: the next citizen starts on the touch screen again
    assert k.state.screen is F.Screen.LANGUAGE and not sh.audio_first


def test_ruby_markup_shows_as_a_bracketed_reading_in_ja_easy_and_as_kanji_elsewhere():
    from kiosk.screens.widgets import Text, Theme

    th = Theme(scale=1.0, high_contrast=False, portrait=False)
    easy = Text("{市民課|しみんか}へ いって ください", "ja-easy", th)
    assert easy.plain == "市民課（しみんか）へ いって ください" and "{" not in easy.text
    assert Text("{市民課|しみんか}", "ja", th).plain == "市民課"
    b = BigButton("{証明書|しょうめいしょ}", "ja-easy", th, lambda: None)
    assert b.plain == "証明書（しょうめいしょ）" and "|" not in b.text


def _answer_plainly(k: Kiosk) -> None:
    """Tap through the questions: "no", the first choice, or 2 on a number pad."""
    while k.state.screen is F.Screen.QUESTION:
        q = k.shell.kiosk.catalogue.questions[k.state.question]
        before = len(k.state.answers)
        if q.kind == "number":
            k.tap("digit-2")
            k.tap("pad-ok")
        elif q.kind == "multi":
            k.tap(f"choice-{q.choices[0]}")
            k.tap("answer-next")
        else:
            k.tap("answer-no" if q.kind == "yesno" else f"answer-{q.choices[0]}")
        assert len(k.state.answers) == before + 1, q.id


def test_a_family_moving_in_with_a_newborn_gets_one_list_and_one_ticket(kiosk, live):
    """転入 then 「ほかの手続きも追加」 出生: only the birth's own questions are asked, the list has both
    (no stop twice), and one ticket routes the visit (screenshots ja-05-plan-add-purpose,
    ja-03-purpose-adding, ja-05-plan-two-purposes)."""
    before = len(run(admin_tickets(live)))
    k = kiosk(device="kiosk-two")
    k.tap("lang-ja")
    k.tap("purpose-move_in")
    _answer_plainly(k)
    if k.state.screen is F.Screen.CONVENIENCE:
        k.tap("take-number")
    k.wait_screen(F.Screen.PLAN)
    first = [st["department"] for st in k.state.plan["steps"]]
    assert "ほかの手続きも追加" in k.button("add-purpose").text
    k.shot("ja-05-plan-add-purpose")
    k.tap("add-purpose")
    k.wait_screen(F.Screen.PURPOSE)
    names = [b.name for b in k.buttons()]
    assert "purpose-birth" in names and "purpose-move_in" not in names and "purpose-reservation" not in names
    assert "追加するご用件を選んでください" in k.texts()
    k.shot("ja-03-purpose-adding")
    asked_before = len(k.state.answers)
    k.tap("purpose-birth")
    _answer_plainly(k)
    if k.state.screen is F.Screen.CONVENIENCE:
        k.tap("take-number")
    k.wait_screen(F.Screen.PLAN)
    k.pump(lambda: k.state.waits is not None)
    assert k.state.purposes == ("move_in", "birth") and len(k.state.answers) > asked_before
    deps = [st["department"] for st in k.state.plan["steps"]]
    assert len(deps) == len(set(deps)) and set(first) <= set(deps)
    k.shot("ja-05-plan-two-purposes")
    k.tap("take-number")
    k.wait_screen(F.Screen.DONE)
    tickets = run(admin_tickets(live))
    assert len(tickets) == before + 1  # one ticket for the whole visit
    mine = next(t for t in tickets if t["number"] == k.state.issue_result["ticket"]["number"])
    assert {s["department"] for s in mine["steps"]} == set(deps)  # the server routed both purposes' stops


def _words_fit(b: BigButton) -> bool:
    """The button's words, wrapped at its width, take no more than its height (Kivy would cut them)."""
    from kivy.core.text.markup import MarkupLabel  # (the kiosk's text carries [font] tags per script)

    label = MarkupLabel(text=b.text, font_size=b.font_size, font_name=b.font_name, halign="center",
                        text_size=(b.width - 24, None))
    label.refresh()
    return label.texture.size[1] <= b.height - 12


def test_the_add_purpose_button_words_fit_in_every_language_large_text_and_both_orientations(kiosk):
    k = kiosk()
    cut = []
    try:
        for size in ((1920, 1080), (1080, 1920)):
            Window.size = size
            k.pump(frames=2)
            k.shell.render(force=True)
            for large in (False, True):
                if large != k.state.large_text:
                    k.tap("toggle-large")
                for lang in ("ja", "en", "zh", "ko", "vi", "pt", "ja-easy"):
                    k.tap(f"lang-{lang}")
                    k.tap("purpose-certificate")
                    k.tap("choice-juminhyo")
                    k.tap("answer-next")
                    k.pump(lambda: k.state.screen in (F.Screen.CONVENIENCE, F.Screen.PLAN))
                    if k.state.screen is F.Screen.CONVENIENCE:
                        k.tap("convenience-continue")
                    k.wait_screen(F.Screen.PLAN)
                    k.pump(frames=2)
                    for name in ("add-purpose", "take-number"):
                        if not _words_fit(k.button(name)):
                            cut.append((size, large, lang, name, k.button(name).text))
                    k.tap("restart")
        assert not cut, cut
    finally:
        Window.size = (1920, 1080)
        k.pump(frames=2)
