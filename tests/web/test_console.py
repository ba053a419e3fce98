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
    # too early for 不在: the button is off (the server would refuse) and says why; X does nothing
    no_show = page.locator('#actions button[data-key="x"]')
    assert no_show.is_disabled() and "2回再呼出" in no_show.get_attribute("title")
    page.keyboard.press("x")
    assert _current(page) is not None
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


# a request per button, with a valid body: sent when the button is off, the server must refuse it
_REQUESTS = {
    "call_next": ("call_next", {}), "recall": ("recall", {}), "start": ("start", {}), "complete": ("complete", {}),
    "transfer": ("transfer", {"department": "zeimu"}),
    "add_procedure": ("add_procedure", {"department": "zeimu", "procedures": ["x"], "minutes": 5}),
    "no_show": ("no_show", {}), "requeue": ("requeue", {}), "pause": ("pause", {}),
}


def _refused(live, n: int, action: str) -> bool:
    from tests.web.conftest import _as_counter, run

    t, body = _REQUESTS[action]
    try:
        run(_as_counter(live, n, (t, body)))
    except AssertionError:  # Client.ok asserts on an error reply
        return True
    return False


def test_buttons_are_on_exactly_when_the_server_accepts_them_with_timers_and_a_calm_page(live, context):
    t = issue(live, ("certificate",))["ticket"]
    page = context.new_page()
    page.goto(console_url(live, 3))
    page.fill("#staff", "鈴木")
    page.keyboard.press("Enter")
    page.wait_for_selector("#app:not([hidden])")
    page.wait_for_function("window.__console.counter && window.__console.counter.state === 'open'")
    # nothing to show is not an alarm: the empty alert list has no alert styling
    while page.locator("#alerts li button").count():
        page.locator("#alerts li button").first.click()
    bg = page.eval_on_selector("#alerts li.empty", "e => getComputedStyle(e).backgroundColor")
    assert bg in ("rgba(0, 0, 0, 0)", "transparent")
    # tab order: the first control after the header is the primary action, sign-out comes last
    page.click("#counter-title")  # where sequential focus starts
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.action") == "call_next", page.evaluate("document.activeElement.outerHTML")
    tabbable = page.eval_on_selector_all("button:not([disabled]), select, input, a[href]",
                                         "els => els.filter(e => e.offsetParent).map(e => e.id || e.dataset.action || e.textContent)")
    assert tabbable[-1] == "signout"

    def check(state: str) -> None:
        page.wait_for_function("!window.__console.busy")
        time.sleep(0.2)
        enabled = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#actions button')]
            .map(b => [b.dataset.action, !b.disabled]))""")
        for action, on in enabled.items():
            if not on:
                assert _refused(live, 3, action), f"{state}: {action} is off but the server accepted it"
        return enabled

    on = check("idle")
    assert on["call_next"] and on["pause"] and not on["start"]
    _press(page, "n")
    assert _current(page)["number"] == t["number"]
    page.wait_for_selector("#current-timer")
    assert page.locator("#current-timer").inner_text().startswith("呼出から 0:0")
    for recalls in range(3):
        on = check(f"called, {recalls} recalls")
        assert on["no_show"] == (recalls >= 2) and on["recall"] and on["start"] and on["add_procedure"]
        if recalls < 2:
            _press(page, "r")
    _press(page, "s")
    on = check("serving")
    assert on["complete"] and on["transfer"] and not on["recall"] and not on["pause"]
    page.wait_for_function("document.querySelector('#current-timer').textContent.startsWith('対応開始から 0:0')")
    try:  # it runs: the timer leaves 0:00 (a loaded machine may skip a tick, so wait for it, do not sleep)
        page.wait_for_function("!document.querySelector('#current-timer').textContent.endsWith(' 0:00')", timeout=15000)
    except Exception:
        raise AssertionError(page.evaluate(
            "[window.__console.offset, JSON.stringify(window.__console.current.steps), Date.now() / 1000]")) from None
    from tests.web.test_board_layout import CONTRAST_JS

    assert not page.evaluate(CONTRAST_JS, "#app"), page.evaluate(CONTRAST_JS, "#app")  # all text >= 4.5:1
    shot(page, "console-serving-timer")
    _press(page, "c")
    assert _current(page) is None


def test_a_sign_in_typed_before_the_texts_are_in_waits_for_them_and_never_reloads_the_page(live, context):
    """Seen in CI: Enter pressed before the page had loaded its texts did nothing (no handler yet, the
    token field still empty) and the clerk stayed on the sign-in form. It must sign in once they are
    in, and never fall back to the form's native submit (the name and token in the address)."""
    held = []
    page = context.new_page()
    page.route("**/board/messages.json", lambda route: held.append(route))  # held until released below
    page.goto(console_url(live, 4))
    while not held:
        page.wait_for_timeout(20)
    url = page.url
    page.fill("#staff", "早瀬")
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert page.url == url  # no native submit: nothing typed went into the address
    assert page.locator("#app").is_hidden()
    held[0].continue_()
    page.wait_for_selector("#app:not([hidden])")
    page.wait_for_function("window.__console.counter && window.__console.counter.state === 'open'")
    assert "早瀬" in page.locator("#staff-label").inner_text()
    page.close()
