"""The kiosk flow as a pure state machine: every path without Kivy, sockets or a clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from kiosk import flow as F
from kiosk.card import flow as card_flow
from kiosk.card.errors import NoCard, WrongPin
from kiosk.card.record import CardRecord, Sex
from queue_server.core.i18n import LANGUAGES
from queue_server.loaders import load_catalogue, load_messages

ROOT = Path(__file__).resolve().parents[2]
# 死亡① (domain.md §1): deceased 80, head of household, 3 remain, house and land, account transfer,
# moped, seal card, disability certificate, late-stage elderly insurance, care insurance, pension, water.
DEATH_1 = {
    "death_filed": "no", "deceased_age": "80", "deceased_head": "yes", "household_remaining": "3",
    "deceased_pension": "basic_only", "children_under_18": "no", "had_my_number_card": "no",
    "seal_registered": "yes", "disability_certificate": "yes", "owned_real_estate": "yes", "owned_moped": "yes",
    "owned_car": "no", "tax_account_transfer": "yes", "water_contract": "yes", "inherited_farmland": "no",
    "elderly_pass": "no", "household_on_nhi": "no", "high_medical_costs": "no", "deceased_income_return": "no",
    "proxy": "no",
}


@pytest.fixture(scope="module")
def catalogue():
    import tomllib

    with (ROOT / "config" / "site.toml").open("rb") as f:
        site = tomllib.load(f)
    return load_catalogue(ROOT / "config" / "catalogue", site)


def make(catalogue, **kw) -> tuple[F.Kiosk, F.KioskState]:
    kiosk = F.Kiosk(F.FlowConfig(catalogue, device="kiosk-1", key_prefix="kiosk-1-t", **kw))
    state, _ = kiosk.step(kiosk.initial(), F.Connected())
    return kiosk, state


def run(kiosk, state, *events):
    commands = []
    for e in events:
        state, cmds = kiosk.step(state, e)
        commands += cmds
    return state, commands


def answer_all(kiosk, state, answers):
    """Answer each question the flow asks from ``answers`` (number questions on the pad)."""
    asked = []
    while state.screen is F.Screen.QUESTION:
        qid = state.question
        asked.append(qid)
        q = kiosk.catalogue.questions[qid]
        value = answers[qid]
        if q.kind == "number" and value != "unknown":
            state, _ = run(kiosk, state, *(F.PadDigit(d) for d in value), F.PadDone())
        elif q.kind == "multi" and value != "unknown":
            state, _ = run(kiosk, state, *(F.ToggleChoice(v) for v in value.split(",")), F.Answer("done"))
        else:
            state, _ = kiosk.step(state, F.Answer(value))
    return state, asked


def test_death_1_walks_language_purpose_questions_plan_to_an_issue_request(catalogue):
    kiosk, s = make(catalogue)
    s, _ = run(kiosk, s, F.ChooseLanguage("en"), F.ChoosePurpose("death"))
    assert s.screen is F.Screen.QUESTION and s.lang == "en"
    n, left = kiosk.progress(s)
    assert n == 1 and left >= 10
    s, asked = answer_all(kiosk, s, DEATH_1)
    assert "deceased_on_nhi" not in asked  # 80 years old: late-stage elderly insurance settles it
    assert s.screen is F.Screen.PLAN
    deps = [st["department"] for st in s.plan["steps"]]
    assert deps == ["shimin", "hoken_nenkin", "kaigo", "shogai", "zeimu", "nouzei", "suido"]
    assert s.plan["lang"] == "en"
    s, cmds = run(kiosk, s, F.TakeNumber())
    assert s.screen is F.Screen.ISSUING
    (issue,) = [c for c in cmds if isinstance(c, F.Issue)]
    assert issue.key == "kiosk-1-t-000001" and issue.request["purposes"] == ["death"]
    assert issue.request["answers"]["deceased_age"] == "80" and issue.request["assistance"] is False
    assert "prefill" not in issue.request


def test_plan_shows_at_once_and_the_server_waits_fill_in_later_and_stale_replies_are_dropped(catalogue):
    kiosk, s = make(catalogue)
    s, _ = run(kiosk, s, F.ChooseLanguage("ja"), F.ChoosePurpose("death"))
    s, _ = answer_all(kiosk, s, DEATH_1)
    # the last answer's step returned a FetchPlan
    s2, cmds = kiosk.step(s, F.ChooseLanguage("ko"))
    (fetch,) = cmds
    assert isinstance(fetch, F.FetchPlan) and fetch.lang == "ko" and s2.plan["lang"] == "ko"
    stale, _ = kiosk.step(s2, F.PlanReceived(fetch.seq - 1, {"wait_minutes": 99}))
    assert stale.waits is None
    got, _ = kiosk.step(s2, F.PlanReceived(fetch.seq, {"plan": s2.plan, "wait_minutes": 12.5, "visit_minutes": 80}))
    assert got.waits == {"wait_minutes": 12.5, "visit_minutes": 80}


def test_offline_plan_is_local_and_says_no_waits_then_refetches_on_reconnect(catalogue):
    kiosk, s = make(catalogue)
    s, _ = run(kiosk, s, F.Disconnected(2.0), F.ChooseLanguage("en"), F.ChoosePurpose("death"))
    s, _ = answer_all(kiosk, s, DEATH_1)
    assert s.screen is F.Screen.PLAN and s.plan_offline and s.waits is None
    s, cmds = kiosk.step(s, F.Connected())
    assert [type(c) for c in cmds] == [F.FetchPlan]


def test_back_re_asks_the_last_question_and_from_the_first_returns_to_purposes(catalogue):
    kiosk, s = make(catalogue)
    s, _ = run(kiosk, s, F.ChooseLanguage("ja"), F.ChoosePurpose("death"))
    first = s.question
    s, _ = run(kiosk, s, F.Answer("no"))
    second = s.question
    assert second != first
    s, _ = run(kiosk, s, F.Back())
    assert s.question == first and s.answers == ()
    s, _ = run(kiosk, s, F.Back())
    assert s.screen is F.Screen.PURPOSE and s.purposes == ()
    s, _ = run(kiosk, s, F.Back())
    assert s.screen is F.Screen.LANGUAGE


def test_number_pad_checks_the_range_and_unknown_is_always_possible(catalogue):
    kiosk, s = make(catalogue)
    s, _ = run(kiosk, s, F.ChooseLanguage("ja"), F.ChoosePurpose("death"), F.Answer("no"))
    assert s.question == "deceased_age"
    s, _ = run(kiosk, s, *(F.PadDigit(d) for d in "999"), F.PadDone())
    assert s.question == "deceased_age" and s.notice == "question.out_of_range" and s.entry == ""
    s, _ = run(kiosk, s, F.PadDigit("8"), F.PadDigit("1"), F.PadDelete(), F.PadDigit("0"))
    assert s.entry == "80"
    s, _ = run(kiosk, s, F.Answer("unknown"))
    assert dict(s.answers)["deceased_age"] == "unknown"


def test_certificate_with_a_convenience_store_alternative_says_so_before_the_list(catalogue):
    kiosk, s = make(catalogue)
    s, _ = run(kiosk, s, F.ChooseLanguage("en"), F.ChoosePurpose("certificate"))
    assert s.question == "certificates"
    s, _ = run(kiosk, s, F.Answer("done"))
    assert s.notice == "question.choose_one"
    s, _ = run(kiosk, s, F.ToggleChoice("juminhyo"), F.ToggleChoice("nouzei"), F.ToggleChoice("nouzei"), F.Answer("x"))
    assert s.screen is F.Screen.CONVENIENCE
    assert [a["procedure"] for a in kiosk.convenience_items(s)] == ["juminhyo"]
    s, _ = run(kiosk, s, F.TakeNumber())
    assert s.screen is F.Screen.PLAN
    s, _ = run(kiosk, s, F.Back())
    assert s.screen is F.Screen.CONVENIENCE


def test_offline_issue_waits_then_completes_once_for_its_key(catalogue):
    kiosk, s = make(catalogue)
    s, _ = run(kiosk, s, F.ChooseLanguage("ja"), F.ChoosePurpose("death"))
    s, _ = answer_all(kiosk, s, DEATH_1)
    s, cmds = run(kiosk, s, F.Disconnected(1.0), F.TakeNumber())
    assert s.screen is F.Screen.OFFLINE
    key = s.pending_key
    s, _ = run(kiosk, s, F.Connected())
    assert s.screen is F.Screen.ISSUING
    result = {"ticket": {"number": "7"}}
    s, _ = run(kiosk, s, F.IssueSucceeded(key, result))
    assert s.screen is F.Screen.DONE and s.issue_result == result and s.pending_key is None
    again, cmds = run(kiosk, s, F.IssueSucceeded(key, {"ticket": {"number": "8"}}))
    assert again == s and cmds == []


def test_abandon_gives_up_the_pending_ticket_and_a_late_reply_changes_nothing(catalogue):
    kiosk, s = make(catalogue)
    s, _ = run(kiosk, s, F.Disconnected(4.0), F.ChooseLanguage("en"), F.ChoosePurpose("death"))
    s, _ = answer_all(kiosk, s, DEATH_1)
    s, _ = run(kiosk, s, F.TakeNumber())
    key = s.pending_key
    s, cmds = run(kiosk, s, F.Abandon())
    assert s.screen is F.Screen.ABANDONED and cmds == [F.AbandonIssue(key)]
    late, cmds = run(kiosk, s, F.IssueSucceeded(key, {"ticket": {"number": "3"}}))
    assert late.screen is F.Screen.ABANDONED and cmds == []
    s, _ = run(kiosk, s, F.Finish())
    assert s.screen is F.Screen.LANGUAGE and s.answers == () and s.key_seq == 1


def test_printer_failure_shows_the_ticket_and_reports_a_device_fault(catalogue):
    kiosk, s = make(catalogue, printer_enabled=True)
    s, _ = run(kiosk, s, F.ChooseLanguage("ja"), F.ChoosePurpose("death"))
    s, _ = answer_all(kiosk, s, DEATH_1)
    s, _ = run(kiosk, s, F.TakeNumber())
    s, cmds = run(kiosk, s, F.IssueSucceeded(s.pending_key, {"ticket": {"number": "5"}}))
    assert s.screen is F.Screen.PRINTING and isinstance(cmds[0], F.PrintTicket)
    s, cmds = run(kiosk, s, F.PrintFailed("paper_out", "error.paper_out", "paper end"))
    assert s.screen is F.Screen.DONE and s.print_error == "error.paper_out" and not s.printed
    assert cmds == [F.SendFault("printer", "paper_out", "ticket 5 not printed: paper end")]
    # Staff load paper; "print again" sends the same ticket to the printer once more.
    s, cmds = run(kiosk, s, F.Reprint())
    assert s.screen is F.Screen.PRINTING and s.print_error is None
    assert cmds == [F.PrintTicket({"ticket": {"number": "5"}}, "ja")]
    s, _ = run(kiosk, s, F.Printed())
    assert s.screen is F.Screen.DONE and s.printed
    # Nothing to reprint once it printed (a double tap on the button does nothing).
    assert run(kiosk, s, F.Reprint()) == (s, [])


def test_procedure_list_on_request_prints_once_and_only_when_configured(catalogue):
    result = {"ticket": {"number": "6"}}
    for cfg, offered in ((dict(printer_enabled=True, list_on_request=True), True),
                         (dict(printer_enabled=True), False), (dict(list_on_request=True), False)):
        kiosk, s = make(catalogue, **cfg)
        s, _ = run(kiosk, s, F.ChooseLanguage("vi"), F.ChoosePurpose("death"))
        s, _ = answer_all(kiosk, s, DEATH_1)
        s, _ = run(kiosk, s, F.TakeNumber())
        s, _ = run(kiosk, s, F.IssueSucceeded(s.pending_key, result), F.Printed())
        assert s.screen is F.Screen.DONE and kiosk.can_print_list(s) is offered
        s, cmds = run(kiosk, s, F.PrintListPressed())
        if not offered:
            assert cmds == [] and not s.list_printed
            continue
        assert cmds == [F.PrintList(result, "vi")] and s.list_printed
        assert run(kiosk, s, F.PrintListPressed()) == (s, [])  # a second tap prints nothing
        s, _ = run(kiosk, s, F.Finish())
        assert not s.list_printed  # the next citizen gets the offer again


def test_server_refusal_shows_the_error_and_back_returns_to_the_list(catalogue):
    kiosk, s = make(catalogue)
    s, _ = run(kiosk, s, F.ChooseLanguage("ja"), F.ChoosePurpose("death"))
    s, _ = answer_all(kiosk, s, DEATH_1)
    s, _ = run(kiosk, s, F.TakeNumber())
    s, _ = run(kiosk, s, F.IssueFailed(s.pending_key, "storage_error"))
    assert s.screen is F.Screen.ERROR and s.error_code == "storage_error"
    s, _ = run(kiosk, s, F.Back())
    assert s.screen is F.Screen.PLAN


def test_idle_countdown_appears_then_wipes_everything_but_the_device_fields(catalogue):
    kiosk, s = make(catalogue, idle_seconds=60, warning_seconds=20)
    s, _ = run(kiosk, s, F.Touched(1000.0), F.ChooseLanguage("en"), F.ToggleLargeText(), F.ChoosePurpose("death"),
               F.Answer("no"))
    assert s.idle_left(1059.0, kiosk.config) is None
    assert s.idle_left(1060.0, kiosk.config) == 20
    assert s.idle_left(1075.5, kiosk.config) == 5
    kept, _ = run(kiosk, s, F.Tick(1070.0), F.Touched(1071.0), F.Tick(1100.0))  # "continue" = any touch
    assert kept.screen is F.Screen.QUESTION
    s, cmds = run(kiosk, s, F.Tick(1080.0))
    assert s.screen is F.Screen.LANGUAGE and s.lang == "ja" and not s.large_text
    assert s.answers == () and s.purposes == () and s.plan is None and s.online
    assert F.WipeInput() in cmds


def test_reset_abandons_a_pending_issue_and_closes_the_card_session(catalogue):
    kiosk, s = make(catalogue, card_enabled=True)
    s, _ = run(kiosk, s, F.ChooseLanguage("ja"), F.ChoosePurpose("death"))
    s, _ = answer_all(kiosk, s, DEATH_1)
    s, _ = run(kiosk, s, F.TakeNumber(), F.UseCard())
    s, cmds = run(kiosk, s, F.Restart())
    assert cmds[0] == F.CardClose()
    plain, s2 = make(catalogue)
    s2, _ = run(plain, s2, F.ChooseLanguage("ja"), F.ChoosePurpose("certificate"),
                F.ToggleChoice("nouzei"), F.Answer("x"), F.Disconnected(), F.TakeNumber())
    _, cmds = plain.step(s2, F.Restart())
    assert cmds[0] == F.AbandonIssue(s2.pending_key)


def test_card_prefill_goes_into_the_issue_request_after_consent_only(catalogue):
    kiosk, s = make(catalogue, card_enabled=True)
    s, _ = run(kiosk, s, F.ChooseLanguage("ja"), F.ChoosePurpose("death"))
    s, _ = answer_all(kiosk, s, DEATH_1)
    s, cmds = run(kiosk, s, F.TakeNumber())
    assert s.screen is F.Screen.CARD_OFFER
    s, cmds = run(kiosk, s, F.UseCard())
    assert s.screen is F.Screen.CARD and cmds == [F.CardWait()]
    s, cmds = run(kiosk, s, F.CardEvent(card_flow.CardPresented()))
    assert cmds == [F.CardTriesLeft()]
    s, cmds = run(kiosk, s, F.CardEvent(card_flow.TriesRead(3)), F.CardEvent(card_flow.PinSubmitted()))
    assert cmds == [F.CardVerify(False)]
    s, _ = run(kiosk, s, F.CardEvent(card_flow.Failed(WrongPin(2))))
    assert s.card.step is card_flow.Step.ENTER_PIN and s.card.tries_left == 2
    s, cmds = run(kiosk, s, F.CardEvent(card_flow.PinSubmitted()), F.CardEvent(card_flow.PinVerified()))
    assert cmds == [F.CardVerify(False), F.CardRead()]
    record = CardRecord("黒桐\u3000幹也", "山形県酒田市本町二丁目2番45号", dt.date(1980, 2, 17), Sex.MALE)
    s, _ = run(kiosk, s, F.CardEvent(card_flow.RecordRead(record)))
    assert s.card.step is card_flow.Step.CONSENT
    s, cmds = run(kiosk, s, F.CardEvent(card_flow.ConsentGiven()))
    assert cmds[0] == F.CardClose()
    (issue,) = [c for c in cmds if isinstance(c, F.Issue)]
    assert issue.request["prefill"]["name"] == "黒桐\u3000幹也"
    assert "黒桐" not in repr(s) and "黒桐" not in repr(issue)  # personal data stays out of logs


def test_card_can_be_skipped_at_every_step_and_errors_offer_retry(catalogue):
    kiosk, s = make(catalogue, card_enabled=True)
    s, _ = run(kiosk, s, F.ChooseLanguage("ja"), F.ChoosePurpose("death"))
    s, _ = answer_all(kiosk, s, DEATH_1)
    s, _ = run(kiosk, s, F.TakeNumber(), F.UseCard(), F.CardEvent(card_flow.Failed(NoCard())))
    assert s.card.step is card_flow.Step.FAILED and card_flow.Action.RETRY in s.card.actions
    s, cmds = run(kiosk, s, F.CardEvent(card_flow.Retry()))
    assert cmds == [F.CardClose(), F.CardWait()]
    s, cmds = run(kiosk, s, F.CardEvent(card_flow.Skip()))
    assert s.screen is F.Screen.ISSUING and cmds[0] == F.CardClose()
    (issue,) = [c for c in cmds if isinstance(c, F.Issue)]
    assert "prefill" not in issue.request


def test_staff_assist_needs_the_pin_and_marks_the_ticket_for_assistance(catalogue):
    kiosk, s = make(catalogue, staff_pin="4321")
    s, _ = run(kiosk, s, F.StaffPressed())
    assert s.screen is F.Screen.STAFF_PIN
    s, _ = run(kiosk, s, F.StaffPinSubmitted("1111"))
    assert s.notice == "staff.pin_wrong" and not s.assist
    s, _ = run(kiosk, s, F.StaffPinSubmitted("4321"))
    assert s.assist and s.screen is F.Screen.PURPOSE
    assert "4321" not in repr(s) and "4321" not in repr(F.StaffPinSubmitted("4321"))
    s, _ = run(kiosk, s, F.ChoosePurpose("certificate"), F.ToggleChoice("nouzei"), F.Answer("x"), F.TakeNumber())
    (issue,) = [c for c in run(kiosk, s, F.Back())[1]] or [None]  # Back on ISSUING does nothing
    assert issue is None
    _, cmds = kiosk.step(F.KioskState(screen=F.Screen.PLAN, plan=s.plan, purposes=s.purposes, online=True,
                                      answers=s.answers, assist=True), F.TakeNumber())
    assert cmds[0].request["assistance"] is True
    locked, _ = run(kiosk, kiosk.initial(), F.StaffPressed(), *(F.StaffPinSubmitted("0") for _ in range(3)))
    assert locked.screen is F.Screen.LANGUAGE and not locked.assist


def test_no_staff_pin_configured_means_no_staff_mode(catalogue):
    kiosk, s = make(catalogue)
    s, _ = run(kiosk, s, F.StaffPressed())
    assert s.screen is F.Screen.LANGUAGE


def test_help_is_sent_online_and_queued_offline(catalogue):
    kiosk, s = make(catalogue)
    s, cmds = run(kiosk, s, F.HelpPressed())
    assert cmds == [F.SendHelp("staff_help")] and s.notice == "help.sent"
    s, cmds = run(kiosk, s, F.Disconnected(1), F.HelpPressed())
    assert s.notice == "help.queued"


def booking_reply(answers) -> dict:
    """What the server's ``plan`` answers for a typed booking code (waits and the booking)."""
    return {"plan": None, "wait_minutes": 7.0, "visit_minutes": 55.0,
            "booking": {"purposes": ["death"], "answers": dict(answers)}}


