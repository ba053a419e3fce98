"""The Kivy shell: window, touches, clock, and the slow work (server, printer, card) off the UI thread.

Everything the kiosk decides is in kiosk/flow.py; this module only

- turns touches and the one-second clock into flow events (:meth:`KioskShell.dispatch`),
- rebuilds the page from the new state (kiosk/screens/) when it changed,
- runs the flow's commands: the websocket client thread (kiosk/client.py), a printer thread
  (printers.print_ticket, bounded by its own deadline), a card-reader thread (kiosk/card/reader.py),
- and brings every result back to the UI thread with ``Clock.schedule_once``.

Import this module only after deciding the window (``prepare_kivy``): Kivy reads its
configuration when it is first imported.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
import tomllib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]


def prepare_kivy(width: int, height: int, fullscreen: bool = False, kivy_home: str | None = None) -> None:
    """Kivy settings that must be made before Kivy is imported, then the CJK default font.

    - no Kivy command-line parsing (run.py owns argv), logs through logging, not the console;
    - only the touch/mouse provider the platform gives: a real touch screen that also has the mouse
      provider would deliver every touch twice (the shell also drops a repeated event within
      :data:`REPEAT_WINDOW` for that reason).
    """
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    if kivy_home:
        os.environ.setdefault("KIVY_HOME", kivy_home)
    from kivy.config import Config

    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    Config.set("graphics", "resizable", "0" if fullscreen else "1")
    Config.set("kivy", "exit_on_escape", "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    from kiosk.fonts import register_default_font

    register_default_font()  # before any widget exists, or early labels show boxes


#: How long "issuing your number…" waits before it is drawn (the number usually comes first).
ISSUING_DELAY = 0.25
#: Two touches at one spot closer than this (seconds) are one touch reported twice.
REPEAT_WINDOW = 0.25


@dataclass(frozen=True)
class KioskSettings:
    """One kiosk's configuration (from the command line and the secrets file)."""

    server: str
    device: str
    token: str = field(repr=False)
    site: str | None = None
    printer: str | None = None
    renderer: str = "image"
    printer_width: int = 576
    printer_timeout: float = 5.0
    portrait: bool = False
    fullscreen: bool = False
    idle_seconds: float = 90.0
    warning_seconds: float = 20.0
    staff_pin: str | None = field(default=None, repr=False)
    card: bool = False
    speech: bool = True  # read aloud through the speakers (False: the phrases are only recorded)
    config_dir: Path = ROOT / "config"


class CardDriver:
    """The card reader behind the card screens: one CardSession at a time, calls in threads.

    Each close starts a new *generation*: a result of an older session (e.g. the ``Cancelled``
    of a wait that "try again" replaced) is dropped instead of reaching the new card screens.
    """

    def __init__(self, post: Callable[[Any], None]):
        self.post = post
        self._session: Any = None
        self._gen = 0
        self._lock = threading.Lock()

    def _run(self, work: Callable[[Any], Any], done: Callable[[Any], Any]) -> None:
        from kiosk.card import flow as C
        from kiosk.card.errors import CardError, NoReader

        gen = self._gen

        def deliver(event: Any) -> None:
            if gen == self._gen:
                self.post(event)

        def go() -> None:
            try:
                with self._lock:
                    if gen != self._gen:
                        return  # closed before this call started
                    if self._session is None:
                        from kiosk.card.reader import CardSession

                        self._session = CardSession()
                    session = self._session
                result = work(session)
            except CardError as e:
                deliver(C.Failed(e))
            except ImportError as e:  # pyscard missing: the card feature is off, not the kiosk
                deliver(C.Failed(NoReader(f"pyscard not available: {e}")))
            else:
                deliver(done(result))

        threading.Thread(target=go, name="card-flow", daemon=True).start()

    def wait(self) -> None:
        from kiosk.card import flow as C

        self._run(lambda s: s.wait_for_card(), lambda _: C.CardPresented())

    def tries(self) -> None:
        from kiosk.card import flow as C

        self._run(lambda s: s.tries_left(), C.TriesRead)

    def verify(self, pin: bytearray, confirm_last_try: bool) -> None:
        from kiosk.card import flow as C

        # verify_pin wipes the bytearray before it returns or raises
        self._run(lambda s: s.verify_pin(pin, confirm_last_try=confirm_last_try), lambda _: C.PinVerified())

    def read(self) -> None:
        from kiosk.card import flow as C

        self._run(lambda s: s.read_record(), C.RecordRead)

    def close(self) -> None:
        with self._lock:
            self._gen += 1
            session, self._session = self._session, None
        if session is not None:
            session.cancel()
            threading.Thread(target=session.close, name="card-close", daemon=True).start()


