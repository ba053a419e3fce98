"""Several life events in one visit on the kiosk (転入 and 出生 for a family moving in with a
newborn): 「ほかの手続きも追加」 on the list adds a purpose, asks only the questions it adds, and plans
one list and one ticket for all of them (pure: no Kivy, no sockets)."""

from __future__ import annotations

from dataclasses import replace

from kiosk import flow as F
from kiosk.keypad import options
from queue_server.core.journey import plan_to_dict, plan_visit, questions_for
from tests.kiosk.test_flow import catalogue, make, run  # noqa: F401 - the catalogue fixture
from tests.kiosk.test_speech import MESSAGES, press, said


def answer_plainly(kiosk, s):
    """Answer every question asked: "no", the first choice, or 2 on a number pad."""
    asked = []
    while s.screen is F.Screen.QUESTION:
        q = kiosk.catalogue.questions[s.question]
        asked.append(q.id)
        if q.kind == "number":
            s, _ = run(kiosk, s, F.PadDigit("2"), F.PadDone())
        elif q.kind == "multi":
            s, _ = run(kiosk, s, F.ToggleChoice(q.choices[0]), F.Answer("done"))
        else:
            s, _ = kiosk.step(s, F.Answer("no" if q.kind == "yesno" else q.choices[0]))
    return s, asked


def _move_in_list(catalogue):  # noqa: F811
    kiosk, s = make(catalogue)
    s, _ = run(kiosk, s, F.ChooseLanguage("ja"), F.ChoosePurpose("move_in"))
    s, _ = answer_plainly(kiosk, s)
    if s.screen is F.Screen.CONVENIENCE:
        s, _ = run(kiosk, s, F.TakeNumber())
    assert s.screen is F.Screen.PLAN
    return kiosk, s


def test_a_second_purpose_asks_only_its_own_questions_and_makes_one_list_and_one_ticket(catalogue):  # noqa: F811
    kiosk, s = _move_in_list(catalogue)
    alone = s.plan
    assert kiosk.can_add_purpose(s)
    s, _ = run(kiosk, s, F.AddPurpose())
    assert s.screen is F.Screen.PURPOSE and s.adding and s.purposes == ("move_in",)
    offered = [type(e).__name__ + ":" + getattr(e, "purpose", "") for _, e in options(kiosk, s, MESSAGES)]
    assert "ChoosePurpose:move_in" not in offered and "ChoosePurpose:birth" in offered
    assert not any(o.startswith("ChooseReservation") for o in offered)  # a booking is a visit of its own
    assert run(kiosk, s, F.ChoosePurpose("move_in"))[0] == s  # chosen already: nothing happens
    assert run(kiosk, s, F.ChooseReservation())[0] == s
    answers_before = s.answers
    s, _ = run(kiosk, s, F.ChoosePurpose("birth"))
    s, asked = answer_plainly(kiosk, s)
    move_in_questions = {q.id for q in questions_for(kiosk.catalogue, ("move_in",))}
    assert asked and not (set(asked) & move_in_questions)  # nothing asked twice
    assert s.answers[:len(answers_before)] == answers_before
    if s.screen is F.Screen.CONVENIENCE:
        s, _ = run(kiosk, s, F.TakeNumber())
    assert s.screen is F.Screen.PLAN and s.purposes == ("move_in", "birth")
    # the list is the planner's for both purposes together: one stop per department, every
    # procedure of the move-in list still on it, and more besides
    both = plan_to_dict(plan_visit(kiosk.catalogue, ("move_in", "birth"), s.answer_map, "ja"))
    assert s.plan == both
    deps = [st["department"] for st in s.plan["steps"]]
    assert len(deps) == len(set(deps))
    procs = lambda p: {pr["id"] for st in p["steps"] for pr in st["procedures"]}  # noqa: E731
    assert procs(alone) < procs(s.plan)
    s, cmds = run(kiosk, s, F.TakeNumber())
    issue = next(c for c in cmds if isinstance(c, F.Issue))
    assert issue.request["purposes"] == ["move_in", "birth"]


def test_back_from_adding_returns_to_the_list_unchanged_and_the_limit_holds(catalogue):  # noqa: F811
    kiosk, s = _move_in_list(catalogue)
    before = s
    s, _ = run(kiosk, s, F.AddPurpose(), F.Back())
    assert s.screen is F.Screen.PLAN and not s.adding and s.purposes == before.purposes and s.plan == before.plan
    s = replace(s, purposes=F.PURPOSES[:F.MAX_PURPOSES])
    assert not kiosk.can_add_purpose(s) and run(kiosk, s, F.AddPurpose())[0] == s
    booked = replace(before, reservation_code="123456")  # a booking's list is the booking's
    assert not kiosk.can_add_purpose(booked) and run(kiosk, booked, F.AddPurpose())[0] == booked


def test_calling_staff_while_adding_does_not_open_the_staff_pad(catalogue):  # noqa: F811
    kiosk, s = make(catalogue, staff_pin="4321")
    s, _ = run(kiosk, s, F.ChooseLanguage("ja"), F.ChoosePurpose("move_in"))
    s, _ = answer_plainly(kiosk, s)
    if s.screen is F.Screen.CONVENIENCE:
        s, _ = run(kiosk, s, F.TakeNumber())
    s, cmds = run(kiosk, s, F.AddPurpose(), F.AssistRequested())
    assert s.screen is F.Screen.PURPOSE and s.adding and any(isinstance(c, F.SendHelp) for c in cmds)


def test_the_keys_add_a_purpose_and_the_stops_are_not_said_as_keys(catalogue):  # noqa: F811
    kiosk, s = _move_in_list(catalogue)
    spoken = said(kiosk, s)
    assert "1か所目、" + s.plan["steps"][0]["department_name"] + "。" in spoken
    assert spoken[-2:] == ["1、ほかの手続きも追加。", "エンターキーで番号札を受け取ります。"]
    s, _ = press(kiosk, s, "1")
    assert s.screen is F.Screen.PURPOSE and s.adding
    spoken = said(kiosk, s)
    assert spoken[0] == "追加するご用件を選んでください" and not any("予約" in x for x in spoken[1:])
    birth = next(i for i, (_, e) in enumerate(options(kiosk, s, MESSAGES), 1) if getattr(e, "purpose", "") == "birth")
    s, _ = press(kiosk, s, str(birth))
    assert s.purposes == ("move_in", "birth") and s.screen is F.Screen.QUESTION
