"""The kiosk's screens as a pure state machine: events in, a new state and commands out.

No Kivy, no sockets, no clock: the shell (kiosk/app.py) turns touches, server replies, printer
and card-reader results and a one-second tick into *events*, calls :meth:`Kiosk.step`, shows
``state.screen`` and executes the returned *commands* (talk to the server, print, drive the card
reader) off the UI thread. Like h11 or the websockets protocol objects, this module decides and
the shell does the I/O, so every path — offline, printer failure, idle reset, staff assist — is
tested with plain pytest.

    kiosk = Kiosk(FlowConfig(catalogue, device="kiosk-1"))
    state = kiosk.initial()
    state, commands = kiosk.step(state, ChooseLanguage("en"))
    state, commands = kiosk.step(state, ChoosePurpose("death"))   # -> first question
    ...

Privacy: the answers, the card record and the reservation code live only in the state and are
gone after a reset (:meth:`Kiosk.reset` keeps nothing a citizen entered). PINs never enter the
state: the card PIN goes from the view's pad straight to the reader, the staff PIN is compared
here and dropped.
"""

from __future__ import annotations

import enum
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kiosk.card import flow as card_flow
from queue_server.core.catalogue import Catalogue
from queue_server.core.conditions import MULTI, NUMBER, UNKNOWN
from queue_server.core.i18n import LANGUAGES
from queue_server.core.journey import (
    PlanError,
    next_question,
    plan_to_dict,
    plan_visit,
    question_to_dict,
    questions_for,
)


class Screen(enum.Enum):
    """What the kiosk shows. The view for each lives in kiosk/screens/."""

    LANGUAGE = "language"  # start screen: choose a language (also the attract screen)
    PURPOSE = "purpose"  # life events, certificates, consultation, reservation check-in
    RESERVATION = "reservation"  # reservation code on a digit pad: check-in with the booking's purposes
    QUESTION = "question"  # one question per screen
    CONVENIENCE = "convenience"  # "this certificate is also at a convenience store" (before the list)
    PLAN = "plan"  # the personal procedure list with waits
    CARD_OFFER = "card_offer"  # "use your My Number card instead of writing forms?"
    CARD = "card"  # the card screens (kiosk.card.flow)
    ISSUING = "issuing"  # waiting for the server's ticket
    OFFLINE = "offline"  # server unreachable while a ticket is pending
    PRINTING = "printing"
    DONE = "done"  # number, route, wait, QR
    ABANDONED = "abandoned"  # the pending ticket was given up: no number
    ERROR = "error"  # the server refused the ticket
    STAFF_PIN = "staff_pin"  # staff-assist PIN pad


#: Screens where the idle countdown does not run: nothing entered yet, or the kiosk (not the
#: citizen) is the one working.
NO_IDLE = frozenset({Screen.LANGUAGE, Screen.ISSUING, Screen.PRINTING})
#: Purposes offered on the purpose screen, in display order (life events first, as in the seed).
PURPOSES: tuple[str, ...] = (
    "birth", "death", "move_in", "move_within", "move_out", "marriage", "divorce", "certificate", "consultation",
)
MAX_STAFF_PIN_TRIES = 3
MAX_NUMBER_DIGITS = 3
RESERVATION_DIGITS = 6  # the server's booking codes (docs/protocol.md, reserve)
# Life events one visit may add up on the kiosk (転入 and 出生 for a family moving in with a
# newborn): one list, one ticket, no step twice. More than this is a visit for the counter.
MAX_PURPOSES = 4
#: Server refusals that mean "check the reservation code" rather than "ask staff".
RESERVATION_ERRORS = frozenset({"unknown_reservation", "reservation_used", "booking_cancelled", "booking_other_day",
                                "booking_other_site", "booking_expired"})  # bookings from /plan/ too


# ------------------------------------------------------------------ events (shell -> flow)
@dataclass(frozen=True)
class Tick:
    """Once a second from the shell's clock: drives the idle countdown."""

    now: float


@dataclass(frozen=True)
class Touched:
    """Any touch on the screen (before the button's own event): the citizen is still here."""

    now: float


@dataclass(frozen=True)
class ChooseLanguage:
    lang: str


@dataclass(frozen=True)
class ToggleLargeText:
    pass


@dataclass(frozen=True)
class ToggleHighContrast:
    pass


@dataclass(frozen=True)
class HelpPressed:
    """"Call staff": an alert with the kiosk id on every counter console."""


@dataclass(frozen=True)
class ReadAloud:
    """"読み上げ": read the current screen aloud (the shell's speech queue)."""


@dataclass(frozen=True)
class AssistRequested:
    """"職員と一緒に": call staff to sit with the citizen; on the first screens the staff PIN pad
    opens, so the arriving staff member takes over in assist mode without looking for it."""


@dataclass(frozen=True)
class ChoosePurpose:
    purpose: str


@dataclass(frozen=True)
class AddPurpose:
    """「ほかの手続きも追加」 on the list: choose one more purpose for the same visit (one ticket)."""


@dataclass(frozen=True)
class ChooseReservation:
    pass


@dataclass(frozen=True)
class PadDigit:
    """A digit on the number pad (age, household size, reservation code)."""

    digit: str


@dataclass(frozen=True)
class PadDelete:
    pass


@dataclass(frozen=True)
class PadDone:
    """OK on the number pad: submit the number (question) or the code (reservation)."""


@dataclass(frozen=True)
class Answer:
    """yes / no / a choice value / "unknown" (わからない). For a multi question: submit the selection."""

    value: str


@dataclass(frozen=True)
class ToggleChoice:
    """Select or deselect one value of a multiple-choice question."""

    value: str


@dataclass(frozen=True)
class Back:
    pass


@dataclass(frozen=True)
class Restart:
    """"Start over": the same wipe as the idle reset."""


@dataclass(frozen=True)
class TakeNumber:
    """On the list (or the convenience-store notice): go on towards a ticket."""


