"""The writer's compiled statements (queue_server/bulk_sql.py) write what ``Connection.execute``
writes: the same batches through both paths, into two real databases (SQLite and PostgreSQL),
and every table read back raw from the driver, JSON nulls told apart from SQL NULLs."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from sqlalchemy import JSON, select

from queue_server.bulk_sql import BulkStatement
from queue_server.config import load_city
from queue_server.core.model import Counter, CounterState, RouteStep
from queue_server.core.transitions import call, complete, start
from queue_server.storage import Base, Batch, CounterRow, EventRow, JSONText, Store, TicketRow
from tests.support.postgres import create_database

from .core_helpers import DEATH_ROUTE, ticket

_databases = itertools.count()


class _ExecuteOnly(dict):
    """A compiled-statement cache that never holds one: every write takes ``Connection.execute``."""

    def get(self, key, default=None):
        return None


def _store(url: str, compiled: bool) -> Store:
    s = Store(url)
    s.migrate()
    s.sync_config(load_city().sites.values())
    if not compiled:
        s._bulk = _ExecuteOnly()
    return s


@pytest.fixture(params=["sqlite", "postgres"])
def two_stores(request, tmp_path):
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / 'compiled.db'}", f"sqlite:///{tmp_path / 'execute.db'}"]
    else:
        base = request.getfixturevalue("postgres_url")
        urls = [create_database(base, f"bulk_{name}_{next(_databases)}") for name in ("compiled", "execute")]
    return _store(urls[0], True), _store(urls[1], False)


def _day_of_batches() -> list[Batch]:
    """Every kind of row the writer sends, with the awkward values: JSON null and SQL NULL, a
    prefill erased at closing, non-ASCII text, a step's ``index`` (a reserved word), booleans."""
    a = ticket(1, DEATH_ROUTE, now=100.0)
    b = replace(ticket(2, (RouteStep("shimin", (), (), 5),), now=101.0), assistance=True)
    a1 = call(a, 0, 101, 110)
    b1 = complete(start(call(b, 0, 102, 111), 0, 102, 112), 0, 102, 113)
    ev = {"site": "honcho", "at": 110.0, "kind": "called", "ticket": a.id, "step": 0, "counter": 101,
          "actor": "counter:101", "payload": {"number": "1", "名前": "なし", "nested": [None, 1.5]}}
    return [
        Batch(new_tickets=[(a, {"name": "黒桐　幹也", "kana": None}), (b, {"name": "x"})],
              numbers={("honcho", a.day, ""): 2},
              requests=[{"site": "honcho", "key": "k1", "reply": {"ticket": {"number": "1"}, "ok": True}, "at": 100.0}]),
        Batch(tickets={a.id: (a, a1), b.id: (b, b1)},
              counters=[replace(c, state=CounterState.OPEN, staff="山田") for c in _counters()[:3]],
              events=[dict(ev, seq=1), dict(ev, seq=2, kind="completed", ticket=b.id, payload={})],
              requests=[{"site": "honcho", "key": "k2", "reply": {"none": None}, "at": 111.0},
                        {"site": "honcho", "key": "k3", "reply": JSONText('{"名":"前","n":[1,null]}'), "at": 111.5}],
              reservations=[{"id": "r1", "site": "honcho", "day": a.day, "slot_start": 1.0, "slot_end": 2.0,
                             "purposes": ["death"], "code": "ABC", "ticket": None, "answers": None}]),
        Batch(tickets={a.id: (a1, complete(start(a1, 0, 101, 120), 0, 101, 130))},
              numbers={("honcho", a.day, ""): 3},
              reservations=[{"id": "r1", "site": "honcho", "day": a.day, "slot_start": 1.0, "slot_end": 2.0,
                             "purposes": ["death"], "code": "ABC", "ticket": a.id, "answers": {"q": "はい"},
                             "lang": "vi", "created_at": 5.0},
                            {"id": "r2", "site": "honcho", "day": a.day, "slot_start": 3.0, "slot_end": 4.0,
                             "purposes": [], "code": "DEF", "ticket": None, "answers": None}]),
    ]


def _counters() -> list[Counter]:
    site = load_city().sites["honcho"]
    return [Counter("honcho", c.number, frozenset(c.departments)) for c in site.counters]


def _is_json(t) -> bool:
    return isinstance(t, JSON) or isinstance(getattr(t, "impl", None), JSON)  # (StoredJSON decorates it)


