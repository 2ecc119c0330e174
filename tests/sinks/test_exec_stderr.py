"""What an exec-sink program prints on standard error never puts a key into the log.

The programs are real: each test writes a small script to its tmp_path that keeps its keys with
the example program (config/exec-sink/folder-sink.py) and, on every verb, prints every key it
holds on standard error the ways a careless program would (``debug: holding <key>``,
``current value=<key>``, inside JSON, wrapped over two lines) and, for ``put-secret``, the
secret it is given split over two lines. The log must hold none of those keys, nor any piece of
8 characters or more of one.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from rotator.emulator import Emulator
from rotator.errors import SinkMetadataError
from rotator.models import Secret, SinkRecord
from rotator.sinks.exec import ExecSink
from rotator.sinks.exec_stderr import (
    BLANKED,
    MAX_STDERR_CHARS,
    MIN_SECRET_PIECE,
    NOT_CHECKED,
    blank_and_cut,
)
from tests.cli_support import CliResult, run_cli, seed
from tests.sinks.backend_exec import FOLDER_SINK

KEY = Secret("pm-live-Key_0f-the.consumer-0123456789abcdefXYZ")
NEXT_KEY = Secret("pm-next-Key_a5-the.consumer-9876543210fedcbaQRS")
RECORD = SinkRecord(
    key_id="k1", key_name="billing", secret_sha256=KEY.sha256(), previous_key_id="k0"
)

LEAKY = """\
import glob, io, os, runpy, sys

folder = sys.argv[1]
words = sys.argv[2:]
given = sys.stdin.buffer.read()
sys.stdin = io.TextIOWrapper(io.BytesIO(given))
status = runpy.run_path({folder_sink!r})["main"]([folder, *words])
sys.stdout.flush()
err = sys.stderr
for path in sorted(glob.glob(os.path.join(folder, "*", "*.secret"))):
    key = open(path).read()
    half = len(key) // 2
    err.write(f"debug: holding {{key}}\\n")
    err.write(f"current value={{key}}\\n")
    err.write('{{"held": "' + key + '", "verb": "' + words[0] + '"}}\\n')
    err.write(f"wrapped: {{key[:half]}}\\n    {{key[half:]}} (end)\\n")
if words[0] == "put-secret":
    secret = given.decode()
    half = len(secret) // 2
    err.write(f"part one: {{secret[:half]}}\\npart two: {{secret[half:]}}\\n")
    err.write(f"{{secret[:half]}}\\n{{secret[half:]}}\\n")
    err.write(f"stored {{secret}} as asked\\n")
