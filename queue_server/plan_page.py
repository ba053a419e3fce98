"""The planning page's HTTP side (/plan/, docs/planning.md "Performance"): the first screen in ONE
response, and the page's other files.

On a phone over a slow network every round trip in a row costs more than the bytes
(bench/plan_bench.py): HTML → style sheet and scripts → message table → websocket → hello. So
``GET /plan/`` answers with everything the first screen needs: the style sheet and the script
inline, the message table of the citizen's language (``?lang``, else the language cookie the page
sets, else Accept-Language, else Japanese) and the planner's hello snapshot as JSON, and the life
events already drawn as HTML (so a browser without JavaScript still shows them, with a note that
the questions need JavaScript). The websocket opens after the first paint. The whole answer is
gzipped (~15 KiB: about the first TCP congestion window of a fresh connection) and carries an
ETag, so a repeat visit costs one 304.

The life events, their names and the booking rules come from the same snapshot as the websocket's
hello (planner_api.snapshot): the catalogue stays the only source; this module only draws them.
The other files (style sheet, scripts, ``messages.<lang>.json`` for a language change, the QR) are
served as before, gzipped and with ETags.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import mimetypes
import re
import weakref
from collections.abc import Mapping
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Response

from . import planner_api
from .core.i18n import LANGUAGES, pick
from .core.ruby import bracketed, to_html
from .http_files import SAFE_HEADERS, response
from .http_files import static as static_file

if TYPE_CHECKING:
    from .server import QueueServer

PAGE_ROOT = Path(__file__).resolve().parent.parent / "display_board" / "plan_web"
COMMON_JS = PAGE_ROOT.parent / "web" / "common.js"
LANG_COOKIE = "plan_lang"  # set by the page when the citizen picks a language (no other cookie)
# Accept-Language tags → the page's languages (zh-TW / zh-Hant read the simplified table rather
# than Japanese; pt-PT and pt-BR share one table). ja-easy is only ever chosen on the page.
_PRIMARY = {"ja": "ja", "en": "en", "zh": "zh", "ko": "ko", "vi": "vi", "pt": "pt"}
_IMPORT = re.compile(r'^import \{([^}]*)\} from "/plan/common\.js";\n', re.M)
_EXPORT = re.compile(r"^export (?=const |class |function |async function )", re.M)
_SLOT = re.compile(r"<!--(\w+)-->")

_files: dict[tuple[str, bool], tuple[float, bytes, str, str]] = {}
# per server (weak: keyed by the server itself, not its id(), which a later server may reuse)
_pages: weakref.WeakKeyDictionary[Any, dict[tuple[str | None, str, bool, bool], tuple[tuple[float, ...], bytes, str]]] = (
    weakref.WeakKeyDictionary())


# ------------------------------------------------------------------ pure parts
def choose_lang(query: str | None, cookie: str | None, accept: str | None) -> str:
    """The page's language: ``?lang``, else the cookie, else the first Accept-Language tag the page
    has (by q-value), else Japanese. Unknown values are ignored, never an error."""
    for wanted in (query, cookie):
        if wanted in LANGUAGES:
            return wanted  # type: ignore[return-value]
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        m = re.search(r"\bq=([^;\s]*)", params)
        if m:
            try:
                q = float(m.group(1))
            except ValueError:
                q = 0.0
        lang = _PRIMARY.get(tag.strip().lower().split("-")[0])
        if lang and q > 0:
            ranked.append((-q, i, lang))
    return min(ranked)[2] if ranked else "ja"


def cookie_value(header: str | None, name: str) -> str | None:
    """One cookie's value from a Cookie header (None when absent)."""
    for part in (header or "").split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


def messages_for(table: Mapping[str, Mapping[str, str]], lang: str) -> dict[str, dict[str, str]]:
    """The message table cut to one language; every language's own name stays (the language menu
    lists them all)."""
    return {k: dict(v) if k == "lang_name" else {lang: v[lang]} for k, v in table.items()}


def bundle(common_js: str, page_js: str) -> str:
    """common.js and plan.js as ONE inline module: plan.js's import of common.js is dropped and
    common.js's exports become plain declarations in the same module scope. Raises ValueError
    when the files no longer have that shape (an import of anything else, a name plan.js imports
    that common.js does not declare), so a change that would break the page fails loudly here."""
    imports = _IMPORT.findall(page_js)
    if len(imports) != 1 or re.search(r"^import ", _IMPORT.sub("", page_js), re.M):
        raise ValueError("plan.js must import exactly one line from /plan/common.js and nothing else")
    if re.search(r"^import |^export (default|\{|\*)", common_js, re.M):
        raise ValueError("common.js must have only `export const/class/function` declarations")
    declared = set(re.findall(r"^export (?:const|class|function|async function) (\w+)", common_js, re.M))
    missing = {n.strip() for n in imports[0].split(",") if n.strip()} - declared
    if missing:
        raise ValueError(f"plan.js imports {sorted(missing)} which common.js does not export")
    body = _EXPORT.sub("", common_js) + "\n" + _IMPORT.sub("", page_js)
    if "</script" in body.lower() or "<!--" in body:
        raise ValueError("the page's scripts may not contain '</script' or '<!--' (they are inlined)")
    return body


