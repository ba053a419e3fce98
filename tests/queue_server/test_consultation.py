"""Consultations, the pure parts: citizen keys, who sees what, sign-in slowing, sessions, passwords,
config checking, and the retention job on a real SQLite database with an injected clock."""

from __future__ import annotations

import tomllib

import pytest
from sqlalchemy import text

from queue_server import accounts
from queue_server import consultation_store as db
from queue_server.config import DEFAULT_CONFIG_DIR, load_city
from queue_server.core import consultation
from queue_server.core.consultation import InputError, StaffAccount
from queue_server.loaders import load_rules
from queue_server.storage import Store

PEPPER = b"k" * 32
CITY = load_city(DEFAULT_CONFIG_DIR / "site.toml")
DEPTS = set(CITY.departments)
RULES = load_rules(DEFAULT_CONFIG_DIR / "consultation.toml", DEPTS)


def staff(role: str, *departments: str) -> StaffAccount:
    return StaffAccount("x", "x", frozenset(departments), role)


@pytest.mark.parametrize("a,b", [
    ("髙橋　花子", "高橋 花子"),
    ("ﾀｶﾊｼ ﾊﾅｺ", "タカハシハナコ"),
    ("山﨑太郎", "山崎 太郎"),
    ("渡邊", "渡辺"), ("渡邉", "渡辺"), ("齋藤", "斎藤"), ("齊藤", "斎藤"), ("澤田", "沢田"),
    ("濱田", "浜田"), ("國井", "国井"),
    ("ＳＭＩＴＨ　Ｊｏｈｎ", "smith john"),
])
def test_name_variants_give_the_same_citizen_key(a, b):
    assert consultation.citizen_key(a, "1980-04-01", PEPPER) == consultation.citizen_key(b, "1980-04-01", PEPPER)


@pytest.mark.parametrize("date", ["1980-04-01", "19800401", "１９８０/４/１", "1980年4月1日", "1980.4.1"])
def test_birth_date_spellings_agree(date):
    assert consultation.normalise_birth_date(date) == "1980-04-01"


def test_different_people_get_different_keys_and_the_key_hides_the_name():
    k1 = consultation.citizen_key("高橋花子", "1980-04-01", PEPPER)
    assert k1 != consultation.citizen_key("高橋花子", "1980-04-02", PEPPER)
    assert k1 != consultation.citizen_key("高橋花美", "1980-04-01", PEPPER)
    assert k1 != consultation.citizen_key("高橋花子", "1980-04-01", b"other secret")
    assert "高橋" not in k1 and len(k1) == 64


@pytest.mark.parametrize("name,date,field", [
    ("", "1980-04-01", "name"), ("　 ", "1980-04-01", "name"), ("山田", "", "birth_date"),
    ("山田", "1980-02-30", "birth_date"), ("山田", "昭和55年", "birth_date"), ("山" * 101, "1980-04-01", "name"),
])
def test_bad_citizen_keys_name_the_field(name, date, field):
    with pytest.raises(InputError) as e:
        consultation.citizen_key(name, date, PEPPER)
    assert e.value.field == field


def test_search_rights_follow_config_and_the_general_desk_always_searches():
    assert consultation.may_search(staff("consultant", "kosodate"), RULES)
    assert consultation.may_search(staff("consultant", "shogai"), RULES)
    assert not consultation.may_search(staff("consultant", "zeimu"), RULES)
    assert not consultation.may_search(staff("admin"), RULES)
    assert consultation.may_search(staff("general", "soudan"), RULES)


def test_without_consent_nothing_leaves_the_recording_department():
    rec = {"department": "kosodate", "consent": False}
    assert consultation.record_visible(staff("consultant", "kosodate"), RULES, rec)
    assert not consultation.record_visible(staff("consultant", "shogai"), RULES, rec)
    assert not consultation.record_visible(staff("consultant", "zeimu"), RULES, rec)
    assert not consultation.record_visible(staff("admin"), RULES, rec)
    assert consultation.record_visible(staff("general", "soudan"), RULES, rec)
    shared = {"department": "kosodate", "consent": True}
    assert consultation.record_visible(staff("consultant", "shogai"), RULES, shared)
    assert not consultation.record_visible(staff("consultant", "zeimu"), RULES, shared)


def test_handover_is_seen_by_receiver_sender_and_general_only():
    sheet = {"from_department": "kosodate", "to_department": "shogai"}
    assert consultation.handover_visible(staff("consultant", "shogai"), sheet)
    assert consultation.handover_visible(staff("consultant", "kosodate"), sheet)
    assert consultation.handover_visible(staff("general", "soudan"), sheet)
    assert not consultation.handover_visible(staff("consultant", "zeimu"), sheet)
    assert not consultation.handover_visible(staff("admin"), sheet)
    assert consultation.may_take_over(staff("consultant", "shogai"), sheet)
    assert not consultation.may_take_over(staff("consultant", "kosodate"), sheet)


