"""The in-memory sink in the contract suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from rotator.errors import SinkUnavailableError
from rotator.sinks.memory import MemorySink
from tests.sinks.backends import Backend


def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    sink = MemorySink()

    def consumer_reads(credential: str) -> str | None:
        secret = sink.secret_of(credential)
        return None if secret is None else secret.reveal()

    def lose_next_answer() -> None:
        for operation in ("write_secret", "write_record"):
            sink.fail_next_after_applying[operation] = SinkUnavailableError("answer lost")

    return Backend(
        sink=sink,
        reopen=lambda: sink,
        consumer_reads=consumer_reads,
        lose_next_answer=lose_next_answer,
    )
