"""Credentials routed to their targets: the workspace's sink as one :class:`Sink` over every
place its credentials are delivered (skeleton; filled in by the targets work)."""

from __future__ import annotations

from collections.abc import Sequence

from rotator.sinks.base import Sink


def routed(default: Sink, routes: Sequence[tuple[str, Sequence[Sink]]]) -> Sink:
    """The workspace's sink: a credential whose base name matches a route's glob (first match
    wins) goes to that route's targets (one or several); any other to ``default``."""
    if not routes:
        return default
    raise NotImplementedError("credential routes")
