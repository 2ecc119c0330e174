#!/usr/bin/env python3
"""Benchmark of a pass against the bundled emulator with a latency injected per request.

Measures, and prints as a Markdown table with each target and the ratio to it:

- 1000 due credentials over 50 workspaces (grace 0, the budget raised to cover them), at
  ROTATOR_CONCURRENCY 1, 4 and 16, against the critical-path bound ``ceil(N / C) x 3 x
  latency`` (create, verify, revoke) and against a sequential loop of the same calls (what a
  shell script does);
- the rotator's own CPU per rotation in that pass (user and system, from ``getrusage`` around
  the pass; the emulator's CPU is not counted, it runs in a process of its own), and, when
  ``strace`` is installed, the ``futex`` and ``fsync`` calls per rotation of the same pass at
  ROTATOR_CONCURRENCY 16 made by a child process under ``strace -f -c``;
- API calls per rotation and per idle workspace;
- ``rotator --help`` and an idle ``rotator run-once`` against a bare ``python -c pass``;
- the idle RSS of ``rotator serve``, and the growth of this process's RSS over 1000 idle passes
  driven in-process (10 managed keys, nothing due);
- the Kubernetes sink against the tests' loopback stand-in of the API server
  (``tests/k8s/apiserver.py``, in this process): the time of a pass that rotates 20 credentials
  into 20 Secrets (Lease lock included), of an idle pass over those 20 Secrets, and the RSS of
  ``rotator serve`` with the kubernetes sink and the Lease lock configured.

Not a test: figures depend on the machine. ``--tiny`` runs every measurement at a small size
(CI runs it so that the script keeps working); ``--kubernetes-only`` runs only the Kubernetes
rows, ``--cpu-only`` only the passes at ROTATOR_CONCURRENCY 1, 4 and 16 with their CPU (and
``futex``) rows. With ``PYTHONPATH`` at another checkout, the same rows measure that version
(the script imports ``rotator`` from ``PYTHONPATH``), for figures side by side. Usage:
``python scripts/benchmark.py [--tiny] [--kubernetes-only | --cpu-only]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rotator.client import ProjectManagerClient
from rotator.emulator import Emulator
from rotator.locks.memory import MemoryLock
from rotator.logging import configure as configure_logging
from rotator.models import Secret
from rotator.policy import RotationPolicy
from rotator.reconcile import ReconcileConfig
from rotator.rotation import RotationConfig
from rotator.runner import Runner
from rotator.sinks.memory import MemorySink
from rotator.survey import PassConfig, Workspace

# The API-server stand-in lives with the tests (appended: a PYTHONPATH given keeps precedence).
sys.path.append(str(Path(__file__).resolve().parents[1]))
from tests.k8s.apiserver import ApiServer, write_kubeconfig


@dataclass
class Row:
    what: str
    figure: str
    target: str
    ratio: str
    met: bool | None


def _rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def _admins(workspaces: int) -> list[str]:
    """The rotator's own key in each benchmark workspace (a child process derives them too)."""
    return [f"bench-admin-{w:03d}-{'x' * 24}" for w in range(workspaces)]


class ExternalEmulator:
    """``rotator emulator`` in a process of its own, seeded with a fleet: the measured pass then
    shares no interpreter (no GIL) with the server it talks to, as with the real API."""

    def __init__(self, workspaces: int, per_workspace: int, latency_ms: int) -> None:
        self.admins = _admins(workspaces)
        seed = {
            "now": NOW.isoformat(),
            "variants": {"latency_ms": latency_ms},
            "workspaces": [
                {
                    "name": f"ws-{w:03d}",
                    "keys": [
                        {"name": "rotator-admin", "secret": admin,
                         "expires": (NOW + timedelta(days=700)).isoformat()},
                        *(
                            {"name": f"app-{c:03d}",
                             "expires": (NOW + timedelta(days=3)).isoformat()}
                            for c in range(per_workspace)
                        ),
                    ],
                }
                for w, admin in enumerate(self.admins)
            ],
        }  # fmt: skip
        self._folder = tempfile.TemporaryDirectory()
        seed_path = Path(self._folder.name, "seed.json")
        seed_path.write_text(json.dumps(seed))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "rotator", "emulator", "--port", str(self.port),
             "--seed", str(seed_path)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.requests()
            except OSError:
                time.sleep(0.05)
            else:
                return
        raise SystemExit("the emulator did not start")

    def requests(self) -> int:
        url = f"{self.url}/_emulator/requests"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return len(json.loads(answer.read())["requests"])

    def __enter__(self) -> ExternalEmulator:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._process.terminate()
        self._process.wait(timeout=30)
        self._folder.cleanup()


