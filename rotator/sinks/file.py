"""The file sink: one folder, a secret file and a ``.meta.json`` beside it per credential.

The layout is part of the contract with ops (README, docs/sinks.md): for a credential B,
``<name>`` holds the secret alone (no trailing newline, mode 0600) and ``<name>.meta.json`` its
:class:`~rotator.models.SinkRecord`, where ``<name>`` is B with every character outside
``A-Za-z0-9._-`` replaced by ``_``; ``<name>.history.json`` holds its rotation history, written
atomically like the metadata and never listed as a credential. The metadata also names its
credential (``"credential"``), so :meth:`FileSink.list_credentials` knows a credential even
when its name needed escaping, and a record some other credential wrote is never trusted.

Writes. Every write is atomic and durable: a temporary file ``.<target>.tmp-<16 hex>`` in the
same folder, created 0600 (never through a symlink), written, fsynced, renamed over the target,
then the folder fsynced. The rename replaces whatever appeared at the target meanwhile (a
symlink included) and never writes through it. A write that fails or is interrupted removes
its own temporary file; one a killed process left is removed by :meth:`FileSink.prepare`, which
the runner calls once a pass while it holds the pass lock, and by nothing else (outside the
lock, another process's temporary file may be a write in flight).

Versions. The version token of a credential is a digest of its metadata file's bytes and its
secret's hash. A write checks it and writes while holding ``flock`` on the folder itself, so
of two writers (threads or processes) with one version exactly one wins, and a person's edit
since the read is detected. Reads take no lock (they never wait): a read racing a write may
mix the two, and a write based on it then succeeds only if that mix is what is stored by then.

Reads open regular files only, up to a size limit: a symlink, FIFO, device or folder at a sink
path is refused at once (never followed, never blocking), and so is a write over it, since the
write's version check reads it first.

Times in the metadata are ISO 8601 UTC with ``Z``: whole seconds when the instant has none
(``2026-11-27T03:00:00Z``), else with microseconds (``2026-11-27T03:00:00.250000Z``), so a
record round-trips exactly. Reading accepts any ISO 8601 form with an offset; a time with no
offset is refused (it would be a guess).

File-system errors become :mod:`rotator.errors` ``SinkError``s naming the path, never content.
This module knows nothing of the engine, of the API, of the pass lock (rotator.locks.file) or
of how workspaces map to folders.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from rotator.errors import (
    SinkConflictError,
    SinkError,
    SinkMetadataError,
    SinkNameError,
    SinkPermissionError,
    SinkUnavailableError,
)
from rotator.models import LOCK_FILE_NAME, Secret, SinkRecord
from rotator.settings.sinks import FileSinkSettings
from rotator.sinks.base import (
    BaseSink,
    SinkContext,
    SinkState,
    history_from_document,
    history_to_document,
    name_problems,
    record_from_document,
    record_to_document,
)

META_SUFFIX: Final = ".meta.json"
#: The rotation history of credential B is ``<name>.history.json`` beside its metadata.
HISTORY_SUFFIX: Final = ".history.json"

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_TEMP_NAME = re.compile(r"^\..+\.tmp-[0-9a-f]{16}$")
# The longest temporary name is ".<name>.history.json.tmp-<16 hex>" and must fit NAME_MAX (255).
_MAX_NAME_LENGTH: Final = 255 - len(".") - len(HISTORY_SUFFIX) - len(".tmp-") - 16
# A history is at most 50 entries of a few hundred bytes each.
_MAX_HISTORY_BYTES: Final = 256 * 1024
# Metadata is a few hundred bytes; a huge file is not ours and is not read into memory.
_MAX_META_BYTES: Final = 64 * 1024
# A key is well under a kilobyte; anything larger at the secret's path is not a key of ours.
_MAX_SECRET_BYTES: Final = 64 * 1024
# Errors of a network file system whose outcome cannot be known from here.
_UNKNOWN_OUTCOME_ERRNOS: Final = frozenset({errno.ETIMEDOUT, errno.ESTALE, errno.EIO})
# The file system refused this process's identity (or is read-only): nothing was changed.
_REFUSED_ERRNOS: Final = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def file_name(credential: str) -> str:
    """The file name of ``credential``'s secret: unsafe characters become ``_``."""
    return _UNSAFE_CHARS.sub("_", credential)


