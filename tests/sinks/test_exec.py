"""The exec sink's side of the protocol, against real programs run as subprocesses.

``exec_programs/scripted.py`` records every call (arguments, standard input, environment) and
behaves as files in its state folder say, so each test arranges one behaviour of an ops team's
program (a failure, a hang, a flood of output, a malformed answer) and asserts what the sink
did. The contract suite (test_contract.py) runs the example program itself.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from rotator.errors import (
    HistoryUnsupportedError,
    SinkConflictError,
    SinkError,
    SinkMetadataError,
    SinkNameError,
    SinkUnavailableError,
)
from rotator.models import Secret, SinkRecord
from rotator.sinks.exec import MAX_OUTPUT_BYTES, ExecSink
from rotator.sinks.exec_stderr import MAX_STDERR_CHARS, blank_and_cut
from tests.sinks.backend_exec import FOLDER_SINK

PROGRAMS = Path(__file__).resolve().parent / "exec_programs"
SCRIPTED = PROGRAMS / "scripted.py"
SECRET = Secret("pm-key-5ecret-VALUE-0123456789")
#: What the parent process holds and the program must never see.
PARENT_ENVIRON = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "HOME": "/home/rotator",
    "LANG": "C.UTF-8",
    "ROTATOR_API_KEY": "the-rotators-own-credential",
    "ROTATOR_SINK_EXEC_COMMAND": "whatever",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-access-key",
    "VAULT_TOKEN": "hvs.vault-token",
    "PYTHONPATH": "/nowhere",
    "LC_ALL": "C.UTF-8",
}
RECORD = SinkRecord(
    key_id="k-new",
    key_name="billing-sync@2026-11-27T03:00:00Z",
    expires=datetime(2028, 11, 26, 3, 0, 0, tzinfo=UTC),
    delivered_at=datetime(2026, 11, 27, 3, 0, 1, 250000, tzinfo=UTC),
    secret_sha256=SECRET.sha256(),
    previous_key_id="k-old",
    previous_secret_sha256="b" * 64,
    retire_previous_after=datetime(2026, 11, 28, 3, 0, 1, tzinfo=UTC),
)
EMPTY_ANSWER = b'{"metadata": null, "secret_sha256": null}'


class Program:
    """The scripted program's state folder: arrange behaviours, read the recorded calls."""

    def __init__(self, state: Path) -> None:
        self.state = state
        state.mkdir()

    def command(self, *words: str) -> tuple[str, ...]:
        return (sys.executable, "-I", str(SCRIPTED), str(self.state), *words)

    def sink(self, *, timeout: float = 20.0, environ: dict[str, str] | None = None) -> ExecSink:
        environ = PARENT_ENVIRON if environ is None else environ
        return ExecSink(self.command(), "acme", timeout, environ=environ)

    def arrange(self, verb: str, behaviour: str, content: bytes | str = b"") -> None:
        data = content.encode() if isinstance(content, str) else content
        (self.state / f"{verb}.{behaviour}").write_bytes(data)

    def calls(self) -> list[dict[str, Any]]:
        path = self.state / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def verbs(self) -> list[str]:
        return [call["verb"] for call in self.calls()]


@pytest.fixture
def program(tmp_path: Path) -> Program:
    return Program(tmp_path / "state")


def stdin_of(call: dict[str, Any]) -> bytes:
    return bytes.fromhex(call["stdin_hex"])


# -- what each verb receives ------------------------------------------------------------------


def test_put_secret_gets_the_secret_alone_on_stdin(program: Program) -> None:
    version = program.sink().write_secret("billing-sync", SECRET, expected_version=None)
    get_before, put, get_after = program.calls()
    assert put["argv"] == [str(program.state), "put-secret", "billing-sync"]
    assert stdin_of(put) == SECRET.reveal().encode()  # no newline after it
    for get in (get_before, get_after):
        assert get["argv"] == [str(program.state), "get", "billing-sync"]
        assert stdin_of(get) == b""
    # The scripted get answers "nothing stored" whatever was put.
    assert version is None


