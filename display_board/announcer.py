"""Offline voice calls for the lobby boards: a chime, the Japanese call, then the English call.

「123番の方、3番窓口へお越しください」 is spoken by pyopenjtalk (pyopenjtalk-plus, no
network), the English phrase by espeak-ng; both are joined with a chime into one WAV file per
phrase under var/audio/, named by a hash of the texts, so a recall (same number, same counter)
plays the cached file again. The server pushes the call first and only then asks for the audio:
synthesis runs in a separate worker *process* (``python -m display_board.announcer``), because
pyopenjtalk holds the GIL for up to a second and a thread would stall every push meanwhile. The
worker reads one job per line on its stdin and exits at end of file, so it goes when the server
goes, even on SIGKILL, and it holds none of the server's other pipes.
A board fetches ``/audio/<name>.wav``; it answers 404 until the file is complete (files are
written under a temporary name and renamed), and the board retries.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("madoguchi.announcer")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = ROOT / "var" / "audio"
RATE = 24000  # Hz: plenty for speech and half the bytes of pyopenjtalk's 48 kHz
MAX_CACHED = 400  # phrases kept under var/audio (~250 MB); the oldest go first
VOICE_VERSION = "3"  # bump when the chime, voices or layout change: new file names, no stale cache

# Spoken phrase per language. Only languages with an offline voice are spoken; the board shows
# the other languages as text. Short on purpose (chime + number + counter, the rest is on the
# screen): ~6 s a call, so a busy lobby's calls are announced while they still matter.
VOICE_PHRASES: Mapping[str, str] = {
    "ja": "{number}番の方、{counter}番窓口へお越しください",
    "en": "Number {number}, counter {counter}.",
}
RECALL_PHRASES: Mapping[str, str] = {
    "ja": "もう一度お呼びします。{number}番の方、{counter}番窓口へお越しください",
    "en": "Again, number {number}, counter {counter}.",
}
# The short form a board plays for the second and later calls of a burst, after one chime:
# 「12番の方、1番窓口へ」 (no chime, Japanese only, ~2 s).
SHORT_PHRASE = "{number}番の方、{counter}番窓口へ"


@dataclass(frozen=True)
class Phrase:
    """The texts of one call announcement (``en`` empty: the short form, no chime)."""

    ja: str
    en: str
    short: bool = False

    @property
    def name(self) -> str:
        """Cache file name: same texts, same file (a recall of the same number reuses it)."""
        digest = hashlib.sha256(f"{VOICE_VERSION}\n{self.ja}\n{self.en}\n{self.short}".encode()).hexdigest()[:20]
        return f"{'say' if self.short else 'call'}-{digest}.wav"


def call_phrase(number: str, counter: int, recall: bool = False) -> Phrase:
    """The phrase for ticket ``number`` called (or called again) to ``counter``."""
    table = RECALL_PHRASES if recall else VOICE_PHRASES
    return Phrase(
        ja=table["ja"].format(number=number, counter=counter),
        en=table["en"].format(number=_spell_for_english(number), counter=counter),
    )


def short_phrase(number: str, counter: int) -> Phrase:
    """The burst form: Japanese number and counter only, no chime."""
    return Phrase(ja=SHORT_PHRASE.format(number=number, counter=counter), en="", short=True)


def _spell_for_english(number: str) -> str:
    # "R12" read by espeak as a word sounds wrong; letters apart from digits are read one by one
    return " ".join(number) if not number.isdigit() else number


# ---------------------------------------------------------------------------- synthesis (worker)
def chime(rate: int = RATE) -> np.ndarray:
    """A two-tone ding-dong (E5 then C5, decaying), float in [-1, 1]."""
    parts = []
    for freq, length in ((659.25, 0.55), (523.25, 0.9)):
        t = np.arange(int(rate * length)) / rate
        env = np.exp(-3.5 * t) * np.minimum(1.0, t / 0.01)  # 10 ms attack avoids a click
        tone = np.sin(2 * math.pi * freq * t) + 0.25 * np.sin(2 * math.pi * 2 * freq * t)
        parts.append(0.45 * env * tone)
    return np.concatenate(parts)


def _resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    if src == dst or len(x) == 0:
        return x
    n = int(round(len(x) * dst / src))
    return np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x)


def _normalise(x: np.ndarray, peak: float = 0.85) -> np.ndarray:
    m = float(np.max(np.abs(x))) if len(x) else 0.0
    return x * (peak / m) if m > 0 else x


def _trim(x: np.ndarray, rate: int, lead: float = 0.05, tail: float = 0.08) -> np.ndarray:
    """Cut the silence pyopenjtalk puts before and after speech (~0.3 s each side): in a burst of
    calls it adds up to seconds."""
    loud = np.nonzero(np.abs(x) > 0.02 * (float(np.max(np.abs(x))) if len(x) else 0.0))[0]
    if len(loud) == 0:
        return x
    return x[max(0, loud[0] - int(lead * rate)): loud[-1] + int(tail * rate)]


def speak_japanese(text: str, speed: float = 1.0) -> np.ndarray:
    """Japanese speech at RATE, float in [-1, 1] (pyopenjtalk-plus, offline)."""
    import pyopenjtalk  # imported in the worker only: loading the dictionary takes ~2 s

    x, sr = pyopenjtalk.tts(text, speed=speed)
    return _normalise(_trim(_resample(np.asarray(x, dtype=np.float64), sr, RATE), RATE))


def speak_english(text: str) -> np.ndarray:
    """English speech at RATE, float in [-1, 1] (espeak-ng, offline)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (Debian package espeak-ng)")
    wav = subprocess.run([exe, "-v", "en", "-s", "140", "--stdout", text], check=True, capture_output=True,
                         timeout=30).stdout
    with wave.open(io.BytesIO(wav)) as w:
        sr, frames = w.getframerate(), w.readframes(w.getnframes())
    x = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    return _normalise(_resample(x, sr, RATE))