def test_handover_fields_are_checked():
    ok = consultation.check_handover({"to_department": "shogai", "asked": "a", "needed": "n", "documents": ["母子手帳"]},
                                     DEPTS, RULES.topics)
    assert ok["documents"] == ["母子手帳"] and ok["done"] == ""
    for body, field in [({"to_department": "nope", "asked": "a", "needed": "n"}, "to_department"),
                        ({"to_department": "shogai", "asked": "", "needed": "n"}, "asked"),
                        ({"to_department": "shogai", "asked": "a", "needed": "n", "done": "x" * 1001}, "done"),
                        ({"to_department": "shogai", "asked": "a", "needed": "n", "documents": "x"}, "documents")]:
        with pytest.raises(InputError) as e:
            consultation.check_handover(body, DEPTS, RULES.topics)
        assert e.value.field == field


def test_config_problems_are_listed_by_key():
    raw = tomllib.loads((DEFAULT_CONFIG_DIR / "consultation.toml").read_text(encoding="utf-8"))
    raw["general_department"] = "nowhere"
    raw["staff"].append({"identifier": "x y", "role": "boss"})
    raw["staff"].append({"identifier": "ok01", "role": "boss", "departments": ["mars"]})
    with pytest.raises(consultation.RulesError) as e:
        consultation.parse_rules(raw, DEPTS)
    msg = str(e.value)
    assert "general_department" in msg and "staff[5].identifier" in msg and "staff[6].role" in msg
    assert "'mars'" in msg


def test_the_consultation_file_is_read_once_into_one_config_for_both_its_users(tmp_path):
    """loaders.load_consultation: rules and [booking] together; None without a file; a ConfigError
    naming the file for a syntax error, a value of the wrong type and a bad [booking]."""
    from types import SimpleNamespace

    from queue_server import planner_api
    from queue_server.consultation_api import ConsultationApi
    from queue_server.core.problems import ConfigError
    from queue_server.loaders import load_consultation

    shipped = DEFAULT_CONFIG_DIR / "consultation.toml"
    cfg = load_consultation(shipped, DEPTS)
    assert cfg is not None and cfg.rules == RULES and cfg.booking.consultants
    assert load_consultation(tmp_path / "consultation.toml", DEPTS) is None
    text_ = shipped.read_text(encoding="utf-8")
    bad = tmp_path / "consultation.toml"
    for old, new, says in [("[sessions]", "[sessions", "TOML syntax error"),
                           ("idle_minutes = ", "idle_minutes = 'half an hour' #", "a value of the wrong type"),
                           ("slot_minutes = 60", "slot_minutes = 5", "booking.slot_minutes: must be an integer ≥ 10")]:
        assert old in text_, old
        bad.write_text(text_.replace(old, new, 1), encoding="utf-8")
        with pytest.raises(ConfigError) as e:
            load_consultation(bad, DEPTS)
        assert str(bad) in str(e.value) and says in str(e.value), str(e.value)
    # both users take the one config the server holds: the staff role its rules, booking its [booking]
    server = SimpleNamespace(store=SimpleNamespace(engine=None), clock=lambda: 0.0, city=CITY, consultation=cfg)
    assert ConsultationApi(server, pepper=PEPPER).rules is cfg.rules
    assert planner_api.consult_config(server) is cfg.booking
    server.consultation = None  # no consultation.toml: the staff role says so, booking is off
    assert ConsultationApi(server, pepper=PEPPER).error == "not_configured"
    assert planner_api.consult_options(server) == {"topics": [], "slot_minutes": 0}


def test_throttle_slows_per_identifier_and_per_address_and_a_success_clears_the_identifier():
    t = accounts.Throttle(free=3, free_address=5, first_delay=2, max_delay=60)
    keys = ["id:a", "ip:1"]
    for i in range(3):
        assert t.wait(keys, 100.0 + i) == 0
        t.failed(keys, 100.0 + i)
    assert t.wait(keys, 102.0) == pytest.approx(2.0)
    assert t.wait(keys, 104.5) == 0
    t.failed(keys, 105.0)
    assert t.wait(keys, 105.0) == pytest.approx(4.0)  # doubling
    t.succeeded("id:a")
    assert t.wait(["id:a", "ip:1"], 105.0) == 0  # address: 4 failures, 5 free
    t.failed(["id:b", "ip:1"], 106.0)
    assert t.wait(["id:c", "ip:1"], 106.0) == pytest.approx(2.0)  # a new identifier from a spraying address
    for _ in range(30):
        t.failed(["id:z"], 200.0)
    assert t.wait(["id:z"], 200.0) == 60  # capped


