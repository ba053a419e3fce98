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


def test_the_limits_table_matches_the_schema():
    from queue_server.protocol import limits_table

    assert limits_table() in DOC, "docs/protocol.md Limits is stale: paste `python -m queue_server.protocol`"


def test_the_stated_sizes_are_the_enforced_ones():
    from queue_server import protocol as P

    section = DOC[DOC.index("## Limits"):]
    assert f"{P.MAX_MESSAGE_BYTES:,} bytes" in section and f"{P.MAX_FRAME_BYTES:,} bytes" in section
    assert f"at most {P.MAX_DEPTH} levels" in section and f"more than {P.MAX_INT_DIGITS} digits" in section
