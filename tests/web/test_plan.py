"""The public planning page /plan/ on a phone: plan 死亡 in Japanese and Vietnamese, see when to
come, book a slot, check in with the booking's code, be called before the walk-ins.

The site is opened all day with 5-minute slots (tests/support/booking_config.py) so that a slot
booked now can be checked in now, whatever the hour of the test run.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.support.booking_config import booking_config_dir, noon_clock
from tests.support.live_server import Client, LiveServer

from .conftest import run, shot

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plan")
    cfg = booking_config_dir(tmp, all_day=True, slot_minutes=5, min_lead_minutes=0)
    # a reading in ruby markup, as the catalogue's やさしい日本語 texts carry them (queue_server/core/ruby.py)
    death = cfg / "catalogue" / "death.toml"
    text = death.read_text(encoding="utf-8")
    assert 'ja-easy = "かぞくが なくなった" }' in text
    death.write_text(text.replace('ja-easy = "かぞくが なくなった" }', 'ja-easy = "{家族|かぞく}が なくなった" }'),
                     encoding="utf-8")
    srv = LiveServer(db_url=f"sqlite:///{tmp / 'lobby.db'}", secrets=tmp / "secrets.toml", config_dir=cfg,
                     extra=noon_clock(tmp)).start()  # today's slots, whatever the hour
    yield srv
    srv.kill()


@pytest.fixture
def phone(browser):
    ctx = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                              locale="ja-JP", timezone_id="Asia/Tokyo")
    yield ctx
    ctx.close()


def answer_all(page, name: str) -> int:
    """Answer every question the page asks (the first offered answer, age 80); returns how many."""
    for n in range(30):
        page.wait_for_selector("#view[data-view=question] #question, #view[data-view=list] #list")
        if page.locator("#list").count():
            return n
        qid = page.locator("#question").get_attribute("data-id")
        if n == 0:
            shot(page, f"{name}-question")
        if page.locator("#number").count():
            top = page.locator("#number").get_attribute("max")
            page.fill("#number", str(min(80, int(top))) if top else "80")
            page.click("#number-ok")
        elif page.locator("#multi-ok").count():
            page.locator("label.choice").first.click()
            page.click("#multi-ok")
        else:
            page.locator("button.choice").first.click()
        try:
            page.wait_for_function("(q) => !document.querySelector(`#question[data-id='${q}']`)", arg=qid, timeout=10000)
        except Exception:
            raise AssertionError(f"stuck at {qid}: {page.locator('#error').inner_text()!r} "
                                 f"{page.locator('#view').inner_text()[:300]!r}") from None
    raise AssertionError("the questions never ended")


def test_plan_death_in_japanese_and_vietnamese_book_and_check_in(live, phone):
    page = phone.new_page()
    page.goto(f"{live.http}/plan/?site=honcho")
    page.wait_for_selector("[data-purpose=death]")
    assert "来庁前" in page.locator("#title").inner_text()
    shot(page, "plan-phone-events-ja")
    page.locator("[data-purpose=death]").click()
    page.locator("[data-purpose=move_out]").click()  # several events at once
    page.locator("[data-purpose=move_out]").click()  # ...and undone
    page.click("#next")
    asked = answer_all(page, "plan-phone-ja")
    assert asked >= 3
    page.wait_for_selector("#when table.forecast")
    assert "市民課" in page.locator("#list").inner_text()
    assert re.search(r"約 \d+〜\d+ 分", page.locator("#minutes").inner_text())
    assert page.locator("#no-history").is_visible()  # a new site: no history yet, said so
    shot(page, "plan-phone-list-ja")
    page.locator("#when").scroll_into_view_if_needed()
    shot(page, "plan-phone-when-ja")

    # the same plan in Vietnamese: the server translates the catalogue, the page its own words
    page.select_option("#lang", "vi")
    page.wait_for_function("document.documentElement.lang === 'vi' && !!document.querySelector('#list')")
    page.wait_for_function("document.querySelector('#list').innerText.includes('Phòng Công dân')")
    assert "Danh sách thủ tục" in page.locator("#list h2").inner_text()
    shot(page, "plan-phone-list-vi")

    # another phone plans the same visit and sees the same free slot
    other = phone.new_page()
    other.goto(f"{live.http}/plan/?site=honcho&lang=vi&p=death&a=death_filed:yes")
    answer_all(other, "plan-phone-vi-2")
    other.wait_for_selector("#book .slot:not([disabled])")

    # book the first free slot (5-minute slots against the wall clock: the current one may begin
    # between drawing the table and the click, which the server refuses as slot_past — then the next)
    for _ in range(3):
        page.wait_for_selector("#book .slot:not([disabled])")
        first = page.locator("#book .slot:not([disabled])").first
        start = first.get_attribute("data-start")
        first.click()
        page.click("#book-now")
        page.wait_for_selector("#booking[data-state=booked], #error:not([hidden])")
        if page.locator("#booking[data-state=booked]").count():
            break
        assert page.locator("#error").get_attribute("data-code") == "slot_past"
        page.wait_for_selector(f"#book .slot[data-start='{start}'][disabled], #book .slot:not([data-start='{start}'])")
    page.wait_for_selector("#booking[data-state=booked]")
    code = page.locator("#code").inner_text()
    assert re.fullmatch(r"\d{6}", code)
    page.wait_for_function("document.querySelector('#booking-qr').naturalWidth > 0")
    assert "Đã đặt" in page.locator("#booking h2").inner_text()
    shot(page, "plan-phone-booked-vi")

    # ...and tries the place just taken (one per slot): told in Vietnamese to choose another time
    other.locator(f"#book .slot[data-start='{start}']").click()
    other.click("#book-now")
    other.wait_for_selector("#error:not([hidden])")
    assert other.locator("#error").get_attribute("data-code") == "slot_full"
    assert "Hãy chọn giờ khác" in other.locator("#error").inner_text()
    other.wait_for_selector(f"#book .slot[data-start='{start}'][disabled]")  # the table was refreshed
    shot(other, "plan-phone-full-vi")

    # the second phone books the next free slot, then changes it: a new code, the old one cancelled
    # in the same commit
    other.locator("#book .slot:not([disabled])").first.click()
    other.click("#book-now")
    other.wait_for_selector("#booking[data-state=booked]")
    first_code = other.locator("#code").inner_text()
    first_start = other.evaluate("window.__plan.booking.slot_start")
    other.click("#change")
    other.wait_for_selector("#book .slot:not([disabled])")
    other.locator("#book .slot:not([disabled])").nth(1).click()
    other.click("#book-now")
    other.wait_for_function("(c) => { const b = document.querySelector('#booking[data-state=booked]');"
                            " return b && b.dataset.code !== c; }", arg=first_code)
    assert other.evaluate("window.__plan.booking.slot_start") != first_start
    other.goto(f"{live.http}/plan/?site=honcho&b={first_code}&lang=vi")
    other.wait_for_selector("#booking[data-state=cancelled]")
    assert "đặt lại" in other.locator("#next-step").inner_text()  # what to do next, in Vietnamese
    shot(other, "plan-phone-changed-old-code-vi")

    # print: A4 with the list and the QR
    page.emulate_media(media="print")
    shot(page, "plan-print-booked-vi")
    pdf = page.pdf(format="A4")
    assert pdf[:4] == b"%PDF" and len(pdf) > 5000
    page.emulate_media(media="screen")

    # check in at the kiosk with the code: the booked answers are used, and counter 1 calls the
    # booked ticket before the two walk-ins who came earlier
    result = run(_check_in_and_call(live, code))
    assert result["called"] == result["booked"]
    assert result["answers_used"]

    # the booking page now says checked in; a cancelled code says cancelled
    page.goto(f"{live.http}/plan/?site=honcho&b={code}&lang=ja")
    page.wait_for_selector("#booking[data-state=checked_in]")
    shot(page, "plan-phone-checked-in-ja")


async def _check_in_and_call(live: LiveServer, code: str) -> dict:
    kiosk, _ = await Client.open(live.url, role="kiosk", device="kiosk-1", token=live.tokens().roles["kiosk"], site="honcho")
    walk_ins = [await kiosk.ok("issue", purposes=["death"], answers={}, lang="ja", idempotency_key=f"walk-{i}")
                for i in range(2)]
    booked = await kiosk.ok("issue", reservation_code=code, lang="ja", idempotency_key="booked-1")
    tok = live.tokens().counters["honcho"][1]
    c, _ = await Client.open(live.url, role="counter", site="honcho", counter=1, token=tok, staff="試験")
    await c.ok("open")
    called = await c.ok("call_next")
    await asyncio.gather(kiosk.close(), c.close())
    assert all(w["ticket"]["id"] != booked["ticket"]["id"] for w in walk_ins)
    return {"called": called["ticket"]["id"], "booked": booked["ticket"]["id"],
            "answers_used": booked["plan"]["purposes"] == ["death"] and booked["ticket"]["number"].startswith("R")}


def test_catalogue_ruby_markup_is_shown_as_ruby_in_simple_japanese(live, phone):
    page = phone.new_page()
    page.goto(f"{live.http}/plan/?site=honcho&lang=ja-easy")
    page.wait_for_selector("[data-purpose=death] ruby")
    assert page.locator("[data-purpose=death] ruby rt").inner_text() == "かぞく"
    assert "{" not in page.locator("[data-purpose=death]").inner_text()
    shot(page, "plan-phone-events-ja-easy")
    page.select_option("#site-pick", "yawata")  # a branch office: its own slots
    page.wait_for_function("location.search.includes('site=yawata')")
    page.wait_for_selector("[data-purpose=death]")
    assert "やわた" in page.locator("#site").inner_text()
