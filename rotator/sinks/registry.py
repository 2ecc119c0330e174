"""Which module builds each sink kind: one line per kind, each imported only when configured.

A sink module is self-contained: it takes its own settings model (rotator.settings.sinks) and a
:class:`~rotator.sinks.base.SinkContext` in ``from_settings`` and builds itself, and its SDK is
imported with it. So adding a kind is one module, its settings model, and one line here. A
missing extra (the SDK not installed) is reported as ``MissingExtraError`` naming the
``pip install`` that fixes it; nothing here knows how any sink works.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

from rotator.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from rotator.sinks.base import Sink, SinkContext

#: ROTATOR_SINK value -> the module whose ``from_settings`` builds that sink.
KINDS: Final = {
    "file": "rotator.sinks.file",
    "exec": "rotator.sinks.exec",
    "vault": "rotator.sinks.vault",
    "aws-secrets-manager": "rotator.sinks.aws",
    "kubernetes": "rotator.sinks.kubernetes",
}


class MissingExtraError(ConfigError):
    """A configured sink's SDK is not installed."""

    def __init__(self, kind: str) -> None:
        super().__init__(
            [f"ROTATOR_SINK: the {kind} sink needs its extra: pip install 'key-rotator[{kind}]'"]
        )


def build(settings: BaseModel, context: SinkContext) -> Sink:
    """The sink ``settings`` (a model of rotator.settings.sinks, tagged by ``kind``) describe."""
    kind = str(getattr(settings, "kind", ""))
    module_name = KINDS.get(kind)
    if module_name is None:
        raise ConfigError([f"ROTATOR_SINK: the {kind} sink is not available in this version"])
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise MissingExtraError(kind) from None
    sink: Sink = module.from_settings(settings, context)
    return sink
