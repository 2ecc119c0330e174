"""The example exec-sink program, config/exec-sink/folder-sink.py, called as the rotator and
as a person would call it: its files (a subfolder per workspace), modes, atomic writes, answers
and refusals."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rotator.errors import SinkUnavailableError
from rotator.models import Secret, SinkRecord
from rotator.sinks.exec import ExecSink
from tests.sinks.backend_exec import (
    FOLDER_SINK,
    WORKSPACE,
    folder_sink_command,
    make_backend,
    secret_path,
)

SECRET = Secret("pm-key-5ecret-VALUE-0123456789")


def run(
    folder: Path, *words: str, stdin: bytes = b"", workspace: str | None = WORKSPACE
) -> subprocess.CompletedProcess[bytes]:
    """The program as the rotator calls it: ROTATOR_WORKSPACE set (unless ``workspace`` is
    None), nothing else of the rotator's environment."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if workspace is not None:
        env["ROTATOR_WORKSPACE"] = workspace
    return subprocess.run(
        [sys.executable, "-I", str(FOLDER_SINK), str(folder), *words],
        input=stdin,
        capture_output=True,
        check=False,
        timeout=30,
        env=env,
    )


def test_is_an_executable_script_with_a_docstring() -> None:
    assert os.access(FOLDER_SINK, os.X_OK)
    text = FOLDER_SINK.read_text()
    assert text.startswith("#!/usr/bin/env python3\n")
    assert '"""An example program' in text
    # Standard library only: it must run wherever python3 does, outside the rotator's venv.
    result = subprocess.run(
        [str(FOLDER_SINK), "/nonexistent-folder", "list"],
        capture_output=True,
        check=False,
        timeout=30,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "ROTATOR_WORKSPACE": WORKSPACE},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_put_secret_stores_the_bytes_alone_0600(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    result = run(folder, "put-secret", "billing-sync", stdin=SECRET.reveal().encode())
    assert result.returncode == 0, result.stderr
    path = secret_path(folder, "billing-sync")
    assert path.read_bytes() == SECRET.reveal().encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / WORKSPACE).stat().st_mode) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == [WORKSPACE]
    assert sorted(p.name for p in (folder / WORKSPACE).iterdir()) == ["billing-sync.secret"]
    assert result.stdout == b""
    assert SECRET.reveal().encode() not in result.stderr


