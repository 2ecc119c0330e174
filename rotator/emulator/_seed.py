"""The seed file of ``rotator emulator --seed FILE``: read it, and refuse a bad one in full.

A seed names the workspaces, users and keys the emulator starts with (README, "The bundled
emulator"); a key's expiry is a time (``expires``) or days from the emulator's start
(``expires_in_days``, so that an example seed stays good whenever it is run). Every problem is
one line naming the file and the field, ``seed.json: workspaces[0].keys[1].expires: not an ISO
8601 time: 'soon'``, all of them at once, so that a person fixes the file in one go; a field the
format does not have is a problem too (a typo must never start an empty emulator without a
word).

Must not know: the rotator; how the emulator serves. Only the shape of a seed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rotator.emulator._state import _VARIANT_DEFAULTS, _check_variant, parse_time

_TOP = {"now": "time", "variants": "object", "workspaces": "list"}
_WORKSPACE = {"name": "text", "id": "text", "users": "list", "keys": "list"}
_USER = {"id": "text", "full_name": "text", "email": "text", "role": "text"}
_KEY = {
    "name": "text", "expires": "time", "expires_in_days": "number", "secret": "text",
    "id": "text", "created_by": "text", "revoked": "bool",
}  # fmt: skip
_REQUIRED = {"workspace": ("name",), "key": ("name",)}


class SeedError(ValueError):
    """A seed that cannot be used; ``problems`` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def load_seed(path: Path) -> dict[str, Any]:
    """The seed in ``path``, checked; SeedError naming the file and every bad field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SeedError([f"{path}: cannot be read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise SeedError([f"{path}: is not UTF-8 text"]) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SeedError(
            [f"{path}: is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]
        ) from None
    problems = seed_problems(document)
    if problems:
        raise SeedError([f"{path}: {p}" for p in problems])
    return dict(document)


def seed_problems(document: object) -> list[str]:
    """Every problem of a seed document, each ``FIELD: what is wrong`` (empty: it is good)."""
    if not isinstance(document, dict):
        return [f"a seed is a JSON object, not {_kind(document)}"]
    problems = _fields(document, _TOP, "")
    variants = document.get("variants")
    if isinstance(variants, dict):
        for name, value in variants.items():
            if name not in _VARIANT_DEFAULTS:
                problems.append(f"variants.{name}: unknown variant (known: "
                                f"{', '.join(sorted(_VARIANT_DEFAULTS))})")  # fmt: skip
                continue
            try:
                _check_variant(name, value)
            except ValueError as exc:
                problems.append(f"variants.{name}: {str(exc).removeprefix(f'variant {name}: ')}")
    workspaces = document.get("workspaces")
    if isinstance(workspaces, list):
        for i, workspace in enumerate(workspaces):
            problems += _entry(workspace, _WORKSPACE, f"workspaces[{i}]", "workspace")
            if not isinstance(workspace, dict):
                continue
            for j, user in enumerate(_list(workspace.get("users"))):
                problems += _entry(user, _USER, f"workspaces[{i}].users[{j}]", "user")
            for j, key in enumerate(_list(workspace.get("keys"))):
                problems += _entry(key, _KEY, f"workspaces[{i}].keys[{j}]", "key")
    return problems


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _entry(value: object, fields: Mapping[str, str], where: str, what: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: a {what} is a JSON object, not {_kind(value)}"]
    problems = [
        f"{where}.{name}: required" for name in _REQUIRED.get(what, ()) if value.get(name) is None
    ]
    if value.get("expires") is not None and value.get("expires_in_days") is not None:
        problems.append(f"{where}: give expires or expires_in_days, not both")
    return problems + _fields(value, fields, f"{where}.")


def _fields(value: Mapping[str, Any], fields: Mapping[str, str], prefix: str) -> list[str]:
    problems = []
    for name, item in value.items():
        expected = fields.get(name)
        if expected is None:
            problems.append(
                f"{prefix}{name}: unknown field (known here: {', '.join(sorted(fields))})"
            )
        elif item is not None:
            problem = _type_problem(item, expected)
            if problem is not None:
                problems.append(f"{prefix}{name}: {problem}")
    return problems


def _type_problem(item: object, expected: str) -> str | None:
    if expected == "time":
        if not isinstance(item, str):
            return f"expected an ISO 8601 time, not {_kind(item)}"
        try:
            parse_time(item)
        except ValueError:
            return f"not an ISO 8601 time: {item!r}"
        return None
    if expected == "number":
        if isinstance(item, bool) or not isinstance(item, int | float):
            return f"expected a number of days, not {_kind(item)}"
        if not -36500 <= item <= 36500:
            return f"expected at most 100 years either way, got {item}"
        return None
    checks: dict[str, type | tuple[type, ...]] = {
        "text": str, "object": dict, "list": list, "bool": bool
    }  # fmt: skip
    if not isinstance(item, checks[expected]):
        return f"expected {_article(expected)}, not {_kind(item)}"
    return None


def _article(expected: str) -> str:
    return {"text": "a string", "object": "an object", "list": "a list", "bool": "true or false"}[
        expected
    ]


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    return {dict: "an object", list: "a list", str: "a string", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)  # fmt: skip


__all__ = ["SeedError", "load_seed", "seed_problems"]