def test_sessions_expire_when_idle_and_after_the_absolute_limit():
    assert accounts.session_alive(0, 100, 200, idle=1800, absolute=36000)
    assert not accounts.session_alive(0, 100, 100 + 1800, idle=1800, absolute=36000)
    assert not accounts.session_alive(0, 35990, 36000, idle=1800, absolute=36000)


def test_passwords_are_argon2id_hashes_and_never_clear_text():
    h = accounts.hash_password("correct horse battery")
    assert h.startswith("$argon2id$") and "correct" not in h
    assert accounts.verify_password(h, "correct horse battery")
    assert not accounts.verify_password(h, "wrong horse battery")
    assert not accounts.verify_password(None, "anything at all")
    assert not accounts.verify_password("garbage", "anything at all")
    with pytest.raises(ValueError):
        accounts.hash_password("short")
    assert accounts.token_digest("t") != "t" and len(accounts.new_session_token()) >= 40


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}" if request.param == "sqlite" else request.getfixturevalue("fresh_postgres")
    s = Store(url)
    s.migrate()
    yield s
    s.engine.dispose()


def test_retention_job_deletes_what_has_expired_by_the_injected_clock(store):
    day = 86400.0
    e = store.engine
    old = db.add_consultation(e, {"citizen_key": "k", "at": 0.0, "department": "kosodate", "consultant": "a",
                                  "topic": "other", "status": "open", "consent": True})
    new = db.add_consultation(e, {"citizen_key": "k", "at": 1000 * day, "department": "kosodate", "consultant": "a",
                                  "topic": "other", "status": "open", "consent": True})
    sheet = {"from_department": "kosodate", "to_department": "shogai", "created_by": "a", "asked": "a",
             "done": "", "needed": "n", "documents": [], "ticket": None}
    h_old = db.add_handover(e, {**sheet, "consultation": old, "created_at": 1.0})
    h_taken = db.add_handover(e, {**sheet, "consultation": new, "created_at": 1000 * day})
    db.take_handover(e, h_taken, "b", 1001 * day)
    h_open = db.add_handover(e, {**sheet, "consultation": new, "created_at": 1800 * day})
    db.audit(e, 0.0, "a", "search")
    db.audit(e, 1900 * day, "a", "search")
    retention = {"consultation": 1825, "handover": 365, "audit": 1825, "session": 1}
    now = 1900 * day
    counts = db.purge(e, consultation.purge_before(now, retention), 1800)
    assert counts["consultation"] == 1 and counts["handover"] == 2 and counts["audit"] == 1
    assert db.consultation(e, old) is None and db.consultation(e, new) is not None
    assert db.handover(e, h_old) is None and db.handover(e, h_taken) is None and db.handover(e, h_open) is not None
    assert len(db.audit_entries(e)) == 1
    # a day later nothing more is due; far in the future everything goes
    assert sum(db.purge(e, consultation.purge_before(now + day, retention), 1800).values()) == 0
    assert db.purge(e, consultation.purge_before(10000 * day, retention), 1800)["consultation"] == 1


def test_the_audit_table_refuses_updates(store):
    db.audit(store.engine, 1.0, "a", "search", reason="相談対応")
    with pytest.raises(Exception, match="append-only"), store.engine.begin() as c:
        c.execute(text("UPDATE consultation_audit SET actor = 'someone else'"))
    assert db.audit_entries(store.engine)[0]["actor"] == "a"


def test_the_server_runs_the_retention_job_hourly_by_its_clock(store):
    """The staff role's shell runs the deletion job itself, at most hourly, on its injected clock."""
    from types import SimpleNamespace

    from queue_server.consultation_api import ConsultationApi

    now = [1000 * 86400.0]
    server = SimpleNamespace(store=store, clock=lambda: now[0], city=CITY, hubs={})
    api = ConsultationApi(server, rules=RULES, pepper=PEPPER)
    e = store.engine
    old = db.add_consultation(e, {"citizen_key": "k", "at": now[0] - 1826 * 86400, "department": "kosodate",
                                  "consultant": "a", "topic": "other", "status": "open", "consent": True})
    import asyncio

    assert asyncio.run(api.maybe_purge())["consultation"] == 1
    assert db.consultation(e, old) is None
    soon = db.add_consultation(e, {"citizen_key": "k", "at": now[0] - 1824.99 * 86400, "department": "kosodate",
                                   "consultant": "a", "topic": "other", "status": "open", "consent": True})
    now[0] += 1800
    assert asyncio.run(api.maybe_purge()) is None  # not again within the hour
    now[0] += 1801
    assert asyncio.run(api.maybe_purge())["consultation"] == 1
    assert db.consultation(e, soon) is None