def _fleet(emu: Emulator, workspaces: int, per_workspace: int, days_left: float) -> list[str]:
    admins = []
    for w in range(workspaces):
        ws = emu.add_workspace(f"ws-{w:03d}")
        _id, admin = emu.add_key(ws, "rotator-admin", expires=emu.now() + timedelta(days=700))
        admins.append(admin)
        for c in range(per_workspace):
            emu.add_key(ws, f"app-{c:03d}", expires=emu.now() + timedelta(days=days_left))
    return admins


def _workspaces(
    emu: Emulator, admins: list[str]
) -> tuple[list[Workspace], list[ProjectManagerClient]]:
    clients = [ProjectManagerClient(emu.url, Secret(a), max_retries=0) for a in admins]
    spaces = [
        Workspace(f"ws-{i:03d}", client, MemorySink(), MemoryLock(f"ws-{i:03d}"))
        for i, client in enumerate(clients)
    ]
    return spaces, clients


def _config(concurrency: int, budget: int) -> PassConfig:
    return PassConfig(
        reconcile=ReconcileConfig(RotationPolicy(key_names=("app-*",), rotate_before_days=30)),
        rotation=RotationConfig(grace=timedelta(0), verify_first_wait_seconds=0.0),
        max_rotations_per_pass=budget,
        concurrency=concurrency,
        workspace_concurrency=concurrency,
    )


@dataclass
class PoolPass:
    """One pass rotating every credential: its wall time, the API calls it made, the credentials
    it rotated, and the CPU this process spent in it (user and system, in seconds)."""

    seconds: float
    calls: int
    rotated: int
    cpu_user: float
    cpu_system: float


def _log_to_devnull(level: str) -> None:
    """The rotator's log lines rendered at ``level`` and up, as deployed, then thrown away."""
    configure_logging(level=level, stream=open(os.devnull, "w"))  # noqa: SIM115


def _run_pool_pass(
    url: str, admins: list[str], concurrency: int, budget: int, log_level: str = "error"
) -> PoolPass:
    """The pass over one workspace per admin key, logging at ``log_level``; ``calls`` is left 0
    for the caller to fill."""
    _log_to_devnull(log_level)
    clients = [ProjectManagerClient(url, Secret(a), max_retries=0) for a in admins]
    spaces = [
        Workspace(f"ws-{i:03d}", client, MemorySink(), MemoryLock(f"ws-{i:03d}"))
        for i, client in enumerate(clients)
    ]
    runner = Runner(_config(concurrency, budget), clock=lambda: NOW)
    gc.collect()  # the garbage of what came before is not this pass's CPU
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    report = runner.run_pass(spaces)
    elapsed = time.monotonic() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    _log_to_devnull("error")
    for client in clients:
        client.close()
    if report.exit_code != 0:
        raise SystemExit(f"the pass failed: exit {report.exit_code}")
    return PoolPass(
        seconds=elapsed,
        calls=0,
        rotated=report.rotations_succeeded,
        cpu_user=cpu_after.ru_utime - cpu_before.ru_utime,
        cpu_system=cpu_after.ru_stime - cpu_before.ru_stime,
    )


