"""The planning page's first screen comes in ONE response (docs/planning.md, "Performance";
queue_server/plan_page.py): the served HTML carries the life events in the citizen's language, the
same ones as the websocket's hello snapshot; the browser makes no other request before they are on
screen and the script has taken over; the websocket opens after the first paint; a repeat visit
is a 304; without JavaScript the choices still show, with a note. Correctness, not timing: the
times are bench/plan_bench.py's."""

from __future__ import annotations

import gzip
import re
import urllib.error
import urllib.request

import pytest

from queue_server.core.i18n import pick
from queue_server.core.ruby import to_html
from tests.support.live_server import Client, LiveServer

from .conftest import run, shot

PHONE = {"width": 390, "height": 844}
CHOICE = re.compile(r'<label class="choice" data-purpose="(\w+)"><input type="checkbox"><span>(.*?)</span></label>')


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plan-first")
    srv = LiveServer(db_url=f"sqlite:///{tmp / 'lobby.db'}", secrets=tmp / "secrets.toml").start()
    yield srv
    srv.kill()


def get(live: LiveServer, path: str, **headers: str) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(live.http + path, headers={"Accept-Encoding": "gzip", **headers})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


async def _hello(live: LiveServer) -> dict:
    c, hello = await Client.open(live.url, role="planner", site="honcho")
    await c.close()
    return hello["result"]["snapshot"]


@pytest.mark.parametrize(("path", "accept", "lang"), [
    ("/plan/?site=honcho", "ja-JP,ja;q=0.9", "ja"),
    ("/plan/?site=honcho", "vi-VN,vi;q=0.9,en;q=0.5", "vi"),
    ("/plan/?site=honcho&lang=vi", "ja-JP", "vi"),  # ?lang wins over the browser's language
])
def test_served_html_carries_the_life_events_of_the_hello_snapshot_in_the_language(live, path, accept, lang):
    status, headers, body = get(live, path, **{"Accept-Language": accept})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    page = gzip.decompress(body).decode()
    assert f'<html lang="{lang}">' in page
    snap = run(_hello(live))
    # the same purposes, in the same order and words, as the websocket's hello: one source
    assert CHOICE.findall(page) == [(p["id"], to_html(pick(p["name"], lang))) for p in snap["purposes"]]
    assert {"death", "birth", "move_in"} <= {p for p, _ in CHOICE.findall(page)}
    if lang == "vi":
        assert "Người thân qua đời" in page  # 死亡, from the catalogue's Vietnamese
    else:
        assert ">死亡<" in page
    # nothing else to fetch for the first screen: no script, style sheet or font by URL
    assert re.findall(r'\b(?:src|href)="(?!data:)[^"]*"', page) == []
    assert "<style>" in page and '<script type="module">' in page and "@import" not in page
    assert len(body) < 18 * 1024, f"{len(body)} bytes gzipped: the first screen should stay ~one TCP window"


def test_repeat_visit_is_a_304_and_the_language_cookie_chooses_the_language(live):
    _, headers, _ = get(live, "/plan/?site=honcho", **{"Accept-Language": "ja"})
    assert headers["Cache-Control"] == "no-cache" and "Accept-Language" in headers["Vary"]
    status, again, body = get(live, "/plan/?site=honcho", **{"Accept-Language": "ja", "If-None-Match": headers["ETag"]})
    assert status == 304 and body == b"" and again["ETag"] == headers["ETag"]
    status, ko, body = get(live, "/plan/?site=honcho", **{"Accept-Language": "ja", "Cookie": "plan_lang=ko",
                                                           "If-None-Match": headers["ETag"]})
    assert status == 200 and ko["ETag"] != headers["ETag"] and '<html lang="ko">' in gzip.decompress(body).decode()
    # the other files of the page have ETags too (a language change loads messages.<lang>.json)
    _, h, _ = get(live, "/plan/messages.vi.json")
    assert get(live, "/plan/messages.vi.json", **{"If-None-Match": h["ETag"]})[0] == 304
    assert get(live, "/plan/messages.xx.json")[0] == 404


@pytest.fixture
def phone(browser):
    ctx = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                              locale="vi-VN", timezone_id="Asia/Tokyo")
    yield ctx
    ctx.close()


# records when the first paint happened and when the page opened its websocket (page clock)
SPY = """
window.__spy = { sockets: [], paint: null };
new PerformanceObserver((l) => { for (const e of l.getEntries()) if (e.name === 'first-paint') window.__spy.paint = e.startTime; })
  .observe({ type: 'paint', buffered: true });
const WS = window.WebSocket;
window.WebSocket = function (...a) { window.__spy.sockets.push(performance.now()); return new WS(...a); };
window.WebSocket.prototype = WS.prototype;
Object.assign(window.WebSocket, { OPEN: WS.OPEN, CLOSED: WS.CLOSED, CONNECTING: WS.CONNECTING, CLOSING: WS.CLOSING });
"""


