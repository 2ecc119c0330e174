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
   With a grace period of 0, a **retire** (``grace-0``) of the key it replaces follows it.

What waits is planned too, with ``deferred`` saying why (:class:`Deferral`): a retire whose
grace period is not over (and from when), a retire held back because the current key is gone,
a rotation held back by a previous key in its grace period, and what the budget leaves out
(:func:`allocate`). ``rotator plan --json`` so answers "why was this key not revoked yet?";
the pass executes only what is not deferred.

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


class Deferral(StrEnum):
    """Why a planned action waits for a later pass (``plan --json`` ``deferred``)."""

    #: ROTATOR_MAX_ROTATIONS_PER_PASS went to more urgent rotations.
    BUDGET = "budget"
    #: The previous key is still in its grace period: no rotation before it is retired.
    PREVIOUS_IN_GRACE = "previous-in-grace"
    #: The previous key's grace period is not over yet.
    GRACE = "grace"
    #: The current key is gone: the previous may be the only key that still works.
    CURRENT_MISSING = "current-missing"
    #: Its rotation is left out this pass, so the key it would follow stays.
    ROTATION_DEFERRED = "rotation-deferred"
    #: Another entry of the workspaces file could not be identified this pass (its ``me``,
    #: credential or sink failed): it may be this workspace listed again, its sink holding
    #: this key.
    ENTRY_UNIDENTIFIED = "entry-unidentified"


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
    #: Why the action waits for a later pass (a :class:`Deferral`), or None: it runs now.
    deferred: str | None = None
    #: The targets a ``targets-lagging`` finish-delivery brings up to date.
    targets: tuple[str, ...] = ()
    #: When a deferred action falls due (a retire waiting for its grace period), or None.
    not_before: datetime | None = None
    #: A deferred rotation that cannot wait (its key is gone, it was asked for now, or its key
    #: expires before the next scheduled pass): the pass leaving it out fails.
    overdue: bool = False

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


def _settle(
    workspace: str, view: CredentialView, now: datetime, config: PlanConfig
) -> tuple[list[PlannedAction], _Model | None]:
    """What settles an earlier delivery of the credential, and what the plan believes after it
    (None: what the view shows)."""
    credential, record = view.credential, view.record
    out: list[PlannedAction] = []
    if record is None:
        return out, None
    pending = record.pending_key_id
    if view.lagging and (view.pending_delivered or pending is None):
        # Some targets do not hold the key yet: copy it to them, then every target's record
        # names it current and its grace starts now (their consumers only just got it).
        delivered = view.pending if view.pending_delivered else view.current
        out.append(
            PlannedAction(
                workspace, credential, pending if view.pending_delivered else record.key_id,
                Action.FINISH_DELIVERY, "targets-lagging", None, targets=view.lagging,
            )
        )  # fmt: skip
        previous = view.current if view.pending_delivered else view.previous
    elif pending is not None and view.pending_delivered:
        out.append(
            PlannedAction(
                workspace, credential, pending, Action.FINISH_DELIVERY, "pending-delivered", None
            )
        )
        delivered, previous = view.pending, view.current
    elif pending is not None:
        out.append(
            PlannedAction(
                workspace, credential, pending, Action.REVOKE_ORPHAN, "pending-not-delivered", None
            )
        )
        if not view.lagging or record.key_id is None:
            return out, None
        # Targets that lag behind the key they all held before get it once the pending one is
        # gone (a person wiped one, or a kill came between two targets' first writes).
        out.append(
            PlannedAction(
                workspace, credential, record.key_id, Action.FINISH_DELIVERY, "targets-lagging",
                None, targets=view.lagging,
            )
        )  # fmt: skip
        delivered, previous = view.current, view.previous
    else:
        return out, None
    return out, _Model(
        current=delivered,
        previous=previous,
        retire_after=utc(now) + config.grace,
        decision=decide(delivered, now, config.policy) if delivered else missing(),
    )


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

    def act(
        key: ApiKey | None,
        action: Action,
        reason: str,
        *,
        deferred: Deferral | None = None,
        not_before: datetime | None = None,
    ) -> None:
        out.append(
            PlannedAction(
                workspace, credential, key.id if key else None, action, reason, None,
                deferred=deferred, not_before=not_before,
            )
        )  # fmt: skip

    if view.blocked is not None:
        return [PlannedAction(workspace, credential, None, Action.BLOCKED, view.blocked, None)]
    record = view.record
    model = _Model(
        current=view.current,
        previous=view.previous,
        retire_after=record.retire_previous_after if record else None,
        decision=view.decision,
    )
    out, settled = _settle(workspace, view, now, config)
    model = settled or model
    retiring = False
    if model.previous is not None:
        over = model.retire_after is None or utc(model.retire_after) <= utc(now)
        if model.current is None:
            # The previous key may be the only one that still works: it stays.
            act(model.previous, Action.RETIRE, "grace-over", deferred=Deferral.CURRENT_MISSING)
        elif over or forced:
            act(model.previous, Action.RETIRE, "forced" if forced and not over else "grace-over")
            retiring = True
        else:
            act(
                model.previous, Action.RETIRE, "grace-over",
                deferred=Deferral.GRACE, not_before=model.retire_after,
            )  # fmt: skip

    for orphan in view.orphans:
        act(orphan, Action.REVOKE_ORPHAN, "orphan")

    decision = model.decision
    if forced:
        decision = (
            decide(model.current, now, config.policy, forced=True) if model.current else missing()
        )
    if decision is not None and decision.due:
        in_grace = model.previous is not None and not retiring and model.current is not None
        # A missing key is named by the id the sink last held, for people to look up.
        held = model.current.id if model.current else (record.key_id if record else None)
        waits = in_grace and decision.reason not in (Reason.MISSING, Reason.FORCED)
        out.append(
            PlannedAction(
                workspace, credential, held, Action.ROTATE, str(decision.reason),
                round(decision.days_left, 3),
                deferred=Deferral.PREVIOUS_IN_GRACE if waits else None,
            )
        )  # fmt: skip
        if not waits and model.current is not None and config.grace <= timedelta(0):
            # Grace 0: the key it replaces is retired in the same pass, once delivered.
            act(model.current, Action.RETIRE, "grace-0")
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
    rotations: list[list[PlannedAction]] = []
    for view in sorted(views, key=lambda v: v.credential):
        if forced is not None and view.credential not in forced:
            continue
        actions = plan_credential(workspace, view, now, config, forced=forced is not None)
        starts = next((i for i, a in enumerate(actions) if a.action is Action.ROTATE), None)
        if starts is None:
            settle.extend(actions)
        else:
            # A rotation and what follows it (its grace-0 retire) stay together.
            settle.extend(actions[:starts])
            rotations.append(actions[starts:])
    rotations.sort(key=lambda group: (group[0].urgency, group[0].credential))
    return settle + [a for group in rotations for a in group]