def measure_pool(
    workspaces: int, per_workspace: int, latency_ms: int, concurrency: int, log_level: str
) -> PoolPass:
    """One pass rotating every credential, against a fresh emulator in a process of its own."""
    with ExternalEmulator(workspaces, per_workspace, latency_ms) as emu:
        before = emu.requests()
        done = _run_pool_pass(
            emu.url, emu.admins, concurrency, workspaces * per_workspace, log_level
        )
        return replace(done, calls=emu.requests() - before)


def measure_pools(  # noqa: PLR0913 - the fleet, the pass, and how often
    workspaces: int,
    per_workspace: int,
    latency_ms: int,
    concurrency: int,
    repeat: int,
    *,
    log_level: str = "error",
) -> PoolPass:
    """Medians, figure by figure, over ``repeat`` fresh runs of :func:`measure_pool`."""
    runs = [
        measure_pool(workspaces, per_workspace, latency_ms, concurrency, log_level)
        for _ in range(repeat)
    ]
    return PoolPass(
        seconds=statistics.median(r.seconds for r in runs),
        calls=runs[-1].calls,
        rotated=runs[-1].rotated,
        cpu_user=statistics.median(r.cpu_user for r in runs),
        cpu_system=statistics.median(r.cpu_system for r in runs),
    )


def measure_syscalls(
    workspaces: int, per_workspace: int, latency_ms: int, concurrency: int
) -> dict[str, int] | None:
    """``futex`` and ``fsync`` calls, counted by ``strace -f -c``, of a child process making the
    same pass (its start and imports included: a few dozen); None without strace."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    with (
        ExternalEmulator(workspaces, per_workspace, latency_ms) as emu,
        tempfile.TemporaryDirectory() as folder,
    ):
        summary = Path(folder, "strace.txt")
        child = [sys.executable, str(Path(__file__).resolve()), "--one-pass", emu.url,
                 "--workspaces", str(workspaces), "--concurrency", str(concurrency),
                 "--budget", str(workspaces * per_workspace)]  # fmt: skip
        done = subprocess.run(
            [strace, "-f", "-c", "-e", "trace=futex,fsync", "-o", str(summary), *child],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"the pass under strace failed: {done.stderr[-2000:]}")
        counts = {"futex": 0, "fsync": 0}
        for line in summary.read_text().splitlines():
            fields = line.split()
            # "% time, seconds, usecs/call, calls, [errors,] syscall": calls is the 4th column.
            if len(fields) >= 5 and fields[-1] in counts:
                counts[fields[-1]] = int(fields[3])
        return counts


def one_pass(url: str, workspaces: int, concurrency: int, budget: int) -> int:
    """The child of :func:`measure_syscalls`: the pass alone."""
    done = _run_pool_pass(url, _admins(workspaces), concurrency, budget)
    print(json.dumps({"rotated": done.rotated}))
    return 0


def measure_sequential(workspaces: int, per_workspace: int, latency_ms: int) -> float:
    """What a shell script does: list, then create, verify and revoke one key after another."""
    with ExternalEmulator(workspaces, per_workspace, latency_ms) as emu:
        started = time.monotonic()
        for admin in emu.admins:
            with ProjectManagerClient(emu.url, Secret(admin), max_retries=0) as client:
                for key in client.list_keys():
                    if not key.name.startswith("app-"):
                        continue
                    new = client.create_key(f"{key.name}@{NOW:%Y-%m-%dT%H:%M:%SZ}")
                    client.me(new.secret)
                    client.revoke_key(key.id)
        return time.monotonic() - started


def measure_idle_calls(workspaces: int, per_workspace: int) -> float:
    """API calls per workspace of a pass with nothing due."""
    with Emulator() as emu:
        admins = _fleet(emu, workspaces, per_workspace, days_left=300)
        spaces, clients = _workspaces(emu, admins)
        runner = Runner(_config(4, 50), clock=emu.now)
        before = len(emu.request_log())
        runner.run_pass(spaces)
        calls = len(emu.request_log()) - before
        for client in clients:
            client.close()
        return calls / workspaces


def _time_command(argv: list[str], env: dict[str, str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.monotonic()
        subprocess.run(argv, env=env, capture_output=True, check=False)
        times.append(time.monotonic() - started)
    return statistics.median(times)


def measure_startup(repeat: int) -> tuple[float, float, float]:
    """(bare interpreter, rotator --help, idle run-once) in seconds, medians."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")}
    bare = _time_command([sys.executable, "-c", "pass"], env, repeat)
    help_ = _time_command([sys.executable, "-m", "rotator", "--help"], env, repeat)
    with Emulator() as emu, tempfile.TemporaryDirectory() as folder:
        (admin,) = _fleet(emu, 1, 3, days_left=300)
        run_env = env | {
            "ROTATOR_API_URL": emu.url,
            "ROTATOR_API_KEY": admin,
            "ROTATOR_KEY_NAMES": "app-*",
            "ROTATOR_SINK_FILE_DIR": folder,
            "ROTATOR_LOG_LEVEL": "error",
        }
        idle = _time_command([sys.executable, "-m", "rotator", "run-once"], run_env, repeat)
    return bare, help_, idle


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def measure_serve_rss(python: str) -> float:
    """RSS of ``rotator serve`` after its first (idle) pass, in MB, run by ``python`` (a venv
    with the runtime dependencies alone, as in the image, gives the deployed figure)."""
    with Emulator() as emu, tempfile.TemporaryDirectory() as folder:
        (admin,) = _fleet(emu, 1, 10, days_left=300)
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")} | {
            "ROTATOR_API_URL": emu.url,
            "ROTATOR_API_KEY": admin,
            "ROTATOR_KEY_NAMES": "app-*",
            "ROTATOR_SINK_FILE_DIR": folder,
            "ROTATOR_HTTP_PORT": str(port),
            "ROTATOR_HTTP_HOST": "127.0.0.1",
            "ROTATOR_LOG_LEVEL": "error",
        }
        process = subprocess.Popen(
            [python, "-m", "rotator", "serve"], env=env, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if any(r["path"] == "/api/data/api-keys" for r in emu.request_log()):
                    break
                time.sleep(0.1)
            time.sleep(1.0)  # the pass's end, and the allocator settling
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                pass
            return _rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)


