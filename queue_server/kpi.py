"""KPIs of a site over a range of local dates, computed from the append-only event log only.

Every KPI is defined once here; docs/kpi.md gives each formula and the branch of the seed's KPI
tree (section 7) it serves. The CLI (``run.py kpi``), the admin page (``/admin/``) and the tests all
call :func:`compute`, so they show the same numbers.

Shape: one read-only connection builds four temporary tables from the ``events`` table (the range
is found through the ``(site, at)`` index and each JSON payload is parsed once), window functions
turn the log into intervals (waits, service, counter occupancy, open periods), and ``GROUP BY``
queries aggregate them. Python only names, orders and rounds the few hundred aggregate rows. The SQL
runs on SQLite and PostgreSQL; the few dialect differences (JSON access, floor, least) live in
:class:`_Dialect`.

Times in the log are epoch seconds; the site's local day (Asia/Tokyo) is found with the zone's UTC
offset, which must be constant over the period (true for Japan, which has no daylight saving).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

WEEKDAYS_JA = "月火水木金土日"
DAY = 86400.0
# A visit belongs to the local day of its ticket; its later events are read up to this long after
# the period's end (a visit still open at midnight keeps its last step).
SLACK = DAY
DECIMALS = 2  # every published figure is rounded once, here, so table, CSV, xlsx and web agree


# ----------------------------------------------------------------------------- report model


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    ja: str  # the header staff read (Excel, CSV, admin page)
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Table:
    """One KPI group: an Excel sheet, a CSV file, a section of the admin page."""

    key: str
    ja: str
    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]]

    def column(self, key: str) -> list[Any]:
        i = [c.key for c in self.columns].index(key)
        return [r[i] for r in self.rows]

    def as_dicts(self) -> list[dict[str, Any]]:
        keys = [c.key for c in self.columns]
        return [dict(zip(keys, r, strict=True)) for r in self.rows]


@dataclass(frozen=True, slots=True)
class Report:
    site: str
    first: dt.date
    last: dt.date
    target_minutes: float
    tables: Mapping[str, Table]
    generated_at: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The overview as {kpi key: value}."""
        return {r[0]: r[2] for r in self.tables["summary"].rows}

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "target_minutes": self.target_minutes,
            "generated_at": self.generated_at,
            "tables": {
                k: {"title": t.ja, "columns": [{"key": c.key, "title": c.ja, "unit": c.unit} for c in t.columns],
                    "rows": [list(r) for r in t.rows]}
                for k, t in self.tables.items()
            },
        }


def _r(x: float | None, nd: int = DECIMALS) -> float | None:
    return None if x is None else round(float(x), nd)


def _share(part: float, whole: float) -> float | None:
    """A share in [0, 1], or None (not 0) when there is nothing to share: 0/0 is not 'none met'."""
    return _r(part / whole, 4) if whole else None


def _cv(n: int, s: float, ss: float) -> float | None:
    """Sample coefficient of variation from count, sum and sum of squares (None below 2 values)."""
    if n < 2 or s <= 0:
        return None
    mean = s / n
    var = max(0.0, (ss - n * mean * mean) / (n - 1))
    return math.sqrt(var) / mean


# ----------------------------------------------------------------------------- period and SQL


@dataclass(frozen=True, slots=True)
class Period:
    """A site and an inclusive range of its local dates."""

    site: str
    first: dt.date
    last: dt.date
    timezone: str = "Asia/Tokyo"

    def offset(self) -> int:
        """The zone's UTC offset in seconds, checked constant over the period."""
        tz = ZoneInfo(self.timezone)
        offs = {
            int(dt.datetime.combine(d, dt.time(12), tz).utcoffset().total_seconds())  # type: ignore[union-attr]
            for d in (self.first, self.last, self.last + dt.timedelta(days=1))
        }
        if len(offs) != 1:
            raise ValueError(f"{self.timezone} changes its UTC offset between {self.first} and {self.last}: "
                             "report the periods before and after the change separately")
        return offs.pop()

    def bounds(self) -> tuple[float, float]:
        """[start, end) in epoch seconds: local midnight of ``first`` to local midnight after ``last``."""
        tz = ZoneInfo(self.timezone)
        start = dt.datetime.combine(self.first, dt.time(0), tz).timestamp()
        end = dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(0), tz).timestamp()
        return start, end


EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def day_of(number: int) -> dt.date:
    """The local date of a day number (days since 1970-01-01 in local time)."""
    return dt.date.fromordinal(EPOCH_ORDINAL + int(number))


