"""`run.py kiosk`: options, the token and staff PIN from the secrets file, no display. No Kivy."""

from __future__ import annotations

import argparse

from kiosk import cli


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["kiosk", *argv])


def test_options_parse_with_the_documented_defaults():
    a = parse("--server", "ws://127.0.0.1:8765/ws", "--device", "kiosk-1")
    assert (a.secrets, a.renderer, a.printer, a.portrait, a.fullscreen, a.idle) == (
        "var/secrets.toml", "image", None, False, False, 90.0)
    b = parse("--server", "ws://h:1/ws", "--device", "k", "--token", "t", "--printer", "file:///tmp/x",
              "--renderer", "kanji", "--portrait", "--fullscreen", "--card")
    assert (b.token, b.printer, b.renderer, b.portrait, b.fullscreen, b.card) == (
        "t", "file:///tmp/x", "kanji", True, True, True)


def test_token_and_staff_pin_come_from_the_secrets_file(tmp_path):
    f = tmp_path / "secrets.toml"
    f.write_text('[roles]\nkiosk = "tok"\n\n[kiosk]\nstaff_pin = "2468"\n', encoding="utf-8")
    assert cli._secrets(str(f)) == ("tok", "2468")
    assert cli._secrets(str(tmp_path / "missing.toml")) == (None, None)


def test_without_a_token_or_a_display_it_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    a = parse("--server", "ws://h:1/ws", "--device", "k", "--secrets", str(tmp_path / "none.toml"))
    assert cli.run(a) == 2 and "run.py init" in capsys.readouterr().err
    b = parse("--server", "ws://h:1/ws", "--device", "k", "--token", "t")
    assert cli.run(b) == 2 and "Xvfb" in capsys.readouterr().err