def test_put_metadata_gets_the_file_sinks_document(program: Program) -> None:
    pending = RECORD.with_pending("k-newer", "a" * 64)
    program.sink().write_record("billing-sync", pending, expected_version=None)
    put = program.calls()[1]
    assert put["argv"] == [str(program.state), "put-metadata", "billing-sync"]
    assert json.loads(stdin_of(put)) == {
        "credential": "billing-sync",
        "workspace": "acme",
        "key_id": "k-new",
        "key_name": "billing-sync@2026-11-27T03:00:00Z",
        "expires": "2028-11-26T03:00:00Z",
        "delivered_at": "2026-11-27T03:00:01.250000Z",
        "secret_sha256": SECRET.sha256(),
        "previous_key_id": "k-old",
        "previous_secret_sha256": "b" * 64,
        "retire_previous_after": "2026-11-28T03:00:01Z",
        "pending_key_id": "k-newer",
        "pending_secret_sha256": "a" * 64,
    }
    assert stdin_of(put).endswith(b"}\n")


def test_metadata_without_pending_fields_has_none(program: Program) -> None:
    program.sink().write_record("billing-sync", RECORD, expected_version=None)
    document = json.loads(stdin_of(program.calls()[1]))
    assert "pending_key_id" not in document
    assert "pending_secret_sha256" not in document
    assert SECRET.reveal() not in json.dumps(document)


def test_list_takes_no_credential(program: Program) -> None:
    program.arrange("list", "stdout", '["crm-export", "billing-sync", "crm-export"]')
    assert program.sink().list_credentials() == ["billing-sync", "crm-export"]
    (call,) = program.calls()
    assert call["argv"] == [str(program.state), "list"]
    assert "ROTATOR_CREDENTIAL" not in call["env"]
    assert call["env"]["ROTATOR_WORKSPACE"] == "acme"


# -- the environment --------------------------------------------------------------------------


def test_environment_is_exactly_path_home_lang_and_the_call(program: Program) -> None:
    sink = program.sink()
    sink.write_secret("billing-sync", SECRET, expected_version=None)
    sink.write_record("billing-sync", RECORD, expected_version=None)
    sink.read("billing-sync")
    for call in program.calls():
        assert call["env"] == {
            "PATH": PARENT_ENVIRON["PATH"],
            "HOME": "/home/rotator",
            "LANG": "C.UTF-8",
            "ROTATOR_WORKSPACE": "acme",
            "ROTATOR_CREDENTIAL": "billing-sync",
        }
        assert SECRET.reveal() not in json.dumps(call["env"]) + json.dumps(call["argv"])


def test_variables_the_parent_lacks_are_not_invented(program: Program) -> None:
    environ = {"PATH": PARENT_ENVIRON["PATH"], "LANG": "C.UTF-8", "ROTATOR_API_KEY": "x"}
    program.sink(environ=environ).read("billing-sync")
    assert set(program.calls()[0]["env"]) == {
        "PATH",
        "LANG",
        "ROTATOR_WORKSPACE",
        "ROTATOR_CREDENTIAL",
    }


def test_environment_defaults_to_the_processes_own(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROTATOR_API_KEY", "the-rotators-own-credential")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-access-key")
    monkeypatch.setenv("HOME", "/home/from-os-environ")
    monkeypatch.setenv("LANG", "C.UTF-8")
    ExecSink(program.command(), "acme", 20.0).read("billing-sync")
    env = program.calls()[0]["env"]
    assert env["HOME"] == "/home/from-os-environ"
    assert env["PATH"] == os.environ["PATH"]
    assert "ROTATOR_API_KEY" not in env
    assert "AWS_SECRET_ACCESS_KEY" not in env


# -- command words ----------------------------------------------------------------------------


def test_command_words_reach_the_program_as_shlex_split_them(
    program: Program, tmp_path: Path
) -> None:
    pwned = tmp_path / "pwned"
    line = " ".join(
        [
            shlex.quote(sys.executable),
            "-I",
            shlex.quote(str(SCRIPTED)),
            shlex.quote(str(program.state)),
            "'two words'",
            '"it\'s"',
            "a\\;b",
            "'$HOME'",
            shlex.quote(f"; touch {pwned}"),
            "`id`",
        ]
    )
    sink = ExecSink(tuple(shlex.split(line)), "acme", 20.0, environ=PARENT_ENVIRON)
    sink.read("billing-sync")
    (call,) = program.calls()
    assert call["argv"] == [
        str(program.state),
        "two words",
        "it's",
        "a;b",
        "$HOME",
        f"; touch {pwned}",
        "`id`",
        "get",
        "billing-sync",
    ]
    assert not pwned.exists()


