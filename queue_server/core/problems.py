"""Configuration problems: what was wrong and where (file, line or key path), for check-config."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    where: str  # "line 12" or a key path such as "sites.honcho.counters[2].departments"
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.where}: {self.reason}"


class ConfigError(Exception):
    """Raised when a configuration file cannot be used; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def line_of(text: str, *needles: str) -> int | None:
    """The 1-based line where the needles first appear in order (a TOML key path, roughly).

    tomllib gives no positions, so we find a table header or key by text: good enough to send
    an editor to the right place.
    """
    lines = text.splitlines()
    start = 0
    found: int | None = None
    for needle in needles:
        pattern = re.compile(r"(^|[\s\[.\"'])" + re.escape(needle) + r"($|[\s\].=\"'])")
        for i in range(start, len(lines)):
            if pattern.search(lines[i]):
                found, start = i + 1, i + 1
                break
        else:
            return found
    return found


def where(path: Path | str, text: str, key_path: str, *needles: str) -> str:
    """'line N (key path)' when the line can be found, else the key path alone."""
    line = line_of(text, *needles) if needles else None
    return f"line {line} ({key_path})" if line else key_path
