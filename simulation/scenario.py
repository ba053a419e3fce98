"""Simulation scenarios: load a TOML file, validate it, and return plain frozen values.

Two kinds (docs/simulation.md has the full format with examples):

- ``lobby`` — one site of config/site.toml over some days: arrivals by purpose shaped by month,
  weekday, peak days and hour; answers drawn from per-question probabilities; plans from the real
  planner (or a route given in the scenario); counters from the site with the scenario's staffing.
- ``station`` — the textbook M/M/c queue: one department, c identical counters open all the time,
  constant Poisson arrivals, exponential service, FCFS, a warm-up excluded from the statistics.
  It is the model's validation case against Erlang C.

Validation collects every problem, each naming the file, the line where it can be found and the
key path, and raises :class:`queue_server.core.problems.ConfigError` — the same error type as
``check-config`` so a city's IT team sees one style of message everywhere.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from queue_server.config import DEFAULT_CONFIG_DIR, CityConfig, load_city, minutes_of
from queue_server.core.problems import ConfigError, Problem, where

KINDS = ("lobby", "station")
UNKNOWN = "unknown"  # the answer drawn for the probability mass a scenario leaves unassigned


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One step of a route given directly in a scenario (no planner): department and service."""

    department: str
    minutes: float
    cv: float = 0.5  # coefficient of variation; 1.0 with distribution "exponential"
    after: tuple[int, ...] = ()
    distribution: str = "lognormal"  # or "exponential"
    procedures: tuple[str, ...] = ()  # what the step serves (calibrated routes): live mode replays it


@dataclass(frozen=True, slots=True)
class Purpose:
    key: str
    yearly: float  # cases a year in the city (lobby) — or arrivals per hour (station)
    answers: Mapping[str, Mapping[str, float]]  # question id -> raw answer -> probability
    route: tuple[StepSpec, ...] | None  # None: ask the planner
    source: str
    lang: str = "ja"
    plan_purpose: str | None = None  # `purpose`: the catalogue purpose a route-given one is a plan of


@dataclass(frozen=True, slots=True)
class MonthFactor:
    month: int
    factor: float
    purposes: frozenset[str]  # empty: every purpose


@dataclass(frozen=True, slots=True)
class PeakDay:
    date: dt.date
    factor: float  # multiple of a normal day: replaces the month and weekday factors
    purposes: frozenset[str]


@dataclass(frozen=True, slots=True)
class Arrivals:
    site_share: float
    working_days_per_year: float
    hour_weights: Mapping[int, float]  # clock hour -> relative rate
    weekday: tuple[float, ...]  # Monday..Friday (Saturday, Sunday if given)
    after_holiday: float
    months: tuple[MonthFactor, ...]
    peak_days: tuple[PeakDay, ...]
    at_door: float = 0.0  # share of the day's walk-ins already at the door when it opens
    door_minutes: float = 5.0  # ... who take their tickets within this many minutes of opening


@dataclass(frozen=True, slots=True)
class CounterPlan:
    """A counter as the simulation staffs it."""

    number: int
    departments: tuple[str, ...]
    windows: tuple[tuple[float, float], ...]  # on duty, minutes of the day [start, end)
    speed: float = 1.0  # service time is divided by it: 0.75 = a newcomer a third slower
    note: str = ""


@dataclass(frozen=True, slots=True)
class StaffMember:
    """Someone the advisor's shift plan may put at a counter."""

    name: str
    skills: tuple[str, ...]  # departments they can serve
    speed: float = 1.0  # 0.75: an April newcomer (service takes a third longer)
    lunch: tuple[float, float] | None = None  # [start, end) minutes of the day
    weekdays: frozenset[int] = frozenset(range(5))  # 0 = Monday
    hours: tuple[float, float] | None = None  # on duty [start, end); None: opening hours


@dataclass(frozen=True, slots=True)
class AdvisorRules:
    """Constraints of the advisor's shift plan (``[advisor]`` in a scenario)."""

    staff: tuple[StaffMember, ...] | None  # None: one per scenario counter, its departments and speed
    counters: tuple[tuple[int, tuple[str, ...]], ...] | None  # physical desks; None: the scenario's counters
    min_open: Mapping[str, int] = field(default_factory=dict)  # department -> counters always open


@dataclass(frozen=True, slots=True)
class Reservation:
    purpose: str
    slots: tuple[float, ...]  # slot starts, minutes of the day
    slot_minutes: float
    booked: float  # probability that a slot is booked
    no_show: float  # probability that a booked citizen does not come
    early_minutes: float  # check-in this long before the slot


