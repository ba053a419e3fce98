"""The staff consultation pages in Chromium: record with consent, hand over to 福祉企画課, the receiving
consultant sees it when the citizen's ticket is called, 税務課 gets nothing, the 福祉総合相談係 sees
all, and every access is in the admins' audit view. Screenshots: tests/screenshots/web/consult_*.png."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from queue_server import accounts
from queue_server import consultation_store as db
from queue_server.storage import Store
from tests.support.live_server import LiveServer
from tests.web.conftest import as_counter, issue, shot

pytestmark = pytest.mark.browser
PASSWORD = "sakata-soudan-2026"
MESSAGES = json.loads((Path(__file__).resolve().parents[2] / "counter" / "consult_web" / "messages.json")
                      .read_text(encoding="utf-8"))


def ja(key: str, **fields) -> str:
    text = MESSAGES[key]["ja"]
    for k, v in fields.items():
        text = text.replace("{" + k + "}", str(v))
    return text


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("consult_web")
    url = f"sqlite:///{tmp / 'lobby.db'}"
    store = Store(url)
    store.migrate()
    hashed = accounts.hash_password(PASSWORD)  # one hash for all: Argon2 costs CPU on a shared machine
    for ident in ("kosodate01", "fukushi01", "zeimu01", "soudan01", "admin01"):
        db.set_password(store.engine, ident, hashed, time.time())
    store.engine.dispose()
    srv = LiveServer(db_url=url, secrets=tmp / "secrets.toml").start()
    yield srv
    srv.kill()


def sign_in(context, live, ident: str, query: str = ""):
    page = context.new_page()
    page.goto(f"{live.http}/consult/{query}")
    page.wait_for_selector("#signin:not([hidden])")
    page.fill("#identifier", ident)
    page.fill("#password", PASSWORD)
    page.click("#signin-button")
    page.wait_for_selector("#app:not([hidden])")
    return page


def test_consultation_handover_search_rights_and_audit_in_the_browser(live, browser):
    ticket = issue(live)["ticket"]
    number = ticket["number"]

    # 子育て支援課: record with consent, hand over to 福祉企画課 for the citizen's ticket
    ctx = browser.new_context(viewport={"width": 1366, "height": 900}, locale="ja-JP", timezone_id="Asia/Tokyo")
    page = sign_in(ctx, live, "kosodate01")
    page.fill("#r-name", "髙橋 花子")
    page.fill("#r-birth", "1990-05-06")
    page.select_option("#r-topic", "child_development")
    page.check("#r-consent")
    page.click("#r-submit")
    page.wait_for_selector("#handover-form:not([hidden])")
    page.select_option("#h-to", "shogai")
    page.fill("#h-asked", "2歳児の発達について相談。言葉の遅れが気になる")
    page.fill("#h-done", "発達相談の流れを説明、面談30分")
    page.fill("#h-needed", "障がい福祉サービス（児童発達支援）の案内と申請")
    page.fill("#h-documents", "母子手帳、健診結果")
    page.fill("#h-ticket", number)
    shot(page, "consult_1_kosodate_handover")
    page.click("#h-submit")
    page.locator("#message", has_text="福祉企画課").wait_for()  # no wait_for_function: the page's CSP forbids eval
    assert page.text_content("#message") == ja("c.handover_created", department="福祉企画課")
    ctx.close()

    # the 福祉企画課 consultant works at counter 1; when it calls the citizen's ticket, the sheet opens
    ctx = browser.new_context(viewport={"width": 1366, "height": 900}, locale="ja-JP", timezone_id="Asia/Tokyo")
    page = sign_in(ctx, live, "fukushi01", "?counter=1")
    assert page.query_selector("article.sheet") is None
    as_counter(live, 1, ("open", {}), ("call", {"ticket": ticket["id"]}))
    page.wait_for_selector("article.sheet", timeout=15000)
    assert page.input_value("#t-number") == number
    sheet = page.text_content("article.sheet")
    assert "言葉の遅れ" in sheet and "児童発達支援" in sheet and "母子手帳" in sheet and number in sheet
    shot(page, "consult_2_fukushi_sees_handover")
    page.click("article.sheet button.take")
    page.wait_for_selector("#handovers-empty")
    assert page.text_content("#message") == ja("c.taken")
    ctx.close()

    # 税務課: signed in, searching the same citizen gets nothing
    ctx = browser.new_context(viewport={"width": 1366, "height": 900}, locale="ja-JP", timezone_id="Asia/Tokyo")
    page = sign_in(ctx, live, "zeimu01")
    page.click("#tabs button[data-tab=search]")
    page.fill("#s-name", "高橋花子")
    page.fill("#s-birth", "1990/5/6")
    page.fill("#s-reason", "確認")
    page.click("#s-submit")
    page.wait_for_selector("#message.error")
    assert page.text_content("#message") == ja("error.no_rights")
    assert page.query_selector("#search-table") is None
    shot(page, "consult_3_zeimu_gets_nothing")
    ctx.close()

    # 福祉総合相談係: sees the record (typed with new kanji and a different date style)
    ctx = browser.new_context(viewport={"width": 1366, "height": 900}, locale="ja-JP", timezone_id="Asia/Tokyo")
    page = sign_in(ctx, live, "soudan01")
    page.click("#tabs button[data-tab=search]")
    page.fill("#s-name", "高橋　花子")
    page.fill("#s-birth", "19900506")
    page.fill("#s-reason", "総合相談の受付")
    page.click("#s-submit")
    page.wait_for_selector("#search-table")
    row = page.text_content("#search-table tbody")
    assert "子育て支援課" in row and "子どもの発達" in row and "子育て 花子" in row
    shot(page, "consult_4_soudan_sees_all")
    ctx.close()

    # admin: every access is in the audit view
    ctx = browser.new_context(viewport={"width": 1366, "height": 900}, locale="ja-JP", timezone_id="Asia/Tokyo")
    page = sign_in(ctx, live, "admin01")
    page.wait_for_selector("#audit-table")
    rows = [r.inner_text() for r in page.query_selector_all("#audit-table tbody tr")]
    shot(page, "consult_5_admin_audit")
    page.click("#tabs button[data-tab=kpi]")
    page.wait_for_selector("#kpi-departments")
    assert "子育て支援課" in page.text_content("#kpi-departments") and "福祉企画課" in page.text_content("#kpi-routes")
    shot(page, "consult_6_admin_kpi")
    ctx.close()

    def has(actor: str, action: str) -> bool:
        return any(actor in r and ja(f"action.{action}") in r for r in rows)

    for actor, action in [("kosodate01", "record"), ("kosodate01", "handover_create"), ("fukushi01", "handover_list"),
                          ("fukushi01", "take_over"), ("zeimu01", "search"), ("soudan01", "search")]:
        assert has(actor, action), (actor, action, rows)
    assert any("zeimu01" in r and ja("outcome.denied") in r for r in rows)
    assert any("soudan01" in r and ja("outcome.shown", n=1) in r and "総合相談の受付" in r for r in rows)
    assert not any("髙橋" in r or "花子" in r for r in rows)  # no names in the audit log


def test_a_reload_keeps_the_session_and_sign_out_ends_it(live, browser):
    ctx = browser.new_context(locale="ja-JP")
    page = sign_in(ctx, live, "fukushi01")
    page.reload()
    page.wait_for_selector("#app:not([hidden])")  # resumed from sessionStorage
    # the page's Content-Security-Policy is in force: an injected inline script does not run
    assert page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1';
        document.head.append(s); return window.__inline === 1 ? 'ran' : 'blocked'; }""") == "blocked"
    page.click("#signout")
    page.wait_for_selector("#signin:not([hidden])")
    page.reload()
    page.wait_for_selector("#signin:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('madoguchi.consult.session')") is None
    page.fill("#identifier", "fukushi01")
    page.fill("#password", "wrong password here")
    page.click("#signin-button")
    page.wait_for_selector("#signin-error:not(:empty)")
    assert page.text_content("#signin-error") == ja("error.bad_credentials")
    ctx.close()


