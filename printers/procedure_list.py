"""The personal procedure list (個人別手続きリスト) printed on the thermal roll after the ticket.

Pure layout (``list_blocks``) from the server's ``issue`` reply: procedures per department in
visiting order, deadlines, documents, online alternatives, external offices. Translated department
names keep the Japanese name beside them so the citizen can match the signs in the hall. Paper has
no ruby: catalogue readings {市民課|しみんか} print as 市民課（しみんか）. The blocks go through the
same two renderers as the ticket.

Whether it prints is config: ``[printing] list = "always" | "on_request" | "never"`` in
config/printing.toml (default "always"); with ``on_request`` the kiosk does not print it (the
counter prints it on A4 when the citizen asks, the phone page shows it); a kiosk button is to come.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from printers.layout import Block, Rule, Space, TextLine
from queue_server.core import ruby
from queue_server.core.i18n import LANGUAGES, Messages, pick
from queue_server.loaders import load_messages

MESSAGES_PATH = Path(__file__).with_name("procedure_list.toml")
LIST_MODES = ("always", "on_request", "never")


@lru_cache(maxsize=1)
def list_messages() -> Messages:
    return load_messages(MESSAGES_PATH)


def list_mode(config_dir: Path) -> str:
    """``[printing] list`` from config/printing.toml; a bad value is an error naming the file."""
    path = Path(config_dir) / "printing.toml"
    if not path.exists():
        return "always"
    with path.open("rb") as f:
        mode = tomllib.load(f).get("printing", {}).get("list", "always")
    if mode not in LIST_MODES:
        raise ValueError(f"{path}: [printing] list = {mode!r} is not one of {', '.join(LIST_MODES)}")
    return mode


def _dept_label(route_name: Mapping[str, str] | None, fallback: str, lang: str) -> str:
    """'Citizens Division（市民課）' in a translation, the Japanese name alone in Japanese."""
    names = route_name or {}
    here = ruby.bracketed(pick(names, lang)) if names else fallback
    ja = ruby.bracketed(names.get("ja", "")) if names else ""
    if lang in ("ja", "ja-easy") or not ja or ja == here:
        return here or fallback
    return f"{here}（{ja}）"


def list_blocks(result: Mapping[str, Any], lang: str, messages: Messages | None = None) -> list[Block]:
    """The personal list as printable blocks, top to bottom, in ``lang`` (an unknown one prints English)."""
    messages = messages or list_messages()
    lang = lang if lang in LANGUAGES else "en"
    m = messages.get
    plan = result.get("plan") or {}
    steps = {s["department"]: s for s in plan.get("steps", [])}
    sep = m("list.list_separator", lang)
    blocks: list[Block] = [TextLine(m("list.heading", lang), style="title", align="center"),
                           TextLine(m("list.intro", lang), style="small"), Rule()]
    order = [r["department"] for r in result.get("route", [])] or list(steps)
    names = {r["department"]: r.get("name") for r in result.get("route", [])}
    for n, dept in enumerate(order, start=1):
        step = steps.get(dept)
        if step is None:
            continue
        label = _dept_label(names.get(dept), ruby.bracketed(step.get("department_name") or dept), lang)
        blocks.append(TextLine(m("list.step", lang, n=n, department=label), style="heading"))
        for p in step.get("procedures", []):
            name = ruby.bracketed(p["name"]) + (" " + m("list.to_confirm", lang) if p.get("to_confirm") else "")
            blocks.append(TextLine(name, marker="■"))
            if p.get("deadline"):
                blocks.append(TextLine(m("list.deadline", lang, deadline=ruby.bracketed(p["deadline"])), style="small", marker="　"))
            docs = [ruby.bracketed(d["name"]) for d in p.get("documents", [])]
            if docs:
                blocks.append(TextLine(m("list.documents", lang, documents=sep.join(docs)), style="small", marker="　"))
            alt = p.get("alternative")
            if alt:
                text = ruby.bracketed(alt.get("text") or alt.get("kind") or "")
                blocks.append(TextLine(m("list.online", lang, text=text), style="small", marker="　"))
        blocks.append(Space(0.3))
    external = plan.get("external") or []
    if external:
        blocks.append(Rule())
        blocks.append(TextLine(m("list.external_heading", lang), style="heading"))
        for e in external:
            blocks.append(TextLine(ruby.bracketed(e["name"]), marker="■"))
            if e.get("where"):
                blocks.append(TextLine(m("list.where", lang, where=ruby.bracketed(e["where"])), style="small", marker="　"))
            if e.get("deadline"):
                blocks.append(TextLine(m("list.deadline", lang, deadline=ruby.bracketed(e["deadline"])), style="small", marker="　"))
    return blocks


def render_list_bytes(result: Mapping[str, Any], lang: str, renderer: str = "image", width: int = 576) -> bytes:
    """The ESC/POS bytes of the list (both renderers, as the ticket). No I/O."""
    from printers.escpos_bytes import encode

    blocks = list_blocks(result, lang)
    if renderer == "kanji":
        from printers.render_kanji import render_kanji_ops

        ops = render_kanji_ops(blocks, width, lang)
    else:
        from printers.render_image import render_image_ops

        ops = render_image_ops(blocks, width, lang)
    return encode(ops, width)


def print_list(printer_url: str, result: Mapping[str, Any], lang: str, renderer: str = "image", width: int = 576,
               timeout: float = 5.0) -> None:
    """Send the list to the printer after the ticket (same device, same deadline rules)."""
    from printers import backends
    from printers.printing import send_job

    target = backends.parse_printer_url(printer_url)
    data = render_list_bytes(result, lang, renderer, width)
    if target.kind == "file" and Path(target.path).is_file():
        # a plain file stands for the roll (tests, demos): python-escpos would truncate it on open
        # and lose the ticket printed just before, so the list is appended after it
        with open(target.path, "ab") as f:
            f.write(data)
        return
    send_job(target, data, timeout, None)
