"""Live mode: drive a running queue server in scaled real time through the real protocol.

Simulated kiosks issue tickets (``issue``) as the scenario's arrivals come, with answers drawn
like the offline model's; simulated staff at each counter ``open``, ``call_next``, ``start``,
``complete`` (or ``recall`` and ``no_show`` for an absent citizen) and ``pause`` for their breaks.
The server decides everything else — numbers, routes, dispatch — so its board shows a busy lobby
and its event log records a realistic day (the KPI calibration round trip reads it back).

Time: the scenario day runs from opening, ``speed`` simulated seconds per wall second (60 = one
hour a minute). Each day of the scenario draws its own random stream (runner.stream_seed, as the
offline model's replication 0), so two days with the same factors are not the same day. Service
times are lognormal with the step's planned minutes as mean and the offline model's spread —
√Σ(minutesᵢ·cvᵢ)² over the step's procedures, with the catalogue's CVs — divided by the
counter's speed; a route-given purpose (a calibrated scenario's ``certificate_1``) is issued as
its catalogue purpose with answers whose plan is that route (``replay_plans``) and served with the
route's own law. With ``clock_file`` the server (``run.py server --clock FILE``) runs on the
simulated day's time, so its event log calibrates like a real one. Not in live mode: patience
(leavers), reservations (the server books them itself), counters the server does not know (extra
scenario counters have no token).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .arrivals import generate
from .model import MIN, draw_service, service_params
from .runner import stream_seed
from .scenario import CounterPlan, Scenario

BUSY_ATTEMPTS = 20  # busy answers in a row before a request counts as an error
SERVICE_CV = 0.5  # a step whose procedures the catalogue does not know


class ProtocolError(RuntimeError):
    """The server answered a request with an error."""


@dataclass
class LiveStats:
    issued: int = 0
    called: int = 0
    completed: int = 0
    no_shows: int = 0
    errors: list[str] = field(default_factory=list)
    counters: int = 0
    skipped_counters: list[int] = field(default_factory=list)


class _Conn:
    """One websocket: requests matched to replies by id; pushes wake whoever waits for them."""

    _ids = itertools.count(1)

    def __init__(self, ws):
        self.ws = ws
        self.waiting: dict[int, asyncio.Future] = {}
        self.pushed = asyncio.Event()
        self.busy = 0  # busy answers sent again
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, **hello: Any) -> tuple[_Conn, dict]:
        from websockets.asyncio.client import connect

        ws = await connect(url, compression=None, max_size=None)
        c = cls(ws)
        return c, await c.ok("hello", **hello)

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                msg = json.loads(raw)
                if "push" in msg:
                    self.pushed.set()
                elif msg.get("re") in self.waiting:
                    self.waiting.pop(msg["re"]).set_result(msg)
        for f in self.waiting.values():
            if not f.done():
                f.set_exception(ConnectionError("the server closed the connection"))

    async def ok(self, type_: str, **body: Any) -> dict:
        """The request's result; ``busy`` (the server was behind and applied nothing) is sent again
        with the same body — the same idempotency key — after retry_after, backed off with jitter,
        as a kiosk does (kiosk.client.busy_delay)."""
        from kiosk.client import busy_delay

        for attempt in itertools.count():
            rid = next(self._ids)
            fut = asyncio.get_running_loop().create_future()
            self.waiting[rid] = fut
            await self.ws.send(json.dumps({"type": type_, "id": rid, **body}, ensure_ascii=False))
            msg = await asyncio.wait_for(fut, 30)
            e = msg.get("error")
            if e is None:
                return msg["result"]
            if e.get("code") != "busy" or attempt + 1 >= BUSY_ATTEMPTS:
                raise ProtocolError(f"{type_}: {e.get('code')}: {e.get('message')}")
            self.busy += 1
            await asyncio.sleep(busy_delay(float(e.get("retry_after") or 0.5), attempt))
        raise AssertionError("unreachable")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self.reader.cancel()


def ws_endpoint(url: str) -> str:
    """``ws://host:port`` → ``ws://host:port/ws`` (the protocol's path); an explicit path is kept."""
    from urllib.parse import urlsplit, urlunsplit

    u = urlsplit(url)
    if u.scheme not in ("ws", "wss") or not u.netloc:
        raise ValueError(f"expected ws://HOST:PORT, got {url!r}")
    return urlunsplit((u.scheme, u.netloc, u.path if u.path not in ("", "/") else "/ws", u.query, ""))