def test_kpis_from_records_and_handovers():
    from queue_server.consultation_kpi import compute

    cons = [{"department": "kosodate", "consent": True, "citizen_key": "a"},
            {"department": "kosodate", "consent": False, "citizen_key": "b"},
            {"department": "shogai", "consent": True, "citizen_key": "a"},
            {"department": "kosodate", "consent": True, "citizen_key": "c"},
            {"department": "kosodate", "consent": True, "citizen_key": "c"}]
    hand = [{"from_department": "kosodate", "to_department": "shogai", "created_at": 0.0, "status": "taken", "taken_at": 7200.0},
            {"from_department": "kosodate", "to_department": "shogai", "created_at": 0.0, "status": "taken", "taken_at": 3600.0},
            {"from_department": "kosodate", "to_department": "soudan", "created_at": 0.0, "status": "open", "taken_at": None}]
    k = compute(cons, hand)
    assert k["consultations"] == 5 and k["citizens"] == 3
    assert k["departments"]["kosodate"] == {"consultations": 4, "with_consent": 3, "consent_share": 0.75}
    assert k["repeat_citizens"] == 2 and k["multi_department_citizens"] == 1
    h = k["handovers"]
    assert (h["created"], h["taken"], h["open"]) == (3, 2, 1)
    assert h["hours_to_take_over_median"] == 1.0 and h["hours_to_take_over_p90"] == 2.0
    assert h["routes"] == [{"from": "kosodate", "to": "shogai", "count": 2}, {"from": "kosodate", "to": "soudan", "count": 1}]
    empty = compute([], [])
    assert empty["consultations"] == 0 and empty["handovers"]["hours_to_take_over_median"] is None


@pytest.mark.slow
def test_consultation_check_reports_a_wrong_department_by_key(tmp_path):
    import shutil
    import subprocess
    import sys

    root = DEFAULT_CONFIG_DIR.parent
    shutil.copy(DEFAULT_CONFIG_DIR / "site.toml", tmp_path / "site.toml")
    text_ = (DEFAULT_CONFIG_DIR / "consultation.toml").read_text(encoding="utf-8")
    (tmp_path / "consultation.toml").write_text(text_.replace('departments = ["zeimu"]', 'departments = ["zeimuu"]'),
                                                encoding="utf-8")
    run = subprocess.run([sys.executable, str(root / "run.py"), "consultation-check", "--config-dir", str(tmp_path)],
                         capture_output=True, text=True, cwd=root, timeout=120)
    assert run.returncode == 1 and "staff[2].departments: 'zeimuu' is not a department" in run.stderr
    (tmp_path / "consultation.toml").write_text(text_.replace('online_link = "https://meet.example.jp/sakata-fukushi01"',
                                                              'online_link = "meet.example.jp"'), encoding="utf-8")
    run = subprocess.run([sys.executable, str(root / "run.py"), "consultation-check", "--config-dir", str(tmp_path)],
                         capture_output=True, text=True, cwd=root, timeout=120)
    assert run.returncode == 1 and "booking.consultants[1].online_link: an online consultant needs" in run.stderr
    ok = subprocess.run([sys.executable, str(root / "run.py"), "consultation-check"], capture_output=True, text=True,
                        cwd=root, timeout=120)
    assert ok.returncode == 0, ok.stderr


def test_properties_of_keys_and_visibility():
    """Normalisation is idempotent and width-blind; no consultant outside the recording department
    ever sees a record without consent; the 福祉総合相談係 always does; admins never do."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    depts = sorted(DEPTS)

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=30))
    def names(s):
        n = consultation.normalise_name(s)
        assert consultation.normalise_name(n) == n
        wide = "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in s)
        assert consultation.normalise_name(wide) == n

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(ROLES_), st.sets(st.sampled_from(depts), max_size=3), st.sampled_from(depts), st.booleans())
    def visibility(role, mine, recorded, consent):
        s = StaffAccount("x", "x", frozenset(mine), role)
        seen = consultation.record_visible(s, RULES, {"department": recorded, "consent": consent})
        if role == "general":
            assert seen
        elif role == "admin":
            assert not seen
        elif seen and recorded not in mine:
            assert consent and mine & RULES.search_departments

    names()
    visibility()


ROLES_ = consultation.ROLES
