"""The file sink's own behaviour: the on-disk layout of docs/sinks.md, names, atomic and durable
writes, compare-and-set across processes, and what it refuses to read (symlinks, FIFOs, devices).

Processes are real (``subprocess``): a second writer, a writer killed in the middle. Where the
order of fsync and rename matters, the sink's injectable ``fsync`` observes it; nothing of the
sink is patched.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

import pytest

from rotator.errors import (
    SinkConflictError,
    SinkError,
    SinkMetadataError,
    SinkNameError,
    SinkPermissionError,
    SinkUnavailableError,
)
from rotator.models import Secret, SinkRecord
from rotator.sinks.base import format_time, parse_time
from rotator.sinks.file import FileSink, _translate, file_name

T = TypeVar("T")

SECRET = Secret("pm-key-5ecret-VALUE-0123456789")
OTHER_SECRET = Secret("pm-key-another-one-9876")
RECORD = SinkRecord(
    key_id="k-new",
    key_name="billing-sync@2026-11-27T03:00:00Z",
    expires=datetime(2028, 11, 26, 3, 0, tzinfo=UTC),
    delivered_at=datetime(2026, 11, 27, 3, 0, 1, 250000, tzinfo=UTC),
    secret_sha256=SECRET.sha256(),
    previous_key_id="k-old",
    previous_secret_sha256="b" * 64,
    retire_previous_after=datetime(2026, 11, 28, 3, 0, 1, tzinfo=UTC),
)
TEMPORARY = re.compile(r"^\..+\.tmp-[0-9a-f]{16}$")
#: How long a read may take before the test calls it hung.
HANG_SECONDS = 5.0


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "secrets"


@pytest.fixture
def sink(directory: Path) -> FileSink:
    return FileSink(directory)


def _temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _put_secret(sink: FileSink, credential: str, secret: Secret) -> str | None:
    return sink.write_secret(credential, secret, expected_version=sink.read(credential).version)


def _put_record(sink: FileSink, credential: str, record: SinkRecord) -> str | None:
    return sink.write_record(credential, record, expected_version=sink.read(credential).version)


def _hand_written(directory: Path, name: str, content: bytes) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_bytes(content)
    return path


def _without_hanging(call: Callable[[], T], *, unblock: Callable[[], None] | None = None) -> T:
    """``call()`` in a thread; fail when it has not returned after HANG_SECONDS.

    ``unblock`` releases a hung call (opens a FIFO's other end) so its thread can end.
    """
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(call())
        except BaseException as exc:  # noqa: BLE001  (handed over to the test's thread)
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_SECONDS)
    if thread.is_alive():
        if unblock is not None:
            unblock()
        pytest.fail(f"the call was still blocked after {HANG_SECONDS} s")
    if errors:
        raise errors[0]
    return results[0]


def _open_other_end(fifo: Path) -> Callable[[], None]:
    def unblock() -> None:
        # ENXIO when no reader is waiting on it: then nothing is blocked.
        with suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    return unblock


# -- layout -----------------------------------------------------------------------------------


def test_secret_file_holds_the_secret_alone(sink: FileSink, directory: Path) -> None:
    sink.write_secret("billing-sync", SECRET, expected_version=None)
    assert (directory / "billing-sync").read_bytes() == SECRET.reveal().encode()
    assert not (directory / "billing-sync").read_bytes().endswith(b"\n")
    assert _mode(directory / "billing-sync") == 0o600


def test_modes_are_exact_whatever_the_umask(sink: FileSink, directory: Path) -> None:
    # A umask narrower than 0600 would leave a file its owner cannot read back.
    previous = os.umask(0o277)
    try:
        sink.write_secret("billing-sync", SECRET, expected_version=None)
    finally:
        os.umask(previous)
    previous = os.umask(0)
    try:
        _put_record(sink, "billing-sync", RECORD)
    finally:
        os.umask(previous)
    assert _mode(directory / "billing-sync") == 0o600
    assert _mode(directory / "billing-sync.meta.json") == 0o600


def test_folder_is_created_private(sink: FileSink, directory: Path) -> None:
    assert not directory.exists()
    sink.write_secret("billing-sync", SECRET, expected_version=None)
    assert _mode(directory) == 0o700


def test_metadata_layout(sink: FileSink, directory: Path) -> None:
    _put_secret(sink, "billing-sync", SECRET)
    _put_record(sink, "billing-sync", RECORD)
    meta = directory / "billing-sync.meta.json"
    assert _mode(meta) == 0o600
    assert meta.read_text() == (
        "{\n"
        '  "credential": "billing-sync",\n'
        '  "key_id": "k-new",\n'
        '  "key_name": "billing-sync@2026-11-27T03:00:00Z",\n'
        '  "expires": "2028-11-26T03:00:00Z",\n'
        '  "delivered_at": "2026-11-27T03:00:01.250000Z",\n'
        f'  "secret_sha256": "{SECRET.sha256()}",\n'
        '  "previous_key_id": "k-old",\n'
        f'  "previous_secret_sha256": "{"b" * 64}",\n'
        '  "retire_previous_after": "2026-11-28T03:00:01Z"\n'
        "}\n"
    )
    assert SECRET.reveal() not in meta.read_text()


def test_empty_fields_are_null(sink: FileSink, directory: Path) -> None:
    sink.write_record("billing-sync", SinkRecord(key_id="k1"), expected_version=None)
    assert json.loads((directory / "billing-sync.meta.json").read_text()) == {
        "credential": "billing-sync",
        "key_id": "k1",
        "key_name": None,
        "expires": None,
        "delivered_at": None,
        "secret_sha256": None,
        "previous_key_id": None,
        "previous_secret_sha256": None,
        "retire_previous_after": None,
    }


def test_pending_fields_appear_only_while_pending(sink: FileSink, directory: Path) -> None:
    meta = directory / "billing-sync.meta.json"
    _put_record(sink, "billing-sync", RECORD.with_pending("k-next", "a" * 64))
    document = json.loads(meta.read_text())
    assert document["pending_key_id"] == "k-next"
    assert document["pending_secret_sha256"] == "a" * 64
    assert list(document)[-2:] == ["pending_key_id", "pending_secret_sha256"]

    _put_record(sink, "billing-sync", RECORD)
    assert "pending_key_id" not in json.loads(meta.read_text())
    assert "pending_secret_sha256" not in json.loads(meta.read_text())
    assert sink.read("billing-sync").record == RECORD


def test_secret_hash_is_of_the_file_bytes(sink: FileSink, directory: Path) -> None:
    _hand_written(directory, "billing-sync", b"edited by hand\n")
    state = sink.read("billing-sync")
    assert state.secret_sha256 == Secret("edited by hand\n").sha256()
    assert state.record is None
    assert state.version is not None


def test_a_secret_with_a_trailing_newline_is_not_the_secret(
    sink: FileSink, directory: Path
) -> None:
    # An editor adds a newline on save: the file then holds another secret, which must not
    # pass for the one the metadata records.
    _put_record(sink, "billing-sync", RECORD)
    _hand_written(directory, "billing-sync", SECRET.reveal().encode() + b"\n")
    state = sink.read("billing-sync")
    assert state.record == RECORD
    assert state.secret_sha256 != RECORD.secret_sha256


def test_describe_is_the_absolute_folder(tmp_path: Path) -> None:
    relative = Path(os.path.relpath(tmp_path / "secrets"))
    assert FileSink(relative).describe() == f"file:{tmp_path / 'secrets'}"
    assert FileSink(relative).directory == tmp_path / "secrets"
    assert repr(FileSink(relative)) == f"FileSink(directory={str(tmp_path / 'secrets')!r})"


def test_nothing_to_roll_out_or_close(sink: FileSink) -> None:
    now = datetime(2026, 11, 27, 3, tzinfo=UTC)
    assert list(sink.rollout("billing-sync", now, now)) == []
    sink.close()


# -- times ------------------------------------------------------------------------------------


def test_times_keep_microseconds_only_when_present() -> None:
    assert format_time(datetime(2026, 11, 27, 3, tzinfo=UTC)) == "2026-11-27T03:00:00Z"
    assert format_time(datetime(2026, 11, 27, 3, 0, 0, 5, tzinfo=UTC)) == (
        "2026-11-27T03:00:00.000005Z"
    )
    plus_two = timezone(timedelta(hours=2))
    assert format_time(datetime(2026, 11, 27, 5, tzinfo=plus_two)) == "2026-11-27T03:00:00Z"


def test_times_parse_both_forms_and_offsets() -> None:
    expected = datetime(2026, 11, 27, 3, tzinfo=UTC)
    assert parse_time("2026-11-27T03:00:00Z") == expected
    assert parse_time("2026-11-27T03:00:00.000000Z") == expected
    assert parse_time("2026-11-27T05:00:00+02:00") == expected
    assert parse_time("2026-11-27T05:00:00+02:00").tzinfo is UTC
    with pytest.raises(ValueError, match="offset"):
        parse_time("2026-11-27T03:00:00")


def test_times_round_trip_exactly(sink: FileSink) -> None:
    record = SinkRecord(
        key_id="k1",
        expires=datetime(2028, 1, 1, tzinfo=UTC),
        delivered_at=datetime(2026, 11, 27, 3, 0, 0, 1, tzinfo=UTC),
        retire_previous_after=datetime(2026, 11, 28, 5, 0, tzinfo=timezone(timedelta(hours=2))),
    )
    sink.write_record("billing-sync", record, expected_version=None)
    read = sink.read("billing-sync").record
    assert read == record
    assert read is not None and read.delivered_at is not None
    assert read.delivered_at.microsecond == 1
    assert read.delivered_at.tzinfo is UTC


def test_hand_written_metadata_with_whole_seconds_reads(sink: FileSink, directory: Path) -> None:
    _hand_written(
        directory,
        "billing-sync.meta.json",
        json.dumps(
            {"key_id": "k1", "key_name": "billing-sync", "expires": "2028-01-01T00:00:00Z"}
        ).encode(),
    )
    assert sink.read("billing-sync").record == SinkRecord(
        key_id="k1", key_name="billing-sync", expires=datetime(2028, 1, 1, tzinfo=UTC)
    )


# -- untrusted metadata -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "names"),
    [
        (b'{"key_id": "k1", "key_name": "billing-sync"', "not valid"),
        (b"\xff\xfe not utf-8", "not valid"),
        (b'["a", "list"]', "JSON object"),
        (b'{"key_id": 42}', "key_id"),
        (b'{"expires": "next tuesday"}', "expires"),
        (b'{"expires": "2028-01-01T00:00:00"}', "expires"),
        (b'{"secret_sha256": "NOT-A-HASH"}', "secret_sha256"),
        # A hash with a trailing newline is not a hash (a regex's `$` alone lets it through).
        (json.dumps({"secret_sha256": SECRET.sha256() + "\n"}).encode(), "secret_sha256"),
        (
            json.dumps({"pending_key_id": "k2", "pending_secret_sha256": "a" * 64 + "\n"}).encode(),
            "pending_secret_sha256",
        ),
        (b'{"pending_key_id": "k2"}', "pending"),
        (b'{"credential": 42}', "credential is not a string"),
        (b'{"key_name": "crm-export@2026-01-01T00:00:00Z"}', "another credential"),
        (b'{"credential": "crm-export"}', "another credential"),
        (b'{"credential": "crm-export", "key_name": "billing-sync"}', "another credential"),
    ],
)
def test_untrusted_metadata_is_refused(
    sink: FileSink, directory: Path, content: bytes, names: str
) -> None:
    meta = _hand_written(directory, "billing-sync.meta.json", content)
    with pytest.raises(SinkMetadataError, match=names) as caught:
        sink.read("billing-sync")
    assert str(meta) in str(caught.value)


def test_metadata_errors_name_the_field_never_the_value(sink: FileSink, directory: Path) -> None:
    value = SECRET.reveal()
    for field, document in [
        ("expires", {"expires": value}),
        ("secret_sha256", {"secret_sha256": value}),
        ("key_id", {"key_id": [value]}),
        ("credential", {"credential": [value]}),
        ("pending", {"pending_key_id": value}),
    ]:
        _hand_written(directory, "billing-sync.meta.json", json.dumps(document).encode())
        with pytest.raises(SinkMetadataError, match=rf"meta\.json: {field}") as caught:
            sink.read("billing-sync")
        assert value not in str(caught.value)
        assert caught.value.__cause__ is None
        assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_metadata_error_never_quotes_content(sink: FileSink, directory: Path) -> None:
    _hand_written(directory, "billing-sync.meta.json", b'{"key_id": "' + SECRET.reveal().encode())
    with pytest.raises(SinkMetadataError) as caught:
        sink.read("billing-sync")
    assert SECRET.reveal() not in str(caught.value)
    # Nor does the chain: a decoder's error carries the content (and a traceback shows it).
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_huge_metadata_is_refused_unread(sink: FileSink, directory: Path) -> None:
    _hand_written(directory, "billing-sync.meta.json", b" " * (65 * 1024) + b"{}")
    with pytest.raises(SinkMetadataError, match="is larger than"):
        sink.read("billing-sync")


def test_unknown_metadata_fields_are_ignored(sink: FileSink, directory: Path) -> None:
    _hand_written(directory, "billing-sync.meta.json", b'{"key_id": "k1", "added_later": [1, 2]}')
    assert sink.read("billing-sync").record == SinkRecord(key_id="k1")


def test_record_another_credential_wrote_is_never_trusted(sink: FileSink, directory: Path) -> None:
    # Through the credential field: "billing sync" and "billing_sync" share a file name.
    sink.write_record("billing_sync", SinkRecord(key_id="k1"), expected_version=None)
    with pytest.raises(SinkMetadataError, match="record of another credential"):
        sink.read("billing sync")
    assert sink.read("billing_sync").record == SinkRecord(key_id="k1")
    # Through key_name, in a record of the older layout that names no credential.
    _hand_written(
        directory,
        "billing_sync.meta.json",
        b'{"key_id": "k1", "key_name": "billing_sync@2026-01-01T00:00:00Z"}',
    )
    with pytest.raises(SinkMetadataError, match="names a key of another credential"):
        sink.read("billing sync")


def test_a_record_naming_another_key_is_refused_even_as_written(sink: FileSink) -> None:
    sink.write_record(
        "billing-sync",
        SinkRecord(key_name="crm-export@2026-01-01T00:00:00Z"),
        expected_version=None,
    )
    with pytest.raises(SinkMetadataError, match="another credential"):
        sink.read("billing-sync")


# -- names ------------------------------------------------------------------------------------


def test_unsafe_characters_become_underscores(sink: FileSink, directory: Path) -> None:
    assert file_name("team/billing sync:ü") == "team_billing_sync__"
    _put_secret(sink, "team/billing sync", SECRET)
    _put_record(
        sink, "team/billing sync", SinkRecord(key_name="team/billing sync@2026-01-01T00:00:00Z")
    )
    assert sorted(p.name for p in directory.iterdir()) == [
        "team_billing_sync",
        "team_billing_sync.meta.json",
    ]
    document = json.loads((directory / "team_billing_sync.meta.json").read_text())
    assert document["credential"] == "team/billing sync"
    assert sink.read("team/billing sync").secret_sha256 == SECRET.sha256()


@pytest.mark.parametrize(
    "credential",
    [
        "",
        ".",
        "..",
        "billing.meta.json",
        "billing.history.json",
        ".rotator.lock",
        ".x.tmp-0123456789abcdef",
        "a" * 221,
    ],
)
def test_reserved_names_are_refused(sink: FileSink, directory: Path, credential: str) -> None:
    problems = sink.check_names([credential, "billing-sync"])
    assert set(problems) == {credential}
    with pytest.raises(SinkNameError):
        sink.write_secret(credential, SECRET, expected_version=None)
    with pytest.raises(SinkNameError):
        sink.write_record(credential, SinkRecord(key_id="k1"), expected_version=None)
    with pytest.raises(SinkNameError):
        sink.read(credential)
    assert not directory.exists()


def test_longest_allowed_name_is_writable(sink: FileSink) -> None:
    # The longest temporary file, that of the history (".<name>.history.json.tmp-<16 hex>"),
    # must fit NAME_MAX.
    credential = "a" * 220
    assert dict(sink.check_names([credential])) == {}
    version = sink.write_secret(credential, SECRET, expected_version=None)
    sink.write_record(credential, SinkRecord(key_id="k1"), expected_version=version)
    sink.write_history(credential, [{"outcome": "delivered"}])
    assert sink.read(credential).secret_sha256 == SECRET.sha256()
    assert list(sink.list_credentials()) == [credential]


def test_collisions_are_a_problem_for_each_naming_the_other(sink: FileSink) -> None:
    problems = sink.check_names(["billing sync", "billing/sync", "billing_sync", "crm"])
    assert set(problems) == {"billing sync", "billing/sync", "billing_sync"}
    assert "'billing/sync'" in problems["billing sync"]
    assert "'billing_sync'" in problems["billing sync"]
    assert "'billing sync'" in problems["billing_sync"]
    assert "'billing sync'" not in problems["billing sync"]


def test_check_names_remembers_nothing(sink: FileSink, directory: Path) -> None:
    # check_names has no side effects: it neither creates the folder nor refuses later calls.
    # Keeping colliding credentials apart is its caller's part; should one be written anyway,
    # the other refuses the record it finds (its "credential" is not theirs).
    assert set(sink.check_names(["billing sync", "billing_sync"])) == {
        "billing sync",
        "billing_sync",
    }
    assert not directory.exists()
    sink.write_record("billing sync", SinkRecord(key_id="k1"), expected_version=None)
    with pytest.raises(SinkMetadataError, match="another credential"):
        sink.read("billing_sync")
    assert dict(sink.check_names(["billing_sync"])) == {}


def test_duplicates_in_the_list_are_no_collision(sink: FileSink) -> None:
    assert dict(sink.check_names(["billing", "billing"])) == {}


# -- listing ----------------------------------------------------------------------------------


def test_list_gives_the_exact_credential_names(sink: FileSink) -> None:
    for credential in ("billing sync/eu", "crm-export", ".hidden", "reports.2026"):
        sink.write_record(credential, SinkRecord(key_id="k1"), expected_version=None)
    sink.write_secret("secret-only", SECRET, expected_version=None)  # no metadata: not listed
    assert list(sink.list_credentials()) == [
        ".hidden",
        "billing sync/eu",
        "crm-export",
        "reports.2026",
    ]
    assert sink.read("billing sync/eu").record == SinkRecord(key_id="k1")


def test_list_skips_what_no_credential_has(sink: FileSink, directory: Path) -> None:
    sink.write_record("billing-sync", SinkRecord(key_id="k1"), expected_version=None)
    for name in (
        ".rotator.lock",
        ".billing-sync.meta.json.tmp-0123456789abcdef",
        ".crm.meta.json.tmp-0123456789abcdef",
        "README",
        ".meta.json",
        "x.meta.json.meta.json",
        "made by hand.meta.json",  # file_name never makes a space: no credential reads it
    ):
        _hand_written(directory, name, b'{"credential": "intruder"}')
    assert list(sink.list_credentials()) == ["billing-sync"]


@pytest.mark.parametrize("kind", ["not json", "not utf-8", "directory", "fifo", "symlink", "list"])
def test_an_unreadable_record_is_listed_by_its_file_name(
    sink: FileSink, directory: Path, tmp_path: Path, kind: str
) -> None:
    directory.mkdir()
    meta = directory / "billing_sync_eu.meta.json"
    if kind == "not json":
        meta.write_text('{"credential": "billing sync/eu", ')
    elif kind == "not utf-8":
        meta.write_bytes(b'{"credential": "\xff"}')
    elif kind == "directory":
        meta.mkdir()
    elif kind == "fifo":
        os.mkfifo(meta)
    elif kind == "symlink":
        elsewhere = tmp_path / "elsewhere.json"
        elsewhere.write_text('{"credential": "billing sync/eu"}')
        meta.symlink_to(elsewhere)
    else:
        meta.write_text('["billing sync/eu"]')
    listed = _without_hanging(sink.list_credentials, unblock=_open_other_end(meta))
    assert list(listed) == ["billing_sync_eu"]
    with pytest.raises(SinkMetadataError, match="billing_sync_eu"):
        _without_hanging(lambda: sink.read("billing_sync_eu"), unblock=_open_other_end(meta))


def test_a_record_claiming_another_name_is_listed_by_its_file_name(
    sink: FileSink, directory: Path
) -> None:
    _hand_written(directory, "billing.meta.json", b'{"credential": "crm", "key_id": "k1"}')
    _hand_written(directory, "old-layout.meta.json", b'{"key_id": "k2"}')
    assert list(sink.list_credentials()) == ["billing", "old-layout"]
    with pytest.raises(SinkMetadataError, match="another credential"):
        sink.read("billing")
    assert sink.read("old-layout").record == SinkRecord(key_id="k2")


def test_list_of_a_folder_not_made_yet_is_empty(sink: FileSink, directory: Path) -> None:
    assert list(sink.list_credentials()) == []
    assert sink.read("billing-sync").empty
    assert not directory.exists()


# -- what a read refuses ----------------------------------------------------------------------


def test_a_symlink_at_the_metadata_path_is_refused(
    sink: FileSink, directory: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"credential": "billing-sync", "key_id": "k1"}')
    directory.mkdir()
    (directory / "billing-sync.meta.json").symlink_to(elsewhere)
    with pytest.raises(SinkMetadataError, match="is a symlink; refusing to follow it"):
        sink.read("billing-sync")
    # The write's compare-and-set reads it the same way: it refuses, and writes nothing there.
    with pytest.raises(SinkMetadataError, match="is a symlink; refusing to follow it"):
        sink.write_record("billing-sync", RECORD, expected_version=None)
    assert elsewhere.read_text() == '{"credential": "billing-sync", "key_id": "k1"}'
    assert (directory / "billing-sync.meta.json").is_symlink()


def test_a_symlink_at_the_secret_path_is_refused(
    sink: FileSink, directory: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("someone else's file")
    directory.mkdir()
    (directory / "billing-sync").symlink_to(elsewhere)
    with pytest.raises(SinkError, match="is a symlink; refusing to follow it") as caught:
        sink.read("billing-sync")
    assert not caught.value.state_unknown
    with pytest.raises(SinkError, match="is a symlink; refusing to follow it"):
        sink.write_secret("billing-sync", SECRET, expected_version=None)
    assert elsewhere.read_text() == "someone else's file"


def test_a_symlink_to_dev_zero_never_hangs_a_read(sink: FileSink, directory: Path) -> None:
    directory.mkdir()
    (directory / "billing-sync").symlink_to("/dev/zero")
    with pytest.raises(SinkError, match="is a symlink; refusing to follow it"):
        _without_hanging(lambda: sink.read("billing-sync"))


@pytest.mark.parametrize("name", ["billing-sync", "billing-sync.meta.json"])
def test_a_fifo_never_hangs_a_read(sink: FileSink, directory: Path, name: str) -> None:
    directory.mkdir()
    fifo = directory / name
    os.mkfifo(fifo)
    with pytest.raises(SinkError, match="not a regular file") as caught:
        _without_hanging(lambda: sink.read("billing-sync"), unblock=_open_other_end(fifo))
    assert isinstance(caught.value, SinkMetadataError) == name.endswith(".meta.json")
    with pytest.raises(SinkError, match="not a regular file"):
        _without_hanging(
            lambda: sink.write_secret("billing-sync", SECRET, expected_version=None),
            unblock=_open_other_end(fifo),
        )
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_huge_file_at_the_secret_path_is_refused(sink: FileSink, directory: Path) -> None:
    _hand_written(directory, "billing-sync", b"x" * (64 * 1024 + 1))
    with pytest.raises(SinkError, match="larger than 65536 bytes"):
        sink.read("billing-sync")
    _hand_written(directory, "billing-sync", b"x" * (64 * 1024))
    assert sink.read("billing-sync").secret_sha256 is not None


def test_a_folder_at_a_file_path_is_a_sink_error(sink: FileSink, directory: Path) -> None:
    (directory / "billing-sync.meta.json").mkdir(parents=True)
    with pytest.raises(SinkMetadataError, match=r"billing-sync\.meta\.json"):
        sink.read("billing-sync")
    (directory / "crm").mkdir()
    with pytest.raises(SinkError, match="crm is not a regular file"):
        sink.read("crm")


def test_a_folder_that_is_a_file_is_a_sink_error(tmp_path: Path) -> None:
    blocker = tmp_path / "secrets"
    blocker.write_text("not a folder")
    sink = FileSink(blocker / "workspace")
    with pytest.raises(SinkError, match="cannot create") as caught:
        sink.write_secret("billing-sync", SECRET, expected_version=None)
    assert not caught.value.state_unknown
    with pytest.raises(SinkError, match="cannot read"):
        sink.read("billing-sync")
    with pytest.raises(SinkError, match="cannot list"):
        sink.list_credentials()
    with pytest.raises(SinkError, match="cannot list"):
        sink.prepare()


def test_file_system_errors_are_translated(sink: FileSink) -> None:
    # ESTALE (a vanished NFS handle) and EROFS cannot be provoked here, and root ignores file
    # modes: translate those errors directly.
    stale = _translate(OSError(errno.ESTALE, "Stale file handle"), "cannot write /x")
    assert isinstance(stale, SinkUnavailableError)
    assert stale.state_unknown
    assert str(stale) == "cannot write /x: Stale file handle"
    for refused in (errno.EACCES, errno.EPERM, errno.EROFS):
        error = _translate(OSError(refused, os.strerror(refused)), "cannot write /x")
        assert isinstance(error, SinkPermissionError)
        assert not error.state_unknown
    other = _translate(OSError(errno.ENOSPC, "No space left on device"), "x", SinkMetadataError)
    assert type(other) is SinkMetadataError
    assert str(_translate(OSError("no errno"), "x")) == "x: OSError"


# -- atomic, durable writes -------------------------------------------------------------------


def test_no_temporary_file_after_writes(sink: FileSink, directory: Path) -> None:
    for _ in range(3):
        _put_secret(sink, "billing-sync", SECRET)
        _put_record(sink, "billing-sync", RECORD)
    assert _temporaries(directory) == []


def test_temporary_is_synced_before_the_rename_and_the_folder_after(directory: Path) -> None:
    seen: list[tuple[object, ...]] = []
    target = directory / "billing-sync"

    def observe(fd: int) -> None:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            seen.append(("folder", info.st_ino == directory.stat().st_ino, target.read_bytes()))
        else:
            names = [p.name for p in directory.iterdir() if p.lstat().st_ino == info.st_ino]
            seen.append(("file", names, target.read_bytes() if target.exists() else None))
            # Everything is written before the sync.
            assert (directory / names[0]).read_bytes() == pending
        os.fsync(fd)

    sink = FileSink(directory, fsync=observe)
    pending = SECRET.reveal().encode()
    version = sink.write_secret("billing-sync", SECRET, expected_version=None)
    pending = OTHER_SECRET.reveal().encode()
    sink.write_secret("billing-sync", OTHER_SECRET, expected_version=version)

    assert [event[0] for event in seen] == ["file", "folder", "file", "folder"]
    first_file, first_folder, second_file, second_folder = seen
    # Each secret was synced under its temporary name, while the target did not hold it yet.
    for event in (first_file, second_file):
        names = event[1]
        assert isinstance(names, list) and len(names) == 1
        assert re.match(r"^\.billing-sync\.tmp-[0-9a-f]{16}$", names[0])
    assert first_file[2] is None
    assert second_file[2] == SECRET.reveal().encode()
    # The folder was synced once the rename made the new secret visible.
    assert first_folder == ("folder", True, SECRET.reveal().encode())
    assert second_folder == ("folder", True, OTHER_SECRET.reveal().encode())


def test_metadata_is_synced_the_same_way(directory: Path) -> None:
    synced: list[str] = []

    def observe(fd: int) -> None:
        info = os.fstat(fd)
        names = [p.name for p in directory.iterdir() if p.lstat().st_ino == info.st_ino]
        synced.append("folder" if stat.S_ISDIR(info.st_mode) else names[0])
        os.fsync(fd)

    FileSink(directory, fsync=observe).write_record("billing-sync", RECORD, expected_version=None)
    assert len(synced) == 2
    assert re.match(r"^\.billing-sync\.meta\.json\.tmp-[0-9a-f]{16}$", synced[0])
    assert synced[1] == "folder"


def test_a_symlink_planted_during_a_write_is_replaced_not_followed(
    directory: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("not yours")
    target = directory / "billing-sync"

    def plant_then_sync(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            target.unlink(missing_ok=True)
            target.symlink_to(victim)
        os.fsync(fd)

    sink = FileSink(directory, fsync=plant_then_sync)
    sink.write_secret("billing-sync", SECRET, expected_version=None)
    assert not target.is_symlink()
    assert target.read_bytes() == SECRET.reveal().encode()
    assert victim.read_text() == "not yours"


@pytest.mark.parametrize("write", ["secret", "record"])
def test_an_interrupted_write_leaves_no_temporary(directory: Path, write: str) -> None:
    plain = FileSink(directory)
    version = plain.write_secret("billing-sync", SECRET, expected_version=None)
    version = plain.write_record("billing-sync", RECORD, expected_version=version)
    before = plain.read("billing-sync")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    sink = FileSink(directory, fsync=interrupted)
    calls = {
        "secret": lambda: sink.write_secret("billing-sync", OTHER_SECRET, expected_version=version),
        "record": lambda: sink.write_record(
            "billing-sync", SinkRecord(key_id="x"), expected_version=version
        ),
    }
    with pytest.raises(KeyboardInterrupt):
        calls[write]()
    assert _temporaries(directory) == []
    assert plain.read("billing-sync") == before


def test_an_interrupt_after_the_rename_leaves_no_temporary(directory: Path) -> None:
    def interrupt_the_folder_sync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise KeyboardInterrupt
        os.fsync(fd)

    sink = FileSink(directory, fsync=interrupt_the_folder_sync)
    with pytest.raises(KeyboardInterrupt):
        sink.write_secret("billing-sync", SECRET, expected_version=None)
    assert _temporaries(directory) == []
    assert (directory / "billing-sync").read_bytes() == SECRET.reveal().encode()


def test_a_failed_sync_is_an_error_and_changes_nothing(directory: Path) -> None:
    def failing(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    version = FileSink(directory).write_secret("billing-sync", SECRET, expected_version=None)
    with pytest.raises(SinkError, match=r"cannot write .*billing-sync: No space") as caught:
        FileSink(directory, fsync=failing).write_secret(
            "billing-sync", OTHER_SECRET, expected_version=version
        )
    assert not caught.value.state_unknown
    assert OTHER_SECRET.reveal() not in str(caught.value)
    assert _temporaries(directory) == []
    assert (directory / "billing-sync").read_bytes() == SECRET.reveal().encode()


def test_a_failed_folder_sync_leaves_the_outcome_unknown(directory: Path) -> None:
    def failing_folder(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, "Input/output error")
        os.fsync(fd)

    with pytest.raises(SinkUnavailableError, match="durable") as caught:
        FileSink(directory, fsync=failing_folder).write_secret(
            "billing-sync", SECRET, expected_version=None
        )
    assert caught.value.state_unknown
    # Only a read-back can tell: here the rename did land.
    assert FileSink(directory).read("billing-sync").secret_sha256 == SECRET.sha256()


def test_failed_replace_leaves_no_temporary_and_the_old_files(
    sink: FileSink, directory: Path
) -> None:
    version = sink.write_record("billing-sync", RECORD, expected_version=None)
    # A non-empty folder where the secret file should be: the final rename fails after the
    # temporary file was written (even root cannot replace a non-empty folder with a file).
    (directory / "billing-sync" / "occupied").mkdir(parents=True)
    # (The compare-and-set reads the folder as "not a regular file" first; a writer that read
    # nothing there before the folder appeared gets to the rename.)
    with pytest.raises(SinkError, match="not a regular file"):
        sink.write_secret("billing-sync", SECRET, expected_version=version)

    def make_the_folder_then_sync(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            (directory / "crm" / "occupied").mkdir(parents=True)
        os.fsync(fd)

    with pytest.raises(SinkError, match=r"cannot write .*crm") as caught:
        FileSink(directory, fsync=make_the_folder_then_sync).write_secret(
            "crm", SECRET, expected_version=None
        )
    assert not caught.value.state_unknown
    assert isinstance(caught.value.__cause__, OSError)
    assert SECRET.reveal() not in str(caught.value)
    assert _temporaries(directory) == []
    assert (directory / "crm" / "occupied").is_dir()
    (directory / "billing-sync" / "occupied").rmdir()
    (directory / "billing-sync").rmdir()
    assert sink.read("billing-sync").record == RECORD


def test_a_temporary_that_cannot_be_created_is_a_sink_error(tmp_path: Path) -> None:
    # Root ignores file modes; a path limit binds it too. The folder's path is long enough that
    # "<folder>/billing-sync" fits PATH_MAX (4096) but the temporary's longer path does not.
    folder = tmp_path
    while len(str(folder)) < 4070 - 201:
        folder = folder / ("d" * 200)
    folder = folder / ("e" * (4070 - len(str(folder)) - 1))
    assert len(str(folder)) == 4070
    sink = FileSink(folder)
    with pytest.raises(SinkError, match="cannot create a temporary file") as caught:
        sink.write_secret("billing-sync", SECRET, expected_version=None)
    assert not caught.value.state_unknown
    assert sink.read("billing-sync").empty


# -- temporaries: removed by prepare() only ---------------------------------------------------


def _stale_temporaries(directory: Path) -> list[Path]:
    directory.mkdir(exist_ok=True)
    stale = [
        directory / ".billing-sync.tmp-0123456789abcdef",
        directory / ".billing-sync.meta.json.tmp-fedcba9876543210",
        directory / ".crm.tmp-00000000000000aa",
    ]
    for path in stale:
        path.write_text("half a secret")
    return stale


def test_only_prepare_removes_temporaries(directory: Path, tmp_path: Path) -> None:
    stale = _stale_temporaries(directory)
    sink = FileSink(directory)
    version = sink.write_secret("billing-sync", SECRET, expected_version=None)
    version = sink.write_record("billing-sync", RECORD, expected_version=version)
    sink.read("billing-sync")
    sink.read("crm")
    sink.list_credentials()
    sink.check_names(["billing-sync", "crm"])
    FileSink(directory).read("billing-sync")
    assert all(path.exists() for path in stale)

    victim = tmp_path / "victim"
    victim.write_text("kept")
    planted = directory / ".crm.tmp-00000000000000bb"
    planted.symlink_to(victim)
    lookalikes = [
        directory / ".billing-sync.tmp-notours",
        directory / "billing-sync.tmp-0123456789abcdef",
    ]
    for path in lookalikes:
        path.write_text("kept")
    folder = directory / ".crm.tmp-00000000000000cc"
    folder.mkdir()

    sink.prepare()
    assert not any(path.exists() for path in stale)
    assert not planted.is_symlink()
    assert victim.read_text() == "kept"
    assert all(path.read_text() == "kept" for path in lookalikes)
    assert folder.is_dir()
    state = sink.read("billing-sync")
    assert state.secret_sha256 == SECRET.sha256()
    assert state.version == version


def test_prepare_of_a_folder_not_made_yet_does_nothing(sink: FileSink, directory: Path) -> None:
    sink.prepare()
    assert not directory.exists()


_WRITE_PAUSED = """
import os, stat, sys
from pathlib import Path
from rotator.errors import SinkConflictError
from rotator.models import Secret
from rotator.sinks.file import FileSink

directory, version, value, pause = sys.argv[1:5]

def fsync(fd):
    # Pause with the temporary file written and the folder's write guard held.
    if pause == "pause" and stat.S_ISREG(os.fstat(fd).st_mode):
        print("writing", flush=True)
        sys.stdin.readline()
    os.fsync(fd)

sink = FileSink(Path(directory), fsync=fsync)
try:
    sink.write_secret("billing-sync", Secret(value), expected_version=version or None)
except SinkConflictError:
    print("conflict", flush=True)
    sys.exit(17)
print("won", flush=True)
"""


@contextmanager
def _child(script: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A Python child running ``script``; killed on the way out if it is still running."""
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def _resume(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.write("\n")
    process.stdin.flush()


def _line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.readline()


def test_another_process_write_in_flight_keeps_its_temporary(
    sink: FileSink, directory: Path
) -> None:
    version = sink.write_record("billing-sync", RECORD, expected_version=None)
    with _child(_WRITE_PAUSED, str(directory), version or "", SECRET.reveal(), "pause") as writer:
        assert _line(writer) == "writing\n"
        in_flight = _temporaries(directory)
        assert len(in_flight) == 1
        # Everything but prepare() leaves it alone (reads take no lock: they do not wait).
        other = FileSink(directory)
        assert other.read("billing-sync").version == version
        other.read("crm")
        other.list_credentials()
        other.check_names(["billing-sync"])
        assert _temporaries(directory) == in_flight
        _resume(writer)
        assert _line(writer) == "won\n"
        assert writer.wait(timeout=10) == 0
    assert _temporaries(directory) == []
    assert sink.read("billing-sync").secret_sha256 == SECRET.sha256()


_WRITE_FOREVER = """
import os, stat, sys, time
from pathlib import Path
from rotator.models import Secret, SinkRecord
from rotator.sinks.file import FileSink

def slow_fsync(fd):
    # A slow disk: most of the time, a temporary file holding a secret exists.
    if stat.S_ISREG(os.fstat(fd).st_mode):
        time.sleep(0.005)
    os.fsync(fd)

sink = FileSink(Path(sys.argv[1]), fsync=slow_fsync)
print("writing", flush=True)
n = 0
while True:
    secret = Secret(f"secret-{n:08d}-" + "x" * 4000)
    version = sink.read("billing-sync").version
    version = sink.write_secret("billing-sync", secret, expected_version=version)
    record = SinkRecord(key_id=f"k{n}", secret_sha256=secret.sha256())
    sink.write_record("billing-sync", record, expected_version=version)
    n += 1
"""


def test_a_killed_writer_leaves_no_temporary_past_the_next_prepare(
    sink: FileSink, directory: Path
) -> None:
    rng = random.Random(20261127)
    kills_that_left_one = 0
    for _ in range(10):
        with _child(_WRITE_FOREVER, str(directory)) as writer:
            assert _line(writer) == "writing\n"
            time.sleep(rng.uniform(0.03, 0.15))
            writer.send_signal(signal.SIGKILL)
            assert writer.wait(timeout=10) == -signal.SIGKILL
        left = _temporaries(directory)
        kills_that_left_one += bool(left)
        assert all(TEMPORARY.match(name) for name in left)
        sink.prepare()
        assert _temporaries(directory) == []
        # What is stored is whole: a complete secret, and a record that parses (none yet when
        # the first kill landed before the first record was written).
        state = sink.read("billing-sync")
        if state.secret_sha256 is not None:
            secret = (directory / "billing-sync").read_text()
            assert re.fullmatch(r"secret-\d{8}-x{4000}", secret)
        assert state.record is None or state.record.key_id is not None
    # The kills did land in the middle of writes (else this test proved nothing).
    assert kills_that_left_one > 0


# -- compare-and-set --------------------------------------------------------------------------


def test_a_write_returns_the_version_a_read_then_gives(sink: FileSink) -> None:
    version = sink.write_record("billing-sync", RECORD, expected_version=None)
    assert sink.read("billing-sync").version == version
    version = sink.write_secret("billing-sync", SECRET, expected_version=version)
    assert sink.read("billing-sync").version == version
    assert FileSink(sink.directory).read("billing-sync").version == version


def test_a_stale_version_is_refused_and_changes_nothing(sink: FileSink, directory: Path) -> None:
    stale = sink.write_record("billing-sync", RECORD, expected_version=None)
    sink.write_secret("billing-sync", SECRET, expected_version=stale)
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    with pytest.raises(SinkConflictError, match="changed since it was read"):
        sink.write_secret("billing-sync", OTHER_SECRET, expected_version=stale)
    with pytest.raises(SinkConflictError):
        sink.write_record("billing-sync", SinkRecord(key_id="x"), expected_version=stale)
    with pytest.raises(SinkConflictError):
        sink.write_record("billing-sync", SinkRecord(key_id="x"), expected_version=None)
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before


def test_a_persons_edit_after_the_read_is_a_conflict(sink: FileSink, directory: Path) -> None:
    version = sink.write_secret("billing-sync", SECRET, expected_version=None)
    (directory / "billing-sync").write_text("pasted by hand")
    with pytest.raises(SinkConflictError):
        sink.write_record("billing-sync", RECORD, expected_version=version)
    version = sink.write_record(
        "billing-sync", RECORD, expected_version=sink.read("billing-sync").version
    )
    # Edited right after this pass wrote: the version it was handed no longer matches.
    (directory / "billing-sync.meta.json").write_text('{"key_id": "by-hand"}')
    with pytest.raises(SinkConflictError):
        sink.write_secret("billing-sync", OTHER_SECRET, expected_version=version)
    assert (directory / "billing-sync").read_text() == "pasted by hand"


def test_of_two_processes_writing_one_version_one_wins(sink: FileSink, directory: Path) -> None:
    version = sink.write_record("billing-sync", RECORD, expected_version=None) or ""
    args = (str(directory), version)
    with _child(_WRITE_PAUSED, *args, SECRET.reveal(), "pause") as first:
        assert _line(first) == "writing\n"  # checked the version; holds the write guard
        with _child(_WRITE_PAUSED, *args, OTHER_SECRET.reveal(), "go") as second:
            # The second writer must wait for the first: finishing now would make both win.
            with pytest.raises(subprocess.TimeoutExpired):
                second.wait(timeout=2)
            _resume(first)
            assert _line(first) == "won\n"
            assert first.wait(timeout=10) == 0
            assert _line(second) == "conflict\n"
            assert second.wait(timeout=10) == 17
    assert (directory / "billing-sync").read_bytes() == SECRET.reveal().encode()
    assert _temporaries(directory) == []


def test_an_edit_landing_during_a_write_is_not_taken_for_it(directory: Path) -> None:
    # The version a write returns is that of what it wrote, not of what it finds afterwards:
    # a person's edit between the rename and the return must still be a conflict later.
    def edit_once_renamed(fd: int) -> None:
        os.fsync(fd)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            (directory / "billing-sync.meta.json").write_text('{"key_id": "by-hand"}')

    version = FileSink(directory, fsync=edit_once_renamed).write_secret(
        "billing-sync", SECRET, expected_version=None
    )
    with pytest.raises(SinkConflictError):
        FileSink(directory).write_record("billing-sync", RECORD, expected_version=version)
    assert (directory / "billing-sync.meta.json").read_text() == '{"key_id": "by-hand"}'
