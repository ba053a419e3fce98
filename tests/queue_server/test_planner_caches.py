"""planner_api's per-server caches (booking config, forecast profile) belong to their server: keyed
by the server itself, weakly, so a server made later in the same process (a test, a restart in
place) never reads an earlier server's entries through a reused id() and nothing outlives its server."""

from __future__ import annotations

import gc
import weakref

from queue_server import planner_api
from queue_server.server import QueueServer

from .writer_support import make_server


def test_the_booking_config_cache_lives_and_dies_with_its_server(tmp_path):
    gc.collect()
    before = len(planner_api._configs)
    qs = make_server(tmp_path, cls=QueueServer)
    cfg = planner_api.config(qs, "honcho")
    assert planner_api.config(qs, "honcho") is cfg  # parsed once per server and site
    assert qs in planner_api._configs and len(planner_api._configs) == before + 1
    gone = weakref.ref(qs)
    qs.store.engine.dispose()
    del qs
    gc.collect()
    assert gone() is None and len(planner_api._configs) == before  # its entry went with it
