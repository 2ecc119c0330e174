"""Helpers of the settings tests: a minimal valid environment, and the problems of another.

They parse values alone (``parse_settings``): what the values name on this host (folders,
programs, a kubeconfig) is ``load_settings``'s part, tested in test_host.py and test_places.py,
so that a test of a value does not depend on the machine it runs on."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from rotator.errors import ConfigError
from rotator.settings import Settings, parse_settings

SECRET = "pm-live-0123456789abcdef"
MINIMAL = {"ROTATOR_API_KEY": SECRET, "ROTATOR_KEY_NAMES": "billing-*"}


def load(**variables: str) -> Settings:
    """Settings of MINIMAL plus ``variables`` (an empty value unsets a MINIMAL one)."""
    return parse_settings({**MINIMAL, **variables})


def problems_of(environ: Mapping[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(environ)
    return caught.value.problems


def problems(**variables: str) -> list[str]:
    return problems_of({**MINIMAL, **variables})
