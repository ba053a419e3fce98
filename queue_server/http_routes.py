"""The HTTP side of the server's port: the pages (static files), /healthz, /metrics, the
catalogue's names, the planning page, a ticket's list (list.json) and the admin's KPI API.
``/ws`` is left to the websocket handshake."""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request as HttpRequest
from websockets.http11 import Response

from . import leader, plan_page
from .http_files import redirect, response, static
from .kpi_report import api_reply
from .visit_list import http_reply

if TYPE_CHECKING:
    from .server import QueueServer

ROOT = Path(__file__).resolve().parent.parent
WEB_ROOTS = {
    "/board/": ROOT / "display_board" / "web",
    "/counter/": ROOT / "counter" / "web",
    "/status/": ROOT / "display_board" / "status_web",
    "/admin/": ROOT / "counter" / "admin_web",
    "/plan/": ROOT / "display_board" / "plan_web",  # the public planning page (docs/planning.md)
    "/forms/": ROOT / "counter" / "forms_web",
    "/consult/": ROOT / "counter" / "consult_web",
}


def process_request(server: QueueServer, connection: ServerConnection, request: HttpRequest) -> Response | None:
    """Answer a plain HTTP request, or None to go on with the websocket handshake (``/ws``)."""
    path = request.path.split("?", 1)[0]
    lead = leader.health(server.lease, serving=server.serving)
    if not lead["ok"] and path != "/healthz":  # a standby, a loading or a lost leader serves nothing
        return response(HTTPStatus.SERVICE_UNAVAILABLE, f"{lead['state']}: not the leader".encode(), "text/plain")
    if path == "/ws":
        return None
    if path == "/healthz":
        body = server.health()
        body["leader"] = lead
        body["ok"] = body["ok"] and lead["ok"]
        status = HTTPStatus.OK if body["ok"] else HTTPStatus.SERVICE_UNAVAILABLE
        return response(status, json.dumps(body).encode(), "application/json")
    if path == "/metrics":
        return response(HTTPStatus.OK, server.metrics.text(server).encode(), "text/plain; version=0.0.4")
    if path == "/catalogue.json":
        return response(HTTPStatus.OK, catalogue_json(server), "application/json; charset=utf-8")
    if path.startswith("/plan/"):  # the planning page: the first screen in one response, the QR
        return plan_page.static(server, request, path)
    if path == "/status/list.json":  # the personal list of a ticket (queue_server/visit_list.py)
        return _list_json(server, request)
    if path == "/admin/api/kpi":
        return _kpi_api(server, request)  # a coroutine: websockets awaits it, the loop keeps serving
    if path == "/":
        links = "".join(f'<li><a href="{p}">{p}</a></li>' for p in WEB_ROOTS)
        return response(HTTPStatus.OK, f"<!doctype html><meta charset=utf-8><title>madoguchi</title><ul>{links}</ul>".encode(), "text/html; charset=utf-8")
    for prefix, root in WEB_ROOTS.items():
        if path == prefix.rstrip("/"):
            return redirect(prefix)
        if path.startswith(prefix):
            return static(root, path[len(prefix):] or "index.html")
    if path.startswith("/audio/"):
        return static(ROOT / "var" / "audio", path[len("/audio/"):])
    return response(HTTPStatus.NOT_FOUND, b"not found", "text/plain")


async def _kpi_api(server: QueueServer, request: HttpRequest) -> Response:
    """The admin page's KPI report (docs/kpi.md): JSON, one CSV table, or the workbook.

    The admin token comes in ``Authorization: Bearer …`` (or ``?token=`` for a plain link);
    the queries run in a worker thread on a read connection, never on the event loop.
    """
    query = {k: v[-1] for k, v in parse_qs(urlsplit(request.path).query).items()}
    auth = request.headers.get("Authorization", "")
    token = auth[7:] if auth.startswith("Bearer ") else query.pop("token", None)
    if not server.tokens.check("admin", token):
        return response(HTTPStatus.UNAUTHORIZED, b'{"error": "admin token required"}', "application/json")
    status, body, ctype, name = await asyncio.to_thread(api_reply, query, server.store.engine, server.city, server.clock())
    extra = {"Content-Disposition": f'attachment; filename="{name}"'} if name else None
    return response(HTTPStatus(status), body, ctype, extra)


def _list_json(server: QueueServer, request: HttpRequest) -> Response:
    status, body = http_reply(server, {k: v[-1] for k, v in parse_qs(urlsplit(request.path).query).items()})
    return response(HTTPStatus(status), body, "application/json; charset=utf-8")


def catalogue_json(server: QueueServer) -> bytes:
    """Procedure and document names for the counter console, built once (the catalogue is fixed)."""
    if server.catalogue_cache is None:
        server.catalogue_cache = _catalogue_names(server.catalogue)
    return server.catalogue_cache


def _catalogue_names(catalogue: Any) -> bytes:
    """Procedure and document names for the counter console (ticket views carry only ids).
    Public catalogue text: nothing personal."""
    body: dict[str, Any] = {"procedures": {}, "documents": {}}
    if catalogue is not None:
        body["procedures"] = {
            k: {"name": dict(p.name), "department": p.department, "documents": list(p.documents), "minutes": p.minutes}
            for k, p in catalogue.procedures.items()
        }
        body["documents"] = {k: dict(d.name) for k, d in catalogue.documents.items()}
    return json.dumps(body, ensure_ascii=False).encode()
