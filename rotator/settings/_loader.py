"""The generic ROTATOR_* machinery: variables from field names, the sources, problem lines.

Nothing here names a setting. From a settings class it derives its variables: a field ``f`` is
``ROTATOR_F``; a field holding a union of models tagged on a discriminator (the sink) is
flattened, its tag as ``ROTATOR_F`` and each member's field ``g`` as ``ROTATOR_F_<TAG>_G`` (tag
in capitals, ``-`` as ``_``). Markers in a field's metadata (rotator.settings._values) add a
rule: :class:`Fallback` (a default read from another variable), :class:`NotWith`,
:class:`Required`, :class:`NotAVariable`.

Reading the environment mapping (:func:`scan`): only names starting with ``ROTATOR_`` count, the
ones Kubernetes injects for a Service named ``rotator`` excepted; an empty value (after white
space is dropped) counts as unset; ``<NAME>_FILE`` is the path of a file holding NAME's value,
whose content (stripped) wins over NAME; an unknown name is a problem with a "did you mean"
hint; a member variable of a union member other than the chosen one is a problem, unless the
caller says that member is in use elsewhere (kept apart in ``Scan.others``). Files are read
once, up front, so every rule sees the same values. The values then reach pydantic-settings
through three sources, highest priority first: :class:`ValueFileSource` (the ``_FILE`` forms),
:class:`EnvironSource` (an ``EnvSettingsSource`` with the ROTATOR_ prefix, over the given
mapping instead of ``os.environ``) and :class:`FallbackSource`.

Problems become lines ``<VARIABLE>: <what is wrong>, got '<value>'`` (:func:`problems_of`): the
variable a value came from (``ROTATOR_X_FILE`` for a file's content), pydantic's wording
replaced by what the field accepts, and never the value of a secret; a URL's password and its
query are masked wherever a value is shown (:func:`mask_url`).

It must not know the fields of any model, nor how settings are used.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin
from urllib.parse import urlsplit

import annotated_types
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource

from rotator.settings._values import (
    COMPLETE,
    PROBLEMS,
    Fallback,
    NotAVariable,
    NotWith,
    Required,
)
from rotator.settings.notify import NotifyUrl

PREFIX = "ROTATOR_"
FILE_SUFFIX = "_FILE"
REDACTED = "**********"

#: Kubernetes injects these for a Service named ``rotator``; they are not settings.
_KUBERNETES_SERVICE_VARIABLE = re.compile(r"^ROTATOR_(SERVICE_HOST|SERVICE_PORT(_.*)?|PORT(_.*)?)$")

Origin = Literal["environment", "file", "fallback"]


# --- the variables of a settings class ---------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    """One variable: where its value goes in the model and what the field accepts."""

    name: str
    #: ``(field,)``, or ``(union field, member field)`` for a member's variable.
    path: tuple[str, ...]
    info: FieldInfo
    #: The union member this variable belongs to (its tag), None outside a union.
    tag: str | None = None
    #: Whether this is a union's tag variable (ROTATOR_SINK).
    is_tag: bool = False


@dataclass(frozen=True)
class FlatUnion:
    """A flattened union field: its discriminator and each tag's model, in declaration order."""

    discriminator: str
    members: Mapping[str, type[BaseModel]]
    default_tag: str


@dataclass(frozen=True)
class Catalogue:
    variables: Mapping[str, Variable]
    unions: Mapping[str, FlatUnion]


def member_variable(union_field: str, tag: str, member_field: str) -> str:
    """The variable of a union member's field: ``ROTATOR_SINK_VAULT_ADDR``."""
    return f"{PREFIX}{union_field.upper()}_{tag.upper().replace('-', '_')}_{member_field.upper()}"


def _union_members(info: FieldInfo) -> tuple[str, list[type[BaseModel]]] | None:
    """(discriminator, member models) of a field tagged on a discriminator, else None."""
    if not isinstance(info.discriminator, str):
        return None
    members = [
        arg
        for arg in get_args(info.annotation)
        if isinstance(arg, type) and issubclass(arg, BaseModel)
    ]
    return info.discriminator, members