def test_a_typed_reservation_code_shows_the_bookings_list_before_the_number(catalogue):
    kiosk, s = make(catalogue)
    s, _ = run(kiosk, s, F.ChooseLanguage("ja"), F.ChooseReservation(), F.PadDigit("1"), F.PadDone())
    assert s.notice == "reservation.too_short" and s.screen is F.Screen.RESERVATION
    s, cmds = run(kiosk, s, *(F.PadDigit(d) for d in "2034567"), F.PadDone())  # the 7th digit is ignored
    # no number yet: the server is asked for the booking's list
    assert s.screen is F.Screen.RESERVATION and s.notice == "reservation.checking" and s.pending_key is None
    assert cmds == [F.FetchPlan(s.plan_seq, (), {}, "ja", reservation_code="120345")]
    s, cmds = run(kiosk, s, F.PlanReceived(s.plan_seq, booking_reply(DEATH_1)))
    # the answers given at home are not asked again; the reply's waits fill the list at once
    assert s.screen is F.Screen.PLAN and cmds == [] and s.purposes == ("death",)
    assert s.answer_map == {k: v for k, v in DEATH_1.items() if k in catalogue.questions}
    assert s.plan["steps"] and s.waits["wait_minutes"] == 7.0 and s.notice is None
    s, cmds = run(kiosk, s, F.TakeNumber())
    (issue,) = [c for c in cmds if isinstance(c, F.Issue)]
    assert s.screen is F.Screen.ISSUING and issue.request["reservation_code"] == "120345"
    assert issue.request["purposes"] == ["death"]


