"""Small builders for core tests: tickets and lobbies from plain routes."""

from __future__ import annotations

from queue_server.core.dispatch import DispatchPolicy
from queue_server.core.lobby import Lobby
from queue_server.core.model import Counter, CounterState, RouteStep
from queue_server.core.transitions import new_ticket

DEATH_ROUTE = (
    RouteStep("shimin", ("death_registration",), (), 10),
    RouteStep("hoken_nenkin", ("late_elderly_loss",), (0,), 8),
    RouteStep("kaigo", ("care_loss",), (0,), 5),
)


CERTIFICATE_ROUTE = (RouteStep("shimin", ("juminhyo",), (), 5),)


def ticket(number: int, route=CERTIFICATE_ROUTE, now: float = 0.0, **kw):
    return new_ticket(
        ticket_id=f"t{number}",
        site="honcho",
        day="2026-04-01",
        prefix="",
        number=number,
        purposes=("certificate",),
        lang="ja",
        route=route,
        now=now,
        public_token=f"tok{number}",
        **kw,
    )


def lobby(*counters: tuple[int, tuple[str, ...]], aging: float = 1200.0, max_recalls: int = 2) -> Lobby:
    cs = [Counter("honcho", n, frozenset(d), state=CounterState.OPEN) for n, d in counters]
    return Lobby("honcho", cs, DispatchPolicy(aging_bound=aging), max_recalls=max_recalls)