def render(phrase: Phrase) -> bytes:
    """The whole announcement as a 16-bit mono WAV: chime, Japanese, English (the short form:
    Japanese only)."""
    gap = np.zeros(int(RATE * 0.3))
    if phrase.short:
        x = np.concatenate([speak_japanese(phrase.ja, speed=1.15), gap])  # a touch quicker: it is a list
    else:
        x = np.concatenate([chime(), gap, speak_japanese(phrase.ja), gap, speak_english(phrase.en), gap])
    pcm = (np.clip(x, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return buf.getvalue()


def write_atomically(path: Path, data: bytes) -> None:
    """Write under a temporary name, then rename: a reader sees no file or the whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def render_to(number: str, counter: int, cache_dir: str, recall: bool = False) -> str:
    """Worker entry point: synthesise one call (and its short form) into the cache if missing;
    return the full phrase's file name."""
    phrase = call_phrase(number, counter, recall)
    for p in (phrase, short_phrase(number, counter)):
        path = Path(cache_dir) / p.name
        if not path.is_file():
            write_atomically(path, render(p))
            prune(Path(cache_dir))
    return phrase.name


def prune(cache_dir: Path, keep: int = MAX_CACHED) -> int:
    """Delete the oldest phrases beyond ``keep`` (each is ~0.6 MB; a busy day makes hundreds).
    Returns how many were deleted."""
    gone = 0
    for pattern in ("call-*.wav", "say-*.wav"):
        files = sorted(cache_dir.glob(pattern), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in files[keep:]:
            old.unlink(missing_ok=True)
        gone += max(0, len(files) - keep)
    return gone


def wav_seconds(path: Path) -> float:
    """Duration of a WAV file in seconds."""
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


# ---------------------------------------------------------------------------- the server's side
class Announcer:
    """Hands out audio URLs for calls and synthesises them in one background worker process.

    ``request`` never blocks: it answers the URL at once and writes one line to the worker; the
    worker keeps the order of requests (the board plays calls in order too) and never takes more
    than one core.
    """

    def __init__(self, cache_dir: Path = DEFAULT_CACHE, url_prefix: str = "/audio/") -> None:
        self.cache_dir = Path(cache_dir)
        self.url_prefix = url_prefix
        self._proc: subprocess.Popen | None = None
        self._asked: dict[str, float] = {}  # name -> when we asked the worker (no second job meanwhile)
        self._enabled = False

    def start(self) -> None:
        """Enable synthesis. The worker starts with the first call, not here: a server that never
        calls anyone (most test servers) never pays for loading the voice."""
        if os.environ.get("MADOGUCHI_VOICE", "on").lower() in ("off", "0", "no"):
            raise RuntimeError("disabled by MADOGUCHI_VOICE=off")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._enabled = True

    def stop(self, timeout: float = 10.0) -> None:
        """Close the worker's stdin: it finishes the phrase in hand and exits. Wait for it (killing it
        after ``timeout``): a worker left running outlives the server, and under an init that does not
        reap (a container's) it stays defunct."""
        self._enabled = False
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            _reap(proc, timeout)

    def _worker(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "display_board.announcer", str(self.cache_dir)],
                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                bufsize=1,
            )
            threading.Thread(target=self._read_results, args=(self._proc,), daemon=True).start()
        return self._proc

    def _read_results(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            if line.startswith("error "):
                log.error("announcer: %s", line.rstrip())
            elif not line.startswith("ok "):
                log.debug("announcer: %s", line.rstrip())  # library chatter (e.g. pyopenjtalk's ONNX notice)

    def short_url(self, number: str, counter: int) -> str:
        """The URL of the call's short form (made by the same job as :meth:`request`)."""
        return self.url_prefix + short_phrase(number, counter).name

    def request(self, number: str, counter: int, recall: bool = False) -> str:
        """The URL the board will play for this call; synthesis is queued if the file is missing."""
        name = call_phrase(number, counter, recall).name
        now = time.monotonic()
        if self._enabled and now - self._asked.get(name, -1e9) > 60 and not (self.cache_dir / name).is_file():
            self._asked[name] = now
            if len(self._asked) > 1000:  # forget old requests on a long-running server
                self._asked = {k: v for k, v in self._asked.items() if now - v < 60}
            for _ in range(2):  # a worker that died is started again once
                try:
                    w = self._worker()
                    w.stdin.write(f"{number}\t{counter}\t{int(recall)}\n")
                    w.stdin.flush()
                    break
                except (BrokenPipeError, OSError, ValueError):
                    dead, self._proc = self._proc, None
                    if dead is not None:
                        _reap(dead, 0.0)  # it is gone or going: no defunct process left behind
        return self.url_prefix + name

    def synthesise(self, number: str, counter: int, recall: bool = False) -> Path:
        """Blocking: make sure the files exist and return the full phrase's path (tests, pre-generation)."""
        return self.cache_dir / render_to(number, counter, str(self.cache_dir), recall)


def _reap(proc: subprocess.Popen, timeout: float) -> None:
    """Wait for a worker to end, killing it after ``timeout`` seconds."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def worker_main(cache_dir: str) -> int:
    """The worker process: one ``number<TAB>counter<TAB>recall`` job per stdin line, in order, until EOF."""
    for line in sys.stdin:
        try:
            number, counter, *rest = line.rstrip("\n").split("\t")
            print("ok", render_to(number, int(counter), cache_dir, bool(rest and rest[0] == "1")), flush=True)
        except Exception as e:  # one bad phrase must not stop the announcements after it
            print("error", repr(line), type(e).__name__, e, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1]))
