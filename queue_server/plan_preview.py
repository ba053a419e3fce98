"""The plan preview (read-only): a citizen's procedure list with the waits it is shown now, as
the kiosk, the planning page and issuing a ticket need it. Never goes through the writer."""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import protocol as P
from .core.estimate import visit_minutes
from .core.estimators import wait_fields
from .core.journey import Plan, PlanError, plan_to_dict, plan_visit, resolve_purpose
from .jobs import Client, Reply

if TYPE_CHECKING:
    from .server import QueueServer


def plan(server: QueueServer, client: Client, b: dict[str, Any]) -> dict[str, Any]:
    """The ``plan`` reply: the procedure list, the first wait and the whole visit's minutes."""
    hub = server.hubs[client.site]
    made = make_plan(server, b)
    now = server.clock()
    waits = hub.waits(now)
    route = made.route
    first = first_wait(route, waits)
    return {
        "plan": plan_to_dict(made),
        "wait_minutes": rounded(first),
        **wait_fields(first, min((waits[r.department].waiting for r in route if r.department in waits), default=0), 1.0),
        "visit_minutes": rounded(visit(route, waits)),
        "waits": hub.waits_view(waits),
    }


def make_plan(server: QueueServer, b: Mapping[str, Any]) -> Any:
    """The catalogue's plan for the request's purposes and answers; Reply names what is wrong."""
    if server.catalogue is None:
        raise Reply("bad_purpose", "no procedure catalogue is loaded on this server", "purposes")
    answers = b.get("answers") or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in answers.items()):
        raise Reply("bad_field", "answers must map question ids to strings", "answers")
    if not b.get("purposes"):
        raise Reply("missing_field", "name at least one purpose (or a reservation_code)", "purposes")
    if not all(isinstance(p, str) for p in b["purposes"]):
        raise Reply("bad_field", "purposes must be a non-empty array of strings", "purposes")
    lang = b.get("lang") or "ja"
    # a plan is a pure function of the (never reloaded) catalogue and these three: most citizens
    # ask for the same few, and planning was a tenth of an `issue`'s time (bench/open_loop.py)
    key = (tuple(b["purposes"]), tuple(sorted(answers.items())), lang)
    cache = _plans(server)
    made = cache.get(key)
    if made is not None:
        return made
    try:
        purposes = [resolve_purpose(server.catalogue, p) for p in b["purposes"]]
        made = plan_visit(server.catalogue, purposes, answers, lang)
    except PlanError as e:  # only the planner's own refusals: a bug's KeyError is a bug, answered `internal` and logged
        raise Reply("bad_purpose", str(e), e.field or "purposes") from None
    if len(cache) >= PLAN_CACHE:
        cache.clear()  # a crude bound: any answers may be sent, but the cache must stay small
    cache[key] = made
    return made


PLAN_CACHE = 512  # plans kept per server
_PLAN_CACHES: weakref.WeakKeyDictionary[Any, dict[tuple, Plan]] = weakref.WeakKeyDictionary()


def _plans(server: QueueServer) -> dict[tuple, Plan]:
    """The server's plan cache (keyed weakly by the server, as the planning page's cache)."""
    return _PLAN_CACHES.setdefault(server, {})


_PLAN_TEXTS: weakref.WeakKeyDictionary[Any, dict[int, tuple[Plan, str]]] = weakref.WeakKeyDictionary()


def plan_text(server: QueueServer, plan: Plan) -> str:
    """``plan_to_dict(plan)`` as the JSON text a reply carries, encoded once per plan (a Plan is
    frozen, and make_plan hands out the same object for the same request): an ``issue`` reply is
    mostly its plan (about 10 KB of procedures, documents and sources), and building and encoding
    it was a tenth of the writer's time on the event loop (bench/open_loop.py, issue 20).
    ValueError or TypeError when it cannot be sent, as :func:`protocol.encode_result`."""
    texts = _PLAN_TEXTS.setdefault(server, {})
    hit = texts.get(id(plan))
    if hit is not None and hit[0] is plan:  # (the plan is held: its id is not reused meanwhile)
        return hit[1]
    text = P.encode_result(plan_to_dict(plan))
    if len(texts) >= PLAN_CACHE:
        texts.clear()
    texts[id(plan)] = (plan, text)
    return text


def first_wait(route: Sequence[Any], waits: Mapping[str, Any]) -> float | None:
    """The shortest known wait among the route's first steps (None when none is known)."""
    firsts = [r for r in route if not r.after]
    known = [waits[r.department].wait_minutes for r in firsts if r.department in waits]
    known = [k for k in known if k is not None]
    return min(known) if known else None


def visit(route: Sequence[Any], waits: Mapping[str, Any]) -> float | None:
    """Minutes for the whole visit: waits and service along the route."""
    return visit_minutes([(r.department, r.minutes) for r in route], waits)


def rounded(x: float | None) -> float | None:
    return None if x is None else round(x, 1)
