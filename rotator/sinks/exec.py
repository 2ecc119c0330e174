"""The exec sink: a program of the ops team's stores the secrets, called once per operation.

The protocol is part of the contract with ops (README, "The exec sink"). The rotator runs
``COMMAND VERB [CREDENTIAL]``, the command's words as settings split them (``shlex``), as an
argument list and never through a shell:

- ``put-secret CREDENTIAL``: the secret on standard input, UTF-8, with no newline;
- ``put-metadata CREDENTIAL``: one JSON object on standard input (then a newline), the same
  document as the file sink's ``B.meta.json``: every field, times in ISO 8601 UTC with ``Z``,
  the pending fields only when set, ``"credential"``, the credential's own name, and
  ``"workspace"``, the workspace's;
- ``get CREDENTIAL``: prints ``{"metadata": OBJECT or null, "secret_sha256": HEX or null}``;
- ``list``: prints a JSON array of the credentials it holds metadata for;
- ``history-get CREDENTIAL`` and ``history-put CREDENTIAL`` (optional): print, or store from
  standard input, the credential's rotation history (one JSON object; ``null`` when none is
  kept yet). A program that exits with status 2 for them (a usage error: it does not know the
  verbs) keeps no history: the history is unavailable for this sink, nothing else changes.

Workspaces. One program (one command) usually serves every workspace of a workspaces file, and
two workspaces may both have a credential ``billing``: the program must keep each
``ROTATOR_WORKSPACE`` apart. The rotator does not rely on it: a record is read as this
credential's only when it names this workspace and credential (a record naming neither was
written before records named them, and is read as this one's, as the other sinks read theirs).
A program that keeps every workspace in one place therefore hands one workspace the other's
record: that read raises ``SinkMetadataError`` and the credential is blocked, never rotated
over the other workspace's key.

The program runs in the rotator's working directory, in a session (process group) of its own.
A call is over when the program has exited and its standard output and error are closed (a
child it leaves holding them counts as still running). Exit status 0 is success. Any other
status, a signal, or a call still running after ``timeout_seconds`` (its whole process group is
then killed with SIGKILL) is a failure whose outcome is unknown: a write raises
``SinkUnavailableError`` (``state_unknown``; the next read settles it), ``get`` and ``list``
raise ``SinkError``. A program that cannot be started at all wrote nothing: ``SinkError``.

The program's environment is built, not inherited: ``PATH``, ``HOME`` and ``LANG`` from the
rotator's own environment (when set there), ``ROTATOR_WORKSPACE``, and ``ROTATOR_CREDENTIAL``
for the verbs that take one. The rotator's own API key, tokens of other sinks and cloud
credentials never reach it. Standard output is parsed for ``get``, ``list`` and
``history-get`` (at most 1 MiB) and discarded for the writes; neither output ever reaches an
error message.

Standard error is logged as ``sink.exec.stderr`` (info for a write, debug for ``get`` and
``list``, warning for a call that failed), cut to 1,000 characters, after every secret this
sink can recognise is blanked (``rotator.sinks.exec_stderr``). A program may well print the key it
holds (``debug: holding <key>``), so the sink remembers, for its lifetime (one pass), the
SHA-256 of every secret it meets: the hashes of every record it reads or writes
(``secret_sha256``, ``previous_secret_sha256``, ``pending_secret_sha256``), the hash ``get``
prints, and every secret it writes, which it also keeps (as :class:`~rotator.models.Secret`) to
find it split over lines.
``get``'s standard error is blanked after its answer is read, so the hashes of that very answer
count. ``list`` runs before a pass has read anything, when the sink knows no hash yet: what it
prints is held and logged when the sink is closed at the end of the pass, by when every
credential the pass read has told the sink its hashes. What stays out of reach: a key of a
credential the pass never read, printed by ``list``; a key the sink has only a hash of, printed
in pieces with other text between them, or encoded (reversed, base64); a key this sink never
met (another workspace's: each workspace has its own sink); a piece shorter than 8 characters
of a secret the sink wrote (see ``exec_stderr.blank_and_cut``).

Versions. The program has no compare-and-set, so the version token is a digest of the ``get``
answer (the metadata as a canonical JSON object, and the secret's hash). Each write runs ``get``
first and raises ``SinkConflictError`` when that version is not the expected one, then the
``put``, then ``get`` again for the new version; writers of one credential in this process
(every ExecSink of the same workspace) are serialised around those three calls. The residual race: a
writer outside this process (a person, another rotator not holding the workspace's pass lock)
that changes the credential between that ``get`` and the ``put`` is not detected, and its
change may be overwritten. The pass lock is what keeps a second rotator out.

This module knows nothing of the settings (the constructor takes plain values), of the engine,
or of how the program stores anything; the metadata document is the file sink's, built and
checked by the one record parser every sink shares (``rotator.sinks.base``). It logs through
``structlog.get_logger()`` itself: a sink may import only models, errors and the sink
interface, not ``rotator.logging``, and the pipeline that module configured (redaction
included) still applies.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import selectors
import signal
import subprocess
import threading
import time
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final

import structlog

from rotator.errors import (
    HistoryUnsupportedError,
    SinkConflictError,
    SinkError,
    SinkMetadataError,
    SinkNameError,
    SinkUnavailableError,
)
from rotator.models import Secret, SinkRecord
from rotator.settings.sinks import ExecSinkSettings
from rotator.sinks.base import (
    BaseSink,
    SinkContext,
    SinkState,
    history_from_document,
    history_to_document,
    is_sha256_hex,
    record_from_document,
    record_to_document,
)
from rotator.sinks.exec_stderr import blank_and_cut

#: The only variables of the rotator's environment the program sees.
INHERITED_VARIABLES: Final = ("PATH", "HOME", "LANG")
#: Longest standard output of ``get`` or ``list`` read; an answer is a few hundred bytes.
MAX_OUTPUT_BYTES: Final = 1024 * 1024
# Standard error read into memory before blanking; the rest is drained unread so the program
# never blocks on a full pipe.
_STDERR_KEEP_BYTES: Final = 64 * 1024
_READ_CHUNK: Final = 65536
# Pipes accept PIPE_BUF bytes without blocking once select says they are writable.
_WRITE_CHUNK: Final = 4096
_TIMED_OUT: Final = "timed out"
# The exit status of a usage error: a program that does not know a history verb answers it.
_USAGE_STATUS: Final = 2

# One guard per (workspace, credential) for the whole process, shared by every ExecSink: a
# second handle on the same storage (another sink object) must wait as well.
_GUARDS: dict[tuple[str, str], threading.Lock] = {}
_GUARDS_LOCK = threading.Lock()


def _guard(workspace: str, credential: str) -> threading.Lock:
    with _GUARDS_LOCK:
        return _GUARDS.setdefault((workspace, credential), threading.Lock())


def name_problem(credential: str) -> str | None:
    """Why ``credential`` cannot be handed to the program as one argument; or None."""
    if credential == "":
        return "an empty name cannot be passed as an argument"
    if credential.startswith("-"):
        return "a name starting with '-' would be read as an option"
    if "\0" in credential:
        return "a name containing NUL cannot be passed as an argument"
    if any(unicodedata.category(char) == "Cc" for char in credential):
        return "a name containing control characters cannot be passed safely"
    try:
        credential.encode("utf-8")
    except UnicodeEncodeError:
        return "a name that is not valid Unicode cannot be passed as an argument"
    return None


@dataclass(frozen=True)
class _Answer:
    """A ``get`` answer, checked for shape; the metadata not yet checked as a record."""

    metadata: dict[str, Any] | None
    secret_sha256: str | None

    @property
    def version(self) -> str | None:
        if self.metadata is None and self.secret_sha256 is None:
            return None
        digest = hashlib.sha256()
        canonical = "-" if self.metadata is None else json.dumps(self.metadata, sort_keys=True)
        digest.update(canonical.encode())
        digest.update(b"\0" + (self.secret_sha256 or "-").encode())
        return digest.hexdigest()[:32]


@dataclass(frozen=True)
class _Outcome:
    """How one call of the program ended."""

    #: The exit status, negative for a signal (as subprocess reports it); None: killed by us.
    status: int | None
    stdout: bytes
    #: The first bytes of standard error, not yet blanked.
    stderr: bytes
    #: Why the call was stopped (a timeout, too much output), or None.
    stopped: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.stopped is None and self.status == 0

    def failure(self) -> str:
        if self.stopped is not None:
            return self.stopped
        if self.status is not None and self.status < 0:
            try:
                name = signal.Signals(-self.status).name
            except ValueError:
                name = f"signal {-self.status}"
            return f"was killed by {name}"
        return f"exited with status {self.status}"


class ExecSink(BaseSink):
    """A :class:`~rotator.sinks.base.Sink` that runs a program for every operation."""

    kind = "exec"

    def __init__(
        self,
        command: tuple[str, ...],
        workspace: str,
        timeout_seconds: float,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if not command or not command[0]:
            raise ValueError("the exec sink needs a command")
        if timeout_seconds <= 0:
            raise ValueError("the exec sink's timeout must be positive")
        self._command = tuple(command)
        self._workspace = workspace
        self._timeout = float(timeout_seconds)
        # Read at every call: os.environ by default, a fixed mapping in tests.
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        # What standard error is blanked of (see the module's docstring); threads of a pass
        # add to them, so they change only under the lock.
        self._recognised = threading.Lock()
        self._known_sha256: set[str] = set()
        self._written: list[Secret] = []
        # ``list``'s standard error, logged at close(): (log context, the call's outcome).
        self._held: list[tuple[dict[str, Any], _Outcome]] = []
        # The program answered a history verb with a usage error: it keeps no history.
        self._no_history = False

    def __repr__(self) -> str:
        return f"ExecSink(program={self._command[0]!r}, workspace={self._workspace!r})"

    # -- the Sink protocol -------------------------------------------------------------------

    def describe(self) -> str:
        # Only the program: its arguments are the ops team's and might carry anything.
        extra = len(self._command) - 1
        suffix = f" (+{extra} argument{'s' if extra != 1 else ''})" if extra else ""
        return f"exec:{self._command[0]}{suffix}"

    def place_of(self, credential: str) -> str:
        return f"{self.describe()} {credential}"

    def check_names(self, credentials: Collection[str]) -> Mapping[str, str]:
        # The program receives each name exactly as it is: no two names can collide.
        return {
            credential: problem
            for credential in dict.fromkeys(credentials)
            if (problem := name_problem(credential)) is not None
        }

    def list_credentials(self) -> Sequence[str]:
        outcome = self._call("list", None)
        with self._recognised:
            # Logged at close(), once the pass has read the credentials (see the docstring).
            self._held.append((structlog.contextvars.get_contextvars(), outcome))
        if not outcome.succeeded:
            raise SinkError(f"{self._what('list', None)} {outcome.failure()}")
        try:
            document = json.loads(outcome.stdout.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SinkError(f"{self._what('list', None)} printed no valid UTF-8 JSON") from exc
        if not isinstance(document, list) or not all(isinstance(n, str) for n in document):
            raise SinkError(f"{self._what('list', None)} printed no JSON array of names")
        return sorted(set(document))

    def read(self, credential: str) -> SinkState:
        self._check_name(credential)
        answer = self._get(credential)
        where = self._what("get", credential)
        record = (
            None
            if answer.metadata is None
            else record_from_document(
                answer.metadata, where=where, credential=credential, workspace=self._workspace
            )
        )
        return SinkState(record=record, secret_sha256=answer.secret_sha256, version=answer.version)

    def write_record(
        self, credential: str, record: SinkRecord, *, expected_version: str | None
    ) -> str | None:
        self._recognise(
            record.secret_sha256, record.previous_secret_sha256, record.pending_secret_sha256
        )
        document = record_to_document(record, credential=credential, workspace=self._workspace)
        data = (json.dumps(document) + "\n").encode()
        return self._put(credential, "put-metadata", data, expected_version)

    def write_secret(
        self, credential: str, secret: Secret, *, expected_version: str | None
    ) -> str | None:
        with self._recognised:
            self._written.append(secret)
        self._recognise(secret.sha256())
        return self._put(credential, "put-secret", secret.reveal().encode(), expected_version)

    def read_history(self, credential: str) -> list[dict[str, Any]]:
        """``history-get CREDENTIAL``: the history document it prints (``null``: none yet).

        A program that exits with status 2 (a usage error: it does not know the verb) keeps no
        history: ``HistoryUnsupportedError``, and the sink asks it no more this pass.
        """
        self._check_name(credential)
        outcome = self._history_call("history-get", credential)
        where = self._what("history-get", credential)
        try:
            document = json.loads(outcome.stdout.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise SinkMetadataError(f"{where} printed no valid UTF-8 JSON") from None
        if document is None:
            return []
        return history_from_document(
            document, where=where, credential=credential, workspace=self._workspace
        )

    def write_history(self, credential: str, entries: Sequence[Mapping[str, Any]]) -> None:
        """``history-put CREDENTIAL`` with the history document on standard input."""
        self._check_name(credential)
        document = history_to_document(entries, credential=credential, workspace=self._workspace)
        with _guard(self._workspace, credential):
            self._history_call("history-put", credential, (json.dumps(document) + "\n").encode())

    def close(self) -> None:
        """Log what ``list`` printed on standard error, blanked of every hash met since."""
        with self._recognised:
            held, self._held = self._held, []
        for context, outcome in held:
            with structlog.contextvars.bound_contextvars(**context):
                self._log_stderr("list", None, outcome)

    # -- internals ---------------------------------------------------------------------------

    def _what(self, verb: str, credential: str | None) -> str:
        target = f" {credential!r}" if credential is not None else ""
        return f"exec sink program {self._command[0]!r} `{verb}{target}`"

    @staticmethod
    def _check_name(credential: str) -> None:
        problem = name_problem(credential)
        if problem is not None:
            raise SinkNameError(f"credential {credential!r} cannot be stored: {problem}")

    def _put(
        self,
        credential: str,
        verb: str,
        data: bytes,
        expected_version: str | None,
    ) -> str | None:
        self._check_name(credential)
        with _guard(self._workspace, credential):
            if self._get(credential).version != expected_version:
                raise SinkConflictError(
                    f"{self._what(verb, credential)}: {credential!r} changed since it was read"
                )
            outcome = self._call(verb, credential, data)
            self._log_stderr(verb, credential, outcome)
            if not outcome.succeeded:
                # It may have stored everything, part, or nothing: only a read can tell.
                raise SinkUnavailableError(f"{self._what(verb, credential)} {outcome.failure()}")
            try:
                return self._get(credential).version
            except SinkError as exc:
                raise SinkUnavailableError(
                    f"{self._what(verb, credential)} succeeded but reading it back failed: {exc}"
                ) from exc

    def _history_call(self, verb: str, credential: str, data: bytes = b"") -> _Outcome:
        """One call of a history verb; ``HistoryUnsupportedError`` when the program does not
        know it (exit status 2), remembered for the sink's lifetime."""
        if self._no_history:
            raise HistoryUnsupportedError(self._no_history_reason())
        outcome = self._call(verb, credential, data)
        self._log_stderr(verb, credential, outcome)
        if outcome.stopped is None and outcome.status == _USAGE_STATUS:
            self._no_history = True
            raise HistoryUnsupportedError(self._no_history_reason())
        if not outcome.succeeded:
            raise SinkError(f"{self._what(verb, credential)} {outcome.failure()}")
        return outcome

    def _no_history_reason(self) -> str:
        return (
            f"exec sink program {self._command[0]!r} does not know the verbs history-get and "
            "history-put (it exited with status 2)"
        )

    def _get(self, credential: str) -> _Answer:
        outcome = self._call("get", credential)
        try:
            return self._answer(credential, outcome)
        finally:
            # After the answer was read: the hashes it holds blank the key it prints.
            self._log_stderr("get", credential, outcome)

    def _answer(self, credential: str, outcome: _Outcome) -> _Answer:
        where = self._what("get", credential)
        if not outcome.succeeded:
            raise SinkError(f"{where} {outcome.failure()}")
        try:
            document = json.loads(outcome.stdout.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            # Name the call only: a decoder message quotes the content.
            raise SinkMetadataError(f"{where} printed no valid UTF-8 JSON") from exc
        if not isinstance(document, dict):
            raise SinkMetadataError(f"{where} printed no JSON object")
        metadata = document.get("metadata")
        # Every hash it prints, before anything is checked: a record refused (another
        # workspace's) names a live key all the same.
        hashes = [document.get("secret_sha256")]
        if isinstance(metadata, dict):
            hashes += [
                metadata.get(name)
                for name in ("secret_sha256", "previous_secret_sha256", "pending_secret_sha256")
            ]
        self._recognise(*hashes)
        for field in ("metadata", "secret_sha256"):
            if field not in document:
                raise SinkMetadataError(f"{where}: the answer has no {field!r} field")
        if metadata is not None and not isinstance(metadata, dict):
            raise SinkMetadataError(f"{where}: metadata is neither an object nor null")
        digest = document["secret_sha256"]
        if digest is not None and not is_sha256_hex(digest):
            raise SinkMetadataError(f"{where}: secret_sha256 is not a lowercase hex SHA-256")
        return _Answer(metadata=metadata, secret_sha256=digest)

    def _environment(self, credential: str | None) -> dict[str, str]:
        environment = {
            name: self._environ[name] for name in INHERITED_VARIABLES if name in self._environ
        }
        environment["ROTATOR_WORKSPACE"] = self._workspace
        if credential is not None:
            environment["ROTATOR_CREDENTIAL"] = credential
        return environment

    def _recognise(self, *hashes: object) -> None:
        """Remember every SHA-256 among ``hashes`` (others are ignored) for blanking."""
        valid = {h for h in hashes if isinstance(h, str) and is_sha256_hex(h)}
        if valid:
            with self._recognised:
                self._known_sha256 |= valid

    def _call(self, verb: str, credential: str | None, data: bytes = b"") -> _Outcome:
        """Run ``COMMAND VERB [CREDENTIAL]`` with ``data`` on standard input, within the timeout.

        Standard output is kept (up to the limit) only for the verbs that answer; standard
        error is returned for the caller to log once it knows what to blank.
        """
        argv = [*self._command, verb] if credential is None else [*self._command, verb, credential]
        keep_stdout = verb in ("get", "list", "history-get")
        try:
            process = subprocess.Popen(  # noqa: S603 - an argument list, never a shell
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._environment(credential),
                close_fds=True,
                # Its own process group, so a timeout kills whatever it started too.
                start_new_session=True,
                bufsize=0,
            )
        except OSError as exc:
            raise SinkError(
                f"{self._what(verb, credential)} could not be started: "
                f"{exc.strerror or type(exc).__name__}"
            ) from exc
        try:
            stdout, stderr, stopped = _communicate(
                process, data, time.monotonic() + self._timeout, keep_stdout=keep_stdout
            )
            if stopped is not None:
                _kill_group(process)
            status = process.wait() if stopped is not None else process.returncode
        except BaseException:
            # An interrupt, or a bug here: never leave the program running behind us.
            _kill_group(process)
            process.wait()
            raise
        if stopped == _TIMED_OUT:
            stopped = f"did not finish within {self._timeout:g} s and was killed"
        return _Outcome(status=status, stdout=stdout, stderr=stderr, stopped=stopped)

    def _log_stderr(self, verb: str, credential: str | None, outcome: _Outcome) -> None:
        if not outcome.stderr:
            return
        with self._recognised:
            written = [secret.reveal() for secret in self._written]
            known = frozenset(self._known_sha256)
        text, truncated = blank_and_cut(outcome.stderr, written, known)
        if not text:
            return
        logger = structlog.get_logger()
        context: dict[str, Any] = {
            "workspace": self._workspace,
            "verb": verb,
            "program": self._command[0],
            "outcome": "succeeded" if outcome.succeeded else outcome.failure(),
            "stderr": text,
            "stderr_truncated": truncated,
        }
        if credential is not None:
            context["credential"] = credential
        if not outcome.succeeded:
            logger.warning("sink.exec.stderr", **context)
        elif verb in ("get", "list", "history-get"):
            # A read's chatter, at every call of every pass: only when asked for.
            logger.debug("sink.exec.stderr", **context)
        else:
            logger.info("sink.exec.stderr", **context)


def _communicate(
    process: subprocess.Popen[bytes], data: bytes, deadline: float, *, keep_stdout: bool
) -> tuple[bytes, bytes, str | None]:
    """Feed ``data`` to the program and collect its output until it exits or ``deadline``.

    Returns standard output (empty unless ``keep_stdout``), the first
    ``_STDERR_KEEP_BYTES`` of standard error, and why the call must be stopped (None when it
    finished by itself). Unlike ``Popen.communicate`` it never holds more than the limits in
    memory, whatever the program prints.
    """
    if process.stdin is None or process.stdout is None or process.stderr is None:
        raise RuntimeError("the program was started without pipes")  # pragma: no cover
    stdout = bytearray()
    stderr = bytearray()
    pending = memoryview(data)
    with selectors.DefaultSelector() as selector:
        if pending:
            selector.register(process.stdin, selectors.EVENT_WRITE)
        else:
            process.stdin.close()
        selector.register(process.stdout, selectors.EVENT_READ)
        selector.register(process.stderr, selectors.EVENT_READ)
        try:
            while selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return bytes(stdout), bytes(stderr), _TIMED_OUT
                for key, _events in selector.select(remaining):
                    stream: IO[bytes] = key.fileobj  # type: ignore[assignment]
                    if stream is process.stdin:
                        try:
                            written = os.write(stream.fileno(), pending[:_WRITE_CHUNK])
                        except BrokenPipeError:
                            written = len(pending)  # it stopped reading: nothing more to give
                        pending = pending[written:]
                        if not pending:
                            selector.unregister(stream)
                            stream.close()
                        continue
                    chunk = os.read(stream.fileno(), _READ_CHUNK)
                    if not chunk:
                        selector.unregister(stream)
                        continue
                    if stream is process.stdout:
                        if keep_stdout:
                            stdout += chunk
                            if len(stdout) > MAX_OUTPUT_BYTES:
                                return (
                                    b"",
                                    bytes(stderr),
                                    f"printed more than {MAX_OUTPUT_BYTES} bytes",
                                )
                    elif len(stderr) < _STDERR_KEEP_BYTES:
                        stderr += chunk[: _STDERR_KEEP_BYTES - len(stderr)]
        finally:
            for stream in (process.stdin, process.stdout, process.stderr):
                with contextlib.suppress(OSError):
                    stream.close()
    # Both outputs are closed; the program itself may still be running.
    try:
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return bytes(stdout), bytes(stderr), _TIMED_OUT
    return bytes(stdout), bytes(stderr), None


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the program's whole process group (what it started, too)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def from_settings(settings: ExecSinkSettings, context: SinkContext) -> ExecSink:
    """The sink of one workspace, from its settings (the registry's entry point)."""
    return ExecSink(tuple(settings.command), context.workspace, settings.timeout_seconds)