@dataclass(frozen=True, slots=True)
class Behaviour:
    patience_minutes: float | None  # mean patience per wait; None: nobody leaves
    patience_cv: float
    leave_cancels: float  # share of leavers who cancel on their phone (others become no-shows)
    no_show: float  # share of called citizens who are absent (stepped out and never came back)
    walk_seconds: float  # from call to the counter
    recall_seconds: float  # between recalls of an absent citizen
    assistance: float  # share of tickets flagged for assistance (a dispatch priority class)
    patience_distribution: str = "lognormal"  # or "exponential" (Erlang A's M/M/c+M)
    balk_queue: float | None = None  # mean queue length a citizen tolerates at the kiosk; None: nobody balks
    balk_cv: float = 0.5


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    file: str
    kind: str
    site: str
    days: tuple[dt.date, ...]
    holidays: frozenset[dt.date]
    open_minute: float  # minutes of the day
    close_minute: float
    warmup_minutes: float  # statistics ignore tickets issued earlier (station)
    target_share: float
    target_minutes: float
    purposes: Mapping[str, Purpose]
    arrivals: Arrivals | None  # None for a station (constant rates in Purpose.yearly per hour)
    behaviour: Behaviour
    counters: tuple[CounterPlan, ...]
    slot_minutes: float
    reservations: tuple[Reservation, ...]
    max_recalls: int
    aging_bound_minutes: float
    catalogue_dir: Path | None
    departments: tuple[str, ...] = field(default=())
    cutoff_minute: float | None = None  # 受付締切: no walk-in ticket from this minute of the day
    advisor: AdvisorRules | None = None
    arrival_interval: tuple[float, float] | None = None  # [calibration] arrivals: the fit's 95% volume factors

    @property
    def day_minutes(self) -> float:
        return self.close_minute - self.open_minute

    def slots(self) -> list[tuple[float, float]]:
        """Report and staffing slots [start, end) in minutes of the day, the last one maybe shorter."""
        out, t = [], self.open_minute
        while t < self.close_minute - 1e-9:
            out.append((t, min(t + self.slot_minutes, self.close_minute)))
            t += self.slot_minutes
        return out


# ----------------------------------------------------------------------------- loading


class _Checker:
    """Collects problems with file and line for one scenario file."""

    def __init__(self, file: str, text: str):
        self.file, self.text = file, text
        self.problems: list[Problem] = []

    def bad(self, key_path: str, reason: str, *needles: str) -> None:
        self.problems.append(Problem(self.file, where(self.file, self.text, key_path, *needles), reason))

    def table(self, raw: Mapping[str, Any], key: str, path: str, required: bool = True) -> Mapping[str, Any]:
        v = raw.get(key)
        if v is None:
            if required:
                self.bad(path, f"missing table [{path}]")
            return {}
        if not isinstance(v, Mapping):
            self.bad(path, f"expected a table, got {type(v).__name__}", key)
            return {}
        return v

    def number(
        self,
        raw: Mapping[str, Any],
        key: str,
        path: str,
        default: float | None = None,
        lo: float | None = None,
        hi: float | None = None,
        needle: tuple[str, ...] = (),
    ) -> float:
        v = raw.get(key, default)
        needles = needle or (key,)
        if v is None:
            self.bad(path, f"missing number {key!r}", *needles)
            return 0.0
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.bad(path, f"expected a number, got {v!r}", *needles)
            return 0.0
        if lo is not None and v < lo:
            self.bad(path, f"must be >= {lo}, got {v}", *needles)
        if hi is not None and v > hi:
            self.bad(path, f"must be <= {hi}, got {v}", *needles)
        return float(v)

    def hhmm(self, v: Any, path: str, needle: str) -> float:
        if not isinstance(v, str) or len(v) != 5 or v[2] != ":" or not (v[:2] + v[3:]).isdigit():
            self.bad(path, f"expected a time \"HH:MM\", got {v!r}", needle)
            return 0.0
        m = minutes_of(v)
        if m >= 24 * 60 or int(v[3:]) >= 60:
            self.bad(path, f"not a time of day: {v!r}", needle)
        return float(m)

    def date(self, v: Any, path: str, needle: str) -> dt.date | None:
        if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
            return v
        if isinstance(v, str):
            try:
                return dt.date.fromisoformat(v)
            except ValueError:
                pass
        self.bad(path, f"expected a date YYYY-MM-DD, got {v!r}", needle)
        return None

    def source(self, raw: Mapping[str, Any], path: str, needle: str) -> str:
        s = raw.get("source")
        if not isinstance(s, str) or not s.strip():
            self.bad(path, 'every figure needs its source: add source = "seed …", "domain.md §…" or "estimate"', needle)
            return ""
        return s


