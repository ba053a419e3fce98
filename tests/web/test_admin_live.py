"""The admin page's live view: signed in from the URL `run.py demo` prints, in Japanese or
English, every counter and queue updated by push (no reload, no polling)."""

from __future__ import annotations

import pytest

from tests.web.conftest import as_counter, issue, shot

pytestmark = pytest.mark.browser


def test_signs_in_from_the_printed_url_and_shows_counters_and_queues_live(live, context):
    page = context.new_page()
    page.goto(f"{live.http}/admin/?token={live.tokens().roles['admin']}")
    page.wait_for_selector("#app:not([hidden])")
    assert "token=" not in page.url  # the secret leaves the address bar once used
    page.wait_for_selector('#counters-live tr[data-counter="8"]')
    assert page.locator("#now-state").inner_text() == "リアルタイム更新中"
    # names, not internal keys
    assert "酒田市役所" in page.locator("#site").inner_text()
    assert "hoken_nenkin" not in page.locator("#now").inner_text() and "国保年金課" in page.locator("#now").inner_text()

    t = issue(live, ("certificate",))["ticket"]
    row = page.locator('#queues-live tr[data-department="kosodate"]')
    as_counter(live, 9, ("open", {}))
    page.wait_for_function("document.querySelector('#counters-live tr[data-counter=\"9\"]').cells[2].textContent === '受付中'")
    # the ticket goes to 子育て支援課 and waits there: its queue shows it, then counter 9 calls it
    as_counter(live, 2, ("open", {}), ("call", {"ticket": t["id"]}), ("transfer", {"department": "kosodate"}))
    page.wait_for_function("document.querySelector('#queues-live tr[data-department=\"kosodate\"]').cells[1].textContent === '1'")
    assert row.locator("td").nth(2).inner_text().endswith("分")  # the oldest wait
    as_counter(live, 9, ("call", {"ticket": t["id"]}))
    nine = page.locator('#counters-live tr[data-counter="9"]')
    page.wait_for_function(f"document.querySelector('#counters-live tr[data-counter=\"9\"]').cells[3].textContent === '{t['number']}'")
    assert nine.locator("td").nth(2).inner_text() == "呼出中"
    as_counter(live, 9, ("start", {}))
    page.wait_for_function("document.querySelector('#counters-live tr[data-counter=\"9\"]').cells[2].textContent === '対応中'")
    page.wait_for_timeout(1200)
    assert nine.locator("td").nth(4).inner_text().startswith("0:0")  # for how long, ticking
    shot(page, "admin-live")

    page.select_option("#lang", "en")
    assert page.locator("#now-h").inner_text().startswith("Counters and queues now")
    assert page.locator("#now-state").inner_text() == "Updating live"
    assert nine.locator("td").nth(2).inner_text() == "Serving"
    assert "Health Insurance and Pension Division" in page.locator("#now").inner_text()
    shot(page, "admin-live-en")
    as_counter(live, 9, ("complete", {}), ("close", {}))
