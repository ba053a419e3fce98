"""queue_server/core is the pure core (DESIGN.md §3): no module of it imports a shell library or
touches files, sockets or the clock. A static check of every import and call, so a newcomer can
trust the folder's name."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import queue_server.core as core

CORE_DIR = Path(core.__file__).parent
MODULES = sorted(p for p in CORE_DIR.glob("*.py"))

# libraries of the shells: storage, the websocket server, the event loop, the kiosk, printers,
# card readers, the simulation engine, raw sockets — and the rest of the project's shells
FORBIDDEN = {"sqlalchemy", "alembic", "websockets", "asyncio", "kivy", "escpos", "smartcard", "simpy",
             "socket", "subprocess", "threading", "os", "io", "shutil", "urllib", "http", "time",
             "kiosk", "printers", "simulation", "display_board", "counter"}
SHELL_LIBRARIES = ("sqlalchemy", "alembic", "websockets", "asyncio", "kivy", "escpos", "smartcard", "simpy",
                   "socket", "kiosk", "printers", "simulation", "display_board", "counter")
# calls that read files or the clock (``now`` is passed in; files are read by queue_server.loaders)
FORBIDDEN_CALLS = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "glob", "iterdir",
                   "now", "today", "utcnow", "time", "monotonic", "perf_counter", "load"}


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def _calls(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            out.append((node.lineno, name))
    return out


def test_the_core_has_modules() -> None:
    names = {p.stem for p in MODULES}
    assert {"model", "transitions", "dispatch", "lobby", "catalogue", "journey", "i18n"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_shell_imports(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    bad = [f"{path.name}:{line}: imports {mod}" for line, mod in _imports(tree)
           if mod.split(".")[0] in FORBIDDEN
           or (mod.startswith("queue_server.") and not mod.startswith("queue_server.core"))]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_file_or_clock_calls(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    bad = [f"{path.name}:{line}: calls {name}()" for line, name in _calls(tree) if name in FORBIDDEN_CALLS]
    assert not bad, "\n".join(bad)


def test_relative_imports_stay_inside_the_core() -> None:
    bad = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level > 1:
                bad.append(f"{path.name}:{node.lineno}: from {'.' * node.level}{node.module or ''}")
    assert not bad, "\n".join(bad)


def test_every_core_module_imports_alone() -> None:
    """Importing the core pulls in no shell library (checked on the live interpreter too; the
    stdlib may load helpers such as urllib for itself, so only the shells' libraries count)."""
    import subprocess
    import sys

    names = [f"queue_server.core.{m.name}" for m in pkgutil.iter_modules([str(CORE_DIR)])]
    code = ("import sys\n" + "".join(f"import {n}\n" for n in names)
            + f"print(sorted(m for m in {sorted(SHELL_LIBRARIES)!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=CORE_DIR.parents[1])
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    for n in names:
        importlib.import_module(n)