def test_a_typed_code_the_server_refuses_is_said_before_any_number(catalogue):
    kiosk, s = make(catalogue)
    s, _ = run(kiosk, s, F.ChooseLanguage("en"), F.ChooseReservation(), *(F.PadDigit(d) for d in "120345"),
               F.PadDone())
    s, cmds = run(kiosk, s, F.PlanFailed(s.plan_seq, "booking_cancelled"))
    assert s.screen is F.Screen.ERROR and s.error_code == "booking_cancelled" and cmds == []
    s, _ = run(kiosk, s, F.Back())  # Back lets the citizen type it again
    assert s.screen is F.Screen.RESERVATION and s.reservation_code is None and s.entry == ""
    # Back while the lookup runs: the late reply changes nothing, and no code sticks to a walk-in
    s, _ = run(kiosk, s, *(F.PadDigit(d) for d in "482913"), F.PadDone())
    seq = s.plan_seq
    s, _ = run(kiosk, s, F.Back())
    assert s.screen is F.Screen.PURPOSE and s.reservation_code is None
    assert run(kiosk, s, F.PlanReceived(seq, booking_reply(DEATH_1)))[0] == s


def test_a_typed_code_checks_in_at_once_without_the_server_and_asks_what_the_booking_lacks(catalogue):
    kiosk, s0 = make(catalogue)
    s0, _ = run(kiosk, s0, F.ChooseLanguage("ja"))
    # offline: no list to show; the held check-in goes when the server is back (it plans the route)
    s, cmds = run(kiosk, s0, F.ChooseReservation(), *(F.PadDigit(d) for d in "120345"),
                  F.Disconnected(2.0), F.PadDone())
    (issue,) = [c for c in cmds if isinstance(c, F.Issue)]
    assert s.screen is F.Screen.OFFLINE and issue.request["reservation_code"] == "120345"
    assert "purposes" not in issue.request
    # the lookup itself fails on a lost connection: the same
    s, _ = run(kiosk, s0, F.ChooseReservation(), *(F.PadDigit(d) for d in "120345"), F.PadDone())
    s, cmds = run(kiosk, s, F.PlanFailed(s.plan_seq, "offline"))
    assert s.screen is F.Screen.ISSUING and [c.request["reservation_code"] for c in cmds] == ["120345"]
    # a booking made at the desk without answers: its questions are asked, then the list
    s, _ = run(kiosk, s0, F.ChooseReservation(), *(F.PadDigit(d) for d in "120345"), F.PadDone())
    s, _ = run(kiosk, s, F.PlanReceived(s.plan_seq, booking_reply({})))
    assert s.screen is F.Screen.QUESTION and s.reservation_code == "120345"


