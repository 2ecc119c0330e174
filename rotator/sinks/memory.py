"""An in-memory sink: a dict per credential, thread-safe, for tests of the engine and the CLI.

It follows the same contract as every other backend (tests/sinks/test_contract.py), and adds
hooks that let a test inject failures without patching anything:

- ``fail_next[operation] = error``: the next call of that operation raises ``error`` and changes
  nothing (one shot);
- ``fail_next_after_applying[operation] = error``: the next write applies, *then* raises (a
  timeout whose write landed: ``SinkUnavailableError`` with the sink holding the new value);
- ``fail_always[operation] = error``: every call raises, until the entry is removed;
- ``name_problems[credential] = problem``: ``check_names`` reports it and every operation on
  that credential raises ``SinkNameError``.

Operations are ``write_secret``, ``write_record``, ``read_record`` and ``stored_sha256``.
``operations`` logs each call as ``(operation, credential)`` in order, so a test can assert the
two-phase order of a delivery. It knows nothing of the engine or of any other backend.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Final

from rotator.errors import LockHeldError, SinkError, SinkMetadataError, SinkNameError
from rotator.models import Secret, SinkRecord, base_name

#: The operations failures can be injected into.
OPERATIONS: Final = frozenset({"write_secret", "write_record", "read_record", "stored_sha256"})
#: The operations that change what is stored (the only ones ``fail_next_after_applying`` fits).
_WRITES: Final = frozenset({"write_secret", "write_record"})


class MemorySink:
    """A :class:`~rotator.sinks.base.Sink` that keeps secrets and records in dicts."""

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
        self.operations: list[tuple[str, str]] = []
        self._secrets: dict[str, Secret] = {}
        self._records: dict[str, SinkRecord] = {}
        # Guards the dicts above; the pass lock below is a separate, non-blocking one.
        self._state_lock = threading.Lock()
        self._pass_lock = threading.Lock()
        self._check_hooks()

    def __repr__(self) -> str:
        return f"MemorySink(credentials={len(self._secrets)}, records={len(self._records)})"

    # -- the Sink protocol -------------------------------------------------------------------

    def describe(self) -> str:
        return "memory"

    def check_names(self, credentials: Collection[str]) -> Mapping[str, str]:
        return {
            credential: problem
            for credential in credentials
            if (problem := self._name_problem(credential)) is not None
        }

    def read_record(self, credential: str) -> SinkRecord | None:
        with self._operation("read_record", credential):
            record = self._records.get(credential)
        if (
            record is not None
            and record.key_name is not None
            and base_name(record.key_name) != credential
        ):
            raise SinkMetadataError(
                f"memory record of {credential!r} names a key of another credential"
            )
        return record

    def write_record(self, credential: str, record: SinkRecord) -> None:
        with self._operation("write_record", credential):
            self._records[credential] = record

    def write_secret(self, credential: str, secret: Secret) -> None:
        with self._operation("write_secret", credential):
            self._secrets[credential] = secret

    def stored_sha256(self, credential: str) -> str | None:
        with self._operation("stored_sha256", credential):
            secret = self._secrets.get(credential)
        return None if secret is None else secret.sha256()

    @contextmanager
    def lock(self) -> Iterator[None]:
        if not self._pass_lock.acquire(blocking=False):
            raise LockHeldError("the memory sink's pass lock is held")
        try:
            yield
        finally:
            self._pass_lock.release()

    # -- for tests ---------------------------------------------------------------------------

    def secret_of(self, credential: str) -> Secret | None:
        """The secret stored for ``credential``, or None (tests compare it with a NewKey's)."""
        with self._state_lock:
            return self._secrets.get(credential)

    def record_of(self, credential: str) -> SinkRecord | None:
        """The stored record as written, bypassing checks and injected failures."""
        with self._state_lock:
            return self._records.get(credential)

    # -- internals ---------------------------------------------------------------------------

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
    def _operation(self, operation: str, credential: str) -> Iterator[None]:
        """Run one operation's body under the state lock, with the injected failures around it."""
        self._check_hooks()
        with self._state_lock:
            self.operations.append((operation, credential))
            problem = self._name_problem(credential)
            if problem is not None:
                raise SinkNameError(f"{credential!r}: {problem}")
            if operation in self.fail_always:
                raise self.fail_always[operation]
            if operation in self.fail_next:
                raise self.fail_next.pop(operation)
            yield
            if operation in self.fail_next_after_applying:
                raise self.fail_next_after_applying.pop(operation)
