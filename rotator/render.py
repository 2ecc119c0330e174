"""What people read: tables, the lines of a pass, and the ``-o`` formats (json, yaml).

Only the CLI and the demo import this module, and only when they print (never for ``--help``,
never in ``serve``); yaml is imported only for ``-o yaml``. It receives plain rows (dicts of a
command's JSON fields, times as ``datetime``) and returns text: it reads no settings, no
environment and no terminal; the caller says how wide and whether in colour.

Tables are kubectl-like: upper-case headers, two spaces between columns, numbers aligned right.
``table`` fits the width it is given (at most 120 columns): columns that may be cut are cut
with ``…``, then optional columns are left out in a fixed order; ``wide`` shows every column at
its full width. Times are UTC. Colour (ANSI) only marks what needs a person: red for what is due
now or broken, yellow for what falls due within a week or is not in the sink.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Final

#: What ``-o`` accepts for ``plan``, ``status`` and ``check-config``.
FORMATS: Final = ("table", "wide", "json", "yaml")
#: The widest a default table is, whatever the terminal (contract: at most 120 columns).
MAX_TABLE_WIDTH: Final = 120
_GAP = "  "
_ELLIPSIS = "…"
_RED, _YELLOW, _BOLD, _RESET = "\x1b[31m", "\x1b[33m", "\x1b[1m", "\x1b[0m"
_SOON = timedelta(days=7)

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Screen:
    """What the caller knows of the reader: the time now, the width a default table may take
    (None: unbounded), whether in colour, and whether every column is wanted (``-o wide``)."""

    now: datetime
    width: int | None = MAX_TABLE_WIDTH
    colour: bool = False
    wide: bool = False


# ------------------------------------------------------------------------ -o json and yaml


def plain(value: object) -> object:
    """``value`` as JSON types: times as ISO 8601 UTC with ``Z``, enums as their value."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def dump(value: object, output: str) -> str:
    """``value`` as ``json`` (indented) or ``yaml``; both load back to the same data."""
    if output == "yaml":
        import yaml  # noqa: PLC0415 - only -o yaml pays for it

        text: str = yaml.safe_dump(
            plain(value), sort_keys=False, default_flow_style=False, allow_unicode=True
        )
        return text.rstrip("\n")
    return json.dumps(plain(value), indent=2)


# ------------------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Column:
    """One column: its header, how a row shows in it, and how it gives way to a narrow screen."""

    header: str
    cell: Callable[[Row], str]
    right: bool = False
    #: May be cut down to this many characters (0: never cut).
    shrink_to: int = 0
    #: Left out, lowest first, when the table still does not fit (0: always shown).
    drop_rank: int = 0
    colour: Callable[[Row, str], str | None] = lambda _row, _text: None


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + _ELLIPSIS


