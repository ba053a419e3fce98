"""The keyboard-like QR reader: keystrokes to scans, scans to check-ins (pure: kiosk/scanner.py, flow)."""

from urllib.parse import urlencode

from kiosk import flow as F
from kiosk.scanner import ScanBuffer, parse_scan

from .test_flow import DEATH_1, make, run
from .test_flow import catalogue as catalogue_fixture

catalogue = catalogue_fixture  # the same module-scoped fixture, under its own name here


def booking_qr(code: str, answers: dict[str, str] | None = None) -> str:
    q = {"site": "honcho", "b": code}
    if answers is not None:
        q |= {"p": "death", "a": ";".join(f"{k}:{v}" for k, v in answers.items())}
    return "http://127.0.0.1:8765/plan/?" + urlencode(q)


def test_buffer_joins_fast_keystrokes_and_drops_a_stale_prefix():
    b = ScanBuffer(gap_seconds=0.5)
    for i, ch in enumerate("12"):
        b.key(ch, 10.0 + i * 0.01)
    for i, ch in enumerate("482913"):  # a second later: the stray "12" is not glued on
        b.key(ch, 11.0 + i * 0.01)
    assert b.enter(11.1) == "482913"
    assert b.enter(11.2) is None  # Enter alone is nothing
    b.key("9", 20.0)
    assert b.enter(21.0) is None  # Enter long after the keys: not a scan


def test_parse_booking_list_and_bare_code(catalogue):
    s = parse_scan(booking_qr("482913", {"death_filed": "yes", "deceased_age": "80", "gone_question": "x"}),
                   catalogue.purposes, catalogue.questions)
    assert s.code == "482913" and s.site == "honcho" and s.purposes == ("death",)
    assert s.answers == (("death_filed", "yes"), ("deceased_age", "80"))  # an unknown question is dropped
    assert parse_scan("482913").code == "482913" and parse_scan("482913").purposes == ()
    listed = parse_scan("https://x/plan/?site=honcho&p=death,move_in&a=death_filed:no", catalogue.purposes)
    assert listed.code is None and listed.purposes == ("death", "move_in")
    for junk in ("", "hello", "12345", "https://x/plan/?b=12ab56", "https://x/plan/?site=honcho&p=nothing"):
        assert parse_scan(junk, catalogue.purposes) is None, junk


def test_scanned_booking_shows_the_list_without_asking_and_checks_in_with_the_code(catalogue):
    kiosk, state = make(catalogue)
    state, cmds = run(kiosk, state, F.Scanned(booking_qr("482913", DEATH_1)))
    assert state.screen is F.Screen.PLAN and state.question is None  # nothing asked again
    assert state.plan["purposes"] == ["death"] and any(isinstance(c, F.FetchPlan) for c in cmds)
    state, cmds = run(kiosk, state, F.TakeNumber())
    issue = next(c for c in cmds if isinstance(c, F.Issue))
    assert issue.request["reservation_code"] == "482913"
    assert issue.request["answers"] == DEATH_1 and issue.request["purposes"] == ["death"]


def test_scanned_list_without_booking_asks_only_what_is_missing(catalogue):
    kiosk, state = make(catalogue)
    partial = {k: v for k, v in DEATH_1.items() if k != "elderly_pass"}
    qr = "http://x/plan/?" + urlencode({"site": "honcho", "p": "death",
                                        "a": ";".join(f"{k}:{v}" for k, v in partial.items())})
    state, _ = run(kiosk, state, F.Scanned(qr))
    assert state.screen is F.Screen.QUESTION and state.question == "elderly_pass"
    assert state.reservation_code is None


def test_bare_code_looks_the_booking_up_first_and_a_bad_scan_says_so(catalogue):
    kiosk, state = make(catalogue)
    state, cmds = run(kiosk, state, F.Scanned("482913"))
    # as for a typed code: the server is asked for the booking's list, no number yet
    assert state.screen is F.Screen.RESERVATION and state.pending_key is None
    assert cmds == [F.FetchPlan(state.plan_seq, (), {}, "ja", reservation_code="482913")]
    offline, cmds = run(kiosk, make(catalogue)[1], F.Disconnected(1.0), F.Scanned("482913"))
    assert offline.screen is F.Screen.OFFLINE and cmds[-1].request["reservation_code"] == "482913"
    kiosk, state = make(catalogue)
    state, cmds = run(kiosk, state, F.Scanned("not a qr of ours"))
    assert state.screen is F.Screen.LANGUAGE and state.notice == "scan.unreadable" and not cmds
    bad = booking_qr("482913", {"deceased_age": "999"})  # out of range: asked again, not an error
    kiosk, state = make(catalogue)
    state, _ = run(kiosk, state, F.Scanned(bad))
    assert state.screen is F.Screen.QUESTION


def test_a_scan_mid_visit_changes_nothing(catalogue):
    kiosk, state = make(catalogue)
    state, _ = run(kiosk, state, F.ChooseLanguage("ja"), F.ChoosePurpose("death"))
    before = state
    state, cmds = run(kiosk, state, F.Scanned("482913"))
    assert state == before and not cmds


def test_every_reservation_error_has_a_message_in_seven_languages():
    from pathlib import Path

    from queue_server.core.i18n import LANGUAGES
    from queue_server.loaders import load_messages
    from queue_server.protocol import ERROR_CODES

    messages = load_messages(Path(__file__).resolve().parents[2] / "kiosk" / "messages.toml")
    for code in F.RESERVATION_ERRORS:
        assert code in ERROR_CODES
        assert set(messages.table[f"error.{code}"]) == set(LANGUAGES), code
