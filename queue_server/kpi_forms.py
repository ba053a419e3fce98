"""KPIs of 書かない窓口 (the seed's KPI tree): how often forms come out of the system, how many per
visit, and how many fields staff typed versus how many were filled from the card, the answers or
the ticket. Counts only — the values themselves are never seen here.

Two sources, the same figures:

- the event log (what the KPI report, ``run.py kpi`` and the admin page read, any date range,
  across restarts): the ``issued`` event carries ``forms`` (how many forms the route's procedures
  need: the denominator) and each print from a console logs a ``forms_printed`` event whose payload
  is :func:`event_payload` (per printed form, fields by origin). :func:`table` reads them;
- forms_api.FormsDesk's memory for ``/metrics`` (this process's visits; :func:`metrics_lines`).

docs/kpi.md defines each figure; docs/forms.md says what is kept and what never is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

ORIGINS = ("card", "answer", "ticket", "ask")
COUNTS = (*ORIGINS, "missing")  # ask = typed by staff; missing = left blank (written by hand)


def count_fields(filled_form: Mapping[str, Any]) -> dict[str, int]:
    """Fields of one filled form by where the value came from; ``ask`` = typed by staff, ``missing`` = left blank."""
    out = {k: 0 for k in (*ORIGINS, "missing")}
    for f in filled_form["fields"]:
        out["missing" if f["missing"] else f["origin"]] += 1
    return out


def summarize(visits: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """書かない窓口利用率 (visits with a form printed / visits whose procedures need a form), forms
    per visit (among those), fields filled from data vs typed vs left blank."""
    eligible = printed = forms = 0
    fields = {k: 0 for k in (*ORIGINS, "missing")}
    for v in visits:
        if v.get("eligible"):
            eligible += 1
        if v.get("printed"):
            printed += 1
            forms += v["printed"]
        for k, n in (v.get("fields") or {}).items():
            fields[k] = fields.get(k, 0) + n
    filled = fields["card"] + fields["answer"] + fields["ticket"]
    return {
        "eligible_visits": eligible,
        "visits_with_forms_printed": printed,
        "kakanai_rate": round(printed / eligible, 3) if eligible else None,
        "forms_per_visit": round(forms / printed, 2) if printed else None,
        "fields_filled": filled,
        "fields_typed": fields["ask"],
        "fields_blank": fields["missing"],
        "filled_share": round(filled / (filled + fields["ask"]), 3) if filled + fields["ask"] else None,
    }


def metrics_lines(desk: Any) -> list[str]:
    """Prometheus lines for /metrics: closed and open visits of this process."""
    s = summarize([*desk.closed_stats, *desk.live_stats()])
    lines = ["# HELP madoguchi_forms_visits Visits by forms outcome (書かない窓口).", "# TYPE madoguchi_forms_visits gauge",
             f'madoguchi_forms_visits{{kind="eligible"}} {s["eligible_visits"]}',
             f'madoguchi_forms_visits{{kind="printed"}} {s["visits_with_forms_printed"]}',
             "# HELP madoguchi_forms_fields Fields on printed forms, by where the value came from.",
             "# TYPE madoguchi_forms_fields gauge"]
    lines += [f'madoguchi_forms_fields{{origin="{k}"}} {s[v]}'
              for k, v in (("filled", "fields_filled"), ("typed", "fields_typed"), ("blank", "fields_blank"))]
    return lines


# ----------------------------------------------------------------------------- the event log


def event_payload(department: str, printed: Mapping[str, Mapping[str, int]], needed: int) -> dict[str, Any]:
    """The payload of a ``forms_printed`` event: the department, how many forms the visit needs, and
    per printed form id its fields by origin (:func:`count_fields`). Counts and form ids only: no
    value, no label typed by anyone."""
    return {"department": department, "needed": int(needed),
            "forms": {fid: {k: int(c.get(k, 0)) for k in COUNTS} for fid, c in printed.items()}}


def visits_from_events(needed: Mapping[str, int], prints: Iterable[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Per-visit counts for :func:`summarize` from the event log, for the visits that needed a form
    (the others count for nothing). Pure.

    ``needed``: ticket id -> forms its route needs (the ``issued`` event's ``forms``); ``prints``:
    (ticket id, ``forms_printed`` payload) in log order. A form printed again (a value corrected)
    counts once, with its latest counts; a visit that printed a form needed one even if its
    ``issued`` event predates the ``forms`` fact.
    """
    latest: dict[str, dict[str, Mapping[str, int]]] = {}
    for tid, payload in prints:
        if tid in needed:
            latest.setdefault(tid, {}).update(payload.get("forms") or {})
    none = dict.fromkeys(COUNTS, 0)  # shared by the visits that printed nothing (a month: thousands)
    out = []
    for tid, n in needed.items():
        forms = latest.get(tid)
        if forms:
            fields = {k: sum(int(c.get(k, 0)) for c in forms.values()) for k in COUNTS}
            out.append({"eligible": True, "printed": len(forms), "fields": fields})
        elif n > 0:
            out.append({"eligible": True, "printed": 0, "fields": none})
    return out


