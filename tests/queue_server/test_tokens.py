from queue_server.tokens import ensure, read


def test_secrets_file_is_created_private_and_kept_across_new_counters(tmp_path):
    path = tmp_path / "secrets.toml"
    first, created = ensure(path, [("honcho", [1, 2])])
    assert created and oct(path.stat().st_mode & 0o777) == "0o600"
    assert first.staff_pin.isdigit() and len(first.staff_pin) == 6
    again, created = ensure(path, [("honcho", [1, 2])])
    assert not created and again == first
    grown, created = ensure(path, [("honcho", [1, 2, 3])])
    assert created and grown.counters["honcho"][1] == first.counters["honcho"][1] and 3 in grown.counters["honcho"]
    assert grown.staff_pin == first.staff_pin and grown.roles == first.roles
    assert read(path) == grown


def test_tokens_check_role_and_counter(tmp_path):
    tokens, _ = ensure(tmp_path / "s.toml", [("honcho", [1])])
    assert tokens.check("kiosk", tokens.roles["kiosk"])
    assert not tokens.check("admin", tokens.roles["kiosk"])
    assert tokens.check("counter", tokens.counters["honcho"][1], "honcho", 1)
    assert not tokens.check("counter", tokens.counters["honcho"][1], "honcho", 2)
    assert not tokens.check("display", None)
