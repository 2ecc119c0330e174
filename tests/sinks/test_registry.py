"""The sink registry: one line per kind, each module building itself from its own settings."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from rotator.settings.sinks import SINK_MODELS
from rotator.sinks import registry
from rotator.sinks.base import BaseSink, SinkContext
from tests.sinks.toy_sink import ToySink, ToySinkSettings


def test_every_settings_model_has_a_module_and_every_module_builds_itself() -> None:
    assert set(registry.KINDS) == set(SINK_MODELS)
    for module_name in registry.KINDS.values():
        assert callable(importlib.import_module(module_name).from_settings)


@pytest.mark.parametrize("kind", ["file", "exec"])
def test_a_kind_builds_from_its_settings_with_the_workspace(kind: str) -> None:
    values = {"exec": {"command": [sys.executable, "-c", "pass"]}}.get(kind, {})
    settings = SINK_MODELS[kind].model_validate({"kind": kind, **values})
    sink = registry.build(settings, SinkContext(workspace="acme"))
    assert sink.kind == kind
    assert isinstance(sink, BaseSink)


def test_adding_a_kind_is_one_module_and_one_registry_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(registry.KINDS, "toy", "tests.sinks.toy_sink")  # the one line
    sink = registry.build(ToySinkSettings(label="x"), SinkContext(workspace="acme"))
    assert isinstance(sink, ToySink)
    assert (sink.workspace, sink.label, sink.kind) == ("acme", "x", "toy")
    assert list(sink.rollout("c", *(2 * [None]))) == []  # type: ignore[arg-type]


def test_an_unknown_kind_is_a_configuration_error() -> None:
    with pytest.raises(registry.ConfigError, match="not available"):
        registry.build(ToySinkSettings(kind="nope"), SinkContext(workspace="acme"))


def test_the_registry_imports_no_sink_until_one_is_built() -> None:
    code = (
        "import sys, rotator.sinks.registry as r; "
        "print(sorted(m for m in sys.modules if m.startswith('rotator.sinks.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = out.stdout
    assert "rotator.sinks.registry" in loaded
    for module_name in registry.KINDS.values():
        assert f"'{module_name}'" not in loaded, "a kind's module is imported only when built"
