"""KPIs of 書かない窓口 (the seed's KPI tree): how often forms come out of the system, how many per
visit, and how many fields staff typed versus how many were filled from the card, the answers or
the ticket. Pure over counts only — the values themselves are never seen here.

Counts come from forms_api.FormsDesk (memory, per server process): a visit's counts are kept when
its values are erased. They are exposed on ``/metrics`` (Prometheus scrapes keep the history); a
restart starts the counts again (see docs/forms.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ORIGINS = ("card", "answer", "ticket", "ask")


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
