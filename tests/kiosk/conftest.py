"""Fixtures for the card reader tests: a real pcscd with the vpcd driver, and virtual cards.

``make test`` runs as root on a machine where nothing is running yet, so the ``pcscd`` fixture
starts the daemon itself (``pcscd --foreground``, own process group, killed at the end) and waits
— by polling PC/SC, not by sleeping — until the vpcd reader is listed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.kiosk.virtual_card import PcscdFailed, PcscdNotInstalled, running_pcscd, wait_reader_state


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running pcscd with the vpcd reader; yields the reader's name."""
    try:
        import smartcard  # noqa: F401
    except ImportError:
        pytest.fail("pyscard is not installed in the venv (needs Debian swig and libpcsclite-dev)")
    log_path = tmp_path_factory.mktemp("pcscd") / "pcscd.log"
    try:
        with running_pcscd(log_path) as reader:
            yield reader
    except PcscdNotInstalled as e:
        pytest.skip(str(e))
    except PcscdFailed as e:
        pytest.fail(str(e))


@pytest.fixture
def insert_card(pcscd: str) -> Iterator[Callable[..., object]]:
    """Factory: ``insert_card(**options)`` puts a :class:`VirtualMyNumberCard` into the reader.

    At the end of the test every card is removed and the test waits until pcscd has seen the
    reader empty, so the next test starts from a clean reader. It also checks that no test ever
    made the card select EF 0001 (the My Number).
    """
    from tests.kiosk.virtual_card import VirtualMyNumberCard, wait_for_empty_poll

    cards: list[VirtualMyNumberCard] = []

    def insert(wait: bool = True, **options: object) -> VirtualMyNumberCard:
        card = VirtualMyNumberCard(**options)  # type: ignore[arg-type]
        card.insert()
        cards.append(card)
        if wait:
            wait_reader_state(True)
        return card

    yield insert
    for card in cards:
        card.remove()
    if cards:
        wait_for_empty_poll()
    wait_reader_state(False)
    for card in cards:
        assert card.error is None, f"virtual card failed: {card.error!r}"
        assert not any(c.apdu.startswith(bytes.fromhex("00A4020C020001")) for c in card.commands), (
            "EF 0001 (the My Number) was selected"
        )
