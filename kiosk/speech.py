"""Reading the kiosk's screen aloud (読み上げ): what to say (pure) and a small speech queue (shell).

:func:`screen_phrases` turns a state into :class:`Utterance` s — the screen's title and question,
its choices with their number keys (kiosk/keypad.py), and on the last screen the number and where
to go first. Nothing personal is read (the card's name and address stay on the screen only).

:class:`SpeechQueue` is the thin shell: ``say`` replaces whatever was still to be said (a new
screen interrupts the old one), a daemon thread synthesises offline and hands the audio to
``play``. Japanese (ja, ja-easy) is spoken with the board's voice (pyopenjtalk, as in
display_board/announcer.py), the other languages with espeak-ng's voice for that language.
The queue keeps the last phrases it was given (``said``) for tests and diagnostics.
"""

from __future__ import annotations

import io
import logging
import queue
import shutil
import subprocess
import threading
import wave
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kiosk import flow as F
from kiosk.keypad import options
from kiosk.ticket import route_lines, site_shared_counters, wait_words
from printers.layout import format_place
from queue_server.core.i18n import Messages, pick

log = logging.getLogger(__name__)

#: espeak-ng voices for the languages pyopenjtalk does not speak.
ESPEAK_VOICES = {"en": "en", "zh": "cmn", "ko": "ko", "vi": "vi", "pt": "pt-br"}


@dataclass(frozen=True)
class Utterance:
    """One sentence to speak, in the language (and so the voice) it is written in."""

    lang: str
    text: str


def _option_lines(kiosk: F.Kiosk, s: F.KioskState, m: Messages) -> list[str]:
    return [m.get("audio.option", s.lang, n=i, label=label)
            for i, (label, _) in enumerate(options(kiosk, s, m), start=1)]


def screen_phrases(kiosk: F.Kiosk, s: F.KioskState, messages: Messages, card_messages: Messages | None = None,
                   printer_messages: Messages | None = None,
                   site_config: Mapping[str, Any] | None = None) -> list[Utterance]:
    """What the read-aloud button (and the audio-first path on every new screen) says. Pure."""
    lang, m = s.lang, messages
    lines: list[str] = []
    screen = s.screen
    if screen is F.Screen.LANGUAGE:
        # Said in Japanese, then each language's name in its own words with its key.
        out = [Utterance("ja", m.get("language.welcome", "ja") + "。" + m.get("audio.keys_hint", "ja"))]
        out += [Utterance(code, m.get("audio.option", code, n=i, label=label))
                for i, (label, event) in enumerate(options(kiosk, s, m), start=1)
                for code in [event.lang]]  # type: ignore[union-attr]
        return out
    if screen is F.Screen.PURPOSE:
        lines = [m.get("purpose.add_title" if s.adding else "purpose.title", lang), *_option_lines(kiosk, s, m)]
    elif screen is F.Screen.QUESTION:
        q = kiosk.question_view(s)
        n, left = kiosk.progress(s)
        if q is not None:
            lines.append(m.get("question.progress", lang, n=n, total=kiosk.estimated_total(s)) if left
                         else m.get("question.progress_last", lang, n=n))
            lines.append(q["text"])
            if q["kind"] == "number":
                lines.append(m.get("audio.number_keys", lang))
                if s.entry:
                    lines.append(m.get("audio.entered", lang, digits=s.entry))
            else:
                lines += _option_lines(kiosk, s, m)
                if q["kind"] == "multi":
                    chosen = [c["text"] for c in q["choices"] if c["value"] in s.selection]
                    if chosen:
                        lines.append(m.get("audio.selected", lang, labels="、".join(chosen)))
                    lines.append(m.get("audio.enter_next", lang))
    elif screen is F.Screen.RESERVATION:
        lines = [m.get("reservation.title", lang), m.get("audio.number_keys", lang)]
    elif screen is F.Screen.CONVENIENCE:
        lines = [m.get("convenience.title", lang), m.get("convenience.body", lang)]
        lines += [a["procedure_name"] for a in kiosk.convenience_items(s)]
        lines.append(m.get("audio.enter_take_number", lang))
    elif screen is F.Screen.PLAN:
        plan = s.plan or {}
        lines.append(pick(kiosk.catalogue.labels["plan_title"], lang))
        # the stops in visiting order, said as stops ("1か所目"), not as keys: key 1 here may add a purpose
        for i, st in enumerate(plan.get("steps", []), start=1):
            lines.append(m.get("audio.step", lang, n=i, label=st["department_name"]))
        if s.waits and s.waits.get("wait_minutes") is not None:
            lines.append(wait_words(m, lang, s.waits))
        lines += _option_lines(kiosk, s, m)  # "1、ほかの手続きも追加。"
        lines.append(m.get("audio.enter_take_number", lang))
    elif screen is F.Screen.CARD_OFFER:
        lines = [m.get("card.offer.title", lang), *_option_lines(kiosk, s, m)]
    elif screen is F.Screen.CARD and s.card is not None and card_messages is not None:
        lines = [s.card.text(card_messages, lang)]  # the prompt only: never the card's contents
    elif screen in (F.Screen.ISSUING, F.Screen.PRINTING):
        lines = [m.get(f"{screen.value}.title", lang)]
    elif screen is F.Screen.DONE:
        lines = _done_lines(s, m, printer_messages, site_config)
        lines[-1:-1] = _option_lines(kiosk, s, m)  # "1, print the procedure list" before the number again
    elif screen is F.Screen.OFFLINE:
        lines = [m.get("offline.title", lang), m.get("offline.body", lang)]
    elif screen is F.Screen.ABANDONED:
        lines = [m.get("abandoned.title", lang), m.get("abandoned.body", lang)]
    elif screen is F.Screen.ERROR:
        lines = [m.get("error.title", lang), m.get("error.body", lang)]
    elif screen is F.Screen.STAFF_PIN:
        lines = [m.get("staff.title", lang)]
    return [Utterance(lang, spoken_text(line)) for line in lines if line]


