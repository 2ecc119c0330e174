"""The one message a pass sends people (Apprise): a title, then per event what happened, where
(workspace and credential), what it means, and what to do.

Pure text from events: short, plain (every service renders it), and never a secret, since an
event holds none. It knows nothing of Apprise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from rotator.events import FAILURE_EVENTS, LEAK_EVENTS, ROTATION_EVENTS, Event

__all__ = ["message"]

#: Per event type: (what happened, what it means, what to do). ``{key_id}`` and
#: ``{previous_key_id}`` are filled in from the event.
_TEXTS: Final[dict[str, tuple[str, str, str]]] = {
    "rotation.delivered": (
        "rotated: new key {key_id} delivered",
        "its consumers read the new key now; the previous key {previous_key_id} is revoked "
        "when its grace period is over",
        "nothing",
    ),
    "rotation.revoked": (
        "old key {key_id} retired (revoked)",
        "its grace period is over; a consumer still using it is refused from now on",
        "nothing, unless a consumer fails: restart it so it reads the new key",
    ),
    "orphan.revoked": (
        "orphan key {key_id} revoked",
        "a key the rotator made that no sink held (a pass that stopped half-way)",
        "nothing",
    ),
    "rotation.failed": (
        "ROTATION FAILED",
        "the credential's current key still works and is kept; the next pass tries again",
        "read the log lines of this run (rotation.failed), fix the cause before the key "
        "expires (docs/runbooks.md, RotatorPassFailed)",
    ),
    "rotation.rolled_back": (
        "replacement {key_id} rolled back",
        "a later step failed, so the new key was revoked before any consumer read it",
        "see the rotation's failure",
    ),
    "rollout.stalled": (
        "consumer restart stalled",
        "the restarted workload did not become ready in time; the previous key stays valid",
        "look at the workload's rollout (kubectl rollout status)",
    ),
    "self.waiting": (
        "the rotator's own new key is waiting",
        "the rotator still reads its previous key {previous_key_id}, so both stay valid",
        "point ROTATOR_API_KEY_FILE at where the new key is delivered "
        "(docs/runbooks.md, RotatorOwnKeySwitchPending)",
    ),
    "credential.blocked": (
        "BLOCKED",
        "its record in the sink cannot be trusted, so the rotator does not touch it",
        "inspect the sink's record of this credential (rotator status shows it)",
    ),
    "key.expiring": (
        "KEY ABOUT TO EXPIRE: {key_id}",
        "when it expires, its consumers stop working",
        "find why it was not rotated (docs/runbooks.md, RotatorManagedKeyExpiringSoon) or "
        "rotate it now: rotator rotate {credential} --now",
    ),
    "workspace.locked": (
        "workspace skipped: another pass holds its lock",
        "nothing was done in it this time",
        "nothing if it is rare; if it repeats, find the other pass (a stuck pod)",
    ),
    "workspace.failed": (
        "WORKSPACE FAILED",
        "part or all of its work was left undone",
        "read the log lines of this run for the workspace",
    ),
    "pass.failed": (
        "PASS FAILED",
        "the pass ended with exit code {reason}; the lines above say what went wrong",
        "read the log lines of this run (docs/runbooks.md, RotatorPassFailed)",
    ),
    "leak.matched": (
        "LEAKED KEY {key_id} matched: rotated at once",
        "the leaked key is revoked; its consumers read the new one",
        "find where it leaked",
    ),
    "leak.unmatched": (
        "leak report matched no key",
        "nothing was changed",
        "nothing, unless the report was about a key the rotator should manage",
    ),
    "notify.test": (
        "test message",
        "check-config --notify-test reached this channel",
        "nothing",
    ),
}


def _fill(text: str, event: Event) -> str:
    return text.format(
        credential=event.credential or "NAME",
        key_id=event.key_id or "?",
        previous_key_id=event.previous_key_id or "?",
        reason=(event.reason or "?").removeprefix("exit-"),
    )


def _block(event: Event) -> str:
    what, means, do = _TEXTS.get(event.type, (event.type, "", ""))
    where = " / ".join(
        part
        for part in (
            f"workspace {event.workspace}" if event.workspace else None,
            f"credential {event.credential}" if event.credential else None,
        )
        if part
    )
    lines = [f"- {_fill(what, event)}" + (f" ({where})" if where else "")]
    if event.detail:
        lines.append(f"  {event.detail}")
    if means:
        lines.append(f"  Means: {_fill(means, event)}.")
    if do:
        lines.append(f"  To do: {_fill(do, event)}.")
    return "\n".join(lines)


def _count(events: Sequence[Event], types: frozenset[str], one: str, many: str) -> str | None:
    n = sum(1 for e in events if e.type in types)
    return None if n == 0 else f"{n} {one if n == 1 else many}"


def message(events: Sequence[Event]) -> tuple[str, str]:
    """The title and body of one message about ``events`` (at least one), failures first."""
    summary = [
        part
        for part in (
            _count(events, FAILURE_EVENTS, "problem", "problems"),
            _count(events, LEAK_EVENTS, "leak report", "leak reports"),
            _count(events, ROTATION_EVENTS, "key change", "key changes"),
        )
        if part
    ]
    title = "key-rotator: " + (", ".join(summary) or f"{len(events)} event(s)")
    ordered = sorted(
        events, key=lambda e: (e.type not in FAILURE_EVENTS, e.type in ROTATION_EVENTS)
    )
    runs = sorted({e.run_id for e in events if e.run_id})
    footer = f"Run {', '.join(runs)} (run_id in the rotator's logs)." if runs else ""
    body = "\n".join(_block(e) for e in ordered)
    return title, f"{body}\n\n{footer}".rstrip()