def test_reservation_check_in_offers_the_card_first_when_a_reader_is_there(catalogue):
    kiosk, s = make(catalogue, card_enabled=True)
    s, _ = run(kiosk, s, F.ChooseLanguage("en"), F.ChooseReservation(), *(F.PadDigit(d) for d in "482913"),
               F.PadDone())
    s, _ = run(kiosk, s, F.PlanReceived(s.plan_seq, booking_reply(DEATH_1)), F.TakeNumber())
    assert s.screen is F.Screen.CARD_OFFER
    s2, _ = run(kiosk, s, F.Back())
    assert s2.screen is F.Screen.PLAN  # back to the booking's list
    s, cmds = run(kiosk, s, F.SkipCard())
    assert cmds[0].request["reservation_code"] == "482913"


def test_every_purpose_reaches_a_list_with_unknown_answers(catalogue):
    kiosk, s0 = make(catalogue)
    for purpose in F.PURPOSES:
        s, _ = run(kiosk, s0, F.ChooseLanguage("vi"), F.ChoosePurpose(purpose))
        for _ in range(60):
            if s.screen is not F.Screen.QUESTION:
                break
            s, _ = kiosk.step(s, F.Answer("unknown"))
        assert s.screen in (F.Screen.PLAN, F.Screen.CONVENIENCE), purpose
        assert s.plan["steps"], purpose


