"""An in-memory sink: dicts per credential, thread-safe, for tests of the engine and the CLI.

It follows the same contract as every other backend (tests/sinks/test_contract.py), with a
version counter per credential for compare-and-set, and adds hooks that let a test inject
failures without patching anything:

- ``fail_next[operation] = error``: the next call of that operation raises ``error`` and changes
  nothing (one shot);
- ``fail_next_after_applying[operation] = error``: the next write applies, *then* raises (a
  timeout whose write landed: ``SinkUnavailableError`` with the sink holding the new value);
- ``fail_always[operation] = error``: every call raises, until the entry is removed;
- ``name_problems[credential] = problem``: ``check_names`` reports it, and reading or writing
  that credential raises ``SinkNameError`` (as the file sink refuses a reserved name), so a
  caller that ignores ``check_names`` fails loudly;
- ``rollouts[credential] = [WorkloadRollout, ...]``: what :meth:`rollout` answers.

Operations are ``read``, ``write_secret``, ``write_record``, ``list_credentials``,
``read_history`` and ``write_history`` (the rotation history, kept apart from the record: its
writes never move the version); a read of a
credential written since the last :meth:`prepare` (the start of a pass) is also ``read_back``,
so a test can fail the read-backs of a delivery and nothing else.
``operations`` logs each call as ``(operation, credential)`` in order, so a test can assert the
two-phase order of a delivery.

Versions count every change of a credential (``put`` included) and are never reused; a
credential with neither record nor secret has the version None, as the protocol says of
"nothing stored". It knows nothing of the engine or of any other backend.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final

from rotator.errors import SinkConflictError, SinkError, SinkMetadataError, SinkNameError
from rotator.models import Secret, SinkRecord, base_name
from rotator.sinks.base import BaseSink, SinkState, WorkloadRollout, history_to_document

#: The operations failures can be injected into.
OPERATIONS: Final = frozenset(
    {
        "read",
        "read_back",
        "write_secret",
        "write_record",
        "list_credentials",
        "read_history",
        "write_history",
    }
)
#: The operations that change what is stored (the only ones ``fail_next_after_applying`` fits).
_WRITES: Final = frozenset({"write_secret", "write_record"})
#: The operations on one credential (refused for a credential with a name problem).
_BY_CREDENTIAL: Final = _WRITES | {"read"}


class MemorySink(BaseSink):
    """A :class:`~rotator.sinks.base.Sink` that keeps secrets and records in dicts."""

    can_read_secret = True

    kind = "memory"

    def __init__(
        self,
        *,
        fail_next: Mapping[str, SinkError] | None = None,
        fail_next_after_applying: Mapping[str, SinkError] | None = None,
        fail_always: Mapping[str, SinkError] | None = None,
        name_problems: Mapping[str, str] | None = None,
    ) -> None:
        self.fail_next: dict[str, SinkError] = dict(fail_next or {})
        self.fail_next_after_applying: dict[str, SinkError] = dict(fail_next_after_applying or {})
        self.fail_always: dict[str, SinkError] = dict(fail_always or {})
        self.name_problems: dict[str, str] = dict(name_problems or {})
        self.rollouts: dict[str, list[WorkloadRollout]] = {}
        self.operations: list[tuple[str, str]] = []
        self._secrets: dict[str, Secret] = {}
        self._records: dict[str, SinkRecord] = {}
        self._versions: dict[str, int] = {}
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._written: set[str] = set()
        self._state_lock = threading.Lock()
        self._check_hooks()

    def __repr__(self) -> str:
        return f"MemorySink(credentials={len(self._secrets)}, records={len(self._records)})"

    # -- the Sink protocol -------------------------------------------------------------------

    def describe(self) -> str:
        return "memory"

    def place_of(self, credential: str) -> str:
        return f"memory:{credential}"

    def check_names(self, credentials: Collection[str]) -> Mapping[str, str]:
        return {
            credential: problem
            for credential in credentials
            if (problem := self._name_problem(credential)) is not None
        }

    def list_credentials(self) -> Sequence[str]:
        with self._operation("list_credentials", ""):
            return sorted(self._records)

    def read(self, credential: str) -> SinkState:
        with self._state_lock:
            back = credential in self._written
        if back:
            with self._operation("read_back", credential):
                pass
        with self._operation("read", credential):
            record = self._records.get(credential)
            secret = self._secrets.get(credential)
            version = self._version_of(credential)
        if (
            record is not None
            and record.key_name is not None
            and base_name(record.key_name) != credential
        ):
            raise SinkMetadataError(
                f"memory record of {credential!r} names a key of another credential"
            )
        return SinkState(
            record=record,
            secret_sha256=None if secret is None else secret.sha256(),
            version=version,
        )

    def read_secret(self, credential: str) -> Secret:
        with self._operation("read", credential):
            secret = self._secrets.get(credential)
        if secret is None:
            raise SinkError(f"memory sink holds no secret for {credential!r}")
        return secret

    def write_record(
        self, credential: str, record: SinkRecord, *, expected_version: str | None
    ) -> str | None:
        with self._operation("write_record", credential, expected_version) as bump:
            self._records[credential] = record
            return bump()

    def write_secret(
        self, credential: str, secret: Secret, *, expected_version: str | None
    ) -> str | None:
        with self._operation("write_secret", credential, expected_version) as bump:
            self._secrets[credential] = secret
            return bump()

    def rollout(
        self, credential: str, delivered_at: datetime, now: datetime
    ) -> Sequence[WorkloadRollout]:
        return list(self.rollouts.get(credential, ()))

    def prepare(self) -> None:
        with self._state_lock:
            self._written.clear()

    def read_history(self, credential: str) -> list[dict[str, Any]]:
        with self._operation("read_history", credential):
            return [dict(entry) for entry in self._history.get(credential, [])]

    def write_history(self, credential: str, entries: Sequence[Mapping[str, Any]]) -> None:
        document = history_to_document(entries, credential=credential, workspace=None)
        with self._operation("write_history", credential):
            self._history[credential] = document["entries"]

    # -- for tests ---------------------------------------------------------------------------

    def secret_of(self, credential: str) -> Secret | None:
        """The secret stored for ``credential``, or None (tests compare it with a NewKey's)."""
        with self._state_lock:
            return self._secrets.get(credential)

    def record_of(self, credential: str) -> SinkRecord | None:
        """The stored record as written, bypassing checks and injected failures."""
        with self._state_lock:
            return self._records.get(credential)

    def put(self, credential: str, *, record: SinkRecord | None, secret: Secret | None) -> None:
        """Set what is stored, as another writer (or a person) would, moving the version on."""
        with self._state_lock:
            if record is None:
                self._records.pop(credential, None)
            else:
                self._records[credential] = record
            if secret is None:
                self._secrets.pop(credential, None)
            else:
                self._secrets[credential] = secret
            self._versions[credential] = self._versions.get(credential, 0) + 1

    # -- internals ---------------------------------------------------------------------------

    def _version_of(self, credential: str) -> str | None:
        """The version token of what is stored now; call with the state lock held."""
        if credential not in self._records and credential not in self._secrets:
            return None
        return str(self._versions.get(credential, 0))

    def _name_problem(self, credential: str) -> str | None:
        if not credential:
            return "an empty credential name cannot be stored"
        return self.name_problems.get(credential)

    def _check_hooks(self) -> None:
        # A misspelt operation would otherwise never fire and a test would pass for no reason.
        for hooks, allowed in (
            (self.fail_next, OPERATIONS),
            (self.fail_always, OPERATIONS),
            (self.fail_next_after_applying, _WRITES),
        ):
            unknown = set(hooks) - allowed
            if unknown:
                raise ValueError(
                    f"unknown sink operations {sorted(unknown)}; use {sorted(allowed)}"
                )

    @contextmanager
    def _operation(
        self, operation: str, credential: str, expected_version: str | None = None
    ) -> Iterator[_Bump]:
        """Run one operation's body under the state lock, with the injected failures around it."""
        self._check_hooks()
        with self._state_lock:
            # A read-back is logged once, as the read it also is.
            if operation != "read_back":
                self.operations.append((operation, credential))
            if operation in self.fail_always:
                raise self.fail_always[operation]
            if operation in self.fail_next:
                raise self.fail_next.pop(operation)
            if operation in _BY_CREDENTIAL:
                problem = self._name_problem(credential)
                if problem is not None:
                    raise SinkNameError(f"memory: {credential!r} cannot be stored: {problem}")
            if operation in _WRITES:
                seen = self._version_of(credential)
                if expected_version != seen:
                    raise SinkConflictError(
                        f"memory: {credential!r} changed since it was read "
                        f"(version {seen}, expected {expected_version})"
                    )
            if operation in _WRITES:
                self._written.add(credential)
            yield _Bump(self._versions, credential)
            if operation in self.fail_next_after_applying:
                raise self.fail_next_after_applying.pop(operation)


class _Bump:
    """Moves a credential's version on after a write; returns the new version token."""

    def __init__(self, versions: dict[str, int], credential: str) -> None:
        self._versions = versions
        self._credential = credential

    def __call__(self) -> str:
        self._versions[self._credential] = self._versions.get(self._credential, 0) + 1
        return str(self._versions[self._credential])