def allocate(
    actions: Iterable[PlannedAction], budget: int, *, days_to_next_pass: float | None = None
) -> list[PlannedAction]:
    """The actions of a whole pass (every workspace) with the rotation budget handed out.

    The budget (ROTATOR_MAX_ROTATIONS_PER_PASS) goes to the most urgent rotations first over
    *all* workspaces: ``missing`` and ``forced``, then fewest days left, whichever workspace
    they are in and whichever answered first; ties by workspace, then credential, so the same
    inputs always give the same answer. The rotator's own key competes like any credential
    (it is still *executed* last in its workspace). A rotation left out is kept in the list
    with ``deferred="budget"``, so ``plan`` and the log can name it, and so is the grace-0
    retire that would have followed it (``rotation-deferred``). Other actions (finish a
    delivery, retire, revoke an orphan) never count against the budget.

    A rotation left out that cannot wait is marked ``overdue``: its key is gone, it was asked
    for now, or its key expires within ``days_to_next_pass`` (when the next scheduled pass is
    known).
    """
    listed = list(actions)
    rotations = sorted(
        (i for i, a in enumerate(listed) if a.action is Action.ROTATE and a.deferred is None),
        key=lambda i: (listed[i].urgency, listed[i].workspace, listed[i].credential),
    )
    left_out: set[tuple[str, str]] = set()
    for index in rotations[max(budget, 0) :]:
        action = listed[index]
        overdue = action.reason in (Reason.MISSING, Reason.FORCED) or (
            days_to_next_pass is not None and (action.days_left or 0.0) <= days_to_next_pass
        )
        listed[index] = replace(action, deferred=Deferral.BUDGET, overdue=overdue)
        left_out.add((action.workspace, action.credential))
    for index, action in enumerate(listed):
        if action.reason == "grace-0" and (action.workspace, action.credential) in left_out:
            listed[index] = replace(action, deferred=Deferral.ROTATION_DEFERRED)
    return listed


def hold_revokes(
    actions: Iterable[PlannedAction], workspaces: Collection[str]
) -> list[PlannedAction]:
    """The actions of a pass with every revoke in ``workspaces`` of a key another entry's
    sink could hold deferred (``entry-unidentified``): retiring a previous key, revoking an
    orphan. Such a key may be one that entry delivered, if it is the same workspace listed
    again. A pending key never delivered is still revoked (this entry made it, and no sink
    holds its secret), and rotations still run: a new key and its delivery take nothing from
    anyone."""
    return [
        replace(a, deferred=Deferral.ENTRY_UNIDENTIFIED)
        if a.deferred is None
        and a.workspace in workspaces
        and (
            a.action is Action.RETIRE
            or (a.action is Action.REVOKE_ORPHAN and a.reason != "pending-not-delivered")
        )
        else a
        for a in actions
    ]


__all__ = [
    "Action",
    "Deferral",
    "PlanConfig",
    "PlannedAction",
    "allocate",
    "hold_revokes",
    "plan_credential",
    "plan_workspace",
]