async def run_live(
    sc: Scenario,
    url: str,
    speed: float,
    secrets: Path,
    seed: int = 1,
    day_index: int = 0,
    minutes: float | None = None,
    log: Callable[[str], None] | None = None,
    clock_file: Path | None = None,
    tz: str = "Asia/Tokyo",
) -> LiveStats:
    """Play one scenario day against the server at ``url``; return what was done.

    With ``clock_file`` (the server started with ``--clock`` on the same file), the server's clock
    is set to the simulated day: opening time of the day's date in ``tz`` now, then ``speed`` ×
    wall time, so the event log carries the simulated times. Days past the scenario's calendar
    (``day_index`` ≥ its length, a busy demo) move on by whole weeks, so the clock never goes back.
    """
    from queue_server.tokens import read as read_tokens

    from .routing import answer_sampler, load_for

    say = log or (lambda _m: None)
    if sc.kind != "lobby":
        raise ValueError("live mode needs a lobby scenario (a site with counters)")
    tokens = read_tokens(secrets)
    url = ws_endpoint(url)
    day = sc.days[day_index % len(sc.days)]
    rng = random.Random(stream_seed(seed, 0, day_index % len(sc.days)))  # each day its own stream
    cat = load_for(sc)
    proc_mv = {pid: (float(p.minutes), float(p.cv)) for pid, p in cat.procedures.items()}
    open_s = sc.open_minute * MIN
    end_s = sc.close_minute * MIN if minutes is None else open_s + minutes * MIN
    stats = LiveStats()
    wall0 = time.monotonic()
    if clock_file is not None:
        from queue_server.simclock import write_clock

        write_clock(Path(clock_file), sim_epoch(sc, day_index, open_s, tz), speed)
        wall0 = time.monotonic()

    def wall(sim_s: float) -> float:
        return wall0 + (sim_s - open_s) / speed

    def sim_now() -> float:
        return open_s + (time.monotonic() - wall0) * speed

    async def sleep_until(sim_s: float) -> None:
        delay = wall(sim_s) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    draw = answer_sampler(sc)
    replay, unplanned = replay_plans(sc, cat)  # route-given purposes (a calibrated scenario's certificate_1…)
    for key, why in unplanned.items():
        say(f"live: {key} skipped: {why}")
    routes = {k: tuple(service_params(st.minutes, st.minutes * st.cv, st.distribution) for st in p.route)
              for k, p in sc.purposes.items() if p.route is not None}
    served_as: dict[int, str] = {}  # ticket id -> route-given purpose, whose steps' laws serve it
    arrivals = [(t * MIN, p) for t, p in generate(sc, day, rng) if t * MIN < end_s and p not in unplanned]
    kiosk, _ = await _Conn.open(url, role="kiosk", device="sim-kiosk", site=sc.site, token=tokens.roles.get("kiosk"))
    arrivals_done = asyncio.Event()
    say(f"live: {len(arrivals)} arrivals planned for {day} {_clock(open_s)}–{_clock(end_s)} at ×{speed:g}")

    async def kiosks() -> None:
        for n, (t, purpose) in enumerate(arrivals):
            await sleep_until(t)
            assist = rng.random() < sc.behaviour.assistance
            asked, answers = replay[purpose] if purpose in replay else (purpose, draw(purpose, rng))
            try:
                got = await kiosk.ok(
                    "issue", purposes=[asked], answers=answers, lang="ja",
                    idempotency_key=f"sim-{seed}-{day}-{n}", assistance=assist,
                )
                if purpose in replay:
                    served_as[_ticket_id(got)] = purpose
                stats.issued += 1
            except ProtocolError as e:
                if "empty_route" not in str(e):  # a plan with nothing to queue for is a legal answer
                    stats.errors.append(str(e))
        arrivals_done.set()

    async def staff(plan: CounterPlan, token: str) -> None:
        conn, _ = await _Conn.open(url, role="counter", site=sc.site, counter=plan.number, token=token, staff="sim")
        crng = random.Random(f"{seed}:{day}:{plan.number}")
        is_open = False
        empty_after_close = 0
        try:
            while True:
                now = sim_now()
                on = any(a * MIN <= now < b * MIN for a, b in plan.windows) and now < end_s
                if now >= end_s and arrivals_done.is_set():
                    # after closing: serve who is left; stop after two quiet looks (a later step
                    # of a ticket now at another counter may still come to this one)
                    if not is_open:
                        await conn.ok("open")
                        is_open = True
                    sent = time.monotonic()
                    got = await conn.ok("call_next")
                    if got["ticket"] is None:
                        empty_after_close += 1
                        if empty_after_close >= 2:
                            break
                        conn.pushed.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(conn.pushed.wait(), max(0.2, 600.0 / speed))
                        continue
                    empty_after_close = 0
                    await _serve(conn, plan, got["ticket"], crng, sent)
                    continue
                if on and not is_open:
                    await conn.ok("open", staff="sim")
                    is_open = True
                elif not on and is_open:
                    await conn.ok("pause")
                    is_open = False
                if not is_open:
                    nxt = min((a * MIN for a, _ in plan.windows if a * MIN > now), default=end_s)
                    await asyncio.sleep(max(0.05, min(wall(min(nxt, end_s)) - time.monotonic(), 1.0)))
                    continue
                sent = time.monotonic()
                got = await conn.ok("call_next")
                if got["ticket"] is None:
                    conn.pushed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(conn.pushed.wait(), max(0.05, 30.0 / speed))
                    continue
                await _serve(conn, plan, got["ticket"], crng, sent)
        except ProtocolError as e:
            stats.errors.append(f"counter {plan.number}: {e}")
        finally:
            with contextlib.suppress(Exception):
                if is_open:
                    await conn.ok("close")
            await conn.close()

    async def after(sent: float, sim_seconds: float) -> float:
        # time each request from when the previous one was *sent*, not from its reply: the server
        # stamps both on arrival, so the round trip (× speed in simulated time) cancels out of the
        # durations the log shows instead of lengthening every one of them
        await asyncio.sleep(max(0.0, sent + sim_seconds / speed - time.monotonic()))
        return time.monotonic()

    async def _serve(conn: _Conn, plan: CounterPlan, ticket: dict, crng: random.Random, sent: float) -> None:
        stats.called += 1
        step = next(s for s in ticket["steps"] if s["state"] == "called" and s["counter"] == plan.number)
        if crng.random() < sc.behaviour.no_show:
            for _ in range(sc.max_recalls):
                sent = await after(sent, sc.behaviour.recall_seconds)
                await conn.ok("recall")
            await after(sent, sc.behaviour.recall_seconds)
            await conn.ok("no_show")
            stats.no_shows += 1
            return
        sent = await after(sent, sc.behaviour.walk_seconds)
        await conn.ok("start")
        given = served_as.get(ticket["id"])
        law = routes[given][step["index"]] if given is not None else step_service(step, proc_mv)
        service = draw_service(crng, law) / plan.speed
        await after(sent, service)
        await conn.ok("complete")
        stats.completed += 1

    tasks = []
    for plan in sc.counters:
        token = tokens.counters.get(sc.site, {}).get(plan.number)
        if token is None:
            stats.skipped_counters.append(plan.number)
            continue
        tasks.append(asyncio.create_task(staff(plan, token)))
    stats.counters = len(tasks)
    if stats.skipped_counters:
        say(f"live: counters {stats.skipped_counters} have no token on the server: not staffed")
    try:
        await asyncio.gather(kiosks(), *tasks)
    finally:
        await kiosk.close()
    return stats