def spoken_text(text: str) -> str:
    """Ruby markup read by its reading ({市民課|しみんか} → しみんか): what the voice should say."""
    from queue_server.core.ruby import RUBY

    return RUBY.sub(r"\2", text) if "{" in text else text


def _done_lines(s: F.KioskState, m: Messages, printer_messages: Messages | None,
                site_config: Mapping[str, Any] | None) -> list[str]:
    """The number (said twice: it is what the citizen must remember) and the first counter."""
    lang = s.lang
    r = s.issue_result or {}
    number = str((r.get("ticket") or {}).get("number", ""))
    route = route_lines(r, lang, site_shared_counters(site_config, r))
    lines = [m.get("audio.number", lang, number=number)]
    if route:
        place = format_place(route[0], lang, printer_messages) if printer_messages is not None else ""
        lines.append(m.get("audio.first", lang, department=route[0].department_name, place=place))
    if s.print_error is None and s.printed:
        lines.append(m.get("audio.take_ticket", lang))
    lines.append(m.get("audio.number", lang, number=number))
    return lines


# ---------------------------------------------------------------- synthesis (offline)
def synthesize(u: Utterance) -> bytes:
    """A 16-bit mono WAV of ``u``: pyopenjtalk for Japanese (the board's voice), espeak-ng else."""
    import numpy as np

    from display_board.announcer import RATE, _normalise, _resample, speak_japanese

    if u.lang in ("ja", "ja-easy"):
        x = speak_japanese(u.text)
    else:
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise RuntimeError("espeak-ng is not installed (Debian package espeak-ng)")
        wav = subprocess.run([exe, "-v", ESPEAK_VOICES.get(u.lang, "en"), "-s", "140", "--stdout", u.text],
                             check=True, capture_output=True, timeout=30).stdout
        with wave.open(io.BytesIO(wav)) as w:
            sr, frames = w.getframerate(), w.readframes(w.getnframes())
        x = _normalise(_resample(np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0, sr, RATE))
    pcm = (np.clip(x, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return buf.getvalue()


class SpeechQueue:
    """Say the latest screen, interrupting the previous one. Synthesis and playback run on one
    daemon thread; ``synth``/``play`` None records only (tests, a kiosk without speakers)."""

    def __init__(self, synth: Callable[[Utterance], bytes] | None = None,
                 play: Callable[[bytes], None] | None = None, keep: int = 50):
        self.said: deque[tuple[Utterance, ...]] = deque(maxlen=keep)
        self._synth, self._play = synth, play
        self._jobs: queue.Queue[tuple[int, Utterance]] = queue.Queue()
        self._generation = 0
        self._thread: threading.Thread | None = None

    def say(self, utterances: Sequence[Utterance]) -> None:
        """Replace whatever is still to be said with ``utterances``."""
        self.said.append(tuple(utterances))
        if self._synth is None:
            return
        self._generation += 1
        for u in utterances:
            self._jobs.put((self._generation, u))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kiosk-speech", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._generation += 1

    def _run(self) -> None:
        while True:
            gen, u = self._jobs.get()
            if gen != self._generation:
                continue  # an older screen's sentence: skipped
            try:
                audio = self._synth(u) if self._synth else b""
                if gen == self._generation and self._play is not None:
                    self._play(audio)
            except Exception:  # noqa: BLE001 - speech is help, never a reason to stop the kiosk
                log.exception("kiosk: speech failed")

    def texts(self) -> list[str]:
        """Every sentence said so far, in order (for tests)."""
        return [u.text for batch in self.said for u in batch]
