"""The kiosk's card screens as a pure state machine (no I/O, no Kivy, no clock).

The Kivy screens and the reader thread feed *events* in; every state tells the screen what to
show (a message key and its fields), which buttons to offer, and what the shell must do next.
Like h11 or the websockets protocol objects: the shell does the I/O, this module decides.

    state = CardFlow.start()
    state = state.on(CardPresented())          # reader: CardSession.wait_for_card() returned
    state = state.on(TriesRead(3))             # reader: session.tries_left()
    state = state.on(PinSubmitted())           # screen: PIN pad OK; shell calls verify_pin(
                                               #   pin, confirm_last_try=state.last_try_confirmed)
    state = state.on(PinVerified())            # reader: verify_pin returned
    state = state.on(RecordRead(record))       # reader: read_record returned
    state = state.on(ConsentGiven())           # screen: "send" -> state.record goes with the ticket

Any reader error goes in as ``Failed(error)``; ``Skip()`` is accepted at every step. No event
carries a PIN: the PIN goes straight from the pad's bytearray to ``verify_pin`` and is wiped.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Protocol

from kiosk.card.errors import (
    BadPinFormat,
    Cancelled,
    CardError,
    MalformedData,
    NoReader,
    OneTryLeft,
    PinLocked,
    WrongPin,
)
from kiosk.card.record import CardRecord


class Step(enum.Enum):
    """Which screen the kiosk shows."""

    INSERT_CARD = "insert_card"  # waiting for the card (reader: wait_for_card)
    CHECKING = "checking"  # card found, reading the PIN's tries left
    CONFIRM_LAST_TRY = "confirm_last_try"  # one try left: explicit "yes, enter the PIN"
    ENTER_PIN = "enter_pin"  # own digit pad, masked
    VERIFYING = "verifying"  # shell is calling verify_pin
    READING = "reading"  # shell is calling read_record
    CONSENT = "consent"  # show what was read; send it to the counter?
    DONE = "done"  # terminal: ``record`` goes with the ticket
    SKIPPED = "skipped"  # terminal: no card data (skipped, declined, cancelled)
    FAILED = "failed"  # an error screen; RETRY goes back to INSERT_CARD where allowed


class Action(enum.Enum):
    """Buttons a screen offers; each has a message key for its label."""

    SKIP = "card.button.skip"
    RETRY = "card.button.retry"
    CONFIRM = "card.button.continue"
    SEND = "card.button.send"
    DECLINE = "card.button.decline"

    @property
    def message_key(self) -> str:
        return self.value


TERMINAL = frozenset({Step.DONE, Step.SKIPPED})


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardPresented:
    """The reader found a card with the AP (``CardSession.wait_for_card`` returned)."""


@dataclass(frozen=True)
class TriesRead:
    """``CardSession.tries_left()`` returned (``None``: PIN already verified on this card)."""

    tries_left: int | None


@dataclass(frozen=True)
class LastTryConfirmed:
    """The citizen pressed "enter the PIN" on the one-try-left warning."""


@dataclass(frozen=True)
class PinSubmitted:
    """The PIN pad's OK was pressed (the PIN itself never enters the state machine)."""


@dataclass(frozen=True)
class PinVerified:
    """``verify_pin`` returned without error."""


@dataclass(frozen=True)
class RecordRead:
    """``read_record`` returned the record."""

    record: CardRecord


@dataclass(frozen=True)
class Failed:
    """The reader raised a :class:`~kiosk.card.errors.CardError`."""

    error: CardError


@dataclass(frozen=True)
class ConsentGiven:
    """The citizen pressed "send" on the consent screen."""


@dataclass(frozen=True)
class ConsentDeclined:
    """The citizen pressed "do not send": the record is dropped."""


@dataclass(frozen=True)
class Skip:
    """The citizen chose to continue without the card (possible at every step)."""


@dataclass(frozen=True)
class Retry:
    """The citizen pressed "try again" on an error screen."""


