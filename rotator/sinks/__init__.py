"""Secret sinks: where a credential's new secret is delivered (one module per backend)."""

from rotator.sinks.base import Sink

__all__ = ["Sink"]
