"""The file sink's own behaviour: the on-disk layout of contract.md, atomicity, names, the lock."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from rotator.errors import (
    LockHeldError,
    SinkError,
    SinkMetadataError,
    SinkNameError,
    SinkUnavailableError,
)
from rotator.models import Secret, SinkRecord
from rotator.sinks.file import FileSink, _translate, file_name, format_time, parse_time

SECRET = Secret("pm-key-5ecret-VALUE-0123456789")
RECORD = SinkRecord(
    key_id="k-new",
    key_name="billing-sync@2026-11-27T03:00:00Z",
    expires=datetime(2028, 11, 26, 3, 0, tzinfo=UTC),
    delivered_at=datetime(2026, 11, 27, 3, 0, 1, 250000, tzinfo=UTC),
    secret_sha256=SECRET.sha256(),
    previous_key_id="k-old",
    retire_previous_after=datetime(2026, 11, 28, 3, 0, 1, tzinfo=UTC),
)


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


# -- layout -----------------------------------------------------------------------------------


def test_secret_file_holds_the_secret_alone(sink: FileSink, directory: Path) -> None:
    sink.write_secret("billing-sync", SECRET)
    assert (directory / "billing-sync").read_bytes() == SECRET.reveal().encode()
    assert _mode(directory / "billing-sync") == 0o600


def test_folder_is_created_private(sink: FileSink, directory: Path) -> None:
    assert not directory.exists()
    sink.write_secret("billing-sync", SECRET)
    assert _mode(directory) == 0o700


def test_metadata_layout(sink: FileSink, directory: Path) -> None:
    sink.write_secret("billing-sync", SECRET)
    sink.write_record("billing-sync", RECORD)
    meta = directory / "billing-sync.meta.json"
    assert _mode(meta) == 0o600
    assert json.loads(meta.read_text()) == {
        "key_id": "k-new",
        "key_name": "billing-sync@2026-11-27T03:00:00Z",
        "expires": "2028-11-26T03:00:00Z",
        "delivered_at": "2026-11-27T03:00:01.250000Z",
        "secret_sha256": SECRET.sha256(),
        "previous_key_id": "k-old",
        "retire_previous_after": "2026-11-28T03:00:01Z",
    }
    assert SECRET.reveal() not in meta.read_text()


def test_pending_fields_appear_only_while_pending(sink: FileSink, directory: Path) -> None:
    meta = directory / "billing-sync.meta.json"
    sink.write_record("billing-sync", RECORD.with_pending("k-next", "a" * 64))
    document = json.loads(meta.read_text())
    assert document["pending_key_id"] == "k-next"
    assert document["pending_secret_sha256"] == "a" * 64

    sink.write_record("billing-sync", RECORD)
    assert "pending_key_id" not in json.loads(meta.read_text())
    assert "pending_secret_sha256" not in json.loads(meta.read_text())


def test_stored_sha256_is_of_the_file_bytes(sink: FileSink, directory: Path) -> None:
    directory.mkdir()
    (directory / "billing-sync").write_bytes(b"edited by hand\n")
    assert sink.stored_sha256("billing-sync") == Secret("edited by hand\n").sha256()


def test_describe_is_the_absolute_folder(tmp_path: Path) -> None:
    relative = Path(os.path.relpath(tmp_path / "secrets"))
    assert FileSink(relative).describe() == f"file:{tmp_path / 'secrets'}"
    assert FileSink(relative).directory == tmp_path / "secrets"


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


def test_hand_written_metadata_with_whole_seconds_reads(sink: FileSink, directory: Path) -> None:
    directory.mkdir()
    (directory / "billing-sync.meta.json").write_text(
        json.dumps({"key_id": "k1", "key_name": "billing-sync", "expires": "2028-01-01T00:00:00Z"})
    )
    assert sink.read_record("billing-sync") == SinkRecord(
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
        (b'{"pending_key_id": "k2"}', "pending"),
        (b'{"key_name": "crm-export@2026-01-01T00:00:00Z"}', "another credential"),
    ],
)
def test_untrusted_metadata_is_refused(
    sink: FileSink, directory: Path, content: bytes, names: str
) -> None:
    directory.mkdir()
    meta = directory / "billing-sync.meta.json"
    meta.write_bytes(content)
    with pytest.raises(SinkMetadataError, match=names) as caught:
        sink.read_record("billing-sync")
    assert str(meta) in str(caught.value)


def test_metadata_error_never_quotes_content(sink: FileSink, directory: Path) -> None:
    directory.mkdir()
    (directory / "billing-sync.meta.json").write_text('{"key_id": "' + SECRET.reveal())
    with pytest.raises(SinkMetadataError) as caught:
        sink.read_record("billing-sync")
    assert SECRET.reveal() not in str(caught.value)
    assert SECRET.reveal() not in str(caught.value.__cause__)


def test_huge_metadata_is_refused_unread(sink: FileSink, directory: Path) -> None:
    directory.mkdir()
    (directory / "billing-sync.meta.json").write_bytes(b" " * (65 * 1024) + b"{}")
    with pytest.raises(SinkMetadataError, match="larger"):
        sink.read_record("billing-sync")


def test_unknown_metadata_fields_are_ignored(sink: FileSink, directory: Path) -> None:
    directory.mkdir()
    (directory / "billing-sync.meta.json").write_text('{"key_id": "k1", "added_later": [1, 2]}')
    assert sink.read_record("billing-sync") == SinkRecord(key_id="k1")


# -- names ------------------------------------------------------------------------------------


def test_unsafe_characters_become_underscores(sink: FileSink, directory: Path) -> None:
    assert file_name("team/billing sync:ü") == "team_billing_sync__"
    sink.write_secret("team/billing sync", SECRET)
    sink.write_record(
        "team/billing sync", SinkRecord(key_name="team/billing sync@2026-01-01T00:00:00Z")
    )
    assert sorted(p.name for p in directory.iterdir()) == [
        "team_billing_sync",
        "team_billing_sync.meta.json",
    ]


@pytest.mark.parametrize(
    "credential",
    [".", "..", "billing.meta.json", ".rotator.lock", ".x.tmp-0123456789abcdef", "a" * 224],
)
def test_reserved_names_are_refused(sink: FileSink, credential: str) -> None:
    problems = sink.check_names([credential, "billing-sync"])
    assert set(problems) == {credential}
    with pytest.raises(SinkNameError):
        sink.write_secret(credential, SECRET)
    with pytest.raises(SinkNameError):
        sink.read_record(credential)


def test_longest_allowed_name_is_writable(sink: FileSink) -> None:
    credential = "a" * 223
    assert dict(sink.check_names([credential])) == {}
    sink.write_secret(credential, SECRET)
    sink.write_record(credential, SinkRecord(key_id="k1"))
    assert sink.stored_sha256(credential) == SECRET.sha256()


def test_collisions_are_a_problem_for_each_naming_the_other(sink: FileSink) -> None:
    problems = sink.check_names(["billing sync", "billing/sync", "billing_sync", "crm"])
    assert set(problems) == {"billing sync", "billing/sync", "billing_sync"}
    assert "'billing/sync'" in problems["billing sync"]
    assert "'billing_sync'" in problems["billing sync"]
    assert "'billing sync'" in problems["billing_sync"]
    assert "'billing sync'" not in problems["billing sync"]


def test_colliding_credentials_cannot_be_written(sink: FileSink, directory: Path) -> None:
    sink.check_names(["billing sync", "billing_sync"])
    with pytest.raises(SinkNameError):
        sink.write_secret("billing sync", SECRET)
    with pytest.raises(SinkNameError):
        sink.stored_sha256("billing_sync")
    assert not directory.exists()
    # Once the collision is gone (a credential was renamed), the other is writable again.
    assert dict(sink.check_names(["billing_sync"])) == {}
    sink.write_secret("billing_sync", SECRET)


def test_duplicates_in_the_list_are_no_collision(sink: FileSink) -> None:
    assert dict(sink.check_names(["billing", "billing"])) == {}


def test_metadata_of_a_colliding_credential_is_not_trusted(sink: FileSink) -> None:
    # Without check_names, "billing sync" would read the file "billing_sync" wrote.
    sink.write_record("billing_sync", SinkRecord(key_name="billing_sync@2026-01-01T00:00:00Z"))
    with pytest.raises(SinkMetadataError, match="another credential"):
        sink.read_record("billing sync")


# -- atomicity and failures -------------------------------------------------------------------


def test_no_temporary_file_after_writes(sink: FileSink, directory: Path) -> None:
    for _ in range(3):
        sink.write_secret("billing-sync", SECRET)
        sink.write_record("billing-sync", RECORD)
    assert _temporaries(directory) == []


def test_failed_rename_leaves_no_temporary_and_the_old_file(
    sink: FileSink, directory: Path
) -> None:
    sink.write_record("billing-sync", RECORD)
    # A directory where the secret file should be: the final rename fails.
    (directory / "billing-sync").mkdir()
    with pytest.raises(SinkError, match="billing-sync") as caught:
        sink.write_secret("billing-sync", SECRET)
    assert not caught.value.state_unknown
    assert isinstance(caught.value.__cause__, OSError)
    assert SECRET.reveal() not in str(caught.value)
    assert _temporaries(directory) == []
    assert sink.read_record("billing-sync") == RECORD


def test_directory_as_metadata_is_a_sink_error(sink: FileSink, directory: Path) -> None:
    (directory / "billing-sync.meta.json").mkdir(parents=True)
    with pytest.raises(SinkError, match=r"billing-sync\.meta\.json"):
        sink.read_record("billing-sync")
    with pytest.raises(SinkError):
        sink.stored_sha256("billing-sync.meta.json")  # reserved name, SinkNameError
    (directory / "crm").mkdir()
    with pytest.raises(SinkError, match="crm"):
        sink.stored_sha256("crm")


def test_folder_that_is_a_file_is_a_sink_error(tmp_path: Path) -> None:
    blocker = tmp_path / "secrets"
    blocker.write_text("not a folder")
    sink = FileSink(blocker / "workspace")
    with pytest.raises(SinkError, match="cannot create"):
        sink.write_secret("billing-sync", SECRET)
    with pytest.raises(SinkError, match="cannot create"), sink.lock():
        pass


def test_failed_replace_is_a_sink_error_without_temporary(sink: FileSink, directory: Path) -> None:
    # A folder where the secret file belongs makes the final rename fail after the temporary
    # file was written: even root cannot replace a non-empty folder with a file.
    sink.write_record("billing-sync", SinkRecord(key_id="k1", key_name="billing-sync"))
    (directory / "billing-sync" / "occupied").mkdir(parents=True)
    with pytest.raises(SinkError, match="billing-sync") as caught:
        sink.write_secret("billing-sync", Secret("new"))
    assert not caught.value.state_unknown
    assert _temporaries(directory) == []


def test_lock_file_that_cannot_be_opened_is_a_sink_error(sink: FileSink, directory: Path) -> None:
    (directory / ".rotator.lock").mkdir(parents=True)
    with pytest.raises(SinkError, match=r"\.rotator\.lock") as caught, sink.lock():
        pytest.fail("locked a folder")
    assert not isinstance(caught.value, SinkUnavailableError)


def test_lock_removes_temporaries_a_killed_pass_left(sink: FileSink, directory: Path) -> None:
    sink.write_secret("billing-sync", SECRET)
    stale = directory / ".billing-sync.tmp-0123456789abcdef"
    stale.write_text("half a secret")
    lookalike = directory / ".billing-sync.tmp-notours"
    lookalike.write_text("kept")
    with sink.lock():
        assert not stale.exists()
    assert lookalike.exists()
    assert sink.stored_sha256("billing-sync") == SECRET.sha256()


def test_unknown_outcome_errors_are_unavailable(sink: FileSink) -> None:
    # ESTALE (a vanished NFS handle) cannot be provoked locally; translate it directly.
    error = _translate(OSError(errno.ESTALE, "Stale file handle"), "cannot write /x")
    assert isinstance(error, SinkUnavailableError)
    assert error.state_unknown
    assert not _translate(OSError(errno.EACCES, "Permission denied"), "x").state_unknown


# -- the lock across processes ----------------------------------------------------------------

_HOLD_LOCK = """
import sys
from pathlib import Path
from rotator.sinks.file import FileSink
with FileSink(Path(sys.argv[1])).lock():
    print("held", flush=True)
    sys.stdin.read()
"""

_TRY_LOCK = """
import sys
from pathlib import Path
from rotator.errors import LockHeldError
from rotator.sinks.file import FileSink
try:
    with FileSink(Path(sys.argv[1])).lock():
        sys.exit(0)
except LockHeldError:
    sys.exit(17)
"""


def test_lock_held_by_another_process(sink: FileSink, directory: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(LockHeldError, match=r"\.rotator\.lock"), sink.lock():
            pytest.fail("took a lock another process holds")
        holder.stdin.close()
        assert holder.wait(timeout=10) == 0
    with sink.lock():
        pass


def test_lock_held_here_blocks_another_process(sink: FileSink, directory: Path) -> None:
    def try_lock() -> int:
        return subprocess.run(
            [sys.executable, "-c", _TRY_LOCK, str(directory)], timeout=10, check=False
        ).returncode

    with sink.lock():
        assert try_lock() == 17
    assert try_lock() == 0
    assert _mode(directory / ".rotator.lock") == 0o600