def measure_growth(passes: int) -> tuple[float, float]:
    """RSS (MB) of this process after the first idle pass and after ``passes`` of them."""
    with Emulator() as emu:
        admins = _fleet(emu, 1, 10, days_left=300)
        spaces, clients = _workspaces(emu, admins)
        runner = Runner(_config(4, 50), clock=emu.now)
        runner.run_pass(spaces)
        gc.collect()
        first = _rss_mb()
        for _ in range(passes - 1):
            runner.run_pass(spaces)
        gc.collect()
        last = _rss_mb()
        for client in clients:
            client.close()
        return first, last


K8S_NAMESPACE = "bench"


def _k8s_workspace(
    emu: Emulator, kubeconfig: Path, credentials: int
) -> tuple[Workspace, ProjectManagerClient]:
    from rotator.locks.lease import LeaseLock  # noqa: PLC0415 - the kubernetes extra
    from rotator.sinks.kubernetes import KubernetesSink  # noqa: PLC0415

    ws = emu.add_workspace("k8s")
    _id, admin = emu.add_key(ws, "rotator-admin", expires=emu.now() + timedelta(days=700))
    for c in range(credentials):
        emu.add_key(ws, f"app-{c:03d}", expires=emu.now() + timedelta(days=3))
    client = ProjectManagerClient(emu.url, Secret(admin), max_retries=0)
    sink = KubernetesSink(namespace=K8S_NAMESPACE, workspace="k8s", kubeconfig=kubeconfig)
    lock = LeaseLock(
        namespace=K8S_NAMESPACE,
        name="key-rotator-k8s",
        holder_identity="bench",
        kubeconfig=kubeconfig,
    )
    return Workspace("k8s", client, sink, lock), client