def load_scenario(
    path: str | Path, city: CityConfig | None = None, *, _raw_only: bool = False, _seen: tuple[str, ...] = ()
) -> Scenario:
    """Read and validate a scenario file; raise ConfigError listing every problem found.

    ``[scenario] extends = "other.toml"`` (beside this file) starts from that scenario: tables
    merge key by key, lists (days, counters, reservations) are replaced whole.
    """
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([Problem(file, "-", f"cannot read: {e.strerror}")]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise ConfigError([Problem(file, f"line {m.group(1)}" if m else "-", f"TOML syntax error: {e}")]) from None
    parent = raw.get("scenario", {}).get("extends") if isinstance(raw.get("scenario"), Mapping) else None
    if parent is not None:
        here = where(file, text, "scenario.extends", "extends")
        if not isinstance(parent, str):
            raise ConfigError([Problem(file, here, f"extends takes a file name, not {parent!r}")])
        base_path = path.parent / parent
        if str(base_path.resolve()) in (*_seen, str(path.resolve())):
            raise ConfigError([Problem(file, here, f"{parent} extends itself (a cycle)")])
        if not base_path.exists():
            raise ConfigError([Problem(file, here, f"no scenario {base_path} to extend")])
        base_raw = _raw_with_parents(base_path, (*_seen, str(path.resolve())))
        raw = _merge(base_raw, raw)
    return raw if _raw_only else parse_scenario(raw, file, text, city, base=path.parent)


def _raw_with_parents(path: Path, seen: tuple[str, ...]) -> dict[str, Any]:
    return load_scenario(path, _raw_only=True, _seen=seen)  # type: ignore[return-value]


def _merge(base: Mapping[str, Any], over: Mapping[str, Any], path: tuple[str, ...] = ()) -> dict[str, Any]:
    """``over`` on top of ``base``: tables merge key by key, anything else (lists too) replaces.

    One exception: an answer's distribution (``purposes.X.answers.Q``) is replaced whole — a
    merged distribution would mix two scenarios' probabilities into one that sums past 1.
    """
    out = dict(base)
    for k, v in over.items():
        here = (*path, k)
        is_answer = len(here) == 4 and here[0] == "purposes" and here[2] == "answers"
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) and not is_answer:
            out[k] = _merge(out[k], v, here)
        else:
            out[k] = v
    return out


def parse_scenario(
    raw: Mapping[str, Any], file: str, text: str = "", city: CityConfig | None = None, base: Path | None = None
) -> Scenario:
    """Validate an already-parsed scenario (``text`` only helps find line numbers)."""
    ck = _Checker(file, text)
    head = ck.table(raw, "scenario", "scenario")
    kind = head.get("kind", "lobby")
    if kind not in KINDS:
        ck.bad("scenario.kind", f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}", "kind")
    name = str(head.get("name") or Path(file).stem)
    title = str(head.get("title") or name)
    target = ck.table(raw, "target", "target", required=False)
    beh_raw = ck.table(raw, "behaviour", "behaviour", required=False)
    if ck.problems and kind not in KINDS:
        raise ConfigError(ck.problems)
    if kind == "station":
        sc = _station(ck, raw, name, title, file, target, beh_raw)
    else:
        sc = _lobby(ck, raw, head, name, title, file, target, beh_raw, city, base)
    if ck.problems:
        raise ConfigError(ck.problems)
    assert sc is not None
    return sc


def _behaviour(ck: _Checker, b: Mapping[str, Any], station: bool) -> Behaviour:
    p = "behaviour"
    patience = b.get("patience_minutes")
    if patience is not None:
        patience = ck.number(b, "patience_minutes", f"{p}.patience_minutes", lo=0.0)
        patience = patience or None  # 0 means nobody leaves
    dist = b.get("patience_distribution", "lognormal")
    if dist not in ("lognormal", "exponential"):
        ck.bad(f"{p}.patience_distribution", f"expected lognormal or exponential, got {dist!r}", "patience_distribution")
    balk = b.get("balk_queue")
    if balk is not None:
        balk = ck.number(b, "balk_queue", f"{p}.balk_queue", lo=0.0) or None  # 0: nobody balks
    return Behaviour(
        patience_distribution=str(dist),
        balk_queue=balk,
        balk_cv=ck.number(b, "balk_cv", f"{p}.balk_cv", 0.5, lo=0.0),
        patience_minutes=patience,
        patience_cv=ck.number(b, "patience_cv", f"{p}.patience_cv", 0.5, lo=0.0),
        leave_cancels=ck.number(b, "leave_cancels", f"{p}.leave_cancels", 0.0, 0.0, 1.0),
        no_show=ck.number(b, "no_show", f"{p}.no_show", 0.0, 0.0, 1.0),
        walk_seconds=ck.number(b, "walk_seconds", f"{p}.walk_seconds", 0.0 if station else 30.0, lo=0.0),
        recall_seconds=ck.number(b, "recall_seconds", f"{p}.recall_seconds", 60.0, lo=0.0),
        assistance=ck.number(b, "assistance", f"{p}.assistance", 0.0, 0.0, 1.0),
    )