def test_kiosk_messages_exist_in_every_language_with_the_same_fields():
    import string

    messages = load_messages(ROOT / "kiosk" / "messages.toml")
    assert messages.missing() == []
    for key, texts in messages.table.items():
        fields = {lang: {f for _, f, _, _ in string.Formatter().parse(texts[lang]) if f} for lang in LANGUAGES}
        assert len({frozenset(v) for v in fields.values()}) == 1, (key, fields)


def test_every_kiosk_text_has_a_glyph_in_the_fonts_of_its_language(catalogue):
    """No tofu: each string the kiosk can show, in each language, is drawable by the font runs
    kiosk/fonts.py picks (the screens themselves are checked by eye in the screenshots)."""
    from kiosk.card import MESSAGES_PATH as CARD_MESSAGES
    from kiosk.fonts import missing
    from queue_server.core.i18n import LANGUAGE_NAMES, pick

    texts: list[tuple[str, str]] = [(name, code) for code, name in LANGUAGE_NAMES.items()]
    for path in (ROOT / "kiosk" / "messages.toml", CARD_MESSAGES):
        for per_lang in load_messages(path).table.values():
            texts += [(t, lang) for lang, t in per_lang.items()]
    for lang in LANGUAGES:
        for p in catalogue.purposes.values():
            texts.append((pick(p.name, lang), lang))
        for q in catalogue.questions.values():
            texts += [(pick(q.text, lang), lang), (pick(q.help, lang), lang)]
            texts += [(pick(t, lang), lang) for t in q.choice_text.values()]
        for pr in catalogue.procedures.values():
            texts.append((pick(pr.name, lang), lang))
        texts += [(pick(d.name, lang), lang) for d in catalogue.documents.values()]
        texts += [(pick(t, lang), lang) for t in catalogue.department_names.values()]
        texts += [(pick(t, lang), lang) for t in catalogue.labels.values()]
        texts += [(pick(a.text, lang), lang) for a in catalogue.alternatives.values()]
        texts += [(pick(d.text, lang), lang) for d in catalogue.deadlines.values()]
    bad = {(lang, ch) for text, lang in texts for ch in missing(text, lang)}
    assert not bad, sorted(bad)[:20]