_M = TypeVar("_M")


def _marker(info: FieldInfo, kind: type[_M]) -> _M | None:
    return next((m for m in info.metadata if isinstance(m, kind)), None)


@functools.cache
def catalogue(settings_cls: type[BaseModel]) -> Catalogue:
    """Every variable of ``settings_cls``, by name."""
    variables: dict[str, Variable] = {}
    unions: dict[str, FlatUnion] = {}
    for name, info in settings_cls.model_fields.items():
        if _marker(info, NotAVariable) is not None:
            continue
        variable = PREFIX + name.upper()
        union = _union_members(info)
        if union is None:
            variables[variable] = Variable(variable, (name,), info)
            continue
        discriminator, models = union
        members = {m.model_fields[discriminator].default: m for m in models}
        default = info.get_default(call_default_factory=True)
        unions[name] = FlatUnion(discriminator, members, getattr(default, discriminator))
        variables[variable] = Variable(variable, (name,), info, is_tag=True)
        for tag, model in members.items():
            for member_name, member_info in model.model_fields.items():
                if member_name == discriminator:
                    continue
                member = member_variable(name, tag, member_name)
                variables[member] = Variable(member, (name, member_name), member_info, tag=tag)
    return Catalogue(dict(sorted(variables.items())), unions)


# --- reading the environment mapping -----------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A value as found, and where: ``source`` is what a problem line names."""

    value: str
    source: str
    origin: Origin


@dataclass
class Scan:
    """The set values of one environment mapping, and what was wrong with it."""

    catalogue: Catalogue
    #: Effective raw value of each set variable (a file's content wins over the variable).
    values: dict[str, Raw] = field(default_factory=dict)
    #: The chosen tag of each union field (lower case, maybe not a valid one).
    tags: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: Set variables of union members in use besides the chosen one (``in_use`` of
    #: :func:`scan`): kept apart, as they are no part of the union field's value.
    others: dict[str, Raw] = field(default_factory=dict)

    def other_members(self, union_field: str) -> dict[str, dict[str, Raw]]:
        """The kept variables of ``union_field``'s other members: tag -> member field -> value."""
        found: dict[str, dict[str, Raw]] = {}
        for name, raw in self.others.items():
            variable = self.catalogue.variables[name]
            if variable.path[0] == union_field and variable.tag is not None:
                found.setdefault(variable.tag, {})[variable.path[1]] = raw
        return found

    def nested(self, origin: Origin) -> dict[str, Any]:
        """The values of one origin, shaped as the model's input (a union's as a dict)."""
        data: dict[str, Any] = {}
        for name, raw in self.values.items():
            if raw.origin != origin:
                continue
            variable = self.catalogue.variables[name]
            head = variable.path[0]
            union = self.catalogue.unions.get(head)
            if union is None:
                data[head] = raw.value
                continue
            member = data.setdefault(head, {union.discriminator: self.tags[head]})
            if not variable.is_tag:
                member[variable.path[1]] = raw.value
        return data


def _read_value_file(variable: str, path: str) -> tuple[str | None, str | None]:
    """(content without surrounding white space, problem) of a ``<NAME>_FILE`` variable."""
    try:
        return Path(path).read_text(encoding="utf-8").strip(), None
    except UnicodeDecodeError:
        return None, f"{variable}: {path!r} is not UTF-8 text"
    except OSError as exc:
        return None, f"{variable}: cannot read {path!r}: {exc.strerror or type(exc).__name__}"
    except ValueError:  # a NUL in the path
        return None, f"{variable}: {path!r} is not a valid path"


def read_text_file(label: str, path: Path) -> str:
    """The stripped content of a file a setting names; ValueError with a problem line if none."""
    content, problem = _read_value_file(label, str(path))
    if problem is not None:
        raise ValueError(problem)
    if not content:
        raise ValueError(f"{label}: {str(path)!r} is empty")
    return content


def _is_setting_name(name: str) -> bool:
    return name.startswith(PREFIX) and not _KUBERNETES_SERVICE_VARIABLE.match(name)


def unknown_variable_problem(name: str, known: Iterable[str]) -> str:
    names = sorted(known)
    candidates = names + [n + FILE_SUFFIX for n in names]
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.8)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{name}: unknown variable{hint}"


