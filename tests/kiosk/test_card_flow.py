"""The card screens' state machine and the message table (pure: no reader needed)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from kiosk.card import MESSAGES_PATH
from kiosk.card.errors import (
    ALL_ERRORS,
    BadPinFormat,
    Cancelled,
    CardRemoved,
    MalformedData,
    NoCard,
    NoReader,
    NotMyNumberCard,
    OneTryLeft,
    PinLocked,
    ReaderTimeout,
    WrongPin,
)
from kiosk.card.flow import (
    Action,
    CardFlow,
    CardPresented,
    ConsentDeclined,
    ConsentGiven,
    Failed,
    FlowError,
    LastTryConfirmed,
    PinSubmitted,
    PinVerified,
    RecordRead,
    Retry,
    Skip,
    Step,
    TriesRead,
    consent_items,
)
from kiosk.card.record import CardRecord, Sex
from queue_server.core.i18n import LANGUAGES
from queue_server.loaders import load_messages

RECORD = CardRecord("黒桐\u3000幹也", "東京都清瀬市観布子南１２－７－２０２", dt.date(1980, 2, 17), Sex.MALE)
MESSAGES = load_messages(MESSAGES_PATH)


def run(*events: object, state: CardFlow | None = None) -> CardFlow:
    state = state or CardFlow.start()
    for event in events:
        state = state.on(event)  # type: ignore[arg-type]
    return state


def test_happy_path_ends_with_the_record_and_consent() -> None:
    state = CardFlow.start()
    assert state.step is Step.INSERT_CARD and state.actions == (Action.SKIP,)
    state = run(CardPresented(), TriesRead(3), state=state)
    assert state.step is Step.ENTER_PIN and state.notice_key is None and not state.last_try_confirmed
    state = run(PinSubmitted(), PinVerified(), RecordRead(RECORD), state=state)
    assert state.step is Step.CONSENT and state.record is RECORD
    assert state.actions == (Action.SEND, Action.DECLINE)
    done = state.on(ConsentGiven())
    assert done.step is Step.DONE and done.finished and done.record is RECORD
    assert done.message_key == "card.prompt.remove_card"


def test_declining_consent_drops_the_record() -> None:
    state = run(CardPresented(), TriesRead(3), PinSubmitted(), PinVerified(), RecordRead(RECORD), ConsentDeclined())
    assert state.step is Step.SKIPPED and state.record is None


@pytest.mark.parametrize(
    "events",
    [
        (),
        (CardPresented(),),
        (CardPresented(), TriesRead(1)),
        (CardPresented(), TriesRead(3)),
        (CardPresented(), TriesRead(3), PinSubmitted()),
        (CardPresented(), TriesRead(3), PinSubmitted(), PinVerified()),
        (CardPresented(), TriesRead(3), PinSubmitted(), PinVerified(), RecordRead(RECORD)),
        (Failed(NoCard()),),
    ],
)
def test_skippable_at_every_step(events: tuple[object, ...]) -> None:
    state = run(*events)
    assert Action.SKIP in state.actions or state.step in (Step.VERIFYING, Step.READING, Step.CONSENT)
    skipped = state.on(Skip())
    assert skipped.step is Step.SKIPPED and skipped.record is None and skipped.finished


def test_one_try_left_warns_and_needs_confirmation() -> None:
    state = run(CardPresented(), TriesRead(1))
    assert state.step is Step.CONFIRM_LAST_TRY
    assert state.message_key == "card.prompt.one_try_left"
    assert state.actions == (Action.CONFIRM, Action.SKIP)
    with pytest.raises(FlowError):
        state.on(PinSubmitted())  # the PIN pad is not offered before the confirmation
    state = state.on(LastTryConfirmed())
    assert state.step is Step.ENTER_PIN and state.last_try_confirmed and state.tries_left == 1
    assert state.on(PinSubmitted()).last_try_confirmed


def test_wrong_pin_goes_back_to_the_pad_with_a_notice_never_to_verifying() -> None:
    state = run(CardPresented(), TriesRead(3), PinSubmitted(), Failed(WrongPin(2)))
    assert state.step is Step.ENTER_PIN
    assert state.notice_key == "card.error.wrong_pin" and state.fields["tries_left"] == 2
    assert state.error_code == "wrong_pin"
    assert "あと2回" in state.text(MESSAGES, "ja")
    # Second wrong PIN leaves one try: the warning screen comes before the pad.
    state = run(PinSubmitted(), Failed(WrongPin(1)), state=state)
    assert state.step is Step.CONFIRM_LAST_TRY and state.notice_key is None  # one warning, not two
    assert state.message_key == "card.prompt.wrong_pin_last_try"
    state = run(LastTryConfirmed(), PinSubmitted(), Failed(PinLocked()), state=state)
    assert state.step is Step.FAILED and state.actions == (Action.SKIP,)
    assert state.message_key == "card.error.pin_locked"
    with pytest.raises(FlowError):
        state.on(Retry())


def test_malformed_pin_goes_back_to_the_pad_with_its_own_notice() -> None:
    state = run(CardPresented(), TriesRead(2), PinSubmitted(), Failed(BadPinFormat()))
    assert state.step is Step.ENTER_PIN and state.tries_left == 2
    assert state.notice_key == "card.error.bad_pin_format" and state.error_code == "bad_pin_format"
    for lang in LANGUAGES:
        text = state.text(MESSAGES, lang)
        assert "4" in text and "{" not in text
    # After the last-try confirmation the confirmation is kept: no second warning screen.
    state = run(CardPresented(), TriesRead(1), LastTryConfirmed(), PinSubmitted(), Failed(BadPinFormat()))
    assert state.step is Step.ENTER_PIN and state.last_try_confirmed


def test_pad_shows_tries_left_when_some_were_used() -> None:
    state = run(CardPresented(), TriesRead(2))
    assert state.notice_key == "card.prompt.tries_left"
    assert "2" in state.text(MESSAGES, "en")


def test_verify_refused_for_one_try_left_goes_to_the_warning() -> None:
    state = run(CardPresented(), TriesRead(2), PinSubmitted(), Failed(OneTryLeft()))
    assert state.step is Step.CONFIRM_LAST_TRY


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (NoReader(), False),
        (NoCard(), True),
        (CardRemoved(), True),
        (NotMyNumberCard(), True),
        (PinLocked(), False),
        (MalformedData(), False),
        (ReaderTimeout(), True),
    ],
)
def test_error_screens(error: Exception, retry: bool) -> None:
    state = run(CardPresented(), TriesRead(3), PinSubmitted(), PinVerified(), Failed(error))  # type: ignore[arg-type]
    assert state.step is Step.FAILED and state.record is None
    assert state.message_key == error.message_key  # type: ignore[attr-defined]
    assert (Action.RETRY in state.actions) is retry
    assert Action.SKIP in state.actions
    if retry:
        assert state.on(Retry()) == CardFlow.start()


def test_cancel_is_a_skip() -> None:
    assert run(Failed(Cancelled())).step is Step.SKIPPED


def test_out_of_order_events_are_rejected() -> None:
    with pytest.raises(FlowError):
        CardFlow.start().on(PinVerified())
    with pytest.raises(FlowError):
        run(CardPresented()).on(RecordRead(RECORD))
    done = run(CardPresented(), TriesRead(3), PinSubmitted(), PinVerified(), RecordRead(RECORD), ConsentGiven())
    with pytest.raises(FlowError):
        done.on(Skip())


def test_state_repr_hides_the_record() -> None:
    state = run(CardPresented(), TriesRead(3), PinSubmitted(), PinVerified(), RecordRead(RECORD))
    assert "黒桐" not in repr(state) and "清瀬" not in repr(state) and "1980" not in repr(state)


# -- messages -------------------------------------------------------------------------------


def test_every_message_has_all_seven_languages() -> None:
    assert MESSAGES.missing() == []
    assert set(LANGUAGES) == {"ja", "en", "zh", "ko", "vi", "pt", "ja-easy"}


def test_every_key_the_code_uses_exists() -> None:
    keys = {cls.message_key for cls in ALL_ERRORS} | {a.message_key for a in Action}
    keys |= {s.message_key for s in Sex} | {"card.error.generic"}
    for state in (
        CardFlow.start(),
        run(CardPresented()),
        run(CardPresented(), TriesRead(1)),
        run(CardPresented(), TriesRead(2)),
        run(CardPresented(), TriesRead(3), PinSubmitted()),
        run(CardPresented(), TriesRead(3), PinSubmitted(), PinVerified()),
        run(CardPresented(), TriesRead(3), PinSubmitted(), PinVerified(), RecordRead(RECORD)),
        run(CardPresented(), TriesRead(3), PinSubmitted(), PinVerified(), RecordRead(RECORD), ConsentGiven()),
        run(Skip()),
    ):
        keys.add(state.message_key)
        if state.notice_key:
            keys.add(state.notice_key)
    missing = keys - set(MESSAGES.table)
    assert not missing


@pytest.mark.parametrize("lang", LANGUAGES)
def test_messages_format_in_every_language(lang: str) -> None:
    for key, texts in MESSAGES.table.items():
        text = MESSAGES.get(key, lang, tries_left=2, year=1980, month=2, day=17)
        assert text.strip(), key
        assert "{" not in text and "}" not in text, key
        if "{tries_left}" in texts["ja"]:
            assert "{tries_left}" in texts[lang], f"{key} [{lang}] lost the tries_left field"
    if lang == "ja-easy":
        # やさしい日本語: kana only, no kanji, in every text.
        for key, texts in MESSAGES.table.items():
            assert not re.search(r"[\u4e00-\u9fff]", texts[lang]), key


@pytest.mark.parametrize(
    ("lang", "birth"),
    [("ja", "1980年2月17日"), ("en", "1980-02-17"), ("vi", "17/02/1980"), ("pt", "17/02/1980"), ("ko", "1980년 2월 17일")],
)
def test_consent_items(lang: str, birth: str) -> None:
    rows = consent_items(RECORD, MESSAGES, lang)
    assert [value for _, value in rows] == [RECORD.name, RECORD.address, birth, MESSAGES.get("card.sex.male", lang)]
    assert rows[0][0] == MESSAGES.get("card.label.name", lang)
