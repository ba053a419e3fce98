"""The lobby's plain data: tickets, their steps, counters. Frozen values, no I/O, no clock.

Times are floats in seconds (epoch seconds on the server, simulated seconds in the simulation):
the core never reads a clock; callers pass ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import IntEnum, StrEnum


class StepState(StrEnum):
    PENDING = "pending"  # waits for an earlier step (shimin first: the registration must be accepted)
    READY = "ready"  # waits in its department's queue
    CALLED = "called"  # a counter called the number; the citizen walks there
    SERVING = "serving"
    DONE = "done"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


ACTIVE_STEP_STATES = frozenset({StepState.CALLED, StepState.SERVING})
OPEN_STEP_STATES = frozenset({StepState.PENDING, StepState.READY, StepState.CALLED, StepState.SERVING})


class TicketState(StrEnum):
    WAITING = "waiting"
    CALLED = "called"
    SERVING = "serving"
    DONE = "done"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


CLOSED_TICKET_STATES = frozenset({TicketState.DONE, TicketState.NO_SHOW, TicketState.CANCELLED})


class Priority(IntEnum):
    """Dispatch classes, higher first (bounded by the aging rule in dispatch.py)."""

    NORMAL = 0
    ASSISTANCE = 1  # set by staff-assist mode: elderly, disability, language help
    RESERVATION = 2  # a reservation whose slot has come


class CounterState(StrEnum):
    OPEN = "open"
    PAUSED = "paused"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class RouteStep:
    """One department visit as the planner proposes it: the hand-off from planner to ticket."""

    department: str
    procedures: tuple[str, ...] = ()
    after: tuple[int, ...] = ()  # indices of route steps that must be done first
    minutes: float = 0.0  # expected service minutes at the counter


@dataclass(frozen=True)  # no slots: evolve() copies the instance dict in one C call (see below)
class Step:
    index: int
    department: str
    procedures: tuple[str, ...]
    after: tuple[int, ...]
    minutes: float
    state: StepState
    ready_since: float | None = None
    counter: int | None = None  # the counter number that called or serves it
    called_at: float | None = None
    started_at: float | None = None
    completed_at: float | None = None
    recalls: int = 0
    rework: bool = False  # added at a counter (手戻り)


@dataclass(frozen=True)  # no slots: see Step
class Ticket:
    id: str
    site: str
    day: str  # the site's local date, ISO (Asia/Tokyo, never UTC)
    prefix: str
    number: int
    purposes: tuple[str, ...]
    lang: str
    issued_at: float
    steps: tuple[Step, ...]
    public_token: str
    closed: TicketState | None = None  # DONE, NO_SHOW or CANCELLED once the visit is over
    assistance: bool = False
    reserved_for: float | None = None  # slot start of a reservation checked in at the kiosk
    device: str = ""
    transfers: int = 0
    extra: dict = field(default_factory=dict, compare=False, hash=False)  # e.g. prefilled flag

    @property
    def label(self) -> str:
        """The number as shown and announced: prefix + number."""
        return f"{self.prefix}{self.number}"

    @property
    def state(self) -> TicketState:
        if self.closed is not None:
            return self.closed
        states = {s.state for s in self.steps}
        if StepState.SERVING in states:
            return TicketState.SERVING
        if StepState.CALLED in states:
            return TicketState.CALLED
        return TicketState.WAITING

    @property
    def active_step(self) -> Step | None:
        """The step now called or being served, if any (a ticket is at one counter at a time)."""
        for s in self.steps:
            if s.state in ACTIVE_STEP_STATES:
                return s
        return None

    @property
    def rework_count(self) -> int:
        return sum(1 for s in self.steps if s.rework)


@dataclass(frozen=True, slots=True)
class Counter:
    site: str
    number: int
    departments: frozenset[str]
    floor: int = 1
    state: CounterState = CounterState.CLOSED
    staff: str = ""


# ---------------------------------------------------------------------------- fast copies
# dataclasses.replace() introspects the fields and calls __init__ on every call; the core makes a
# new Step and a new Ticket on every move and the simulation makes millions of moves, so replace()
# was half of its time. evolve() copies the frozen instance's dict and applies the changes: the
# same contract (unknown field names raise TypeError), several times faster.

_FIELDS = {cls: frozenset(f.name for f in fields(cls)) for cls in (Step, Ticket)}


def evolve(obj, **changes):
    """``dataclasses.replace`` for Step and Ticket, without its per-call introspection."""
    cls = obj.__class__
    if not _FIELDS[cls].issuperset(changes):
        unknown = ", ".join(sorted(set(changes) - _FIELDS[cls]))
        raise TypeError(f"{cls.__name__} has no field(s) {unknown}")
    d = obj.__dict__.copy()
    d.update(changes)
    new = _new(cls)
    _set(new, "__dict__", d)
    return new


# For the core's own moves (queue_server.core.transitions), whose field names are literals checked by
# the tests: evolve() without the name check and without the keyword-argument packing. The hot
# moves there go one step further and build the new Step and Ticket from a copied dict directly
# (object.__new__ + the instance dict: the value the dataclass would make, without the frozen
# __init__'s one object.__setattr__ call per field, ~3 µs a Step).
_new = object.__new__
_set = object.__setattr__


def _evolve(obj, changes: dict):
    d = obj.__dict__.copy()
    d.update(changes)
    new = _new(obj.__class__)
    _set(new, "__dict__", d)
    return new