class _Dialect:
    """The SQL fragments that differ between SQLite and PostgreSQL."""

    def __init__(self, name: str):
        self.pg = name == "postgresql"

    def jtext(self, key: str, col: str = "payload") -> str:
        return f"({col}->>'{key}')" if self.pg else f"json_extract({col}, '$.{key}')"

    def jflag(self, key: str, col: str = "payload") -> str:
        """A JSON boolean as 0/1 (missing: 0)."""
        if self.pg:
            return f"(CASE WHEN ({col}->>'{key}') = 'true' THEN 1 ELSE 0 END)"
        return f"COALESCE(json_extract({col}, '$.{key}'), 0)"

    def jarray(self, key: str, col: str = "payload") -> str:
        """A JSON array as its JSON text."""
        return f"(({col}->'{key}')::text)" if self.pg else f"json_extract({col}, '$.{key}')"

    def jlen(self, key: str, col: str = "payload") -> str:
        return f"json_array_length({col}->'{key}')" if self.pg else f"json_array_length({col}, '$.{key}')"

    def unnest(self, col: str) -> str:
        """FROM-clause item that yields one row per element of a JSON array text column, as ``j.value``."""
        if self.pg:
            return f"CROSS JOIN LATERAL json_array_elements_text({col}::json) AS j(value)"
        return f", json_each({col}) AS j"

    def floor(self, x: str) -> str:
        # every value floored here is positive (epoch seconds), so SQLite's truncating CAST is floor
        return f"CAST(FLOOR({x}) AS INTEGER)" if self.pg else f"CAST({x} AS INTEGER)"

    def day(self, col: str, off: int) -> str:
        """The local day number (days since 1970-01-01 local) of epoch seconds in ``col``."""
        return self.floor(f"({col} + {off}) / 86400.0")

    def hour(self, col: str, off: int) -> str:
        """The local clock hour 0..23 of epoch seconds in ``col``."""
        return f"({self.floor(f'({col} + {off}) / 3600.0')} - 24 * {self.day(col, off)})"

    def least(self, a: str, b: str) -> str:
        return f"LEAST({a}, {b})" if self.pg else f"MIN({a}, {b})"

    def temp(self, name: str, select: str) -> str:
        return f"CREATE TEMPORARY TABLE {name} AS {select}"


def _stats_sql(src: str, group: str, value: str, target: str | None = None) -> str:
    """Count, mean, nearest-rank p50 and p90, max, sum of squares (and count within a target).

    Nearest rank: the p-th percentile of n sorted values is the value at rank ceil(p/100 · n),
    i.e. the smallest value whose rank r satisfies 100·r >= p·n. It is always an observed value,
    so a figure in the report can be found in the log. Written as window functions, so SQLite and
    PostgreSQL compute it the same way (PostgreSQL's percentile_cont interpolates; SQLite has none).
    """
    within = f", SUM(CASE WHEN x <= {target} THEN 1 ELSE 0 END) AS within" if target else ", 0 AS within"
    return f"""
        SELECT g, COUNT(*) AS n, AVG(x) AS mean, MAX(x) AS mx,
               MIN(CASE WHEN rn * 100 >= 50 * cnt THEN x END) AS p50,
               MIN(CASE WHEN rn * 100 >= 90 * cnt THEN x END) AS p90,
               SUM(x) AS s, SUM(x * x) AS ss {within}
        FROM (SELECT {group} AS g, {value} AS x,
                     ROW_NUMBER() OVER w AS rn,
                     COUNT(*) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS cnt
              FROM {src}
              WINDOW w AS (PARTITION BY {group} ORDER BY {value})) AS ranked
        GROUP BY g ORDER BY g"""


@dataclass
class _Stat:
    n: int = 0
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    max: float | None = None
    s: float = 0.0
    ss: float = 0.0
    within: int = 0

    @classmethod
    def of(cls, row: Any, scale: float = 60.0) -> _Stat:
        """From a _stats_sql row, seconds converted to minutes."""
        def m(x: Any) -> float | None:
            return None if x is None else float(x) / scale

        return cls(int(row.n), m(row.mean), m(row.p50), m(row.p90), m(row.mx),
                   float(row.s or 0) / scale, float(row.ss or 0) / scale / scale, int(row.within or 0))

    @property
    def cv(self) -> float | None:
        return _cv(self.n, self.s, self.ss)

    def cells(self) -> tuple[Any, ...]:
        return (self.n, _r(self.mean), _r(self.p50), _r(self.p90), _r(self.max))