def _target(ck: _Checker, t: Mapping[str, Any], default_minutes: float) -> tuple[float, float]:
    share = ck.number(t, "share", "target.share", 0.9, 0.0, 1.0)
    minutes = ck.number(t, "within_minutes", "target.within_minutes", default_minutes, lo=0.0)
    return share, minutes


def _station(
    ck: _Checker,
    raw: Mapping[str, Any],
    name: str,
    title: str,
    file: str,
    target: Mapping[str, Any],
    beh_raw: Mapping[str, Any],
) -> Scenario | None:
    st = ck.table(raw, "station", "station")
    if not st:
        return None
    p = "station"
    c = ck.number(st, "counters", f"{p}.counters", lo=1)
    lam = ck.number(st, "arrivals_per_hour", f"{p}.arrivals_per_hour", lo=0.0)
    svc = ck.number(st, "service_minutes", f"{p}.service_minutes", lo=1e-9)
    hours = ck.number(st, "hours", f"{p}.hours", lo=1e-9)
    warm = ck.number(st, "warmup_hours", f"{p}.warmup_hours", 0.0, lo=0.0)
    dept = st.get("department", "desk")
    if not isinstance(dept, str) or not dept:
        ck.bad(f"{p}.department", "expected a department key", "department")
        dept = "desk"
    if c != int(c):
        ck.bad(f"{p}.counters", f"expected a whole number of counters, got {c}", "counters")
    if warm >= hours > 0:
        ck.bad(f"{p}.warmup_hours", f"the warm-up ({warm} h) must be shorter than the run ({hours} h)", "warmup_hours")
    # abandonment (patience) keeps an overloaded station stable: Erlang A's M/M/c+M
    if c >= 1 and svc > 0 and lam * svc / 60.0 >= c and not beh_raw.get("patience_minutes"):
        ck.bad(
            f"{p}.arrivals_per_hour",
            f"unstable: offered load {lam * svc / 60.0:.2f} >= {int(c)} counters (the queue grows forever)",
            "arrivals_per_hour",
        )
    share, minutes = _target(ck, target, 30.0)
    beh = _behaviour(ck, beh_raw, station=True)
    purpose = Purpose(
        key="service",
        yearly=lam,  # per hour for a station
        answers={},
        route=(StepSpec(dept, svc, 1.0, (), "exponential"),),
        source=ck.source(st, p, "station"),
    )
    end = hours * 60.0
    counters = tuple(CounterPlan(i + 1, (dept,), ((0.0, end),)) for i in range(int(c)))
    return Scenario(
        name=name,
        title=title,
        file=file,
        kind="station",
        site="",
        days=(dt.date(2000, 1, 3),),
        holidays=frozenset(),
        open_minute=0.0,
        close_minute=end,
        warmup_minutes=warm * 60.0,
        target_share=share,
        target_minutes=minutes,
        purposes={"service": purpose},
        arrivals=None,
        behaviour=beh,
        counters=counters,
        slot_minutes=ck.number(st, "slot_minutes", f"{p}.slot_minutes", 60.0, lo=1.0),
        reservations=(),
        max_recalls=int(ck.number(st, "max_recalls", f"{p}.max_recalls", 2, lo=0)),
        aging_bound_minutes=1e9,  # FCFS: every ticket is NORMAL, and aging keeps FCFS anyway
        catalogue_dir=None,
        departments=(dept,),
    )


