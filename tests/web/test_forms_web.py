"""書かない窓口 in a real browser: the console opens the forms of the ticket at the counter, the card
fields are filled, the clerk types the deceased's name and date of death once, three forms print to
A4 PDFs with the values in them, and the next department's page shows the same values untyped.

The card data is sent in the issue request here (and left out, for the no-card note); the A4
booklet is checked in English. tests/kiosk/test_forms_card_walk.py starts the same walk from the
virtual card read by the Kivy kiosk through pcscd."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.support.live_server import Client
from tests.web.conftest import as_counter, console_url, run

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[1] / "screenshots" / "forms"
PREFILL = {"name": "黒桐　幹也", "address": "山形県酒田市本町二丁目2番45号", "birth_date": "19800217", "sex": "1"}
DEATH_1 = {
    "death_filed": "no", "deceased_age": "80", "deceased_head": "yes", "household_remaining": "3",
    "deceased_pension": "basic_only", "children_under_18": "no", "had_my_number_card": "no",
    "seal_registered": "yes", "disability_certificate": "yes", "owned_real_estate": "yes", "owned_moped": "yes",
    "owned_car": "no", "tax_account_transfer": "yes", "water_contract": "yes", "inherited_farmland": "no",
    "elderly_pass": "no", "household_on_nhi": "no", "high_medical_costs": "no", "deceased_income_return": "no",
    "proxy": "no",
}
A4_POINTS = (595.28, 841.89)  # 210 x 297 mm at 72 points per inch
MM = 72 / 25.4


async def _issue(live, key: str, prefill: dict | None) -> dict:
    k, r = await Client.open(live.url, role="kiosk", device="kiosk-1", token=live.tokens().roles["kiosk"], site="honcho")
    assert "result" in r, r
    try:
        body = {"prefill": prefill} if prefill else {}
        return await k.ok("issue", purposes=["death"], answers=DEATH_1, lang="en", idempotency_key=key, **body)
    finally:
        await k.close()


def _pdf_text(pdf: bytes, tmp: Path, name: str) -> tuple[str, str]:
    path = tmp / f"{name}.pdf"
    path.write_bytes(pdf)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return info, text


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils is not installed (make test-deps)")
def test_death_1_forms_filled_typed_once_printed_as_a4_and_seen_by_the_next_department(live, context, tmp_path):
    issued = run(_issue(live, "forms-web-1", PREFILL))
    tid = issued["ticket"]["id"]
    as_counter(live, 1, ("open", {}), ("call", {"ticket": tid}), ("start", {}))

    console = context.new_page()
    console.goto(console_url(live, 1))
    console.fill("#staff", "佐藤")
    console.keyboard.press("Enter")
    console.wait_for_selector("#app:not([hidden])")
    href = console.get_attribute("#forms-link", "href")
    assert href.startswith("/forms/?") and "counter=1" in href
    assert console.locator("#forms-link").inner_text() == "申請書（書かない窓口）"

    page = context.new_page()
    page.goto(live.http + href)
    page.wait_for_selector(".sheet[data-form=juumin_idou]")
    assert [s.get_attribute("data-form") for s in page.locator(".sheet").all()] == ["juumin_idou", "inkan_haishi"]
    name = page.locator(".sheet[data-form=juumin_idou] [data-field=informant_name] .value").inner_text()
    assert name == PREFILL["name"]
    # the deceased's name is not known yet: empty and marked, never guessed
    missing = page.locator(".sheet[data-form=juumin_idou] [data-field=deceased_name]")
    assert "missing" in missing.get_attribute("class") and missing.locator(".value").inner_text() == ""
    assert missing.locator(".mark").inner_text() == "要記入"
    assert page.locator("#no-card").is_hidden()
    page.screenshot(path=str(_shot("forms-shimin-before")), full_page=True)

    page.fill("input[name=deceased_name]", "酒田　太郎")
    page.fill("input[name=date_of_death]", "令和8年11月27日")
    page.click("#save")
    page.wait_for_function("document.querySelector('.sheet[data-form=inkan_haishi] [data-field=deceased_name] .value').textContent === '酒田　太郎'")
    assert "入力" in page.locator("#audit").inner_text() and "佐藤" in page.locator("#audit").inner_text()
    assert "酒田" not in page.locator("#audit").inner_text()  # the audit names keys, never values
    page.screenshot(path=str(_shot("forms-shimin-typed")), full_page=True)

    pdfs = {}
    for form in ("juumin_idou", "inkan_haishi"):
        one = context.new_page()
        one.goto(live.http + href + f"&form={form}")
        one.wait_for_selector(f".sheet[data-form={form}] [data-field=deceased_name] .value:text('酒田　太郎')")
        one.evaluate("window.__forms.markPrinted()")
        pdfs[form] = _pdf_text(one.pdf(format="A4", print_background=True), tmp_path, form)
        one.close()
    as_counter(live, 1, ("complete", {}))
    # the ticket left counter 1: its page drops the values at the next queue update
    page.wait_for_function("document.querySelectorAll('.sheet').length === 0")
    assert "酒田" not in page.content()

    # the next department (国保年金課, counter 5) sees the same values without typing
    as_counter(live, 5, ("open", {}), ("call", {"ticket": tid}), ("start", {}))
    nxt = context.new_page()
    nxt.goto(live.http + href.replace("counter=1", "counter=5").replace(
        f"token={live.tokens().counters['honcho'][1]}", f"token={live.tokens().counters['honcho'][5]}"))
    nxt.wait_for_selector(".sheet[data-form=sousaihi]")
    assert nxt.locator(".sheet[data-form=sousaihi] [data-field=deceased_name] .value").inner_text() == "酒田　太郎"
    assert nxt.locator("input[name=deceased_name]").input_value() == "酒田　太郎"
    assert "佐藤" in nxt.locator("#audit").inner_text()  # who entered them, seen by the next department
    nxt.screenshot(path=str(_shot("forms-hoken-nenkin")), full_page=True)
    one = context.new_page()
    one.goto(nxt.url + "&form=sousaihi")
    one.wait_for_selector(".sheet[data-form=sousaihi]")
    pdfs["sousaihi"] = _pdf_text(one.pdf(format="A4", print_background=True), tmp_path, "sousaihi")

    # the A4 personal list for the family (おくやみ booklet): the citizen's language (en), 市民課 ticked
    booklet = context.new_page()
    booklet.goto(nxt.url + "&view=list")
    booklet.wait_for_selector(".booklet .bstep")
    states = booklet.eval_on_selector_all(".booklet .bstep", "els => els.map(e => e.dataset.state)")
    assert states[:2] == ["done", "now"] and len(states) == 7
    first = booklet.locator(".booklet .bstep").first.inner_text()
    assert first.startswith("☑") and "Citizens Division" in first and "（市民課" in first
    assert "Deadline:" in booklet.locator(".booklet").inner_text()
    booklet.screenshot(path=str(_shot("booklet-en")), full_page=True)
    info, text = _pdf_text(booklet.pdf(format="A4", print_background=True), tmp_path, "booklet-en")
    assert "(A4)" in info and "Change of head of household" in text and "☑" in text

    for form, (info, text) in pdfs.items():
        size = next(line for line in info.splitlines() if line.startswith("Page size:"))
        w, h = (float(x) for x in size.split(":")[1].split("pts")[0].split("x"))
        # chromium rounds the page to whole CSS pixels: A4 within half a millimetre
        assert abs(w - A4_POINTS[0]) < MM / 2 and abs(h - A4_POINTS[1]) < MM / 2, (form, size)
        assert "Pages:           1" in info, (form, info)  # one page per form
        flat = text.replace(" ", "")
        assert PREFILL["name"].replace("\u3000", "") in flat.replace("\u3000", ""), form
        assert "酒田太郎" in flat.replace("\u3000", ""), form
    assert "令和8年11月27日" in pdfs["sousaihi"][1].replace(" ", "")
    assert "1980年2月17日" in pdfs["sousaihi"][1].replace(" ", "")

    # the visit closes (the rest of the route, counter by counter): nothing typed or read from the
    # card is left in the database or its WAL after a checkpoint
    as_counter(live, 5, ("complete", {}))
    for n in (6, 12, 10, 10, 11):
        as_counter(live, n, ("open", {}), ("call", {"ticket": tid}), ("start", {}), ("complete", {}))
    nxt.wait_for_function("document.querySelectorAll('.sheet').length === 0")
    db = Path(live.db_url.removeprefix("sqlite:///"))
    con = sqlite3.connect(db)
    state = con.execute("SELECT closed FROM tickets WHERE id = ?", (tid,)).fetchone()
    con.execute("PRAGMA wal_checkpoint(PASSIVE)")
    con.close()
    assert state == ("done",), state
    blob = b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))
    for v in ("酒田　太郎", "令和8年11月27日", PREFILL["name"], PREFILL["address"]):
        assert v.encode() not in blob, v


def test_without_a_card_the_forms_say_so_and_leave_the_informant_empty(live, context):
    issued = run(_issue(live, "forms-web-2", None))
    as_counter(live, 2, ("open", {}), ("call", {"ticket": issued["ticket"]["id"]}), ("start", {}))
    tok = live.tokens().counters["honcho"][2]
    page = context.new_page()
    page.goto(f"{live.http}/forms/?site=honcho&counter=2&token={tok}&staff=田中&lang=ja")
    page.wait_for_selector(".sheet[data-form=juumin_idou]")
    assert page.locator("#no-card").is_visible() and "手書き" in page.locator("#no-card").inner_text()
    cell = page.locator(".sheet[data-form=juumin_idou] [data-field=informant_name]")
    assert "missing" in cell.get_attribute("class") and cell.locator(".value").inner_text() == ""
    page.screenshot(path=str(_shot("forms-no-card")), full_page=True)
    as_counter(live, 2, ("complete", {}))


def _shot(name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS / f"{name}.png"