STAT_COLUMNS = (
    Column("n", "件数"),
    Column("mean", "平均", "分"),
    Column("p50", "中央値", "分"),
    Column("p90", "90%値", "分"),
    Column("max", "最大", "分"),
)


# ----------------------------------------------------------------------------- compute


def compute(
    engine: Engine,
    period: Period,
    *,
    target_minutes: float = 30.0,
    department_names: Mapping[str, str] | None = None,
    now: float | None = None,
) -> Report:
    """Every KPI of ``period`` from the events table.

    ``now`` caps counter open periods that have not ended (live figures for today); it defaults to
    the clock. ``department_names`` only labels rows (key -> Japanese name).
    """
    now = time.time() if now is None else now
    with log_tables(engine, period, now) as (conn, d):
        tables = _aggregate(conn, d, period, target_minutes, dict(department_names or {}), now)
        from .kpi_booking import table as booking_table  # 来庁予約 KPIs (docs/planning.md)

        tables = {**tables, "bookings": booking_table(conn, period.site, period.first.isoformat(),
                                                      period.last.isoformat(), now)}
        from .kpi_forecast import forecast_tables  # forecast accuracy (docs/prediction.md)

        tables.update(forecast_tables(conn, period.site, *period.bounds(), SLACK, period.offset(),
                                      dict(department_names or {})))
        from .kpi_forms import table as forms_table  # 書かない窓口 (docs/forms.md)

        tables["forms"] = forms_table(conn)
        from .kpi_manager import manager_tables  # the manager's KPIs (their own module)

        tables.update(manager_tables(conn, d, period, target_minutes))
    return Report(period.site, period.first, period.last, target_minutes, tables, now)


TEMP_TABLES = ("kpi_open", "kpi_occ", "kpi_svc", "kpi_wait", "kpi_iv", "kpi_ev", "kpi_tk")


def _drop(conn: Connection) -> None:
    for t in TEMP_TABLES:
        conn.execute(text(f"DROP TABLE IF EXISTS {t}"))


@contextmanager
def log_tables(engine: Engine, period: Period, now: float | None = None) -> Iterator[tuple[Connection, _Dialect]]:
    """A connection holding the temporary tables of :func:`_build` (for calibration, which fits the
    simulation to the same waits, services and open periods the KPIs report)."""
    now = time.time() if now is None else now
    with engine.connect() as conn:
        d = _Dialect(conn.dialect.name)
        try:
            _build(conn, d, period, now)
            yield conn, d
        finally:
            _drop(conn)
            conn.rollback()


