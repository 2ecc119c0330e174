"""What a pass did: per-workspace and per-pass reports, the key inventory, the exit-code rule.

Exit codes (README): 0 everything due was done; 1 something was left undone (a credential
failed, a lock was held or lost, a breaker tripped, a consumer's restart stalled, the pass was
stopped early); 3 no workspace could be used at all and nothing was changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rotator.models import Role
from rotator.rotation import CredentialResult, Outcome, StepRecord


@dataclass(frozen=True)
class KeyStatus:
    """One listed key, or one remembered credential with no key at all, as ``status`` shows it.

    A credential whose keys have all vanished shows as one row with ``key_id`` and ``expires``
    of the key its sink last held (``role`` ``current``, ``reason`` ``missing``), so that a
    managed credential with no working key is never invisible.
    """

    workspace: str
    name: str
    credential: str
    key_id: str | None
    expires: datetime | None
    days_left: float | None
    age_days: float | None
    managed: bool
    due: bool
    reason: str
    role: Role
    #: Whether the sink holds this key's secret now; None when the sink could not be read.
    in_sink: bool | None = None
    #: What a pass will do to this key next (``rotate``, ``retire``, ``revoke-orphan``,
    #: ``finish-delivery``, ``blocked`` or ``none``; rotator.upcoming) and from when (UTC; in
    #: the past when it is due now; None for ``none``).
    next_action: str = "none"
    next_action_at: datetime | None = None


@dataclass
class WorkspaceReport:
    name: str
    usable: bool = True
    locked: bool = False
    lock_lost: bool = False
    breaker_tripped: bool = False
    #: The lock or the sink could not be used (exit 1: something was left undone).
    failed: bool = False
    error: str | None = None
    results: dict[str, CredentialResult] = field(default_factory=dict)
    inventory: list[KeyStatus] = field(default_factory=list)
    #: Credentials a forced rotation named that this workspace does not manage.
    not_found: list[str] = field(default_factory=list)
    #: Patterns of the workspace's key_names that selected no listed key.
    unmatched_patterns: tuple[str, ...] = ()

    @property
    def outcomes(self) -> dict[str, Outcome]:
        return {c: r.outcome for c, r in self.results.items()}

    @property
    def own_key_waiting(self) -> bool:
        """The rotator's own previous key is kept: the process does not read its new key yet."""
        return any(r.own_key_waiting for r in self.results.values())

    @property
    def rolled_back(self) -> int:
        return sum(r.rolled_back for r in self.results.values())

    @property
    def succeeded(self) -> bool:
        """The pass left nothing undone in this workspace."""
        return (
            self.usable
            and not self.locked
            and not self.lock_lost
            and not self.breaker_tripped
            and not self.failed
            and Outcome.FAILED not in self.outcomes.values()
        )


@dataclass
class PassReport:
    """The result of one pass over every workspace."""

    run_id: str
    started_at: datetime
    duration_s: float = 0.0
    workspaces: list[WorkspaceReport] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    stopped_early: bool = False
    budget_exhausted: bool = False

    @property
    def rotations_succeeded(self) -> int:
        return self.count(Outcome.ROTATED)

    @property
    def rotations_failed(self) -> int:
        return sum(
            1
            for w in self.workspaces
            for r in w.results.values()
            if r.attempted_rotation and r.outcome is Outcome.FAILED
        )

    def count(self, outcome: Outcome) -> int:
        return sum(list(w.outcomes.values()).count(outcome) for w in self.workspaces)

    @property
    def exit_code(self) -> int:
        """0 all done, 1 something left undone, 3 no workspace could be used (README)."""
        if self.workspaces and not any(w.usable for w in self.workspaces):
            return 3
        if self.stopped_early or not all(w.succeeded for w in self.workspaces):
            return 1
        return 0
