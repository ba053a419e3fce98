"""docs/protocol.md and protocol.py must agree: every message type and error code is documented."""

from pathlib import Path

from queue_server.protocol import ALLOWED, ERROR_CODES, FIELDS, parse

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")


def test_every_message_type_is_documented():
    missing = [t for t in FIELDS if f"`{t}`" not in DOC and f"### {t}" not in DOC]
    assert not missing


def test_every_error_code_is_documented():
    assert not [c for c in ERROR_CODES if f"`{c}`" not in DOC]


def test_every_type_is_allowed_to_some_role():
    allowed = set().union(*ALLOWED.values()) | {"hello"}
    assert set(FIELDS) <= allowed


def test_documented_request_examples_parse():
    import json
    import re

    for line in re.findall(r'^\{"type": .*\}$', DOC, flags=re.M):
        if "…" in line:
            continue
        req = parse(line)
        assert req.type in FIELDS, line
        json.loads(line)