@dataclass(frozen=True)
class UseCard:
    pass


@dataclass(frozen=True)
class SkipCard:
    pass


@dataclass(frozen=True)
class CardEvent:
    """An event of the card screens (reader results and the card screens' own buttons)."""

    event: card_flow.Event


@dataclass(frozen=True)
class PlanReceived:
    seq: int
    result: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class PlanFailed:
    seq: int
    code: str


@dataclass(frozen=True)
class Connected:
    pass


@dataclass(frozen=True)
class Disconnected:
    """The connection is down; the client retries in ``retry_in`` seconds."""

    retry_in: float = 0.0


@dataclass(frozen=True)
class StorageChanged:
    """The server can (ok) or cannot save tickets now (disk full, database down): while it cannot,
    the kiosk issues nothing and says so, instead of failing one citizen after another."""

    ok: bool


@dataclass(frozen=True)
class IssueSucceeded:
    key: str
    result: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class IssueFailed:
    """The server answered the issue with an error (nothing was created)."""

    key: str
    code: str


@dataclass(frozen=True)
class IssueBusy:
    """The server keeps answering ``busy`` (overloaded, nothing was created): the client goes on
    retrying with the same key; the citizen is told it may take a moment, and still gets one ticket."""

    key: str


@dataclass(frozen=True)
class Abandon:
    """"Stop waiting" on the offline screen: the pending ticket is given up."""


@dataclass(frozen=True)
class Printed:
    pass


@dataclass(frozen=True)
class PrintFailed:
    code: str  # PrinterError.code
    message_key: str  # key into printers/messages.toml
    detail: str = ""  # technical cause, for staff only


@dataclass(frozen=True)
class Reprint:
    """"Print again" on the done screen after a printer fault (staff fixed the paper or cover)."""


@dataclass(frozen=True)
class ReprintRequested:
    """A counter console asked this kiosk to print an issued ticket again (a ``reprint`` push):
    ``result`` has the issue reply's shape, so it prints the same number, route and QR."""

    job: str
    result: Mapping[str, Any] = field(repr=False)
    lang: str = "ja"


@dataclass(frozen=True)
class ReprintFinished:
    """The printer thread is done with a reprint job."""

    job: str
    ticket: str
    printed: bool
    code: str = ""


@dataclass(frozen=True)
class PrintListPressed:
    """"Print the procedure list" on the done screen ([printing] list = "on_request")."""


@dataclass(frozen=True)
class Finish:
    """"Done" on the last screen."""


@dataclass(frozen=True)
class StaffPressed:
    pass


@dataclass(frozen=True)
class StaffPinSubmitted:
    """The staff PIN from the masked pad; compared at once and never kept."""

    pin: str = field(repr=False)


@dataclass(frozen=True)
class StaffExit:
    pass


@dataclass(frozen=True)
class Scanned:
    """One scan from a keyboard-like QR reader (kiosk/scanner.py): a booking or a list from home."""

    text: str = field(repr=False)


Event = (
    Tick | Touched | ChooseLanguage | ToggleLargeText | ToggleHighContrast | HelpPressed | AssistRequested | ReadAloud
    | ChoosePurpose | AddPurpose | IssueBusy
    | ChooseReservation | PadDigit | PadDelete | PadDone | Answer | ToggleChoice | Back | Restart | TakeNumber
    | UseCard | SkipCard | CardEvent | PlanReceived | PlanFailed | Connected | Disconnected | StorageChanged
    | IssueSucceeded
    | IssueFailed | Abandon | Printed | PrintFailed | Reprint | ReprintRequested | ReprintFinished | PrintListPressed
    | Finish
    | StaffPressed | StaffPinSubmitted | StaffExit
    | Scanned
)


# ------------------------------------------------------------------ commands (flow -> shell)
@dataclass(frozen=True)
class FetchPlan:
    """Ask the server for the list with waits (``plan``); answer with PlanReceived/PlanFailed."""

    seq: int
    purposes: tuple[str, ...]
    answers: Mapping[str, str]
    lang: str
    #: a booking's code typed on the pad: the server plans the booking's purposes and answers
    reservation_code: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Issue:
    """Send ``issue`` until it is answered once (same idempotency key on every retry)."""

    request: Mapping[str, Any] = field(repr=False)

    @property
    def key(self) -> str:
        return str(self.request["idempotency_key"])


@dataclass(frozen=True)
class AbandonIssue:
    key: str


@dataclass(frozen=True)
class PrintTicket:
    result: Mapping[str, Any] = field(repr=False)
    lang: str


@dataclass(frozen=True)
class PrintAgain:
    """Print a ticket again for a console's reprint job (the citizen's screen does not change)."""

    job: str
    result: Mapping[str, Any] = field(repr=False)
    lang: str


@dataclass(frozen=True)
class ReportPrint:
    """Tell the server how a ticket's print ended (``print_result``): a failure, a success after
    one, or the outcome of a reprint ``job``. Ticket id and error code only."""

    ticket: str
    printed: bool
    code: str = ""
    job: str = ""


@dataclass(frozen=True)
class PrintList:
    """Print the personal procedure list of an issued ticket (asked for on the done screen)."""

    result: Mapping[str, Any] = field(repr=False)
    lang: str


@dataclass(frozen=True)
class SendHelp:
    reason: str = "staff_help"


@dataclass(frozen=True)
class SendFault:
    device_kind: str
    code: str
    detail: str = ""


@dataclass(frozen=True)
class CardWait:
    """Open a card session and wait for a card (then CardEvent(CardPresented) or Failed)."""


@dataclass(frozen=True)
class CardTriesLeft:
    pass


@dataclass(frozen=True)
class CardVerify:
    """Verify the PIN the view's pad holds (the PIN never passes through the flow)."""

    confirm_last_try: bool


@dataclass(frozen=True)
class CardRead:
    pass


@dataclass(frozen=True)
class CardClose:
    """Cancel any wait and close the session (resets the card: its PIN state is gone)."""