def measure_k8s_passes(credentials: int, repeat: int) -> tuple[float, float, int]:
    """Medians over ``repeat`` fresh runs of :func:`measure_k8s_pass`."""
    runs = [measure_k8s_pass(credentials) for _ in range(repeat)]
    return (
        statistics.median(r[0] for r in runs),
        statistics.median(r[1] for r in runs),
        runs[-1][2],
    )


def measure_k8s_pass(credentials: int) -> tuple[float, float, int]:
    """(seconds of the pass rotating ``credentials`` into as many Secrets, seconds of the idle
    pass after it, requests the stand-in served in that idle pass)."""
    server = ApiServer().start()
    server.add_token("bench-token", "bench")
    try:
        with Emulator() as emu, tempfile.TemporaryDirectory() as folder:
            kubeconfig = write_kubeconfig(Path(folder) / "kubeconfig", server.url, "bench-token")
            workspace, client = _k8s_workspace(emu, kubeconfig, credentials)
            runner = Runner(_config(4, credentials), clock=emu.now)
            started = time.monotonic()
            report = runner.run_pass([workspace])
            rotating = time.monotonic() - started
            if report.exit_code != 0 or report.rotations_succeeded != credentials:
                raise SystemExit(f"the kubernetes pass failed: exit {report.exit_code}")
            before = len(server.requests)
            started = time.monotonic()
            idle_report = runner.run_pass([workspace])
            idle = time.monotonic() - started
            if idle_report.exit_code != 0:
                raise SystemExit(f"the idle kubernetes pass failed: exit {idle_report.exit_code}")
            served = len(server.requests) - before
            client.close()
            workspace.sink.close()
            return rotating, idle, served
    finally:
        server.stop()


def measure_k8s_serve_rss(python: str) -> float:
    """RSS (MB) of ``rotator serve`` with the kubernetes sink and the Lease lock on the stand-in,
    after its first pass (10 managed keys, nothing due)."""
    server = ApiServer().start()
    server.add_token("bench-token", "bench")
    try:
        with Emulator() as emu, tempfile.TemporaryDirectory() as folder:
            (admin,) = _fleet(emu, 1, 10, days_left=300)
            kubeconfig = write_kubeconfig(Path(folder) / "kubeconfig", server.url, "bench-token")
            port = _free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("ROTATOR_")} | {
                "ROTATOR_API_URL": emu.url,
                "ROTATOR_API_KEY": admin,
                "ROTATOR_KEY_NAMES": "app-*",
                "ROTATOR_SINK": "kubernetes",
                "ROTATOR_SINK_KUBERNETES_NAMESPACE": K8S_NAMESPACE,
                "ROTATOR_SINK_KUBERNETES_KUBECONFIG": str(kubeconfig),
                "ROTATOR_LOCK": "lease",
                "ROTATOR_LEASE_NAMESPACE": K8S_NAMESPACE,
                "ROTATOR_HTTP_PORT": str(port),
                "ROTATOR_HTTP_HOST": "127.0.0.1",
                "ROTATOR_LOG_LEVEL": "error",
            }
            process = subprocess.Popen(
                [python, "-m", "rotator", "serve"], env=env, stderr=subprocess.DEVNULL
            )
            try:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    if any(r.verb == "update" and "/leases/" in r.path for r in server.requests):
                        break  # the Lease released: the pass is over
                    if process.poll() is not None:
                        raise SystemExit("rotator serve (kubernetes sink) exited")
                    time.sleep(0.1)
                else:
                    raise SystemExit("rotator serve (kubernetes sink) made no pass")
                time.sleep(1.0)  # the allocator settling
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                    pass
                return _rss_mb(process.pid)
            finally:
                process.terminate()
                process.wait(timeout=30)
    finally:
        server.stop()