def test_the_consult_message_table_has_ja_and_en_for_every_key_the_page_uses():
    import re

    web = Path(__file__).resolve().parents[2] / "counter" / "consult_web"
    used: set[str] = set()
    for f in ("index.html", "consult.js"):
        text = (web / f).read_text(encoding="utf-8")
        used |= set(re.findall(r'data-t="([\w.]+)"', text)) | set(re.findall(r'\bt\("([\w.]+)"', text))
    assert len(used) > 40, "the pattern found too few keys"
    assert used <= set(MESSAGES), sorted(used - set(MESSAGES))
    from queue_server.consultation_api import ERRORS

    assert {f"error.{c}" for c in ERRORS} <= set(MESSAGES)  # every staff-role error has a staff text
    for key, texts in MESSAGES.items():
        assert texts.get("ja") and texts.get("en"), key
        fields = {frozenset(re.findall(r"\{(\w+)\}", v)) for v in texts.values()}
        assert len(fields) == 1, key


def test_a_server_without_consultation_config_says_so_on_the_page(browser, tmp_path):
    root = Path(__file__).resolve().parents[2]
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "site.toml").write_text((root / "config" / "site.toml").read_text(encoding="utf-8"), encoding="utf-8")
    srv = LiveServer(db_url=f"sqlite:///{tmp_path / 'x.db'}", secrets=tmp_path / "secrets.toml", config_dir=cfg).start()
    try:
        ctx = browser.new_context(locale="ja-JP")
        page = ctx.new_page()
        page.goto(f"{srv.http}/consult/")
        page.wait_for_selector("#signin:not([hidden])")
        page.wait_for_selector("#signin-error:not(:empty)")
        assert page.text_content("#signin-error") == ja("error.not_configured")
        ctx.close()
    finally:
        srv.kill()


