"""The file sink: one folder, a secret file and a ``.meta.json`` beside it per credential.

The layout is part of the contract with ops (contract.md, "The file sink"): for a credential B,
``<name>`` holds the secret alone (no trailing newline, mode 0600) and ``<name>.meta.json`` its
:class:`~rotator.models.SinkRecord`, where ``<name>`` is B with every character outside
``A-Za-z0-9._-`` replaced by ``_``. Every write is atomic and durable: a temporary file
``.<target>.tmp-<16 hex>`` in the same folder, created 0600, written, fsynced, renamed over the
target, then the folder fsynced. The pass lock is ``fcntl.flock`` on ``.rotator.lock``.

Times in the metadata are ISO 8601 UTC with ``Z``: whole seconds when the instant has none
(``2026-11-27T03:00:00Z``), else with microseconds (``2026-11-27T03:00:00.250000Z``), so a
record round-trips exactly. Reading accepts any ISO 8601 form with an offset; a time with no
offset is refused (it would be a guess).

File-system errors become :mod:`rotator.errors` ``SinkError``s naming the path, never content.
This module knows nothing of the engine, of the API, or of how workspaces map to folders.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from rotator.errors import (
    LockHeldError,
    SinkError,
    SinkMetadataError,
    SinkNameError,
    SinkUnavailableError,
)
from rotator.models import Secret, SinkRecord, base_name, utc

LOCK_FILE_NAME: Final = ".rotator.lock"
META_SUFFIX: Final = ".meta.json"

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_TEMP_NAME = re.compile(r"^\..+\.tmp-[0-9a-f]{16}$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# The longest temporary name is ".<name>.meta.json.tmp-<16 hex>" and must fit NAME_MAX (255).
_MAX_NAME_LENGTH: Final = 255 - len(".") - len(META_SUFFIX) - len(".tmp-") - 16
# Metadata is a few hundred bytes; a huge file is not ours and is not read into memory.
_MAX_META_BYTES: Final = 64 * 1024
# Errors of a network file system whose outcome cannot be known from here.
_UNKNOWN_OUTCOME_ERRNOS: Final = frozenset({errno.ETIMEDOUT, errno.ESTALE, errno.EIO})

_STRING_FIELDS: Final = (
    "key_id",
    "key_name",
    "previous_key_id",
    "pending_key_id",
)
_HASH_FIELDS: Final = ("secret_sha256", "pending_secret_sha256")
_TIME_FIELDS: Final = ("expires", "delivered_at", "retire_previous_after")
_PENDING_FIELDS: Final = ("pending_key_id", "pending_secret_sha256")


def file_name(credential: str) -> str:
    """The file name of ``credential``'s secret: unsafe characters become ``_``."""
    return _UNSAFE_CHARS.sub("_", credential)


def format_time(value: datetime) -> str:
    """ISO 8601 UTC with ``Z``; microseconds only when the instant has some."""
    return utc(value).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time with an offset (``Z`` included) into UTC; ValueError otherwise."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("a time without an offset is ambiguous")
    return value.astimezone(UTC)


