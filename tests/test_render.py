"""rotator.render alone: pure text from plain rows (no server, no terminal)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from rotator.render import Column, Screen, dump, plan_table, table, when

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delta", "shown"),
    [
        (None, "-"),
        (timedelta(seconds=-5), "now"),
        (timedelta(0), "now"),
        (timedelta(seconds=20), "in 1m"),
        (timedelta(minutes=9, seconds=1), "in 10m"),
        (timedelta(hours=23, minutes=59), "in 23h"),
        (timedelta(hours=47), "in 47h"),
        (timedelta(days=3, hours=5), "in 3d 5h"),
        (timedelta(days=3, minutes=5), "in 3d"),
        (timedelta(days=20), "2026-12-21 03:00"),
    ],
)
def test_when_reads_at_a_glance(delta: timedelta | None, shown: str) -> None:
    assert when(None if delta is None else NOW + delta, NOW) == shown


def test_json_and_yaml_load_back_the_same_with_times_as_utc_text() -> None:
    value = [{"at": NOW, "n": 1.5, "none": None, "ok": True, "name": "2026-12-01"}]
    as_json = json.loads(dump(value, "json"))
    assert as_json == [{"at": "2026-12-01T03:00:00Z", "n": 1.5, "none": None, "ok": True,
                        "name": "2026-12-01"}]  # fmt: skip
    assert yaml.safe_load(dump(value, "yaml")) == as_json


def test_a_table_gives_way_by_dropping_then_cutting() -> None:
    rows = [{"a": "x" * 30, "b": "y" * 10, "c": "z" * 10}]
    columns = [
        Column("A", lambda r: r["a"], shrink_to=8),
        Column("B", lambda r: r["b"], drop_rank=1),
        Column("C", lambda r: r["c"], right=True),
    ]
    assert (
        table(rows, columns, width=None).splitlines()[1]
        == "x" * 30 + "  " + "y" * 10 + "  " + "z" * 10
    )
    # 54 wide; at 44 the optional column goes and the rest fits whole.
    fitted = table(rows, columns, width=44).splitlines()
    assert fitted[1] == "x" * 30 + "  " + "z" * 10
    # Narrower still, the cuttable column is cut, with an ellipsis.
    cut = table(rows, columns, width=25).splitlines()
    assert cut[1] == "x" * 12 + "…" + "  " + "z" * 10
    assert all(len(line) <= 25 for line in cut)


def test_the_plan_table_shows_what_the_budget_or_an_unidentified_entry_holds_back() -> None:
    def row(credential: str, action: str, deferred: str | None) -> dict[str, object]:
        return {
            "workspace": "acme", "credential": credential, "action": action, "reason": "r",
            "key_id": "k", "days_left": 1.0, "deferred": deferred,
        }  # fmt: skip

    rows = [
        row("app-now", "rotate", None),
        row("app-budget", "rotate", "budget"),
        row("app-held", "retire", "entry-unidentified"),
        row("app-grace", "retire", "grace"),
    ]
    shown = plan_table(rows, [], Screen(now=NOW, width=None))
    assert all(name in shown for name in ("app-now", "app-budget", "app-held"))
    assert "entry-unidentified" in shown
    assert "app-grace" not in shown  # what waits for its time is listed below, with when