def test_a_citizen_books_a_consultation_online_on_a_phone_and_the_consultant_sees_it(live, browser):
    """Done-when, first step: 相談 → topic → online → slot → code + QR and the meeting link (shown only
    with the code) on a phone; the 子育て支援課 consultant then sees the booking on the consult page."""
    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                has_touch=True, locale="ja-JP", timezone_id="Asia/Tokyo")
    page = phone.new_page()
    page.goto(f"{live.http}/plan/?site=honcho")
    page.wait_for_selector("[data-purpose=consultation]")
    page.locator("[data-purpose=consultation]").click()  # 相談: its booking is offered next to the choice
    page.locator("#consult-start").scroll_into_view_if_needed()
    shot(page, "consult_plan_0_choose")
    page.click("#consult-start")
    page.wait_for_selector("[data-topic=child_development]")
    assert page.locator("[data-topic=elder_care]").count() == 0  # walk-in only: not offered for booking
    shot(page, "consult_plan_1_topic")
    page.click("[data-topic=child_development]")
    page.wait_for_selector("[data-mode=online]")
    page.click("[data-mode=online]")
    page.wait_for_selector("#book .slot:not([disabled])")
    assert "meet.example.jp" not in page.content()  # no link before there is a code
    shot(page, "consult_plan_2_slots")
    page.locator("#book .slot:not([disabled])").first.click()
    page.click("#book-now")
    page.wait_for_selector("#online-link")
    code = page.text_content("#code")
    link = page.get_attribute("#online-link", "href")
    assert link == "https://meet.example.jp/sakata-kosodate01" and len(code) == 6
    assert page.locator("#booking-qr").count() == 1 and page.locator("#change").count() == 0
    when = page.text_content("#when-booked")
    shot(page, "consult_plan_3_booked_online")
    # the page opened again from its address (the QR) shows the link again
    page.goto(f"{live.http}/plan/?site=honcho&b={code}")
    page.wait_for_selector("#online-link")
    # the reminder on the phone status page: the booked time and the meeting link
    page.click("#reminder-link")
    page.wait_for_selector("#booking-link")
    assert page.get_attribute("#booking-link", "href") == link and page.text_content("#number") == code
    assert when.split()[-1] in page.text_content("#booking-when")
    shot(page, "consult_plan_4_status_reminder")
    page.goto(f"{live.http}/status/?site=honcho&b=000000x")  # a wrong code: found nothing, shows nothing
    page.wait_for_selector("#not-found")
    phone.close()

    ctx = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 800})
    staff = sign_in(ctx, live, "kosodate01")
    staff.click("[data-tab=bookings]")
    row = staff.locator(f"#booking-table tr[data-code='{code}']")
    row.wait_for()
    text = row.inner_text()
    assert "オンライン" in text and "子どもの発達" in text and "kosodate01" in text and ja("booking.booked") in text
    assert when.split()[-1].split("–")[0] in text  # the booked start time
    # and books one by phone for another citizen, in person
    staff.select_option("#b-topic", "childcare")
    staff.select_option("#b-mode", "in_person")
    staff.click("#b-slots")
    staff.locator("#book-slots .slot:not([disabled])").nth(1).click()
    staff.wait_for_selector("#message.ok:not(:empty)")
    assert staff.locator("#booking-table tbody tr").count() == 2
    shot(staff, "consult_7_kosodate_bookings")
    ctx.close()
