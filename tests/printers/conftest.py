from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.printers.fake_printer import NORMAL, FakePrinter


@pytest.fixture
def fake_printer() -> Iterator[FakePrinter]:
    """A fake Epson on a free loopback port, answering DLE EOT as an online printer with paper."""
    printer = FakePrinter(status=dict(NORMAL))
    yield printer
    printer.close()
