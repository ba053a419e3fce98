"""The citizen's phone status page (from the ticket's QR code) in a real browser."""

from __future__ import annotations

import pytest

from tests.web.conftest import as_counter, issue, shot, status_url

pytestmark = pytest.mark.browser

# Record vibration requests (headless chromium has no vibrator; the page must still ask for it).
VIBRATE_SPY = "window.__vibrations = []; navigator.vibrate = (p) => { window.__vibrations.push(p); return true; };"


@pytest.fixture
def phone(browser):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="ja-JP", timezone_id="Asia/Tokyo",
                              is_mobile=True, has_touch=True)
    ctx.add_init_script(VIBRATE_SPY)
    yield ctx
    ctx.close()


def test_public_page_shows_position_and_wait_then_the_called_state_with_the_counter(live, phone):
    as_counter(live, 1, ("open", {}))
    first = issue(live, ("certificate",))["ticket"]
    mine = issue(live, ("certificate",))["ticket"]
    page = phone.new_page()
    page.goto(status_url(live, mine["public_token"]))
    page.wait_for_selector("#position")
    assert page.locator("#number").inner_text() == mine["number"]
    assert page.locator("#position").inner_text() == "あなたの前に 1人"
    assert "分" in page.locator("#wait").inner_text() or "まもなく" in page.locator("#wait").inner_text()
    # where to wait first: the department's open counters and their floor
    assert page.locator("#go li").inner_text() == "1階の市民課（1番窓口）の近くでお待ちください"
    from tests.web.test_board_layout import CONTRAST_JS

    assert not page.evaluate(CONTRAST_JS, "body"), page.evaluate(CONTRAST_JS, "body")  # all text >= 4.5:1
    page.locator("#alerts").tap()  # the tap that lets the page make a sound later
    shot(page, "status-waiting")

    as_counter(live, 1, ("call", {"ticket": first["id"]}), ("start", {}), ("complete", {}))
    page.wait_for_function("document.querySelector('#position') && document.querySelector('#position').textContent === 'まもなく呼ばれます'")

    as_counter(live, 1, ("call", {"ticket": mine["id"]}))
    page.wait_for_selector("#called-counter", timeout=10_000)  # by push: the page polls nothing
    assert page.locator("#called-counter").inner_text() == "1番窓口"
    assert "1階" in page.locator("#state").inner_text()
    assert "called" in page.locator("#state").get_attribute("class")
    assert page.evaluate("window.__vibrations.length") >= 1
    shot(page, "status-called")

    # the same page in English, as a visitor would switch it
    page.select_option("#lang", "en")
    assert page.locator("#called-counter").inner_text() == "Counter 1"
    assert "Please go to Counter 1, Floor 1" in page.locator("#state").inner_text()
    shot(page, "status-called-en")

    # a certificate visit goes on to the tax departments: the page goes back to waiting for them
    as_counter(live, 1, ("start", {}), ("complete", {}))
    page.wait_for_selector("#position")
    assert page.locator("#steps li").first.get_attribute("class") == "done"
    assert "called" not in page.locator("#state").get_attribute("class")


def test_an_unknown_token_says_so_and_shows_no_number(live, phone):
    page = phone.new_page()
    page.goto(status_url(live, "not-a-real-token"))
    page.wait_for_selector("#not-found")
    assert page.locator("#number").inner_text() == "—"
    shot(page, "status-not-found")


def test_a_branch_office_ticket_is_found_without_the_site_in_the_url(live, phone):
    t = issue(live, ("certificate",), site="yawata")["ticket"]
    assert t["site"] == "yawata" and "site=yawata" in t["status_url"]  # printed QR codes name the site
    # a bare token (typed by hand, or a link without the site) is still found by trying each site
    page = phone.new_page()
    page.goto(status_url(live, t["public_token"]))
    page.wait_for_selector("#position, #state p.big")
    assert page.locator("#number").inner_text() == t["number"]
    assert "八幡" in page.locator("#site").inner_text()


def test_a_queue_with_no_open_counter_says_paused_not_next(live, phone):
    t = issue(live, ("certificate",))["ticket"]
    # sent on to the agricultural committee, whose counter (11) is closed
    as_counter(live, 2, ("open", {}), ("call", {"ticket": t["id"]}), ("transfer", {"department": "nogyo"}))
    page = phone.new_page()
    page.goto(status_url(live, t["public_token"]))
    page.wait_for_selector("#position")
    text = page.locator("#state").inner_text()
    assert "受付を休止しています" in text and "まもなく呼ばれます" not in text and "分" not in text
    assert "11番窓口" in page.locator("#go").inner_text()
    shot(page, "status-paused")
    as_counter(live, 11, ("open", {}))
    page.wait_for_function("document.querySelector('#position').textContent === 'まもなく呼ばれます'")
    assert "休止" not in page.locator("#state").inner_text()
    as_counter(live, 11, ("call", {"ticket": t["id"]}), ("start", {}), ("complete", {}), ("close", {}))
