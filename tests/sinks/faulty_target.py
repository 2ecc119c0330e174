"""A real sink as one target of a credential, with at most one fault armed on its next secret
write: refused before it lands (``refuse``), landed with its answer lost (``lose``), or landed
and the process dying right after (``die``). Everything else is the real sink's. Used by the
target-pair contract tests and the model of several targets."""

from __future__ import annotations

from collections.abc import Collection

from rotator.errors import SinkUnavailableError
from rotator.models import Secret, SinkRecord
from rotator.sinks.base import BaseSink, Sink, SinkState
from tests.conftest import Crash


class FaultyTarget(BaseSink):
    def __init__(self, inner: Sink, label: str | None = None) -> None:
        self.inner, self.label = inner, label
        self.kind, self.can_read_secret = inner.kind, inner.can_read_secret
        self.armed: str | None = None

    def describe(self) -> str:
        return self.label or self.inner.describe()

    def place_of(self, credential: str) -> str:
        return f"{self.label}:{credential}" if self.label else self.inner.place_of(credential)

    def check_names(self, credentials: Collection[str]) -> dict[str, str]:
        return dict(self.inner.check_names(credentials))

    def list_credentials(self) -> list[str]:
        return list(self.inner.list_credentials())

    def read(self, credential: str) -> SinkState:
        return self.inner.read(credential)

    def read_secret(self, credential: str) -> Secret:
        return self.inner.read_secret(credential)

    def write_record(
        self, credential: str, record: SinkRecord, *, expected_version: str | None
    ) -> str | None:
        return self.inner.write_record(credential, record, expected_version=expected_version)

    def write_secret(
        self, credential: str, secret: Secret, *, expected_version: str | None
    ) -> str | None:
        fault, self.armed = self.armed, None
        if fault == "refuse":
            raise SinkUnavailableError(f"{self.describe()}: refused (injected)")
        version = self.inner.write_secret(credential, secret, expected_version=expected_version)
        if fault == "lose":
            raise SinkUnavailableError(f"{self.describe()}: answer lost (injected)")
        if fault == "die":
            raise Crash(f"after {self.describe()}'s secret write")
        return version

    def prepare(self) -> None:
        self.inner.prepare()

    def close(self) -> None:
        self.inner.close()
