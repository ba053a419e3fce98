"""The kiosk's websocket client: an asyncio loop in its own thread, never on the UI thread.

The UI calls plain methods (:meth:`KioskClient.plan`, :meth:`issue`, :meth:`help`, …) that return
at once; results come back as kiosk.flow events through ``on_event``, called *on the client's
thread* (the Kivy shell re-posts them to its own thread with ``Clock.schedule_once``).

Guarantees:

- Reconnect with backoff (0.5 s, 1, 2, 4, 8, then 15 s) after a refused connection, a dropped
  socket, a ping that gets no answer, or a request that gets no reply in ``request_timeout``.
  ``Connected`` / ``Disconnected(retry_in)`` events say which.
- One pending ``issue`` at a time, sent again with the *same* idempotency key on every new
  connection until it is answered: the server returns the first reply for a repeated key, so the
  ticket is created once and ``IssueSucceeded`` is emitted exactly once. :meth:`abandon` gives it
  up; a reply that still arrives for it afterwards is dropped.
- ``help`` and ``device_fault`` alerts wait in an outbox while offline and are sent on reconnect.
- A ``busy`` answer (the server is overloaded and applied nothing) is retried with the same key
  after the server's ``retry_after``, backed off and jittered (:func:`busy_delay`) so a hall of
  kiosks does not come back in step; after ``BUSY_NOTICE`` busy answers in a row for one ticket,
  ``IssueBusy`` lets the screen tell the citizen why it takes long.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import threading
from collections.abc import Callable, Mapping
from typing import Any

from kiosk.flow import (
    Connected,
    Disconnected,
    Event,
    IssueBusy,
    IssueFailed,
    IssueSucceeded,
    PlanFailed,
    PlanReceived,
    ReprintRequested,
    StorageChanged,
)

log = logging.getLogger(__name__)

BACKOFF: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
#: Error codes after which nothing was written and the same request may simply be sent again.
TRANSIENT = frozenset({"storage_error", "internal"})
BUSY_NOTICE = 3  # busy answers in a row for one ticket before the citizen is told it is busy
BUSY_MAX_DELAY = 15.0  # seconds: the longest wait between two attempts after busy


def busy_delay(retry_after: float, attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait before sending a request again after its ``attempt``-th busy answer (from 0):
    the server's hint, doubled per attempt up to 8×, times a random 1–2 (jitter), at most
    BUSY_MAX_DELAY."""
    return min(BUSY_MAX_DELAY, max(0.05, retry_after) * min(2 ** attempt, 8) * (1.0 + rng()))


class RequestFailed(Exception):
    """The server answered with an error object."""

    def __init__(self, code: str, message: str = "", retry_after: float = 0.0):
        self.code = code
        self.retry_after = retry_after  # seconds, on ``busy``
        super().__init__(f"{code}: {message}")


