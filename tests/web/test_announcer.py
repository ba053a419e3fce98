"""Offline call announcements: real pyopenjtalk and espeak-ng output, cached per phrase, made in
request order by one worker process off the server's event loop."""

from __future__ import annotations

import os
import shutil
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from display_board.announcer import RATE, Announcer, call_phrase, chime, prune, short_phrase, wav_seconds

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
pytest.importorskip("pyopenjtalk")


def _samples(path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float) / 32768


def test_the_phrase_is_a_short_city_hall_call_in_japanese_and_english():
    p = call_phrase("123", 3)
    assert p.ja == "123番の方、3番窓口へお越しください"
    assert p.en == "Number 123, counter 3."
    assert call_phrase("R12", 3).en.startswith("Number R 1 2,")  # letters read one by one
    assert call_phrase("123", 3).name == p.name != call_phrase("123", 4).name
    # a recall says so, and every recall of the same number reuses its file
    r = call_phrase("123", 3, recall=True)
    assert r.ja.startswith("もう一度お呼びします。") and r.name != p.name == call_phrase("123", 3).name
    # the burst form: Japanese number and counter, nothing else
    s = short_phrase("123", 3)
    assert s.ja == "123番の方、3番窓口へ" and s.en == "" and s.name.startswith("say-")


def test_synthesised_call_is_chime_then_speech_and_is_cached(tmp_path):
    a = Announcer(tmp_path)
    t0 = time.perf_counter()
    path = a.synthesise("123", 3)
    first = time.perf_counter() - t0
    seconds = wav_seconds(path)
    assert 5.0 < seconds < 12.0, seconds  # chime ~1.5 s + Japanese ~3.5 s + English ~2 s
    short = wav_seconds(tmp_path / short_phrase("123", 3).name)  # made by the same job
    assert 1.0 < short < 4.0, short
    x = _samples(path)
    head = len(chime())
    assert np.abs(x[: head // 2]).max() > 0.2  # the chime opens the file
    ja = x[head + int(0.35 * RATE): head + int(4.0 * RATE)]
    assert np.sqrt(np.mean(ja ** 2)) > 0.02  # then speech, not silence
    mtime = path.stat().st_mtime_ns
    t0 = time.perf_counter()
    assert a.synthesise("123", 3) == path and path.stat().st_mtime_ns == mtime  # cached: not made again
    assert time.perf_counter() - t0 < first / 5


def test_requests_return_at_once_and_files_appear_in_request_order(tmp_path):
    a = Announcer(tmp_path, url_prefix="/audio/")
    a.start()
    try:
        calls = [("7", 1), ("8", 2), ("9", 12)]
        t0 = time.perf_counter()
        urls = [a.request(n, c) for n, c in calls]
        assert time.perf_counter() - t0 < 0.05  # never blocks the caller (the server's event loop)
        assert a.request("7", 1) == urls[0]  # a recall: same URL, no second job
        paths = [tmp_path / u.rsplit("/", 1)[1] for u in urls]
        deadline = time.monotonic() + 90
        while not all(p.is_file() for p in paths) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert all(p.is_file() and wav_seconds(p) > 5.0 for p in paths)
        mtimes = [p.stat().st_mtime_ns for p in paths]
        assert mtimes == sorted(mtimes)  # one worker, first come first made: the board's order
        assert not list(tmp_path.glob(".*.tmp"))  # written under a temporary name, then renamed
    finally:
        a.stop()


def test_the_cache_keeps_only_the_newest_phrases(tmp_path):
    for i in range(5):
        p = tmp_path / f"call-{i}.wav"
        p.write_bytes(b"x")
        ns = 1_000_000_000 * (i + 1)
        os.utime(p, ns=(ns, ns))
    (tmp_path / "other.txt").write_text("not ours")
    assert prune(tmp_path, keep=2) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["call-3.wav", "call-4.wav", "other.txt"]


def test_stop_waits_for_the_worker_so_none_outlives_the_server(tmp_path):
    """A worker left running when the server stops is orphaned; under a container's init that does
    not reap, it stays defunct (CI saw one after `demo --busy` stopped)."""
    a = Announcer(tmp_path, url_prefix="/audio/")
    a.start()
    a.request("41", 2)  # starts the worker, mid-phrase when we stop
    worker = a._proc
    assert worker is not None and worker.poll() is None
    a.stop(timeout=30)
    assert worker.returncode is not None  # waited for: reaped by us, not left to init
    assert not Path(f"/proc/{worker.pid}").exists() or "Z" not in Path(f"/proc/{worker.pid}/stat").read_text().rsplit(")", 1)[1][:3]
