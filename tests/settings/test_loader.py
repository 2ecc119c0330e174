"""The generic ROTATOR_* machinery on its own: names derived from fields, URL masking, problem
wording, and sources that never show a value."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings

from rotator.errors import ConfigError
from rotator.settings import Settings, WorkspaceSettings, read_api_key
from rotator.settings._loader import (
    EnvironSource,
    FallbackSource,
    ValueFileSource,
    catalogue,
    describe_error,
    mask_url,
    problems_of,
    scan,
    shown,
)
from rotator.settings.sinks import FileSinkSettings
from rotator.settings.workspaces import WorkspacesFileSource
from tests.settings.support import problems


class _Blue(BaseModel):
    kind: Literal["blue"] = "blue"
    depth_m: int = 1


class _DarkRed(BaseModel):
    kind: Literal["dark-red"] = "dark-red"
    shade: str = "x"


class _Toy(BaseSettings):
    colour: Annotated[_Blue | _DarkRed, Field(discriminator="kind")] = Field(
        default_factory=_Blue, description="the tag"
    )
    size: int = Field(default=1, description="a size")
    either: int | bool = Field(default=0, description="two ways to fail")


def test_variables_are_derived_from_the_fields() -> None:
    toy = catalogue(_Toy)
    assert list(toy.variables) == [
        "ROTATOR_COLOUR",
        "ROTATOR_COLOUR_BLUE_DEPTH_M",
        "ROTATOR_COLOUR_DARK_RED_SHADE",
        "ROTATOR_EITHER",
        "ROTATOR_SIZE",
    ]
    assert toy.variables["ROTATOR_COLOUR"].is_tag
    assert toy.variables["ROTATOR_COLOUR_DARK_RED_SHADE"].tag == "dark-red"
    assert toy.unions["colour"].default_tag == "blue"
    assert "ROTATOR_WORKSPACES" not in catalogue(Settings).variables  # not a variable


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://pm.example.com/x", "https://pm.example.com/x"),
        ("https://u:pw@h:1/p", "https://u:**********@h:1/p"),
        ("https://token@h/p", "https://**********@h/p"),
        ("https://h/p?token=abc&x=", "https://h/p?token=**********&x=**********"),
        ("https://h/p?abc123", "https://h/p?**********"),
        ("http://[::1", "http://[::1"),  # not a URL urlsplit can read: left alone
        ("not a url", "not a url"),
        ("/var/run/secret?x=1", "/var/run/secret?x=1"),
    ],
)
def test_mask_url(url: str, expected: str) -> None:
    assert mask_url(url) == expected


def test_shown_quotes_text_and_other_values() -> None:
    assert shown("https://u:p@h") == "'https://u:**********@h'"
    assert shown([" "]) == "[' ']"


def test_describe_error_without_a_field_still_names_the_label() -> None:
    detail = {"type": "int_parsing", "loc": ("x",), "msg": "m", "input": "y"}
    assert describe_error(detail, None, "LABEL", "y") == "LABEL: must be a valid value, got 'y'"  # type: ignore[arg-type]


def test_the_sources_never_show_a_value(tmp_path: Path) -> None:
    key = tmp_path / "token"
    key.write_text("hvs.t0ken")
    scanned = scan(
        {
            "ROTATOR_API_KEY": "pm-s3cret",
            "ROTATOR_KEY_NAMES": "*",
            "ROTATOR_SINK": "vault",
            "ROTATOR_SINK_VAULT_TOKEN_FILE": str(key),
            "JOB_COMPLETION_INDEX": "0",
        },
        catalogue(Settings),
    )
    for source in (
        EnvironSource(Settings, scanned),
        ValueFileSource(Settings, scanned),
        FallbackSource(Settings, scanned),
    ):
        text = repr(source)
        assert "s3cret" not in text and "t0ken" not in text, text
    workspaces = WorkspacesFileSource(Settings, tmp_path / "none.yaml", "ROTATOR_WORKSPACES_FILE")
    assert "none.yaml" not in repr(workspaces)
    assert ValueFileSource(Settings, scanned).get_field_value(
        Settings.model_fields["sink"], "sink"
    ) == ({"kind": "vault", "token": "hvs.t0ken"}, "sink", False)


def test_a_path_with_a_nul_is_a_problem() -> None:
    assert problems(ROTATOR_GRACE_HOURS_FILE="/tmp/a\x00b") == [
        "ROTATOR_GRACE_HOURS_FILE: '/tmp/a\\x00b' is not a valid path"
    ]


def test_a_workspace_without_any_credential_says_so() -> None:
    ws = WorkspaceSettings(name="acme", key_names=("*",), sink=FileSinkSettings())
    with pytest.raises(ConfigError, match="ROTATOR_API_KEY: not set for workspace 'acme'"):
        read_api_key(ws)
    assert read_api_key(ws.model_copy(update={"api_key": SecretStr("k")})).reveal() == "k"


def test_the_machinery_loads_any_settings_class() -> None:
    scanned = scan(
        {
            "ROTATOR_COLOUR": "Dark-Red",
            "ROTATOR_COLOUR_DARK_RED_SHADE": "ruby",
            "ROTATOR_SIZE": "3",
        },
        catalogue(_Toy),
    )
    toy = _Toy(_build_sources=((EnvironSource(_Toy, scanned),), {}))  # type: ignore[call-arg]
    assert (toy.colour, toy.size) == (_DarkRed(shade="ruby"), 3)


def test_one_line_per_variable_however_many_reasons_pydantic_has() -> None:
    scanned = scan({"ROTATOR_EITHER": "x", "ROTATOR_COLOUR_BLUE_DEPTH_M": "deep"}, catalogue(_Toy))
    with pytest.raises(ValidationError) as caught:
        _Toy(_build_sources=((EnvironSource(_Toy, scanned),), {}))  # type: ignore[call-arg]
    assert len(caught.value.errors()) == 3  # int and bool both refused "x"
    assert problems_of(caught.value, scanned) == [
        "ROTATOR_COLOUR_BLUE_DEPTH_M: must be an integer, got 'deep'",
        "ROTATOR_EITHER: must be an integer, got 'x'",
    ]