def step_service(step: dict, procedures: dict[str, tuple[float, float]]):
    """The offline model's service law for a step the server planned: mean = its planned minutes,
    sd = √Σ(minutesᵢ·cvᵢ)² over its procedures (catalogue minutes and CVs; cv 0.5 if unknown)."""
    mean = max(float(step.get("minutes") or 5.0), 0.1)
    procs = [procedures.get(p) for p in step.get("procedures") or ()]
    known = bool(procs) and all(procs)
    sd = math.sqrt(sum((m * cv) ** 2 for m, cv in procs)) if known else mean * SERVICE_CV  # type: ignore[misc]
    return service_params(mean, sd)


def _ticket_id(issued: dict) -> int:
    t = issued.get("ticket", issued)
    return t["id"]


def _candidates(q) -> list[str]:
    """The answers worth trying for a question when looking for the plan of a given route."""
    from queue_server.core.conditions import MULTI, NUMBER, UNKNOWN, YESNO

    if q.kind == YESNO:
        return ["no", "yes", UNKNOWN]
    if q.kind == NUMBER:
        lo = q.min if q.min is not None else 0
        hi = min(q.max if q.max is not None else lo + 2, lo + 2)
        return [str(n) for n in range(lo, hi + 1)] + [UNKNOWN]
    if q.kind == MULTI:
        singles = list(q.choices)
        pairs = [f"{a},{b}" for a, b in itertools.combinations(q.choices, 2)]
        return ["", *singles, *pairs, UNKNOWN]
    return [*q.choices, UNKNOWN]