def _is_known(name: str, known: Mapping[str, Variable]) -> bool:
    return name in known or (name.endswith(FILE_SUFFIX) and name.removesuffix(FILE_SUFFIX) in known)


def unknown_variables(environ: Mapping[str, str], cat: Catalogue) -> list[str]:
    """A problem line for each set ROTATOR_* variable that ``cat`` does not know."""
    return [
        unknown_variable_problem(name, cat.variables)
        for name in sorted(environ)
        if _is_setting_name(name) and environ[name].strip() and not _is_known(name, cat.variables)
    ]


def scan(  # noqa: PLR0912 - one rule per kind of variable
    environ: Mapping[str, str],
    cat: Catalogue,
    *,
    in_use: Mapping[str, Collection[str]] | None = None,
    in_use_where: str = "",
) -> Scan:
    """The ROTATOR_* values of ``environ`` (``_FILE`` forms read), checked against ``cat``.

    ``in_use`` names, by union field, the members used elsewhere than by the chosen tag (another
    source of settings names them); their variables are kept in ``Scan.others`` instead of being
    a problem, and ``in_use_where`` (`` or ...``) says where else a member may be named.
    """
    in_use = in_use or {}
    result = Scan(cat)
    result.problems.extend(unknown_variables(environ, cat))
    direct: dict[str, Raw] = {}
    from_files: dict[str, Raw] = {}
    for name in sorted(environ):
        value = environ[name].strip()
        if not _is_setting_name(name) or not value or not _is_known(name, cat.variables):
            continue  # an empty value counts as unset; unknown names are reported above
        if name in cat.variables:
            direct[name] = Raw(value, name, "environment")
            continue
        content, problem = _read_value_file(name, value)
        if problem is not None:
            result.problems.append(problem)
        elif content:
            from_files[name.removesuffix(FILE_SUFFIX)] = Raw(content, name, "file")
    values = direct | from_files

    for union_field, union in cat.unions.items():
        tag_raw = values.get(PREFIX + union_field.upper())
        result.tags[union_field] = tag_raw.value.lower() if tag_raw else union.default_tag
    for name in list(values):
        variable = cat.variables[name]
        chosen = result.tags.get(variable.path[0])
        if variable.tag is not None and variable.tag != chosen:
            tag_variable = PREFIX + variable.path[0].upper()
            if variable.tag in in_use.get(variable.path[0], ()):
                result.others[name] = values[name]
            elif chosen in cat.unions[variable.path[0]].members:
                result.problems.append(
                    f"{values[name].source}: only used with {tag_variable}={variable.tag}"
                    f"{in_use_where}, but {tag_variable} is {chosen!r}"
                )
            del values[name]  # with an invalid tag, the tag's own problem says it all

    for name, variable in cat.variables.items():
        fallback = _marker(variable.info, Fallback)
        chosen = result.tags.get(variable.path[0])
        other_in_use = variable.tag in in_use.get(variable.path[0], ()) and variable.tag != chosen
        if (
            fallback is None
            or name in values
            or name in result.others
            or (variable.tag not in (None, chosen) and not other_in_use)
        ):
            continue
        for other in fallback.names:
            value = environ.get(other, "").strip()
            if value:
                found = Raw(value, f"{other} (default of {name})", "fallback")
                (result.others if other_in_use else values)[name] = found
                break

    for name in list(values):
        conflict = _marker(cat.variables[name].info, NotWith)
        other = PREFIX + conflict.other.upper() if conflict else ""
        if conflict is not None and other in values:
            result.problems.append(f"{values[name].source}: not used with {other}: {conflict.why}")
            del values[name]
    result.values = dict(sorted(values.items()))
    return result


# --- the sources -------------------------------------------------------------------------------


