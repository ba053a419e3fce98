"""The kiosk flow's side of printing again: a failed print is reported against its ticket, a
later success clears it, and a console's reprint job prints once (pure: no Kivy, no sockets)."""

from __future__ import annotations

import tomllib

import pytest

from kiosk import flow as F
from queue_server.loaders import load_catalogue
from tests.kiosk.test_flow import DEATH_1, ROOT, answer_all, make, run


@pytest.fixture(scope="module")
def catalogue():
    with (ROOT / "config" / "site.toml").open("rb") as f:
        site = tomllib.load(f)
    return load_catalogue(ROOT / "config" / "catalogue", site)


RESULT = {"ticket": {"id": "t-5", "number": "5"}}


def _at_printing(catalogue, **kw):
    kiosk, s = make(catalogue, printer_enabled=True, **kw)
    s, _ = run(kiosk, s, F.ChooseLanguage("ja"), F.ChoosePurpose("death"))
    s, _ = answer_all(kiosk, s, DEATH_1)
    s, _ = run(kiosk, s, F.TakeNumber())
    s, _ = run(kiosk, s, F.IssueSucceeded(s.pending_key, RESULT))
    assert s.screen is F.Screen.PRINTING
    return kiosk, s


def test_a_failed_print_is_reported_against_its_ticket_and_a_later_success_clears_it(catalogue):
    kiosk, s = _at_printing(catalogue)
    s, cmds = run(kiosk, s, F.PrintFailed("offline", "error.offline", "offline after the job"))
    assert F.ReportPrint("t-5", False, "offline") in cmds and s.print_fault_sent
    assert any(isinstance(c, F.SendFault) for c in cmds)  # the staff alert stays as it was
    s, cmds = run(kiosk, s, F.Reprint(), F.Printed())  # 「もう一度印刷する」 after staff fixed it
    assert cmds[-1] == F.ReportPrint("t-5", True) and s.printed and not s.print_fault_sent
    # a ticket that printed the first time is not reported at all (no event per ticket)
    kiosk, s = _at_printing(catalogue)
    s, cmds = run(kiosk, s, F.Printed())
    assert cmds == []


def test_a_console_reprint_job_prints_once_and_reports_its_outcome(catalogue):
    kiosk, s = make(catalogue, printer_enabled=True)
    s, _ = run(kiosk, s, F.ChooseLanguage("en"), F.ChoosePurpose("death"))  # a citizen is mid-visit
    before = s
    s, cmds = run(kiosk, s, F.ReprintRequested("job-1", RESULT, "vi"))
    assert cmds == [F.PrintAgain("job-1", RESULT, "vi")]
    assert s.screen is before.screen and s.purposes == before.purposes  # the citizen's screen is untouched
    s, cmds = run(kiosk, s, F.ReprintRequested("job-1", RESULT, "vi"))  # the same job pushed again
    assert cmds == []
    s, cmds = run(kiosk, s, F.ReprintFinished("job-1", "t-5", True))
    assert cmds == [F.ReportPrint("t-5", True, "", "job-1")]
    s, cmds = run(kiosk, s, F.ReprintFinished("job-1", "t-5", False, "paper_out"))
    assert cmds == [F.ReportPrint("t-5", False, "paper_out", "job-1")]
    # the jobs taken survive the next citizen's reset (they belong to the device)
    s, _ = run(kiosk, s, F.Restart())
    assert run(kiosk, s, F.ReprintRequested("job-1", RESULT, "vi"))[1] == []


def test_a_kiosk_without_a_printer_answers_the_job_as_failed(catalogue):
    kiosk, s = make(catalogue)
    s, cmds = run(kiosk, s, F.ReprintRequested("job-2", RESULT, "ja"))
    assert cmds == [F.ReportPrint("t-5", False, "no_printer", "job-2")]


def test_a_reprint_of_the_ticket_on_screen_clears_its_printer_error(catalogue):
    kiosk, s = _at_printing(catalogue)
    s, _ = run(kiosk, s, F.PrintFailed("paper_out", "error.paper_out"))
    s, cmds = run(kiosk, s, F.ReprintRequested("job-3", RESULT, "ja"), F.ReprintFinished("job-3", "t-5", True))
    assert s.screen is F.Screen.DONE and s.printed and s.print_error is None


def _next_citizen_printing(kiosk, s, tid):
    """The next citizen, on the same kiosk (its device fields kept), up to their ticket printing."""
    s, _ = run(kiosk, s, F.Restart(), F.ChooseLanguage("ja"), F.ChoosePurpose("death"))
    s, _ = answer_all(kiosk, s, DEATH_1)
    s, _ = run(kiosk, s, F.TakeNumber())
    s, _ = run(kiosk, s, F.IssueSucceeded(s.pending_key, {"ticket": {"id": tid, "number": tid}}))
    assert s.screen is F.Screen.PRINTING
    return s


def test_the_first_ticket_that_prints_after_a_failure_tells_the_server_the_printer_works(catalogue):
    kiosk, s = _at_printing(catalogue)
    s, _ = run(kiosk, s, F.PrintFailed("paper_out", "error.paper_out"))  # the citizen leaves without a print
    assert s.printer_down
    s = _next_citizen_printing(kiosk, s, "t-6")  # staff put paper in; the next ticket comes out
    s, cmds = run(kiosk, s, F.Printed())
    assert cmds == [F.ReportPrint("t-6", True)] and not s.printer_down
    s = _next_citizen_printing(kiosk, s, "t-7")  # and from then on nothing is reported again
    assert run(kiosk, s, F.Printed())[1] == []


def test_a_failed_reprint_job_marks_the_printer_down_until_a_ticket_prints(catalogue):
    kiosk, s = make(catalogue, printer_enabled=True)
    s, cmds = run(kiosk, s, F.ReprintRequested("job-4", RESULT, "ja"), F.ReprintFinished("job-4", "t-5", False, "cover_open"))
    assert cmds[-1] == F.ReportPrint("t-5", False, "cover_open", "job-4") and s.printer_down
    s = _next_citizen_printing(kiosk, s, "t-8")
    assert run(kiosk, s, F.Printed())[1] == [F.ReportPrint("t-8", True)]
    s, cmds = run(kiosk, s, F.ReprintRequested("job-5", RESULT, "ja"), F.ReprintFinished("job-5", "t-5", True))
    assert cmds[-1] == F.ReportPrint("t-5", True, "", "job-5") and not s.printer_down
