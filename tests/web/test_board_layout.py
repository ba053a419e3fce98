"""The lobby board as a visitor sees it: every label of every call card inside its card and on
screen with 1–6 cards and a recall, in landscape and portrait; the calling / serving / absent
lists; what a screen reader hears; text contrast; a wrong token; a burst of 12 calls announced
in order within a stated time. Screenshots for review."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from display_board.announcer import Announcer, call_phrase, chime, short_phrase, wav_seconds
from tests.support.live_server import Client
from tests.web.conftest import ROOT_AUDIO, as_counter, board_url, run, shot

pytestmark = pytest.mark.browser

# a department each counter serves (config/site.toml), to put one ticket in each counter's queue
COUNTER_DEPT = {1: "shimin", 2: "shimin", 3: "shimin", 4: "shimin", 5: "hoken_nenkin", 6: "kaigo", 7: "shogai",
                8: "kenko", 9: "kosodate", 10: "zeimu", 11: "suido", 12: "soudan"}
_keys = itertools.count()
MM_PER_PX = 685.0 / 1080  # a 55-inch 16:9 screen is 685 mm tall (landscape) / wide (portrait) over 1080 px

CLIPPED_JS = """() => {
  const out = [];
  const calling = document.querySelector('section.calling').getBoundingClientRect();
  for (const card of document.querySelectorAll('.call-card')) {
    const cb = card.getBoundingClientRect();
    const name = `card ${card.dataset.number}@${card.dataset.counter}`;
    if (cb.left < calling.left - 0.5 || cb.right > calling.right + 0.5 || cb.top < calling.top - 0.5
        || cb.bottom > calling.bottom + 0.5 || cb.bottom > innerHeight || cb.right > innerWidth) {
      out.push(`${name} outside the calling panel or the screen`);
    }
    const walker = document.createTreeWalker(card, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const n = walker.currentNode;
      if (!n.textContent.trim()) continue;
      const r = document.createRange();
      r.selectNodeContents(n);
      for (const b of r.getClientRects()) {
        if (b.left < cb.left - 0.5 || b.right > cb.right + 0.5 || b.top < cb.top - 0.5 || b.bottom > cb.bottom + 0.5) {
          out.push(`${name}: "${n.textContent}" cut (${Math.round(b.left)},${Math.round(b.top)})-(${Math.round(b.right)},${Math.round(b.bottom)}) card (${Math.round(cb.left)},${Math.round(cb.top)})-(${Math.round(cb.right)},${Math.round(cb.bottom)})`);
        }
      }
    }
  }
  const waits = document.querySelector('section.waits').getBoundingClientRect();
  const last = document.querySelector('#waits tbody tr:last-child');
  if (last && last.getBoundingClientRect().bottom > Math.min(waits.bottom, innerHeight) + 0.5) out.push('waits table cut');
  return out;
}"""

SIZES_JS = """() => {
  const px = (sel) => { const e = document.querySelector(sel); return e ? parseFloat(getComputedStyle(e).fontSize) : null; };
  return {first_number: px('.call-card.first .number'), first_counter: px('.call-card.first .counter'),
          other_number: px('.call-card:not(.first) .number'), other_counter: px('.call-card:not(.first) .counter'),
          waits: px('#waits td.num'), lists: px('.chip-list li:not(.none)')};
}"""


async def _ticket_for(live, department: str) -> dict:
    """A ticket waiting for ``department``: issued for a certificate, called at counter 1 and
    transferred there (the transfer keeps its place in line)."""
    k, _ = await Client.open(live.url, role="kiosk", device="kiosk-9", token=live.tokens().roles["kiosk"], site="honcho")
    t = (await k.ok("issue", purposes=["certificate"], answers={}, lang="ja",
                    idempotency_key=f"layout-{department}-{next(_keys)}-{id(live)}"))["ticket"]
    await k.close()
    if department != "shimin":
        c, _ = await Client.open(live.url, role="counter", site="honcho", counter=1,
                                 token=live.tokens().counters["honcho"][1], staff="試験")
        await c.ok("open")
        await c.ok("call", ticket=t["id"])
        await c.ok("transfer", department=department)
        await c.close()
    return t


def _call_at(live, counter: int, t: dict | None = None) -> dict:
    t = t or run(_ticket_for(live, COUNTER_DEPT[counter]))
    as_counter(live, counter, ("open", {}), ("call", {"ticket": t["id"]}))
    return t


def _clear(live, counters) -> None:
    for n in counters:
        run(_finish(live, n))


async def _finish(live, n: int) -> None:
    c, _ = await Client.open(live.url, role="counter", site="honcho", counter=n, token=live.tokens().counters["honcho"][n],
                             staff="試験")
    cur = (await c.ok("current"))["ticket"]
    if cur is not None:
        if cur["steps"] and any(s["state"] == "called" for s in cur["steps"]):
            await c.ok("start")
        await c.ok("complete")
    await c.close()


def test_every_card_label_is_inside_its_card_with_one_to_six_cards_and_a_recall(live, browser):
    pages = {}
    for w, h in ((1920, 1080), (1080, 1920)):
        ctx = browser.new_context(viewport={"width": w, "height": h}, locale="ja-JP", timezone_id="Asia/Tokyo")
        page = ctx.new_page()
        page.goto(board_url(live, mute="1"))
        page.wait_for_function("window.__link && window.__link.state === 'online'")
        pages[(w, h)] = (ctx, page)
    sizes = {}
    tickets = {n: run(_ticket_for(live, COUNTER_DEPT[n])) for n in range(1, 7)}  # before counter 1 is busy
    try:
        for n in range(1, 7):
            t = _call_at(live, n, tickets[n])
            recall = n in (1, 6)
            if recall:
                as_counter(live, n, ("recall", {}))
            for (w, h), (_, page) in pages.items():
                page.wait_for_selector(f'.call-card.first[data-number="{t["number"]}"]')
                page.wait_for_function(f"document.querySelectorAll('.call-card').length === {n}")
                if recall:
                    page.wait_for_selector(".call-card.first .badge")
                page.wait_for_timeout(100)  # fonts and grid settle
                cut = page.evaluate(CLIPPED_JS)
                if cut:
                    shot(page, f"board-cut-{w}x{h}-{n}")  # to see what went wrong
                assert not cut, f"{w}x{h} with {n} cards: {cut}"
                sizes[(w, h, n)] = page.evaluate(SIZES_JS)
                if n == 6:
                    shot(page, f"board-busy-recall-{w}x{h}")
    finally:
        for ctx, _ in pages.values():
            ctx.close()
    # type sizes for the stated viewing distances (docs/web.md): 4 mm of character per metre,
    # a kanji ~0.88 of its font size
    for (w, h, n), s in sizes.items():
        reach = {k: v * 0.88 * MM_PER_PX / 4.0 for k, v in s.items() if v}
        print(f"{w}x{h} {n} cards: " + ", ".join(f"{k} {v:.1f} m" for k, v in reach.items()))
        assert reach["first_number"] >= 10 and reach["first_counter"] >= 10, (w, h, n, reach)
        if n > 1:
            assert reach["other_number"] >= 10 and reach["other_counter"] >= 6, (w, h, n, reach)
        assert reach["waits"] >= 4.0 and reach.get("lists", 4.0) >= 4.0, (w, h, n, reach)
    _clear(live, range(1, 7))


def test_called_serving_and_absent_are_separate_lists_and_cards_name_the_department(live, context):
    page = context.new_page()
    page.goto(board_url(live, mute="1"))
    page.wait_for_function("window.__link && window.__link.state === 'online'")
    a = _call_at(live, 5)
    card = page.locator(f'.call-card[data-number="{a["number"]}"]')
    card.wait_for()
    assert "国保年金課" in card.inner_text()  # the department on the card
    # service starts: the number leaves the calling area for 対応中
    as_counter(live, 5, ("start", {}))
    page.wait_for_selector(f'#serving li[data-number="{a["number"]}"]')
    assert page.locator(f'.call-card[data-number="{a["number"]}"]').count() == 0
    as_counter(live, 5, ("complete", {}))
    page.wait_for_function(f"!document.querySelector('#serving li[data-number=\"{a['number']}\"]')")
    # called, recalled twice, absent: on the short absent list, off the cards
    b = _call_at(live, 2)
    page.wait_for_selector(f'.call-card[data-number="{b["number"]}"]')
    as_counter(live, 2, ("recall", {}), ("recall", {}), ("no_show", {}))
    page.wait_for_selector(f'#absent li[data-number="{b["number"]}"]')
    assert page.locator(f'.call-card[data-number="{b["number"]}"]').count() == 0
    # a board opened now gets the same lists from the snapshot
    fresh = context.new_page()
    fresh.goto(board_url(live, mute="1"))
    fresh.wait_for_selector(f'#absent li[data-number="{b["number"]}"]')
    assert fresh.locator(f'.call-card[data-number="{b["number"]}"]').count() == 0


def test_screen_readers_hear_only_the_newest_call_and_text_has_enough_contrast(live, context):
    page = context.new_page()
    page.goto(board_url(live, mute="1", alt="ja-easy"))
    page.wait_for_function("window.__link && window.__link.state === 'online'")
    t = _call_at(live, 3)
    page.wait_for_selector(f'.call-card[data-number="{t["number"]}"]')
    live_regions = page.eval_on_selector_all("[aria-live]", "els => els.map(e => e.id)")
    assert live_regions == ["speak"]
    assert page.locator("#speak").inner_text() == f"{t['number']}番の方、3番窓口へ"
    # やさしい日本語 is tagged as Japanese with a class; every second-language span carries lang
    langs = page.eval_on_selector_all(".alt", "els => els.filter(e => e.textContent.trim()).map(e => e.lang)")
    assert langs and all(lang == "ja" for lang in langs)
    assert page.locator(".alt.easy").count() > 0
    assert page.locator('[lang="ja-easy"]').count() == 0
    low = page.evaluate(CONTRAST_JS, "body")
    assert not low, low
    _clear(live, [3])


CONTRAST_JS = """(root) => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const bg = (e) => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3); } return [255, 255, 255]; };
  const out = [];
  const walker = document.createTreeWalker(document.querySelector(root || 'body'), NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const n = walker.currentNode, e = n.parentElement;
    if (!n.textContent.trim() || !e.offsetParent || e.closest('.sr-only')) continue;
    if (getComputedStyle(e.closest('main') || e).opacity < 1) continue;  // stale content, dimmed on purpose
    const a = lum(rgb(getComputedStyle(e).color)), b = lum(bg(e));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) out.push(`${n.textContent.trim().slice(0, 20)}: ${ratio.toFixed(2)}`);
  }
  return out;
}"""


def test_a_wrong_token_says_so_and_stops(live, context):
    page = context.new_page()
    page.goto(f"{live.http}/board/?site=honcho&token=wrong")
    page.wait_for_selector("#offline:not([hidden])")
    text = page.locator("#offline").inner_text()
    assert "トークンが正しくありません" in text and "再接続中" not in text
    assert page.evaluate("window.__link.stopped") is True
    assert page.locator("#conn-state").inner_text() == "停止"
    assert not page.evaluate(CONTRAST_JS, "#offline")  # the red banner is readable
    shot(page, "board-bad-token")


def test_a_burst_of_twelve_calls_is_announced_in_order_within_the_stated_time(live, context):
    tickets = {n: run(_ticket_for(live, COUNTER_DEPT[n])) for n in range(1, 13)}
    # the voice is made in advance (the test is about the board's queue, not synthesis speed)
    ann = Announcer(ROOT_AUDIO)
    for n, t in tickets.items():
        ann.synthesise(t["number"], n)
    page = context.new_page()
    page.goto(board_url(live, speed="4"))
    page.wait_for_function("window.__link && window.__link.state === 'online'")

    async def burst():
        clients = []
        for n in tickets:
            c, _ = await Client.open(live.url, role="counter", site="honcho", counter=n,
                                     token=live.tokens().counters["honcho"][n], staff="試験")
            await c.ok("open")
            clients.append((n, c))
        await asyncio.gather(*(c.ok("call", ticket=tickets[n]["id"]) for n, c in clients))
        for _, c in clients:
            await c.close()

    run(burst())
    page.wait_for_function("window.__announcements.length === 12 && window.__announcements.every(e => e.end || e.skipped)",
                           timeout=90000)
    log = page.evaluate("window.__announcements")
    assert not [e for e in log if e.get("skipped")], log
    assert sorted(e["number"] for e in log) == sorted(t["number"] for t in tickets.values())
    assert [e["seq"] for e in log] == sorted(e["seq"] for e in log)  # in call order
    for first, second in zip(log, log[1:], strict=False):
        assert second["start"] >= first["end"] - 1, "announcements overlapped"
    # the first call may have started alone (full phrase); once calls queue up: one chime, then
    # the short form of each
    assert all(e["ok"] for e in log)
    assert all(e["form"] == "short" for e in log[1:]) and sum(1 for e in log if e.get("chime")) <= 1

    def seconds(e):
        phrase = short_phrase(e["number"], e["counter"]) if e["form"] == "short" else call_phrase(e["number"], e["counter"])
        return wav_seconds(ROOT_AUDIO / phrase.name) + (len(chime()) / 24000 if e.get("chime") else 0.0)

    audio_seconds = sum(seconds(e) for e in log)
    print(f"12 calls announced in {audio_seconds:.1f} s of audio at 1x (a full call is "
          f"{wav_seconds(ROOT_AUDIO / call_phrase(log[0]['number'], log[0]['counter']).name):.1f} s)")
    assert audio_seconds < 45.0  # docs/web.md: a burst of 12 is announced within 45 s
    _clear(live, range(1, 13))