class EnvironSource(EnvSettingsSource):
    """The variables set in the mapping given to ``load_settings``, by the ROTATOR_ prefix.

    An ``EnvSettingsSource`` whose environment is the scanned mapping rather than
    ``os.environ``; a flattened union field gets its tag and its chosen member's variables.
    """

    def __init__(self, settings_cls: type[BaseSettings], scanned: Scan) -> None:
        self._scanned = scanned
        self._nested = scanned.nested("environment")
        super().__init__(settings_cls, env_prefix=PREFIX, case_sensitive=False)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {
            name.lower(): raw.value
            for name, raw in self._scanned.values.items()
            if raw.origin == "environment"
        }

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:  # noqa: ARG002
        # Never JSON: a list is comma-separated text, parsed by its field; a union is a dict.
        return value

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name in self._scanned.catalogue.unions:
            return self._nested.get(field_name), field_name, False
        return super().get_field_value(field, field_name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={PREFIX!r})"  # never the values


class _ScannedSource(PydanticBaseSettingsSource):
    """The scanned values of one origin."""

    origin: Origin

    def __init__(self, settings_cls: type[BaseSettings], scanned: Scan) -> None:
        super().__init__(settings_cls)
        self._data = scanned.nested(self.origin)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:  # noqa: ARG002
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(fields={sorted(self._data)})"  # never the values


class ValueFileSource(_ScannedSource):
    """``<NAME>_FILE``: the stripped content of the file it names, winning over NAME."""

    origin = "file"


class FallbackSource(_ScannedSource):
    """Defaults read from variables outside ROTATOR_* (JOB_COMPLETION_INDEX, AWS_REGION)."""

    origin = "fallback"


# --- problem lines -----------------------------------------------------------------------------


def mask_url(value: str) -> str:
    """``value`` with a URL's user info and query values replaced by the redaction mark."""
    try:
        parts = urlsplit(value)
        password, user = parts.password, parts.username
    except ValueError:
        return value
    if not parts.scheme or not parts.netloc:
        return value
    netloc, query = parts.netloc, parts.query
    if user is not None or password is not None:
        host = netloc.rpartition("@")[2]
        netloc = f"{user}:{REDACTED}@{host}" if password is not None else f"{REDACTED}@{host}"
    if query:
        query = "&".join(
            f"{name}={REDACTED}" if equals else REDACTED
            for name, equals, _ in (pair.partition("=") for pair in query.split("&"))
        )
    return parts._replace(netloc=netloc, query=query).geturl()


def shown(value: object) -> str:
    """How a found value is quoted in a problem line."""
    return repr(mask_url(value)) if isinstance(value, str) else repr(value)


def is_secret(info: FieldInfo) -> bool:
    annotation = info.annotation
    return annotation is SecretStr or SecretStr in get_args(annotation)


def _expectation(info: FieldInfo) -> str:
    """What a field accepts, in words, from its type and constraints: 'an integer >= 1'."""
    kind: Any = info.annotation
    if get_origin(kind) in (Union, UnionType):
        kind = next(arg for arg in get_args(kind) if arg is not type(None))
    while get_origin(kind) is Annotated:
        kind = get_args(kind)[0]
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(str(arg) for arg in get_args(kind))
    if get_origin(kind) is tuple:
        return "a list"
    noun = {int: "an integer", float: "a number", str: "text", Path: "a path"}.get(
        kind, "a valid value"
    )
    bounds = []
    for constraint in info.metadata:
        if isinstance(constraint, annotated_types.MaxLen):
            bounds.append(f"of at most {constraint.max_length} characters")
        for attribute, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            bound = getattr(constraint, attribute, None)
            if isinstance(constraint, annotated_types.BaseMetadata) and bound is not None:
                bounds.append(f"{symbol} {bound:g}")
    return " ".join([noun, " and ".join(bounds)]).strip()


