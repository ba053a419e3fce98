"""Issue 20 in the browser: a console whose call meets a busy server says so, sends the same call
again by itself (same idempotency key, after the server's retry_after with jitter), and the call
is made exactly once when the server admits it."""

from __future__ import annotations

import pytest

from queue_server.core.admission import Bounds
from queue_server.server import QueueServer
from tests.queue_server.writer_support import InProcess, make_server
from tests.web.conftest import console_url, issue, shot

pytestmark = pytest.mark.browser


def test_console_retries_a_busy_call_with_its_key_and_calls_once(tmp_path, context):
    qs = make_server(tmp_path, cls=QueueServer)
    srv = InProcess(qs)
    try:
        ticket = issue(srv)["ticket"]
        page = context.new_page()
        page.goto(console_url(srv, 1))
        page.fill("#staff", "佐藤")
        page.keyboard.press("Enter")
        page.wait_for_function("window.__console.counter && window.__console.counter.state === 'open'")
        page.wait_for_selector(f'#queue li[data-number="{ticket["number"]}"]')
        page.locator("body").focus()
        qs.admission = Bounds(max_queue=0, max_wait=0.0)  # every call is shed
        page.keyboard.press("n")
        page.wait_for_function("document.getElementById('message').textContent.includes('混み合っています')")
        assert page.evaluate("window.__console.busy")  # still trying: no second call can start
        shot(page, "console-busy-retrying")
        busy = qs.metrics.busy.get("call_next", 0)
        assert busy >= 1
        qs.admission = Bounds()
        page.wait_for_function("!window.__console.busy", timeout=30000)
        assert page.locator("#current-number").inner_text() == ticket["number"]
        called = [k for k in qs.idem if k.startswith("honcho:counter:1:")]
        assert len(called) == 1  # the console keyed its call, and it was made once
        events = qs.store.calls_since("honcho", 0, 0, 100)
        assert [e["kind"] for e in events] == ["called"]
    finally:
        srv.stop()