def test_with_staff_calls_staff_and_opens_the_staff_pad_on_the_first_screens(catalogue):
    kiosk, s = make(catalogue, staff_pin="2468")
    s, cmds = run(kiosk, s, F.AssistRequested())
    assert s.screen is F.Screen.STAFF_PIN and s.notice == "assist.called"
    assert cmds[0] == F.SendHelp("assist_request")
    s, _ = run(kiosk, s, F.StaffPinSubmitted("2468"))
    assert s.assist and s.screen is F.Screen.PURPOSE
    # mid-visit: staff are called, nothing the citizen entered is lost
    kiosk, s = make(catalogue, staff_pin="2468")
    s, _ = run(kiosk, s, F.ChooseLanguage("ja"), F.ChoosePurpose("death"))
    before = s.screen, s.question
    s, cmds = run(kiosk, s, F.AssistRequested())
    assert (s.screen, s.question) == before and s.notice == "assist.called"
    assert cmds == [F.SendHelp("assist_request")]


def test_progress_is_a_likely_total_not_the_maximum(catalogue):
    kiosk, s = make(catalogue)
    s, _ = run(kiosk, s, F.ChooseLanguage("ja"), F.ChoosePurpose("death"))
    n, left = kiosk.progress(s)
    assert n == 1 and kiosk.estimated_total(s) < n + left  # fewer than the 21 a death could ask
    # along the whole 死亡① walk the estimate stays between this question and the maximum
    while s.screen is F.Screen.QUESTION:
        n, left = kiosk.progress(s)
        assert n <= kiosk.estimated_total(s) <= n + left, (s.question, n, left)
        q = kiosk.catalogue.questions[s.question]
        value = DEATH_1[q.id]
        if q.kind == "number":
            s, _ = run(kiosk, s, *[F.PadDigit(d) for d in value], F.PadDone())
        else:
            s, _ = run(kiosk, s, F.Answer(value))
    assert s.screen is F.Screen.PLAN


