"""Pure planning: credential views -> the ordered actions of a pass. The only set of rules.

The pass executes exactly what :func:`plan_workspace` returns and ``rotator plan`` prints the
same list. Per credential, in this order:

1. **blocked**: the metadata cannot be trusted (or read): nothing else is planned for it.
2. **finish-delivery**: a pending key the sink holds is made current; its grace period starts
   *now*, so the key it replaced becomes previous, retired after ``now + grace``. Also
   (``targets-lagging``) when some targets of a credential delivered to several do not hold
   its key yet: they are brought up to date first, and the grace period starts again.
   **revoke-orphan** (``pending-not-delivered``): a pending key the sink does not hold was never
   delivered; it is revoked and the pending record cleared.
3. **retire**: the previous key, once its grace period is over; never while the current key is
   missing (the previous may then be the only key that still works). ``rotate --now`` retires
   it at once.
4. **revoke-orphan**: rotator-made keys no sink holds, older than the orphan minimum age.
5. **rotate**: the current key is due (``expiring``, ``max-age``), ``missing``, or ``forced``;
   deferred while a previous key is still in its grace period, except when missing or forced.

Each step sees what the steps before it change (after finish-delivery the new key is current
and not due, so nothing rotates). Rotations come last, most urgent first, so a budget or a
breaker defers the least urgent ones.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from rotator.models import ApiKey, Decision, Reason, utc
from rotator.policy import RotationPolicy, decide, missing, urgency
from rotator.reconcile import CredentialView


class Action(StrEnum):
    """What a pass does to a credential (``plan --json`` ``action``)."""

    ROTATE = "rotate"
    RETIRE = "retire"
    REVOKE_ORPHAN = "revoke-orphan"
    FINISH_DELIVERY = "finish-delivery"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class PlanConfig:
    policy: RotationPolicy
    grace: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class PlannedAction:
    """One action of a pass; ``key_id`` is the key it acts on (the current key for rotate)."""

    workspace: str
    credential: str
    key_id: str | None
    action: Action
    reason: str
    days_left: float | None
    #: Why a planned rotation waits for a later pass (``budget``), or None: it runs now.
    deferred: str | None = None
    #: The targets a ``targets-lagging`` finish-delivery brings up to date.
    targets: tuple[str, ...] = ()

    @property
    def creates(self) -> bool:
        """Whether this action creates a key in this pass (a deferred rotation does not)."""
        return self.action is Action.ROTATE and self.deferred is None

    @property
    def urgency(self) -> tuple[int, float]:
        """Sort key of a rotation: ``missing`` and ``forced`` first, then fewest days left."""
        return urgency(self.reason, self.days_left or 0.0)


@dataclass(frozen=True)
class _Model:
    """What the plan believes about a credential after the actions planned so far."""

    current: ApiKey | None
    previous: ApiKey | None
    retire_after: datetime | None
    decision: Decision | None


def plan_credential(
    workspace: str,
    view: CredentialView,
    now: datetime,
    config: PlanConfig,
    *,
    forced: bool = False,
) -> list[PlannedAction]:
    """The actions of one credential, in the order they are executed."""
    credential = view.credential

    def act(key: ApiKey | None, action: Action, reason: str, days: float | None = None) -> None:
        out.append(
            PlannedAction(workspace, credential, key.id if key else None, action, reason, days)
        )

    out: list[PlannedAction] = []
    if view.blocked is not None:
        out.append(PlannedAction(workspace, credential, None, Action.BLOCKED, view.blocked, None))
        return out
    record = view.record
    model = _Model(
        current=view.current,
        previous=view.previous,
        retire_after=record.retire_previous_after if record else None,
        decision=view.decision,
    )
    settled_by_hash = record is not None and record.pending_key_id is not None
    if record is not None and view.lagging and (view.pending_delivered or not settled_by_hash):
        # Some targets do not hold the key yet: copy it to them, then every target's record
        # names it current and its grace starts now (their consumers only just got it).
        delivered = view.pending if view.pending_delivered else view.current
        act_on = record.pending_key_id if view.pending_delivered else record.key_id
        out.append(
            PlannedAction(
                workspace,
                credential,
                act_on,
                Action.FINISH_DELIVERY,
                "targets-lagging",
                None,
                targets=view.lagging,
            )
        )
        model = _Model(
            current=delivered,
            previous=view.current if view.pending_delivered else view.previous,
            retire_after=utc(now) + config.grace,
            decision=decide(delivered, now, config.policy) if delivered else missing(),
        )
    elif settled_by_hash and record is not None and record.pending_key_id is not None:
        if view.pending_delivered:
            out.append(
                PlannedAction(
                    workspace,
                    credential,
                    record.pending_key_id,
                    Action.FINISH_DELIVERY,
                    "pending-delivered",
                    None,
                )
            )
            new = view.pending
            model = _Model(
                current=new,
                previous=view.current,
                retire_after=utc(now) + config.grace,
                decision=decide(new, now, config.policy) if new else missing(),
            )
        else:
            out.append(
                PlannedAction(
                    workspace,
                    credential,
                    record.pending_key_id,
                    Action.REVOKE_ORPHAN,
                    "pending-not-delivered",
                    None,
                )
            )

    retiring = False
    if model.previous is not None and model.current is not None:
        over = model.retire_after is None or utc(model.retire_after) <= utc(now)
        if over or forced:
            act(model.previous, Action.RETIRE, "forced" if forced and not over else "grace-over")
            retiring = True

    for orphan in view.orphans:
        act(orphan, Action.REVOKE_ORPHAN, "orphan")

    decision = model.decision
    if forced:
        decision = (
            decide(model.current, now, config.policy, forced=True) if model.current else missing()
        )
    if decision is not None and decision.due:
        in_grace = model.previous is not None and not retiring
        if not in_grace or decision.reason in (Reason.MISSING, Reason.FORCED):
            # A missing key is named by the id the sink last held, for people to look up.
            held = model.current.id if model.current else (record.key_id if record else None)
            out.append(
                PlannedAction(
                    workspace,
                    credential,
                    held,
                    Action.ROTATE,
                    str(decision.reason),
                    round(decision.days_left, 3),
                )
            )
    return out


def plan_workspace(
    workspace: str,
    views: Iterable[CredentialView],
    now: datetime,
    config: PlanConfig,
    *,
    forced: Collection[str] | None = None,
) -> list[PlannedAction]:
    """Every action of one workspace's pass: each credential's settling actions first (by
    name), then its rotations, most urgent first.

    ``forced`` (``rotate --now``) limits the pass to the named credentials and forces them.
    """
    settle: list[PlannedAction] = []
    rotations: list[PlannedAction] = []
    for view in sorted(views, key=lambda v: v.credential):
        if forced is not None and view.credential not in forced:
            continue
        actions = plan_credential(workspace, view, now, config, forced=forced is not None)
        for action in actions:
            (rotations if action.action is Action.ROTATE else settle).append(action)
    rotations.sort(key=lambda a: (a.urgency, a.credential))
    return settle + rotations


def allocate(actions: Iterable[PlannedAction], budget: int) -> list[PlannedAction]:
    """The actions of a whole pass (every workspace) with the rotation budget handed out.

    The budget (ROTATOR_MAX_ROTATIONS_PER_PASS) goes to the most urgent rotations first over
    *all* workspaces: ``missing`` and ``forced``, then fewest days left, whichever workspace
    they are in and whichever answered first; ties by workspace, then credential, so the same
    inputs always give the same answer. The rotator's own key competes like any credential
    (it is still *executed* last in its workspace). A rotation left out is kept in the list
    with ``deferred="budget"``, so ``plan`` and the log can name it. Other actions (finish a
    delivery, retire, revoke an orphan) never count against the budget.
    """
    listed = list(actions)
    rotations = sorted(
        (i for i, a in enumerate(listed) if a.action is Action.ROTATE and a.deferred is None),
        key=lambda i: (listed[i].urgency, listed[i].workspace, listed[i].credential),
    )
    for index in rotations[max(budget, 0) :]:
        listed[index] = replace(listed[index], deferred="budget")
    return listed


__all__ = [
    "Action",
    "PlanConfig",
    "PlannedAction",
    "allocate",
    "plan_credential",
    "plan_workspace",
]