def test_get_answers_metadata_and_hash(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    assert json.loads(run(folder, "get", "billing-sync").stdout) == {
        "metadata": None,
        "secret_sha256": None,
    }
    document = {"credential": "billing-sync", "key_id": "k1"}
    run(folder, "put-metadata", "billing-sync", stdin=json.dumps(document).encode())
    run(folder, "put-secret", "billing-sync", stdin=b"abc")
    answer = json.loads(run(folder, "get", "billing-sync").stdout)
    assert answer == {"metadata": document, "secret_sha256": hashlib.sha256(b"abc").hexdigest()}
    meta = folder / WORKSPACE / "billing-sync.meta.json"
    assert stat.S_IMODE(meta.stat().st_mode) == 0o600


def test_list_names_the_credentials_with_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    for credential in ("crm-export", "a/b", "billing-sync"):
        run(folder, "put-metadata", credential, stdin=b"{}")
    run(folder, "put-secret", "secret-only", stdin=b"abc")
    (folder / WORKSPACE / ".hidden.meta.json").write_text("{}")
    (folder / WORKSPACE / "notes.txt").write_text("")
    assert json.loads(run(folder, "list").stdout) == ["a/b", "billing-sync", "crm-export"]


def test_each_workspace_has_its_own_subfolder(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    for workspace in ("acme", "globex"):
        document = {"credential": "billing", "workspace": workspace}
        run(
            folder,
            "put-metadata",
            "billing",
            stdin=json.dumps(document).encode(),
            workspace=workspace,
        )
        run(
            folder,
            "put-secret",
            "billing",
            stdin=f"key of {workspace}".encode(),
            workspace=workspace,
        )
    run(folder, "put-metadata", "crm-export", stdin=b"{}", workspace="acme")
    assert sorted(os.listdir(folder)) == ["acme", "globex"]
    for workspace in ("acme", "globex"):
        assert secret_path(folder, "billing", workspace).read_text() == f"key of {workspace}"
        answer = json.loads(run(folder, "get", "billing", workspace=workspace).stdout)
        assert answer == {
            "metadata": {"credential": "billing", "workspace": workspace},
            "secret_sha256": hashlib.sha256(f"key of {workspace}".encode()).hexdigest(),
        }
    assert json.loads(run(folder, "list", workspace="acme").stdout) == ["billing", "crm-export"]
    assert json.loads(run(folder, "list", workspace="globex").stdout) == ["billing"]


@pytest.mark.parametrize("workspace", ["..", ".", "../escape", "a/b", ".hidden"])
def test_a_workspace_name_never_leaves_the_folder(tmp_path: Path, workspace: str) -> None:
    folder = tmp_path / "keys"
    assert run(folder, "put-secret", "billing", stdin=b"abc", workspace=workspace).returncode == 0
    assert sorted(os.listdir(tmp_path)) == ["keys"]
    (subfolder,) = folder.iterdir()
    assert not subfolder.name.startswith(".")
    assert [p.name for p in subfolder.iterdir()] == ["billing.secret"]


@pytest.mark.parametrize("workspace", [None, ""])
def test_without_a_workspace_it_does_nothing(tmp_path: Path, workspace: str | None) -> None:
    folder = tmp_path / "keys"
    for words, stdin in [(("put-secret", "billing"), b"abc"), (("list",), b"")]:
        result = run(folder, *words, stdin=stdin, workspace=workspace)
        assert result.returncode == 2
        assert "ROTATOR_WORKSPACE is not set" in result.stderr.decode()
        assert result.stdout == b""
    assert not folder.exists()


@pytest.mark.parametrize("left", ["billing.secret", "billing.meta.json"])
def test_files_of_the_shared_layout_stop_every_call(tmp_path: Path, left: str) -> None:
    # An earlier version kept every workspace's files right in FOLDER: starting again empty in
    # the subfolder would leave consumers reading the old files, so nothing runs until moved.
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / left).write_text("{}")
    for words, stdin in [
        (("get", "billing"), b""),
        (("list",), b""),
        (("put-secret", "billing"), b"abc"),
        (("put-metadata", "billing"), b"{}"),
    ]:
        result = run(folder, *words, stdin=stdin)
        assert result.returncode == 1
        said = result.stderr.decode()
        assert "earlier layout" in said
        assert str(folder / WORKSPACE) in said
        assert result.stdout == b""
    assert sorted(os.listdir(folder)) == [left]


@pytest.mark.parametrize(
    ("words", "stdin", "status", "says"),
    [
        ((), b"", 2, "usage"),
        (("get",), b"", 2, "usage"),
        (("get", ""), b"", 2, "usage"),
        (("list", "extra"), b"", 2, "usage"),
        (("delete", "billing-sync"), b"", 2, "usage"),
        (("put-secret", "billing-sync"), b"", 1, "no secret"),
        (("put-secret", "billing-sync"), b"k" * (65 * 1024), 1, "larger than"),
        (("put-metadata", "billing-sync"), b"not json", 1, "not UTF-8 JSON"),
        (("put-metadata", "billing-sync"), b"[]", 1, "not a JSON object"),
        (("put-metadata", "x" * 300), b"{}", 1, "longer than"),
    ],
)
def test_refusals(
    tmp_path: Path, words: tuple[str, ...], stdin: bytes, status: int, says: str
) -> None:
    folder = tmp_path / "keys"
    result = run(folder, *words, stdin=stdin)
    assert result.returncode == status
    assert says in result.stderr.decode()
    assert not folder.exists() or list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "says"), [(b"{not json", "not UTF-8 JSON"), (b"[1]", "object")]
)
def test_get_with_damaged_metadata_fails(tmp_path: Path, content: bytes, says: str) -> None:
    folder = tmp_path / "keys"
    (folder / WORKSPACE).mkdir(parents=True)
    (folder / WORKSPACE / "billing-sync.meta.json").write_bytes(content)
    result = run(folder, "get", "billing-sync")
    assert result.returncode == 1
    assert says in result.stderr.decode()
    assert result.stdout == b""


def test_a_folder_it_cannot_write_is_a_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run(blocker / "keys", "put-secret", "billing-sync", stdin=b"abc")
    assert result.returncode == 1
    assert "folder-sink:" in result.stderr.decode()


def test_every_name_stays_inside_the_folder_in_its_own_files(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    sink = ExecSink(folder_sink_command(folder), WORKSPACE, 20.0)
    names = ["..", ".", ".hidden", "../escape", "a/b", "%41", "A", "a", "café", "x y", "%2E"]
    assert dict(sink.check_names(names)) == {}
    for name in names:
        version = sink.write_secret(name, Secret(f"secret of {name}"), expected_version=None)
        sink.write_record(name, SinkRecord(key_id=f"id-{name}"), expected_version=version)
    assert sorted(os.listdir(tmp_path)) == ["keys"]
    assert os.listdir(folder) == [WORKSPACE]
    assert len(os.listdir(folder / WORKSPACE)) == 2 * len(names)
    assert sink.list_credentials() == sorted(names)
    for name in names:
        state = sink.read(name)
        assert state.record == SinkRecord(key_id=f"id-{name}")
        assert state.secret_sha256 == Secret(f"secret of {name}").sha256()
        assert secret_path(folder, name).read_text() == f"secret of {name}"


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_a_write_whose_program_dies_after_writing_is_settled_by_reading(
    request: pytest.FixtureRequest, tmp_path: Path, how: str
) -> None:
    backend = make_backend(request, tmp_path)
    version = backend.sink.write_record(
        "billing-sync", SinkRecord(key_id="k1"), expected_version=None
    )
    (tmp_path / "lose-next-answer").write_text(how)
    said = "killed by SIGKILL" if how == "kill" else "exited with status 1"
    with pytest.raises(SinkUnavailableError, match=said) as caught:
        backend.sink.write_secret("billing-sync", SECRET, expected_version=version)
    assert caught.value.state_unknown
    assert backend.reopen().read("billing-sync").secret_sha256 == SECRET.sha256()
    assert backend.consumer_reads("billing-sync") == SECRET.reveal()
