"""``check-config --online``: every check for real, and proof that nothing changed.

The proof is each system's own record of what it was asked: the emulator's request log (GET
only), the file sink's folder (not a byte, not a file, not a timestamp changed), the exec-sink
program's log of its calls (``list`` and ``get`` only), and the Kubernetes stand-in's request
log (Secrets only read; the Lease taken and released, which the contract allows).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from rotator.emulator import Emulator
from tests.cli_support import Seeded, clean_env, run_cli, seed
from tests.k8s.fixtures import NAMESPACE, Cluster, apiserver, cluster, kubeconfig  # noqa: F401
from tests.sinks.test_exec import SCRIPTED


@pytest.fixture
def acme(emulator: Emulator) -> Seeded:
    return seed(emulator)


def _tree(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``folder`` with its mode, modification time and content."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): (p.stat().st_mode, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _online(result: Any) -> dict[str, Any]:
    (workspace,) = json.loads(result.stdout)["online"]
    return dict(workspace)


def _statuses(workspace: dict[str, Any], check: str) -> list[str]:
    return [c["status"] for c in workspace["checks"] if c["check"] == check]


def test_a_good_setup_passes_and_nothing_changes(acme: Seeded, tmp_path: Path) -> None:
    sink_dir = tmp_path / "secrets"
    acme.add_key("app-billing", days_left=5)
    acme.add_key("app-crm", days_left=300)
    env = acme.env(sink_dir)

    # Before the first pass the sink's folder does not even exist: it is not created.
    first = run_cli(["check-config", "--online"], env, tmp_path)
    assert first.returncode == 0, first.describe()
    assert not sink_dir.exists()
    assert "not there yet; the first pass creates it" in first.stdout
    assert "Every workspace usable (1)." in first.stdout

    assert run_cli(["run-once"], env, tmp_path).returncode == 0
    before = _tree(sink_dir)
    seen = len(acme.emu.request_log())

    result = run_cli(["check-config", "--online", "-o", "json"], env, tmp_path)

    assert result.returncode == 0, result.describe()
    workspace = _online(result)
    assert workspace["usable"] is True
    checks = {c["check"]: c for c in workspace["checks"]}
    assert "answers as user" in checks["credential"]["detail"]
    assert "app-billing, app-crm" in checks["keys"]["detail"]
    assert checks["sink"]["detail"].endswith("holds a key for 1 of 2")
    assert checks["lock"]["detail"].endswith("taken and released")
    assert {c["status"] for c in workspace["checks"]} == {"ok"}
    # Nothing changed: GET requests only, the sink's files exactly as they were.
    assert {r["method"] for r in acme.emu.request_log()[seen:]} == {"GET"}
    assert _tree(sink_dir) == before


def test_a_refused_credential_fails_its_workspace_with_a_line_naming_it(
    acme: Seeded, tmp_path: Path
) -> None:
    env = acme.env(tmp_path / "secrets", ROTATOR_API_KEY="pm_not_a_key_of_this_workspace_0")

    result = run_cli(["check-config", "--online"], env, tmp_path)

    assert result.returncode == 1, result.describe()
    assert "rotator: workspace default: credential: the API refused" in result.stderr
    assert "Not usable: default." in result.stdout
    assert acme.changing_requests() == []


def test_a_pattern_that_selects_nothing_is_a_warning(acme: Seeded, tmp_path: Path) -> None:
    acme.add_key("app-billing", days_left=300)
    env = acme.env(tmp_path / "secrets", ROTATOR_KEY_NAMES="app-*,'billing-*'")

    result = run_cli(["check-config", "--online", "-o", "json"], env, tmp_path)

    assert result.returncode == 0, result.describe()
    workspace = _online(result)
    warned = [c["detail"] for c in workspace["checks"] if c["status"] == "warning"]
    assert warned == ["the pattern \"'billing-*'\" selects no key (a typo, or quotes kept)"]


def test_the_own_key_must_be_delivered_where_the_rotator_reads_it(
    acme: Seeded, tmp_path: Path
) -> None:
    sink_dir = tmp_path / "secrets"
    key_file = tmp_path / "admin-key"
    key_file.write_text(acme.admin_secret)
    env = acme.env(
        sink_dir,
        ROTATOR_API_KEY="",
        ROTATOR_API_KEY_FILE=str(key_file),
        ROTATOR_SELF_KEY_NAME="rotator-admin",
        ROTATOR_KEY_NAMES="app-*",
    )

    before = _online(run_cli(["check-config", "--online", "-o", "json"], env, tmp_path))
    assert _statuses(before, "own key") == ["warning"]  # nothing delivered yet

    # The sink holds the admin key while the rotator reads another copy: a warning says so.
    sink_dir.mkdir()
    (sink_dir / "rotator-admin").write_text(acme.admin_secret)
    (sink_dir / "rotator-admin.meta.json").write_text(
        json.dumps({"key_id": acme.admin_id, "secret_sha256": _sha(acme.admin_secret),
                    "credential": "rotator-admin", "workspace": "default"})
    )  # fmt: skip
    pointed = _online(
        run_cli(
            ["check-config", "--online", "-o", "json"],
            {**env, "ROTATOR_API_KEY_FILE": str(sink_dir / "rotator-admin")},
            tmp_path,
        )
    )
    assert _statuses(pointed, "own key") == ["ok"]


def _sha(text: str) -> str:
    import hashlib  # noqa: PLC0415

    return hashlib.sha256(text.encode()).hexdigest()


def test_the_exec_sink_is_only_listed_and_read(acme: Seeded, tmp_path: Path) -> None:
    acme.add_key("app-billing", days_left=5)
    state = tmp_path / "program"
    state.mkdir()
    (state / "list.stdout").write_text('["app-gone"]')
    command = shlex.join([sys.executable, str(SCRIPTED), str(state)])
    env = clean_env(
        {
            "ROTATOR_API_URL": acme.emu.url,
            "ROTATOR_API_KEY": acme.admin_secret,
            "ROTATOR_KEY_NAMES": "app-*",
            "ROTATOR_SINK": "exec",
            "ROTATOR_SINK_EXEC_COMMAND": command,
            "ROTATOR_LOCK_DIR": str(tmp_path / "lock"),
            "ROTATOR_HTTP_MAX_RETRIES": "0",
        }
    )

    result = run_cli(["check-config", "--online"], env, tmp_path)

    assert result.returncode == 0, result.describe()
    calls = [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]
    assert [(c["verb"], c["argv"][-1]) for c in calls] == [
        ("list", "list"), ("get", "app-billing"), ("get", "app-gone")
    ]  # fmt: skip
    assert all(c["stdin_hex"] == "" for c in calls)
    assert acme.changing_requests() == []
    assert not (tmp_path / "lock").exists()


def test_the_kubernetes_sink_reads_secrets_and_the_lease_is_taken_and_released(
    acme: Seeded,
    tmp_path: Path,
    cluster: Cluster,  # noqa: F811
) -> None:
    acme.add_key("app-billing", days_left=5)
    env = clean_env(
        {
            "ROTATOR_API_URL": acme.emu.url,
            "ROTATOR_API_KEY": acme.admin_secret,
            "ROTATOR_KEY_NAMES": "app-*",
            "ROTATOR_SINK": "kubernetes",
            "ROTATOR_SINK_KUBERNETES_NAMESPACE": NAMESPACE,
            "ROTATOR_SINK_KUBERNETES_KUBECONFIG": str(cluster.kubeconfig),
            "ROTATOR_LOCK": "lease",
            "ROTATOR_LEASE_NAMESPACE": NAMESPACE,
            "ROTATOR_HTTP_MAX_RETRIES": "0",
        }
    )

    result = run_cli(["check-config", "--online", "-o", "json"], env, tmp_path)

    assert result.returncode == 0, result.describe()
    assert _online(result)["usable"] is True
    secrets = [r for r in cluster.server.requests if "/secrets" in r.path]
    assert secrets and {r.verb for r in secrets} <= {"get", "list"}
    others = {r.verb for r in cluster.server.requests if "/leases" not in r.path} - {"get", "list"}
    assert others == set()
    lease = cluster.server.get_object("Lease", NAMESPACE, "key-rotator-default")
    assert lease is not None and not lease["spec"].get("holderIdentity")  # released
    assert acme.changing_requests() == []
