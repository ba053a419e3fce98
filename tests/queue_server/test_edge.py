"""The edge: every request is checked against the schema before it reaches the core (issue 12).

Each finding of issue 12 ("What was seen" 1-4, 8) has a case here at the parse level; the live
server cases are in test_edge_live.py, the fuzz run in test_fuzz_live.py.
"""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queue_server import protocol as P
from queue_server.idempotency import idem_scope, scope_stored_key
from queue_server.tokens import Tokens


def refused(raw: str | bytes) -> P.ProtocolError:
    with pytest.raises(P.ProtocolError) as e:
        P.parse(raw)
    assert e.value.message and "\ud800" not in e.value.message
    return e.value


def add_procedure(minutes_literal: str) -> str:
    return '{"type":"add_procedure","id":7,"department":"shimin","procedures":["extra"],"minutes":' + minutes_literal + "}"


@pytest.mark.parametrize("literal", ["1e999", "-1e999", "NaN", "Infinity", "-Infinity", str(10**400), "-1", "0",
                                     "480.5", "true", '"8"', "[8]", "123456789012345678901234567890"])
def test_minutes_must_be_a_finite_number_in_range(literal):
    e = refused(add_procedure(literal))
    assert (e.code, e.field, e.re) == ("bad_field", "minutes", 7)
    assert "0 < x ≤ 480" in e.message


@pytest.mark.parametrize("literal", ["0.5", "8", "480"])
def test_minutes_in_range_pass(literal):
    assert P.parse(add_procedure(literal)).body["minutes"] == json.loads(literal)


@pytest.mark.parametrize(("mtype", "field", "body"), [
    ("help", "reason", {"reason": "\ud800"}),
    ("help", "reason", {"reason": "a\x00b"}),
    ("help", "reason", {"reason": "bell\x07"}),
    ("help", "reason", {"reason": "c1\x85"}),
    ("add_procedure", "procedures", {"department": "shimin", "procedures": ["ok", "\udfff"]}),
    ("add_procedure", "department", {"department": "shi\ud800min", "procedures": ["x"]}),
    ("open", "staff", {"staff": "佐藤\ud83d"}),
    ("issue", "answers", {"idempotency_key": "k", "purposes": ["death"], "answers": {"q": "\ud800"}}),
    ("issue", "answers", {"idempotency_key": "k", "purposes": ["death"], "answers": {"\ud800": "yes"}}),
    ("issue", "prefill", {"idempotency_key": "k", "purposes": ["death"], "prefill": {"name": "黒桐\x00"}}),
    ("issue", "purposes", {"idempotency_key": "k", "purposes": ["\ud800"]}),
    ("device_fault", "detail", {"device_kind": "printer", "code": "x", "detail": "\ud800"}),
    ("cancel", "reason", {"ticket": "abc", "reason": "\x1b[31m"}),
])
def test_text_is_valid_unicode_without_controls(mtype, field, body):
    raw = json.dumps({"type": mtype, "id": 1, **body})  # ensure_ascii: lone surrogates travel as "\ud800"
    e = refused(raw)
    assert (e.code, e.field) == ("bad_field", field), e.message


def test_valid_astral_text_and_multiline_detail_pass():
    r = P.parse(json.dumps({"type": "help", "id": 1, "reason": "😀 \ud83d\ude00"}))  # an escaped pair is one character
    assert r.body["reason"] == "😀 😀"
    r = P.parse(json.dumps({"type": "device_fault", "id": 1, "device_kind": "printer", "code": "paper_out",
                            "detail": "line 1\n\tline 2"}))
    assert r.body["detail"].count("\n") == 1


def test_text_lengths_are_stated_limits():
    assert P.parse(json.dumps({"type": "help", "id": 1, "reason": "あ" * 200}))
    e = refused(json.dumps({"type": "help", "id": 1, "reason": "あ" * 201}))
    assert e.field == "reason" and "200" in e.message


def test_twenty_thousand_brackets_answer_bad_json():
    for raw in ["[" * 20000 + "]" * 20000, '{"a":' * 10000 + "1" + "}" * 10000, "[" * 20000,
                '{"type":"help","id":1,"reason":' + "[" * 20000 + "]" * 20000 + "}"]:
        e = refused(raw)
        assert e.code == "bad_json" and "nested" in e.message