def slim_js(source: str) -> str:
    """The script without its comment lines, blank lines and indentation (~2 KiB less on the wire
    after gzip: what keeps the first screen near one TCP congestion window). Only whole lines go,
    so code is never cut; refused (ValueError) if a template literal spans lines, where a line's
    indentation would be text."""
    out, block = [], False
    for line in source.split("\n"):
        if line.count("`") % 2:
            raise ValueError(f"a template literal spans lines: {line.strip()[:60]!r}")
        t = line.strip()
        if block:
            block = "*/" not in t
            continue
        if t.startswith("/*"):
            block = "*/" not in t
            continue
        if t and not t.startswith("//"):
            out.append(t)
    return "\n".join(out)


def slim_css(source: str) -> str:
    """The style sheet without comments and indentation."""
    return "\n".join(t for line in re.sub(r"/\*.*?\*/", "", source, flags=re.S).split("\n") if (t := line.strip()))


def _t(msgs: Mapping[str, Mapping[str, str]], key: str, lang: str) -> str:
    texts = msgs.get(key)
    return pick(texts, lang) if texts else key


def first_screen(snapshot: Mapping[str, Any], site: str, msgs: Mapping[str, Mapping[str, str]],
                 lang: str) -> str:
    """The life-event view as HTML, the same elements plan.js's viewEvents draws (ids, classes,
    data-purpose), so the script takes over without a visible change. Catalogue names keep their
    ruby; everything is escaped."""
    e = html.escape
    out = []
    sites = snapshot.get("sites") or []
    if len(sites) > 1:
        opts = "".join(f'<option value="{e(x["key"])}"{" selected" if x["key"] == site else ""}>'
                       f'{e(bracketed(pick(x["name"], lang)))}</option>' for x in sites)
        out.append(f'<label class="row">{e(_t(msgs, "site", lang))}: <select id="site-pick">{opts}</select></label>')
    items = "".join(f'<label class="choice" data-purpose="{e(p["id"])}"><input type="checkbox">'
                    f'<span>{to_html(pick(p["name"], lang))}</span></label>' for p in snapshot["purposes"])
    out.append(f'<section><h2>{e(_t(msgs, "events_title", lang))}</h2><p class="hint">{e(_t(msgs, "events_hint", lang))}</p>'
               f'<div class="choices">{items}</div>'
               f'<button class="main" id="next" disabled>{e(_t(msgs, "next", lang))}</button></section>')
    if (snapshot.get("consult") or {}).get("topics"):
        out.append(f'<section id="consult-entry"><button class="alt" id="consult-start">'
                   f'{e(_t(msgs, "consult_start", lang))}</button></section>')
    return "".join(out)


def render(template: str, fill: Mapping[str, str]) -> str:
    """index.html with each ``<!--name-->`` slot replaced by ``fill[name]`` (already HTML). A slot
    without a value, or a value without a slot, is an error: the template and this module move
    together."""
    slots = set(_SLOT.findall(template))
    if slots != set(fill):
        raise ValueError(f"index.html slots {sorted(slots)} ≠ values {sorted(fill)}")
    return _SLOT.sub(lambda m: fill[m.group(1)], template)


def page_html(template: str, style: str, script: str, table: Mapping[str, Mapping[str, str]], lang: str,
              site: str | None, snapshot: Mapping[str, Any] | None, events: bool = True) -> str:
    """The whole first-screen document for one site and language (pure: text in, text out).
    ``events=False`` (a booking or list link, whose screen the script fetches): no life events."""
    e = html.escape
    msgs = messages_for(table, lang)
    boot = {"lang": lang, "site": site, "messages": msgs, "snapshot": snapshot}
    # JSON inside <script>: no "<" at all, so neither </script> nor <!-- can end or bend it
    boot_json = json.dumps(boot, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    langs = "".join(f'<option value="{x}"{" selected" if x == lang else ""}>{e(table["lang_name"][x])}</option>'
                    for x in LANGUAGES)
    return render(template, {
        "lang": e(lang), "title": e(_t(msgs, "title", lang)), "lead": e(_t(msgs, "lead", lang)),
        "language": e(_t(msgs, "language", lang)), "privacy": e(_t(msgs, "privacy", lang)),
        "noscript": e(_t(msgs, "noscript", lang)), "langs": langs,
        "site": e(bracketed(pick(snapshot["site_name"], lang))) if snapshot else "",
        "view": first_screen(snapshot, site or "", msgs, lang) if snapshot and events else "",
        "style": style, "script": script, "boot": boot_json,
    })


# ------------------------------------------------------------------ HTTP
def _query(request: Any) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(request.path).query).items()}