def _lobby(
    ck: _Checker,
    raw: Mapping[str, Any],
    head: Mapping[str, Any],
    name: str,
    title: str,
    file: str,
    target: Mapping[str, Any],
    beh_raw: Mapping[str, Any],
    city: CityConfig | None,
    base: Path | None,
) -> Scenario | None:
    base = base or Path(".")
    site_key = head.get("site")
    if city is None:
        site_cfg = head.get("site_config")
        city = load_city(_resolve(site_cfg, base) if site_cfg else None)
    if not isinstance(site_key, str) or site_key not in city.sites:
        ck.bad("scenario.site", f"unknown site {site_key!r}: expected one of {', '.join(city.sites)}", "site")
        return None
    site = city.sites[site_key]
    cat = head.get("catalogue")
    catalogue_dir = _resolve(cat, base) if cat else DEFAULT_CONFIG_DIR / "catalogue"

    # calendar
    cal = ck.table(raw, "calendar", "calendar")
    days: list[dt.date] = []
    for i, d in enumerate(cal.get("days", [])):
        v = ck.date(d, f"calendar.days[{i}]", "days")
        if v is not None:
            if v.weekday() >= 5:
                ck.bad(f"calendar.days[{i}]", f"{v} is a {v.strftime('%A')}: the city hall is closed", "days")
            days.append(v)
    if cal and not days:
        ck.bad("calendar.days", "list at least one day to simulate", "days")
    holidays = frozenset(
        h for i, d in enumerate(cal.get("holidays", [])) if (h := ck.date(d, f"calendar.holidays[{i}]", "holidays"))
    )
    wdays = ck.number(cal, "working_days_per_year", "calendar.working_days_per_year", 243.0, lo=1.0)

    # arrivals
    arr = ck.table(raw, "arrivals", "arrivals")
    if arr:
        ck.source(arr, "arrivals", "arrivals")
    hw: dict[int, float] = {}
    for k, v in (arr.get("hour_weights") or {}).items():
        if not str(k).isdigit() or not 0 <= int(k) <= 23:
            ck.bad(f"arrivals.hour_weights.{k}", f"expected a clock hour 0..23, got {k!r}", "hour_weights")
            continue
        hw[int(k)] = ck.number({"w": v}, "w", f"arrivals.hour_weights.{k}", lo=0.0, needle=("hour_weights",))
    open_m, close_m = float(minutes_of(site.open)), float(minutes_of(site.close))
    if arr and not any(hw.get(h, 0.0) > 0 for h in range(int(open_m // 60), int((close_m - 1) // 60) + 1)):
        ck.bad("arrivals.hour_weights", "no positive weight inside the opening hours", "hour_weights")
    weekday = arr.get("weekday", [1.0] * 5)
    if not isinstance(weekday, list) or not 5 <= len(weekday) <= 7:
        ck.bad("arrivals.weekday", "expected 5 factors, Monday to Friday", "weekday")
        weekday = [1.0] * 5
    weekday_f = tuple(ck.number({"w": w}, "w", f"arrivals.weekday[{i}]", lo=0.0, needle=("weekday",)) for i, w in enumerate(weekday))
    purposes_raw = ck.table(raw, "purposes", "purposes")
    months = []
    for i, m in enumerate(arr.get("month", [])):
        p = f"arrivals.month[{i}]"
        mon = ck.number(m, "month", f"{p}.month", lo=1, hi=12, needle=("[[arrivals.month]]",))
        ps = _purpose_list(ck, m, p, purposes_raw)
        ck.source(m, p, "[[arrivals.month]]")
        months.append(MonthFactor(int(mon), ck.number(m, "factor", f"{p}.factor", lo=0.0), ps))
    peaks = []
    for i, m in enumerate(arr.get("peak_days", [])):
        p = f"arrivals.peak_days[{i}]"
        d = ck.date(m.get("date"), f"{p}.date", "[[arrivals.peak_days]]")
        ps = _purpose_list(ck, m, p, purposes_raw)
        ck.source(m, p, "[[arrivals.peak_days]]")
        if d is not None:
            peaks.append(PeakDay(d, ck.number(m, "factor", f"{p}.factor", lo=0.0), ps))
    arrivals = Arrivals(
        site_share=ck.number(arr, "site_share", "arrivals.site_share", 1.0, 0.0, 1.0),
        working_days_per_year=wdays,
        hour_weights=hw,
        weekday=weekday_f,
        after_holiday=ck.number(arr, "after_holiday", "arrivals.after_holiday", 1.0, lo=0.0),
        months=tuple(months),
        peak_days=tuple(peaks),
        at_door=ck.number(arr, "at_door", "arrivals.at_door", 0.0, 0.0, 0.5),
        door_minutes=ck.number(arr, "door_minutes", "arrivals.door_minutes", 5.0, lo=0.1),
    )

    # purposes
    purposes: dict[str, Purpose] = {}
    for key, pr in purposes_raw.items():
        p = f"purposes.{key}"
        if not isinstance(pr, Mapping):
            ck.bad(p, "expected a table", key)
            continue
        yearly = ck.number(pr, "yearly", f"{p}.yearly", lo=0.0, needle=(f"purposes.{key}", "yearly"))
        src = ck.source(pr, p, f"purposes.{key}")
        answers = _answers(ck, pr.get("answers", {}), f"{p}.answers", key)
        route = _route(ck, pr.get("route"), f"{p}.route", key) if "route" in pr else None
        plan_purpose = pr.get("purpose")
        if plan_purpose is not None and not (isinstance(plan_purpose, str) and plan_purpose):
            ck.bad(f"{p}.purpose", "expected the catalogue purpose (a string) this route is a plan of", key)
            plan_purpose = None
        purposes[key] = Purpose(key, yearly, answers, route, src, str(pr.get("lang", "ja")), plan_purpose)

    # staffing
    stf = ck.table(raw, "staffing", "staffing", required=False)
    counters = _counters(ck, stf, site, open_m, close_m)
    depts_served = {d for c in counters for d in c.departments}
    for pk, pu in purposes.items():
        for i, s in enumerate(pu.route or ()):
            if s.department not in depts_served:
                ck.bad(f"purposes.{pk}.route[{i}].department", f"no counter serves {s.department!r}", f"purposes.{pk}")

    # reservations
    res = []
    for i, r in enumerate(raw.get("reservations", [])):
        p = f"reservations[{i}]"
        pk = r.get("purpose")
        if pk not in purposes:
            ck.bad(f"{p}.purpose", f"unknown purpose {pk!r}: declare it under [purposes]", "[[reservations]]")
        slots = tuple(ck.hhmm(s, f"{p}.slots[{j}]", "slots") for j, s in enumerate(r.get("slots", [])))
        if not slots:
            ck.bad(f"{p}.slots", "list at least one slot start time", "[[reservations]]")
        for s in slots:
            if not open_m <= s < close_m:
                ck.bad(f"{p}.slots", f"slot {int(s) // 60:02d}:{int(s) % 60:02d} is outside the opening hours", "slots")
        ck.source(r, p, "[[reservations]]")
        res.append(
            Reservation(
                purpose=str(pk),
                slots=slots,
                slot_minutes=ck.number(r, "slot_minutes", f"{p}.slot_minutes", 60.0, lo=1.0),
                booked=ck.number(r, "booked", f"{p}.booked", 1.0, 0.0, 1.0),
                no_show=ck.number(r, "no_show", f"{p}.no_show", 0.0, 0.0, 1.0),
                early_minutes=ck.number(r, "early_minutes", f"{p}.early_minutes", 5.0, lo=0.0),
            )
        )

    share, minutes = _target(ck, target, city.policy.wait_target_minutes)
    # dispatch policy: site.toml's unless the scenario tries another (e.g. a longer aging bound)
    pol = ck.table(raw, "policy", "policy", required=False)
    cutoff = None
    if "cutoff" in pol:
        cutoff = ck.hhmm(pol["cutoff"], "policy.cutoff", "cutoff")
        if not open_m < cutoff <= close_m:
            ck.bad("policy.cutoff", f"the cutoff {pol['cutoff']} must fall within the opening hours", "cutoff")
    cal = ck.table(raw, "calibration", "calibration", required=False)
    interval = None
    if cal:
        ck.source(cal, "calibration", "calibration")
        iv = cal.get("arrivals")
        if not isinstance(iv, list) or len(iv) != 2 or not all(isinstance(x, int | float) and x > 0 for x in iv) or iv[0] > iv[1]:
            ck.bad("calibration.arrivals", "expected [low, high] factors of the arrival volume, 0 < low <= high", "arrivals")
        else:
            interval = (float(iv[0]), float(iv[1]))
    return Scenario(
        arrival_interval=interval,
        advisor=_advisor(ck, raw, site, open_m, close_m),
        cutoff_minute=cutoff,
        name=name,
        title=title,
        file=file,
        kind="lobby",
        site=site_key,
        days=tuple(days),
        holidays=holidays,
        open_minute=open_m,
        close_minute=close_m,
        warmup_minutes=0.0,
        target_share=share,
        target_minutes=minutes,
        purposes=purposes,
        arrivals=arrivals,
        behaviour=_behaviour(ck, beh_raw, station=False),
        counters=counters,
        slot_minutes=ck.number(stf, "slot_minutes", "staffing.slot_minutes", 60.0, lo=5.0),
        reservations=tuple(res),
        max_recalls=int(ck.number(pol, "max_recalls", "policy.max_recalls", city.policy.max_recalls, lo=0)),
        aging_bound_minutes=ck.number(
            pol, "aging_bound_minutes", "policy.aging_bound_minutes", city.policy.aging_bound_minutes, lo=0.0
        ),
        catalogue_dir=catalogue_dir,
        departments=tuple(site.departments),
    )


_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "月": 0, "火": 1, "水": 2, "木": 3, "金": 4}


def _advisor(ck: _Checker, raw: Mapping[str, Any], site: Any, open_m: float, close_m: float) -> AdvisorRules | None:
    """``[advisor]``: staff (skills, speed, lunch, weekdays, hours), physical counters, minimum opening."""
    adv = ck.table(raw, "advisor", "advisor", required=False)
    if not adv:
        return None
    depts = set(site.departments)
    staff = None
    if "staff" in adv:
        staff = []
        for i, m in enumerate(adv["staff"]):
            p = f"advisor.staff[{i}]"
            if not isinstance(m, Mapping):
                ck.bad(p, "expected a table { name, skills, speed, lunch, weekdays, hours }", "staff")
                continue
            skills = tuple(m.get("skills", ()))
            bad = [d for d in skills if d not in depts]
            if not skills or bad:
                ck.bad(f"{p}.skills", f"list the departments they serve (known: {', '.join(sorted(depts))}); bad: {bad}", "skills")
            lunch = None
            if "lunch" in m:
                w = m["lunch"]
                if not isinstance(w, list) or len(w) != 2:
                    ck.bad(f"{p}.lunch", 'expected ["HH:MM", "HH:MM"]', "lunch")
                else:
                    lunch = (ck.hhmm(w[0], f"{p}.lunch", "lunch"), ck.hhmm(w[1], f"{p}.lunch", "lunch"))
            hours = None
            if "hours" in m:
                w = m["hours"]
                if not isinstance(w, list) or len(w) != 2:
                    ck.bad(f"{p}.hours", 'expected ["HH:MM", "HH:MM"]', "hours")
                else:
                    hours = (ck.hhmm(w[0], f"{p}.hours", "hours"), ck.hhmm(w[1], f"{p}.hours", "hours"))
            wd = frozenset(range(5))
            if "weekdays" in m:
                names = [str(x).lower()[:3] if str(x).isascii() else str(x)[:1] for x in m["weekdays"]]
                unknown = [x for x in names if x not in _WEEKDAYS]
                if unknown:
                    ck.bad(f"{p}.weekdays", f"expected Mon..Fri (or 月..金), got {unknown}", "weekdays")
                wd = frozenset(_WEEKDAYS[x] for x in names if x in _WEEKDAYS)
            staff.append(
                StaffMember(
                    name=str(m.get("name", f"staff {i + 1}")),
                    skills=skills,
                    speed=ck.number(m, "speed", f"{p}.speed", 1.0, lo=0.05, hi=5.0),
                    lunch=lunch,
                    weekdays=wd,
                    hours=hours,
                )
            )
        staff = tuple(staff)
    counters = None
    if "counters" in adv:
        counters = []
        for i, c in enumerate(adv["counters"]):
            p = f"advisor.counters[{i}]"
            num, ds = c.get("number"), tuple(c.get("departments", ()))
            if not isinstance(num, int) or not ds or any(d not in depts for d in ds):
                ck.bad(p, "each physical counter needs a number and the site departments it can serve", "counters")
                continue
            counters.append((num, ds))
        counters = tuple(counters)
    min_open = {}
    for d, n in (adv.get("min_open") or {}).items():
        if d not in depts:
            ck.bad(f"advisor.min_open.{d}", f"unknown department {d!r}", "min_open")
        min_open[d] = int(ck.number({"n": n}, "n", f"advisor.min_open.{d}", lo=0, needle=("min_open",)))
    return AdvisorRules(staff, counters, min_open)


def _resolve(p: str, base: Path) -> Path:
    """A path in a scenario: as given when it exists from the working directory, else beside the file."""
    path = Path(p)
    if path.is_absolute() or path.exists():
        return path
    for parent in (base, *base.parents):
        if (parent / path).exists():
            return parent / path
    return path


def _purpose_list(ck: _Checker, m: Mapping[str, Any], path: str, purposes: Mapping[str, Any]) -> frozenset[str]:
    ps = m.get("purposes", [])
    if not isinstance(ps, list):
        ck.bad(f"{path}.purposes", "expected a list of purpose keys", "purposes")
        return frozenset()
    for x in ps:
        if x not in purposes:
            ck.bad(f"{path}.purposes", f"unknown purpose {x!r}: declare it under [purposes]", "purposes")
    return frozenset(ps)


def _answers(ck: _Checker, a: Any, path: str, purpose: str) -> dict[str, dict[str, float]]:
    """``q = 0.3`` means P(yes) = 0.3, P(no) = 0.7; ``q = { a = 0.2, b = 0.5 }`` leaves 0.3 unknown."""
    out: dict[str, dict[str, float]] = {}
    if not isinstance(a, Mapping):
        ck.bad(path, "expected a table of question id = probability", f"purposes.{purpose}")
        return out
    for q, v in a.items():
        if isinstance(v, int | float):  # bool included, refused below
            if isinstance(v, bool) or not 0.0 <= v <= 1.0:
                ck.bad(f"{path}.{q}", f"P(yes) must be between 0 and 1, got {v!r}", q)
                continue
            out[q] = {"yes": float(v), "no": 1.0 - float(v)}
        elif isinstance(v, Mapping):
            dist = {}
            for val, pv in v.items():
                if isinstance(pv, bool) or not isinstance(pv, int | float) or not 0.0 <= pv <= 1.0:
                    ck.bad(f"{path}.{q}.{val}", f"probability must be between 0 and 1, got {pv!r}", q)
                    continue
                dist[str(val)] = float(pv)
            total = sum(dist.values())
            if total > 1.0 + 1e-9:
                ck.bad(f"{path}.{q}", f"probabilities add up to {total:.3f} > 1", q)
            elif total < 1.0 - 1e-9:
                dist[UNKNOWN] = dist.get(UNKNOWN, 0.0) + 1.0 - total
            out[q] = dist
        else:
            ck.bad(f"{path}.{q}", f"expected a probability or a table of answer = probability, got {v!r}", q)
    return out


def _route(ck: _Checker, r: Any, path: str, purpose: str) -> tuple[StepSpec, ...]:
    if not isinstance(r, list) or not r:
        ck.bad(path, "expected a non-empty list of steps {department, minutes, cv, after}", f"purposes.{purpose}")
        return ()
    steps = []
    for i, s in enumerate(r):
        p = f"{path}[{i}]"
        if not isinstance(s, Mapping) or not isinstance(s.get("department"), str):
            ck.bad(p, "each step needs a department key", "route")
            continue
        after = tuple(s.get("after", ()))
        if any(not isinstance(a, int) or not 0 <= a < i for a in after):
            ck.bad(f"{p}.after", f"step {i} may only wait for earlier steps, got {list(after)}", "route")
            after = ()
        procs = s.get("procedures", [])
        if not isinstance(procs, list) or not all(isinstance(x, str) and x for x in procs):
            ck.bad(f"{p}.procedures", "expected a list of procedure ids", "route")
            procs = []
        dist = s.get("distribution", "lognormal")
        if dist not in ("lognormal", "exponential"):
            ck.bad(f"{p}.distribution", f"expected lognormal or exponential, got {dist!r}", "route")
        steps.append(
            StepSpec(
                department=s["department"],
                minutes=ck.number(s, "minutes", f"{p}.minutes", lo=1e-9, needle=("route",)),
                cv=1.0 if dist == "exponential" else ck.number(s, "cv", f"{p}.cv", 0.5, lo=0.0, needle=("route",)),
                after=after,
                distribution=dist,
                procedures=tuple(procs),
            )
        )
    return tuple(steps)


def _counters(
    ck: _Checker, stf: Mapping[str, Any], site: Any, open_m: float, close_m: float
) -> tuple[CounterPlan, ...]:
    """The site's counters with the scenario's changes: extra counters, hours, speed, lunch."""
    plans: dict[int, dict[str, Any]] = {
        c.number: {"departments": tuple(c.departments), "windows": [(open_m, close_m)], "speed": 1.0, "note": ""}
        for c in site.counters
    }
    for i, c in enumerate(stf.get("counters", [])):
        p = f"staffing.counters[{i}]"
        num = c.get("number")
        if not isinstance(num, int) or isinstance(num, bool):
            ck.bad(f"{p}.number", "each counter needs a whole number", "[[staffing.counters]]")
            continue
        plan = plans.setdefault(num, {"departments": (), "windows": [(open_m, close_m)], "speed": 1.0, "note": ""})
        if "departments" in c:
            deps = c["departments"]
            bad = [d for d in deps if d not in site.departments]
            if bad:
                ck.bad(f"{p}.departments", f"unknown department(s) {bad} at site {site.key}", "departments")
            plan["departments"] = tuple(deps)
        if not plan["departments"]:
            ck.bad(f"{p}.departments", f"counter {num} is not in site.toml: give its departments", "[[staffing.counters]]")
        if "hours" in c:
            wins = []
            for j, w in enumerate(c["hours"]):
                if not isinstance(w, list) or len(w) != 2:
                    ck.bad(f"{p}.hours[{j}]", 'expected ["HH:MM", "HH:MM"]', "hours")
                    continue
                a, b = ck.hhmm(w[0], f"{p}.hours[{j}]", "hours"), ck.hhmm(w[1], f"{p}.hours[{j}]", "hours")
                if b <= a:
                    ck.bad(f"{p}.hours[{j}]", f"{w[0]}–{w[1]} ends before it starts", "hours")
                wins.append((a, b))
            plan["windows"] = wins
        if "speed" in c:
            plan["speed"] = ck.number(c, "speed", f"{p}.speed", lo=0.05, hi=5.0)
        plan["note"] = str(c.get("note", plan["note"]))
    lunch = stf.get("lunch", True)
    if not isinstance(lunch, bool):
        ck.bad("staffing.lunch", "expected true (the site's lunch rotation) or false", "lunch")
        lunch = True
    if lunch:
        for ls in site.lunch:
            a, b = float(minutes_of(ls.start)), float(minutes_of(ls.end))
            for n in ls.counters:
                if n in plans:
                    plans[n]["windows"] = _minus(plans[n]["windows"], a, b)
    return tuple(
        CounterPlan(n, p["departments"], tuple(p["windows"]), p["speed"], p["note"])
        for n, p in sorted(plans.items())
        if p["windows"]
    )


def _minus(windows: list[tuple[float, float]], a: float, b: float) -> list[tuple[float, float]]:
    """Windows with the break [a, b) taken out."""
    out = []
    for s, e in windows:
        if e <= a or s >= b:
            out.append((s, e))
            continue
        if s < a:
            out.append((s, a))
        if e > b:
            out.append((b, e))
    return out
