"""Browser tests: the real server in its own process, Debian's chromium driven by Playwright.

One server and one browser per test module (a browser start costs ~1 s of a shared 2-core machine);
each test gets fresh pages. Screenshots go to tests/screenshots/web/ (git-ignored) for review.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import shutil
from pathlib import Path

import pytest

from tests.support.live_server import Client, LiveServer

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
SHOTS = Path(__file__).resolve().parents[1] / "screenshots" / "web"
ROOT_AUDIO = Path(__file__).resolve().parents[2] / "var" / "audio"  # where the server caches announcements
_keys = itertools.count(1)



@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web")
    srv = LiveServer(db_url=f"sqlite:///{tmp / 'lobby.db'}", secrets=tmp / "secrets.toml", voice=True).start()
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which(CHROMIUM) or CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="ja-JP", timezone_id="Asia/Tokyo")
    yield ctx
    ctx.close()


def shot(page, name: str) -> Path:
    """Save a screenshot for review by eye."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def board_url(live: LiveServer, **extra: str) -> str:
    q = "&".join(f"{k}={v}" for k, v in {"site": "honcho", "token": live.tokens().roles["display"], **extra}.items())
    return f"{live.http}/board/?{q}"


def console_url(live: LiveServer, counter: int, **extra: str) -> str:
    tok = live.tokens().counters["honcho"][counter]
    q = "&".join(f"{k}={v}" for k, v in {"site": "honcho", "counter": counter, "token": tok, **extra}.items())
    return f"{live.http}/counter/?{q}"


def status_url(live: LiveServer, public_token: str) -> str:
    return f"{live.http}/status/?t={public_token}"


def run(coro):
    """Run a websocket coroutine to the end. Sync Playwright keeps an event loop running in this
    thread, so asyncio.run() must happen in another one."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=60)


async def _issue(live: LiveServer, purposes: list[str], site: str = "honcho", **kw) -> dict:
    k, r = await Client.open(live.url, role="kiosk", device="kiosk-1", token=live.tokens().roles["kiosk"], site=site)
    assert "result" in r, r
    try:
        return await k.ok("issue", purposes=purposes, answers={}, lang="ja", idempotency_key=f"web-{next(_keys)}-{id(live)}", **kw)
    finally:
        await k.close()


def issue(live: LiveServer, purposes: tuple[str, ...] = ("certificate",), **kw) -> dict:
    """Issue a ticket as the kiosk would; returns the issue result."""
    return run(_issue(live, list(purposes), **kw))


async def _as_counter(live: LiveServer, n: int, *requests: tuple[str, dict]) -> list[dict]:
    tok = live.tokens().counters["honcho"][n]
    c, r = await Client.open(live.url, role="counter", site="honcho", counter=n, token=tok, staff="試験")
    assert "result" in r, r
    try:
        return [await c.ok(t, **b) for t, b in requests]
    finally:
        await c.close()


def as_counter(live: LiveServer, n: int, *requests: tuple[str, dict]) -> list[dict]:
    """Send requests as counter ``n`` over a plain websocket (not a page)."""
    return run(_as_counter(live, n, *requests))


async def _kiosk_alert(live: LiveServer, kind: str, **body) -> None:
    k, _ = await Client.open(live.url, role="kiosk", device="kiosk-2", token=live.tokens().roles["kiosk"], site="honcho")
    await k.ok(kind, **body)
    await k.close()


def kiosk_alert(live: LiveServer, kind: str, **body) -> None:
    run(_kiosk_alert(live, kind, **body))
