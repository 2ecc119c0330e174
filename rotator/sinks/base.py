"""The one interface every secret sink implements.

A sink stores, per credential (a base name within one workspace), the secret its consumer reads
and beside it a :class:`~rotator.models.SinkRecord` of metadata that never holds the secret. The
engine drives a two-phase delivery through it (record pending, write secret, record current,
read back by hash); a sink only stores and reads back, it decides nothing.

Errors are :mod:`rotator.errors` ``SinkError`` subclasses; ``SinkUnavailableError`` means the
state of the write is unknown, and the engine then does nothing irreversible.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from rotator.models import Secret, SinkRecord


@runtime_checkable
class Sink(Protocol):
    """Where one workspace's credentials are delivered."""

    #: The ROTATOR_SINK value of this backend (``file``, ``memory``, ...), for logs.
    kind: str

    def describe(self) -> str:
        """Where this sink writes, for logs and ``check-config``; never a secret or token."""

    def check_names(self, credentials: Collection[str]) -> Mapping[str, str]:
        """Problems with storing these credentials, by credential (collisions, reserved names).

        A credential named here must not be delivered this pass; the others may.
        """

    def read_record(self, credential: str) -> SinkRecord | None:
        """The stored metadata, or None when there is none; SinkMetadataError when unreadable."""

    def write_record(self, credential: str, record: SinkRecord) -> None:
        """Replace the metadata durably and atomically."""

    def write_secret(self, credential: str, secret: Secret) -> None:
        """Replace the secret durably and atomically."""

    def stored_sha256(self, credential: str) -> str | None:
        """SHA-256 (lowercase hex) of the secret stored now, or None when there is none."""

    def lock(self) -> AbstractContextManager[None]:
        """Hold this workspace's pass lock; raises LockHeldError at once when another holds it."""