def test_a_credential_with_shell_characters_is_one_literal_argument(program: Program) -> None:
    program.sink().read("a b;$(id)|'\"*")
    assert program.calls()[0]["argv"][-1] == "a b;$(id)|'\"*"
    assert program.calls()[0]["env"]["ROTATOR_CREDENTIAL"] == "a b;$(id)|'\"*"


# -- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "said"),
    [("1", "exited with status 1"), ("kill", "by SIGKILL"), ("signal-40", "by signal 40")],
)
def test_a_failed_write_has_an_unknown_outcome(program: Program, status: str, said: str) -> None:
    program.arrange("put-secret", "status", status)
    with pytest.raises(SinkUnavailableError, match=said) as caught:
        program.sink().write_secret("billing-sync", SECRET, expected_version=None)
    assert caught.value.state_unknown
    assert SECRET.reveal() not in str(caught.value)
    assert program.verbs() == ["get", "put-secret"]


def test_a_failed_metadata_write_has_an_unknown_outcome(program: Program) -> None:
    program.arrange("put-metadata", "status", "7")
    with pytest.raises(SinkUnavailableError, match="put-metadata 'billing-sync'"):
        program.sink().write_record("billing-sync", RECORD, expected_version=None)


@pytest.mark.parametrize("verb", ["get", "list"])
def test_a_failed_read_is_a_sink_error_of_known_outcome(program: Program, verb: str) -> None:
    program.arrange(verb, "status", "1")
    sink = program.sink()
    operation = sink.list_credentials if verb == "list" else lambda: sink.read("billing-sync")
    with pytest.raises(SinkError, match="exited with status 1") as caught:
        operation()
    assert not caught.value.state_unknown


def test_a_write_whose_first_read_fails_writes_nothing(program: Program) -> None:
    program.arrange("get", "status", "1")
    with pytest.raises(SinkError) as caught:
        program.sink().write_secret("billing-sync", SECRET, expected_version=None)
    assert not caught.value.state_unknown
    assert program.verbs() == ["get"]


def test_a_write_that_landed_but_cannot_be_read_back_is_unknown(program: Program) -> None:
    program.arrange("get", "status", "0\n1")
    with pytest.raises(SinkUnavailableError, match="reading it back failed") as caught:
        program.sink().write_secret("billing-sync", SECRET, expected_version=None)
    assert caught.value.state_unknown
    assert program.verbs() == ["get", "put-secret", "get"]


@pytest.mark.parametrize("make", ["missing", "not-executable", "directory"])
def test_a_program_that_cannot_start_is_a_sink_error(tmp_path: Path, make: str) -> None:
    path = tmp_path / "program"
    if make == "not-executable":
        path.write_text("#!/bin/sh\nexit 0\n")
    elif make == "directory":
        path.mkdir()
    sink = ExecSink((str(path),), "acme", 5.0, environ=PARENT_ENVIRON)
    with pytest.raises(SinkError, match="could not be started") as caught:
        sink.write_secret("billing-sync", SECRET, expected_version=None)
    assert not caught.value.state_unknown
    with pytest.raises(SinkError, match="could not be started"):
        sink.list_credentials()


def test_a_program_that_exits_one_is_unavailable_for_every_operation(tmp_path: Path) -> None:
    sink = ExecSink(("/bin/false",), "acme", 5.0, environ=PARENT_ENVIRON)
    for operation in (
        lambda: sink.read("billing-sync"),
        sink.list_credentials,
        lambda: sink.write_secret("billing-sync", SECRET, expected_version=None),
        lambda: sink.write_record("billing-sync", RECORD, expected_version=None),
    ):
        with pytest.raises(SinkError, match="'/bin/false'"):
            operation()