@dataclass(frozen=True)
class _Stored:
    """What is stored for one credential, read under the folder's write guard."""

    meta: bytes | None
    secret_sha256: str | None
    #: The folder's descriptor the guard is held on (its fsync makes a rename durable).
    folder_fd: int


class FileSink(BaseSink):
    """A :class:`~rotator.sinks.base.Sink` writing into one local (or mounted) folder.

    ``fsync`` syncs a descriptor (``os.fsync``): every write calls it on the temporary file
    before the rename and on the folder after it; a test passes its own to observe that order.
    """

    can_read_secret = True

    kind = "file"

    def __init__(self, directory: Path, *, fsync: Callable[[int], None] = os.fsync) -> None:
        self._directory = Path(os.path.abspath(directory))
        self._fsync = fsync

    def __repr__(self) -> str:
        return f"FileSink(directory={str(self._directory)!r})"

    @property
    def directory(self) -> Path:
        return self._directory

    # -- the Sink protocol -------------------------------------------------------------------

    def describe(self) -> str:
        return f"file:{self._directory}"

    def place_of(self, credential: str) -> str:
        return f"file:{self._directory / file_name(credential)}"

    def check_names(self, credentials: Collection[str]) -> Mapping[str, str]:
        return name_problems(
            credentials, stored_name=file_name, problem=_reserved_name_problem, what="file name"
        )

    def list_credentials(self) -> Sequence[str]:
        """Every credential with a metadata file, by the name its record gives.

        A metadata file that cannot be read or parsed is listed by its file name, so that
        reading that credential reports what is wrong with it. Files no credential of this sink
        can have (temporaries, the lock, names ``file_name`` never makes) are skipped.
        """
        try:
            entries = list(os.scandir(self._directory))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise _translate(exc, f"cannot list {self._directory}") from exc
        found: set[str] = set()
        for entry in entries:
            stem = entry.name.removesuffix(META_SUFFIX)
            if (
                stem == entry.name
                or file_name(stem) != stem
                or _reserved_name_problem(stem) is not None
            ):
                continue
            named = _named_credential(Path(entry.path))
            found.add(named if named is not None and file_name(named) == stem else stem)
        return sorted(found)

    def read(self, credential: str) -> SinkState:
        meta_path = self._meta_path(credential)
        raw_meta, digest = self._read_stored(credential)
        record = None if raw_meta is None else _parse_record(raw_meta, meta_path, credential)
        return SinkState(record=record, secret_sha256=digest, version=_version(raw_meta, digest))

    def read_secret(self, credential: str) -> Secret:
        raw = _read_regular(self._secret_path(credential), _MAX_SECRET_BYTES)
        if raw is None:
            raise SinkError(f"{self._secret_path(credential)} holds no secret")
        return Secret(raw.decode())

    def write_record(
        self, credential: str, record: SinkRecord, *, expected_version: str | None
    ) -> str | None:
        meta_path = self._meta_path(credential)
        document = record_to_document(record, credential=credential)
        data = (json.dumps(document, indent=2) + "\n").encode()
        with self._compare_and_set(credential, expected_version) as stored:
            self._atomic_write(meta_path, data, stored.folder_fd)
        # The version of what this call wrote: a later edit by anyone moves the stored one on.
        return _version(data, stored.secret_sha256)

    def write_secret(
        self, credential: str, secret: Secret, *, expected_version: str | None
    ) -> str | None:
        secret_path = self._secret_path(credential)
        data = secret.reveal().encode()
        with self._compare_and_set(credential, expected_version) as stored:
            self._atomic_write(secret_path, data, stored.folder_fd)
        return _version(stored.meta, hashlib.sha256(data).hexdigest())

    def read_history(self, credential: str) -> list[dict[str, Any]]:
        path = self._history_path(credential)
        raw = _read_regular(path, _MAX_HISTORY_BYTES, metadata=True)
        if raw is None:
            return []
        try:
            document = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise SinkMetadataError(f"{path} is not valid UTF-8 JSON") from None
        return history_from_document(
            document, where=str(path), credential=credential, workspace=None
        )

    def write_history(self, credential: str, entries: Sequence[Mapping[str, Any]]) -> None:
        """Replace ``<name>.history.json`` atomically, as the metadata is written, under the
        folder's write guard (it has no version of its own: only a pass holding the lock
        writes it)."""
        path = self._history_path(credential)
        document = history_to_document(entries, credential=credential, workspace=None)
        data = (json.dumps(document, indent=2) + "\n").encode()
        with self._folder_guard() as folder_fd:
            self._atomic_write(path, data, folder_fd)

    def prepare(self) -> None:
        """Remove the temporary files a killed process left; call only with the pass lock held.

        Only here: outside the lock, a temporary file may be another process's write in flight.
        """
        try:
            entries = list(os.scandir(self._directory))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _translate(exc, f"cannot list {self._directory}") from exc
        for entry in entries:
            if not _TEMP_NAME.match(entry.name):
                continue
            try:
                # A folder with such a name is not one of ours; anything else (a file, a
                # symlink, a FIFO) in the temporaries' namespace is removed, never followed.
                if not entry.is_dir(follow_symlinks=False):
                    os.unlink(entry.path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise _translate(exc, f"cannot remove {entry.path}") from exc

    # -- internals ---------------------------------------------------------------------------

    def _secret_path(self, credential: str) -> Path:
        return self._directory / self._checked_name(credential)

    def _meta_path(self, credential: str) -> Path:
        return self._directory / (self._checked_name(credential) + META_SUFFIX)

    def _history_path(self, credential: str) -> Path:
        return self._directory / (self._checked_name(credential) + HISTORY_SUFFIX)

    @staticmethod
    def _checked_name(credential: str) -> str:
        problem = _reserved_name_problem(credential)
        if problem is not None:
            raise SinkNameError(f"credential {credential!r} cannot be stored: {problem}")
        return file_name(credential)

    def _read_stored(self, credential: str) -> tuple[bytes | None, str | None]:
        """The metadata file's bytes and the secret's hash (each None when absent)."""
        raw_meta = _read_regular(self._meta_path(credential), _MAX_META_BYTES, metadata=True)
        raw_secret = _read_regular(self._secret_path(credential), _MAX_SECRET_BYTES)
        digest = None if raw_secret is None else hashlib.sha256(raw_secret).hexdigest()
        return raw_meta, digest

    @contextmanager
    def _compare_and_set(self, credential: str, expected: str | None) -> Iterator[_Stored]:
        """Hold the folder's write guard while checking ``expected`` and writing.

        The guard is ``flock`` on the folder itself: each call opens its own descriptor, so it
        is exclusive among threads and processes alike, and it is held for one write only. It
        catches a person's edit, or a second writer, between this pass's read and its write.
        """
        with self._folder_guard() as fd:
            raw_meta, digest = self._read_stored(credential)
            if _version(raw_meta, digest) != expected:
                raise SinkConflictError(
                    f"{self._meta_path(credential)}: {credential!r} changed since it was read"
                )
            yield _Stored(meta=raw_meta, secret_sha256=digest, folder_fd=fd)

    @contextmanager
    def _folder_guard(self) -> Iterator[int]:
        """Hold ``flock`` on the folder (created if need be); yields the folder's descriptor."""
        try:
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self._directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise _translate(exc, f"cannot create or open the folder {self._directory}") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                raise _translate(exc, f"cannot lock {self._directory}") from exc
            yield fd
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def _atomic_write(self, target: Path, data: bytes, folder_fd: int) -> None:
        """Replace ``target`` with ``data``: all or nothing, durable when this returns."""
        temporary = target.with_name(f".{target.name}.tmp-{secrets.token_hex(8)}")
        try:
            # O_EXCL never opens an existing file, nor follows a symlink planted at the name.
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
                # Durable before it is visible: a crash after the rename never finds it empty.
                self._fsync(fd)
            finally:
                os.close(fd)
            # rename replaces a symlink at the target itself; it never writes through it.
            os.replace(temporary, target)
        except BaseException as exc:
            # Whatever stopped the write (an OSError, an interrupt), its temporary goes with it;
            # should even that fail, prepare() removes it under the next pass's lock.
            with suppress(OSError):
                temporary.unlink()
            if isinstance(exc, OSError):
                raise _translate(exc, f"cannot write {target}") from exc
            raise
        try:
            self._fsync(folder_fd)
        except OSError as exc:
            # The rename is visible but maybe not durable: only a read-back can tell.
            raise SinkUnavailableError(
                f"wrote {target} but could not make it durable: {exc.strerror}"
            ) from exc


def _version(raw_meta: bytes | None, secret_sha256: str | None) -> str | None:
    """The version token of what is stored: a digest of the metadata and the secret's hash."""
    if raw_meta is None and secret_sha256 is None:
        return None
    digest = hashlib.sha256()
    digest.update(raw_meta or b"-")
    digest.update(b"\0" + (secret_sha256 or "-").encode())
    return digest.hexdigest()[:32]


def _read_regular(path: Path, limit: int, *, metadata: bool = False) -> bytes | None:
    """The bytes of a regular file, or None when there is none; never follows a symlink and
    never blocks on a FIFO or a device (a hostile or mistaken file at a sink path)."""
    error = SinkMetadataError if metadata else SinkError
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise error(f"{path} is a symlink; refusing to follow it") from exc
        raise _translate(exc, f"cannot read {path}", error) from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error(f"{path} is not a regular file")
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise error(f"{path} is larger than {limit} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise _translate(exc, f"cannot read {path}", error) from exc
    finally:
        os.close(fd)


def _named_credential(meta_path: Path) -> str | None:
    """The credential a metadata file names, or None when it names none or cannot be read."""
    try:
        raw = _read_regular(meta_path, _MAX_META_BYTES)
        document = None if raw is None else json.loads(raw.decode("utf-8"))
    except (SinkError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    named = document.get("credential") if isinstance(document, dict) else None
    return named if isinstance(named, str) else None


def _parse_record(raw: bytes, path: Path, credential: str) -> SinkRecord:
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        # Name the file only, and chain nothing: the decoder's error carries the content.
        raise SinkMetadataError(f"{path} is not valid UTF-8 JSON") from None
    return record_from_document(document, where=str(path), credential=credential)


def _reserved_name_problem(credential: str) -> str | None:
    """Why ``credential`` can never be stored in a folder, whatever the others are; or None."""
    name = file_name(credential)
    if name in ("", ".", ".."):
        return f"its file name would be {name!r}"
    if name.endswith(META_SUFFIX):
        return f"its file name {name!r} ends in {META_SUFFIX!r}, reserved for metadata"
    if name.endswith(HISTORY_SUFFIX):
        return f"its file name {name!r} ends in {HISTORY_SUFFIX!r}, reserved for the history"
    if name == LOCK_FILE_NAME:
        return f"its file name {name!r} is the pass lock's"
    if _TEMP_NAME.match(name):
        return f"its file name {name!r} looks like a temporary file, which passes delete"
    if len(name) > _MAX_NAME_LENGTH:
        return f"its file name is longer than {_MAX_NAME_LENGTH} characters"
    return None


def _translate(exc: OSError, what: str, default: type[SinkError] = SinkError) -> SinkError:
    """The SinkError for a failed file-system call; the message names the path, never content.

    ``default`` is the class of an error that is neither refused nor of unknown outcome (a
    metadata file that cannot be read is a ``SinkMetadataError``).
    """
    message = f"{what}: {exc.strerror or type(exc).__name__}"
    if exc.errno in _UNKNOWN_OUTCOME_ERRNOS:
        return SinkUnavailableError(message)
    if exc.errno in _REFUSED_ERRNOS:
        return SinkPermissionError(message)
    return default(message)


def from_settings(settings: FileSinkSettings, context: SinkContext) -> FileSink:  # noqa: ARG001
    """The sink of one workspace, from its settings (the registry's entry point); its folder
    is the workspace's own already (a subfolder with several workspaces)."""
    return FileSink(settings.dir)
