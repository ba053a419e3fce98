"""The manager's KPIs: what a section head plans staffing with (docs/kpi.md, "Manager's KPIs").

Read from the same temporary tables as queue_server.kpi (``log_tables``), added to the report as
ordinary :class:`Table` s, so the admin page, the CSV files and the Excel workbook show them
without any code of their own:

- ``heatmap`` — hour × weekday: tickets a day, waits, mean wait, share within the target;
- ``abandonment`` — tickets that ended without service, by reason (absent when called, cancelled
  by staff or on the phone, left at the end of the day), with the wait before leaving;
- ``waits_by_group`` — waits by priority (reserved or not), language and assistance:
  誰一人取り残さない — do foreign residents and assisted citizens wait longer?
- ``staff_service`` — service time per member of staff (the name logged when a counter opens):
  mean, spread and 90th percentile;
- ``queue_over_day`` — citizens waiting per 15 minutes of the day (mean over days, the busiest
  day's) and the longest wait that started then;
- ``service_level_spread`` — the share within the target per day, summarised per month and per
  weekday (mean, lowest, highest, standard deviation), and the share of plans with items
  "to confirm": 繁忙期や閑散期に関わらず同じ水準のサービス, measured.

Times are minutes. A group with no data has None, never 0.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .kpi import Column, Period, Table, _Dialect, day_of

WEEKDAYS = ("月", "火", "水", "木", "金", "土", "日")
BIN_MINUTES = 15
LANGS = {"ja": "日本語", "en": "English", "zh": "中文", "ko": "한국어", "vi": "Tiếng Việt", "pt": "Português", "ja-easy": "やさしい日本語"}


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(float(x), nd)


def _pct(xs: Sequence[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    pos = (len(s) - 1) * q
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _stats(xs: Sequence[float]) -> tuple[int, float | None, float | None, float | None]:
    """n, mean, standard deviation (n − 1), p90."""
    n = len(xs)
    if not n:
        return 0, None, None, None
    m = sum(xs) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else None
    return n, _r(m), _r(sd), _r(_pct(xs, 0.9))


def manager_tables(conn: Connection, d: _Dialect, period: Period, target_minutes: float) -> dict[str, Table]:
    """Every manager's KPI table of ``period`` (the temporary tables must exist)."""
    q = lambda sql, **kw: conn.execute(text(sql), kw).all()  # noqa: E731
    off = period.offset()
    target_s = float(target_minutes) * 60.0
    out: dict[str, Table] = {}

    # ---- hour × weekday
    tk = q("SELECT day, hour, COUNT(*) AS n FROM kpi_tk GROUP BY day, hour")
    wt = q("SELECT day, hour, wait FROM kpi_wait")
    days_of_wd: dict[int, set[int]] = defaultdict(set)
    cell_t: dict[tuple[int, int], int] = defaultdict(int)
    cell_w: dict[tuple[int, int], list[float]] = defaultdict(list)
    for r in tk:
        wd = day_of(r.day).weekday()
        days_of_wd[wd].add(int(r.day))
        cell_t[(wd, int(r.hour))] += int(r.n)
    for r in wt:
        wd = day_of(r.day).weekday()
        days_of_wd[wd].add(int(r.day))
        cell_w[(wd, int(r.hour))].append(float(r.wait))
    rows = []
    for wd, h in sorted(set(cell_t) | set(cell_w)):
        ws = cell_w.get((wd, h), [])
        nd = len(days_of_wd[wd])
        rows.append((WEEKDAYS[wd], f"{h:02d}:00", nd, _r(cell_t.get((wd, h), 0) / nd) if nd else None, len(ws),
                     _r(sum(ws) / len(ws) / 60.0) if ws else None,
                     _r(sum(1 for w in ws if w <= target_s) / len(ws), 4) if ws else None))
    out["heatmap"] = Table("heatmap", "曜日×時間帯", (
        Column("weekday", "曜日"), Column("hour", "時刻"), Column("days", "日数", "日"),
        Column("tickets_per_day", "1日平均発券数", "件"), Column("waits", "待ち件数", "件"),
        Column("wait_mean", "平均待ち", "分"), Column("within_target", "目標内割合", "比率"),
    ), rows)

    # ---- abandonment by reason, with the wait before leaving
    tickets = int(q("SELECT COUNT(*) FROM kpi_tk")[0][0])
    issued_at = {r.ticket: float(r.at) for r in q("SELECT ticket, at FROM kpi_tk")}
    waits_of: dict[str, list[tuple[float, float]]] = defaultdict(list)  # ticket -> (called, wait)
    for r in q("SELECT ticket, called, wait FROM kpi_wait"):
        waits_of[r.ticket].append((float(r.called), float(r.wait)))
    ends = q(f"""SELECT e.ticket, e.at, e.kind, {d.jtext('reason', 'e.payload')} AS reason
                 FROM events e JOIN kpi_tk t ON t.ticket = e.ticket
                 WHERE e.site = :site AND e.kind IN ('no_show', 'cancelled')""", site=period.site)
    by_reason: dict[str, list[float]] = defaultdict(list)
    for r in ends:
        if r.kind == "no_show":
            before = [w for c, w in waits_of.get(r.ticket, []) if c <= float(r.at)]
            by_reason["no_show"].append((before[-1] if before else 0.0) / 60.0)
        else:
            key = "end_of_day" if (r.reason or "") == "end_of_day" else "cancelled"
            by_reason[key].append((float(r.at) - issued_at.get(r.ticket, float(r.at))) / 60.0)
    labels = {"no_show": "不在（呼出に来なかった）", "cancelled": "取消（職員・本人）", "end_of_day": "閉庁時に未対応"}
    rows = []
    for key in ("no_show", "cancelled", "end_of_day") if tickets else ():
        xs = by_reason.get(key, [])
        n, m, sd, p90 = _stats(xs)
        rows.append((key, labels[key], n, _r(n / tickets, 4) if tickets else None, m, p90))
    out["abandonment"] = Table("abandonment", "対応できなかった発券（理由別）", (
        Column("reason", "キー"), Column("name", "理由"), Column("tickets", "件数", "件"),
        Column("share", "発券に占める割合", "比率"), Column("wait_mean", "離脱までの待ち 平均", "分"),
        Column("wait_p90", "離脱までの待ち 90%値", "分"),
    ), rows)

    # ---- waits by priority, language, assistance
    lang_sql = d.jtext("lang", "e.payload")
    wrows = q(f"""SELECT w.wait, t.reserved, t.assistance, {lang_sql} AS lang
                  FROM kpi_wait w JOIN kpi_tk t ON t.ticket = w.ticket
                  JOIN events e ON e.ticket = t.ticket AND e.seq = t.seq AND e.site = :site AND e.kind = 'issued'""",
             site=period.site)
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in wrows:
        w = float(r.wait)
        groups[("priority", "予約" if int(r.reserved or 0) else "当日")].append(w)
        groups[("assistance", "支援あり" if int(r.assistance or 0) else "支援なし")].append(w)
        groups[("language", LANGS.get(r.lang or "ja", r.lang or "ja"))].append(w)
    rows = []
    for (kind, value), ws in sorted(groups.items()):
        n, m, _sd, p90 = _stats([w / 60.0 for w in ws])
        rows.append((kind, value, n, m, p90, _r(sum(1 for w in ws if w <= target_s) / n, 4) if n else None))
    out["waits_by_group"] = Table("waits_by_group", "属性別の待ち時間", (
        Column("group", "区分"), Column("value", "値"), Column("n", "待ち件数", "件"), Column("wait_mean", "平均待ち", "分"),
        Column("wait_p90", "90%値待ち", "分"), Column("within_target", "目標内割合", "比率"),
    ), rows)

    # ---- service per member of staff (the name logged when the counter opened)
    opens: dict[int, list[tuple[float, str]]] = defaultdict(list)
    for r in q(f"""SELECT counter, at, {d.jtext('staff')} AS staff FROM events
                   WHERE site = :site AND kind = 'counter_open' AND counter IS NOT NULL AND at < :end
                   ORDER BY at""", site=period.site, end=period.bounds()[1]):
        opens[int(r.counter)].append((float(r.at), r.staff or ""))
    per_staff: dict[str, list[float]] = defaultdict(list)
    for r in q("SELECT counter, at, at - started_at AS service FROM kpi_iv WHERE kind = 'completed' AND started_at IS NOT NULL"):
        o = opens.get(int(r.counter)) if r.counter is not None else None
        if not o:
            continue
        i = bisect.bisect_right([a for a, _ in o], float(r.at)) - 1
        name = o[i][1] if i >= 0 and o[i][1] else "(名前なし)"
        per_staff[name].append(float(r.service) / 60.0)
    rows = []
    for name, xs in sorted(per_staff.items()):
        n, m, sd, p90 = _stats(xs)
        rows.append((name, n, m, sd, _r(sd / m, 3) if sd is not None and m else None, p90))
    out["staff_service"] = Table("staff_service", "職員別処理時間", (
        Column("staff", "職員"), Column("steps", "対応件数", "件"), Column("mean", "平均", "分"), Column("sd", "標準偏差", "分"),
        Column("cv", "変動係数", "比率"), Column("p90", "90%値", "分"),
    ), rows)

    # ---- queue length over the day (local time, 15-minute bins)
    b = BIN_MINUTES * 60.0
    area: dict[tuple[int, int], float] = defaultdict(float)  # (day, bin) -> waiting-seconds
    longest: dict[int, float] = defaultdict(float)
    days = set()
    for r in q("SELECT day, ready, called FROM kpi_wait"):
        day = int(r.day)
        days.add(day)
        t0 = float(r.ready) + off - day * 86400.0
        t1 = float(r.called) + off - day * 86400.0
        longest[int(t0 // b)] = max(longest[int(t0 // b)], (t1 - t0) / 60.0)
        t = t0
        while t < t1:
            k = int(t // b)
            edge = min(t1, (k + 1) * b)
            area[(day, k)] += edge - t
            t = edge
    rows = []
    for k in sorted({k for _, k in area} | set(longest)):
        per_day = [area.get((day, k), 0.0) / b for day in days]
        rows.append((f"{int(k * BIN_MINUTES) // 60:02d}:{int(k * BIN_MINUTES) % 60:02d}",
                     _r(sum(per_day) / len(per_day)) if per_day else None, _r(max(per_day)) if per_day else None,
                     _r(longest.get(k))))
    out["queue_over_day"] = Table("queue_over_day", "時間帯別の待ち人数", (
        Column("time", "時刻（15分）"), Column("waiting_mean", "平均待ち人数", "人"),
        Column("waiting_busiest_day", "最も混んだ日の待ち人数", "人"), Column("longest_wait", "この時間に並んだ人の最長待ち", "分"),
    ), rows)

    # ---- spread of the daily service level, by month and weekday; plans "to confirm"
    sl_day = q(f"""SELECT day, COUNT(*) AS n, SUM(CASE WHEN wait <= {target_s} THEN 1 ELSE 0 END) AS ok
                   FROM kpi_wait GROUP BY day""")
    share_of = {int(r.day): int(r.ok) / int(r.n) for r in sl_day if int(r.n)}
    buckets: dict[tuple[str, str], list[float]] = defaultdict(list)
    for day, s in share_of.items():
        date = day_of(day)
        buckets[("all", "全期間")].append(s)
        buckets[("month", f"{date.year}-{date.month:02d}")].append(s)
        buckets[("weekday", WEEKDAYS[date.weekday()])].append(s)
    rows = []
    order = {"all": 0, "month": 1, "weekday": 2}
    for (kind, value), xs in sorted(buckets.items(), key=lambda kv: (order[kv[0][0]], kv[0][1] if kv[0][0] != "weekday" else WEEKDAYS.index(kv[0][1]))):
        n, m = len(xs), sum(xs) / len(xs)
        sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else None
        rows.append((kind, value, n, _r(m, 4), _r(min(xs), 4), _r(_pct(xs, 0.1), 4), _r(max(xs), 4), _r(sd, 4)))
    confirm = q(f"""SELECT COUNT(*) AS n, SUM(CASE WHEN COALESCE(CAST({d.jtext('to_confirm', 'e.payload')} AS INTEGER), 0) > 0
                                  THEN 1 ELSE 0 END) AS c
                    FROM kpi_tk t JOIN events e ON e.ticket = t.ticket AND e.seq = t.seq AND e.site = :site
                    AND e.kind = 'issued'""", site=period.site)[0]
    if confirm.n:
        rows.append(("to_confirm", "「要確認」のある案内の割合", int(confirm.n), _r(int(confirm.c or 0) / int(confirm.n), 4),
                     None, None, None, None))
    out["service_level_spread"] = Table("service_level_spread", "サービス水準のばらつき（日別の目標内割合）", (
        Column("group", "区分"), Column("value", "値"), Column("days", "日数（要確認は件数）", "日"),
        Column("mean", "平均", "比率"), Column("min", "最低", "比率"), Column("p10", "10%値", "比率"),
        Column("max", "最高", "比率"), Column("sd", "標準偏差", "比率"),
    ), rows)
    return out