MAX_TRIES = 5000  # plans tried per route before giving up on it
RESTARTS = 12


def _search_answers(cat, pid: str, want: list[tuple[str, frozenset[str]]]) -> dict[str, str] | None:
    """Answers to ``pid``'s questions whose plan is ``want`` step by step, or None.

    Coordinate descent on the mismatch (procedures planned but not wanted and wanted but not
    planned, plus one if the steps differ): one question at a time takes the answer that lowers
    it most; restarts from seeded random answers. A purpose has a dozen questions or more, too many
    to try every combination (a move-in: thousands of millions)."""
    from queue_server.core.journey import PlanError, plan_visit, questions_for

    qs = questions_for(cat, [pid])
    cands = [_candidates(q) for q in qs]
    want_pairs = {(d, x) for d, ps in want for x in ps}
    tries = 0

    def cost(vals: list[str]) -> float:
        nonlocal tries
        tries += 1
        try:
            plan = plan_visit(cat, [pid], {q.id: v for q, v in zip(qs, vals, strict=True) if v != ""}, "ja")
        except PlanError:
            return math.inf
        got = [(st.department, frozenset(st.procedures)) for st in plan.route]
        pairs = {(d, x) for d, ps in got for x in ps}
        return len(pairs ^ want_pairs) + (got != want)

    rng = random.Random(pid)
    for restart in range(RESTARTS):
        vals = [c[0] if restart == 0 else rng.choice(c) for c in cands]
        best = cost(vals)
        improved = True
        while improved and best > 0 and tries < MAX_TRIES:
            improved = False
            for i, c in enumerate(cands):
                for v in c:
                    if v == vals[i]:
                        continue
                    trial = vals[:i] + [v] + vals[i + 1:]
                    k = cost(trial)
                    if k < best:
                        vals, best, improved = trial, k, True
        if best == 0:
            return {q.id: v for q, v in zip(qs, vals, strict=True) if v != ""}
        if tries >= MAX_TRIES:
            break
    return None


def replay_plans(sc: Scenario, cat) -> tuple[dict[str, tuple[str, dict[str, str]]], dict[str, str]]:
    """For each route-given purpose: the catalogue purpose and answers whose plan is that route.

    The server plans every ticket itself, so live mode replays a route (a calibrated scenario's
    ``certificate_1``: ``purpose = "certificate"`` and each step's ``procedures``) by asking for
    the purpose with answers the planner turns into exactly those steps (department and procedure
    set, in order); the step is then served with the route's own law (minutes, cv, distribution).
    Returns (replayable, {purpose: why not}) — a route the planner never makes (a procedure added
    at a counter) or one without ``purpose``/``procedures`` cannot be replayed.
    """
    from queue_server.core.journey import PlanError, resolve_purpose

    ok: dict[str, tuple[str, dict[str, str]]] = {}
    bad: dict[str, str] = {}
    for key, p in sc.purposes.items():
        if p.route is None:
            continue
        if not p.plan_purpose or not all(st.procedures for st in p.route):
            bad[key] = "a route given without `purpose` and each step's `procedures` (the server plans every ticket)"
            continue
        try:
            pid = resolve_purpose(cat, p.plan_purpose)
        except PlanError as e:
            bad[key] = str(e)
            continue
        want = [(st.department, frozenset(st.procedures)) for st in p.route]
        found = _search_answers(cat, pid, want)
        if found is None:
            bad[key] = f"no answers to {pid}'s questions make the planner give {' → '.join(d for d, _ in want)} with these procedures"
        else:
            ok[key] = (pid, found)
    return ok, bad


def sim_epoch(sc: Scenario, day_index: int, sec_of_day: float, tz: str = "Asia/Tokyo") -> float:
    """Epoch seconds of ``sec_of_day`` on the scenario's day ``day_index`` (later rounds: weeks on)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    n = len(sc.days)
    day = sc.days[day_index % n]
    span = (sc.days[-1] - sc.days[0]).days + 1
    day = day + dt.timedelta(weeks=(day_index // n) * max(1, math.ceil(span / 7)))
    midnight = dt.datetime.combine(day, dt.time(0), ZoneInfo(tz))
    return midnight.timestamp() + sec_of_day


def _clock(sec: float) -> str:
    m = int(sec // 60)
    return f"{m // 60:02d}:{m % 60:02d}"