def _dump(store: Store) -> dict[str, list[tuple]]:
    """Every table's rows as the driver returns them (no result processing), and for each JSON
    column whether it is SQL NULL: a JSON ``null`` and a NULL read back alike otherwise."""
    out = {}
    with store.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            # (the events' own id is a counter each database keeps: the rows are told by site and seq)
            cols = [c for c in table.columns if not (table is EventRow.__table__ and c.name == "id")]
            exprs = [f'"{c.name}"' for c in cols]
            exprs += [f'("{c.name}" IS NULL)' for c in cols if _is_json(c.type)]
            order = ", ".join(str(i + 1) for i in range(len(cols)) if not _is_json(cols[i].type))
            rows = conn.exec_driver_sql(f'SELECT {", ".join(exprs)} FROM "{table.name}" ORDER BY {order}').all()
            out[table.name] = [tuple(r) for r in rows]
    return out


def test_compiled_writes_equal_executed_writes(two_stores):
    compiled, executed = two_stores
    for batch in _day_of_batches():
        compiled.write(batch)
        executed.write(batch)
    assert compiled._bulk, "the compiled path was not taken"
    assert all(v is not None for v in compiled._bulk.values()), compiled._bulk
    got, want = _dump(compiled), _dump(executed)
    assert got == want
    assert len(got["tickets"]) == 2 and len(got["events"]) == 2 and len(got["reservations"]) == 2
    # and what the server loads back is what it wrote
    (t_a, t_b) = sorted(compiled.load_tickets("honcho", ticket(1).day), key=lambda t: t.number)
    assert t_a.closed is None and t_b.closed is not None and t_b.assistance
    assert compiled.prefill(t_a.id) == {"name": "黒桐　幹也", "kana": None}
    assert compiled.prefill(t_b.id) is None  # erased at closing
    assert compiled.events_since("honcho", 0)[0]["payload"]["名前"] == "なし"
    # a reply stored as the text the writer sent reads back as the value it encodes
    assert compiled.request_reply("honcho", "k3") == executed.request_reply("honcho", "k3") == {"名": "前", "n": [1, None]}
    assert compiled.recent_requests("honcho", 0)["k2"] == {"none": None}


def test_a_failed_compiled_write_raises_as_execute_would(two_stores):
    compiled, _ = two_stores
    compiled.write(Batch(new_tickets=[(ticket(1), None)]))
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):  # SQLAlchemy's wrapping of the driver's error, as before
        compiled.write(Batch(new_tickets=[(replace(ticket(1), id="other", public_token="o"), None)]))
    assert len(_dump(compiled)["tickets"]) == 1  # and the failed transaction left nothing


def test_a_statement_whose_rows_lack_a_parameter_is_refused():
    """A column the rows leave to its default (EventRow.actor) would be a parameter the rows do
    not hold: the compiled path refuses it and the store falls back to ``Connection.execute``."""
    store = Store("sqlite://")
    keys = ["site", "seq", "at", "kind", "payload"]
    with pytest.raises(ValueError, match="actor"):
        BulkStatement(EventRow.__table__.insert(), store.engine.dialect, keys)


def test_rows_of_another_shape_fall_back_to_execute(tmp_path):
    store = _store(f"sqlite:///{tmp_path / 'x.db'}", True)
    store.write(Batch(events=[{"site": "honcho", "seq": 1, "at": 1.0, "kind": "note", "payload": {"a": 1}}]))
    assert [v for v in store._bulk.values()] == [None]  # refused, remembered
    with store.engine.connect() as conn:
        row = conn.execute(select(EventRow.actor, EventRow.payload)).one()
    assert tuple(row) == ("", {"a": 1})  # the default filled in by execute


def test_the_counters_update_touches_only_its_counter(tmp_path):
    store = _store(f"sqlite:///{tmp_path / 'x.db'}", True)
    first, second = _counters()[:2]
    store.write(Batch(counters=[replace(first, state=CounterState.OPEN, staff="佐藤")]))
    with store.engine.connect() as conn:
        rows = {r.number: (r.state, r.staff)
                for r in conn.execute(select(CounterRow).where(CounterRow.site == "honcho")).all()}
        ticket_rows = conn.execute(select(TicketRow)).all()
    assert rows[first.number] == ("open", "佐藤")
    assert rows[second.number] == ("closed", "")
    assert ticket_rows == []