def describe_error(
    error: ErrorDetails, info: FieldInfo | None, label: str, value: object | None
) -> str:
    """One problem line: ``label: what is wrong[, got value]`` in the rotator's own words.

    ``value`` is what was found (None: nothing to show); it is never shown for a secret.
    """
    kind = error["type"]
    context: Mapping[str, Any] = error.get("ctx") or {}
    show_value = value is not None and not (info is not None and is_secret(info))
    if kind == "missing":
        required = _marker(info, Required) if info is not None else None
        text, show_value = (required.text if required else "required"), False
    elif kind == COMPLETE:
        text, show_value = error["msg"], False
    elif kind == "value_error" and "error" in context:
        text = str(context["error"])
    elif info is not None:
        text = "must be " + _expectation(info)
    else:
        text = "must be a valid value"
    got = f", got {shown(value)}"
    if show_value and not text.endswith(got):  # a check may have said what it got already
        return f"{label}: {text}{got}"
    return f"{label}: {text}"


def _locate(loc: tuple[int | str, ...], cat: Catalogue) -> tuple[str, Variable | None]:
    """The variable an error location points at: ``("sink", "vault", "addr")`` is
    ROTATOR_SINK_VAULT_ADDR, ``("grace_hours",)`` ROTATOR_GRACE_HOURS."""
    head = str(loc[0])
    union = cat.unions.get(head)
    if union is not None and len(loc) >= 3 and loc[1] in union.members:
        name = member_variable(head, str(loc[1]), str(loc[2]))
    else:
        name = PREFIX + head.upper()
    return name, cat.variables.get(name)


def problems_of(error: ValidationError, scanned: Scan) -> list[str]:
    """One line per variable pydantic refused (the first reason), finished lines as they are."""
    lines: list[str] = []
    seen: set[str] = set()
    for detail in error.errors(include_url=False):
        if detail["type"] == PROBLEMS:
            lines.extend(str((detail.get("ctx") or {})["problems"]).splitlines())
            continue
        name, variable = _locate(detail["loc"], scanned.catalogue)
        if name in seen:
            continue
        seen.add(name)
        raw = scanned.values.get(name)
        if variable is not None and variable.is_tag and detail["type"] == "union_tag_invalid":
            tags = ", ".join(scanned.catalogue.unions[variable.path[0]].members)
            shown_value = raw.value if raw else None
            lines.append(
                f"{raw.source if raw else name}: must be one of {tags}, got {shown(shown_value)}"
            )
            continue
        lines.append(
            describe_error(
                detail,
                variable.info if variable else None,
                raw.source if raw else name,
                raw.value if raw else None,
            )
        )
    return lines


def _variable_of(line: str) -> str:
    return line.split(": ", 1)[0].split(" (default of ", 1)[0]


def arrange(problems: Iterable[str], unreadable: Iterable[str]) -> list[str]:
    """``problems`` grouped by variable (in a stable order), leaving out what follows from a
    variable that could not be read (``unreadable``: its own lines, kept)."""
    unreadable = list(unreadable)
    silenced = {_variable_of(line).removesuffix(FILE_SUFFIX) for line in unreadable}
    kept = list(unreadable) + [
        line for line in problems if _variable_of(line).removesuffix(FILE_SUFFIX) not in silenced
    ]
    return sorted(dict.fromkeys(kept), key=_variable_of)


# --- showing settings --------------------------------------------------------------------------


def plain(value: object) -> object:
    """A JSON-serialisable form of one setting's value, secrets masked."""
    if isinstance(value, NotifyUrl):
        return value.shown  # an Apprise URL with every part that may be a credential masked
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    if isinstance(value, str):
        return mask_url(value)
    return value


def effective(settings: BaseModel) -> dict[str, object]:
    """Each variable of ``settings``' class with its effective value, secrets masked."""
    cat = catalogue(type(settings))
    shown_values: dict[str, object] = {}
    for name, variable in cat.variables.items():
        head = getattr(settings, variable.path[0])
        if variable.is_tag:
            shown_values[name] = getattr(head, cat.unions[variable.path[0]].discriminator)
        elif len(variable.path) == 1:
            shown_values[name] = plain(head)
        elif variable.tag == getattr(head, cat.unions[variable.path[0]].discriminator):
            shown_values[name] = plain(getattr(head, variable.path[1]))
    return shown_values


def descriptions(settings_cls: type[BaseModel]) -> dict[str, str]:
    """Each variable of ``settings_cls`` with its field's description."""
    return {
        name: variable.info.description or ""
        for name, variable in catalogue(settings_cls).variables.items()
    }