sys.exit(status)
"""


def leaky_program(tmp_path: Path, folder: Path) -> tuple[str, ...]:
    """The command of a program that stores with the example program and leaks every key."""
    script = tmp_path / "leaky.py"
    script.write_text(LEAKY.format(folder_sink=str(FOLDER_SINK)))
    return (sys.executable, "-I", str(script), str(folder))


def pieces(secret: str) -> set[str]:
    """Every run of MIN_SECRET_PIECE characters of ``secret``."""
    return {secret[i : i + MIN_SECRET_PIECE] for i in range(len(secret) - MIN_SECRET_PIECE + 1)}


def assert_no_piece_of(secrets: Iterable[str], text: str) -> None:
    for secret in secrets:
        leaked = sorted(piece for piece in pieces(secret) if piece in text)
        assert leaked == [], f"pieces of a key in the log: {leaked}"


def stderr_events(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "sink.exec.stderr"]


# -- the sink, driven directly ------------------------------------------------------------------


def test_a_key_the_program_holds_is_blanked_on_every_verb(tmp_path: Path) -> None:
    command = leaky_program(tmp_path, tmp_path / "keys")
    writer = ExecSink(command, "acme", 20.0)
    version = writer.write_secret("billing", KEY, expected_version=None)
    writer.write_record("billing", RECORD, expected_version=version)
    # A sink that never saw the key (the next pass's): it knows it only by its hash.
    fresh = ExecSink(command, "acme", 20.0)
    with capture_logs() as logs:
        assert fresh.list_credentials() == ["billing"]
        state = fresh.read("billing")
        fresh.write_record(
            "billing", RECORD.with_pending("k2", "a" * 64), expected_version=state.version
        )
        fresh.close()
    events = stderr_events(logs)
    assert {e["verb"] for e in events} == {"list", "get", "put-metadata"}
    for event in events:
        assert "debug: holding " + BLANKED in event["stderr"]
        assert "current value=" + BLANKED in event["stderr"]
        assert '{"held": "' + BLANKED + '"' in event["stderr"]
    assert KEY.reveal() not in json.dumps(logs)
    assert_no_piece_of([KEY.reveal()], json.dumps(logs))


def test_a_written_secret_split_over_lines_is_blanked(tmp_path: Path) -> None:
    sink = ExecSink(leaky_program(tmp_path, tmp_path / "keys"), "acme", 20.0)
    with capture_logs() as logs:
        version = sink.write_secret("billing", KEY, expected_version=None)
        version = sink.write_record("billing", RECORD, expected_version=version)
        # The next rotation: the old key is held, the new one is given.
        sink.write_secret("billing", NEXT_KEY, expected_version=version)
    text = json.dumps(logs)
    puts = [e for e in stderr_events(logs) if e["verb"] == "put-secret"]
    assert len(puts) == 2
    for put in puts:
        # Every line the program printed is about a secret this sink wrote: each goes whole.
        assert put["stderr"].splitlines() == [BLANKED] * 10
    for secret in (KEY.reveal(), NEXT_KEY.reveal()):
        assert secret not in text
    assert_no_piece_of([KEY.reveal(), NEXT_KEY.reveal()], text)


def test_the_key_of_a_refused_record_is_blanked_too(tmp_path: Path) -> None:
    # One store for every workspace: globex's get prints acme's key, which globex refuses.
    store = tmp_path / "store"
    shared = tmp_path / "shared.sh"
    shared.write_text(
        "#!/bin/sh\nROTATOR_WORKSPACE=everyone exec "
        + shlex.join(leaky_program(tmp_path, store))
        + ' "$@"\n'
    )
    shared.chmod(0o755)
    acme = ExecSink((str(shared),), "acme", 20.0)
    version = acme.write_secret("billing", KEY, expected_version=None)
    acme.write_record("billing", RECORD, expected_version=version)
    with capture_logs() as logs, pytest.raises(SinkMetadataError, match="workspace 'acme'"):
        ExecSink((str(shared),), "globex", 20.0).read("billing")
    assert stderr_events(logs)
    assert_no_piece_of([KEY.reveal()], json.dumps(logs))


# -- the rule, on text --------------------------------------------------------------------------


def known(*secrets: Secret) -> frozenset[str]:
    return frozenset(secret.sha256() for secret in secrets)


@pytest.mark.parametrize(
    "form",
    [
        "{key}",
        "value={key}",
        "value='{key}';",
        '{{"apiKey":"{key}"}}',
        "({key}).",
        "<{key}>",
        "key:{key},next",
        "--key={key}",
    ],
)
def test_a_token_with_a_known_hash_is_blanked_wherever_punctuation_bounds_it(form: str) -> None:
    line = "prefix " + form.format(key=KEY.reveal()) + " suffix"
    text, cut = blank_and_cut(line.encode(), known_sha256=known(KEY))
    assert text == "prefix " + form.format(key=BLANKED) + " suffix"
    assert not cut


def test_only_tokens_with_a_known_hash_are_blanked() -> None:
    line = f"{NEXT_KEY.reveal()} and {KEY.reveal()[:-1]} stay; {KEY.reveal()} goes"
    text, _ = blank_and_cut(line.encode(), known_sha256=known(KEY))
    assert text == f"{NEXT_KEY.reveal()} and {KEY.reveal()[:-1]} stay; {BLANKED} goes"


def test_a_known_key_wrapped_at_a_line_break_blanks_both_lines() -> None:
    key = KEY.reveal()
    for cut_at in (1, 10, len(key) - 1):
        output = f"holding {key[:cut_at]}\n   {key[cut_at:]}, fine\nnext line\n".encode()
        text, _ = blank_and_cut(output, known_sha256=known(KEY))
        assert text == f"{BLANKED}\n{BLANKED}\nnext line"


@pytest.mark.parametrize(
    "layout",
    [
        "{a}\n{b}",  # halves on two lines
        "key: {a}\n      {b}",  # wrapped, the continuation indented
        "{a} \r\n{b} done",  # a stray space before a CRLF
        "part one: {a}\npart two: {b}",  # each half with its own prefix
    ],
)
def test_a_written_secret_split_over_lines_blanks_every_line_it_touches(layout: str) -> None:
    secret = KEY.reveal()
    half = len(secret) // 2
    output = "before\n" + layout.format(a=secret[:half], b=secret[half:]) + "\nafter\n"
    text, _ = blank_and_cut(output.encode(), [secret])
    assert text == f"before\n{BLANKED}\n{BLANKED}\nafter"


def test_a_piece_of_eight_characters_of_a_written_secret_blanks_its_line() -> None:
    secret = KEY.reveal()
    output = f"a {secret[5:13]} b\nc {secret[5:12]} d\n".encode()
    text, _ = blank_and_cut(output, [secret])
    # Seven characters are not enough to tell a piece of a key from a word (see the docstring).
    assert text == f"{BLANKED}\nc {secret[5:12]} d"


def test_blanking_comes_before_the_cut() -> None:
    # A key straddling the cut would leave its first half in the log if the cut came first.
    key = KEY.reveal()
    filler = "x" * (MAX_STDERR_CHARS - 10)
    output = f"{filler} {key}\n".encode()
    text, cut = blank_and_cut(output, known_sha256=known(KEY))
    assert cut
    assert_no_piece_of([key], text)
    text, cut = blank_and_cut(f"{filler} {key}\n".encode(), [key])
    assert text == BLANKED
    assert not cut


def test_output_too_costly_to_check_is_not_logged() -> None:
    # A run full of punctuation has a candidate token for every pair of boundaries.
    noise = ("a." * 3000 + "\n").encode()
    output = b"first line\n" + noise + KEY.reveal().encode() + b"\n"
    text, cut = blank_and_cut(output, known_sha256=known(KEY))
    assert text.startswith("first line\n")
    assert text.endswith(NOT_CHECKED)
    assert cut
    assert KEY.reveal() not in text
    # Without known hashes nothing is hashed, and nothing is held back.
    assert NOT_CHECKED not in blank_and_cut(output)[0]


def test_a_secret_stored_with_a_line_ending_is_still_recognised() -> None:
    # A key file written with `echo` holds the key and a newline: its hash is of both, while a
    # program prints the key alone.
    key = KEY.reveal()
    for ending in ("\n", "\r\n"):
        stored = frozenset({hashlib.sha256((key + ending).encode()).hexdigest()})
        blanked = blank_and_cut(f"holding {key}".encode(), known_sha256=stored)[0]
        assert blanked == "holding **********"


def test_hashes_are_of_the_bytes_or_a_line_ending_more_nothing_else() -> None:
    key = KEY.reveal()
    other = frozenset({hashlib.sha256((key + "x").encode()).hexdigest()})
    assert blank_and_cut(f"holding {key}".encode(), known_sha256=other)[0] == f"holding {key}"


# -- real passes --------------------------------------------------------------------------------


def test_no_key_reaches_the_log_of_real_passes(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    with Emulator() as emu:
        world = seed(emu)
        world.add_key("app-billing", days_left=3)
        env = world.env(
            tmp_path / "unused",
            ROTATOR_SINK="exec",
            ROTATOR_SINK_EXEC_COMMAND=shlex.join(leaky_program(tmp_path, keys)),
            ROTATOR_LOCK="file",
            ROTATOR_LOCK_DIR=str(tmp_path / "lock"),
            ROTATOR_GRACE_HOURS="0",
            ROTATOR_LOG_LEVEL="debug",
        )
        env.pop("ROTATOR_SINK_FILE_DIR")
        runs: list[CliResult] = [
            run_cli(["run-once"], env, tmp_path),  # the first delivery
            run_cli(["rotate", "app-billing", "--now"], env, tmp_path),  # a fresh process
            run_cli(["run-once"], env, tmp_path),  # nothing to do: only reads
        ]
        for result in runs:
            assert result.returncode == 0, result.describe()
        issued = sorted(emu.issued_secrets() - {world.admin_secret})
        assert len(issued) == 3  # the seeded key and two replacements
        held = (keys / "default" / "app-billing.secret").read_text()
        assert held in issued
    everything = "".join(result.output for result in runs)
    for secret in issued:
        assert secret not in everything
    assert_no_piece_of(issued, everything)
    events = [event for result in runs for event in result.events()]
    said = {(e["verb"], e["level"]) for e in events if e["event"] == "sink.exec.stderr"}
    assert said == {
        ("list", "debug"),
        ("get", "debug"),
        ("put-secret", "info"),
        ("put-metadata", "info"),
        # The rotation history's verbs, a read and a write like the others.
        ("history-get", "debug"),
        ("history-put", "info"),
    }
    assert all(BLANKED in e["stderr"] for e in events if e["event"] == "sink.exec.stderr")


def test_what_lies_past_the_cut_is_neither_checked_nor_logged() -> None:
    key = KEY.reveal()
    long_line = ("word " * 300 + key).encode()
    text, cut = blank_and_cut(long_line + b"\n" + key.encode(), known_sha256=known(KEY))
    assert cut
    assert len(text) <= MAX_STDERR_CHARS
    assert_no_piece_of([key], text)
    # Keys blanked early leave room for more of the line: the limit is on what is logged.
    many = ((key + " ") * 150).encode()
    text, cut = blank_and_cut(many, known_sha256=known(KEY))
    assert text.startswith(f"{BLANKED} {BLANKED} ")
    assert len(text) > 900
    assert cut