class KioskShell:
    """The UI-thread side of the kiosk: state, page, commands. Build with :meth:`build`."""

    def __init__(self, settings: KioskSettings, *, client: Any = None, clock: Callable[[], float] = time.monotonic):
        from kiosk import flow as F
        from kiosk.card import MESSAGES_PATH as CARD_MESSAGES
        from printers.layout import default_messages as printer_messages
        from queue_server.loaders import load_catalogue, load_messages

        self.settings = settings
        self.clock = clock
        with (settings.config_dir / "site.toml").open("rb") as f:
            site = tomllib.load(f)
        catalogue = load_catalogue(settings.config_dir / "catalogue", site)
        self.site_config = site  # counters shared by departments: worded "（共用）" on the ticket
        from printers.procedure_list import list_mode

        boot = format(int(time.time()), "x")  # new keys after every start: the server remembers a day of keys
        self.kiosk = F.Kiosk(F.FlowConfig(
            catalogue, device=settings.device, key_prefix=f"{settings.device}-{boot}",
            idle_seconds=settings.idle_seconds, warning_seconds=settings.warning_seconds,
            card_enabled=settings.card, printer_enabled=bool(settings.printer), staff_pin=settings.staff_pin,
            list_on_request=bool(settings.printer) and list_mode(settings.config_dir) == "on_request",
        ))
        self.state = self.kiosk.initial(clock())
        self.messages = load_messages(ROOT / "kiosk" / "messages.toml")
        self.card_messages = load_messages(CARD_MESSAGES)
        self.printer_messages = printer_messages()
        self.pin = bytearray()  # the PIN pad's digits (card or staff): never in the flow state
        self.card = CardDriver(lambda e: self.post(F.CardEvent(e)))
        self.client = client
        from kiosk.speech import SpeechQueue, synthesize

        # reading aloud (kiosk/speech.py); without speakers the phrases are only recorded
        self.speech = SpeechQueue(synthesize, play_wav) if settings.speech else SpeechQueue()
        self.audio_first = False  # a keypad key was pressed: every new screen is read aloud
        self._spoken_key: Any = None
        self.root: Any = None
        self._ticker: Any = None
        self.page: Any = None
        self.overlay: Any = None
        self._shown: Any = None
        self._countdown: int | None = None
        self._last_touch: tuple[tuple[float, float], float] = ((-1e9, -1e9), -1e9)
        self.repeat_window = REPEAT_WINDOW
        # (screen, monotonic time) of the last pages built: diagnostics and tests; nothing personal
        self.screens_shown: deque[tuple[Any, float]] = deque(maxlen=100)
        self.on_render: Callable[[Any], None] | None = None
        from kiosk.scanner import ScanBuffer

        self.scanner = ScanBuffer()  # a QR reader that types like a keyboard (kiosk/scanner.py)
        # one job at a time on the printer: a console's reprint must not interleave with a ticket
        self.printer_lock = threading.Lock()

    # ---------------------------------------------------------------- Kivy side
    def build(self) -> Any:
        from kivy.clock import Clock
        from kivy.uix.floatlayout import FloatLayout

        shell = self

        class Root(FloatLayout):
            def on_touch_down(self, touch: Any) -> bool:
                from kiosk import flow as F

                if shell.is_repeat(touch.pos):
                    return True  # the same touch from a second input provider: swallow it
                covered = shell.overlay is not None
                shell.dispatch(F.Touched(shell.clock()))  # removes the idle countdown
                if covered:
                    return True  # that touch meant "I'm still here", not the button under the shade
                return super().on_touch_down(touch)

        self.root = Root()
        if self.client is None:
            from kiosk.client import KioskClient

            self.client = KioskClient(self.settings.server, self.settings.device, self.settings.token,
                                      self.post, site=self.settings.site)
        self.client.start()
        self._ticker = Clock.schedule_interval(lambda dt: self.tick(), 1.0)
        from kivy.core.window import Window

        Window.bind(on_key_down=self.on_key_down)
        self.render(force=True)
        # Kivy, the catalogue and the fonts are ~100k long-lived objects; a full collection
        # walking them took 200+ ms on a busy 2-core machine, often right between the touch and the
        # number. Frozen, they are never walked again; each page's garbage still is.
        gc.collect()
        gc.freeze()
        return self.root

    def stop(self) -> None:
        from kivy.core.window import Window

        Window.unbind(on_key_down=self.on_key_down)
        self.speech.stop()
        if self._ticker is not None:
            self._ticker.cancel()
        if self.client is not None:
            self.client.stop()
        self.card.close()

    def on_key_down(self, window: Any, key: int, scancode: int, codepoint: str | None, modifier: Any) -> bool:
        """Two devices type here. A QR reader that types like a keyboard (kiosk/scanner.py) sends
        printable characters, then Enter; the numeric keypad of the audio-first path
        (kiosk/keypad.py) sends the keypad's own key codes (256–271: digits, . * + and its Enter)
        and Backspace. So keypad codes go to the keypad, characters to the scan buffer, and a
        main Enter ends a scan when one is buffered, else it is the keypad's Enter."""
        from kiosk import flow as F

        if 256 <= key <= 271 or key == 8:
            return self._keypad_key(key, codepoint)
        if key == 13:
            text = self.scanner.enter(self.clock())
            if text:
                self.dispatch(F.Scanned(text))
                return True
            return self._keypad_key(key, None)
        if codepoint:
            self.scanner.key(codepoint, self.clock())
            return True
        return False

    def is_repeat(self, pos: tuple[float, float]) -> bool:
        """True for a touch at the same spot as the previous one within ``repeat_window``:
        with mouse and touch providers both on, a real touch screen reports each touch twice,
        and the second one would land on whatever the first one's page put there."""
        now = self.clock()
        (x0, y0), t0 = self._last_touch
        self._last_touch = (pos, now)
        return now - t0 < self.repeat_window and abs(pos[0] - x0) < 20 and abs(pos[1] - y0) < 20

    def post(self, event: Any) -> None:
        """From any thread: deliver ``event`` on the UI thread."""
        from kivy.clock import Clock

        Clock.schedule_once(lambda dt: self.dispatch(event), 0)

    def tick(self) -> None:
        from kiosk import flow as F

        self.dispatch(F.Tick(self.clock()))
        self._update_overlay()

    def dispatch(self, event: Any) -> None:
        """Feed one event to the flow, run its commands, redraw if the state changed."""
        from kiosk import flow as F

        self.state, commands = self.kiosk.step(self.state, event)
        # event and command *types* only: their fields may hold what a citizen entered
        log.debug("kiosk: %s -> %s %s", type(event).__name__, self.state.screen.value,
                  [type(c).__name__ for c in commands])
        for c in commands:
            self._run(c)
        self._gc_guard()
        if isinstance(event, F.Touched):
            self._update_overlay()
            return
        self.render()

    def _run(self, c: Any) -> None:
        from kiosk import flow as F

        if isinstance(c, F.FetchPlan):
            self.client.plan(c.seq, c.purposes, c.answers, c.lang, c.reservation_code)
        elif isinstance(c, F.Issue):
            self.client.issue(c.request)
        elif isinstance(c, F.AbandonIssue):
            self.client.abandon(c.key)
        elif isinstance(c, F.SendHelp):
            self.client.help(c.reason)
        elif isinstance(c, F.SendFault):
            self.client.fault(c.device_kind, c.code, c.detail)
        elif isinstance(c, F.PrintTicket):
            self._print(c)
        elif isinstance(c, F.PrintList):
            self._print_list(c)
        elif isinstance(c, F.PrintAgain):
            self._print_again(c)
        elif isinstance(c, F.ReportPrint):
            self.client.print_result(c.ticket, c.printed, c.code, c.job)
        elif isinstance(c, F.CardWait):
            self.card.wait()
        elif isinstance(c, F.CardTriesLeft):
            self.card.tries()
        elif isinstance(c, F.CardVerify):
            pin, self.pin = self.pin, bytearray()
            self.card.verify(pin, c.confirm_last_try)
        elif isinstance(c, F.CardRead):
            self.card.read()
        elif isinstance(c, F.CardClose):
            self.card.close()
        elif isinstance(c, F.WipeInput):
            self._wipe_pin()
            self.audio_first = False  # the next citizen starts on the touch screen again
        elif isinstance(c, F.Speak):
            self.speak_screen()

    def speak_screen(self) -> None:
        """Read the current screen aloud (the phrases are chosen by kiosk/speech.py)."""
        from kiosk.speech import screen_phrases

        self._spoken_key = self._speech_key()
        self.speech.say(screen_phrases(self.kiosk, self.state, self.messages, self.card_messages,
                                       self.printer_messages, self.site_config))

    def _speech_key(self) -> Any:
        s = self.state
        return (s.screen, s.lang, s.question, s.selection, s.entry, s.printed, s.print_error)

    # ---------------------------------------------------------------- keypad (audio-first path)
    def _keypad_key(self, key: int, codepoint: str | None) -> bool:
        """A keypad key: the audio-first path (kiosk/keypad.py). The first key turns
        on reading every new screen aloud, until the next citizen (the reset)."""
        from kiosk import flow as F
        from kiosk.keypad import key_event

        name = key_name(key, codepoint)
        if name is None:
            return False
        covered = self.overlay is not None
        self.dispatch(F.Touched(self.clock()))
        if covered:  # the key meant "I'm still here" (like a touch on the shade), nothing else
            self._spoken_key = None
            self.speak_screen()
            return True
        if not self.audio_first:
            self.audio_first = True
            self._spoken_key = None
        event = key_event(self.kiosk, self.state, self.messages, name)
        if event is not None:
            self.dispatch(event)
        if isinstance(event, F.ReadAloud) or event is None:
            return True
        if self.audio_first and self._speech_key() != self._spoken_key:
            self.speak_screen()
        return True

    def _gc_guard(self) -> None:
        """No automatic collection while a number is on its way: one full collection (freeing the
        last pages' widgets) measured 100–400 ms on a busy 2-core PC, which would land between the
        touch and the number. Collection resumes once the number is on screen."""
        from kivy.clock import Clock

        from kiosk import flow as F

        # ISSUING and PRINTING last seconds at most; OFFLINE may last hours and keeps collecting
        waiting = self.state.screen in (F.Screen.ISSUING, F.Screen.PRINTING)
        if waiting and gc.isenabled():
            gc.disable()
        elif not waiting and not gc.isenabled():
            Clock.schedule_once(lambda dt: gc.enable(), 0.5)  # after the number's frame is drawn

    def _wipe_pin(self) -> None:
        for i in range(len(self.pin)):
            self.pin[i] = 0
        self.pin = bytearray()

    def _print(self, c: Any) -> None:
        """Print in a thread; print_ticket bounds the device time by its own deadline."""
        from kiosk import flow as F
        from kiosk.ticket import printable_ticket, site_shared_counters

        s = self.settings
        shared = site_shared_counters(self.site_config, c.result)

        def go() -> None:
            from printers.errors import PrinterError
            from printers.printing import print_ticket

            try:
                with self.printer_lock:
                    print_ticket(s.printer, printable_ticket(c.result, c.lang, shared), s.renderer, s.printer_width,
                                 s.printer_timeout)
            except PrinterError as e:
                log.warning("kiosk: printing failed: %s", e.code)
                self.post(F.PrintFailed(e.code, e.message_key, e.detail))
            except Exception as e:  # noqa: BLE001 - any other fault: the citizen still gets the screen
                log.exception("kiosk: printing crashed")
                self.post(F.PrintFailed("printer_error", "error.printer_error", type(e).__name__))
            else:
                self.post(F.Printed())
                # the personal procedure list follows on the same roll ([printing] list, config/printing.toml)
                from printers.procedure_list import list_mode, print_list

                try:
                    if list_mode(s.config_dir) == "always":
                        with self.printer_lock:
                            print_list(s.printer, c.result, c.lang, s.renderer, s.printer_width, s.printer_timeout)
                except Exception as e:  # noqa: BLE001 - the ticket is out; the list is a bonus
                    log.warning("kiosk: the procedure list did not print: %s", type(e).__name__)

        threading.Thread(target=go, name="kiosk-print", daemon=True).start()

    def _print_list(self, c: Any) -> None:
        """The procedure list asked for on the done screen ([printing] list = "on_request"), in a thread."""
        s = self.settings

        def go() -> None:
            from printers.procedure_list import print_list

            try:
                with self.printer_lock:
                    print_list(s.printer, c.result, c.lang, s.renderer, s.printer_width, s.printer_timeout)
            except Exception as e:  # noqa: BLE001 - the ticket is out; the list is a bonus
                log.warning("kiosk: the procedure list did not print: %s", type(e).__name__)

        threading.Thread(target=go, name="kiosk-print-list", daemon=True).start()

    def _print_again(self, c: Any) -> None:
        """A console's reprint job, in a thread: the same ticket (number, route, QR) on this printer,
        then ReprintFinished back to the flow, which reports the outcome to the server."""
        from kiosk import flow as F
        from kiosk.ticket import printable_ticket, site_shared_counters

        s = self.settings
        shared = site_shared_counters(self.site_config, c.result)
        tid = str((c.result.get("ticket") or {}).get("id") or "")

        def go() -> None:
            from printers.errors import PrinterError
            from printers.printing import print_ticket

            try:
                with self.printer_lock:
                    print_ticket(s.printer, printable_ticket(c.result, c.lang, shared), s.renderer, s.printer_width,
                                 s.printer_timeout)
            except PrinterError as e:
                log.warning("kiosk: reprint %s failed: %s", c.job, e.code)
                self.post(F.ReprintFinished(c.job, tid, False, e.code))
            except Exception:  # noqa: BLE001 - any other fault is reported, never raised
                log.exception("kiosk: reprint crashed")
                self.post(F.ReprintFinished(c.job, tid, False, "printer_error"))
            else:
                self.post(F.ReprintFinished(c.job, tid, True))

        threading.Thread(target=go, name="kiosk-reprint", daemon=True).start()

    # ---------------------------------------------------------------- PIN pad (shell-held digits)
    def pin_digit(self, d: str) -> None:
        if len(self.pin) < 8:
            self.pin.append(ord(d))
        self.render(force=True)

    def pin_delete(self) -> None:
        if self.pin:
            self.pin[-1] = 0
            del self.pin[-1]
        self.render(force=True)

    def pin_submit(self) -> None:
        from kiosk import flow as F
        from kiosk.card import flow as C

        if self.state.screen is F.Screen.STAFF_PIN:
            pin = self.pin.decode()
            self._wipe_pin()
            self.dispatch(F.StaffPinSubmitted(pin))
        elif self.state.screen is F.Screen.CARD and len(self.pin) == 4:
            self.dispatch(F.CardEvent(C.PinSubmitted()))

    # ---------------------------------------------------------------- drawing
    def theme(self) -> Any:
        from kivy.core.window import Window

        from kiosk.screens.widgets import Theme

        return Theme(scale=1.3 if self.state.large_text else 1.0, high_contrast=self.state.high_contrast,
                     portrait=Window.height > Window.width)

    def render(self, force: bool = False) -> None:
        from kivy.clock import Clock

        from kiosk import flow as F
        from kiosk.screens import ViewContext, build

        if self.state.screen is F.Screen.ISSUING and not force and self._shown is not None \
                and self._shown[0].screen is not F.Screen.OFFLINE:
            # A local server answers within a frame or two: drawing "issuing…" first would only
            # delay the number. Show it only if the ticket is not there after ISSUING_DELAY.
            Clock.schedule_once(lambda dt: self._render_if(F.Screen.ISSUING), ISSUING_DELAY)
            return

        # last_activity alone changes nothing on the page, nor does the retry delay off the offline page
        retry = self.state.retry_in if self.state.screen is F.Screen.OFFLINE else 0.0
        # nor does a console's reprint job (printed behind the citizen's back, page and scroll untouched)
        key = (replace(self.state, last_activity=0.0, retry_in=retry, reprint_jobs=()), len(self.pin), self.theme())
        if not force and key == self._shown:
            return
        self._shown = key
        ctx = ViewContext(
            state=self.state, kiosk=self.kiosk, messages=self.messages, card_messages=self.card_messages,
            printer_messages=self.printer_messages, theme=self.theme(), send=self.dispatch,
            pin_length=len(self.pin), pin_digit=self.pin_digit, pin_delete=self.pin_delete,
            pin_submit=self.pin_submit, staff_enabled=bool(self.settings.staff_pin),
            site_config=self.site_config,
        )
        page = build(ctx)
        if self.page is not None:
            self.root.remove_widget(self.page)
        self.page = page
        self.root.add_widget(page, index=1 if self.overlay is not None else 0)
        self.screens_shown.append((self.state.screen, self.clock()))
        self._countdown = None
        self._update_overlay()
        if self.audio_first and self._speech_key() != self._spoken_key:
            self.speak_screen()  # a screen reached without a key (the number arrived, printing ended)
        if self.on_render is not None:
            self.on_render(self.state)

    def _render_if(self, screen: Any) -> None:
        if self.state.screen is screen:
            self.render(force=True)

    def _update_overlay(self) -> None:
        """The idle countdown sits above the page, updated in place every second."""
        from kiosk import flow as F
        from kiosk.screens.overlay import idle_overlay

        left = self.state.idle_left(self.clock(), self.kiosk.config)
        if left == self._countdown and (left is None) == (self.overlay is None):
            return
        self._countdown = left
        appearing = left is not None and self.overlay is None
        if self.overlay is not None:
            self.root.remove_widget(self.overlay)
            self.overlay = None
        if left is not None:
            self.overlay = idle_overlay(self.theme(), self.messages, self.state.lang, left,
                                        lambda: self.dispatch(F.Touched(self.clock())))
            self.root.add_widget(self.overlay)
            if appearing and self.audio_first:  # a blind citizen must hear the countdown too
                from kiosk.speech import Utterance

                lang = self.state.lang
                self.speech.say([Utterance(lang, self.messages.get("idle.title", lang)),
                                 Utterance(lang, self.messages.get("idle.body", lang, seconds=left)),
                                 Utterance(lang, self.messages.get("audio.any_key", lang))])


