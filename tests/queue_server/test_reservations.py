"""来庁予約: an admin books a slot; the citizen checks in at the kiosk with the code."""

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

from tests.support.live_server import Client

from .test_server_integration import counter, issue, kiosk


def test_reservation_check_in_gets_priority_when_its_slot_is_due(live):
    async def scenario():
        admin, _ = await Client.open(live.url, role="admin", token=live.tokens().roles["admin"], site="honcho")
        now = datetime.now(ZoneInfo("Asia/Tokyo"))
        booked = await admin.ok("reserve", day=now.date().isoformat(), start=now.strftime("%H:%M"), minutes=60,
                                purposes=["death"])
        code = booked["reservation"]["code"]
        assert len(code) == 6 and code.isdigit()
        k = await kiosk(live)
        walk_in = await issue(k, "walk-in", purposes=("death",))
        checked_in = await k.ok("issue", reservation_code=code, lang="ja", idempotency_key="res-1")
        assert checked_in["ticket"]["number"].startswith("R")
        again = await k.request("issue", reservation_code=code, lang="ja", idempotency_key="res-2")
        assert again["error"]["code"] == "reservation_used"
        wrong = await k.request("issue", reservation_code="999999x", lang="ja", idempotency_key="res-3")
        assert wrong["error"]["code"] == "unknown_reservation" and wrong["error"]["field"] == "reservation_code"
        c1 = await counter(live, 1)
        first = await c1.ok("call_next")
        assert first["ticket"]["id"] == checked_in["ticket"]["id"]  # due reservation before the earlier walk-in
        assert walk_in["ticket"]["id"] != first["ticket"]["id"]
        listed = await admin.ok("reservations")
        assert listed["reservations"][0]["ticket"] == checked_in["ticket"]["id"]
        bad = await admin.request("reserve", day="tomorrow", start="09:00", purposes=["death"])
        assert bad["error"]["field"] == "day"

    asyncio.run(scenario())
