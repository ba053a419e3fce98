"""Legal moves of a ticket and its steps. Pure: a Ticket in, a new Ticket out, or TransitionError.

Each function checks that the move is legal from the current state and returns the new value;
the caller (server or simulation) stores it and writes the event. Nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

from .errors import RequestError
from .model import (
    ACTIVE_STEP_STATES,
    OPEN_STEP_STATES,
    RouteStep,
    Step,
    StepState,
    Ticket,
    TicketState,
    _evolve,
    evolve,
)

# Members as module constants: in Python 3.11 ``StepState.READY`` is a metaclass lookup (~0.3 µs),
# and the moves below test states several times each. ``is`` on members, as in dispatch.py.
_PENDING = StepState.PENDING
_READY = StepState.READY
_CALLED = StepState.CALLED
_SERVING = StepState.SERVING
_DONE = StepState.DONE
_CANCELLED = StepState.CANCELLED
_TICKET_DONE = TicketState.DONE

# A Step or Ticket from a dict of all its fields, in field order (see the end of model.py).
_new = object.__new__
_set = object.__setattr__


class TransitionError(RequestError):
    """An illegal move. ``code`` is stable (protocol error code); ``field`` names the culprit."""


def new_ticket(
    *,
    ticket_id: str,
    site: str,
    day: str,
    prefix: str,
    number: int,
    purposes: Sequence[str],
    lang: str,
    route: Sequence[RouteStep],
    now: float,
    public_token: str,
    assistance: bool = False,
    reserved_for: float | None = None,
    device: str = "",
) -> Ticket:
    """Issue a ticket: its route's steps with no prerequisite are ready at once."""
    if not route:
        raise TransitionError("empty_route", "the plan has no step to queue for", "purposes")
    steps = []
    for i, r in enumerate(route):
        after = r.after
        if after:
            bad = [a for a in after if not 0 <= a < i]
            if bad:
                raise TransitionError("bad_route", f"step {i} waits for {bad}: only earlier steps allowed", "route")
        # Step(index=i, department=..., procedures=..., after=..., minutes=..., state=PENDING or READY,
        # ready_since=None or now): a copy of the prototype with the fields that differ set
        d = _NEW_STEP.copy()
        d["index"] = i
        d["department"] = r.department
        d["procedures"] = tuple(r.procedures)
        d["after"] = tuple(after)
        d["minutes"] = r.minutes
        if after:
            d["state"] = _PENDING
        else:
            d["ready_since"] = now
        step = _new(Step)  # Step(**d), without the frozen __init__
        _set(step, "__dict__", d)
        steps.append(step)
    d = _NEW_TICKET.copy()
    d["id"] = ticket_id
    d["site"] = site
    d["day"] = day
    d["prefix"] = prefix
    d["number"] = number
    d["purposes"] = tuple(purposes)
    d["lang"] = lang
    d["issued_at"] = now
    d["steps"] = tuple(steps)
    d["public_token"] = public_token
    d["assistance"] = assistance
    d["reserved_for"] = reserved_for
    d["device"] = device
    d["extra"] = {}
    ticket = _new(Ticket)  # Ticket(**d)
    _set(ticket, "__dict__", d)
    return ticket


# Every field of a new Step and a new Ticket, in field order, with the values new_ticket does not
# set per ticket (the dataclass defaults): new_ticket copies these and sets the rest.
_NEW_STEP: dict = {
    "index": 0,
    "department": "",
    "procedures": (),
    "after": (),
    "minutes": 0.0,
    "state": _READY,
    "ready_since": None,
    "counter": None,
    "called_at": None,
    "started_at": None,
    "completed_at": None,
    "recalls": 0,
    "rework": False,
}
_NEW_TICKET: dict = {
    "id": "",
    "site": "",
    "day": "",
    "prefix": "",
    "number": 0,
    "purposes": (),
    "lang": "",
    "issued_at": 0.0,
    "steps": (),
    "public_token": "",
    "closed": None,
    "assistance": False,
    "reserved_for": None,
    "device": "",
    "transfers": 0,
    "extra": None,  # a new dict per ticket
}


def _check_prototypes() -> None:
    """A field added to Step or Ticket must be added above too: fail at import, not in a move."""
    given = {
        Step: {"index", "department", "procedures", "after", "minutes", "state", "ready_since"},
        Ticket: {"id", "site", "day", "prefix", "number", "purposes", "lang", "issued_at", "steps",
                 "public_token", "assistance", "reserved_for", "device", "extra"},
    }
    for cls, proto in ((Step, _NEW_STEP), (Ticket, _NEW_TICKET)):
        names = [f.name for f in fields(cls)]
        if list(proto) != names:
            raise RuntimeError(f"transitions' prototype of {cls.__name__} must list its fields in order: {names}")
        for f in fields(cls):
            if f.name not in given[cls] and proto[f.name] != f.default:
                raise RuntimeError(f"transitions' prototype of {cls.__name__}.{f.name} must be its default")