def rows(visits: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, Any, str]]:
    """The 書かない窓口 KPI table as (key, 指標, value, unit) rows (docs/kpi.md). Pure."""
    visits = list(visits)
    s = summarize(visits)
    fields = dict.fromkeys(COUNTS, 0)
    forms = 0
    for v in visits:
        if v.get("printed"):
            forms += v["printed"]
            for k in COUNTS:
                fields[k] += (v.get("fields") or {}).get(k, 0)
    return [
        ("forms_visits_needing", "申請書が必要な来庁（手続きに様式あり）", s["eligible_visits"], "件"),
        ("forms_visits_printed", "申請書をシステムから印刷した来庁", s["visits_with_forms_printed"], "件"),
        ("kakanai_rate", "書かない窓口利用率（印刷した来庁 ÷ 必要な来庁）", s["kakanai_rate"], "比率"),
        ("forms_printed", "システムから印刷した申請書", forms, "枚"),
        ("forms_per_visit", "1来庁あたりの申請書（印刷した来庁）", s["forms_per_visit"], "枚"),
        ("fields_card", "記入済み項目：マイナンバーカードから", fields["card"], "項目"),
        ("fields_answer", "記入済み項目：キオスク・事前の回答から", fields["answer"], "項目"),
        ("fields_ticket", "記入済み項目：受付（日付・庁舎）から", fields["ticket"], "項目"),
        ("fields_typed", "職員が入力した項目", fields["ask"], "項目"),
        ("fields_blank", "空欄のまま印刷した項目（手書き）", fields["missing"], "項目"),
        ("filled_share", "自動記入の割合（自動 ÷ 自動＋職員入力）", s["filled_share"], "比率"),
    ]


def table(conn: Connection) -> Any:
    """The 書かない窓口 KPI table of the period, from kpi._build's temporary tables: ``kpi_tk.forms``
    (the ``issued`` event's ``forms``) and ``kpi_ev.forms`` (a ``forms_printed`` event's per-form
    counts, as JSON text), copied in the one pass over the period's events every KPI shares."""
    from .kpi import Column, Table

    needed = {r.ticket: int(r.forms or 0) for r in conn.execute(text("SELECT ticket, forms FROM kpi_tk"))}
    prints = [(tid, {"forms": json.loads(forms) if isinstance(forms, str) else (forms or {})})
              for tid, forms in conn.execute(text(
                  "SELECT ticket, forms FROM kpi_ev WHERE kind = 'forms_printed' ORDER BY seq"))]
    visits = visits_from_events(needed, prints)
    # an empty period has an empty table, like every other group
    found = rows(visits) if visits else []
    return Table("forms", "書かない窓口", (
        Column("kpi", "キー"), Column("name", "指標"), Column("value", "値"), Column("unit", "単位"),
    ), found)