def process_gone(pid: int) -> bool:
    """Whether ``pid`` no longer runs (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_write_past_the_timeout_is_killed_with_its_children(program: Program) -> None:
    program.arrange("put-secret", "hang")
    started = time.monotonic()
    with pytest.raises(SinkUnavailableError, match=r"did not finish within 2\.5 s") as caught:
        program.sink(timeout=2.5).write_secret("billing-sync", SECRET, expected_version=None)
    assert time.monotonic() - started < 10
    assert caught.value.state_unknown
    pids = [int(pid) for pid in (program.state / "put-secret.pids").read_text().split()]
    assert len(pids) == 2
    for pid in pids:
        assert wait_until(lambda pid=pid: process_gone(pid)), f"process {pid} still runs"


def test_a_read_past_the_timeout_is_a_sink_error(program: Program) -> None:
    program.arrange("get", "hang")
    with pytest.raises(SinkError, match="did not finish") as caught:
        program.sink(timeout=2.0).read("billing-sync")
    assert not caught.value.state_unknown
    parent, child = (int(p) for p in (program.state / "get.pids").read_text().split())
    assert wait_until(lambda: process_gone(parent) and process_gone(child))


def test_a_program_that_closes_its_output_but_runs_on_is_killed(program: Program) -> None:
    program.arrange("put-metadata", "close-and-hang")
    with pytest.raises(SinkUnavailableError, match="did not finish"):
        program.sink(timeout=2.0).write_record("billing-sync", RECORD, expected_version=None)
    pid = int((program.state / "put-metadata.pids").read_text())
    assert wait_until(lambda: process_gone(pid))


class SimulatedInterruptError(Exception):
    """Raised by a test's signal handler, as KeyboardInterrupt would be."""


def test_an_interrupt_during_a_call_leaves_no_program_running(program: Program) -> None:
    # A real signal arriving while the sink waits on the program, as SIGINT would.
    program.arrange("get", "hang")
    pids = program.state / "get.pids"

    def interrupt(signum: int, frame: object) -> None:
        if pids.exists():  # the program and its child run: interrupt the wait on them
            raise SimulatedInterruptError

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1, 0.1)
        with pytest.raises(SimulatedInterruptError):
            program.sink(timeout=30.0).read("billing-sync")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    for pid in (int(p) for p in pids.read_text().split()):
        assert wait_until(lambda pid=pid: process_gone(pid)), f"process {pid} still runs"


def test_a_program_that_never_stops_printing_is_stopped(program: Program) -> None:
    program.arrange("get", "flood")
    started = time.monotonic()
    with pytest.raises(SinkError, match=f"more than {MAX_OUTPUT_BYTES} bytes"):
        program.sink(timeout=30.0).read("billing-sync")
    assert time.monotonic() - started < 15


