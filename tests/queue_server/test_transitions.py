import pytest

from queue_server.core import transitions as tr
from queue_server.core.model import RouteStep, StepState, TicketState
from queue_server.core.transitions import TransitionError

from .core_helpers import DEATH_ROUTE, ticket


def test_steps_without_prerequisites_are_ready_at_issue():
    t = ticket(1, DEATH_ROUTE, now=100)
    assert [s.state for s in t.steps] == [StepState.READY, StepState.PENDING, StepState.PENDING]
    assert t.steps[0].ready_since == 100
    assert t.state is TicketState.WAITING


def test_complete_makes_the_next_steps_ready_and_the_last_closes_the_ticket():
    t = ticket(1, DEATH_ROUTE)
    t = tr.start(tr.call(t, 0, 1, 10), 0, 1, 20)
    assert t.state is TicketState.SERVING
    t = tr.complete(t, 0, 1, 30)
    assert [s.state for s in t.steps[1:]] == [StepState.READY, StepState.READY]
    assert t.steps[1].ready_since == 30
    for i in (1, 2):
        t = tr.complete(tr.start(tr.call(t, i, 5, 40), i, 5, 41), i, 5, 50)
    assert t.closed is TicketState.DONE


def test_cannot_complete_a_step_never_called():
    t = ticket(1)
    with pytest.raises(TransitionError) as e:
        tr.complete(t, 0, 1, 5)
    assert e.value.code == "illegal_transition"
    assert "ready" in e.value.message


def test_a_ticket_is_at_one_counter_at_a_time():
    route = (RouteStep("shimin"), RouteStep("kosodate"))
    t = tr.call(ticket(1, route), 0, 1, 1)
    with pytest.raises(TransitionError) as e:
        tr.call(t, 1, 2, 2)
    assert e.value.code == "ticket_busy"


def test_only_the_calling_counter_may_act_on_the_step():
    t = tr.call(ticket(1), 0, 1, 1)
    with pytest.raises(TransitionError) as e:
        tr.start(t, 0, 2, 2)
    assert e.value.code == "not_your_ticket"


def test_no_show_needs_the_configured_recalls():
    t = tr.call(ticket(1, DEATH_ROUTE), 0, 1, 1)
    with pytest.raises(TransitionError) as e:
        tr.no_show(t, 0, 1, 2, max_recalls=2)
    assert e.value.code == "too_early"
    t = tr.recall(tr.recall(t, 0, 1, 3), 0, 1, 4)
    t = tr.no_show(t, 0, 1, 5, max_recalls=2)
    assert t.closed is TicketState.NO_SHOW
    assert [s.state for s in t.steps] == [StepState.NO_SHOW, StepState.CANCELLED, StepState.CANCELLED]


def test_transfer_keeps_the_place_in_line():
    t = tr.call(ticket(1, now=7), 0, 1, 10)
    t = tr.transfer(t, 0, 1, "hoken_nenkin", 20)
    s = t.steps[0]
    assert (s.department, s.state, s.ready_since, s.counter) == ("hoken_nenkin", StepState.READY, 7, None)
    assert t.transfers == 1


def test_added_procedure_for_another_department_is_rework_after_the_current_step():
    t = tr.start(tr.call(ticket(1), 0, 1, 1), 0, 1, 2)
    t = tr.add_procedure(t, 0, 1, "zeimu", ["heir_representative"], 10, 3)
    assert t.rework_count == 1
    assert t.steps[1].state is StepState.PENDING and t.steps[1].after == (0,)
    t = tr.complete(t, 0, 1, 4)
    assert t.steps[1].state is StepState.READY and t.closed is None


def test_added_procedure_for_own_department_joins_the_step():
    t = tr.start(tr.call(ticket(1), 0, 1, 1), 0, 1, 2)
    t = tr.add_procedure(t, 0, 1, "shimin", ["seal_certificate"], 5, 3)
    assert t.steps[0].procedures == ("juminhyo", "seal_certificate") and t.steps[0].rework
    assert len(t.steps) == 1


def test_cancel_closes_every_open_step_but_not_one_at_a_counter():
    t = ticket(1, DEATH_ROUTE)
    assert tr.cancel(t, 1).closed is TicketState.CANCELLED
    with pytest.raises(TransitionError):
        tr.cancel(tr.call(t, 0, 1, 1), 2)


def test_route_may_only_wait_for_earlier_steps():
    with pytest.raises(TransitionError) as e:
        ticket(1, (RouteStep("shimin", after=(1,)), RouteStep("kaigo")))
    assert e.value.code == "bad_route"


def test_closed_ticket_takes_no_more_moves():
    t = tr.cancel(ticket(1), 1)
    with pytest.raises(TransitionError) as e:
        tr.call(t, 0, 1, 2)
    assert e.value.code == "ticket_closed"
