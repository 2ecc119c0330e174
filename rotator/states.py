"""The states of one rotation and the only transitions allowed between them::

    due ──▶ created ──▶ verified ──▶ pending-recorded ──▶ secret-written ──▶ delivered ──▶ revoked
     │         │           │               │                   │               │
     ▼         ▼           ▼               ▼                   ▼               ▼
   failed   rolled-back ◀──┴───────────────┴───────────────────┘             failed
               │                           │                   │          (the retire failed;
               ▼                           ▼                   ▼           the delivery stands)
             failed                      unknown ◀─────────────┘
                                           │
                                           ▼
                                         failed

Every state but ``revoked`` may also go to ``failed`` directly (a rollback that itself failed).
Pure: the rotation (rotator.rotation) and its delivery (rotator.delivery) move through them.
"""

from __future__ import annotations

from enum import StrEnum

from rotator.errors import RotatorError


class State(StrEnum):
    """Where one rotation is; the checkpoint names tests stop at."""

    DUE = "due"
    CREATED = "created"
    VERIFIED = "verified"
    PENDING_RECORDED = "pending-recorded"
    SECRET_WRITTEN = "secret-written"  # noqa: S105 - a state name, not a password
    DELIVERED = "delivered"
    REVOKED = "revoked"
    ROLLED_BACK = "rolled-back"
    UNKNOWN = "unknown"
    FAILED = "failed"


#: The allowed transitions: everything else raises IllegalTransitionError.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.DUE: frozenset({State.CREATED, State.FAILED}),
    State.CREATED: frozenset({State.VERIFIED, State.ROLLED_BACK, State.FAILED}),
    State.VERIFIED: frozenset({State.PENDING_RECORDED, State.ROLLED_BACK, State.FAILED}),
    State.PENDING_RECORDED: frozenset(
        {State.SECRET_WRITTEN, State.ROLLED_BACK, State.UNKNOWN, State.FAILED}
    ),
    State.SECRET_WRITTEN: frozenset(
        {State.DELIVERED, State.ROLLED_BACK, State.UNKNOWN, State.FAILED}
    ),
    State.DELIVERED: frozenset({State.REVOKED, State.FAILED}),
    State.REVOKED: frozenset(),
    State.ROLLED_BACK: frozenset({State.FAILED}),
    State.UNKNOWN: frozenset({State.FAILED}),
    State.FAILED: frozenset(),
}


class IllegalTransitionError(RotatorError):
    """A rotation tried to move between states the table does not connect (a bug)."""


__all__ = ["TRANSITIONS", "IllegalTransitionError", "State"]
