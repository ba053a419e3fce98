"""Domain rules that lived in server.py and are now pure core functions: the end of the day, a
ticket's number series, and the admin reservation's day, start and length."""

from __future__ import annotations

import pytest

from queue_server.core import booking as B
from queue_server.core.numbering import number_prefix, ticket_kind

from .core_helpers import lobby, ticket


def test_end_day_cancels_only_earlier_days_waiting_tickets_and_undoes_them_all():
    lob = lobby((1, ("shimin",)))
    for n in (1, 2, 3):
        lob.issue(ticket(n, now=float(n)), {})
    lob.call_next(1, 10.0)  # t1 is at the counter: the end of day leaves it alone
    lob.issue(ticket(4, now=11.0), {})
    ch = lob.end_day("2026-04-02", 100.0)
    assert sorted(ch.tickets) == ["t2", "t3", "t4"]
    assert [e.kind for e in ch.events] == ["cancelled"] * 3
    assert all(e.payload == {"reason": "end_of_day"} for e in ch.events)
    assert {tid for tid, t in lob.tickets.items() if t.closed is None} == {"t1"}
    lob.apply(ch.undo)  # the writer's rollback after a failed commit
    assert {tid for tid, t in lob.tickets.items() if t.closed is None} == {"t1", "t2", "t3", "t4"}


def test_end_day_on_the_same_day_cancels_nothing():
    lob = lobby((1, ("shimin",)))
    lob.issue(ticket(1), {})
    ch = lob.end_day("2026-04-01", 100.0)
    assert not ch.tickets and not ch.events


@pytest.mark.parametrize(("purposes", "reserved", "kind"), [
    (("certificate",), False, "certificate"),
    (("consultation", "certificate"), False, "consultation"),
    (("birth",), False, "life_event"),
    ((), False, "life_event"),
    (("certificate",), True, "reservation"),
])
def test_ticket_kind(purposes, reserved, kind):
    assert ticket_kind(purposes, reserved) == kind


def test_number_prefix_defaults_to_none():
    assert number_prefix({"certificate": "C"}, "certificate") == "C"
    assert number_prefix({"certificate": "C"}, "life_event") == ""


@pytest.mark.parametrize(("day", "start", "field"), [
    ("2026-4-1", "09:00", "day"), ("2026-04-01", "9:00", "start"), ("2026-04-01", "24:00", "start"),
])
def test_reservation_slot_refused_names_the_field(day, start, field):
    with pytest.raises(B.BookingError) as e:
        B.check_reservation_slot(day, start)
    assert (e.value.code, e.value.field) == ("bad_field", field)


def test_reservation_slot_and_minutes_accepted_and_refused():
    B.check_reservation_slot("2026-04-01", "23:59")
    B.check_reservation_minutes(5)
    B.check_reservation_minutes(480)
    for bad in (4, 481):
        with pytest.raises(B.BookingError) as e:
            B.check_reservation_minutes(bad)
        assert e.value.field == "minutes"
