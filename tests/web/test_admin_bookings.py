"""The admin page's 来庁予約 view: a day's bookings with their procedure lists, states and cancel."""

from __future__ import annotations

from tests.queue_server.test_booking import DEATH, second_opening_day
from tests.support.live_server import Client

from .conftest import run, shot


async def _book(live, day: str) -> list[str]:
    p, _ = await Client.open(live.url, role="planner", site="honcho")
    codes = []
    for start in ("09:00", "10:30"):
        codes.append((await p.ok("book", day=day, start=start, **DEATH))["booking"]["code"])
    await p.close()
    return codes


def test_staff_see_the_days_bookings_with_their_lists_and_cancel_one(live, context):
    day = second_opening_day()
    codes = run(_book(live, day))
    page = context.new_page()
    token = live.tokens().roles["admin"]
    page.add_init_script(f"sessionStorage.setItem('madoguchi.admin', {token!r})")
    page.goto(f"{live.http}/admin/bookings.html?site=honcho&day={day}")
    page.wait_for_selector(f"tr[data-code='{codes[0]}']")
    row = page.locator(f"tr[data-code='{codes[0]}']")
    assert "09:00" in row.inner_text() and "市民課" in row.inner_text() and "予約済み" in row.inner_text()
    assert "死亡" in row.inner_text()
    assert "窓口に来る方の本人確認書類" in row.inner_text()  # documents to prepare for
    assert "予約 2 件" in page.locator("#summary").inner_text()
    shot(page, "admin-bookings")
    page.once("dialog", lambda d: d.accept())
    page.locator(f"tr[data-code='{codes[1]}'] button.cancel").click()
    page.wait_for_selector(f"tr.cancelled[data-code='{codes[1]}']")
    assert "取消 1" in page.locator("#summary").inner_text()
    shot(page, "admin-bookings-cancelled")
