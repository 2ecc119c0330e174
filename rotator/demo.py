"""``rotator demo``: the main job, for real, against the bundled emulator, in seconds.

It starts the emulator on a free loopback port with one workspace whose keys have several ages
(one expiring, one past the company's maximum age, one healthy, one excluded because its
consumer reads no sink), runs one real pass with the file sink in a temporary folder and a grace
period of 0, and prints the inventory before and after and what the pass did, with the renderer
``status`` and ``run-once`` use (rotator.render), so the demo shows what those commands show.
It goes through the same settings, wiring and engine as ``run-once``; it ignores the caller's
ROTATOR_* variables, and it leaves nothing running or on disk.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from rotator.app import build_runner, open_workspaces
from rotator.logging import configure as configure_logging
from rotator.render import MAX_TABLE_WIDTH, Screen, pass_lines, status_order, status_table
from rotator.report import KeyStatus, pass_document
from rotator.settings import load_settings

_DEMO_KEYS = (
    # (name, days until it expires, why it is there)
    ("billing-sync", 12, "expires in 12 days: inside the 30-day window"),
    ("warehouse-etl", 330, "400 days old: past the 365-day maximum age"),
    ("crm-bridge", 650, "80 days old: healthy"),
    ("powerbi-odata", 20, "an OData feed password: excluded, never touched"),
)


def run_demo(out: TextIO, *, colour: bool = False) -> int:
    """Run the demo, printing to ``out`` (in colour when asked); returns the pass's exit
    code."""
    from rotator.emulator import Emulator  # noqa: PLC0415 - only demo and emulator load it

    now = datetime.now(UTC)
    with Emulator() as emulator, tempfile.TemporaryDirectory(prefix="rotator-demo-") as folder:
        workspace_id = emulator.add_workspace("Demo Co")
        _key_id, admin_secret = emulator.add_key(
            workspace_id, "rotator-admin", expires=now + timedelta(days=700)
        )
        for name, days, _why in _DEMO_KEYS:
            emulator.add_key(workspace_id, name, expires=now + timedelta(days=days))
        sink_dir = Path(folder) / "secrets"
        settings = load_settings(
            {
                "ROTATOR_API_URL": emulator.url,
                "ROTATOR_API_KEY": admin_secret,
                "ROTATOR_WORKSPACE_NAME": "demo",
                "ROTATOR_KEY_NAMES": "*",
                "ROTATOR_EXCLUDE_KEY_NAMES": "rotator-admin,powerbi-*",
                "ROTATOR_MAX_AGE_DAYS": "365",
                "ROTATOR_GRACE_HOURS": "0",
                "ROTATOR_SINK": "file",
                "ROTATOR_SINK_FILE_DIR": str(sink_dir),
                "ROTATOR_LOG_FORMAT": "console",
                "ROTATOR_LOG_LEVEL": "error",
            }
        )
        configure_logging(log_format=settings.log_format, level=settings.log_level)
        engine = build_runner(settings)

        print(
            f"Emulator of the ProjectManager API on {emulator.url}, workspace 'Demo Co'.", file=out
        )
        print(
            "Policy: rotate keys named '*' except 'rotator-admin' and 'powerbi-*', when fewer "
            "than 30 days are left or older than 365 days; grace 0 hours.\n",
            file=out,
        )
        for name, _days, why in _DEMO_KEYS:
            print(f"  {name:<14} {why}", file=out)
        screen = Screen(now=now, width=MAX_TABLE_WIDTH, colour=colour)
        with open_workspaces(settings) as workspaces:
            _print_inventory("Before the pass", engine.inventory(workspaces).rows, screen, out)
            report = engine.run_pass(workspaces)
            print("\nWhat the pass did (what `rotator run-once` prints):", file=out)
            print(pass_lines(pass_document(report), screen), file=out)
            _print_inventory("After the pass", engine.inventory(workspaces).rows, screen, out)
        print(
            f"\nFiles the consumers read, in {sink_dir} (mode 0600, secrets not shown):", file=out
        )
        for path in sorted(sink_dir.iterdir()):
            print(f"  {path.name:<30} {oct(path.stat().st_mode & 0o777)}", file=out)
        print(
            f"\nPass {report.run_id}: exit code {report.exit_code}. The emulator is stopped and "
            "the folder removed.",
            file=out,
        )
        return report.exit_code


def _print_inventory(title: str, statuses: list[KeyStatus], screen: Screen, out: TextIO) -> None:
    """The inventory as ``rotator status`` shows it (the same renderer)."""
    print(f"\n{title} (what `rotator status` shows):", file=out)
    rows = status_order(asdict(s) for s in statuses)
    print(status_table(rows, screen), file=out)