class FileSink:
    """A :class:`~rotator.sinks.base.Sink` writing into one local (or mounted) folder."""

    kind = "file"

    def __init__(self, directory: Path) -> None:
        self._directory = Path(os.path.abspath(directory))
        # Credentials that collide with another, as found by the last check_names call.
        self._collisions: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"FileSink(directory={str(self._directory)!r})"

    @property
    def directory(self) -> Path:
        return self._directory

    # -- the Sink protocol -------------------------------------------------------------------

    def describe(self) -> str:
        return f"file:{self._directory}"

    def check_names(self, credentials: Collection[str]) -> Mapping[str, str]:
        problems: dict[str, str] = {}
        by_name: dict[str, list[str]] = {}
        for credential in dict.fromkeys(credentials):
            problem = _reserved_name_problem(credential)
            if problem is not None:
                problems[credential] = problem
            else:
                by_name.setdefault(file_name(credential), []).append(credential)
        collisions: dict[str, str] = {}
        for name, sharing in by_name.items():
            if len(sharing) < 2:
                continue
            for credential in sharing:
                others = ", ".join(repr(other) for other in sharing if other != credential)
                collisions[credential] = f"file name {name!r} is also that of {others}"
        self._collisions = collisions
        problems.update(collisions)
        return problems

    def read_record(self, credential: str) -> SinkRecord | None:
        path = self._meta_path(credential)
        try:
            with path.open("rb") as meta_file:
                raw = meta_file.read(_MAX_META_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _translate(exc, f"cannot read {path}") from exc
        if len(raw) > _MAX_META_BYTES:
            raise SinkMetadataError(f"{path} is larger than {_MAX_META_BYTES} bytes")
        try:
            document = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            # Name the file only: a decoder message about its content must not reach a log.
            raise SinkMetadataError(f"{path} is not valid UTF-8 JSON") from exc
        record = _record_from_json(document, path)
        if record.key_name is not None and base_name(record.key_name) != credential:
            raise SinkMetadataError(
                f"{path} names a key of another credential, not of {credential!r}"
            )
        return record

    def write_record(self, credential: str, record: SinkRecord) -> None:
        data = (json.dumps(_record_to_json(record), indent=2) + "\n").encode()
        self._atomic_write(self._meta_path(credential), data)

    def write_secret(self, credential: str, secret: Secret) -> None:
        self._atomic_write(self._secret_path(credential), secret.reveal().encode())

    def stored_sha256(self, credential: str) -> str | None:
        path = self._secret_path(credential)
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _translate(exc, f"cannot read {path}") from exc
        return hashlib.sha256(content).hexdigest()

    @contextmanager
    def lock(self) -> Iterator[None]:
        self._ensure_directory()
        path = self._directory / LOCK_FILE_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise _translate(exc, f"cannot open the lock {path}") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise LockHeldError(f"{path} is held by another pass") from exc
            except OSError as exc:
                raise _translate(exc, f"cannot lock {path}") from exc
            try:
                # Holding the lock, no other pass writes here: a temporary file now is one a
                # killed process left behind.
                self._remove_stale_temporaries()
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # -- internals ---------------------------------------------------------------------------

    def _secret_path(self, credential: str) -> Path:
        return self._directory / self._checked_name(credential)

    def _meta_path(self, credential: str) -> Path:
        return self._directory / (self._checked_name(credential) + META_SUFFIX)

    def _checked_name(self, credential: str) -> str:
        problem = _reserved_name_problem(credential) or self._collisions.get(credential)
        if problem is not None:
            raise SinkNameError(f"credential {credential!r} cannot be stored: {problem}")
        return file_name(credential)

    def _ensure_directory(self) -> None:
        try:
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise _translate(exc, f"cannot create {self._directory}") from exc

    def _atomic_write(self, target: Path, data: bytes) -> None:
        """Replace ``target`` with ``data``: all or nothing, durable when this returns."""
        self._ensure_directory()
        temporary = target.with_name(f".{target.name}.tmp-{secrets.token_hex(8)}")
        try:
            fd = os.open(
                temporary,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
                0o600,
            )
        except OSError as exc:
            raise _translate(exc, f"cannot create a temporary file in {self._directory}") from exc
        try:
            try:
                # The umask may have narrowed the mode; never widened, but make it exact.
                os.fchmod(fd, 0o600)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, target)
        except BaseException as exc:
            # Whatever stopped the write (an OSError, an interrupt), no temporary outlives it.
            with suppress(FileNotFoundError):
                temporary.unlink()
            if isinstance(exc, OSError):
                raise _translate(exc, f"cannot write {target}") from exc
            raise
        try:
            self._fsync_directory()
        except OSError as exc:
            # The rename is visible but maybe not durable: only a read-back can tell.
            raise SinkUnavailableError(
                f"wrote {target} but could not make it durable: {exc.strerror}"
            ) from exc

    def _fsync_directory(self) -> None:
        fd = os.open(self._directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _remove_stale_temporaries(self) -> None:
        try:
            entries = list(os.scandir(self._directory))
        except OSError as exc:
            raise _translate(exc, f"cannot list {self._directory}") from exc
        for entry in entries:
            if _TEMP_NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
                with suppress(FileNotFoundError):
                    os.unlink(entry.path)


def _reserved_name_problem(credential: str) -> str | None:
    """Why ``credential`` can never be stored in a folder, whatever the others are; or None."""
    name = file_name(credential)
    if name in ("", ".", ".."):
        return f"its file name would be {name!r}"
    if name.endswith(META_SUFFIX):
        return f"its file name {name!r} ends in {META_SUFFIX!r}, reserved for metadata"
    if name == LOCK_FILE_NAME:
        return f"its file name {name!r} is the pass lock's"
    if _TEMP_NAME.match(name):
        return f"its file name {name!r} looks like a temporary file, which passes delete"
    if len(name) > _MAX_NAME_LENGTH:
        return f"its file name is longer than {_MAX_NAME_LENGTH} characters"
    return None


def _translate(exc: OSError, what: str) -> SinkError:
    """The SinkError for a failed file-system call; the message names the path, never content."""
    message = f"{what}: {exc.strerror or type(exc).__name__}"
    if exc.errno in _UNKNOWN_OUTCOME_ERRNOS:
        return SinkUnavailableError(message)
    return SinkError(message)


def _record_to_json(record: SinkRecord) -> dict[str, str | None]:
    def time(value: datetime | None) -> str | None:
        return None if value is None else format_time(value)

    document: dict[str, str | None] = {
        "key_id": record.key_id,
        "key_name": record.key_name,
        "expires": time(record.expires),
        "delivered_at": time(record.delivered_at),
        "secret_sha256": record.secret_sha256,
        "previous_key_id": record.previous_key_id,
        "retire_previous_after": time(record.retire_previous_after),
    }
    # The pending fields exist only between the two phases of a delivery (contract.md).
    if record.pending_key_id is not None:
        document["pending_key_id"] = record.pending_key_id
    if record.pending_secret_sha256 is not None:
        document["pending_secret_sha256"] = record.pending_secret_sha256
    return document


def _record_from_json(document: Any, path: Path) -> SinkRecord:
    """A SinkRecord from parsed JSON; SinkMetadataError naming the field (never its value)."""
    if not isinstance(document, dict):
        raise SinkMetadataError(f"{path} does not hold a JSON object")
    fields: dict[str, Any] = {}
    for field_name in _STRING_FIELDS + _HASH_FIELDS + _TIME_FIELDS:
        value = document.get(field_name)
        if value is None:
            fields[field_name] = None
            continue
        if not isinstance(value, str):
            raise SinkMetadataError(f"{path}: {field_name} is not a string")
        if field_name in _HASH_FIELDS and not _SHA256_HEX.match(value):
            raise SinkMetadataError(f"{path}: {field_name} is not a lowercase hex SHA-256")
        if field_name in _TIME_FIELDS:
            try:
                fields[field_name] = parse_time(value)
            except ValueError as exc:
                raise SinkMetadataError(
                    f"{path}: {field_name} is not an ISO 8601 time with an offset"
                ) from exc
        else:
            fields[field_name] = value
    if (fields["pending_key_id"] is None) != (fields["pending_secret_sha256"] is None):
        raise SinkMetadataError(f"{path}: {' and '.join(_PENDING_FIELDS)} must come together")
    return SinkRecord(**fields)
