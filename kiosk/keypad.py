"""The audio-first path: number keys on a keypad drive the kiosk without reading the screen. Pure.

A blind or low-vision citizen presses a key; the kiosk reads the screen aloud (kiosk/speech.py)
with each choice's key ("1、証明書。2、…"). The keys, the same on every screen:

=========  ===========================================================================
1–9        choose that option (on a number question or the reservation pad: that digit)
0          a digit on a pad; elsewhere: read the screen again
Enter      go on: "next" on a multi-choice question, OK on a pad, get the number on the
           list, finish on the last screen
Backspace  delete a digit on a pad; elsewhere: back
``*``      "わからない" on a number question
``+`` ``.``  read the screen again
=========  ===========================================================================

:func:`options` lists what the number keys choose on the current screen (the speech reads the same
list), :func:`key_event` turns a key into the flow event it means (or None: nothing to do).
"""

from __future__ import annotations

from kiosk import flow as F
from queue_server.core.conditions import MULTI, NUMBER, UNKNOWN
from queue_server.core.i18n import LANGUAGE_NAMES, LANGUAGES, Messages, pick

#: Keys by name (the shell maps keyboard and keypad codes to these).
DIGITS = "0123456789"
ENTER, BACKSPACE, STAR, REPEAT = "enter", "backspace", "*", "+"


def purpose_label(kiosk: F.Kiosk, messages: Messages, pid: str, lang: str) -> str:
    """A purpose as its button says it: the kiosk's own wording where it is gentler than the
    catalogue's heading (``purpose.name.<id>``, e.g. おくやみの手続き), else the catalogue's name."""
    key = f"purpose.name.{pid}"
    if key in messages.table:
        return messages.get(key, lang)
    return pick(kiosk.catalogue.purposes[pid].name, lang)


def _entry_screen(kiosk: F.Kiosk, s: F.KioskState) -> bool:
    """Digits type a number here (a number question or the reservation code)."""
    if s.screen is F.Screen.RESERVATION:
        return True
    q = kiosk.catalogue.questions.get(s.question or "") if s.screen is F.Screen.QUESTION else None
    return q is not None and q.kind == NUMBER


def options(kiosk: F.Kiosk, s: F.KioskState, messages: Messages) -> list[tuple[str, F.Event]]:
    """(spoken label, event) for keys 1, 2, 3… on the current screen, in the screen's order."""
    lang = s.lang
    if s.screen is F.Screen.LANGUAGE:
        return [(LANGUAGE_NAMES[c], F.ChooseLanguage(c)) for c in LANGUAGES]
    if s.screen is F.Screen.PURPOSE:
        chosen = [(purpose_label(kiosk, messages, p, lang), F.ChoosePurpose(p)) for p in kiosk.offered_purposes(s)]
        if s.adding:  # one more purpose for this visit: a booking is a visit of its own
            return chosen
        return chosen + [(messages.get("purpose.reservation", lang), F.ChooseReservation())]
    if s.screen is F.Screen.PLAN and kiosk.can_add_purpose(s):  # (Enter takes the number)
        return [(messages.get("plan.add_purpose", lang), F.AddPurpose())]
    if s.screen is F.Screen.QUESTION and not _entry_screen(kiosk, s):
        q = kiosk.question_view(s)
        if q is None:
            return []
        if q["kind"] == MULTI:
            chosen = [(c["text"], F.ToggleChoice(c["value"])) for c in q["choices"] if c["value"] != UNKNOWN]
            unknown = [(c["text"], F.Answer(UNKNOWN)) for c in q["choices"] if c["value"] == UNKNOWN]
            return chosen + unknown
        return [(c["text"], F.Answer(c["value"])) for c in q["choices"]]
    if s.screen is F.Screen.CARD_OFFER:
        return [(messages.get("card.offer.use", lang), F.UseCard()),
                (messages.get("card.offer.skip", lang), F.SkipCard())]
    if s.screen is F.Screen.DONE and kiosk.can_print_list(s):  # [printing] list = "on_request"
        return [(messages.get("done.print_list", lang), F.PrintListPressed())]
    return []


def confirm(kiosk: F.Kiosk, s: F.KioskState) -> F.Event | None:
    """What Enter means on the current screen."""
    if s.screen is F.Screen.QUESTION:
        q = kiosk.catalogue.questions.get(s.question or "")
        if q is not None and q.kind == MULTI:
            return F.Answer("selected")
        if q is not None and q.kind == NUMBER:
            return F.PadDone()
        return None
    return {
        F.Screen.RESERVATION: F.PadDone(),
        F.Screen.CONVENIENCE: F.TakeNumber(),
        F.Screen.PLAN: F.TakeNumber(),
        F.Screen.DONE: F.Finish(),
        F.Screen.ABANDONED: F.Finish(),
        F.Screen.ERROR: F.Finish(),
    }.get(s.screen)


def key_event(kiosk: F.Kiosk, s: F.KioskState, messages: Messages, key: str) -> F.Event | None:
    """The flow event a key means on the current screen, or None."""
    entry = _entry_screen(kiosk, s)
    if key in DIGITS:
        if entry:
            return F.PadDigit(key)
        if key == "0":
            return F.ReadAloud()
        opts = options(kiosk, s, messages)
        n = int(key)
        return opts[n - 1][1] if n <= len(opts) else F.ReadAloud()  # no such option: say them again
    if key == ENTER:
        return confirm(kiosk, s)
    if key == BACKSPACE:
        return F.PadDelete() if entry and s.entry else F.Back()
    if key == STAR and entry and s.screen is F.Screen.QUESTION:
        return F.Answer(UNKNOWN)
    if key in (REPEAT, "."):
        return F.ReadAloud()
    return None
