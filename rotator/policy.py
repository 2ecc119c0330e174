"""Pure rotation policy: which keys the rotator manages, and which are due at ``now``, and why.

No I/O, no clock, no settings object: callers pass ``now`` and a :class:`RotationPolicy` value.

The rules (docs/how-it-works.md, README):

- A key's base name is its name without the rotator's ``@<UTC time>`` suffix. A base name is
  managed when it matches a ROTATOR_KEY_NAMES glob and no ROTATOR_EXCLUDE_KEY_NAMES glob
  (case-sensitive ``fnmatch``).
- The API gives no creation date, so a key's age is ``now - (expires - validity)``.
- A key is due, in this order of precedence: ``forced`` (an operator asked); ``expiring`` (fewer
  than ``rotate_before_days`` days left, including a key already expired); ``max-age`` (older than
  ``max_age_days``). Otherwise it is ``not-due``. A credential whose key the sink holds is no
  longer listed is ``missing`` (see :func:`missing`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase

from rotator.models import ApiKey, Decision, Reason, utc

_DAY = timedelta(days=1)


@dataclass(frozen=True)
class RotationPolicy:
    """The settings the policy reads, as plain values."""

    key_names: Sequence[str]
    exclude_key_names: Sequence[str] = ()
    validity_days: float = 730
    rotate_before_days: float = 30
    max_age_days: float | None = None


def is_managed(base_name: str, policy: RotationPolicy) -> bool:
    """Whether the rotator may replace keys of credential ``base_name``."""
    if any(fnmatchcase(base_name, pattern) for pattern in policy.exclude_key_names):
        return False
    return any(fnmatchcase(base_name, pattern) for pattern in policy.key_names)


def days_left(key: ApiKey, now: datetime) -> float:
    """Days until ``key`` expires (fractional; negative once expired)."""
    return (utc(key.expires) - utc(now)) / _DAY


def age_days(key: ApiKey, now: datetime, policy: RotationPolicy) -> float:
    """Days since ``key`` was created, derived from its expiry and the validity window.

    Computed as ``validity - days_left`` so that an absurd ``expires`` (.NET's
    ``DateTime.MinValue``, year 1) never leaves the range of ``datetime``.
    """
    return policy.validity_days - days_left(key, now)


def rotation_due_at(key: ApiKey, policy: RotationPolicy) -> datetime:
    """The first instant at which :func:`decide` calls ``key`` due (for metrics and status);
    clamped to ``datetime.min`` for a key whose expiry is that far in the past."""
    before = policy.rotate_before_days
    if policy.max_age_days is not None:
        before = max(before, policy.validity_days - policy.max_age_days)
    try:
        return utc(key.expires) - before * _DAY
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def decide(key: ApiKey, now: datetime, policy: RotationPolicy, *, forced: bool = False) -> Decision:
    """Whether ``key`` is due at ``now``, and why (``expiring`` wins over ``max-age``)."""
    left = days_left(key, now)
    age = age_days(key, now, policy)
    if forced:
        return Decision(due=True, reason=Reason.FORCED, days_left=left, age_days=age)
    if left < policy.rotate_before_days:
        return Decision(due=True, reason=Reason.EXPIRING, days_left=left, age_days=age)
    if policy.max_age_days is not None and age > policy.max_age_days:
        return Decision(due=True, reason=Reason.MAX_AGE, days_left=left, age_days=age)
    return Decision(due=False, reason=Reason.NOT_DUE, days_left=left, age_days=age)


def missing() -> Decision:
    """The decision for a credential whose delivered key is gone from the provider: rotate now."""
    return Decision(due=True, reason=Reason.MISSING, days_left=0.0, age_days=0.0)


def urgency(reason: str, days_left: float) -> tuple[int, float]:
    """Sort key of a rotation: most urgent first (missing and forced, then fewest days left)."""
    first = reason in (Reason.MISSING, Reason.FORCED)
    return (0 if first else 1, days_left)
