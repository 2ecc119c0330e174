"""Fixtures for the emulator's own tests: a running emulator with two seeded workspaces."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from rotator.emulator import Emulator
from tests.emulator.emulator_support import ADMIN_SECRET, seed


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(seed()) as emu:
        yield emu


@pytest.fixture
def admin(emulator: Emulator) -> Iterator[httpx.Client]:
    """A client authenticated as Acme's seeded admin key."""
    with httpx.Client(
        base_url=emulator.url, headers={"Authorization": f"Bearer {ADMIN_SECRET}"}
    ) as client:
        yield client