def test_a_wait_range_from_the_server_is_shown_and_printed_as_a_range(catalogue):
    from kiosk.ticket import printable_ticket, wait_words

    messages = load_messages(ROOT / "kiosk" / "messages.toml")
    kiosk, s = make(catalogue)
    s, cmds = run(kiosk, s, F.ChooseLanguage("ja"), F.ChoosePurpose("certificate"), F.ToggleChoice("juminhyo"),
                  F.Answer("selected"))
    fetch = next(c for c in cmds if isinstance(c, F.FetchPlan))
    s, _ = run(kiosk, s, F.PlanReceived(fetch.seq, {"wait_minutes": 24.2, "visit_minutes": 30,
                                                     "wait_low": 20, "wait_high": 30}))
    assert wait_words(messages, "ja", s.waits) == "最初の窓口までの待ち時間: 約20〜30分"
    assert wait_words(messages, "en", {"wait_minutes": 24.2}) == "Wait for the first counter: about 25 min"
    assert wait_words(messages, "ja", {"wait_minutes": None}) == "待ち時間は窓口でお尋ねください"
    result = {"ticket": {"number": "3", "issued_at": 1_800_000_000}, "wait_minutes": 24, "wait_low": 20,
              "wait_high": 30}
    assert printable_ticket(result, "ja").wait_range == (20, 30)
    assert printable_ticket({**result, "wait_low": None}, "ja").wait_range is None