def test_one_request_before_the_first_screen_and_the_websocket_after_first_paint(live, phone):
    phone.add_init_script(SPY)
    page = phone.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{live.http}/plan/?site=honcho")  # Accept-Language from the vi-VN locale
    # the first screen: the life events visible in Vietnamese, and the script in charge of them
    page.wait_for_selector("[data-purpose=death]")
    page.wait_for_function("window.__plan && window.__plan.booted === 'html'")
    before = list(requests)
    assert before == [f"{live.http}/plan/?site=honcho"], before
    assert page.locator("[data-purpose=death]").inner_text() == "Người thân qua đời"
    assert page.evaluate("document.documentElement.lang") == "vi"
    # the websocket comes after the first paint, and the page works as before through it
    page.wait_for_function("window.__plan.link && window.__plan.link.state === 'online'")
    spy = page.evaluate("window.__spy")
    assert spy["paint"] is not None and len(spy["sockets"]) == 1 and spy["sockets"][0] >= spy["paint"], spy
    page.locator("[data-purpose=death]").click()
    page.click("#next")
    page.wait_for_selector("#question")
    assert not any("/plan/" in u and u.endswith((".js", ".css", ".json")) for u in requests), requests
    shot(page, "plan-first-screen-question-vi")


def test_script_draws_the_same_choices_as_the_server_and_without_script_they_still_show(live, browser):
    texts = {}
    for js in (False, True):
        ctx = browser.new_context(viewport=PHONE, locale="ja-JP", java_script_enabled=js)
        page = ctx.new_page()
        page.goto(f"{live.http}/plan/?site=honcho")
        page.wait_for_selector("[data-purpose=death]")
        if js:
            page.wait_for_function("window.__plan && window.__plan.link && window.__plan.link.state === 'online'")
            assert not page.locator("#noscript").is_visible()
        else:
            note = page.locator("#noscript")
            assert note.is_visible() and "JavaScript" in note.inner_text() and "キオスク" in note.inner_text()
            shot(page, "plan-first-screen-nojs-ja")
        texts[js] = page.eval_on_selector_all(
            "#view [data-purpose]", "els => els.map(e => [e.dataset.purpose, e.innerText])")
        texts[js, "title"] = page.locator("#title").inner_text()
        ctx.close()
    assert texts[False] == texts[True] and len(texts[True]) >= 7
    assert texts[False, "title"] == texts[True, "title"]


def test_a_language_picked_on_the_page_is_the_next_visits_first_screen(live, phone):
    page = phone.new_page()
    page.goto(f"{live.http}/plan/?site=honcho")
    page.wait_for_function("window.__plan && window.__plan.booted === 'html'")
    page.select_option("#lang", "ko")
    page.wait_for_function("document.documentElement.lang === 'ko'")
    status, _, body = get(live, "/plan/?site=honcho", **{"Cookie": "; ".join(
        f"{c['name']}={c['value']}" for c in phone.cookies())})
    assert status == 200 and '<html lang="ko">' in gzip.decompress(body).decode()
    page.goto(f"{live.http}/plan/?site=honcho")
    page.wait_for_selector("[data-purpose=death]")
    assert page.evaluate("document.documentElement.lang") == "ko"


def test_an_unknown_site_is_named_in_the_language(live, phone):
    page = phone.new_page()
    page.goto(f"{live.http}/plan/?site=nowhere")
    page.wait_for_selector("#error:not([hidden])")
    assert page.locator("#error").get_attribute("data-code") == "unknown_site"
    assert page.locator("[data-purpose]").count() == 0


# set when a life-event choice is ever in the document (a flash of the wrong screen)
EVENTS_SEEN = """window.__eventsSeen = false;
new MutationObserver(() => { if (document.querySelector('[data-purpose]')) window.__eventsSeen = true; })
  .observe(document, { childList: true, subtree: true });"""


def test_a_list_link_opens_on_its_question_without_the_life_events_first(live, phone):
    status, _, body = get(live, "/plan/?site=honcho&lang=vi&p=death&a=death_filed:yes")
    assert status == 200 and 'data-purpose="' not in gzip.decompress(body).decode()
    phone.add_init_script(EVENTS_SEEN)
    page = phone.new_page()
    page.goto(f"{live.http}/plan/?site=honcho&lang=vi&p=death&a=death_filed:yes")
    page.wait_for_selector("#question")
    assert page.locator("#question").get_attribute("data-id") != "death_filed"  # answered in the link
    assert page.evaluate("window.__eventsSeen") is False
    # a booking code nobody has: said so, and the life events offered to start again
    page.goto(f"{live.http}/plan/?site=honcho&lang=vi&b=000000")
    page.wait_for_selector("#error:not([hidden])")
    assert page.locator("#error").get_attribute("data-code") == "unknown_reservation"
    page.wait_for_selector("[data-purpose=death]")
