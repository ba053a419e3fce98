"""A sample ticket for `run.py print-test` and the golden images: a death-related visit at 本庁.

Site and department names come from ``config/site.toml`` and documents from the message table,
so the sample prints in any of the seven languages with real names and real floor numbers.
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from printers.layout import PrintableTicket, RouteLine, default_messages, shared_counters
from queue_server.core import ruby
from queue_server.core.i18n import pick

SITE_TOML = Path(__file__).resolve().parent.parent / "config" / "site.toml"
# A fixed moment, so golden images never change with the clock (a Thursday morning, local time).
SAMPLE_TIME = datetime(2026, 11, 26, 9, 5)
# An example address (a deployment prints its public_base_url; check-config refuses loopback there).
SAMPLE_URL = "https://madoguchi.example.jp/status/?t=7f3a9c2e&site=honcho"


@lru_cache(maxsize=1)
def _site_config() -> dict[str, Any]:
    with SITE_TOML.open("rb") as f:
        return tomllib.load(f)


def _route_line(cfg: dict[str, Any], site: str, dept: str, lang: str) -> RouteLine:
    names = cfg["sites"][site].get("department_names", {}).get(dept) or cfg["departments"][dept]["name"]
    counters = [c for c in cfg["sites"][site]["counters"] if dept in c["departments"]]
    floors = {c.get("floor", 1) for c in counters}
    shared = shared_counters((c["number"], c["departments"]) for c in cfg["sites"][site]["counters"])
    return RouteLine(
        department_name=ruby.bracketed(pick(names, lang)),  # paper has no ruby: 市民課（しみんか）
        floor=floors.pop() if len(floors) == 1 else None,
        counters=tuple(sorted(c["number"] for c in counters)),
        department_name_ja=pick(names, "ja"),
        shared=tuple(sorted(c["number"] for c in counters if c["number"] in shared)),
    )


def sample_ticket(lang: str = "ja", label: str = "123", when: datetime = SAMPLE_TIME) -> PrintableTicket:
    """A realistic three-department ticket in ``lang``."""
    cfg = _site_config()
    m = default_messages()
    return PrintableTicket(
        site_name=pick(cfg["sites"]["honcho"]["name"], lang),
        label=label,
        issued_at=when,
        lang=lang,
        route=tuple(_route_line(cfg, "honcho", d, lang) for d in ("shimin", "hoken_nenkin", "kaigo")),
        documents=(
            m.get("sample.doc_id", lang),
            m.get("sample.doc_insurance", lang),
            m.get("sample.doc_bank", lang),
        ),
        wait_minutes=15,
        total_minutes=55,
        status_url=SAMPLE_URL,
        external=(m.get("sample.external_pension", lang),),
    )