def kubernetes_rows(python: str, where: str, repeat: int) -> list[Row]:
    credentials = 20
    rotating, idle, served = measure_k8s_passes(credentials, repeat)
    rss = measure_k8s_serve_rss(python)
    return [
        Row(
            f"pass rotating {credentials} credentials into {credentials} Secrets on the stand-in "
            "(Lease lock)",
            f"{rotating * 1000:.0f} ms (median of {repeat})",
            "",
            "",
            None,
        ),
        Row(
            f"idle pass over those {credentials} Secrets on the stand-in",
            f"{idle * 1000:.0f} ms ({served} API-server requests)",
            "",
            "",
            None,
        ),
        Row(
            f"RSS of rotator serve with the kubernetes sink and Lease lock ({where})",
            f"{rss:.1f} MB",
            "",
            "",
            None,
        ),
    ]


def _cpu_row(what: str, done: PoolPass, repeat: int) -> Row:
    user, system = done.cpu_user / done.rotated * 1000, done.cpu_system / done.rotated * 1000
    return Row(
        what,
        f"{user + system:.2f} ms (user {user:.2f} + sys {system:.2f})"
        + (f", median of {repeat}" if repeat > 1 else ""),
        "",
        f"{done.cpu_user + done.cpu_system:.2f} s of CPU in {done.seconds:.2f} s",
        None,
    )


