"""The console keeps its queue from the `queue` pushes (deltas) in a real browser: it shows the
server's queue in the server's order as tickets come and go, the order it derives from entries
is the pure core's (queue_feed.order) at any time, and a gap in the feed makes it resync."""

from __future__ import annotations

import random

import pytest

from queue_server.core import queue_feed as Q
from queue_server.core.dispatch import DispatchPolicy
from tests.web.conftest import as_counter, console_url, issue, shot

pytestmark = pytest.mark.browser


def _sign_in(page, live, counter: int) -> None:
    page.goto(console_url(live, counter))
    page.fill("#staff", "佐藤")
    page.keyboard.press("Enter")
    page.wait_for_selector("#app:not([hidden])")
    page.wait_for_function("window.__console.queueSeq !== null")


def _shown(page) -> list[str]:
    return page.eval_on_selector_all("#queue li[data-ticket]", "els => els.map(e => e.dataset.ticket)")


def _server_queue(live, counter: int) -> list[str]:
    return [q["ticket"] for q in as_counter(live, counter, ("queue", {}))[0]["queue"]]


def _wait_shown(page, expected: list[str]) -> None:
    page.wait_for_function("ids => JSON.stringify([...document.querySelectorAll('#queue li[data-ticket]')]"
                           ".map(e => e.dataset.ticket)) === JSON.stringify(ids)", arg=expected, timeout=10000)


def test_the_console_follows_the_queue_by_deltas_and_resyncs_after_a_gap(live, context):
    for purposes in (("certificate",), ("death",), ("certificate",)):
        issue(live, purposes)
    issue(live, ("certificate",), assistance=True)
    page = context.new_page()
    _sign_in(page, live, 4)  # 市民課 and 国保年金課: two departments in one queue
    _wait_shown(page, _server_queue(live, 4))
    assert len(_shown(page)) == 4

    # changes elsewhere reach it as deltas: a call at counter 1, new tickets, a requeue
    as_counter(live, 1, ("open", {}), ("call_next", {}))
    issue(live, ("certificate",))
    issue(live, ("death",))
    _wait_shown(page, _server_queue(live, 4))
    as_counter(live, 1, ("requeue", {}))
    _wait_shown(page, _server_queue(live, 4))
    assert page.evaluate("window.__console.queueSeq") > 0

    # a lost delta: the view is emptied and its seq put back; the next delta shows the gap, the
    # console asks resync and the full snapshot brings every ticket back
    page.evaluate("() => { const S = window.__console; S.entries.clear(); S.queueSeq = 1; }")
    issue(live, ("certificate",))
    expected = _server_queue(live, 4)
    _wait_shown(page, expected)
    assert len(expected) == 7
    shot(page, "console-queue-feed")


def test_the_order_the_console_derives_is_the_cores_at_any_time(live, context):
    page = context.new_page()
    _sign_in(page, live, 4)
    rng = random.Random(7)
    policy = DispatchPolicy(aging_bound=1200.0, reservation_grace=300.0)
    now = 1_800_000_000.0
    entries = []
    for n in range(1, 41):
        issued = now - rng.uniform(0, 3600)
        steps = [{"step": i, "department": rng.choice(["shimin", "hoken_nenkin"]), "procedures": ["p"],
                  "since": rng.choice([issued, issued + rng.uniform(0, 600), now - 1200.0])}
                 for i in range(rng.choice([1, 1, 2, 3]))]
        entries.append({"ticket": f"t{n}", "number": str(n), "n": n, "issued_at": issued,
                        "reserved_for": rng.choice([None, None, now + rng.uniform(-900, 900)]),
                        "assistance": rng.random() < 0.3, "steps": steps})
    for at in (now, now + 300.0, now + 1500.0):
        js = page.evaluate("async ([entries, now, policy]) => (await import('/counter/console.js'))"
                           ".queueOrder(entries, now, policy)",
                           [entries, at, {"aging_bound": policy.aging_bound, "reservation_grace": policy.reservation_grace}])
        py = [Q.shown(e, at, policy) for e in Q.order(entries, at, policy)]
        keep = ("ticket", "department", "step", "priority", "escalated")
        assert [{k: r[k] for k in keep} for r in js] == [{k: r[k] for k in keep} for r in py]
        assert all(abs(a["waited_minutes"] - b["waited_minutes"]) <= 0.1 for a, b in zip(js, py, strict=True))
