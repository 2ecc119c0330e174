"""What ``--help`` says about each variable, generated from the settings models.

``--help`` must not import pydantic, so it reads ``rotator/variables.py``, a plain module this
one writes (``python scripts/generate_variables.py``; a test fails when the file is not what
the models say now, so the two cannot drift). For each variable: its default as people read it
(a :class:`~rotator.settings._values.Shown` marker where the value alone would mislead, the
variables a :class:`~rotator.settings._values.Fallback` names, ``required``, ``unset``), the
first sentence of its field's description, and the sink it belongs to ("" for the others).
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePath
from typing import Any

from pydantic_core import PydanticUndefined

from rotator.settings._loader import Variable, _marker, catalogue
from rotator.settings._values import Fallback, Required, Shown
from rotator.settings.model import Settings

#: Where the documentation is online: the image holds no README.
DOCS_URL = "https://github.com/key-rotator/key-rotator#readme"

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`])")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value) if value else "empty"
    return str(value)


def shown_default(variable: Variable, default_tag: str | None = None) -> str:
    """The default of ``variable`` as ``--help`` shows it."""
    info = variable.info
    shown = _marker(info, Shown)
    if shown is not None:
        return shown.text
    if variable.is_tag and default_tag is not None:
        return default_tag
    fallback = _marker(info, Fallback)
    default = info.default
    if fallback is not None:
        chain = ", else ".join(fallback.names)
        if default is PydanticUndefined or default is None:
            return chain
        return f"{chain}, else {_value(default)}"
    if _marker(info, Required) is not None or default is PydanticUndefined:
        return "required"
    if default is None:
        return "unset"
    if default == "":
        return "empty"
    return _value(default)


def meaning(description: str | None) -> str:
    """The first sentence of a field's description (the rest says why its default was chosen)."""
    text = " ".join((description or "").split())
    text = re.sub(r"^ROTATOR_[A-Z_]+: ", "", text)  # a description that names its own variable
    return _SENTENCE_END.split(text, maxsplit=1)[0]


def help_entries() -> dict[str, tuple[str, str, str]]:
    """Each variable: (default as shown, one line of meaning, its sink kind or "")."""
    cat = catalogue(Settings)
    entries: dict[str, tuple[str, str, str]] = {}
    for name, variable in cat.variables.items():
        union = cat.unions.get(variable.path[0])
        default_tag = union.default_tag if union is not None else None
        entries[name] = (
            shown_default(variable, default_tag),
            meaning(variable.info.description),
            variable.tag or "",
        )
    return entries


def variables_module() -> str:
    """The text of ``rotator/variables.py``."""
    lines = [
        '"""Every ROTATOR_* variable with its default and meaning, for ``--help`` (no pydantic).',
        "",
        "GENERATED from the settings models by ``python scripts/generate_variables.py``: do not",
        "edit. A test fails when this file differs from what the models say, so it cannot drift.",
        "Only plain data, no import: ``rotator --help`` must stay fast. Each variable may also be",
        "given as ``<NAME>_FILE``.",
        '"""',
        "",
        '__all__ = ["DOCS_URL", "VARIABLES"]',
        "",
        "#: Where the full documentation is, online (the image holds no README).",
        f"DOCS_URL = {json.dumps(DOCS_URL)}",
        "",
        '#: name -> (default as shown, one line of meaning, the sink it belongs to or ""), sorted.',
        "VARIABLES: dict[str, tuple[str, str, str]] = {",
    ]
    for name, entry in help_entries().items():
        lines.append(f"    {json.dumps(name)}: (")
        lines.extend(f"        {json.dumps(part)}," for part in entry)
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_variables_module(path: Path) -> bool:
    """Write the module to ``path``; whether it changed."""
    text = variables_module()
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True
