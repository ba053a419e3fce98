"""Typed card errors: each has a stable ``code`` (for the kiosk's state machine and the server's
event log) and a ``message_key`` into ``kiosk/card/messages.toml`` (for the citizen's screen).

Privacy rule for everything in this module: an error's text and ``repr`` carry only the kind of
failure and counters (tries left, a byte offset, a status word). Never a PIN, never card data —
exception strings end up in logs and tracebacks.
"""

from __future__ import annotations


class CardError(Exception):
    """Base class of every error the card reader raises to the kiosk."""

    code: str = "card_error"
    message_key: str = "card.error.generic"
    #: Whether the citizen may simply try again (re-present the card or re-enter the PIN);
    #: ``False`` means "go to the counter" or "skip the card step".
    retryable: bool = True

    def __init__(self, detail: str = "") -> None:
        # ``detail`` is for developers (logs); it must never contain a PIN or card data.
        self.detail = detail
        super().__init__(detail or self.code)

    def message_fields(self) -> dict[str, object]:
        """The ``str.format`` fields the message text needs (e.g. ``tries_left``)."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, detail={self.detail!r})"


class NoReader(CardError):
    """No PC/SC reader (or the PC/SC service itself) appeared before the timeout."""

    code = "no_reader"
    message_key = "card.error.no_reader"
    retryable = False


class NoCard(CardError):
    """A reader is there but no card was presented before the timeout."""

    code = "no_card"
    message_key = "card.error.no_card"


class CardRemoved(CardError):
    """The card left the reader (or the field, for contactless) during the session."""

    code = "card_removed"
    message_key = "card.error.card_removed"


class NotMyNumberCard(CardError):
    """The card has no 券面事項入力補助AP (SELECT by AID answered 6A 82 or similar)."""

    code = "not_my_number_card"
    message_key = "card.error.not_my_number_card"
    # Retryable: the citizen may simply have presented another IC card (a transit card).


class WrongPin(CardError):
    """The PIN was wrong; the card still allows ``tries_left`` (≥ 1) more tries.

    The reader never retries by itself: the citizen decides whether to enter the PIN again.
    """

    code = "wrong_pin"
    message_key = "card.error.wrong_pin"

    def __init__(self, tries_left: int, detail: str = "") -> None:
        self.tries_left = tries_left
        super().__init__(detail or f"wrong PIN, {tries_left} tries left")

    def message_fields(self) -> dict[str, object]:
        return {"tries_left": self.tries_left}

    def __repr__(self) -> str:
        return f"WrongPin(tries_left={self.tries_left})"


class OneTryLeft(CardError):
    """Raised *before* sending VERIFY when only one try is left and the kiosk has not confirmed.

    One more wrong PIN locks the card until the citizen goes to the city office, so the kiosk must
    warn and ask for an explicit "yes, try" before the last attempt.
    """

    code = "one_try_left"
    message_key = "card.prompt.one_try_left"

    def __init__(self, detail: str = "") -> None:
        self.tries_left = 1
        super().__init__(detail or "one PIN try left; confirmation needed before verifying")


class BadPinFormat(CardError):
    """The PIN is not exactly 4 digits: refused before anything is sent to the card.

    The kiosk's own pad only submits 4 digits, so this is a guard for other callers; it is still a
    citizen-facing error (back to the PIN pad with a short notice), never a bare ``ValueError``.
    No try is used.
    """

    code = "bad_pin_format"
    message_key = "card.error.bad_pin_format"


class PinLocked(CardError):
    """The PIN is blocked (no tries left): only the city office can unlock it."""

    code = "pin_locked"
    message_key = "card.error.pin_locked"
    retryable = False


class MalformedData(CardError):
    """The card answered something this reader cannot understand (bad TLV, bad status word)."""

    code = "malformed_data"
    message_key = "card.error.malformed_data"
    retryable = False


class ReaderTimeout(CardError):
    """The reader or card stopped answering within the command timeout."""

    code = "reader_timeout"
    message_key = "card.error.reader_timeout"


class Cancelled(CardError):
    """The kiosk cancelled a wait (the citizen pressed "skip" while we waited for a card)."""

    code = "cancelled"
    message_key = "card.error.cancelled"


#: Every error class, for tests and for the message table check.
ALL_ERRORS: tuple[type[CardError], ...] = (
    NoReader,
    NoCard,
    CardRemoved,
    NotMyNumberCard,
    WrongPin,
    OneTryLeft,
    BadPinFormat,
    PinLocked,
    MalformedData,
    ReaderTimeout,
    Cancelled,
)