def _fit(columns: list[Column], cells: list[list[str]], width: int | None) -> list[int]:
    """Each column's width, or 0 for a column left out, so the table fits ``width``."""
    widths = [max([len(c.header), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    if width is None:
        return widths

    def total() -> int:
        shown = [w for w in widths if w]
        return sum(shown) + len(_GAP) * (len(shown) - 1)

    # Leave out optional columns first, lowest rank first, while the whole does not fit: a
    # column less reads better than names cut short.
    for _rank, i in sorted((c.drop_rank, i) for i, c in enumerate(columns) if c.drop_rank):
        if total() <= width:
            break
        widths[i] = 0
    # Then cut the columns that may be cut, the widest first, one character at a time.
    while total() > width:
        cuttable = [
            i for i, c in enumerate(columns) if c.shrink_to and widths[i] > max(c.shrink_to, 1)
        ]
        if not cuttable:
            break
        widest = max(cuttable, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def table(
    rows: Sequence[Row], columns: list[Column], *, width: int | None, colour: bool = False
) -> str:
    """``rows`` as a table fitting ``width`` (None: every column at full width)."""
    cells = [[c.cell(row) for c in columns] for row in rows]
    widths = _fit(columns, cells, width)
    shown = [i for i, w in enumerate(widths) if w]

    def line(texts: list[str], row: Row | None) -> str:
        parts = []
        for i in shown:
            text = _cut(texts[i], widths[i])
            padded = text.rjust(widths[i]) if columns[i].right else text.ljust(widths[i])
            code = columns[i].colour(row, texts[i]) if (colour and row is not None) else None
            parts.append(f"{code}{padded}{_RESET}" if code else padded)
        return _GAP.join(parts).rstrip()

    header = line([c.header for c in columns], None)
    if colour:
        header = f"{_BOLD}{header}{_RESET}"
    return "\n".join([header, *(line(texts, row) for texts, row in zip(cells, rows, strict=True))])


# ------------------------------------------------------------------------------ the cells


def when(at: datetime | None, now: datetime) -> str:
    """When something falls due, for people: ``now``, ``in 10m``, ``in 5h``, ``in 3d 4h``, else
    the UTC date and time; ``-`` for never. Rounded down, so a promise is never early."""
    if at is None:
        return "-"
    left = at - now
    if left <= timedelta(0):
        return "now"
    if left < timedelta(hours=1):
        return f"in {max(1, -(-left.seconds // 60))}m"
    if left < timedelta(hours=48):
        return f"in {left // timedelta(hours=1)}h"
    if left < timedelta(days=14):
        hours = left.seconds // 3600
        return f"in {left.days}d {hours}h" if hours else f"in {left.days}d"
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _date(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d")


def _time(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(value: float | None, places: int = 1) -> str:
    return "-" if value is None else f"{value:.{places}f}"


def _short(key_id: str | None) -> str:
    return "-" if not key_id else key_id[:8]


def _yes_no(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


def _in_sink(row: Row) -> str:
    if not row.get("managed", True):
        return "-"  # no sink holds what the rotator does not manage
    return _yes_no(row.get("in_sink"))


def _due_colour(now: datetime) -> Callable[[Row, str], str | None]:
    def colour(row: Row, _text: str) -> str | None:
        at = row.get("next_action_at")
        if row.get("next_action") == "blocked" or row.get("role") == "missing":
            return _RED
        if at is None or row.get("next_action") == "none":
            return None
        if at <= now:
            return _RED
        return _YELLOW if at - now <= _SOON else None

    return colour


def _not_held(row: Row, text: str) -> str | None:
    return _YELLOW if text == "no" and row.get("role") == "current" else None


# ------------------------------------------------------------------------------- status


def status_order(rows: Iterable[Row]) -> list[Row]:
    """Most urgent first: by when the next action falls due (never: last), then fewest days
    left; then by workspace, credential and name, so equal rows keep one order."""
    never = datetime.max.replace(tzinfo=UTC)

    def key(row: Row) -> tuple[bool, datetime, float, str, str, str]:
        at = row.get("next_action_at")
        left = row.get("days_left")
        return (
            at is None,
            never if at is None else at,
            float("-inf") if left is None else left,
            str(row.get("workspace")),
            str(row.get("credential")),
            str(row.get("name")),
        )

    return sorted(rows, key=key)


def status_table(rows: Sequence[Row], screen: Screen) -> str:
    """``rotator status``: one line per key, most urgent first (the caller sorts)."""
    if not rows:
        return "(no keys)"
    now, wide = screen.now, screen.wide
    due = _due_colour(now)
    # The workspace column may go only when it says nothing: every row is of one workspace.
    single = len({r["workspace"] for r in rows}) == 1
    columns = [
        Column("WORKSPACE", lambda r: str(r["workspace"]), shrink_to=8, drop_rank=2 * single),
        Column("CREDENTIAL", lambda r: str(r["credential"]), shrink_to=12),
        Column("ROLE", lambda r: str(r["role"]), colour=due),
    ]
    if wide:
        columns += [
            Column("NAME", lambda r: str(r["name"])),
            Column("KEY ID", lambda r: str(r["key_id"] or "-")),
            Column("EXPIRES", lambda r: _time(r["expires"])),
            Column("DAYS LEFT", lambda r: _number(r["days_left"], 3), right=True),
            Column("AGE", lambda r: _number(r["age_days"], 3), right=True),
            Column("DUE", lambda r: _yes_no(r["due"])),
            Column("REASON", lambda r: str(r["reason"])),
            Column("NEXT", lambda r: str(r["next_action"]), colour=due),
            Column("AT", lambda r: _time(r["next_action_at"]), colour=due),
            Column("IN SINK", _in_sink, colour=_not_held),
            Column("TARGET", lambda r: str(r.get("target") or "-")),
            Column("LAGGING", lambda r: ", ".join(r.get("lagging") or ()) or "-"),
        ]
    else:
        columns += [
            Column("KEY", lambda r: _short(r["key_id"]), drop_rank=3),
            Column("EXPIRES", lambda r: _date(r["expires"]), drop_rank=1),
            Column("DAYS LEFT", lambda r: _number(r["days_left"]), right=True),
            Column("NEXT", lambda r: str(r["next_action"]), colour=due),
            Column("WHEN", lambda r: when(r["next_action_at"], now), colour=due),
            Column("IN SINK", _in_sink, colour=_not_held),
        ]
    return table(rows, columns, width=None if wide else screen.width, colour=screen.colour)


# --------------------------------------------------------------------------------- plan


def plan_table(rows: Sequence[Row], upcoming: Sequence[Row], screen: Screen, limit: int = 5) -> str:
    """``rotator plan``: what a pass would do now, then the next few actions not due yet."""
    now, wide, colour = screen.now, screen.wide, screen.colour
    single = int(len({r["workspace"] for r in [*rows, *upcoming]}) <= 1)
    columns = [
        Column("WORKSPACE", lambda r: str(r["workspace"]), shrink_to=8, drop_rank=single),
        Column("CREDENTIAL", lambda r: str(r["credential"]), shrink_to=12),
        Column("ACTION", lambda r: str(r["action"])),
        Column("REASON", lambda r: str(r["reason"]), shrink_to=12),
        Column(
            "KEY ID" if wide else "KEY",
            lambda r: str(r["key_id"] or "-") if wide else _short(r["key_id"]),
        ),
        Column("DAYS LEFT", lambda r: _number(r["days_left"]), right=True),
        Column("DEFERRED", lambda r: str(r["deferred"] or ""), colour=lambda _r, _t: _YELLOW),
    ]
    size = None if wide else screen.width
    # What waits for its time (a grace period) is shown below, with when; what the budget left
    # out, and a revoke held back beside an entry that cannot be identified, are shown here, as
    # what this pass would have done.
    shown = (None, "budget", "rotation-deferred", "entry-unidentified")
    rows = [r for r in rows if r.get("deferred") in shown]
    parts = [table(rows, columns, width=size, colour=colour) if rows else "(nothing to do now)"]
    later = [
        r
        for r in status_order(upcoming)
        if r.get("next_action") not in (None, "none") and r["next_action_at"] > now
    ][:limit]
    if later:
        due = _due_colour(now)
        parts.append("\nNext, not due yet:")
        parts.append(
            table(
                later,
                [
                    Column(
                        "WORKSPACE", lambda r: str(r["workspace"]), shrink_to=8, drop_rank=single
                    ),
                    Column("CREDENTIAL", lambda r: str(r["credential"]), shrink_to=12),
                    Column("ACTION", lambda r: str(r["next_action"])),
                    Column("KEY", lambda r: _short(r["key_id"])),
                    Column("WHEN", lambda r: when(r["next_action_at"], now), colour=due),
                    Column("AT (UTC)", lambda r: _time(r["next_action_at"]), drop_rank=2),
                ],
                width=size,
                colour=colour,
            )
        )
    return "\n".join(parts)


# ------------------------------------------------------------------------------ history


def history_table(rows: Sequence[Row], screen: Screen) -> str:
    """``rotator history``: one line per rotation, the newest first (the caller sorts)."""
    if not rows:
        return "(no rotations recorded)"
    wide = screen.wide
    single = int(len({r["workspace"] for r in rows}) <= 1)

    def failed(row: Row, _text: str) -> str | None:
        return _RED if row.get("outcome") in ("failed", "rolled-back") else None

    key = (lambda v: str(v or "-")) if wide else _short
    when_ = _time if wide else (lambda v: "-" if v is None else v.strftime("%Y-%m-%d %H:%M"))
    columns = [
        Column("WORKSPACE", lambda r: str(r["workspace"]), shrink_to=8, drop_rank=single),
        Column("CREDENTIAL", lambda r: str(r["credential"]), shrink_to=12),
        Column("OUTCOME", lambda r: str(r["outcome"]), colour=failed),
        Column("TRIGGER", lambda r: str(r["trigger"])),
        Column("REASON", lambda r: str(r["reason"] or "-"), drop_rank=4),
        Column("CREATED", lambda r: when_(r["created_at"])),
        Column("DELIVERED", lambda r: when_(r["delivered_at"]), drop_rank=3),
        Column("RETIRED", lambda r: when_(r["retired_at"]), drop_rank=2),
        Column("OLD KEY", lambda r: key(r["old_key_id"]), drop_rank=5),
        Column("NEW KEY", lambda r: key(r["new_key_id"])),
    ]
    if wide:
        columns.append(
            Column("ERROR", lambda r: f"{r['step']}: {r['error']}" if r.get("step") else "-")
        )
    return table(rows, columns, width=None if wide else screen.width, colour=screen.colour)


# ------------------------------------------------------------------- check-config --online


def checks_table(workspaces: Sequence[Row], colour: bool) -> str:
    """``check-config --online``: each workspace's checks, then a verdict line."""
    marks = {"ok": ("ok", None), "warning": ("WARN", _YELLOW), "error": ("FAIL", _RED)}
    lines = []
    for ws in workspaces:
        lines.append(f"  workspace {ws['workspace']}:")
        for check in ws["checks"]:
            mark, code = marks.get(check["status"], (check["status"], None))
            text = f"    {mark:<4}  {check['check']:<10}  {check['detail']}"
            lines.append(f"{code}{text}{_RESET}" if colour and code else text)
    bad = [ws["workspace"] for ws in workspaces if not ws["usable"]]
    lines.append(
        f"Not usable: {', '.join(bad)}." if bad else f"Every workspace usable ({len(workspaces)})."
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------- what a pass did


_VERBS: Final = {
    ("rotate", "done"): "rotated",
    ("retire", "done"): "retired",
    ("revoke-orphan", "done"): "revoked orphan",
    ("finish-delivery", "done"): "finished delivery",
    ("rotate", "unknown"): "delivery unknown",
    ("rotate", "skipped"): "not rotated",
}


def _action_line(action: Row, now: datetime) -> str:
    """One action of a pass, as a sentence a person reads at a glance."""
    where = (
        f"{action['workspace']}/{action['credential']}"
        if action["credential"]
        else str(action["workspace"])
    )
    verb = _VERBS.get((str(action["action"]), str(action["result"])))
    if verb is None:
        verb = f"{action['result']} ({action['action']})"
    text = f"{where}: {verb}"
    if action["action"] == "rotate" and action["result"] == "done":
        text += f", new key {_short(action['key_id'])}"
        previous, retire_at = action.get("previous_key_id"), action.get("retire_previous_at")
        old = f"; old key {_short(previous)} retired"
        if previous and isinstance(retire_at, datetime) and retire_at > now:
            text += f"{old} {when(retire_at, now)} ({_time(retire_at)})"
        elif previous:
            text += f"{old} by the next pass"
    elif action["key_id"]:
        text += f" key {_short(action['key_id'])}"
    if action["detail"]:
        text += f": {action['detail']}"
    return text


def pass_lines(document: Mapping[str, Any], screen: Screen) -> str:
    """``run-once`` and ``rotate``: one line per action taken, then one line of counts."""
    lines = []
    colour = screen.colour
    for action in document["actions"]:
        text = _action_line(action, screen.now)
        if colour and action["result"] in ("failed", "blocked", "unknown"):
            text = f"{_RED}{text}{_RESET}"
        elif colour and action["result"] == "skipped":
            text = f"{_YELLOW}{text}{_RESET}"
        lines.append(text)
    if document.get("dry_run"):
        lines.append("dry run (ROTATOR_DRY_RUN=true): nothing was changed; see `rotator plan`")
    c = document["counts"]
    lines.append(
        f"{c['rotated']} rotated, {c['retired']} retired, {c['orphans_revoked']} orphans revoked, "
        f"{c['failed']} failed, {c['blocked']} blocked, {c['skipped']} skipped "
        f"(exit {document['exit_code']}, {document['duration_s']:.2f} s)"
    )
    return "\n".join(lines)


__all__ = [
    "FORMATS",
    "MAX_TABLE_WIDTH",
    "Column",
    "Screen",
    "checks_table",
    "dump",
    "history_table",
    "pass_lines",
    "plain",
    "plan_table",
    "status_order",
    "status_table",
    "table",
    "when",
]
