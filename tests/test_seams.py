"""Where features meet: several workspaces, per-workspace patterns, a budget, the own key,
a sink that cannot list, one workspace listed twice, a vanished credential file, `rotate`
without `--workspace`. Each test runs the real ``rotator`` command (a subprocess) against the
bundled emulator with the file sink, and judges by what the emulator and the sink folders hold,
not by the rotator's own report.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from rotator.app import shard_of
from rotator.emulator import Emulator
from tests.cli_support import CliResult, clean_env, run_cli, works

ADMIN = "rotator-admin"


@dataclass
class Fleet:
    """Several emulated workspaces listed in one workspaces file, each with its sink folder."""

    emu: Emulator
    root: Path
    ids: dict[str, str] = field(default_factory=dict)
    admins: dict[str, str] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(self, name: str, admin_days: float = 700, **entry: Any) -> str:
        ws_id = self.emu.add_workspace(name)
        _id, secret = self.emu.add_key(
            ws_id, ADMIN, expires=self.emu.now() + timedelta(days=admin_days)
        )
        key_file = self.root / "keys" / name
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secret)
        self.ids[name], self.admins[name] = ws_id, secret
        self.entries.append({"name": name, "api_key_file": str(key_file), **entry})
        return ws_id

    def key(self, workspace: str, name: str, days_left: float) -> tuple[str, str]:
        expires = self.emu.now() + timedelta(days=days_left)
        return self.emu.add_key(self.ids[workspace], name, expires=expires)

    def live(self, workspace: str, credential: str) -> list[dict[str, Any]]:
        return [
            k
            for k in self.emu.keys(self.ids[workspace])
            if str(k["name"]).split("@", 1)[0] == credential
        ]

    def sink_dir(self, workspace: str) -> Path:
        return self.root / "secrets" / workspace

    def held(self, workspace: str, credential: str) -> str | None:
        path = self.sink_dir(workspace) / credential
        return path.read_text() if path.exists() else None

    def env(self, **variables: str) -> dict[str, str]:
        listing = self.root / "workspaces.json"
        listing.write_text(json.dumps({"workspaces": self.entries}))
        return clean_env(
            {
                "ROTATOR_API_URL": self.emu.url,
                "ROTATOR_WORKSPACES_FILE": str(listing),
                "ROTATOR_SINK_FILE_DIR": str(self.root / "secrets"),
                "ROTATOR_HTTP_MAX_RETRIES": "0",
                "ROTATOR_GRACE_HOURS": "0",
                "ROTATOR_LOG_FORMAT": "json",
                **variables,
            }
        )

    def run(self, *args: str, **variables: str) -> CliResult:
        return run_cli(args, self.env(**variables), self.root)

    def changes(self) -> list[dict[str, Any]]:
        return [r for r in self.emu.request_log() if r["method"] != "GET"]


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with Emulator() as emu:
        yield Fleet(emu, tmp_path)


def _events(result: CliResult, name: str) -> list[dict[str, Any]]:
    return [e for e in result.events() if e.get("event") == name]


# --- 1. per-workspace key_names ---------------------------------------------------------------


def test_each_workspace_rotates_by_its_own_key_names_without_global_patterns(fleet: Fleet) -> None:
    fleet.add("acme", key_names=["billing-*"])
    fleet.add("globex", key_names=["crm"], exclude_key_names=["crm-legacy"])
    fleet.key("acme", "billing-sync", days_left=3)
    fleet.key("acme", "crm", days_left=3)  # not acme's: untouched
    fleet.key("globex", "crm", days_left=3)
    fleet.key("globex", "billing-sync", days_left=3)  # not globex's: untouched

    planned = fleet.run("plan", "--json")
    assert planned.returncode == 0, planned.describe()
    actions = {(a["workspace"], a["credential"], a["action"]) for a in json.loads(planned.stdout)}
    # Each rotation, and (grace 0) the retire of the key it replaces.
    assert actions == {
        (ws, credential, action)
        for ws, credential in (("acme", "billing-sync"), ("globex", "crm"))
        for action in ("rotate", "retire")
    }

    result = fleet.run("run-once")
    assert result.returncode == 0, result.describe()
    for workspace, credential in (("acme", "billing-sync"), ("globex", "crm")):
        (key,) = fleet.live(workspace, credential)
        assert "@" in key["name"], "rotated"
        secret = fleet.held(workspace, credential)
        assert secret is not None and works(fleet.emu, secret)
    assert "@" not in fleet.live("acme", "crm")[0]["name"]
    assert "@" not in fleet.live("globex", "billing-sync")[0]["name"]


def test_a_workspaces_key_names_win_over_the_global_patterns(fleet: Fleet) -> None:
    fleet.add("acme", key_names=["billing-*"])
    fleet.add("globex")  # takes ROTATOR_KEY_NAMES
    fleet.key("acme", "crm", days_left=3)
    fleet.key("globex", "crm", days_left=3)
    result = fleet.run("run-once", ROTATOR_KEY_NAMES="crm")
    assert result.returncode == 0, result.describe()
    assert "@" not in fleet.live("acme", "crm")[0]["name"], "acme manages billing-* only"
    assert "@" in fleet.live("globex", "crm")[0]["name"]


# --- 2 and 3. the budget over the whole plan --------------------------------------------------


def test_the_budget_goes_to_the_most_urgent_key_whatever_its_workspace(fleet: Fleet) -> None:
    fleet.add("fast", key_names=["app-*"])
    fleet.add("slow", key_names=["app-*"])
    for index in range(4):
        fleet.key("fast", f"app-{index}", days_left=20)
    fleet.key("slow", "app-urgent", days_left=5 / 24)
    result = fleet.run("run-once", ROTATOR_MAX_ROTATIONS_PER_PASS="3")
    assert "@" in fleet.live("slow", "app-urgent")[0]["name"], result.describe()
    rotated = [i for i in range(4) if "@" in fleet.live("fast", f"app-{i}")[0]["name"]]
    assert len(rotated) == 2
    deferred = _events(result, "rotation.deferred")
    assert {e["credential"] for e in deferred if e["reason"] == "budget"} == {
        f"app-{i}" for i in range(4) if i not in rotated
    }
    # 20 days left: they can wait for the next pass, so the pass still succeeded.
    assert result.returncode == 0, result.describe()


def test_a_key_left_out_by_the_budget_that_expires_before_the_next_pass_fails_it(
    fleet: Fleet,
) -> None:
    fleet.add("acme", key_names=["app-*"])
    fleet.key("acme", "app-a", days_left=0.2)
    fleet.key("acme", "app-b", days_left=0.3)
    # The schedule runs once a year: both keys expire long before the next pass.
    result = fleet.run("run-once", ROTATOR_MAX_ROTATIONS_PER_PASS="1", ROTATOR_SCHEDULE="0 3 1 1 *")
    assert result.returncode == 1, result.describe()
    assert "@" in fleet.live("acme", "app-a")[0]["name"]
    assert "@" not in fleet.live("acme", "app-b")[0]["name"]
    (left_out,) = [e for e in _events(result, "rotation.deferred") if e["credential"] == "app-b"]
    assert left_out["level"] == "error" and left_out["expires_before_next_pass"] is True


def test_plan_names_the_rotations_the_budget_leaves_out(fleet: Fleet) -> None:
    fleet.add("acme", key_names=["app-*"])
    fleet.add("globex", key_names=["app-*"])
    fleet.key("acme", "app-a", days_left=10)
    fleet.key("globex", "app-b", days_left=1)
    planned = fleet.run("plan", "--json", ROTATOR_MAX_ROTATIONS_PER_PASS="1")
    rows = {(a["workspace"], a["credential"], a["action"]): a for a in json.loads(planned.stdout)}
    assert rows[("globex", "app-b", "rotate")]["deferred"] is None
    assert rows[("acme", "app-a", "rotate")]["deferred"] == "budget"
    # The retire that would have followed it waits with it.
    assert rows[("acme", "app-a", "retire")]["deferred"] == "rotation-deferred"


def test_the_own_key_competes_for_the_budget_by_its_urgency(fleet: Fleet) -> None:
    fleet.add("acme", key_names=["app-*"], self_key_name=ADMIN, admin_days=19 / 24)
    (entry,) = fleet.entries
    # The rotator reads its credential where the sink delivers its own key.
    own_file = fleet.sink_dir("acme") / ADMIN
    own_file.parent.mkdir(parents=True)
    own_file.write_text(Path(entry["api_key_file"]).read_text())
    entry["api_key_file"] = str(own_file)
    for index in range(3):
        fleet.key("acme", f"app-{index}", days_left=20)
    result = fleet.run("run-once", ROTATOR_MAX_ROTATIONS_PER_PASS="3")
    assert result.returncode == 0, result.describe()
    (own,) = fleet.live("acme", ADMIN)
    assert "@" in own["name"], "the own key took the budget first"
    assert works(fleet.emu, own_file.read_text())
    assert sum("@" in fleet.live("acme", f"app-{i}")[0]["name"] for i in range(3)) == 2


# --- 4. a sink that cannot list ---------------------------------------------------------------


def test_a_sink_that_cannot_list_makes_the_pass_incomplete(fleet: Fleet, tmp_path: Path) -> None:
    program = tmp_path / "no-list-sink.py"
    program.write_text(
        "import sys\n"
        "if sys.argv[1] == 'list':\n"
        "    print('permission denied', file=sys.stderr); sys.exit(1)\n"
        "if sys.argv[1] == 'get':\n"
        '    print(\'{"metadata": null, "secret_sha256": null}\')\n'
    )
    fleet.add("acme", key_names=["app-*"])
    result = fleet.run(
        "run-once",
        ROTATOR_SINK="exec",
        ROTATOR_SINK_EXEC_COMMAND=f"{sys.executable} {program}",
        ROTATOR_LOCK_DIR=str(tmp_path / "locks"),
        ROTATOR_SINK_FILE_DIR="",
    )
    assert result.returncode == 1, result.describe()
    (failed,) = _events(result, "sink.list_failed")
    assert failed["level"] == "error" and failed["workspace"] == "acme"
    for command in ("plan", "status"):
        shown = fleet.run(
            command,
            ROTATOR_SINK="exec",
            ROTATOR_SINK_EXEC_COMMAND=f"{sys.executable} {program}",
            ROTATOR_LOCK_DIR=str(tmp_path / "locks"),
            ROTATOR_SINK_FILE_DIR="",
        )
        assert shown.returncode == 1, shown.describe()
        assert "acme" in shown.stderr and "could not list" in shown.stderr


# --- 6. one workspace listed twice ------------------------------------------------------------


def test_one_workspace_listed_twice_is_refused_and_nothing_changes(fleet: Fleet) -> None:
    fleet.add("acme", key_names=["app-*"])
    fleet.key("acme", "app-billing", days_left=3)
    copy = dict(fleet.entries[0], name="acme-copy")
    fleet.entries.append(copy)
    result = fleet.run("run-once")
    assert result.returncode == 1, result.describe()
    duplicates = _events(result, "workspace.duplicate")
    assert {e["workspace"] for e in duplicates} == {"acme", "acme-copy"}
    assert fleet.changes() == []
    assert "@" not in fleet.live("acme", "app-billing")[0]["name"]
    planned = fleet.run("plan", "--json")
    assert planned.returncode == 1 and json.loads(planned.stdout) == []
    assert "listed twice" in planned.stderr


def _twin_under_its_own_admin_key(fleet: Fleet, name: str, of: str) -> None:
    """``name``: ``of`` listed again, under an admin key of its own (another credential)."""
    _id, secret = fleet.emu.add_key(
        fleet.ids[of], f"{ADMIN}-twin", expires=fleet.emu.now() + timedelta(days=700)
    )
    key_file = fleet.root / "keys" / name
    key_file.write_text(secret)
    fleet.entries.append(dict(fleet.entries[0], name=name, api_key_file=str(key_file)))


def test_one_workspace_listed_twice_in_two_shards_is_refused_by_both_pods(fleet: Fleet) -> None:
    # acme-us is acme under another admin key, and ROTATOR_SHARDS=2 puts them in different
    # shards: each pod asks `me` of the other shard's entry too, and refuses its own.
    assert shard_of("acme", 2) == 0 and shard_of("acme-us", 2) == 1
    fleet.add("acme", key_names=["app-*"])
    fleet.key("acme", "app-billing", days_left=3)
    _twin_under_its_own_admin_key(fleet, "acme-us", of="acme")
    for index, mine, twin in ((0, "acme", "acme-us"), (1, "acme-us", "acme")):
        pod = {"ROTATOR_SHARDS": "2", "ROTATOR_SHARD_INDEX": str(index)}
        result = fleet.run("run-once", **pod)
        assert result.returncode == 1, result.describe()
        refused = _events(result, "workspace.duplicate")
        assert [e["workspace"] for e in refused] == [mine]
        assert f"{twin} (shard {1 - index})" in refused[0]["error"]
        planned = fleet.run("plan", "--json", **pod)
        assert planned.returncode == 1 and json.loads(planned.stdout) == [], planned.describe()
        assert "listed twice" in planned.stderr
        shown = fleet.run("status", **pod)
        assert shown.returncode == 1 and "listed twice" in shown.stderr, shown.describe()
        rotated = fleet.run("rotate", "app-billing", "--now", "--workspace", mine, **pod)
        assert rotated.returncode == 1, rotated.describe()
        assert mine in {e["workspace"] for e in _events(rotated, "workspace.duplicate")}
    assert fleet.changes() == []
    assert [k["name"] for k in fleet.live("acme", "app-billing")] == ["app-billing"]
    for entry in ("acme", "acme-us"):
        assert fleet.held(entry, "app-billing") is None


def test_a_failing_me_of_another_shards_entry_does_not_stop_this_pods_work(
    fleet: Fleet,
) -> None:
    # Shard 1's entries cannot answer `me` here (a key the API refuses; a credential file that
    # is gone): they prove nothing about shard 0's acme, which is rotated as ever. The pass is
    # not all done, though: whether globex is acme listed twice is not known (exit 1, as an
    # unsharded pass with globex unusable), so acme's old key is not revoked (globex's sink
    # could hold it) until globex answers. A missing file is its own pod's problem alone.
    assert shard_of("acme", 2) == 0 and {shard_of(n, 2) for n in ("globex", "hooli")} == {1}
    fleet.add("acme", key_names=["app-*"])
    fleet.key("acme", "app-billing", days_left=3)
    fleet.add("globex", key_names=["app-*"])
    Path(fleet.entries[1]["api_key_file"]).write_text("pm-not-a-key-of-anyone")
    fleet.add("hooli", key_names=["app-*"])
    Path(fleet.entries[2]["api_key_file"]).unlink()
    result = fleet.run("run-once", ROTATOR_SHARDS="2", ROTATOR_SHARD_INDEX="0")
    assert result.returncode == 1, result.describe()
    assert _events(result, "workspace.duplicate") == []
    unchecked = _events(result, "workspace.twin_unchecked")
    assert [(e["other"], e["level"]) for e in unchecked] == [("globex", "error")]
    assert "pm-not-a-key-of-anyone" not in result.output
    live = sorted(k["name"] for k in fleet.live("acme", "app-billing"))
    assert len(live) == 2 and "@" in live[1]  # rotated; the old key held back, not retired
    (held,) = _events(result, "revokes.held")
    assert held["unidentified"] == ["globex"] and held["workspaces"] == ["acme"]
    assert fleet.held("acme", "app-billing") is not None
    assert [r["method"] for r in fleet.changes()] == ["POST"]


# --- 8. the own key delivered where the rotator does not read it ------------------------------


def test_an_unswitched_own_key_near_expiry_fails_the_pass(fleet: Fleet) -> None:
    # The own key is delivered into the sink folder, but the rotator reads another file.
    fleet.add("acme", key_names=["app-*"], self_key_name=ADMIN, admin_days=5)
    delivering = fleet.run("run-once")
    # A mounted Secret may take a while to show the new key: the delivering pass is not failed.
    assert delivering.returncode == 0, delivering.describe()
    result = fleet.run("run-once")
    assert result.returncode == 1, result.describe()
    waiting = [e for e in _events(result, "self.waiting") if e["level"] == "error"]
    assert waiting and "expires in" in waiting[0]["error"]
    old = [k for k in fleet.live("acme", ADMIN) if "@" not in k["name"]]
    assert old, "the key the rotator runs on is never revoked"
    assert works(fleet.emu, fleet.admins["acme"])


# --- 10. one workspace's credential file disappears ------------------------------------------


def test_a_vanished_credential_file_fails_only_its_workspace(fleet: Fleet) -> None:
    fleet.add("acme", key_names=["app-*"])
    fleet.add("globex", key_names=["app-*"])
    fleet.key("globex", "app-billing", days_left=3)
    Path(fleet.entries[0]["api_key_file"]).unlink()
    result = fleet.run("run-once")
    assert result.returncode == 1, result.describe()
    (failed,) = _events(result, "workspace.failed")
    assert failed["workspace"] == "acme" and "api_key_file" in failed["error"]
    # globex is rotated; its old key stays until acme can be told apart from it (acme declares
    # no workspace_id, and without its credential `me` cannot be asked).
    names = sorted(k["name"] for k in fleet.live("globex", "app-billing"))
    assert len(names) == 2 and "@" in names[1]
    (held,) = _events(result, "revokes.held")
    assert held["unidentified"] == ["acme"] and held["workspaces"] == ["globex"]
    checked = fleet.run("check-config")
    assert checked.returncode == 2 and "workspaces[0].api_key_file" in checked.stderr


# --- 11. the pass's run_id on every line -------------------------------------------------------


def test_every_line_of_a_pass_carries_its_run_id(fleet: Fleet) -> None:
    fleet.add("acme", key_names=["app-*"])
    fleet.add("globex", key_names=["app-*"])
    for workspace in ("acme", "globex"):
        for index in range(3):
            fleet.key(workspace, f"app-{index}", days_left=3)
    result = fleet.run("run-once", ROTATOR_CONCURRENCY="4")
    assert result.returncode == 0, result.describe()
    events = result.events()
    started = _events(result, "pass.started")[0]
    inside = events[events.index(started) : -1]
    assert {e["event"] for e in inside} >= {"key.evaluated", "rotation.created"}
    missing = [e["event"] for e in inside if e.get("run_id") != started["run_id"]]
    assert missing == []


# --- 12. rotate --now without --workspace, and under a dry run --------------------------------


def test_rotate_a_name_held_in_several_workspaces_needs_workspace(fleet: Fleet) -> None:
    fleet.add("acme", key_names=["billing"])
    fleet.add("globex", key_names=["billing"])
    fleet.key("acme", "billing", days_left=300)
    fleet.key("globex", "billing", days_left=300)
    result = fleet.run("rotate", "billing", "--now")
    assert result.returncode == 2, result.describe()
    assert "acme" in result.stderr and "globex" in result.stderr
    assert fleet.changes() == []
    named = fleet.run("rotate", "billing", "--now", "--workspace", "globex")
    assert named.returncode == 0, named.describe()
    assert "@" in fleet.live("globex", "billing")[0]["name"]
    assert "@" not in fleet.live("acme", "billing")[0]["name"]


def test_rotate_refuses_a_dry_run(fleet: Fleet) -> None:
    fleet.add("acme", key_names=["billing"])
    fleet.key("acme", "billing", days_left=300)
    result = fleet.run("rotate", "billing", "--now", ROTATOR_DRY_RUN="true")
    assert result.returncode == 2 and "ROTATOR_DRY_RUN" in result.stderr
    assert fleet.changes() == []


# --- 13. a pattern that selects nothing -------------------------------------------------------


@pytest.mark.parametrize("pattern", ["erp-snyc", "'erp-*'"])
def test_a_pattern_that_selects_nothing_is_named(fleet: Fleet, pattern: str) -> None:
    fleet.add("acme", key_names=[pattern])
    fleet.key("acme", "erp-sync", days_left=3)
    result = fleet.run("run-once")
    (unmatched,) = _events(result, "selector.unmatched")
    assert unmatched["pattern"] == pattern and unmatched["level"] == "warning"
    for command in ("plan", "status"):
        shown = fleet.run(command)
        assert "selects no key" in shown.stderr and pattern in shown.stderr, shown.describe()


# --- 16. status rows ---------------------------------------------------------------------------


def test_status_shows_a_missing_credential_even_with_orphans(fleet: Fleet) -> None:
    fleet.add("acme", key_names=["app-*"])
    fleet.key("acme", "app-billing", days_left=3)
    assert fleet.run("run-once").returncode == 0
    (current,) = fleet.live("acme", "app-billing")
    # A person revokes the delivered key; another rotator-made key stays listed (unknown while
    # the credential is missing: nothing proves the sink does not hold it).
    revoked = httpx.delete(
        f"{fleet.emu.url}/api/data/api-keys/{current['id']}/revoke",
        headers={"Authorization": f"Bearer {fleet.admins['acme']}"},
    )
    assert revoked.status_code == 200
    fleet.key("acme", "app-billing@2020-01-01T00:00:00Z", days_left=600)
    shown = fleet.run("status", "--json")
    rows = [r for r in json.loads(shown.stdout) if r["credential"] == "app-billing"]
    assert {r["role"] for r in rows} >= {"missing", "unknown"}


def test_status_says_when_the_sink_no_longer_holds_the_current_key(fleet: Fleet) -> None:
    fleet.add("acme", key_names=["app-*"])
    fleet.key("acme", "app-billing", days_left=300)
    fleet.key("acme", "app-crm", days_left=3)
    assert fleet.run("run-once").returncode == 0
    rows = {r["credential"]: r for r in json.loads(fleet.run("status", "--json").stdout)}
    assert rows["app-crm"]["in_sink"] is True
    assert rows["app-billing"]["in_sink"] is False  # never delivered: it was not due
    for name in ("app-crm", "app-crm.meta.json"):
        os.remove(fleet.sink_dir("acme") / name)  # a person deletes the sink entry
    rows = {r["credential"]: r for r in json.loads(fleet.run("status", "--json").stdout)}
    assert rows["app-crm"]["role"] == "current" and rows["app-crm"]["in_sink"] is False


def test_check_config_warns_of_a_quoted_pattern(fleet: Fleet) -> None:
    fleet.add("acme", key_names=["'erp-*'"])
    checked = fleet.run("check-config")
    assert checked.returncode == 0, checked.describe()
    assert "the pattern 'erp-*' is quoted" in checked.stdout


def test_a_workspace_removed_from_the_file_is_named_while_its_records_remain(
    fleet: Fleet,
) -> None:
    fleet.add("acme", key_names=["app-*"])
    fleet.add("globex", key_names=["app-*"])
    fleet.key("globex", "app-billing", days_left=3)
    assert fleet.run("run-once", ROTATOR_GRACE_HOURS="24").returncode == 0
    del fleet.entries[1]  # globex is removed while its previous key is in its grace period
    result = fleet.run("run-once")
    (unconfigured,) = _events(result, "workspace.unconfigured")
    assert unconfigured["workspace"] == "globex"
    assert unconfigured["credentials"] == ["app-billing"]
    shown = fleet.run("status")
    assert "workspace globex" in shown.stderr and "no longer configured" in shown.stderr


def test_a_forced_rotation_the_budget_leaves_out_fails_the_run(fleet: Fleet) -> None:
    fleet.add("acme", key_names=["app-*"])
    fleet.key("acme", "app-a", days_left=300)
    fleet.key("acme", "app-b", days_left=300)
    result = fleet.run("rotate", "app-a", "app-b", "--now", ROTATOR_MAX_ROTATIONS_PER_PASS="1")
    assert result.returncode == 1, result.describe()
    rotated = [c for c in ("app-a", "app-b") if "@" in fleet.live("acme", c)[0]["name"]]
    assert len(rotated) == 1
    failed = [e for e in _events(result, "rotation.deferred") if e["level"] == "error"]
    assert [e["credential"] for e in failed] == [c for c in ("app-a", "app-b") if c not in rotated]


def test_two_entries_pinned_to_one_workspace_id_are_a_configuration_error(fleet: Fleet) -> None:
    ws_id = fleet.add("acme", key_names=["app-*"])
    fleet.entries[0]["workspace_id"] = ws_id
    fleet.entries.append(dict(fleet.entries[0], name="acme-copy"))
    for command in ("check-config", "run-once"):
        result = fleet.run(command)
        assert result.returncode == 2, result.describe()
        assert "workspaces[1].workspace_id" in result.stderr
    assert fleet.changes() == []


def test_rotate_without_workspace_refuses_while_a_workspace_cannot_be_read(fleet: Fleet) -> None:
    fleet.add("acme", key_names=["billing"])
    fleet.add("globex", key_names=["billing"])
    fleet.key("acme", "billing", days_left=300)
    fleet.key("globex", "billing", days_left=300)
    Path(fleet.entries[1]["api_key_file"]).write_text("pm-not-a-key-of-anyone")
    result = fleet.run("rotate", "billing", "--now")
    assert result.returncode == 2, result.describe()
    assert "globex could not be read" in result.stderr
    assert fleet.changes() == []


def test_one_credential_in_two_entries_is_refused_even_when_one_is_named(fleet: Fleet) -> None:
    # A copy-paste: one credential file in two entries. Known from the credential itself, so
    # naming one entry (or an API failing for the other) never leaves one acting alone.
    fleet.add("acme", key_names=["billing"])
    fleet.key("acme", "billing", days_left=300)
    fleet.entries.append(dict(fleet.entries[0], name="acme-copy"))
    result = fleet.run("rotate", "billing", "--now", "--workspace", "acme")
    assert result.returncode == 1, result.describe()
    assert "acme" in {e["workspace"] for e in _events(result, "workspace.duplicate")}
    assert fleet.changes() == []


def test_rotate_in_one_entry_revokes_nothing_while_another_cannot_be_identified(
    fleet: Fleet,
) -> None:
    # globex's `me` fails: it may be acme listed again under another admin key, its sink
    # holding acme's key. `rotate --workspace acme` still gives acme a new key, but keeps the
    # old one (a consumer of globex's sink may hold it) and says why; with workspace_id
    # written down for globex, the old key goes at once.
    fleet.add("acme", key_names=["billing"])
    fleet.key("acme", "billing", days_left=300)
    fleet.add("globex", key_names=["billing"])
    Path(fleet.entries[1]["api_key_file"]).write_text("pm-not-a-key-of-anyone")
    result = fleet.run("rotate", "billing", "--now", "--workspace", "acme")
    assert result.returncode == 1, result.describe()
    assert [e["other"] for e in _events(result, "workspace.twin_unchecked")] == ["globex"]
    (held,) = _events(result, "revokes.held")
    assert held["unidentified"] == ["globex"] and held["workspaces"] == ["acme"]
    assert [r["method"] for r in fleet.changes()] == ["POST"]
    assert len(fleet.live("acme", "billing")) == 2
    assert "pm-not-a-key-of-anyone" not in result.output


def test_an_entry_declaring_its_workspace_id_holds_back_no_revoke_elsewhere(
    fleet: Fleet,
) -> None:
    fleet.add("acme", key_names=["billing"])
    fleet.key("acme", "billing", days_left=300)
    globex_id = fleet.add("globex", key_names=["billing"])
    fleet.entries[1]["workspace_id"] = globex_id
    Path(fleet.entries[1]["api_key_file"]).write_text("pm-not-a-key-of-anyone")
    result = fleet.run("rotate", "billing", "--now", "--workspace", "acme")
    assert _events(result, "revokes.held") == []
    assert [r["method"] for r in fleet.changes()] == ["POST", "DELETE"]
    assert len(fleet.live("acme", "billing")) == 1
