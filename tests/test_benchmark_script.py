"""The benchmark script keeps working: CI runs it once at a tiny size. Its figures are
reported, never asserted (they depend on the machine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark.py"


def test_the_benchmark_runs_at_a_tiny_size() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert "| measurement | figure | target | ratio | met |" in lines
    for what in ("sequential loop", "ROTATOR_CONCURRENCY 16", "per rotation", "idle workspace",
                 "--help", "rotator serve", "RSS growth", "20 Secrets on the stand-in",
                 "kubernetes sink and Lease lock"):  # fmt: skip
        assert any(what in line for line in lines), what
