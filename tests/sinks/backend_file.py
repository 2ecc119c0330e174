"""The file sink in the contract suite: a real folder on the real file system."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rotator.sinks.file import FileSink
from tests.sinks.backends import Backend


def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    directory = tmp_path / "secrets"

    def consumer_reads(credential: str) -> str | None:
        path = directory / credential
        return path.read_text() if path.exists() else None

    return Backend(
        sink=FileSink(directory),
        reopen=lambda: FileSink(directory),
        consumer_reads=consumer_reads,
        unavailable=lambda: FileSink(Path(os.devnull) / "secrets"),
    )