@dataclass(frozen=True)
class Speak:
    """Read the current screen aloud (the shell turns the state into phrases: kiosk/speech.py)."""


@dataclass(frozen=True)
class WipeInput:
    """The shell forgets whatever the views hold (PIN pad buffers, scroll positions)."""


Command = (
    FetchPlan | Issue | AbandonIssue | PrintTicket | PrintAgain | ReportPrint | PrintList | SendHelp | SendFault | CardWait | CardTriesLeft | CardVerify
    | CardRead | CardClose | Speak | WipeInput
)


# ------------------------------------------------------------------ configuration and state
@dataclass(frozen=True)
class FlowConfig:
    """What the flow needs from the world, fixed for the kiosk's life."""

    catalogue: Catalogue = field(repr=False)
    device: str = "kiosk-1"
    #: Prefix of idempotency keys; must differ after every kiosk start (the server remembers a
    #: day of keys, so a restarted counter would otherwise get yesterday's... today's old ticket).
    key_prefix: str = "kiosk-1"
    idle_seconds: float = 90.0  # no touch for this long shows the countdown
    warning_seconds: float = 20.0  # the visible countdown before everything is wiped
    card_enabled: bool = False  # a card reader is configured
    printer_enabled: bool = False  # a printer is configured
    list_on_request: bool = False  # [printing] list = "on_request": a button prints the procedure list
    staff_pin: str | None = field(default=None, repr=False)  # None: no staff-assist mode
    purposes: tuple[str, ...] = PURPOSES


@dataclass(frozen=True)
class KioskState:
    """One immutable state of the kiosk. Fields marked personal are wiped by the reset."""

    screen: Screen = Screen.LANGUAGE
    lang: str = "ja"
    large_text: bool = False
    high_contrast: bool = False
    assist: bool = False  # staff-assist mode: tickets get the assistance priority
    # --- what the citizen entered (personal: wiped by reset) ---
    purposes: tuple[str, ...] = ()
    adding: bool = False  # the purpose screen adds one to ``purposes`` (AddPurpose) instead of starting over
    answers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # (question id, value), in order
    question: str | None = None  # id of the question on screen
    entry: str = field(default="", repr=False)  # digits on the pad (number question, reservation code)
    selection: tuple[str, ...] = ()  # values chosen on a multi question
    reservation_code: str | None = field(default=None, repr=False)
    plan: Mapping[str, Any] | None = field(default=None, repr=False)  # plan_to_dict shape
    waits: Mapping[str, Any] | None = None  # {"wait_minutes", "visit_minutes"} from the server
    plan_offline: bool = False  # the server could not be asked: no waits
    card: card_flow.CardFlow | None = None
    prefill: Mapping[str, str] | None = field(default=None, repr=False)
    issue_result: Mapping[str, Any] | None = field(default=None, repr=False)
    print_error: str | None = None  # printers message key when printing failed
    printed: bool = False
    print_fault_sent: bool = False  # the server was told this ticket did not print (a later success clears it)
    list_printed: bool = False  # the procedure list was asked for (once per ticket)
    error_code: str | None = None  # server error code on the ERROR screen
    notice: str | None = None  # a one-line message key under the screen's text (help sent, wrong PIN…)
    staff_tries: int = 0
    # --- the device (kept across resets) ---
    online: bool = False
    storage_ok: bool = True  # the server can save tickets (its ``storage`` flag)
    retry_in: float = 0.0
    pending_key: str | None = None  # the ticket being issued
    key_seq: int = 0  # last idempotency key number used
    plan_seq: int = 0  # to drop a plan reply that arrives after the citizen moved on
    reprint_jobs: tuple[str, ...] = ()  # the last reprint jobs taken: a job pushed twice prints once
    # the server was told this kiosk's printer failed (a ticket or a job): its next success is
    # reported too, so the server sends reprints here again (queue_server/reprint.py)
    printer_down: bool = False
    last_activity: float = 0.0

    @property
    def answer_map(self) -> dict[str, str]:
        return dict(self.answers)

    def idle_left(self, now: float, config: FlowConfig) -> int | None:
        """Seconds shown on the idle countdown, or None while no countdown is due."""
        if self.screen in NO_IDLE:
            return None
        idle = now - self.last_activity
        if idle < config.idle_seconds:
            return None
        return max(0, math.ceil(config.idle_seconds + config.warning_seconds - idle))