def pool_rows(
    workspaces: int, per_ws: int, latency: int, sequential: float | None, repeat: int
) -> list[Row]:
    """The pass rotating every credential at ROTATOR_CONCURRENCY 1, 4 and 16 (medians of
    ``repeat`` runs): its time against the bound (and the loop, when measured), its API calls
    and the rotator's CPU per rotation, and the futex calls per rotation at 16."""
    n = workspaces * per_ws
    rows: list[Row] = []
    cpu_rows: list[Row] = []
    for concurrency in (1, 4, 16):
        done = measure_pools(workspaces, per_ws, latency, concurrency, repeat)
        bound = math.ceil(n / concurrency) * 3 * latency / 1000
        ratio = done.seconds / bound
        faster = sequential / done.seconds if sequential is not None else None
        rows.append(
            Row(
                f"pass at ROTATOR_CONCURRENCY {concurrency} ({done.rotated} rotated)",
                f"{done.seconds:.2f} s (bound {bound:.2f} s)",
                "within 1.25x of the bound" if concurrency == 16 else "",
                f"{ratio:.2f}x the bound"
                + (f"; {faster:.1f}x faster than the loop" if faster is not None else ""),
                (ratio <= 1.25 and (faster is None or faster >= 10)) if concurrency == 16 else None,
            )
        )
        if concurrency == 16:
            per_rotation = done.calls / n
            rows.append(
                Row(
                    "API calls per rotation (incl. each workspace's share)",
                    f"{per_rotation:.2f}",
                    "at most 4",
                    f"{per_rotation / 4:.2f}",
                    per_rotation <= 4,
                )
            )
        cpu_rows.append(
            _cpu_row(f"rotator CPU per rotation at ROTATOR_CONCURRENCY {concurrency}", done, repeat)
        )
    # The rows above log at error, as every other row here; a deployment logs at info.
    logged = measure_pools(workspaces, per_ws, latency, 16, repeat, log_level="info")
    cpu_rows.append(
        _cpu_row(
            "rotator CPU per rotation at ROTATOR_CONCURRENCY 16, logging at info (the default) "
            "to /dev/null",
            logged,
            repeat,
        )
    )
    rows += cpu_rows
    counts = measure_syscalls(workspaces, per_ws, latency, 16)
    if counts is None:
        rows.append(
            Row("futex calls per rotation at ROTATOR_CONCURRENCY 16", "not measured: no strace",
                "", "", None)
        )  # fmt: skip
    else:
        rows.append(
            Row(
                "futex calls per rotation at ROTATOR_CONCURRENCY 16 (strace -f, start included)",
                f"{counts['futex'] / n:.0f} ({counts['fsync'] / n:.2f} fsync; memory sink)",
                "",
                "",
                None,
            )
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="every measurement, at a small size")
    parser.add_argument(
        "--runtime-python",
        default=sys.executable,
        help="the interpreter of a venv with the runtime dependencies only (`pip install .`), "
        "for the RSS of serve as deployed; default: this one",
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument(
        "--kubernetes-only", action="store_true", help="only the Kubernetes sink's rows"
    )
    only.add_argument(
        "--cpu-only",
        action="store_true",
        help="only the passes at ROTATOR_CONCURRENCY 1, 4 and 16 and their CPU rows",
    )
    # The child process that measure_syscalls runs under strace: one pass, nothing printed but
    # its rotations.
    only.add_argument("--one-pass", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--workspaces", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    _log_to_devnull("error")
    if args.one_pass:
        return one_pass(args.one_pass, args.workspaces, args.concurrency, args.budget)
    where = "runtime-only venv" if args.runtime_python != sys.executable else "this venv"
    if args.kubernetes_only:
        _print(kubernetes_rows(args.runtime_python, where, 1 if args.tiny else 5), tiny=args.tiny)
        return 0
    workspaces, per_ws, latency = (2, 3, 5) if args.tiny else (50, 20, 20)
    passes, repeat = (20, 1) if args.tiny else (1000, 5)
    cpu_repeat = 1 if args.tiny else 3
    if args.cpu_only:
        _print(pool_rows(workspaces, per_ws, latency, None, cpu_repeat), tiny=args.tiny)
        return 0
    n = workspaces * per_ws
    rows: list[Row] = []

    sequential = measure_sequential(workspaces, per_ws, latency)
    rows.append(
        Row(
            f"sequential loop, {n} rotations, {latency} ms/request",
            f"{sequential:.2f} s",
            "",
            "",
            None,
        )
    )
    rows += pool_rows(workspaces, per_ws, latency, sequential, cpu_repeat)
    idle = measure_idle_calls(workspaces, per_ws)
    rows.append(
        Row(
            "API calls per idle workspace", f"{idle:.2f}", "at most 2", f"{idle / 2:.2f}", idle <= 2
        )
    )
    bare, help_, idle_run = measure_startup(repeat)
    rows.append(
        Row(
            "rotator --help",
            f"{help_ * 1000:.0f} ms (bare python {bare * 1000:.0f} ms)",
            "within 3x of bare python",
            f"{help_ / bare:.2f}x",
            help_ / bare <= 3,
        )
    )
    rows.append(
        Row(
            "idle rotator run-once",
            f"{idle_run * 1000:.0f} ms",
            "",
            f"{idle_run / bare:.2f}x bare python",
            None,
        )
    )
    serve = measure_serve_rss(args.runtime_python)
    rows.append(
        Row(
            f"RSS of rotator serve after its first pass ({where})",
            f"{serve:.1f} MB",
            "under 50 MB",
            f"{serve / 50:.2f}",
            serve < 50,
        )
    )
    first, last = measure_growth(passes)
    growth = (last - first) / first * 100
    rows.append(
        Row(
            f"RSS growth over {passes} idle passes in-process",
            f"{first:.1f} -> {last:.1f} MB ({growth:+.1f}%)",
            "under 5%",
            f"{growth / 5:.2f}",
            growth < 5,
        )
    )
    rows += kubernetes_rows(args.runtime_python, where, repeat)
    _print(rows, tiny=args.tiny)
    return 0


def _print(rows: list[Row], *, tiny: bool) -> None:
    print(
        f"Machine: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}; {datetime.now(UTC):%Y-%m-%d}{' (tiny)' if tiny else ''}\n"
    )
    print("| measurement | figure | target | ratio | met |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        met = "" if row.met is None else ("yes" if row.met else "no")
        print(f"| {row.what} | {row.figure} | {row.target} | {row.ratio} | {met} |")


if __name__ == "__main__":
    sys.exit(main())