_check_prototypes()


def _open(ticket: Ticket) -> None:
    if ticket.closed is not None:
        raise TransitionError("ticket_closed", f"ticket {ticket.label} is already {ticket.closed.value}", "ticket")


def _step(ticket: Ticket, index: int) -> Step:
    if not 0 <= index < len(ticket.steps):
        raise TransitionError("unknown_step", f"ticket {ticket.label} has no step {index}", "step")
    return ticket.steps[index]


def _with_step(ticket: Ticket, step: Step) -> Ticket:
    steps = list(ticket.steps)
    steps[step.index] = step
    return _evolve(ticket, {"steps": tuple(steps)})


def _move(ticket: Ticket, step: Step, d: dict) -> Ticket:
    """``_with_step(ticket, evolve(step, **changes))`` in one call, ``d`` being the changed copy of
    ``step.__dict__``.

    The hot moves (call, recall, start) copy the Step's and the Ticket's dicts directly: the same
    values as evolve(), a third cheaper, and the simulation makes three such moves per citizen.
    """
    new_step = _new(Step)
    _set(new_step, "__dict__", d)
    steps = ticket.steps
    i = step.index
    d = ticket.__dict__.copy()
    d["steps"] = (new_step,) if len(steps) == 1 else steps[:i] + (new_step,) + steps[i + 1 :]
    new = _new(Ticket)
    _set(new, "__dict__", d)
    return new


# The helpers below raise each move's error (same codes, messages); _at_counter runs the checks.


def _expect(ticket: Ticket, step: Step, *states: StepState, action: str) -> None:
    if step.state not in states:
        allowed = " or ".join(s.value for s in states)
        raise TransitionError(
            "illegal_transition",
            f"cannot {action} ticket {ticket.label} step {step.index}: it is {step.state.value}, not {allowed}",
            "step",
        )


def _expect_counter(ticket: Ticket, step: Step, counter: int, action: str) -> None:
    if step.counter != counter:
        raise TransitionError(
            "not_your_ticket",
            f"cannot {action} ticket {ticket.label}: it is at counter {step.counter}, not {counter}",
            "counter",
        )


def _at_counter(ticket: Ticket, index: int, counter: int, states: tuple[StepState, ...], action: str) -> Step:
    """The step a counter acts on, once it is known to be open, in one of ``states`` and at this
    counter; raises the move's TransitionError otherwise (every counter move shares these checks)."""
    if ticket.closed is not None:
        _open(ticket)
    steps = ticket.steps
    if not 0 <= index < len(steps):
        _step(ticket, index)
    step = steps[index]
    if step.state not in states:
        _expect(ticket, step, *states, action=action)
    if step.counter != counter:
        _expect_counter(ticket, step, counter, action)
    return step


def call(ticket: Ticket, index: int, counter: int, now: float) -> Ticket:
    """A counter calls the ticket for one of its ready steps."""
    if ticket.closed is not None:
        _open(ticket)
    steps = ticket.steps
    if not 0 <= index < len(steps):
        _step(ticket, index)
    step = steps[index]
    if step.state is not _READY:
        _expect(ticket, step, StepState.READY, action="call")
    for active in steps:  # ticket.active_step
        if active.state is _CALLED or active.state is _SERVING:
            raise TransitionError(
                "ticket_busy", f"ticket {ticket.label} is already at counter {active.counter}", "ticket"
            )
    d = step.__dict__.copy()
    d["state"] = _CALLED
    d["counter"] = counter
    d["called_at"] = now
    return _move(ticket, step, d)


def recall(ticket: Ticket, index: int, counter: int, now: float) -> Ticket:
    """Call the same number again (the citizen has not come yet)."""
    step = _at_counter(ticket, index, counter, (_CALLED,), "recall")
    d = step.__dict__.copy()
    d["recalls"] = step.recalls + 1
    d["called_at"] = now
    return _move(ticket, step, d)


def start(ticket: Ticket, index: int, counter: int, now: float) -> Ticket:
    """The citizen arrived at the counter: service starts."""
    step = _at_counter(ticket, index, counter, (_CALLED,), "start")
    d = step.__dict__.copy()
    d["state"] = _SERVING
    d["started_at"] = now
    return _move(ticket, step, d)


def complete(ticket: Ticket, index: int, counter: int, now: float) -> Ticket:
    """Service done: later steps whose prerequisites are all done become ready; the last closes."""
    step = _at_counter(ticket, index, counter, (_SERVING,), "complete")
    d = step.__dict__.copy()
    d["state"] = _DONE
    d["completed_at"] = now
    done = _new(Step)
    _set(done, "__dict__", d)
    if len(ticket.steps) == 1:  # _release_ready's result for a one-step ticket: done, closed
        d = ticket.__dict__.copy()
        d["steps"] = (done,)
        d["closed"] = _TICKET_DONE
        new = _new(Ticket)
        _set(new, "__dict__", d)
        return new
    steps = list(ticket.steps)
    steps[index] = done
    return _release_ready(ticket, steps, now)


