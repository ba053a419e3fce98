"""Read aloud and the audio-first keypad path, on the pure flow (no Kivy, no audio device)."""

from __future__ import annotations

import io
import shutil
import wave
from pathlib import Path

import pytest

from kiosk import flow as F
from kiosk.keypad import key_event, options
from kiosk.speech import SpeechQueue, Utterance, screen_phrases, synthesize
from printers.layout import default_messages as printer_messages
from queue_server.loaders import load_messages
from tests.kiosk.test_flow import DEATH_1, answer_all, catalogue, make  # noqa: F401 - the catalogue fixture

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = load_messages(ROOT / "kiosk" / "messages.toml")


def press(kiosk, state, *keys):
    commands = []
    for key in keys:
        event = key_event(kiosk, state, MESSAGES, key)
        assert event is not None, (key, state.screen)
        state, cmds = kiosk.step(state, event)
        commands += cmds
    return state, commands


def said(kiosk, state) -> list[str]:
    return [u.text for u in screen_phrases(kiosk, state, MESSAGES, None, printer_messages())]


def test_a_certificate_ticket_by_number_keys_alone_with_what_is_said_on_each_screen(catalogue):  # noqa: F811
    kiosk, s = make(catalogue)
    first = said(kiosk, s)
    assert first[0].startswith("ようこそ") and "1、日本語。" in first and "2: English." in first
    s, _ = press(kiosk, s, "1")  # 日本語
    assert s.screen is F.Screen.PURPOSE
    spoken = said(kiosk, s)
    labels = [label for label, _ in options(kiosk, s, MESSAGES)]
    cert = labels.index("証明書") + 1
    assert f"{cert}、証明書。" in spoken and "2、おくやみの手続き。" in spoken
    s, _ = press(kiosk, s, str(cert))
    assert s.screen is F.Screen.QUESTION and s.question == "certificates"
    spoken = said(kiosk, s)
    choices = [label for label, _ in options(kiosk, s, MESSAGES)]
    juminhyo = next(i for i, (_, e) in enumerate(options(kiosk, s, MESSAGES), 1) if getattr(e, "value", "") == "juminhyo")
    assert f"{juminhyo}、{choices[juminhyo - 1]}。" in spoken
    assert any("エンターキーで次へ" in t for t in spoken)
    s, _ = press(kiosk, s, str(juminhyo))
    assert s.selection == ("juminhyo",)
    assert any(t.startswith("選んでいるもの：") for t in said(kiosk, s))
    s, _ = press(kiosk, s, "enter")
    while s.screen is F.Screen.QUESTION:  # any further question: the first option, read first
        assert len(said(kiosk, s)) >= 2
        s, _ = press(kiosk, s, "1")
    if s.screen is F.Screen.CONVENIENCE:
        assert "エンターキーで番号札を受け取ります。" in said(kiosk, s)
        s, _ = press(kiosk, s, "enter")
    assert s.screen is F.Screen.PLAN
    spoken = said(kiosk, s)
    assert spoken[-1] == "エンターキーで番号札を受け取ります。" and any(t.startswith("1、") for t in spoken)
    s, cmds = press(kiosk, s, "enter")
    issue = next(c for c in cmds if isinstance(c, F.Issue))
    assert issue.request["purposes"] == ["certificate"]
    result = {"ticket": {"number": "12", "site": "honcho"},
              "route": [{"department": "shimin", "name": {"ja": "市民課", "en": "Citizens Division"},
                         "counters": [1, 2, 3], "floor": 1}]}
    s, _ = kiosk.step(s, F.IssueSucceeded(issue.key, result))
    assert s.screen is F.Screen.DONE
    spoken = said(kiosk, s)
    assert spoken[0] == "受付番号は、12番です。" and spoken[-1] == spoken[0]  # said first and last
    assert "最初に、市民課、1階\u30001・2・3番窓口へお越しください。" in spoken
    s, _ = press(kiosk, s, "enter")
    assert s.screen is F.Screen.LANGUAGE