Event = (
    CardPresented
    | TriesRead
    | LastTryConfirmed
    | PinSubmitted
    | PinVerified
    | RecordRead
    | Failed
    | ConsentGiven
    | ConsentDeclined
    | Skip
    | Retry
)


class FlowError(ValueError):
    """An event that makes no sense in the current step (a bug in the shell, not the citizen)."""


class _Messages(Protocol):
    def get(self, key: str, lang: str, /, **fields: object) -> str: ...


# -- state ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardFlow:
    """One immutable state of the card screens. ``on(event)`` returns the next state."""

    step: Step
    #: Main text of the screen, and its fields.
    message_key: str
    fields: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    #: An extra line under the main text (e.g. the wrong-PIN notice above the PIN pad).
    notice_key: str | None = None
    tries_left: int | None = None
    #: Pass as ``verify_pin(..., confirm_last_try=...)``.
    last_try_confirmed: bool = False
    #: The record read from the card, in CONSENT and DONE only; personal data, hidden in repr.
    record: CardRecord | None = field(default=None, repr=False)
    #: Code of the error shown in FAILED (or of the notice), for the kiosk's event log.
    error_code: str | None = None
    actions: tuple[Action, ...] = ()

    @classmethod
    def start(cls) -> CardFlow:
        """The first screen: present the card."""
        return cls(Step.INSERT_CARD, "card.prompt.insert", actions=(Action.SKIP,))

    @property
    def finished(self) -> bool:
        """True in DONE and SKIPPED: the kiosk leaves the card screens."""
        return self.step in TERMINAL

    def text(self, messages: _Messages, lang: str) -> str:
        """The main text in ``lang`` (with the notice line, if any)."""
        main = messages.get(self.message_key, lang, **self.fields)
        if self.notice_key is None:
            return main
        return messages.get(self.notice_key, lang, **self.fields) + "\n" + main

    def on(self, event: Event) -> CardFlow:
        """The state after ``event``; :class:`FlowError` if the event does not fit this step."""
        if self.finished:
            raise FlowError(f"{type(event).__name__} after the card flow finished ({self.step.value})")
        if isinstance(event, Skip):
            return _skipped()
        if isinstance(event, Failed):
            return self._failed(event.error)
        handler = _HANDLERS.get((self.step, type(event)))
        if handler is None:
            raise FlowError(f"{type(event).__name__} is not expected in step {self.step.value}")
        return handler(self, event)

    # -- transitions ------------------------------------------------------------------------

    def _presented(self, _: CardPresented) -> CardFlow:
        return CardFlow(Step.CHECKING, "card.prompt.checking", actions=(Action.SKIP,))

    def _tries(self, event: TriesRead) -> CardFlow:
        if event.tries_left == 1:
            return _confirm_last_try()
        return _enter_pin(event.tries_left)

    def _confirmed(self, _: LastTryConfirmed) -> CardFlow:
        return replace(_enter_pin(1), last_try_confirmed=True, notice_key=None, error_code=None)

    def _submitted(self, _: PinSubmitted) -> CardFlow:
        return CardFlow(
            Step.VERIFYING,
            "card.prompt.verifying",
            tries_left=self.tries_left,
            last_try_confirmed=self.last_try_confirmed,
        )

    def _verified(self, _: PinVerified) -> CardFlow:
        return CardFlow(Step.READING, "card.prompt.reading")

    def _read(self, event: RecordRead) -> CardFlow:
        return CardFlow(
            Step.CONSENT, "card.prompt.consent", record=event.record, actions=(Action.SEND, Action.DECLINE)
        )

    def _consent(self, _: ConsentGiven) -> CardFlow:
        return CardFlow(Step.DONE, "card.prompt.remove_card", record=self.record)

    def _declined(self, _: ConsentDeclined) -> CardFlow:
        return _skipped()

    def _retry(self, _: Retry) -> CardFlow:
        if Action.RETRY not in self.actions:
            raise FlowError(f"no retry after {self.error_code}")
        return CardFlow.start()

    def _failed(self, error: CardError) -> CardFlow:
        if isinstance(error, Cancelled):
            return _skipped()
        if isinstance(error, WrongPin):
            # Back to the PIN pad, never an automatic retry: the citizen decides.
            if error.tries_left <= 1:  # one message, not "wrong PIN" stacked on the last-try warning
                return replace(_confirm_last_try(), message_key="card.prompt.wrong_pin_last_try")
            nxt = _enter_pin(error.tries_left)
            return replace(
                nxt,
                notice_key=error.message_key,
                fields=MappingProxyType({**nxt.fields, **error.message_fields()}),
                error_code=error.code,
            )
        if isinstance(error, OneTryLeft):
            return _confirm_last_try()
        if isinstance(error, BadPinFormat):
            # Nothing reached the card: the same pad again, with what a PIN looks like.
            nxt = _enter_pin(self.tries_left)
            return replace(nxt, notice_key=error.message_key, error_code=error.code,
                           last_try_confirmed=self.last_try_confirmed)
        retry = error.retryable and not isinstance(error, NoReader | PinLocked | MalformedData)
        return CardFlow(
            Step.FAILED,
            error.message_key,
            fields=MappingProxyType(error.message_fields()),
            error_code=error.code,
            actions=(Action.RETRY, Action.SKIP) if retry else (Action.SKIP,),
        )


