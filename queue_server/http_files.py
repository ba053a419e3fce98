"""HTTP answers for the routes: a response with its headers, a redirect, and a static file from a
page folder (never outside it)."""

from __future__ import annotations

import mimetypes
from http import HTTPStatus
from pathlib import Path

from websockets.datastructures import Headers
from websockets.http11 import Response

# On every answer: the board, console and admin pages carry their device token in the URL, so no
# address may leave in a Referer (a link, a font, a map someone adds later); nosniff keeps a
# browser from running a file served as text.
SAFE_HEADERS = {"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


def response(status: HTTPStatus, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> Response:
    headers = Headers({"Content-Type": ctype, "Content-Length": str(len(body)), "Cache-Control": "no-cache",
                       **SAFE_HEADERS})
    for k, v in (extra or {}).items():
        headers[k] = v
    return Response(status.value, status.phrase, headers, body)


def redirect(location: str) -> Response:
    return response(HTTPStatus.FOUND, b"", "text/plain", {"Location": location})


def static(root: Path, rel: str) -> Response:
    """The file ``rel`` under ``root`` (a folder's index.html), or 404 — also for a path that
    leads out of ``root``."""
    root = root.resolve()
    target = (root / rel).resolve()
    if target.is_dir():
        target = target / "index.html"
    if not target.is_relative_to(root) or not target.is_file():
        return response(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
    ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
        ctype += "; charset=utf-8"
    return response(HTTPStatus.OK, target.read_bytes(), ctype)
