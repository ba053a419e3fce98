"""The phone page's full personal list with live step states (done / now / next), phone viewport,
ja and en, and its print version (the list alone)."""

from __future__ import annotations

import pytest

from tests.support.live_server import Client
from tests.web.conftest import as_counter, run, shot, status_url
from tests.web.test_forms_web import DEATH_1

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


async def _issue(live, key: str, lang: str) -> dict:
    k, r = await Client.open(live.url, role="kiosk", device="kiosk-1", token=live.tokens().roles["kiosk"], site="honcho")
    assert "result" in r, r
    try:
        return await k.ok("issue", purposes=["death"], answers=DEATH_1, lang=lang, idempotency_key=key)
    finally:
        await k.close()


def _states(page) -> list[str]:
    return page.eval_on_selector_all("#full-list .pstep", "els => els.map(e => e.dataset.state)")


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_phone_shows_the_whole_list_with_live_states(live, browser, lang):
    issued = run(_issue(live, f"status-list-{lang}", lang))
    tid = issued["ticket"]["id"]
    ctx = browser.new_context(viewport=PHONE, locale="ja-JP", timezone_id="Asia/Tokyo", is_mobile=True)
    try:
        page = ctx.new_page()
        page.goto(status_url(live, issued["ticket"]["public_token"]) + f"&lang={lang}")
        page.wait_for_selector("#full-list .pstep")
        text = page.locator("#full-list").inner_text()
        assert len(_states(page)) == len(issued["route"]) == 7
        assert _states(page)[:2] == ["next", "later"]
        if lang == "ja":
            assert "世帯主変更届" in text and "期限：" in text and "持ち物：" in text
        else:
            assert "Change of head of household" in text and "Deadline:" in text
            assert "（市民課" in text  # the Japanese name beside, to match the signs
        shot(page, f"status-list-{lang}-waiting")
        counter = 1
        as_counter(live, counter, ("open", {}), ("call", {"ticket": tid}))
        page.wait_for_function("document.querySelector('#full-list .pstep').dataset.state === 'now'")
        as_counter(live, counter, ("start", {}), ("complete", {}))
        page.wait_for_function("document.querySelector('#full-list .pstep').dataset.state === 'done'")
        assert _states(page)[:3] == ["done", "next", "later"]
        shot(page, f"status-list-{lang}-after-shimin")
        page.emulate_media(media="print")
        assert page.locator("#number").is_hidden() and page.locator("#full-list").is_visible()
        page.screenshot(path=str(shot(page, f"status-list-{lang}-print")), full_page=True)
    finally:
        ctx.close()


def test_an_unknown_token_gets_no_list(live):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{live.http}/status/list.json?t=nope")
    assert e.value.code == 404