def _build(conn: Connection, d: _Dialect, period: Period, now: float) -> None:
    """The temporary tables every KPI reads: tickets, their events, waits, services, occupancy."""
    off = period.offset()
    start, end = period.bounds()
    p = {"site": period.site, "start": start, "end": end, "end_slack": end + SLACK}
    for t in ("kpi_occ", "kpi_svc", "kpi_wait", "kpi_ev", "kpi_tk"):
        conn.execute(text(f"DROP TABLE IF EXISTS {t}"))
    # Tickets: one row per `issued` event in the period; the day and hour are local.
    conn.execute(text(d.temp("kpi_tk", f"""
        SELECT ticket, seq, at, {d.day('at', off)} AS day, {d.hour('at', off)} AS hour,
               {d.jflag('reserved')} AS reserved, {d.jflag('prefilled')} AS prefilled,
               {d.jflag('online_capable')} AS online, {d.jflag('assistance')} AS assistance,
               {d.jarray('purposes')} AS purposes, {d.jarray('steps')} AS route,
               {d.jtext('forms')} AS forms
        FROM events
        WHERE site = :site AND kind = 'issued' AND at >= :start AND at < :end""")), p)
    conn.execute(text("CREATE INDEX kpi_tk_ticket ON kpi_tk (ticket)"))
    # The visits' events (their department parsed once). `transferred` carries from/to, not department.
    conn.execute(text(d.temp("kpi_ev", f"""
        SELECT e.ticket, e.seq, e.at, e.kind, e.step, e.counter,
               CASE WHEN e.kind = 'transferred' THEN {d.jtext('from', 'e.payload')}
                    ELSE {d.jtext('department', 'e.payload')} END AS dept,
               CASE WHEN e.kind = 'completed' THEN {d.jflag('closed', 'e.payload')}
                    ELSE 0 END AS closed,
               CASE WHEN e.kind = 'completed' THEN {d.jarray('procedures', 'e.payload')} END AS procs,
               CASE WHEN e.kind = 'completed' THEN {d.jlen('procedures', 'e.payload')} END AS nprocs,
               CASE WHEN e.kind = 'forms_printed' THEN {d.jarray('forms', 'e.payload')} END AS forms
        FROM events e JOIN kpi_tk t ON t.ticket = e.ticket
        WHERE e.site = :site AND e.at >= :start AND e.at < :end_slack AND e.ticket IS NOT NULL""")), p)
    conn.execute(text("CREATE INDEX kpi_ev_ticket ON kpi_ev (ticket, seq)"))
    # One pass over each visit's events in order: a ticket is at one counter at a time, so "the
    # latest call", "the latest start" and "the latest release" of the ticket are those of the
    # step now at a counter. Every interval below reads this one window (one sort, on the index).
    conn.execute(text(d.temp("kpi_iv", """
        SELECT ticket, seq, at, kind, step, counter, dept, procs, nprocs,
               MAX(CASE WHEN kind IN ('issued', 'completed', 'transferred') THEN seq END)
                   OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS rel,
               MAX(CASE WHEN kind = 'called' THEN seq END)
                   OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_call,
               MAX(CASE WHEN kind = 'called' THEN at END)
                   OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS called_at,
               MAX(CASE WHEN kind = 'started' THEN at END)
                   OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS started_at
        FROM kpi_ev
        WHERE kind IN ('issued', 'called', 'started', 'completed', 'transferred', 'no_show', 'requeued')
        WINDOW w AS (PARTITION BY ticket ORDER BY seq)""")))
    # Waits. A ticket is released into a queue when it is issued, when one of its steps completes
    # (the citizen is free again) and when a counter transfers it; the wait of that release ends at
    # its first call (no call since the release). Recalls, and calls after a `requeued`, do not
    # start a new wait.
    conn.execute(text(d.temp("kpi_wait", f"""
        SELECT c.ticket, c.dept, r.at AS ready, c.at AS called, c.at - r.at AS wait,
               {d.day('r.at', off)} AS day, {d.hour('r.at', off)} AS hour
        FROM kpi_iv c JOIN kpi_ev r ON r.ticket = c.ticket AND r.seq = c.rel
        WHERE c.kind = 'called' AND (c.prev_call IS NULL OR c.prev_call < c.rel)""")))
    # Service of completed steps: completion minus the latest start (a step transferred after it
    # started is served again from its new start).
    conn.execute(text(d.temp("kpi_svc", """
        SELECT ticket, step, dept, procs, nprocs, at - started_at AS service
        FROM kpi_iv WHERE kind = 'completed' AND started_at IS NOT NULL""")))
    # Counter occupancy: from the call to the event that frees the counter (complete, transfer,
    # no-show, requeue), and the serving part of it from the start.
    conn.execute(text(d.temp("kpi_occ", f"""
        SELECT counter, {d.day('called_at', off)} AS day, at - called_at AS occupied,
               CASE WHEN started_at >= called_at THEN at - started_at ELSE 0 END AS serving, kind
        FROM kpi_iv
        WHERE kind IN ('completed', 'transferred', 'no_show', 'requeued') AND counter IS NOT NULL
          AND called_at IS NOT NULL""")))
    # Counter open periods: from a `counter_open` to the counter's next state event (paused,
    # closed, or open again), cut at the local day's end (a counter left open overnight is not
    # open all night) and at `now` (live figures for today).
    day_end = f"(({d.day('at', off)} + 1) * 86400.0 - {off})"
    conn.execute(text(d.temp("kpi_open", f"""
        WITH c AS (
            SELECT counter, at, kind, LEAD(at) OVER (PARTITION BY counter ORDER BY seq) AS nxt
            FROM events WHERE site = :site AND at >= :start AND at < :end
              AND kind IN ('counter_open', 'counter_paused', 'counter_closed') AND counter IS NOT NULL
        )
        SELECT counter, {d.day('at', off)} AS day, at AS start_at,
               {d.least(d.least('COALESCE(nxt, :now)', day_end), ':now')} AS end_at
        FROM c WHERE kind = 'counter_open' AND at < :now""")), {**p, "now": now})


