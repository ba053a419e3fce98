"""The 書かない窓口 KPI table from a hand-written event log (SQLite and PostgreSQL), and its pure parts.

Log (本庁, 2026-04-01): t1 needs 3 forms, prints two of them (f1 twice: the later counts win);
t2 needs 2 forms and prints none; t3 needs none; t4's `issued` predates the `forms` fact (no key)
but it printed a form, so it needed one; t5 is issued the next day (out of the period) and prints.
  visits needing forms: t1, t2, t4 = 3; visits printed: t1, t4 = 2; rate 2/3 = 0.667;
  forms printed: t1 {f1, f2} + t4 {f9} = 3; per visit 1.5;
  fields: f1 (later) card 2 answer 1 ticket 1 ask 2 missing 0; f2 card 1 ask 1 missing 2;
          f9 card 0 ticket 1 ask 3  ->  card 3, answer 1, ticket 2, typed 6, blank 2;
  filled share (3+1+2) / (6+6) = 0.5.
"""

from __future__ import annotations

import datetime as dt

import pytest

from queue_server.kpi import Period, compute
from queue_server.kpi_forms import event_payload, rows, visits_from_events
from queue_server.storage import Store
from tests.queue_server.kpi_log import D1, D2, LogBuilder, T


def _c(card=0, answer=0, ticket=0, ask=0, missing=0) -> dict[str, int]:
    return {"card": card, "answer": answer, "ticket": ticket, "ask": ask, "missing": missing}


def hand_log() -> LogBuilder:
    b = LogBuilder()

    def issued(day, hhmm, tid, forms):
        b.issued(day, hhmm, tid, [("shimin", ["head_of_household_change"])], purposes=("death",))
        if forms is not None:
            b.rows[-1]["payload"]["forms"] = forms

    issued(D1, "09:00", "t1", 3)
    issued(D1, "09:05", "t2", 2)
    issued(D1, "09:10", "t3", 0)
    issued(D1, "09:15", "t4", None)
    issued(D2, "09:00", "t5", 1)
    b.ev(D1, "09:30", "forms_printed", "t1", 0, 1, **event_payload("shimin", {"f1": _c(1, 1, 1, 0, 2)}, 3))
    b.ev(D1, "09:40", "forms_printed", "t1", 0, 1, **event_payload("shimin", {"f1": _c(2, 1, 1, 2, 0),
                                                                                "f2": _c(card=1, ask=1, missing=2)}, 3))
    b.ev(D1, "10:00", "forms_printed", "t4", 0, 1, **event_payload("shimin", {"f9": _c(ticket=1, ask=3)}, 1))
    b.ev(D2, "09:30", "forms_printed", "t5", 0, 1, **event_payload("shimin", {"f1": _c(card=4)}, 1))
    return b


EXPECTED = {
    "forms_visits_needing": 3, "forms_visits_printed": 2, "kakanai_rate": 0.667, "forms_printed": 3,
    "forms_per_visit": 1.5, "fields_card": 3, "fields_answer": 1, "fields_ticket": 2, "fields_typed": 6,
    "fields_blank": 2, "filled_share": 0.5,
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'kpi.db'}" if request.param == "sqlite" else request.getfixturevalue("fresh_postgres")
    store = Store(url)
    store.migrate()
    hand_log().write(store)
    yield store.engine
    store.engine.dispose()


def test_the_forms_table_of_a_period_from_the_event_log(engine):
    far = T(dt.date(2027, 1, 1), "00:00")
    rep = compute(engine, Period("honcho", D1, D1), now=far)
    assert {r[0]: r[2] for r in rep.tables["forms"].rows} == EXPECTED
    both = {r[0]: r[2] for r in compute(engine, Period("honcho", D1, D2), now=far).tables["forms"].rows}
    assert both["forms_visits_needing"] == 4 and both["forms_printed"] == 4 and both["fields_card"] == 7
    # a day with no visit has an empty table (not a page of zeros)
    assert compute(engine, Period("honcho", dt.date(2026, 3, 1), dt.date(2026, 3, 1)), now=far).tables["forms"].rows == []


def test_the_event_payload_holds_counts_only():
    p = event_payload("shimin", {"juumin_idou": {"card": 2, "ask": 1, "value": "黒桐"}}, 4)  # type: ignore[dict-item]
    assert p == {"department": "shimin", "needed": 4, "forms": {"juumin_idou": _c(card=2, ask=1)}}


def test_no_printed_form_gives_no_rate_of_fields():
    visits = visits_from_events({"a": 2}, [])
    figures = {r[0]: r[2] for r in rows(visits)}
    assert figures["kakanai_rate"] == 0.0 and figures["forms_per_visit"] is None and figures["filled_share"] is None
    assert visits_from_events({"a": 0}, []) == []  # needed no form: not a visit of this KPI
    assert visits_from_events({}, [("gone", {"forms": {"f": _c(card=1)}})]) == []  # a print of a ticket outside