class KioskClient:
    """Talks to the queue server for one kiosk. Thread-safe public methods; start() once."""

    def __init__(
        self,
        url: str,
        device: str,
        token: str,
        on_event: Callable[[Event], None],
        *,
        site: str | None = None,
        backoff: tuple[float, ...] = BACKOFF,
        request_timeout: float = 5.0,
        ping_interval: float = 5.0,
    ):
        self.url = url
        self.device = device
        self._token = token
        self.site = site
        self.on_event = on_event
        self.backoff = backoff
        self.request_timeout = request_timeout
        self.ping_interval = ping_interval
        self.online = False
        self.storage_ok = True  # the server's ``storage`` flag: False while it cannot save tickets
        self.hello: Mapping[str, Any] | None = None  # the last hello result (board snapshot)
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ws: Any = None
        self._waiting: dict[int, asyncio.Future] = {}
        self._pending: dict[str, Any] | None = None  # the issue request being completed
        self._issue_task: asyncio.Task | None = None
        self._outbox: list[tuple[str, dict[str, Any]]] = []
        self._busy: dict[str, int] = {}  # idempotency key -> busy answers so far (kept across reconnects)
        self._stop: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._ready = threading.Event()

    def __repr__(self) -> str:  # the token stays out of logs
        return f"KioskClient({self.url!r}, device={self.device!r}, online={self.online})"

    # ---------------------------------------------------------------- life cycle (any thread)
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kiosk-ws", daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.run(self._main())

    def _call(self, fn: Callable[[], None]) -> None:
        if self._loop is None:
            raise RuntimeError("KioskClient.start() was not called")
        try:
            self._loop.call_soon_threadsafe(fn)
        except RuntimeError:  # the loop has ended (kiosk shutting down): nothing left to send
            log.info("kiosk: client stopped; request dropped")

    # ---------------------------------------------------------------- public requests (any thread)
    def plan(self, seq: int, purposes: tuple[str, ...], answers: Mapping[str, str], lang: str,
             reservation_code: str | None = None) -> None:
        """Ask for the list with waits; PlanReceived(seq, result) or PlanFailed(seq, code) follows.
        With ``reservation_code`` the server plans that booking (its purposes and answers)."""
        body: dict[str, Any] = {"purposes": list(purposes), "answers": dict(answers), "lang": lang}
        if reservation_code is not None:
            body = {"reservation_code": reservation_code, "lang": lang}
        self._call(lambda: self._spawn(self._plan(seq, body)))

    def issue(self, request: Mapping[str, Any]) -> None:
        """Issue a ticket, retried with the same key until answered (replaces no other pending issue)."""
        req = dict(request)

        def go() -> None:
            if self._pending is not None and self._pending["idempotency_key"] != req["idempotency_key"]:
                log.warning("kiosk: new issue %s replaces unfinished %s", req["idempotency_key"],
                            self._pending["idempotency_key"])
            self._pending = req
            self._kick_issue()

        self._call(go)

    def abandon(self, key: str) -> None:
        """Give up the pending issue ``key``: no IssueSucceeded/IssueFailed will follow for it."""

        def go() -> None:
            if self._pending is not None and self._pending["idempotency_key"] == key:
                log.info("kiosk: issue %s abandoned", key)
                self._pending = None

        self._call(go)

    def help(self, reason: str = "staff_help") -> None:
        self._call(lambda: self._queue_alert("help", {"reason": reason}))

    def fault(self, device_kind: str, code: str, detail: str = "") -> None:
        body = {"device_kind": device_kind, "code": code, "detail": detail[:500]}
        self._call(lambda: self._queue_alert("device_fault", body))

    def print_result(self, ticket: str, printed: bool, code: str = "", job: str = "") -> None:
        """How a ticket's print ended (queue_server/reprint.py); kept in the outbox while offline."""
        body: dict[str, Any] = {"ticket": ticket, "printed": printed}
        if code:
            body["code"] = code
        if job:
            body["job"] = job
        self._call(lambda: self._queue_alert("print_result", body))

    # ---------------------------------------------------------------- the loop (client thread)
    async def _main(self) -> None:
        from websockets.asyncio.client import connect

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._ready.set()
        attempt = 0
        while not self._stop.is_set():
            try:
                async with connect(
                    self.url, open_timeout=self.request_timeout, ping_interval=self.ping_interval,
                    ping_timeout=self.ping_interval, compression=None, close_timeout=1,
                ) as ws:
                    self._ws = ws
                    reader = asyncio.create_task(self._read(ws))
                    try:
                        await self._hello()
                        attempt = 0
                        self._set_online(True)
                        self._kick_issue()
                        self._flush_outbox()
                        stop = asyncio.create_task(self._stop.wait())
                        await asyncio.wait({reader, stop}, return_when=asyncio.FIRST_COMPLETED)
                        stop.cancel()
                    finally:
                        reader.cancel()
                        self._ws = None
            except asyncio.CancelledError:  # pragma: no cover - loop shut down
                raise
            except RequestFailed as e:
                # hello refused (bad_token, unknown_site): a configuration fault staff must fix;
                # the kiosk keeps retrying so a corrected server config is picked up.
                log.error("kiosk: the server refused hello: %s (check --device, --site and the kiosk token)", e.code)
            except Exception as e:  # noqa: BLE001 - any network failure means: retry later
                log.info("kiosk: connection to %s failed: %s", self.url, type(e).__name__)
            self._fail_waiters()
            if self._stop.is_set():
                break
            delay = self.backoff[min(attempt, len(self.backoff) - 1)]
            attempt += 1
            self._set_online(False, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
        self._set_online(False)

    def _set_online(self, online: bool, retry_in: float = 0.0) -> None:
        changed = online != self.online
        self.online = online
        if online and changed:
            self.on_event(Connected())
        elif not online:
            self.on_event(Disconnected(retry_in))

    async def _hello(self) -> None:
        body: dict[str, Any] = {"role": "kiosk", "device": self.device, "token": self._token}
        if self.site:
            body["site"] = self.site
        self.hello = await self._request("hello", body)
        self._set_storage((self.hello.get("storage") or {}).get("ok", True))

    def _set_storage(self, ok: bool) -> None:
        if ok != self.storage_ok:
            self.storage_ok = ok
            self.on_event(StorageChanged(ok))

    async def _read(self, ws: Any) -> None:
        async for raw in ws:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if msg.get("push") == "storage" and isinstance(msg.get("data"), dict):
                self._set_storage(bool(msg["data"].get("ok", True)))
                continue
            if msg.get("push") == "reprint" and isinstance(msg.get("data"), dict):  # a console's job
                d = msg["data"]
                if isinstance(d.get("result"), dict) and d.get("job"):
                    self.on_event(ReprintRequested(str(d["job"]), d["result"], str(d.get("lang") or "ja")))
                continue
            fut = self._waiting.pop(msg.get("re"), None) if "re" in msg else None
            if fut is not None and not fut.done():
                fut.set_result(msg)

    def _fail_waiters(self) -> None:
        waiting, self._waiting = self._waiting, {}
        for fut in waiting.values():
            if not fut.done():
                fut.set_exception(ConnectionError("connection closed"))

    async def _request(self, type_: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        ws = self._ws
        if ws is None:
            raise ConnectionError("offline")
        rid = next(self._ids)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        try:
            await ws.send(json.dumps({"type": type_, "id": rid, **body}, ensure_ascii=False))
            reply = await asyncio.wait_for(fut, self.request_timeout)
        except TimeoutError:
            # A server that stops answering is treated as gone: reconnecting is the cure.
            self._waiting.pop(rid, None)
            await ws.close()
            raise ConnectionError(f"no reply to {type_} within {self.request_timeout} s") from None
        if "error" in reply:
            err = reply["error"] or {}
            retry = err.get("retry_after")
            raise RequestFailed(str(err.get("code", "internal")), str(err.get("message", "")),
                                float(retry) if isinstance(retry, int | float) else 0.0)
        return reply.get("result") or {}

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        task.add_done_callback(_log_crash)
        return task

    async def _plan(self, seq: int, body: dict[str, Any]) -> None:
        if not self.online:
            self.on_event(PlanFailed(seq, "offline"))
            return
        try:
            result = await self._request("plan", body)
        except RequestFailed as e:
            self.on_event(PlanFailed(seq, e.code))
        except ConnectionError:
            self.on_event(PlanFailed(seq, "offline"))
        else:
            self.on_event(PlanReceived(seq, result))

    def _kick_issue(self) -> None:
        if self._pending is None or self._ws is None or not self.online:
            return  # sent on the next connection, after its hello
        if self._issue_task is not None and not self._issue_task.done():
            return  # already in flight on this connection
        self._issue_task = self._spawn(self._send_issue(self._pending))

    async def _send_issue(self, req: dict[str, Any]) -> None:
        key = req["idempotency_key"]
        while self._pending is req:
            if not self.storage_ok:  # the server cannot save it now: hold it, the push says when
                await asyncio.sleep(0.5)
                continue
            try:
                result = await self._request("issue", req)
            except RequestFailed as e:
                if e.code == "busy":  # nothing was created: the same key again, later
                    busy = self._busy.get(key, 0)
                    self._busy[key] = busy + 1
                    if busy + 1 == BUSY_NOTICE:
                        self.on_event(IssueBusy(key))
                    await asyncio.sleep(busy_delay(e.retry_after, busy))
                    continue
                if e.code in TRANSIENT:
                    await asyncio.sleep(1.0)
                    continue
                self._busy.pop(key, None)
                if self._pending is req:
                    self._pending = None
                    self.on_event(IssueFailed(key, e.code))
                return
            except ConnectionError:
                return  # the reconnect sends it again, same key
            self._busy.pop(key, None)
            if self._pending is req:
                self._pending = None
                self.on_event(IssueSucceeded(key, result))
            return
        self._busy.pop(key, None)  # abandoned

    def _queue_alert(self, type_: str, body: dict[str, Any]) -> None:
        self._outbox.append((type_, body))
        self._flush_outbox()

    def _flush_outbox(self) -> None:
        if self._ws is None or not self.online or not self._outbox:
            return
        items, self._outbox = self._outbox, []
        for type_, body in items:
            self._spawn(self._send_alert(type_, body))

    async def _send_alert(self, type_: str, body: dict[str, Any]) -> None:
        for attempt in itertools.count():
            try:
                await self._request(type_, body)
            except ConnectionError:
                self._outbox.append((type_, body))  # once more after the reconnect
            except RequestFailed as e:
                if e.code == "busy":  # nothing was done: a citizen's call for help is sent again
                    await asyncio.sleep(busy_delay(e.retry_after, attempt))
                    continue
                log.warning("kiosk: %s refused: %s", type_, e.code)
            return


def _log_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("kiosk client task failed", exc_info=task.exception())
