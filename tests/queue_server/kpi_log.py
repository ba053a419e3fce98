"""A small event log written by hand, and the KPI values computed from it by hand.

Two local days at 本庁 (2026-04-01 Wed, 2026-04-02 Thu, Asia/Tokyo) plus events that must be left
out: a ticket issued the evening before, one the day after, and another site's ticket. Every
expected figure in ``EXPECTED`` is worked out in the comments of test_kpi.py.
"""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from queue_server.storage import EventRow, Store

TZ = ZoneInfo("Asia/Tokyo")
D1, D2 = dt.date(2026, 4, 1), dt.date(2026, 4, 2)


def T(day: dt.date, hhmm: str) -> float:
    h, m = (int(x) for x in hhmm.split(":"))
    return dt.datetime.combine(day, dt.time(h, m), TZ).timestamp()


class LogBuilder:
    def __init__(self) -> None:
        self.rows: list[dict] = []
        self._n = itertools.count()

    def ev(self, day: dt.date, hhmm: str, kind_: str, ticket: str | None = None, step: int | None = None,
           counter: int | None = None, site: str = "honcho", **payload) -> None:
        self.rows.append({"site": site, "at": T(day, hhmm), "kind": kind_, "ticket": ticket, "step": step,
                          "counter": counter, "actor": "", "payload": payload, "_order": next(self._n)})

    def issued(self, day, hhmm, ticket, steps, *, reserved=False, prefilled=False, online=False,
               assistance=False, purposes=("certificate",), site="honcho") -> None:
        self.ev(day, hhmm, "issued", ticket, site=site, number=ticket, purposes=list(purposes), lang="ja",
                assistance=assistance, reserved=reserved,
                steps=[{"department": d, "procedures": list(p), "minutes": 5.0} for d, p in steps],
                prefilled=prefilled, online_capable=online, to_confirm=0, device="kiosk-1")

    def called(self, day, hhmm, ticket, step, counter, dept) -> None:
        self.ev(day, hhmm, "called", ticket, step, counter, number=ticket, department=dept)

    def started(self, day, hhmm, ticket, step, counter, dept) -> None:
        self.ev(day, hhmm, "started", ticket, step, counter, department=dept)

    def completed(self, day, hhmm, ticket, step, counter, dept, procs, closed, nxt=()) -> None:
        self.ev(day, hhmm, "completed", ticket, step, counter, department=dept, procedures=list(procs),
                next=list(nxt), closed=closed)

    def write(self, store: Store) -> None:
        """Insert in time order with per-site sequence numbers, as the server's writer would."""
        rows = sorted(self.rows, key=lambda r: (r["at"], r["_order"]))
        seqs: dict[str, int] = {}
        out = []
        for r in rows:
            seqs[r["site"]] = seqs.get(r["site"], 0) + 1
            out.append({k: v for k, v in r.items() if k != "_order"} | {"seq": seqs[r["site"]]})
        with store.engine.begin() as conn:
            conn.execute(insert(EventRow), out)