def test_the_procedure_list_on_request_is_key_1_on_the_done_screen(catalogue):  # noqa: F811
    kiosk, s = make(catalogue, printer_enabled=True, list_on_request=True)
    s, _ = press(kiosk, s, "1", "2")  # 日本語, おくやみの手続き
    s, _ = answer_all(kiosk, s, DEATH_1)
    s, cmds = press(kiosk, s, *(["enter"] if s.screen is F.Screen.CONVENIENCE else []), "enter")
    issue = next(c for c in cmds if isinstance(c, F.Issue))
    s, _ = kiosk.step(s, F.IssueSucceeded(issue.key, {"ticket": {"number": "3"}}))
    s, _ = kiosk.step(s, F.Printed())
    spoken = said(kiosk, s)
    assert "1、手続きリストを印刷。" in spoken and spoken[-1] == spoken[0]  # the number still said last
    s, cmds = press(kiosk, s, "1")
    assert cmds == [F.PrintList({"ticket": {"number": "3"}}, "ja")]
    assert not [t for t in said(kiosk, s) if t.startswith("1、")]  # once: no second offer


def test_keys_on_a_number_question_type_digits_and_star_means_unknown(catalogue):  # noqa: F811
    kiosk, s = make(catalogue)
    s, _ = kiosk.step(s, F.ChooseLanguage("en"))
    s, _ = kiosk.step(s, F.ChoosePurpose("death"))
    s, _ = kiosk.step(s, F.Answer("no"))  # death_filed
    assert kiosk.catalogue.questions[s.question].kind == "number"
    assert "Type the number with the number keys, then press Enter. Star if you do not know." in said(kiosk, s)
    s, _ = press(kiosk, s, "8", "0")
    assert s.entry == "80" and "You typed 80." in said(kiosk, s)
    s, _ = press(kiosk, s, "backspace")
    assert s.entry == "8"
    s2, _ = press(kiosk, s, "*")
    assert s2.answers[-1][1] == "unknown"
    assert key_event(kiosk, s, MESSAGES, "+") == F.ReadAloud()
    assert key_event(kiosk, s, MESSAGES, "x") is None


def test_read_aloud_button_and_nothing_personal_is_read(catalogue):  # noqa: F811
    kiosk, s = make(catalogue)
    s, cmds = kiosk.step(s, F.ReadAloud())
    assert cmds == [F.Speak()]
    # every screen has something to say, and the error screen no code
    for screen in F.Screen:
        if screen in (F.Screen.CARD,):
            continue
        state = F.KioskState(screen=screen, error_code="storage_error",
                             issue_result={"ticket": {"number": "7"}, "route": []})
        if screen is F.Screen.QUESTION:
            state = F.replace(state, purposes=("death",), question="death_filed")
        texts = [u.text for u in screen_phrases(kiosk, state, MESSAGES, None, printer_messages())]
        assert texts, screen
        assert "storage_error" not in " ".join(texts)


def test_speech_queue_interrupts_the_previous_screen():
    played: list[bytes] = []
    import threading

    gate = threading.Event()

    def synth(u: Utterance) -> bytes:
        gate.wait(2)
        return u.text.encode()

    q = SpeechQueue(synth=synth, play=played.append)
    q.say([Utterance("ja", "一"), Utterance("ja", "二")])
    q.say([Utterance("ja", "三")])  # a new screen before the first was spoken
    gate.set()
    for _ in range(200):
        if played:
            break
        threading.Event().wait(0.01)
    threading.Event().wait(0.1)
    assert played[-1] == "三".encode() and "二".encode() not in played
    assert q.texts() == ["一", "二", "三"]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_offline_voices_make_audio(lang):
    wav = synthesize(Utterance(lang, "受付番号は、12番です。" if lang == "ja" else "Your number is 12."))
    with wave.open(io.BytesIO(wav)) as w:
        assert w.getnframes() / w.getframerate() > 0.8  # a second or so of speech, not silence


def test_ruby_is_read_by_its_reading():
    from kiosk.speech import spoken_text

    assert spoken_text("{市民課|しみんか}へ いって ください") == "しみんかへ いって ください"
    assert spoken_text("受付番号は{n}番") == "受付番号は{n}番"
