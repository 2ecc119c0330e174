"""The backends the sink contract suite runs against, and what a backend module provides.

Each backend lives in a module ``tests/sinks/backend_<kind>.py`` that defines
``make_backend(request, tmp_path) -> Backend``; the suite finds every such module, so adding a
backend touches no shared file. A backend that needs a server takes it from a fixture with
``request.getfixturevalue(...)`` (and is never skipped in CI: conftest turns a skip into a
failure there).

Optional abilities (``unavailable``, ``forbidden``, ``lose_next_answer``) are None when a
backend cannot express them; the tests that need one run only for the backends that have it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rotator.sinks.base import Sink


@dataclass
class Backend:
    sink: Sink
    #: Another handle on the same storage, as a second process would open it.
    reopen: Callable[[], Sink]
    #: What a consumer reads for a credential right now (the raw secret), or None.
    consumer_reads: Callable[[str], str | None]
    #: A handle on the same storage whose backend cannot be reached (or times out).
    unavailable: Callable[[], Sink] | None = None
    #: A handle whose identity may read but is refused every write.
    forbidden: Callable[[], Sink] | None = None
    #: Arrange that the next write of ``sink`` lands but its answer is lost.
    lose_next_answer: Callable[[], None] | None = None
    cleanups: list[Callable[[], None]] = field(default_factory=list)


MakeBackend = Callable[[pytest.FixtureRequest, Path], Backend]


def discover() -> dict[str, MakeBackend]:
    """Every ``backend_<kind>`` module of this package, by kind."""
    found: dict[str, MakeBackend] = {}
    package = importlib.import_module("tests.sinks")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("backend_"):
            module = importlib.import_module(f"tests.sinks.{info.name}")
            found[info.name.removeprefix("backend_")] = module.make_backend
    return found