def hand_log() -> LogBuilder:
    b = LogBuilder()
    # counters: 1 (shimin) open 08:30-12:00 and 13:00-17:00 on day 1, 08:30-12:30 on day 2;
    # 5 (hoken_nenkin) opened 09:00 on day 1 and never closed (counted to local midnight)
    b.ev(D1, "08:30", "counter_open", counter=1, staff="佐藤")
    b.ev(D1, "12:00", "counter_paused", counter=1, staff="佐藤")
    b.ev(D1, "13:00", "counter_open", counter=1, staff="佐藤")
    b.ev(D1, "17:00", "counter_closed", counter=1, staff="佐藤")
    b.ev(D1, "09:00", "counter_open", counter=5, staff="鈴木")
    b.ev(D2, "08:30", "counter_open", counter=1, staff="佐藤")
    b.ev(D2, "12:30", "counter_closed", counter=1, staff="佐藤")

    # A: reserved, prefilled; one step
    b.issued(D1, "09:00", "A", [("shimin", ["juminhyo"])], reserved=True, prefilled=True)
    b.called(D1, "09:10", "A", 0, 1, "shimin")
    b.started(D1, "09:11", "A", 0, 1, "shimin")
    b.completed(D1, "09:16", "A", 0, 1, "shimin", ["juminhyo"], True)
    # B: prefilled; two steps, a recall, and a procedure added at the counter (rework, new step 2)
    b.issued(D1, "09:05", "B", [("shimin", ["tenshutsu"]), ("hoken_nenkin", ["nhi_loss"])], prefilled=True,
             purposes=("move_out",))
    b.called(D1, "09:20", "B", 0, 1, "shimin")
    b.ev(D1, "09:22", "recalled", "B", 0, 1, number="B", department="shimin", recalls=1)
    b.started(D1, "09:23", "B", 0, 1, "shimin")
    b.ev(D1, "09:25", "procedure_added", "B", 0, 1, department="hoken_nenkin", procedures=["nenkin_change"])
    b.completed(D1, "09:33", "B", 0, 1, "shimin", ["tenshutsu"], False, ["hoken_nenkin"])
    b.called(D1, "09:40", "B", 1, 5, "hoken_nenkin")
    b.started(D1, "09:41", "B", 1, 5, "hoken_nenkin")
    b.completed(D1, "09:53", "B", 1, 5, "hoken_nenkin", ["nhi_loss"], False, ["hoken_nenkin"])
    b.called(D1, "09:54", "B", 2, 5, "hoken_nenkin")
    b.started(D1, "09:54", "B", 2, 5, "hoken_nenkin")
    b.completed(D1, "10:00", "B", 2, 5, "hoken_nenkin", ["nenkin_change"], True)
    # C: online-capable; transferred after it started, served again at hoken_nenkin
    b.issued(D1, "09:10", "C", [("shimin", ["juminhyo", "inkan"])], online=True)
    b.called(D1, "09:50", "C", 0, 1, "shimin")
    b.started(D1, "09:52", "C", 0, 1, "shimin")
    b.ev(D1, "09:55", "transferred", "C", 0, 1, **{"from": "shimin", "to": "hoken_nenkin"})
    b.called(D1, "10:05", "C", 0, 5, "hoken_nenkin")
    b.started(D1, "10:06", "C", 0, 5, "hoken_nenkin")
    b.completed(D1, "10:20", "C", 0, 5, "hoken_nenkin", ["juminhyo", "inkan"], True)
    # D: called, recalled twice, no-show
    b.issued(D1, "10:00", "D", [("shimin", ["koseki"])])
    b.called(D1, "10:10", "D", 0, 1, "shimin")
    b.ev(D1, "10:12", "recalled", "D", 0, 1, number="D", department="shimin", recalls=1)
    b.ev(D1, "10:14", "recalled", "D", 0, 1, number="D", department="shimin", recalls=2)
    b.ev(D1, "10:16", "no_show", "D", 0, 1, department="shimin")
    # E: cancelled while waiting
    b.issued(D1, "11:30", "E", [("shimin", ["juminhyo"])])
    b.ev(D1, "11:45", "cancelled", "E", reason="left")
    # kiosk alerts
    b.ev(D1, "10:30", "help_requested", device="kiosk-1", reason="staff_help", kind="help")
    b.ev(D1, "14:00", "device_fault", device="kiosk-1", device_kind="printer", code="paper_out", kind="fault")

    # day 2 — F: assistance; called, returned to the queue (requeued), called again, served
    b.issued(D2, "08:40", "F", [("shimin", ["juminhyo"])], assistance=True)
    b.called(D2, "08:45", "F", 0, 1, "shimin")
    b.ev(D2, "08:46", "requeued", "F", 0, 1)
    b.called(D2, "08:50", "F", 0, 1, "shimin")
    b.started(D2, "08:51", "F", 0, 1, "shimin")
    b.completed(D2, "08:57", "F", 0, 1, "shimin", ["juminhyo"], True)
    # G: waits exactly the 30-minute target
    b.issued(D2, "10:00", "G", [("shimin", ["koseki"])])
    b.called(D2, "10:30", "G", 0, 1, "shimin")
    b.started(D2, "10:31", "G", 0, 1, "shimin")
    b.completed(D2, "10:39", "G", 0, 1, "shimin", ["koseki"], True)

    # outside the period or the site: must change nothing
    before = dt.date(2026, 3, 31)
    b.issued(before, "23:50", "X", [("shimin", ["juminhyo"])])
    b.called(D1, "00:05", "X", 0, 1, "shimin")  # an old visit's call inside the period
    b.started(D1, "00:06", "X", 0, 1, "shimin")
    b.completed(D1, "00:10", "X", 0, 1, "shimin", ["juminhyo"], True)
    after = dt.date(2026, 4, 3)
    b.issued(after, "08:00", "Y", [("shimin", ["juminhyo"])])
    b.ev(after, "08:00", "counter_open", counter=1)
    b.ev(after, "09:00", "help_requested", device="kiosk-1")
    b.issued(D1, "09:00", "Z", [("shimin", ["juminhyo"])], site="yawata")
    b.ev(D1, "09:01", "called", "Z", 0, 1, site="yawata", department="shimin")
    return b