#: Tries a fresh card allows; below this the PIN pad shows how many are left.
MAX_TRIES = 3


def _enter_pin(tries_left: int | None) -> CardFlow:
    warn = tries_left is not None and tries_left < MAX_TRIES
    return CardFlow(
        Step.ENTER_PIN,
        "card.prompt.enter_pin",
        fields=MappingProxyType({"tries_left": tries_left} if warn else {}),
        notice_key="card.prompt.tries_left" if warn else None,
        tries_left=tries_left,
        actions=(Action.SKIP,),
    )


def _confirm_last_try() -> CardFlow:
    return CardFlow(
        Step.CONFIRM_LAST_TRY,
        "card.prompt.one_try_left",
        tries_left=1,
        error_code=OneTryLeft.code,
        actions=(Action.CONFIRM, Action.SKIP),
    )


def _skipped() -> CardFlow:
    # The record, if any, is dropped here: nothing read from the card outlives a refusal.
    return CardFlow(Step.SKIPPED, "card.prompt.skipped")


_HANDLERS = {
    (Step.INSERT_CARD, CardPresented): CardFlow._presented,
    (Step.CHECKING, TriesRead): CardFlow._tries,
    (Step.CONFIRM_LAST_TRY, LastTryConfirmed): CardFlow._confirmed,
    (Step.ENTER_PIN, PinSubmitted): CardFlow._submitted,
    (Step.VERIFYING, PinVerified): CardFlow._verified,
    (Step.READING, RecordRead): CardFlow._read,
    (Step.CONSENT, ConsentGiven): CardFlow._consent,
    (Step.CONSENT, ConsentDeclined): CardFlow._declined,
    (Step.FAILED, Retry): CardFlow._retry,
}


def consent_items(record: CardRecord, messages: _Messages, lang: str) -> list[tuple[str, str]]:
    """``(label, value)`` rows of the consent screen, in ``lang``: what was read, nothing more."""
    birth = messages.get(
        "card.format.birth_date",
        lang,
        year=record.birth_date.year,
        month=record.birth_date.month,
        day=record.birth_date.day,
    )
    return [
        (messages.get("card.label.name", lang), record.name),
        (messages.get("card.label.address", lang), record.address),
        (messages.get("card.label.birth_date", lang), birth),
        (messages.get("card.label.sex", lang), messages.get(record.sex.message_key, lang)),
    ]
