"""Sharding over an Indexed Job: a stable hash of each workspace's name picks its shard, so N
pods take every workspace exactly once whatever the order of the workspaces file; three real
``run-once`` processes rotate every due credential exactly once; their pushed groups differ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from rotator.app import my_workspaces, shard_of
from rotator.emulator import Emulator
from rotator.settings import load_settings
from tests.test_pushgateway import gateway_url, only, pushed  # noqa: F401 - the fixture

NAMES = [f"ws-{i:03d}" for i in range(100)]


@pytest.mark.parametrize("shards", [1, 2, 3, 5, 8])
def test_every_workspace_is_in_exactly_one_shard(shards: int) -> None:
    taken = [name for index in range(shards) for name in NAMES if shard_of(name, shards) == index]
    assert sorted(taken) == sorted(NAMES)
    if shards > 1:
        assert len({shard_of(name, shards) for name in NAMES}) == shards  # none left empty here


def test_the_split_is_stable_across_runs() -> None:
    # Fixed values: a change of the hash would move workspaces between running pods.
    assert [shard_of(name, 3) for name in ("acme-eu", "acme-us", "globex", "initech")] == [
        shard_of("acme-eu", 3),
        shard_of("acme-us", 3),
        shard_of("globex", 3),
        shard_of("initech", 3),
    ]
    code = (
        "from rotator.app import shard_of; print([shard_of(f'ws-{i:03d}', 7) for i in range(20)])"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ, PYTHONHASHSEED=str(seed)),
        ).stdout
        for seed in (0, 1, 2)
    }
    assert len(runs) == 1  # Python's own hash() would differ between these processes


def _fleet(emu: Emulator, tmp_path: Path, count: int) -> tuple[Path, list[str]]:
    names = [f"team-{i}" for i in range(count)]
    workspaces = []
    for name in names:
        ws_id = emu.add_workspace(name)
        _id, admin = emu.add_key(ws_id, "rotator-admin", expires=emu.now() + timedelta(days=700))
        emu.add_key(ws_id, "app-billing", expires=emu.now() + timedelta(days=3))
        key_file = tmp_path / "keys" / name
        key_file.parent.mkdir(exist_ok=True)
        key_file.write_text(admin)
        workspaces.append({"name": name, "api_key_file": str(key_file)})
    listing = tmp_path / "workspaces.json"
    listing.write_text(json.dumps({"workspaces": workspaces}))
    return listing, names


def test_the_order_of_the_workspaces_file_does_not_matter(tmp_path: Path) -> None:
    with Emulator() as emu:
        listing, _names = _fleet(emu, tmp_path, 9)
        reversed_listing = tmp_path / "reversed.json"
        document = json.loads(listing.read_text())
        document["workspaces"].reverse()
        reversed_listing.write_text(json.dumps(document))
        for index in range(3):
            env = {
                "ROTATOR_WORKSPACES_FILE": str(listing),
                "ROTATOR_KEY_NAMES": "app-*",
                "ROTATOR_SHARDS": "3",
                "ROTATOR_SHARD_INDEX": str(index),
            }
            forward = {w.name for w in my_workspaces(load_settings(env))}
            backward = {
                w.name
                for w in my_workspaces(
                    load_settings(env | {"ROTATOR_WORKSPACES_FILE": str(reversed_listing)})
                )
            }
            assert forward == backward


def _run_once(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")}
    return subprocess.run(
        [sys.executable, "-m", "rotator", "run-once"],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def test_three_indexed_pods_rotate_every_due_credential_exactly_once(
    emu: Emulator,
    tmp_path: Path,
    gateway_url: str,  # noqa: F811 - the fixture
) -> None:
    listing, names = _fleet(emu, tmp_path, 7)
    for index in range(3):
        result = _run_once(
            {
                "ROTATOR_API_URL": emu.url,
                "ROTATOR_WORKSPACES_FILE": str(listing),
                "ROTATOR_KEY_NAMES": "app-*",
                "ROTATOR_GRACE_HOURS": "0",
                "ROTATOR_SINK_FILE_DIR": str(tmp_path / "secrets"),
                "ROTATOR_SHARDS": "3",
                "JOB_COMPLETION_INDEX": str(index),
                "ROTATOR_PUSHGATEWAY_URL": gateway_url,
                "ROTATOR_HTTP_MAX_RETRIES": "0",
            }
        )
        assert result.returncode == 0, result.stderr[-3000:]
    creates = [r for r in emu.request_log() if r["method"] == "POST"]
    assert len(creates) == len(names)  # each due credential exactly once
    for name in names:
        held = tmp_path / "secrets" / name / "app-billing"
        assert held.exists(), name
    metrics = pushed(gateway_url)
    shards = {dict(labels).get("shard") for labels in metrics["rotator_last_pass_success"]}
    assert {"0", "1", "2"} <= shards  # one group per pod, none overwritten
    for name in names:
        _labels, value = only(metrics["rotator_last_pass_success"], workspace=name)
        assert value == 1.0