#: Kivy key codes of a keypad and keyboard that the audio-first path uses.
KEY_NAMES = {13: "enter", 271: "enter", 8: "backspace", 268: "*", 270: "+", 266: "."}


def key_name(key: int, codepoint: str | None) -> str | None:
    """A key as kiosk/keypad.py names it (digits from the number row or the keypad)."""
    if 256 <= key <= 265:  # keypad 0–9
        return str(key - 256)
    if key in KEY_NAMES:
        return KEY_NAMES[key]
    if codepoint and codepoint in "0123456789*+.":
        return codepoint
    return None


def play_wav(data: bytes) -> None:
    """Play one WAV through SDL2 (Kivy's audio) and wait until it ends (called on the speech thread)."""
    import tempfile

    from kivy.core.audio import SoundLoader

    with tempfile.NamedTemporaryFile(suffix=".wav", delete=False) as f:
        f.write(data)
        path = f.name
    try:
        sound = SoundLoader.load(path)
        if sound is None:
            log.warning("kiosk: no audio output for reading aloud")
            return
        sound.play()
        time.sleep(max(0.1, sound.length or 0.0))
        sound.unload()
    finally:
        os.unlink(path)


def run_app(settings: KioskSettings) -> int:
    """Open the kiosk window and run until it is closed."""
    w, h = (1080, 1920) if settings.portrait else (1920, 1080)
    prepare_kivy(w, h, settings.fullscreen)
    from kivy.app import App

    shell = KioskShell(settings)

    class KioskApp(App):
        title = "madoguchi kiosk"

        def build(self) -> Any:
            return shell.build()

        def on_stop(self) -> None:
            shell.stop()

    KioskApp().run()
    return 0