def test_an_oversized_answer_is_refused(program: Program) -> None:
    program.arrange("list", "stdout", b"[" + b'"x",' * (MAX_OUTPUT_BYTES // 4) + b'"y"]')
    with pytest.raises(SinkError, match="more than"):
        program.sink().list_credentials()


def test_what_a_write_prints_on_stdout_is_ignored(program: Program) -> None:
    program.arrange("put-secret", "stdout", b"\xffnot json at all\n" * 1000)
    program.sink().write_secret("billing-sync", SECRET, expected_version=None)


def test_a_program_that_does_not_read_its_input_still_counts_by_its_status(
    program: Program,
) -> None:
    # More than a pipe holds: the program exits without reading, the sink's write meets a
    # closed pipe and must not fail on it; the exit status decides.
    program.arrange("put-secret", "ignore-stdin")
    big = Secret("k" * (1024 * 1024))
    program.sink().write_secret("billing-sync", big, expected_version=None)
    program.arrange("put-secret", "status", "1")
    with pytest.raises(SinkUnavailableError):
        program.sink().write_secret("billing-sync", big, expected_version=None)


# -- standard error ---------------------------------------------------------------------------


def test_stderr_is_logged_cut_and_blanked(program: Program) -> None:
    noise = "".join(f"line {n} of the program's complaint\n" for n in range(200))
    stderr = f"starting\nthe key is {SECRET.reveal()} here\n{noise}"
    program.arrange("put-secret", "stderr", stderr)
    program.arrange("put-secret", "status", "1")
    with capture_logs() as logs, pytest.raises(SinkUnavailableError) as caught:
        program.sink().write_secret("billing-sync", SECRET, expected_version=None)
    (event,) = [e for e in logs if e["event"] == "sink.exec.stderr"]
    assert event["log_level"] == "warning"
    assert event["workspace"] == "acme"
    assert event["credential"] == "billing-sync"
    assert event["verb"] == "put-secret"
    assert event["outcome"] == "exited with status 1"
    assert len(event["stderr"]) == MAX_STDERR_CHARS
    assert event["stderr_truncated"] is True
    assert event["stderr"].startswith("starting\n**********\nline 0 of")
    assert SECRET.reveal() not in json.dumps(logs)
    # The error names the call, never what the program printed.
    assert "complaint" not in str(caught.value)
    assert SECRET.reveal() not in str(caught.value)


def test_stderr_of_a_successful_read_is_debug_and_of_a_write_info(program: Program) -> None:
    for verb in ("get", "list", "put-secret", "put-metadata"):
        program.arrange(verb, "stderr", f"note: {verb} went fine\n")
    sink = program.sink()
    with capture_logs() as logs:
        sink.list_credentials()
        sink.read("billing-sync")
        sink.write_secret("billing-sync", SECRET, expected_version=None)
        sink.write_record("billing-sync", RECORD, expected_version=None)
        sink.close()
    levels = {
        (e["verb"], e["log_level"], e["stderr"]) for e in logs if e["event"] == "sink.exec.stderr"
    }
    assert levels == {
        ("get", "debug", "note: get went fine"),
        ("list", "debug", "note: list went fine"),
        ("put-secret", "info", "note: put-secret went fine"),
        ("put-metadata", "info", "note: put-metadata went fine"),
    }
    assert all(e["outcome"] == "succeeded" and not e["stderr_truncated"] for e in logs)


def test_stderr_of_list_is_logged_at_close_and_names_no_credential(program: Program) -> None:
    program.arrange("list", "stderr", "listing\n")
    sink = program.sink()
    with capture_logs() as logs:
        sink.list_credentials()
        assert logs == []  # held until the pass has read what it will read
        sink.close()
        sink.close()  # once only
    (event,) = logs
    assert "credential" not in event
    assert event["verb"] == "list"
    assert event["stderr"] == "listing"


def test_no_stderr_logs_nothing(program: Program) -> None:
    with capture_logs() as logs:
        program.sink().list_credentials()
    assert logs == []


def test_a_flood_on_stderr_neither_blocks_nor_fills_memory(program: Program) -> None:
    program.arrange("get", "stderr", b"e" * (4 * 1024 * 1024))
    with capture_logs() as logs:
        assert program.sink().read("billing-sync").empty
    assert len(logs[0]["stderr"]) == MAX_STDERR_CHARS


def test_blanking_is_on_lines_and_survives_bad_bytes() -> None:
    text, cut = blank_and_cut(b"a\xff\nxx SECRET yy\r\nb\n\n", ["SECRET"])
    assert text == "a\ufffd\n**********\nb"
    assert not cut
    assert blank_and_cut(b"SECRET\n") == ("SECRET", False)
    assert blank_and_cut(b"", ["SECRET"]) == ("", False)


# -- the get answer ---------------------------------------------------------------------------

VALID_META = {"credential": "billing-sync", "key_id": "k1", "key_name": "billing-sync"}


def answer(metadata: object = None, secret_sha256: object = None) -> bytes:
    return json.dumps({"metadata": metadata, "secret_sha256": secret_sha256}).encode()


@pytest.mark.parametrize(
    ("stdout", "names"),
    [
        (b"SENTINEL not json", "no valid UTF-8 JSON"),
        (b'{"metadata": "\xff"}', "no valid UTF-8 JSON"),
        (b"", "no valid UTF-8 JSON"),
        (b'["SENTINEL"]', "no JSON object"),
        (b'{"metadata": null}', "no 'secret_sha256' field"),
        (b'{"secret_sha256": null}', "no 'metadata' field"),
        (answer(["SENTINEL"]), "metadata is neither an object nor null"),
        (answer(None, "SENTINEL"), "secret_sha256 is not a lowercase hex SHA-256"),
        (answer(None, "A" * 64), "secret_sha256 is not a lowercase hex SHA-256"),
        (answer(None, 12345), "secret_sha256 is not a lowercase hex SHA-256"),
        # A hash with a trailing newline is not a hash: `$` alone would let it through.
        (answer(None, SECRET.sha256() + "\n"), "secret_sha256 is not a lowercase hex SHA-256"),
        (answer(VALID_META, SECRET.sha256() + "\n"), "secret_sha256 is not a lowercase hex"),
        (answer({**VALID_META, "key_id": ["SENTINEL"]}), "key_id is not a string"),
        (answer({**VALID_META, "secret_sha256": "SENTINEL"}), "secret_sha256 is not a lowercase"),
        (answer({**VALID_META, "pending_secret_sha256": "F" * 64}), "pending_secret_sha256"),
        (answer({**VALID_META, "secret_sha256": SECRET.sha256() + "\n"}), "secret_sha256 is"),
        (
            answer({**VALID_META, "pending_key_id": "k", "pending_secret_sha256": "a" * 64 + "\n"}),
            "pending_secret_sha256 is not a lowercase hex SHA-256",
        ),
        (answer({**VALID_META, "expires": "SENTINEL"}), "expires is not an ISO 8601 time"),
        (answer({**VALID_META, "expires": "2026-01-01T00:00:00"}), "expires is not an ISO"),
        (answer({**VALID_META, "pending_key_id": "SENTINEL"}), "must come together"),
        (answer({**VALID_META, "credential": "SENTINEL"}), "record of another credential"),
        (answer({**VALID_META, "key_name": "SENTINEL@2026-01-01T00:00:00Z"}), "names a key of"),
    ],
)
def test_a_malformed_answer_is_refused_naming_the_field(
    program: Program, stdout: bytes, names: str
) -> None:
    program.arrange("get", "stdout", stdout)
    with pytest.raises(SinkMetadataError, match=names) as caught:
        program.sink().read("billing-sync")
    assert "SENTINEL" not in str(caught.value)
    assert "get 'billing-sync'" in str(caught.value)


@pytest.mark.parametrize(
    "stdout", [b"not json", b'{"a": 1}', b'["a", 1]', b'"billing-sync"', b"\xff"]
)
def test_a_malformed_list_is_refused(program: Program, stdout: bytes) -> None:
    program.arrange("list", "stdout", stdout)
    with pytest.raises(SinkError, match="list"):
        program.sink().list_credentials()


def test_a_record_of_another_workspace_is_never_taken(program: Program) -> None:
    program.arrange("get", "stdout", answer({**VALID_META, "workspace": "globex"}, SECRET.sha256()))
    with pytest.raises(SinkMetadataError, match="record of workspace 'globex', not 'acme'"):
        program.sink().read("billing-sync")
    program.arrange("get", "stdout", answer({**VALID_META, "workspace": ["acme"]}))
    with pytest.raises(SinkMetadataError, match="workspace is not a string"):
        program.sink().read("billing-sync")


def test_a_record_naming_its_workspace_or_none_is_read(program: Program) -> None:
    # A record written before records named their workspace is this workspace's, as with the
    # other sinks; the next write names it.
    for meta in ({**VALID_META, "workspace": "acme"}, VALID_META):
        program.arrange("get", "stdout", answer(meta, SECRET.sha256()))
        assert program.sink().read("billing-sync").record == SinkRecord(
            key_id="k1", key_name="billing-sync"
        )


def test_workspaces_sharing_one_store_never_take_each_others_record(tmp_path: Path) -> None:
    # A program that ignores ROTATOR_WORKSPACE: the example, told the same workspace always.
    store = tmp_path / "store"
    shared = tmp_path / "shared-store.sh"
    shared.write_text(
        "#!/bin/sh\nROTATOR_WORKSPACE=everyone exec "
        + shlex.join([sys.executable, "-I", str(FOLDER_SINK), str(store)])
        + ' "$@"\n'
    )
    shared.chmod(0o755)
    acme = ExecSink((str(shared),), "acme", 20.0)
    globex = ExecSink((str(shared),), "globex", 20.0)
    version = acme.write_secret("billing-sync", SECRET, expected_version=None)
    acme.write_record("billing-sync", RECORD, expected_version=version)
    with pytest.raises(SinkMetadataError, match="record of workspace 'acme', not 'globex'"):
        globex.read("billing-sync")
    # Nor can globex write over it: what it last saw (nothing) is not what is stored.
    with pytest.raises(SinkConflictError):
        globex.write_secret("billing-sync", Secret("globex-key-0123456789"), expected_version=None)
    state = acme.read("billing-sync")
    assert (state.record, state.secret_sha256) == (RECORD, SECRET.sha256())


def test_every_hash_get_prints_blanks_its_key_in_that_calls_stderr(program: Program) -> None:
    # Keys this sink never wrote (a pass that died wrote the pending one), known to it only by
    # the hashes of the record get prints: each is blanked where the program prints it.
    keys = [Secret(f"pm-key-{role}-0123456789abcdef") for role in ("now", "before", "pending")]
    meta = {
        **VALID_META,
        "secret_sha256": keys[0].sha256(),
        "previous_key_id": "k0",
        "previous_secret_sha256": keys[1].sha256(),
        "pending_key_id": "k2",
        "pending_secret_sha256": keys[2].sha256(),
    }
    program.arrange("get", "stdout", answer(meta, keys[0].sha256()))
    program.arrange("get", "stderr", "".join(f"debug: holding {k.reveal()}\n" for k in keys))
    with capture_logs() as logs:
        program.sink().read("billing-sync")
    (event,) = [e for e in logs if e["event"] == "sink.exec.stderr"]
    assert event["stderr"].splitlines() == ["debug: holding **********"] * 3


def test_a_valid_answer_is_read(program: Program) -> None:
    meta = {**VALID_META, "expires": "2028-11-26T05:00:00+02:00", "extra": "kept by the program"}
    program.arrange("get", "stdout", answer(meta, SECRET.sha256()))
    state = program.sink().read("billing-sync")
    assert state.record == SinkRecord(
        key_id="k1", key_name="billing-sync", expires=datetime(2028, 11, 26, 3, tzinfo=UTC)
    )
    assert state.secret_sha256 == SECRET.sha256()
    assert state.version is not None


def test_a_secret_without_metadata_is_read(program: Program) -> None:
    program.arrange("get", "stdout", answer(None, SECRET.sha256()))
    state = program.sink().read("billing-sync")
    assert state.record is None
    assert state.secret_sha256 == SECRET.sha256()
    assert state.version is not None


# -- versions ---------------------------------------------------------------------------------


def test_the_version_ignores_how_the_answer_is_formatted(program: Program) -> None:
    sink = program.sink()
    program.arrange("get", "stdout", answer(VALID_META, SECRET.sha256()))
    first = sink.read("billing-sync").version
    reordered = dict(reversed(list(VALID_META.items())))
    text = json.dumps({"secret_sha256": SECRET.sha256(), "metadata": reordered}, indent=4)
    program.arrange("get", "stdout", text)
    assert sink.read("billing-sync").version == first
    program.arrange("get", "stdout", answer({**VALID_META, "key_id": "k2"}, SECRET.sha256()))
    assert sink.read("billing-sync").version != first
    program.arrange("get", "stdout", answer(VALID_META, "0" * 64))
    assert sink.read("billing-sync").version != first


def test_a_write_against_a_moved_version_runs_no_put(program: Program) -> None:
    program.arrange("get", "stdout", answer(VALID_META, SECRET.sha256()))
    with pytest.raises(SinkConflictError, match="changed since it was read"):
        program.sink().write_secret("billing-sync", SECRET, expected_version=None)
    with pytest.raises(SinkConflictError):
        program.sink().write_record("billing-sync", RECORD, expected_version="0" * 32)
    assert program.verbs() == ["get", "get"]


# -- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "-rf", "--help", "a\0b", "a\nb", "tab\there", "\x7f", "\x85"])
def test_names_the_program_cannot_receive_are_problems(program: Program, name: str) -> None:
    sink = program.sink()
    problems = sink.check_names([name, "billing-sync"])
    assert set(problems) == {name}
    with pytest.raises(SinkNameError):
        sink.read(name)
    with pytest.raises(SinkNameError):
        sink.write_secret(name, SECRET, expected_version=None)
    assert program.calls() == []


def test_a_name_that_is_not_unicode_is_a_problem(program: Program) -> None:
    assert set(program.sink().check_names(["\udcff-bad"])) == {"\udcff-bad"}


def test_unusual_but_safe_names_have_no_problem(program: Program) -> None:
    names = ["billing-sync", "café", "with space", "a;b", "x/y", "..", "a-", "emoji-🔑"]
    assert dict(program.sink().check_names(names)) == {}


# -- construction and description -------------------------------------------------------------


def test_description_shows_the_program_and_never_its_arguments() -> None:
    sink = ExecSink(("/usr/local/bin/put-key", "--token=SENTINEL"), "acme", 5.0)
    assert sink.describe() == "exec:/usr/local/bin/put-key (+1 argument)"
    assert "SENTINEL" not in repr(sink)
    assert ExecSink(("prog",), "acme", 5.0).describe() == "exec:prog"
    assert ExecSink(("prog", "a", "b"), "acme", 5.0).describe() == "exec:prog (+2 arguments)"


@pytest.mark.parametrize(
    ("command", "timeout"), [((), 5.0), (("",), 5.0), (("prog",), 0.0), (("prog",), -1.0)]
)
def test_bad_construction_is_refused(command: tuple[str, ...], timeout: float) -> None:
    with pytest.raises(ValueError, match="exec sink"):
        ExecSink(command, "acme", timeout)


def test_lifecycle_calls_do_nothing(program: Program) -> None:
    sink = program.sink()
    sink.prepare()
    now = datetime(2026, 11, 27, tzinfo=UTC)
    assert sink.rollout("billing-sync", now, now) == ()
    sink.close()
    assert program.calls() == []


# -- the optional history verbs ---------------------------------------------------------------


def test_a_program_without_the_history_verbs_keeps_no_history(program: Program) -> None:
    # It answers a verb it does not know as a usage error, as the example program does.
    program.arrange("history-get", "status", "2")
    program.arrange("history-put", "status", "2")
    sink = program.sink()
    with pytest.raises(HistoryUnsupportedError, match="history-get"):
        sink.read_history("billing-sync")
    with pytest.raises(HistoryUnsupportedError):
        sink.write_history("billing-sync", [])
    with pytest.raises(HistoryUnsupportedError):
        sink.read_history("crm-export")
    assert program.verbs() == ["history-get"], "asked once, then remembered"


def test_a_failing_history_verb_is_a_sink_error_not_a_missing_feature(program: Program) -> None:
    program.arrange("history-get", "status", "1")
    with pytest.raises(SinkError, match="exited with status 1") as caught:
        program.sink().read_history("billing-sync")
    assert not isinstance(caught.value, HistoryUnsupportedError)


def test_history_put_gets_the_document_and_history_get_reads_it(program: Program) -> None:
    entry = {"workspace": "acme", "credential": "billing-sync", "outcome": "retired"}
    program.sink().write_history("billing-sync", [entry])
    [call] = program.calls()
    assert call["argv"][-2:] == ["history-put", "billing-sync"]
    document = json.loads(stdin_of(call))
    assert document == {
        "format": "1",
        "workspace": "acme",
        "credential": "billing-sync",
        "entries": [entry],
    }
    program.arrange("history-get", "stdout", json.dumps(document))
    assert program.sink().read_history("billing-sync") == [entry]
    program.arrange("history-get", "stdout", "null")
    assert program.sink().read_history("billing-sync") == []
    program.arrange("history-get", "stdout", json.dumps({**document, "workspace": "other"}))
    with pytest.raises(SinkError, match="workspace 'other'"):
        program.sink().read_history("billing-sync")