def test_depth_counts_only_brackets_outside_strings():
    reason = "[" * 150  # brackets inside a string are text, not nesting
    assert P.parse(json.dumps({"type": "help", "id": 1, "reason": reason})).body["reason"] == reason
    deep = json.dumps({"type": "ping", "id": 1, "x": json.loads("[" * (P.MAX_DEPTH - 1) + "]" * (P.MAX_DEPTH - 1))})
    assert refused(deep).code == "bad_field"  # depth within the limit: parsed, then refused as an unknown field
    deeper = json.dumps({"type": "ping", "id": 1, "x": json.loads("[" * P.MAX_DEPTH + "]" * P.MAX_DEPTH)})
    assert refused(deeper).code == "bad_json"


def test_frame_limit_counts_utf8_bytes():
    text = "酒" * 25000  # 25,000 characters but 75,000 bytes
    assert len(text) < P.MAX_MESSAGE_BYTES < len(text.encode())
    e = refused(json.dumps({"type": "help", "id": 1, "reason": text}, ensure_ascii=False))
    assert e.code == "too_large" and "bytes" in e.message
    assert refused(text.encode()).code == "too_large"


def test_binary_frames_must_be_utf8():
    assert P.parse(json.dumps({"type": "ping", "id": 1}).encode()).type == "ping"
    assert refused(b'{"type":"ping","id":1,"x":"\xff"}').code == "bad_json"


def test_a_request_without_id_is_refused():
    e = refused('{"type": "call_next"}')
    assert (e.code, e.field) == ("bad_field", "id")
    for rid in ["true", "1.5", '""', "[1]", "{}", str(2**53), '"' + "x" * 65 + '"', '"\\u0000"', "1e999", "NaN"]:
        e = refused('{"type": "ping", "id": ' + rid + "}")
        assert (e.code, e.field) == ("bad_field", "id"), rid


def test_idempotency_key_is_required_and_never_empty():
    e = refused(json.dumps({"type": "issue", "id": 3, "purposes": ["death"]}))
    assert (e.code, e.field, e.re) == ("missing_field", "idempotency_key", 3)
    for key in ["", " ", "a" * 57, "キー", "a/b"]:
        e = refused(json.dumps({"type": "issue", "id": 3, "purposes": ["death"], "idempotency_key": key}))
        assert (e.code, e.field) == ("bad_field", "idempotency_key"), key
    e = refused(json.dumps({"type": "call_next", "id": 4, "idempotency_key": ""}))
    assert (e.code, e.field) == ("bad_field", "idempotency_key")


def test_unknown_fields_and_wrong_types_are_named():
    e = refused(json.dumps({"type": "ping", "id": 1, "surprise": 1}))
    assert (e.code, e.field) == ("bad_field", "surprise")
    e = refused(json.dumps({"type": "issue", "id": 1, "idempotency_key": "k", "assistance": 1}))
    assert (e.code, e.field) == ("bad_field", "assistance")  # 1 is not a boolean
    e = refused(json.dumps({"type": "hello", "id": 1, "role": "kiosk", "counter": True}))
    assert (e.code, e.field) == ("bad_field", "counter")  # a boolean is not an integer
    e = refused(json.dumps({"type": "hello", "id": 1, "role": "superuser"}))
    assert (e.code, e.field) == ("bad_field", "role")
    e = refused(json.dumps({"type": "reserve", "id": 1, "day": "2026-02-30", "start": "10:00", "purposes": ["death"]}))
    assert (e.code, e.field) == ("bad_field", "day")
    e = refused(json.dumps({"type": "issue", "id": 1, "idempotency_key": "k", "prefill": {"name": "x", "card_pin": "1234"}}))
    assert (e.code, e.field) == ("bad_field", "prefill") and "1234" not in e.message
    e = refused(json.dumps({"type": "issue", "id": 1, "idempotency_key": "k", "lang": "xx"}))
    assert (e.code, e.field) == ("bad_field", "lang")


def test_device_names_are_text_without_colons():
    assert P.parse(json.dumps({"type": "hello", "id": 1, "role": "kiosk", "device": "本庁1F-発券機"})).body["device"]
    for bad in ["a:b", "x" * 33, "kiosk\n1", "\ud800"]:
        e = refused(json.dumps({"type": "hello", "id": 1, "role": "kiosk", "device": bad}))
        assert (e.code, e.field) == ("bad_field", "device"), bad


