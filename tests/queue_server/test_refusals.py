"""One shape for a refused request (core/errors.py): the edge's, a handler's, a ticket move's, the
booking rules' and the staff role's refusals are all RequestErrors, answered by one function, and a
refusal crosses layers as it is (no re-wrapping) — while a bug is never passed off as a refusal."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from queue_server import plan_preview
from queue_server import protocol as P
from queue_server.consultation_api import Refusal
from queue_server.core.booking import BookingError
from queue_server.core.errors import RequestError
from queue_server.core.transitions import TransitionError
from queue_server.jobs import Reply
from queue_server.server import QueueServer

from .writer_support import admin, job, kiosk, make_server, run


@pytest.mark.parametrize("e", [
    Reply("x_code", "why", "where"),
    TransitionError("x_code", "why", "where"),
    BookingError("x_code", "why", "where"),
    P.ProtocolError("x_code", "why", "where", re=3),
    Refusal("x_code", "where", "why", retry_after=4),
])
def test_every_refusal_is_a_request_error_answered_in_one_shape(e):
    assert isinstance(e, RequestError) and str(e) == "why"
    sent = json.loads(P.error_reply(7, e))
    assert sent == {"re": 7, "error": {"code": "x_code", "message": "why", "field": "where", **e.extra}}


def test_a_staff_refusal_takes_its_message_from_its_code():
    assert Refusal("no_rights").message == "your account may not do this"
    assert Refusal("slow_down", None, "wait 3 s", retry_after=3).extra == {"retry_after": 3}


def test_the_booking_rules_refusal_reaches_the_client_through_the_writer_as_it_is(tmp_path):
    """An admin reservation with a bad day: the booking rules' BookingError, raised inside the
    writer, is answered with its own code and field (nothing re-wraps it on the way)."""
    qs = make_server(tmp_path, cls=QueueServer)

    async def go():
        (r,) = await run(qs, [job(admin(), "reserve", day="2026-4-1", start="09:00", purposes=["certificate"])])
        assert r["error"] == {"code": "bad_field", "message": "day must be YYYY-MM-DD", "field": "day"}
        (r,) = await run(qs, [job(admin(), "reserve", day="2026-04-01", start="09:00", purposes=["certificate"],
                                  minutes=1)])
        assert r["error"]["code"] == "bad_field" and r["error"]["field"] == "minutes"

    asyncio.run(go())


def test_a_bug_in_the_planner_is_internal_not_a_bad_purpose(tmp_path, monkeypatch, caplog):
    """make_plan used to turn any KeyError or ValueError into ``bad_purpose``: a bug then looked
    like the citizen's mistake and went unlogged. Only the planner's own PlanError is a refusal."""
    qs = make_server(tmp_path, cls=QueueServer)

    async def issue(purpose: str, key: str) -> dict:
        (r,) = await run(qs, [job(kiosk(), "issue", purposes=[purpose], answers={}, lang="ja", idempotency_key=key)])
        return r

    async def go():
        assert (await issue("no-such-purpose", "a"))["error"]["code"] == "bad_purpose"  # the citizen's mistake
        assert "result" in await issue("certificate", "b")

        def broken(*_a, **_k):
            raise KeyError("a catalogue lookup gone wrong")

        monkeypatch.setattr(plan_preview, "plan_visit", broken)
        plan_preview._plans(qs).clear()  # the plan made above is cached: it would never meet the bug
        r = await issue("certificate", "c")
        assert r["error"]["code"] == "internal"

    with caplog.at_level(logging.ERROR):
        asyncio.run(go())
    assert "issue request failed" in caplog.text