def _aggregate(
    conn: Connection, d: _Dialect, period: Period, target_minutes: float, names: Mapping[str, str], now: float
) -> dict[str, Table]:
    off = period.offset()
    start, end = period.bounds()
    target_s = float(target_minutes) * 60.0
    q = lambda sql, **kw: conn.execute(text(sql), kw).all()  # noqa: E731
    tables: dict[str, Table] = {}

    # ---- tickets and visitors per day. A visitor is a ticket that reached a counter (a step started).
    served = "(SELECT DISTINCT ticket FROM kpi_ev WHERE kind = 'started')"
    per_day = {r.day: r for r in q(f"""
        SELECT t.day, COUNT(*) AS tickets, SUM(CASE WHEN s.ticket IS NOT NULL THEN 1 ELSE 0 END) AS visitors,
               SUM(t.reserved) AS reserved, SUM(t.prefilled) AS prefilled, SUM(t.online) AS online,
               SUM(t.assistance) AS assistance
        FROM kpi_tk t LEFT JOIN {served} s ON s.ticket = t.ticket
        GROUP BY t.day""")}
    wait_day = {r.g: _Stat.of(r) for r in q(_stats_sql("kpi_wait", "day", "wait", str(target_s)))}
    noshow_day = dict(q("""SELECT t.day, COUNT(*) FROM kpi_ev e JOIN kpi_tk t ON t.ticket = e.ticket
                           WHERE e.kind = 'no_show' GROUP BY t.day"""))
    daily_rows = []
    for day in sorted(per_day):
        r, w = per_day[day], wait_day.get(day, _Stat())
        date = day_of(day)
        daily_rows.append((date.isoformat(), WEEKDAYS_JA[date.weekday()], int(r.tickets), int(r.visitors),
                           int(r.reserved), int(r.prefilled), int(noshow_day.get(day, 0)), w.n, _r(w.mean),
                           _r(w.p90), _share(w.within, w.n)))
    tables["daily"] = Table("daily", "日別", (
        Column("date", "日付"), Column("weekday", "曜日"), Column("tickets", "発券数", "件"),
        Column("visitors", "来庁者数", "人"), Column("reserved", "予約", "件"), Column("prefilled", "書かない窓口", "件"),
        Column("no_show", "不在", "件"), Column("waits", "待ち件数", "件"), Column("wait_mean", "平均待ち", "分"),
        Column("wait_p90", "90%値待ち", "分"), Column("within_target", "目標内割合", "比率"),
    ), daily_rows)

    # ---- per clock hour of issue (tickets, visitors) and of joining a queue (waits)
    per_hour = {r.hour: r for r in q(f"""
        SELECT t.hour, COUNT(*) AS tickets, SUM(CASE WHEN s.ticket IS NOT NULL THEN 1 ELSE 0 END) AS visitors
        FROM kpi_tk t LEFT JOIN {served} s ON s.ticket = t.ticket GROUP BY t.hour""")}
    wait_hour = {r.g: _Stat.of(r) for r in q(_stats_sql("kpi_wait", "hour", "wait", str(target_s)))}
    n_days = len(per_day)
    hourly_rows = []
    for h in sorted(set(per_hour) | set(wait_hour)):
        r, w = per_hour.get(h), wait_hour.get(h, _Stat())
        tickets = int(r.tickets) if r else 0
        hourly_rows.append((f"{h:02d}:00", tickets, int(r.visitors) if r else 0,
                            _r(tickets / n_days) if n_days else None, *w.cells(), _share(w.within, w.n)))
    tables["hourly"] = Table("hourly", "時間帯別", (
        Column("hour", "時刻"), Column("tickets", "発券数", "件"), Column("visitors", "来庁者数", "人"),
        Column("tickets_per_day", "1日平均発券数", "件"), Column("n", "待ち件数", "件"),
        *(Column(f"wait_{c.key}", f"待ち時間{c.ja}", c.unit) for c in STAT_COLUMNS[1:]),
        Column("within_target", "目標内割合", "比率"),
    ), hourly_rows)

    # ---- waits per department and overall
    wait_dept = [(r.g, _Stat.of(r)) for r in q(_stats_sql("kpi_wait", "dept", "wait", str(target_s)))]
    overall = q(_stats_sql("kpi_wait", "'all'", "wait", str(target_s)))
    w_all = _Stat.of(overall[0]) if overall else _Stat()
    tables["waits"] = Table("waits", "課別待ち時間", (
        Column("department", "課"), Column("name", "課名"), *STAT_COLUMNS, Column("within_target", "目標内割合", "比率"),
    ), [(k, names.get(k, k), *s.cells(), _share(s.within, s.n)) for k, s in wait_dept]
       + [("(all)", "全体", *w_all.cells(), _share(w_all.within, w_all.n))])

    # ---- service time per step (department) and per procedure
    svc_dept = [(r.g, _Stat.of(r)) for r in q(_stats_sql("kpi_svc", "dept", "service"))]
    svc_all_rows = q(_stats_sql("kpi_svc", "'all'", "service"))
    s_all = _Stat.of(svc_all_rows[0]) if svc_all_rows else _Stat()
    tables["service_step"] = Table("service_step", "工程別処理時間", (
        Column("department", "課"), Column("name", "課名"), *STAT_COLUMNS, Column("cv", "変動係数"),
    ), [(k, names.get(k, k), *s.cells(), _r(s.cv)) for k, s in svc_dept]
       + [("(all)", "全体", *s_all.cells(), _r(s_all.cv))])
    # A step serving several procedures cannot be split by the log: a procedure's own figures come
    # from the steps that served it alone; `steps` counts every step that included it.
    first_proc = "(procs::json->>0)" if d.pg else "json_extract(procs, '$[0]')"
    single = f"(SELECT {first_proc} AS proc, service FROM kpi_svc WHERE nprocs = 1) AS one"
    svc_proc = {r.g: _Stat.of(r) for r in q(_stats_sql(single, "proc", "service"))}
    including = dict(q(f"SELECT j.value, COUNT(*) FROM kpi_svc s {d.unnest('s.procs')} GROUP BY j.value"))
    tables["service_procedure"] = Table("service_procedure", "手続き別処理時間", (
        Column("procedure", "手続き"), Column("n", "単独件数", "件"), *STAT_COLUMNS[1:], Column("cv", "変動係数"),
        Column("steps", "含む工程数", "件"),
    ), [(p, *svc_proc.get(p, _Stat()).cells(), _r(svc_proc.get(p, _Stat()).cv), int(including[p]))
        for p in sorted(including)])

    # ---- per purpose (a ticket with several purposes counts under each of them)
    purpose_rows = q(f"""
        SELECT j.value AS purpose, COUNT(*) AS tickets,
               SUM(CASE WHEN s.ticket IS NOT NULL THEN 1 ELSE 0 END) AS visitors,
               SUM(t.online) AS online, AVG(c.stay) AS stay
        FROM kpi_tk t {d.unnest('t.purposes')}
        LEFT JOIN {served} s ON s.ticket = t.ticket
        LEFT JOIN (SELECT e.ticket, e.at - k.at AS stay FROM kpi_ev e JOIN kpi_tk k ON k.ticket = e.ticket
                   WHERE e.kind = 'completed' AND e.closed = 1) c ON c.ticket = t.ticket
        GROUP BY j.value ORDER BY COUNT(*) DESC, j.value""")
    n_tickets = sum(int(r.tickets) for r in per_day.values())
    tables["purposes"] = Table("purposes", "目的別", (
        Column("purpose", "目的"), Column("tickets", "発券数", "件"), Column("share", "割合", "比率"),
        Column("visitors", "来庁者数", "人"), Column("stay_mean", "平均滞在時間", "分"),
        Column("online_capable_share", "オンライン・コンビニで済んだはずの割合", "比率"),
    ), [(r.purpose, int(r.tickets), _share(int(r.tickets), n_tickets), int(r.visitors),
         _r(float(r.stay) / 60.0) if r.stay is not None else None, _share(int(r.online), int(r.tickets)))
        for r in purpose_rows])

    # ---- visits: time in the building and departments visited
    tib = q(_stats_sql("""(SELECT e.ticket, e.at - t.at AS stay FROM kpi_ev e JOIN kpi_tk t ON t.ticket = e.ticket
                          WHERE e.kind = 'completed' AND e.closed = 1) AS closed_visits""", "'all'", "stay"))
    stay = _Stat.of(tib[0]) if tib else _Stat()
    depts = q("""
        SELECT k, COUNT(*) AS tickets FROM (
            SELECT ticket, COUNT(DISTINCT dept) AS k FROM kpi_ev WHERE kind = 'started' GROUP BY ticket
        ) AS v GROUP BY k ORDER BY k""")
    visitors = sum(int(r.visitors) for r in per_day.values())
    tables["visits"] = Table("visits", "訪問課数", (
        Column("departments", "訪問課数", "課"), Column("visitors", "来庁者数", "人"), Column("share", "割合", "比率"),
    ), [(int(r.k), int(r.tickets), _share(int(r.tickets), visitors)) for r in depts])
    depts_mean = (sum(int(r.k) * int(r.tickets) for r in depts) / visitors) if visitors else None

    # ---- counters: open periods against occupancy
    open_s = {int(r.counter): max(0.0, float(r.open_s or 0))
              for r in q("SELECT counter, SUM(end_at - start_at) AS open_s FROM kpi_open GROUP BY counter")}
    occ = {int(r.counter): r for r in q("""
        SELECT counter, SUM(occupied) AS occupied, SUM(serving) AS serving,
               COUNT(*) AS ends, SUM(CASE WHEN kind = 'completed' THEN 1 ELSE 0 END) AS completed
        FROM kpi_occ GROUP BY counter""")}
    calls = dict(q("SELECT counter, COUNT(*) FROM kpi_ev WHERE kind = 'called' GROUP BY counter"))
    counter_rows = []
    for c in sorted(set(open_s) | set(occ)):
        o = open_s.get(c, 0.0) / 60.0
        r = occ.get(c)
        busy = float(r.occupied) / 60.0 if r else 0.0
        serving = float(r.serving) / 60.0 if r else 0.0
        counter_rows.append((c, _r(o), _r(busy), _r(serving), _share(busy, o), _r(max(0.0, o - busy)),
                             int(calls.get(c, 0)), int(r.completed) if r else 0))
    tables["counters"] = Table("counters", "窓口稼働", (
        Column("counter", "窓口"), Column("open_minutes", "開設時間", "分"), Column("occupied_minutes", "対応時間", "分"),
        Column("serving_minutes", "応対時間", "分"), Column("utilisation", "稼働率", "比率"),
        Column("idle_minutes", "空き時間", "分"), Column("calls", "呼出数", "件"), Column("completed", "完了数", "件"),
    ), counter_rows)
    open_total = sum(open_s.values()) / 60.0
    busy_total = sum(float(r.occupied) for r in occ.values()) / 60.0

    # ---- alerts (kiosk help requests and device faults) per day
    day_expr = d.day("at", off)
    alert_rows = q(f"""
        SELECT {day_expr} AS day, SUM(CASE WHEN kind = 'help_requested' THEN 1 ELSE 0 END) AS help,
               SUM(CASE WHEN kind = 'device_fault' THEN 1 ELSE 0 END) AS faults
        FROM events WHERE site = :site AND at >= :start AND at < :end AND kind IN ('help_requested', 'device_fault')
        GROUP BY {day_expr} ORDER BY 1""", site=period.site, start=start, end=end)
    tables["alerts"] = Table("alerts", "アラート", (
        Column("date", "日付"), Column("help_requested", "職員呼出", "件"), Column("device_fault", "機器故障", "件"),
    ), [(day_of(r.day).isoformat(), int(r.help), int(r.faults)) for r in alert_rows])

    # ---- event counts over the visits
    counts = dict(q("""SELECT kind, COUNT(*) FROM kpi_ev
                       WHERE kind IN ('procedure_added', 'transferred', 'no_show', 'cancelled', 'recalled')
                       GROUP BY kind"""))
    rework_tickets = q("SELECT COUNT(DISTINCT ticket) FROM kpi_ev WHERE kind = 'procedure_added'")[0][0]
    tickets = sum(int(r.tickets) for r in per_day.values())
    daily_visitors = [int(r.visitors) for r in per_day.values()]
    mean_v = sum(daily_visitors) / len(daily_visitors) if daily_visitors else None
    cv_v = None
    if daily_visitors and mean_v:
        # population CV: the days are all the open days of the period, not a sample of them
        var = sum((v - mean_v) ** 2 for v in daily_visitors) / len(daily_visitors)
        cv_v = math.sqrt(var) / mean_v
    tot = lambda k: sum(int(getattr(r, k)) for r in per_day.values())  # noqa: E731
    help_n = sum(int(r.help) for r in alert_rows)
    fault_n = sum(int(r.faults) for r in alert_rows)
    summary: list[tuple[str, str, Any, str]] = [
        ("tickets", "発券数", tickets, "件"),
        ("visitors", "来庁者数（窓口で応対を受けた人）", visitors, "人"),
        ("open_days", "開庁日数（発券のあった日）", n_days, "日"),
        ("visitors_per_day", "1日平均来庁者数", _r(mean_v), "人"),
        ("visitors_cv", "日ごとの来庁者数の変動係数（均一度）", _r(cv_v, 4), "比率"),
        ("waits", "待ち件数", w_all.n, "件"),
        ("wait_mean", "平均待ち時間", _r(w_all.mean), "分"),
        ("wait_p50", "待ち時間 中央値", _r(w_all.p50), "分"),
        ("wait_p90", "待ち時間 90%値", _r(w_all.p90), "分"),
        ("wait_max", "最大待ち時間", _r(w_all.max), "分"),
        ("within_target", f"目標（{target_minutes:g}分）以内に呼ばれた割合", _share(w_all.within, w_all.n), "比率"),
        ("service_mean", "一件あたり処理時間（工程平均）", _r(s_all.mean), "分"),
        ("stay_mean", "一人あたり庁内滞在時間 平均", _r(stay.mean), "分"),
        ("stay_p50", "庁内滞在時間 中央値", _r(stay.p50), "分"),
        ("stay_p90", "庁内滞在時間 90%値", _r(stay.p90), "分"),
        ("stay_max", "庁内滞在時間 最大", _r(stay.max), "分"),
        ("departments_per_visitor", "一人あたり訪問課数", _r(depts_mean), "課"),
        ("reservation_share", "来庁予約率", _share(tot("reserved"), tickets), "比率"),
        ("prefill_share", "書かない窓口利用率", _share(tot("prefilled"), tickets), "比率"),
        ("online_capable_share", "オンライン・コンビニで済んだはずの来庁の割合", _share(tot("online"), tickets), "比率"),
        ("assistance_share", "支援付き発券の割合", _share(tot("assistance"), tickets), "比率"),
        ("rework", "手戻り数（窓口で追加された手続き）", int(counts.get("procedure_added", 0)), "件"),
        ("rework_share", "手戻りのあった来庁者の割合", _share(int(rework_tickets or 0), visitors), "比率"),
        ("transfers", "他課への回付数", int(counts.get("transferred", 0)), "件"),
        ("recalls", "再呼出数", int(counts.get("recalled", 0)), "件"),
        ("no_shows", "不在（呼出に来なかった）", int(counts.get("no_show", 0)), "件"),
        ("no_show_share", "不在の割合", _share(int(counts.get("no_show", 0)), tickets), "比率"),
        ("cancelled", "取消", int(counts.get("cancelled", 0)), "件"),
        ("counter_open_minutes", "窓口開設時間 合計", _r(open_total), "分"),
        ("counter_occupied_minutes", "窓口対応時間 合計", _r(busy_total), "分"),
        ("counter_utilisation", "窓口稼働率", _share(busy_total, open_total), "比率"),
        ("counter_idle_minutes", "窓口空き時間 合計", _r(max(0.0, open_total - busy_total)), "分"),
        ("help_requests", "職員呼出（キオスク）", help_n, "件"),
        ("device_faults", "機器故障", fault_n, "件"),
    ]
    tables = {"summary": Table("summary", "概要", (
        Column("kpi", "キー"), Column("name", "指標"), Column("value", "値"), Column("unit", "単位"),
    ), summary), **tables}
    return tables