def _gzip_ok(request: Any) -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "")


def _cached_reply(request: Any, body: bytes, ctype: str, etag: str, gz: bool, vary: str) -> Response:
    """200 with the body, or 304 when the browser already holds this version (If-None-Match).
    ``no-cache``: the browser keeps the copy but asks each time — one small round trip that
    also picks up a changed catalogue or config at once."""
    headers = {"Cache-Control": "no-cache", "ETag": etag, "Vary": vary}
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return Response(HTTPStatus.NOT_MODIFIED.value, HTTPStatus.NOT_MODIFIED.phrase,
                        Headers({**headers, **SAFE_HEADERS}), b"")
    if gz:
        headers["Content-Encoding"] = "gzip"
    return response(HTTPStatus.OK, body, ctype, headers)


def _etag(raw: bytes, gz: bool) -> str:
    return f'"{hashlib.sha256(raw).hexdigest()[:20]}{"-gz" if gz else ""}"'


def page(server: QueueServer, request: Any) -> Response:
    """GET /plan/: the first screen in one response (see the module docstring)."""
    q = _query(request)
    lang = choose_lang(q.get("lang"), cookie_value(request.headers.get("Cookie"), LANG_COOKIE),
                       request.headers.get("Accept-Language"))
    wanted = q.get("site") or next(iter(server.hubs))
    hub = server.hubs.get(wanted)
    site = hub.key if hub is not None else None  # an unknown site: the script's hello names the error
    deep = bool(q.get("b") or q.get("p"))  # a booking or a list link: no life events to show
    gz = _gzip_ok(request)
    sources = (PAGE_ROOT / "index.html", PAGE_ROOT / "plan.css", PAGE_ROOT / "plan.js", COMMON_JS,
               PAGE_ROOT / "messages.json")
    mtimes = tuple(p.stat().st_mtime for p in sources)
    key = (site, lang, gz, deep)
    pages = _pages.setdefault(server, {})
    cached = pages.get(key)
    if cached is None or cached[0] != mtimes:
        template, style, page_js, common_js, table_text = (p.read_text(encoding="utf-8") for p in sources)
        snap = None if hub is None else {**planner_api.snapshot(server, hub), "site_key": site}
        raw = page_html(template, slim_css(style), slim_js(bundle(common_js, page_js)), json.loads(table_text),
                        lang, site, snap, events=not deep).encode()
        cached = (mtimes, gzip.compress(raw, 9, mtime=0) if gz else raw, _etag(raw, gz))
        if hub is not None:  # only real sites are kept (a query cannot grow the cache)
            pages[key] = cached
    _, body, etag = cached
    return _cached_reply(request, body, "text/html; charset=utf-8", etag, gz,
                         "Accept-Encoding, Accept-Language, Cookie")


def static(server: QueueServer, request: Any, path: str) -> Response:
    """Everything under /plan/: the first screen, the QR, the message table one language at a
    time (``messages.<lang>.json``, for a language change), the page's other files; gzipped when
    the browser accepts it, with an ETag."""
    rel = path[len("/plan/"):] or "index.html"
    if rel == "index.html":
        return page(server, request)
    if rel == "qr.svg":
        return planner_api.qr_response(request)
    source = COMMON_JS if rel == "common.js" else PAGE_ROOT / rel
    lang = None
    if rel.startswith("messages.") and rel.endswith(".json") and rel.count(".") == 2:
        lang, source = rel.split(".")[1], PAGE_ROOT / "messages.json"
        if lang not in LANGUAGES:
            return response(HTTPStatus.NOT_FOUND, b"no such language", "text/plain")
    gz = _gzip_ok(request)
    key = (rel, gz)
    try:
        mtime = source.stat().st_mtime
    except OSError:
        return static_file(PAGE_ROOT, rel)  # not ours: the plain handler answers (404, directory…)
    cached = _files.get(key)
    if cached is None or cached[0] != mtime:
        if lang is not None:
            table = json.loads(source.read_text(encoding="utf-8"))
            raw = json.dumps(messages_for(table, lang), ensure_ascii=False, separators=(",", ":")).encode()
        elif source == COMMON_JS or source.resolve().is_relative_to(PAGE_ROOT.resolve()):
            if not source.is_file():
                return static_file(PAGE_ROOT, rel)
            raw = source.read_bytes()
        else:
            return response(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
        ctype = mimetypes.guess_type(source.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
            ctype += "; charset=utf-8"
        _files[key] = cached = (mtime, gzip.compress(raw, 9, mtime=0) if gz else raw, ctype, _etag(raw, gz))
    _, body, ctype, etag = cached
    return _cached_reply(request, body, ctype, etag, gz, "Accept-Encoding")
