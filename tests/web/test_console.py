"""The staff counter console in a real browser, driven by the keyboard alone."""

from __future__ import annotations

import time

import pytest

from tests.web.conftest import board_url, console_url, issue, kiosk_alert, shot, status_url

pytestmark = pytest.mark.browser

PREFILL = {"name": "黒桐　幹也", "address": "山形県酒田市本町二丁目2番45号", "birth_date": "19800217", "sex": "1"}


def _current(page) -> dict | None:
    return page.evaluate("window.__console.current")


def _press(page, key: str) -> None:
    """Press a shortcut and wait for the console to finish the request it started."""
    page.keyboard.press(key)
    page.wait_for_function("!window.__console.busy")
    time.sleep(0.05)


def test_the_whole_counter_flow_works_by_keyboard(live, context):
    death = issue(live, ("death",), prefill=PREFILL)["ticket"]
    cert = issue(live, ("certificate",))["ticket"]
    third = issue(live, ("certificate",))["ticket"]
    page = context.new_page()
    frames: list[str] = []
    page.goto(console_url(live, 1))
    shot(page, "console-signin")
    # sign in: the staff name field has the focus; the token came in the URL
    assert page.evaluate("document.activeElement.id") == "staff"
    page.keyboard.type("佐藤")
    page.keyboard.press("Enter")
    page.wait_for_selector("#app:not([hidden])")
    page.wait_for_function("window.__console.counter && window.__console.counter.state === 'open'")
    assert "佐藤" in page.locator("#staff-label").inner_text()
    page.wait_for_selector(f'#queue li[data-number="{death["number"]}"]')
    kiosk_alert(live, "help", reason="")
    page.wait_for_selector("#alerts li.help")
    page.locator("#alerts li.help button").click()  # dismissed on this PC: it stays gone after a reload
    assert page.locator("#alerts li.help").count() == 0
    page.reload()
    page.fill("#staff", "佐藤")
    page.keyboard.press("Enter")
    page.wait_for_selector("#app:not([hidden])")
    page.wait_for_selector(f'#queue li[data-number="{death["number"]}"]')
    assert page.locator("#alerts li.help").count() == 0
    page.locator("body").focus()

    # call next (N): the oldest ticket, with its plan, documents and the card data
    _press(page, "n")
    page.wait_for_selector("#prefill")
    assert page.locator("#current-number").inner_text() == death["number"]
    prefill = page.locator("#prefill").inner_text()
    assert PREFILL["name"] in prefill and "1980-02-17" in prefill and "男" in prefill
    assert "死亡届" in page.locator("#current").inner_text()  # procedure names, not ids
    assert page.locator("#current .docs li").count() >= 1
    _press(page, "r")  # recall
    assert _current(page)["steps"][0]["recalls"] == 1
    _press(page, "s")  # start
    assert page.locator("#current-state").inner_text() == "対応中"
    shot(page, "console-serving")

    # add a procedure found at the counter (A): department and procedure chosen by keyboard
    page.keyboard.press("a")
    page.wait_for_selector("#add-dialog[open]")
    page.keyboard.press("ArrowDown")  # the second department
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#add-dialog", state="hidden")
    page.wait_for_function("!window.__console.busy && window.__console.current && window.__console.current.rework > 0")

    _press(page, "c")  # complete: where the ticket goes next is shown
    page.wait_for_selector("#next")
    assert "次の行き先" in page.locator("#next").inner_text() and "国保年金課" in page.locator("#next").inner_text()
    assert _current(page) is None

    # the next ticket does not come: recall twice, then no-show (X)
    _press(page, "n")
    assert _current(page)["number"] == cert["number"]
    _press(page, "x")  # too early: the console explains, nothing changes
    assert "再呼出" in page.locator("#message").inner_text() and _current(page) is not None
    _press(page, "r")
    _press(page, "r")
    _press(page, "x")
    assert _current(page) is None

    # back to the queue (B), call it again from the queue list with the arrow keys and Enter
    _press(page, "n")
    assert _current(page)["number"] == third["number"]
    _press(page, "b")
    assert _current(page) is None
    page.wait_for_selector(f'#queue li[data-number="{third["number"]}"]')
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    _press(page, "Enter")
    assert _current(page)["number"] == third["number"]

    # transfer (T) to another department by keyboard
    page.keyboard.press("t")
    page.wait_for_selector("#transfer-dialog[open]")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_selector("#transfer-dialog", state="hidden")
    page.wait_for_function("!window.__console.busy && window.__console.current === null")

    # pause (P): call next is refused by the page itself; resume (P) again
    _press(page, "p")
    assert page.evaluate("window.__console.counter.state") == "paused"
    assert page.locator('#actions button[data-key="n"]').is_disabled()
    _press(page, "p")
    assert page.evaluate("window.__console.counter.state") == "open"
    assert not page.locator('#actions button[data-key="n"]').is_disabled()
    del frames


def test_card_data_is_shown_only_on_the_console(live, context):
    """The prefill travels only in the console's `current` reply: never to a board or phone."""
    t = issue(live, ("death",), prefill=PREFILL)
    received: list[str] = []

    def watch(ws):
        ws.on("framereceived", lambda payload: received.append(payload if isinstance(payload, str) else payload.decode()))

    board = context.new_page()
    board.on("websocket", watch)
    board.goto(board_url(live, mute="1"))
    phone = context.new_page()
    phone.on("websocket", watch)
    phone.goto(status_url(live, t["ticket"]["public_token"]))
    console = context.new_page()
    console.goto(console_url(live, 2))
    console.fill("#staff", "鈴木")
    console.keyboard.press("Enter")
    console.wait_for_function("window.__console.counter && window.__console.counter.state === 'open'")
    console.evaluate(f"window.__console.link.request('call', {{ticket: '{t['ticket']['id']}'}})")
    phone.wait_for_selector("#called-counter")
    board.wait_for_selector(f'.call-card[data-number="{t["ticket"]["number"]}"]')
    assert received, "no frames were captured"
    for text in received + [board.content(), phone.content()]:
        assert PREFILL["name"] not in text and PREFILL["address"] not in text and PREFILL["birth_date"] not in text