# ----------------------------------------------------------------------------- helpers for callers


def period_for(site: str, first: str | dt.date, last: str | dt.date, timezone: str = "Asia/Tokyo") -> Period:
    """A Period from ISO dates; raises ValueError when ``last`` is before ``first``."""
    f = first if isinstance(first, dt.date) else dt.date.fromisoformat(first)
    la = last if isinstance(last, dt.date) else dt.date.fromisoformat(last)
    if la < f:
        raise ValueError(f"the period ends ({la}) before it starts ({f})")
    return Period(site, f, la, timezone)


def today(timezone: str = "Asia/Tokyo", now: float | None = None) -> dt.date:
    """The site's local date now."""
    return dt.datetime.fromtimestamp(time.time() if now is None else now, ZoneInfo(timezone)).date()


@dataclass(frozen=True, slots=True)
class KpiContext:
    """What the CLI and the server both pass to :func:`compute` for a site (from config/site.toml)."""

    timezone: str = "Asia/Tokyo"
    target_minutes: float = 30.0
    department_names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def from_city(cls, city: Any, site: str) -> KpiContext:
        names = city.sites[site].department_names if site in city.sites else {}
        return cls(city.timezone, float(city.policy.wait_target_minutes), names)

    def names_ja(self) -> dict[str, str]:
        return {k: v.get("ja", k) for k, v in self.department_names.items()}


def report_for(engine: Engine, ctx: KpiContext, site: str, first: str | dt.date, last: str | dt.date,
               now: float | None = None) -> Report:
    """The one entry point of the CLI and the admin page."""
    return compute(engine, period_for(site, first, last, ctx.timezone), target_minutes=ctx.target_minutes,
                   department_names=ctx.names_ja(), now=now)


__all__ = ["Column", "KpiContext", "Period", "Report", "Table", "compute", "log_tables", "period_for", "report_for",
           "today"]
