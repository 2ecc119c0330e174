"""A toy sink kind, to show what adding one takes: this module and one line in the registry.

It keeps everything in memory (the in-tree memory sink does the storing) and builds itself from
its settings like every real kind.
"""

from __future__ import annotations

from pydantic import BaseModel

from rotator.sinks.base import SinkContext
from rotator.sinks.memory import MemorySink


class ToySinkSettings(BaseModel):
    kind: str = "toy"
    label: str = "toy"


class ToySink(MemorySink):
    kind = "toy"

    def __init__(self, workspace: str, label: str) -> None:
        super().__init__()
        self.workspace, self.label = workspace, label


def from_settings(settings: ToySinkSettings, context: SinkContext) -> ToySink:
    return ToySink(context.workspace, settings.label)