def test_non_ascii_tokens_are_just_wrong():
    tokens = Tokens(roles={"kiosk": "abc"}, counters={"honcho": {1: "def"}})
    for bad in ["é", "\ud800", "abc\x00", "ａｂｃ", ""]:
        assert not tokens.check("kiosk", bad)
        assert not tokens.check("counter", bad, "honcho", 1)
    assert tokens.check("kiosk", "abc") and tokens.check("counter", "def", "honcho", 1)
    # the schema lets any token string through to that check, so the answer is bad_token
    assert P.parse(json.dumps({"type": "hello", "id": 1, "role": "kiosk", "token": "\ud800é"})).body["token"]


def test_outgoing_messages_are_always_json():
    bad = P.reply(5, {"minutes": float("inf")})
    assert json.loads(bad, parse_constant=_no_constant)["error"]["code"] == "internal"
    assert json.loads(P.reply(6, {"x": "\ud800"}))["error"]["code"] == "internal"
    assert P.push("waits", "honcho", 3, [{"wait_minutes": float("nan")}]) is None
    ok = P.reply(7, {"name": "酒田"})
    assert json.loads(ok)["result"]["name"] == "酒田" and ok.encode("utf-8")
    err = P.error(None, "bad_field", "reason \ud800", "reason")  # even an error quoting a surrogate is ASCII JSON
    err.encode("utf-8")


def test_idempotency_keys_are_scoped_by_role_and_device():
    assert idem_scope("kiosk", "kiosk-1", None, "k1") == "kiosk:kiosk-1:k1"
    assert idem_scope("counter", "", 3, "k1") == "counter:3:k1"
    assert len({idem_scope("kiosk", "kiosk-1", None, "k"), idem_scope("kiosk", "kiosk-2", None, "k"),
                idem_scope("counter", "kiosk-1", 1, "k"), idem_scope("admin", "kiosk-1", None, "k")}) == 4
    # longest stored form fits the requests.key column (String(100))
    assert len(idem_scope("planner", "d" * 32, None, "k" * 56)) <= 100


def test_keys_stored_before_scoping_stay_loadable():
    issued = {"ticket": {"id": "t1", "public_token": "tok", "number": "1"}}
    assert scope_stored_key("kiosk-1-000001", issued, {"t1": "kiosk-1"}) == "kiosk:kiosk-1:kiosk-1-000001"
    assert scope_stored_key("kiosk:kiosk-1:k", issued, {}) == "kiosk:kiosk-1:k"  # already scoped
    assert scope_stored_key("kiosk:本庁1F-発券機:k", issued, {}) == "kiosk:本庁1F-発券機:k"
    assert scope_stored_key("old-call", {"ticket": {"id": "t1", "number": "1"}}, {"t1": "kiosk-1"}) is None
    assert scope_stored_key("old-issue", issued, {}) is None  # ticket of another day: not served again
    assert scope_stored_key("x", ["not", "a", "dict"], {}) is None


def _no_constant(name):
    raise ValueError(name)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(sorted({f for t in P.FIELDS.values() for f in t} | {"type", "id", "zz"}))


@settings(max_examples=400, deadline=None)
@given(mtype=st.sampled_from(sorted(P.FIELDS)), body=st.dictionaries(field_names, json_values, max_size=6),
       rid=json_values)
def test_parse_either_refuses_clearly_or_yields_a_sendable_body(mtype, body, rid):
    raw = json.dumps({**body, "type": mtype, "id": rid})
    try:
        req = P.parse(raw)
    except P.ProtocolError as e:
        assert e.code in P.ERROR_CODES and e.message
        P.error(e.re, e.code, e.message, e.field).encode("utf-8")
        return
    # accepted: everything in it is strict JSON and encodable, so it can be stored and pushed
    json.dumps(req.body, allow_nan=False, ensure_ascii=False).encode("utf-8")
    assert set(req.body) <= set(P.FIELDS[mtype])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_parse_of_any_bytes_raises_only_protocol_errors(raw):
    try:
        P.parse(raw)
    except P.ProtocolError as e:
        assert e.code in P.ERROR_CODES


def test_every_field_of_every_message_has_a_rule():
    from queue_server.schema import Field, Spec

    for mtype, table in P.FIELDS.items():
        for name, fld in table.items():
            assert isinstance(fld, Field) and isinstance(fld.spec, Spec), (mtype, name)
            assert fld.spec.describe()