def _release_ready(ticket: Ticket, steps: list[Step], now: float) -> Ticket:
    """One new Ticket with waiting steps released and, when nothing is left open, closed."""
    finished = None  # indices of DONE or CANCELLED steps, built at the first PENDING step
    still_open = False
    for i, s in enumerate(steps):
        state = s.state
        if state is _PENDING:
            if finished is None:
                finished = {x.index for x in steps if x.state is _DONE or x.state is _CANCELLED}
            if all(a in finished for a in s.after):
                steps[i] = _evolve(s, {"state": _READY, "ready_since": now})
            still_open = True  # PENDING or READY: both open
        elif state is _READY or state is _CALLED or state is _SERVING:
            still_open = True
    d = ticket.__dict__.copy()
    d["steps"] = tuple(steps)
    d["closed"] = None if still_open else _TICKET_DONE
    new = _new(Ticket)
    _set(new, "__dict__", d)
    return new


def transfer(ticket: Ticket, index: int, counter: int, department: str, now: float) -> Ticket:
    """Send the step to another department's queue (wrong counter, or a colleague's speciality).

    The citizen keeps the place earned: the step is ready again at once, with its original
    ready time, so the transfer does not push them to the back of the line.
    """
    step = _at_counter(ticket, index, counter, (StepState.CALLED, StepState.SERVING), "transfer")
    if department == step.department:
        raise TransitionError("same_department", f"step {index} is already for {department}", "department")
    moved = evolve(
        step,
        department=department,
        state=StepState.READY,
        counter=None,
        called_at=None,
        started_at=None,
        recalls=0,
        ready_since=step.ready_since if step.ready_since is not None else now,
    )
    return evolve(_with_step(ticket, moved), transfers=ticket.transfers + 1)


def add_procedure(
    ticket: Ticket, index: int, counter: int, department: str, procedures: Sequence[str], minutes: float, now: float
) -> Ticket:
    """A procedure found at the counter (手戻り: rework). Counted on the ticket.

    For the counter's own department it joins the current step; for another department it
    becomes a new step, ready once the current step completes (the citizen is still here).
    """
    step = _at_counter(ticket, index, counter, (StepState.CALLED, StepState.SERVING), "add a procedure to")
    if not procedures:
        raise TransitionError("missing_field", "name at least one procedure to add", "procedures")
    if department == step.department:
        merged = step.procedures + tuple(p for p in procedures if p not in step.procedures)
        return _with_step(ticket, evolve(step, procedures=merged, minutes=step.minutes + minutes, rework=True))
    new = Step(
        index=len(ticket.steps),
        department=department,
        procedures=tuple(procedures),
        after=(index,),
        minutes=minutes,
        state=StepState.PENDING,
        rework=True,
    )
    return evolve(ticket, steps=ticket.steps + (new,))


def no_show(ticket: Ticket, index: int, counter: int, now: float, max_recalls: int) -> Ticket:
    """Mark the citizen absent after ``max_recalls`` recalls; the visit closes."""
    step = _at_counter(ticket, index, counter, (StepState.CALLED,), "mark no-show")
    if step.recalls < max_recalls:
        raise TransitionError(
            "too_early",
            f"recall ticket {ticket.label} {max_recalls - step.recalls} more time(s) before marking no-show",
            "step",
        )
    steps = tuple(
        _evolve(s, {"state": StepState.NO_SHOW, "completed_at": now})
        if s.index == index
        else _evolve(s, {"state": _CANCELLED})
        if s.state in OPEN_STEP_STATES
        else s
        for s in ticket.steps
    )
    return _evolve(ticket, {"steps": steps, "closed": TicketState.NO_SHOW})


def cancel(ticket: Ticket, now: float) -> Ticket:
    """Close the visit: every open step is cancelled (the citizen left, or asked to stop)."""
    _open(ticket)
    if any(s.state in ACTIVE_STEP_STATES for s in ticket.steps):
        active = ticket.active_step
        assert active is not None
        raise TransitionError(
            "ticket_busy", f"ticket {ticket.label} is at counter {active.counter}; finish it there", "ticket"
        )
    steps = tuple(_evolve(s, {"state": _CANCELLED}) if s.state in OPEN_STEP_STATES else s for s in ticket.steps)
    return _evolve(ticket, {"steps": steps, "closed": TicketState.CANCELLED})


def requeue(ticket: Ticket, index: int, counter: int, now: float) -> Ticket:
    """Put a called (not started) step back in its queue, keeping its place (counter paused)."""
    step = _at_counter(ticket, index, counter, (_CALLED,), "return to the queue")
    return _with_step(ticket, evolve(step, state=StepState.READY, counter=None, called_at=None, recalls=0))