# ------------------------------------------------------------------ the machine
class Kiosk:
    """The transition function over :class:`KioskState` for one kiosk's configuration."""

    def __init__(self, config: FlowConfig):
        self.config = config
        self.catalogue = config.catalogue

    def initial(self, now: float = 0.0) -> KioskState:
        return KioskState(last_activity=now)

    # ---------------------------------------------------------------- helpers for views
    def question_view(self, state: KioskState) -> dict | None:
        """The question on screen in the state's language (question_to_dict shape)."""
        if state.question is None:
            return None
        return question_to_dict(self.catalogue, self.catalogue.questions[state.question], state.lang)

    def progress(self, state: KioskState) -> tuple[int, int]:
        """(number of this question, at most how many questions remain after it).

        Questions are skipped when their answer cannot change the list, so the total is only an
        upper bound: the citizen sees "question 3, at most 9 more" rather than a promise.
        """
        asked = len(state.answers) + 1
        if not state.purposes:
            return asked, 0
        answered = set(state.answer_map)
        left = sum(
            1 for q in questions_for(self.catalogue, state.purposes) if q.id not in answered and q.id != state.question
        )
        return asked, left

    def estimated_total(self, state: KioskState) -> int:
        """About how many questions this visit will have ("3 / 約10"), counting the ones answered.

        The remaining questions are walked as most citizens answer them (いいえ, the first
        choice, the smallest number): questions skipped on that path are not counted, so the
        figure is a likely total rather than the maximum (which :meth:`progress` gives).
        """
        answers = state.answer_map
        n = len(answers)
        while (q := next_question(self.catalogue, state.purposes, answers)) is not None and n < 100:
            if q.kind == NUMBER:
                answers[q.id] = str(q.min if q.min is not None else 1)
            elif q.kind == MULTI:
                answers[q.id] = q.choices[0] if q.choices else UNKNOWN
            else:
                answers[q.id] = "no" if q.kind == "yesno" else (q.choices[0] if q.choices else UNKNOWN)
            n += 1
        return max(n, len(state.answers) + 1)

    def offered_purposes(self, state: KioskState) -> tuple[str, ...]:
        """The purposes the purpose screen offers: all of them, or, when adding one to the visit,
        those not chosen yet (the screen, the keypad and the speech all list these)."""
        if not state.adding:
            return self.config.purposes
        return tuple(p for p in self.config.purposes if p not in state.purposes)

    def can_add_purpose(self, state: KioskState) -> bool:
        """Whether the list offers 「ほかの手続きも追加」: a walk-in's list (a booking's purposes
        are the booking's), fewer than MAX_PURPOSES chosen, and another purpose left to choose."""
        return (state.screen is Screen.PLAN and state.reservation_code is None and bool(state.purposes)
                and len(state.purposes) < MAX_PURPOSES and any(p not in state.purposes for p in self.config.purposes))

    def convenience_items(self, state: KioskState) -> list[Mapping[str, Any]]:
        """Alternatives on the list that a convenience store offers (shown before the number)."""
        if not state.plan:
            return []
        return [a for a in state.plan.get("online", []) if a and a.get("kind") == "convenience_store"]

    # ---------------------------------------------------------------- the transition
    def step(self, state: KioskState, event: Event) -> tuple[KioskState, list[Command]]:
        """The state after ``event`` and the commands the shell must run, in order."""
        handler = getattr(self, "_on_" + type(event).__name__, None)
        if handler is None:  # pragma: no cover - every Event type has a handler
            raise TypeError(f"unknown event {event!r}")
        return handler(state, event)

    def reset(self, state: KioskState, now: float | None = None) -> tuple[KioskState, list[Command]]:
        """Back to the start with nothing a citizen entered; device fields survive."""
        cmds: list[Command] = [WipeInput()]
        if state.screen is Screen.CARD:
            cmds.insert(0, CardClose())
        if state.pending_key is not None:
            cmds.insert(0, AbandonIssue(state.pending_key))
        fresh = KioskState(
            online=state.online,
            retry_in=state.retry_in,
            key_seq=state.key_seq,
            plan_seq=state.plan_seq + 1,  # a late plan reply for the last citizen is dropped
            reprint_jobs=state.reprint_jobs,
            printer_down=state.printer_down,
            last_activity=state.last_activity if now is None else now,
        )
        return fresh, cmds

    # --- clock and touches
    def _on_Tick(self, s: KioskState, e: Tick) -> tuple[KioskState, list[Command]]:
        if s.screen is Screen.LANGUAGE:
            # Nothing entered yet, but a language or display toggle left behind is reset quietly.
            if e.now - s.last_activity >= self.config.idle_seconds and _differs_from_fresh(s):
                return self.reset(s, e.now)
            return s, []
        left = s.idle_left(e.now, self.config)
        if left is not None and left <= 0:
            return self.reset(s, e.now)
        return s, []

    def _on_Touched(self, s: KioskState, e: Touched) -> tuple[KioskState, list[Command]]:
        return replace(s, last_activity=e.now), []

    # --- on every screen
    def _on_ChooseLanguage(self, s: KioskState, e: ChooseLanguage) -> tuple[KioskState, list[Command]]:
        if e.lang not in LANGUAGES:
            raise ValueError(f"unknown language {e.lang!r}")
        s = replace(s, lang=e.lang, notice=None)
        if s.screen is Screen.LANGUAGE:
            return replace(s, screen=Screen.PURPOSE), []
        if s.plan is not None and s.screen in (Screen.PLAN, Screen.CONVENIENCE, Screen.CARD_OFFER):
            return self._with_plan(s, s.screen)  # the list in the new language
        return s, []

    def _on_ToggleLargeText(self, s: KioskState, e: ToggleLargeText) -> tuple[KioskState, list[Command]]:
        return replace(s, large_text=not s.large_text), []

    def _on_ToggleHighContrast(self, s: KioskState, e: ToggleHighContrast) -> tuple[KioskState, list[Command]]:
        return replace(s, high_contrast=not s.high_contrast), []

    def _on_HelpPressed(self, s: KioskState, e: HelpPressed) -> tuple[KioskState, list[Command]]:
        # Offline, the client keeps the alert and sends it on reconnect; the citizen is told so.
        return replace(s, notice="help.sent" if s.online else "help.queued"), [SendHelp("staff_help")]

    def _on_ReadAloud(self, s: KioskState, e: ReadAloud) -> tuple[KioskState, list[Command]]:
        return s, [Speak()]

    def _on_AssistRequested(self, s: KioskState, e: AssistRequested) -> tuple[KioskState, list[Command]]:
        notice = "assist.called" if s.online else "help.queued"
        if self.config.staff_pin and not s.assist and s.screen in (Screen.LANGUAGE, Screen.PURPOSE) \
                and not s.adding:  # (adding a purpose: a citizen mid-visit, not the first screens)
            return replace(s, screen=Screen.STAFF_PIN, staff_tries=0, notice=notice), [
                SendHelp("assist_request"), WipeInput()]
        return replace(s, notice=notice), [SendHelp("assist_request")]

    def _on_Restart(self, s: KioskState, e: Restart) -> tuple[KioskState, list[Command]]:
        return self.reset(s)

    def _on_Back(self, s: KioskState, e: Back) -> tuple[KioskState, list[Command]]:
        s = replace(s, notice=None)
        if s.screen is Screen.PURPOSE and s.adding:  # nothing added: the list as it was
            return replace(s, screen=Screen.PLAN, adding=False), []
        if s.screen is Screen.PURPOSE:
            return replace(s, screen=Screen.LANGUAGE), []
        if s.screen is Screen.RESERVATION:  # also while the booking is being looked up
            return replace(s, screen=Screen.PURPOSE, entry="", reservation_code=None, plan_seq=s.plan_seq + 1), []
        if s.screen is Screen.STAFF_PIN:
            return replace(s, screen=Screen.LANGUAGE, staff_tries=0), []
        if s.screen in (Screen.QUESTION, Screen.PLAN, Screen.CONVENIENCE):
            if s.screen is Screen.PLAN and self.convenience_items(s):
                return replace(s, screen=Screen.CONVENIENCE), []
            if not s.answers:  # (a booking's list too: choosing a purpose now is a walk-in)
                return replace(s, screen=Screen.PURPOSE, purposes=(), question=None, entry="", selection=(),
                               plan=None, waits=None, reservation_code=None), []
            # Re-ask the last answered question, showing the earlier answer's selection cleared.
            last, _ = s.answers[-1]
            return replace(s, screen=Screen.QUESTION, answers=s.answers[:-1], question=last, entry="",
                           selection=(), plan=None, waits=None), []
        if s.screen is Screen.CARD_OFFER:
            if s.reservation_code is not None and s.plan is None:  # a code checked in without a list
                return replace(s, screen=Screen.RESERVATION, reservation_code=None), []
            return replace(s, screen=Screen.PLAN), []
        if s.screen is Screen.CARD:
            return replace(s, screen=Screen.CARD_OFFER, card=None, prefill=None), [CardClose()]
        if s.screen is Screen.ERROR:
            if s.reservation_code is not None:  # retype the code
                return replace(s, screen=Screen.RESERVATION, error_code=None, reservation_code=None), []
            return replace(s, screen=Screen.PLAN, error_code=None), []
        return s, []  # no way back once a ticket is on its way

    # --- purpose and reservation
    def _on_ChoosePurpose(self, s: KioskState, e: ChoosePurpose) -> tuple[KioskState, list[Command]]:
        if s.screen is not Screen.PURPOSE or e.purpose not in self.catalogue.purposes:
            return s, []
        if s.adding:
            if e.purpose in s.purposes:
                return s, []
            # the answers given so far stay: only the questions the new purpose adds are asked, and
            # the list is planned for all purposes together (one step per department and procedure)
            return self._advance(replace(s, purposes=(*s.purposes, e.purpose), adding=False, notice=None))
        return self._advance(replace(s, purposes=(e.purpose,), answers=(), notice=None))

    def _on_AddPurpose(self, s: KioskState, e: AddPurpose) -> tuple[KioskState, list[Command]]:
        if not self.can_add_purpose(s):
            return s, []
        return replace(s, screen=Screen.PURPOSE, adding=True, notice=None), []

    def _on_ChooseReservation(self, s: KioskState, e: ChooseReservation) -> tuple[KioskState, list[Command]]:
        if s.screen is not Screen.PURPOSE or s.adding:
            return s, []
        return replace(s, screen=Screen.RESERVATION, entry="", notice=None), []

    def _on_PadDigit(self, s: KioskState, e: PadDigit) -> tuple[KioskState, list[Command]]:
        limit = RESERVATION_DIGITS if s.screen is Screen.RESERVATION else MAX_NUMBER_DIGITS
        if not (e.digit.isdigit() and len(e.digit) == 1) or len(s.entry) >= limit:
            return s, []
        return replace(s, entry=s.entry + e.digit, notice=None), []

    def _on_PadDelete(self, s: KioskState, e: PadDelete) -> tuple[KioskState, list[Command]]:
        return replace(s, entry=s.entry[:-1], notice=None), []

    def _on_PadDone(self, s: KioskState, e: PadDone) -> tuple[KioskState, list[Command]]:
        if s.screen is Screen.RESERVATION:
            if len(s.entry) != RESERVATION_DIGITS:
                return replace(s, notice="reservation.too_short"), []
            return self._look_up(replace(s, reservation_code=s.entry, entry="", purposes=(), answers=(),
                                         plan=None, waits=None, notice=None))
        if s.screen is Screen.QUESTION and s.entry:
            return self._on_Answer(s, Answer(str(int(s.entry))))
        return s, []

    def _on_Scanned(self, s: KioskState, e: Scanned) -> tuple[KioskState, list[Command]]:
        """A QR from the planning page: the answers given at home are not asked again.

        With the purposes and answers in the QR the list is shown first (only questions the QR
        lacks are asked), and "take a number" checks the booking in; a bare code checks in at once.
        """
        from kiosk.scanner import parse_scan

        if s.screen not in (Screen.LANGUAGE, Screen.PURPOSE, Screen.RESERVATION):
            return s, []  # mid-visit: a stray scan must not replace what the citizen entered
        scan = parse_scan(e.text, self.catalogue.purposes, self.catalogue.questions)
        if scan is None:
            return replace(s, notice="scan.unreadable"), []
        s = replace(s, reservation_code=scan.code, entry="", notice=None, selection=(), plan=None, waits=None)
        if scan.purposes:
            try:
                s2, cmds = self._advance(replace(s, purposes=scan.purposes, answers=scan.answers))
            except PlanError:  # answers this catalogue no longer accepts: ask them again
                return self._advance(replace(s, purposes=scan.purposes, answers=()))
            if s2.screen is Screen.ERROR:
                return self._advance(replace(s, purposes=scan.purposes, answers=()))
            return s2, cmds
        return self._look_up(replace(s, screen=Screen.RESERVATION, purposes=(), answers=()))

    def _look_up(self, s: KioskState) -> tuple[KioskState, list[Command]]:
        """A code alone (typed on the pad or a QR of the code only): the list first, as for a full
        booking QR. The server reads the booking's purposes and answers; PlanReceived shows the
        list, PlanFailed names a wrong code before any number is taken."""
        if not s.online:  # the server plans the booking's route when the held check-in reaches it
            return self._check_in_at_once(s)
        seq = s.plan_seq + 1
        return replace(s, plan_seq=seq, notice="reservation.checking"), [
            FetchPlan(seq, (), {}, s.lang, reservation_code=s.reservation_code)]

    def _check_in_at_once(self, s: KioskState) -> tuple[KioskState, list[Command]]:
        """A bare booking code with no list to show: the server plans the booking's route at issue."""
        if self.config.card_enabled and not s.assist:
            return replace(s, screen=Screen.CARD_OFFER), []
        return self._issue(s)

    def _booking_looked_up(self, s: KioskState, r: Mapping[str, Any]) -> tuple[KioskState, list[Command]]:
        """The typed code's booking arrived: show its list (questions it lacks are asked), with the
        waits of the same reply; the number is taken from the list, as after a scan."""
        b = r.get("booking") or {}
        purposes = tuple(p for p in b.get("purposes") or () if p in self.catalogue.purposes)
        if not purposes:  # a purpose this kiosk's catalogue lacks: check in, the server plans it
            return self._check_in_at_once(replace(s, notice=None))
        answers = tuple((k, str(v)) for k, v in (b.get("answers") or {}).items() if k in self.catalogue.questions)
        s = replace(s, notice=None)
        try:
            s2, cmds = self._advance(replace(s, purposes=purposes, answers=answers))
        except PlanError:  # answers this catalogue no longer accepts: ask them again
            s2, cmds = self._advance(replace(s, purposes=purposes, answers=()))
        if s2.screen is Screen.ERROR:
            s2, cmds = self._advance(replace(s, purposes=purposes, answers=()))
        if s2.screen in (Screen.PLAN, Screen.CONVENIENCE) and s2.answers == answers:
            # the reply already holds the waits of exactly this list: no second request
            return replace(s2, plan=r.get("plan") or s2.plan, plan_offline=False, waits=_waits(r)), []
        return s2, cmds

    # --- questions
    def _on_ToggleChoice(self, s: KioskState, e: ToggleChoice) -> tuple[KioskState, list[Command]]:
        q = self.catalogue.questions.get(s.question or "")
        if s.screen is not Screen.QUESTION or q is None or q.kind != MULTI or e.value not in q.choices:
            return s, []
        chosen = [v for v in s.selection if v != e.value] if e.value in s.selection else [*s.selection, e.value]
        order = {v: i for i, v in enumerate(q.choices)}
        return replace(s, selection=tuple(sorted(chosen, key=order.__getitem__)), notice=None), []

    def _on_Answer(self, s: KioskState, e: Answer) -> tuple[KioskState, list[Command]]:
        if s.screen is not Screen.QUESTION or s.question is None:
            return s, []
        q = self.catalogue.questions[s.question]
        value = e.value
        if q.kind == MULTI and value != UNKNOWN:
            if not s.selection:
                return replace(s, notice="question.choose_one"), []
            value = ",".join(s.selection)
        if q.kind == NUMBER and value != UNKNOWN:
            n = int(value)
            if (q.min is not None and n < q.min) or (q.max is not None and n > q.max):
                return replace(s, notice="question.out_of_range", entry=""), []
        answers = (*s.answers, (q.id, value))
        return self._advance(replace(s, answers=answers, entry="", selection=(), notice=None))

    def _advance(self, s: KioskState) -> tuple[KioskState, list[Command]]:
        """The next question, or the list when every question that matters is answered."""
        q = next_question(self.catalogue, s.purposes, s.answer_map)
        if q is not None:
            return replace(s, screen=Screen.QUESTION, question=q.id, entry="", selection=()), []
        s = replace(s, question=None)
        first = Screen.PLAN
        s2, cmds = self._with_plan(s, first)
        if self.convenience_items(s2):
            s2 = replace(s2, screen=Screen.CONVENIENCE)  # said first, before the list and the number
        return s2, cmds

    def _with_plan(self, s: KioskState, screen: Screen) -> tuple[KioskState, list[Command]]:
        """Show the list computed here at once (same catalogue as the server) and ask the
        server for the same list with the live waits; the waits fill in when it answers."""
        try:
            plan = plan_to_dict(plan_visit(self.catalogue, s.purposes, s.answer_map, s.lang))
        except PlanError:  # pragma: no cover - answers come from the catalogue's own choices
            return replace(s, screen=Screen.ERROR, error_code="bad_purpose"), []
        seq = s.plan_seq + 1
        s = replace(s, screen=screen, plan=plan, waits=None, plan_offline=not s.online, plan_seq=seq)
        if not s.online:
            return s, []
        return s, [FetchPlan(seq, s.purposes, s.answer_map, s.lang)]

    def _looking_up(self, s: KioskState, seq: int) -> bool:
        """A typed booking code waits for the server's reply ``seq``."""
        return seq == s.plan_seq and s.screen is Screen.RESERVATION and s.reservation_code is not None \
            and s.plan is None

    def _on_PlanReceived(self, s: KioskState, e: PlanReceived) -> tuple[KioskState, list[Command]]:
        if self._looking_up(s, e.seq):
            return self._booking_looked_up(s, e.result)
        if e.seq != s.plan_seq or s.plan is None:
            return s, []  # a reply for an earlier list (or an earlier citizen)
        r = e.result
        return replace(s, plan=r.get("plan") or s.plan, plan_offline=False, waits=_waits(r)), []

    def _on_PlanFailed(self, s: KioskState, e: PlanFailed) -> tuple[KioskState, list[Command]]:
        if self._looking_up(s, e.seq):
            if e.code == "offline":  # no list without the server: the check-in is held and sent later
                return self._check_in_at_once(replace(s, notice=None))
            # a stale, cancelled, used or unknown code: said now, "back" retypes it
            return replace(s, screen=Screen.ERROR, error_code=e.code, notice=None), []
        if e.seq != s.plan_seq:
            return s, []
        return replace(s, plan_offline=True, waits=None), []

    # --- towards the ticket
    def _on_TakeNumber(self, s: KioskState, e: TakeNumber) -> tuple[KioskState, list[Command]]:
        if s.screen is Screen.CONVENIENCE:
            return replace(s, screen=Screen.PLAN), []
        if s.screen is not Screen.PLAN or not (s.plan and s.plan.get("steps")):
            return s, []
        if self.config.card_enabled and not s.assist:
            return replace(s, screen=Screen.CARD_OFFER), []
        return self._issue(s)

    def _on_UseCard(self, s: KioskState, e: UseCard) -> tuple[KioskState, list[Command]]:
        if s.screen is not Screen.CARD_OFFER:
            return s, []
        return replace(s, screen=Screen.CARD, card=card_flow.CardFlow.start(), prefill=None), [CardWait()]

    def _on_SkipCard(self, s: KioskState, e: SkipCard) -> tuple[KioskState, list[Command]]:
        if s.screen is not Screen.CARD_OFFER:
            return s, []
        return self._issue(replace(s, prefill=None))

    def _on_CardEvent(self, s: KioskState, e: CardEvent) -> tuple[KioskState, list[Command]]:
        if s.screen is not Screen.CARD or s.card is None or s.card.finished:
            return s, []  # a late reader result after the citizen left the card screens
        try:
            card = s.card.on(e.event)
        except card_flow.FlowError:
            return s, []  # e.g. a double tap delivered twice: ignore, never crash the kiosk
        s = replace(s, card=card)
        step = card.step
        if step is card_flow.Step.DONE:
            prefill = card.record.to_payload() if card.record is not None else None
            s2, cmds = self._issue(replace(s, card=None, prefill=prefill))
            return s2, [CardClose(), *cmds]
        if step is card_flow.Step.SKIPPED:
            s2, cmds = self._issue(replace(s, card=None, prefill=None))
            return s2, [CardClose(), *cmds]
        follow: dict[card_flow.Step, Command] = {
            card_flow.Step.CHECKING: CardTriesLeft(),
            card_flow.Step.VERIFYING: CardVerify(card.last_try_confirmed),
            card_flow.Step.READING: CardRead(),
        }
        if step is card_flow.Step.INSERT_CARD:  # "try again" after an error
            return s, [CardClose(), CardWait()]
        if step is card_flow.Step.FAILED:
            return s, [CardClose()]
        return s, [follow[step]] if step in follow else []

    def _issue(self, s: KioskState) -> tuple[KioskState, list[Command]]:
        seq = s.key_seq + 1
        key = f"{self.config.key_prefix}-{seq:06d}"
        request: dict[str, Any] = {
            "answers": s.answer_map,
            "lang": s.lang,
            "idempotency_key": key,
            "assistance": s.assist,
        }
        if s.purposes:  # a reservation check-in sends none: the booking names them
            request["purposes"] = list(s.purposes)
        if s.prefill is not None:
            request["prefill"] = dict(s.prefill)
        if s.reservation_code:
            request["reservation_code"] = s.reservation_code
        screen = Screen.ISSUING if s.online and s.storage_ok else Screen.OFFLINE
        return replace(s, screen=screen, key_seq=seq, pending_key=key, notice=None), [Issue(request)]

    def _on_Connected(self, s: KioskState, e: Connected) -> tuple[KioskState, list[Command]]:
        s = replace(s, online=True, retry_in=0.0)
        if s.screen is Screen.OFFLINE and s.storage_ok:
            return replace(s, screen=Screen.ISSUING), []  # the client re-sends the same key itself
        if s.plan is not None and s.screen in (Screen.PLAN, Screen.CONVENIENCE) and s.waits is None:
            seq = s.plan_seq + 1
            return replace(s, plan_seq=seq), [FetchPlan(seq, s.purposes, s.answer_map, s.lang)]
        return s, []

    def _on_Disconnected(self, s: KioskState, e: Disconnected) -> tuple[KioskState, list[Command]]:
        s = replace(s, online=False, retry_in=e.retry_in)
        if s.screen is Screen.ISSUING:
            return replace(s, screen=Screen.OFFLINE), []
        return s, []

    def _on_StorageChanged(self, s: KioskState, e: StorageChanged) -> tuple[KioskState, list[Command]]:
        s = replace(s, storage_ok=e.ok)
        if not e.ok and s.screen is Screen.ISSUING:
            return replace(s, screen=Screen.OFFLINE), []  # the pending ticket waits; it can be abandoned
        if e.ok and s.online and s.screen is Screen.OFFLINE:
            return replace(s, screen=Screen.ISSUING), []  # the client sends the held issue now
        return s, []

    def _on_IssueSucceeded(self, s: KioskState, e: IssueSucceeded) -> tuple[KioskState, list[Command]]:
        if e.key != s.pending_key:
            return s, []  # abandoned or already completed: exactly once
        s = replace(s, pending_key=None, issue_result=e.result, prefill=None)
        if self.config.printer_enabled:
            return replace(s, screen=Screen.PRINTING), [PrintTicket(e.result, s.lang)]
        return replace(s, screen=Screen.DONE, printed=False, print_error=None), []

    def _on_IssueBusy(self, s: KioskState, e: IssueBusy) -> tuple[KioskState, list[Command]]:
        if e.key != s.pending_key or s.screen is not Screen.ISSUING:
            return s, []
        return replace(s, notice="issuing.busy"), []

    def _on_IssueFailed(self, s: KioskState, e: IssueFailed) -> tuple[KioskState, list[Command]]:
        if e.key != s.pending_key:
            return s, []
        return replace(s, pending_key=None, screen=Screen.ERROR, error_code=e.code, prefill=None), []

    def _on_Abandon(self, s: KioskState, e: Abandon) -> tuple[KioskState, list[Command]]:
        if s.screen not in (Screen.OFFLINE, Screen.ISSUING) or s.pending_key is None:
            return s, []
        key = s.pending_key
        return replace(s, pending_key=None, screen=Screen.ABANDONED, prefill=None), [AbandonIssue(key)]

    def _on_Printed(self, s: KioskState, e: Printed) -> tuple[KioskState, list[Command]]:
        if s.screen is not Screen.PRINTING:
            return s, []
        s2 = replace(s, screen=Screen.DONE, printed=True, print_error=None, print_fault_sent=False)
        tid = _ticket_id(s)
        if (s.print_fault_sent or s.printer_down) and tid:
            # 「もう一度印刷する」 worked (the console's flag goes), or the first ticket since a
            # failure here came out: either way the server learns that this printer works again
            return replace(s2, printer_down=False), [ReportPrint(tid, True)]
        return s2, []

    def _on_PrintFailed(self, s: KioskState, e: PrintFailed) -> tuple[KioskState, list[Command]]:
        if s.screen is not Screen.PRINTING:
            return s, []
        # The ticket exists: it is shown on screen with its QR, and staff are told the printer is down
        # and which number did not come out (to reprint it, here or from the console).
        number = (s.issue_result or {}).get("ticket", {}).get("number")
        detail = f"ticket {number} not printed: {e.detail}" if number is not None else e.detail
        cmds: list[Command] = [SendFault("printer", e.code, detail)]
        tid = _ticket_id(s)
        if tid:  # logged against the ticket: consoles flag it "not printed" and can print it again
            cmds.append(ReportPrint(tid, False, e.code))
        return replace(s, screen=Screen.DONE, printed=False, print_error=e.message_key,
                       print_fault_sent=bool(tid), printer_down=s.printer_down or bool(tid)), cmds

    def _on_ReprintRequested(self, s: KioskState, e: ReprintRequested) -> tuple[KioskState, list[Command]]:
        tid = str((e.result.get("ticket") or {}).get("id") or "")
        if e.job in s.reprint_jobs or not tid:
            return s, []  # the same job again (a second connection, a resent push): printed once
        s = replace(s, reprint_jobs=(*s.reprint_jobs, e.job)[-20:])
        if not self.config.printer_enabled:
            return s, [ReportPrint(tid, False, "no_printer", e.job)]
        return s, [PrintAgain(e.job, e.result, e.lang)]

    def _on_ReprintFinished(self, s: KioskState, e: ReprintFinished) -> tuple[KioskState, list[Command]]:
        cmds: list[Command] = [ReportPrint(e.ticket, e.printed, "" if e.printed else e.code, e.job)]
        s = replace(s, printer_down=not e.printed)  # (reported either way: the server knows)
        if e.printed and _ticket_id(s) == e.ticket and s.screen is Screen.DONE:
            # the citizen still at the done screen of that ticket: it came out after all
            return replace(s, printed=True, print_error=None, print_fault_sent=False), cmds
        return s, cmds

    def _on_Reprint(self, s: KioskState, e: Reprint) -> tuple[KioskState, list[Command]]:
        if s.screen is not Screen.DONE or s.print_error is None or s.issue_result is None \
                or not self.config.printer_enabled:
            return s, []
        return replace(s, screen=Screen.PRINTING, print_error=None), [PrintTicket(s.issue_result, s.lang)]

    def _on_PrintListPressed(self, s: KioskState, e: PrintListPressed) -> tuple[KioskState, list[Command]]:
        if not self.can_print_list(s):
            return s, []
        return replace(s, list_printed=True), [PrintList(s.issue_result or {}, s.lang)]

    def can_print_list(self, s: KioskState) -> bool:
        """The done screen offers the procedure list on request: printer up, list not yet printed."""
        return (s.screen is Screen.DONE and self.config.list_on_request and self.config.printer_enabled
                and s.issue_result is not None and s.print_error is None and not s.list_printed)

    def _on_Finish(self, s: KioskState, e: Finish) -> tuple[KioskState, list[Command]]:
        if s.screen not in (Screen.DONE, Screen.ABANDONED, Screen.ERROR):
            return s, []
        return self.reset(s)

    # --- staff assist
    def _on_StaffPressed(self, s: KioskState, e: StaffPressed) -> tuple[KioskState, list[Command]]:
        if not self.config.staff_pin or s.screen is not Screen.LANGUAGE:
            return s, []
        return replace(s, screen=Screen.STAFF_PIN, staff_tries=0, notice=None), [WipeInput()]

    def _on_StaffPinSubmitted(self, s: KioskState, e: StaffPinSubmitted) -> tuple[KioskState, list[Command]]:
        if s.screen is not Screen.STAFF_PIN or not self.config.staff_pin:
            return s, []
        if hmac.compare_digest(e.pin.encode(), self.config.staff_pin.encode()):
            return replace(s, screen=Screen.PURPOSE, assist=True, staff_tries=0, notice="staff.on"), [WipeInput()]
        tries = s.staff_tries + 1
        if tries >= MAX_STAFF_PIN_TRIES:
            return replace(s, screen=Screen.LANGUAGE, staff_tries=0, notice=None), [WipeInput()]
        return replace(s, staff_tries=tries, notice="staff.pin_wrong"), [WipeInput()]

    def _on_StaffExit(self, s: KioskState, e: StaffExit) -> tuple[KioskState, list[Command]]:
        return self.reset(s)


def _waits(r: Mapping[str, Any]) -> dict[str, Any]:
    """The waits of a ``plan`` reply (with the range when the server sends one)."""
    return {"wait_minutes": r.get("wait_minutes"), "visit_minutes": r.get("visit_minutes"),
            **{k: r[k] for k in ("wait_low", "wait_high") if k in r}}


def _ticket_id(s: KioskState) -> str:
    return str(((s.issue_result or {}).get("ticket") or {}).get("id") or "")


def _differs_from_fresh(s: KioskState) -> bool:
    return s.lang != "ja" or s.large_text or s.high_contrast or s.notice is not None
