"""Value types and checks shared by the settings models: how one variable's text becomes a value.

Each check raises ``ValueError`` whose text completes the line ``<VARIABLE>: <text>, got
'<value>'`` (the loader adds the variable and the value, and leaves the value out for a secret),
or :func:`complete` for a text that must stand as written. The markers at the end
(:class:`Required`, :class:`Fallback`, :class:`NotWith`, :class:`NotAVariable`) are read by the
loader from a field's metadata, so that each rule is declared next to its field.

It must not know where values come from (environment, files) nor which fields exist.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import string
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import SplitResult, urlsplit

from pydantic import AfterValidator, BeforeValidator, ValidationInfo
from pydantic_core import PydanticCustomError

from rotator.models import is_loopback_host

#: Error type of a problem whose text is complete (it already says what was found).
COMPLETE = "rotator_complete"
#: Error type carrying finished problem lines (ctx ``problems``, one a line), e.g. the workspaces.
PROBLEMS = "rotator_problems"

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def complete(text: str) -> PydanticCustomError:
    """An error whose text is shown as written, with no ``, got '...'`` appended."""
    return PydanticCustomError(COMPLETE, text)


def problem_lines(lines: list[str]) -> PydanticCustomError:
    """An error made of finished problem lines, each already naming its variable."""
    return PydanticCustomError(PROBLEMS, "{problems}", {"problems": "\n".join(lines)})


# --- markers read by the loader ----------------------------------------------------------------


@dataclass(frozen=True)
class Required:
    """What to say when the field has no value at all (default: ``required``)."""

    text: str


@dataclass(frozen=True)
class Fallback:
    """Other variables (outside ROTATOR_*) whose value is the default, first one set wins."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class Shown:
    """How ``--help`` shows the default when the value alone would mislead (computed at run
    time, required, or required only with another setting)."""

    text: str


@dataclass(frozen=True)
class NotWith:
    """Setting this variable together with ``other`` (a field name) is a problem: ``why``."""

    other: str
    why: str


@dataclass(frozen=True)
class NotAVariable:
    """The field is not read from any variable (it is computed, or comes from a file)."""


# --- booleans, lists, words --------------------------------------------------------------------


def _parse_bool(value: object) -> object:
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError("must be one of true, false, yes, no, 1, 0")
    return value


def _split_patterns(value: object) -> object:
    """A comma-separated string (a variable) or a list (the workspaces file) into a tuple."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    if isinstance(value, list | tuple):
        return tuple(
            item.strip() if isinstance(item, str) else item
            for item in value
            if not isinstance(item, str) or item.strip()
        )
    return value


def _at_least_one(patterns: tuple[str, ...]) -> tuple[str, ...]:
    if not patterns:
        raise ValueError("must list at least one glob pattern")
    return patterns


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _split_words(value: object) -> object:
    """A command line split into words as a POSIX shell would (never run through one)."""
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:  # "No closing quotation", "No escaped character"
            raise ValueError(f"cannot be split into words as a POSIX shell would: {exc}") from None
    if isinstance(value, list):
        return tuple(value)
    return value


def _a_program(words: tuple[str, ...]) -> tuple[str, ...]:
    if not words or not words[0]:
        raise ValueError("must name a program (and its arguments)")
    return words


Bool = Annotated[bool, BeforeValidator(_parse_bool)]
Patterns = Annotated[tuple[str, ...], BeforeValidator(_split_patterns)]
SomePatterns = Annotated[Patterns, AfterValidator(_at_least_one)]
Command = Annotated[tuple[str, ...], BeforeValidator(_split_words), AfterValidator(_a_program)]


#: Put before a Literal of lower-case words: accepts any letter case and surrounding space.
Lowered = BeforeValidator(_lower)


# --- names -------------------------------------------------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
_WORKSPACE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
_HOST_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_HOST_LABEL}(\.{_HOST_LABEL})*$")


def _check_dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(
            "must be a Kubernetes namespace name: lower-case letters, digits and '-', "
            "at most 63, starting and ending with a letter or digit"
        )
    return value


def check_dns_subdomain(value: str) -> str:
    if not _DNS_SUBDOMAIN.match(value):
        raise ValueError(
            "must be a Kubernetes object name: lower-case letters, digits, '-' and '.', "
            "at most 253, starting and ending with a letter or digit"
        )
    return value


def _check_workspace_name(value: str) -> str:
    if not _WORKSPACE_NAME.match(value):
        # Part of a Lease's name and of a folder name: a DNS label, shorter to leave room.
        raise ValueError(
            "must be lower-case letters, digits and '-' (not first or last), at most 40"
        )
    return value


def _check_host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _HOSTNAME.match(value):
            raise ValueError("must be an IP address or a host name (no scheme, no port)") from None
    return value


def _check_printable_ascii(value: str) -> str:
    if not value.isascii() or not value.isprintable():
        # Sent as an HTTP header value, which carries only visible ASCII and spaces.
        raise ValueError("must be printable ASCII: it is sent as an HTTP header")
    return value


DnsLabel = Annotated[str, AfterValidator(_check_dns_label)]
WorkspaceName = Annotated[str, AfterValidator(_check_workspace_name)]
Host = Annotated[str, AfterValidator(_check_host)]
HeaderText = Annotated[str, AfterValidator(_check_printable_ascii)]


# --- credentials -------------------------------------------------------------------------------


def header_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be sent as a credential in an HTTP header, or None when it can.

    A credential is one token of visible ASCII: no space, control character, non-ASCII letter
    or byte-order mark (an editor's), and not the header's own ``Bearer`` scheme word. The text
    never quotes the value.
    """
    if value.startswith("\ufeff"):
        return "starts with a byte-order mark: save the file without one"
    if value[:7].lower() == "bearer ":
        return "must be the key alone, without a 'Bearer ' prefix"
    if any(ch.isspace() for ch in value):
        return "must not contain white space (a credential is one word)"
    if not value.isascii():
        return "must be ASCII: an HTTP header cannot carry other characters"
    if not value.isprintable():
        return "must not contain control characters"
    return None


def _check_header_secret(value: Any) -> Any:
    if value is None:
        return value
    problem = header_value_problem(value.get_secret_value())
    if problem is not None:
        raise ValueError(problem)
    return value


HeaderSafe = AfterValidator(_check_header_secret)


# --- URLs --------------------------------------------------------------------------------------


def _split_url(value: str) -> SplitResult:
    """The URL's parts; ValueError unless it is http(s) with a host (and a valid port).

    White space, control characters and non-ASCII letters are refused, not percent-encoded as
    an HTTP client would: in a URL someone typed they are a mistake (``http://host :8080``
    would otherwise become a host named ``host%20``, and a pass fail to connect).
    """
    if not value.isascii() or not value.isprintable() or any(ch.isspace() for ch in value):
        raise ValueError(
            "must be an http(s) URL without white space, control characters or non-ASCII "
            "letters (percent-encode them)"
        )
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError on a port that is not a number in range
    except ValueError:
        raise ValueError("must be an http(s) URL with a host") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host")
    try:
        _check_host(parts.hostname)
    except ValueError:
        raise ValueError(
            f"must be an http(s) URL with a valid host, not {parts.hostname!r}"
        ) from None
    return parts


def _https_unless_loopback(value: str, why: str) -> str:
    parts = _split_url(value)
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"must not contain a user name or password ({why})")
    if parts.scheme != "https" and not is_loopback_host(parts.hostname or ""):
        raise ValueError("must be https unless the host is loopback")
    return value.rstrip("/")


def _check_api_url(value: str) -> str:
    # The rotator's own admin key travels in every request: never in clear text off-host.
    return _https_unless_loopback(value, "the API takes its key in a header")


def _check_secure_url(value: str) -> str:
    # Vault tokens and AWS-signed secret values travel to these: never in clear text off-host.
    return _https_unless_loopback(value, "credentials are never part of a URL")


def _check_pushgateway_url(value: str) -> str:
    parts = _split_url(value)
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "must not contain a user name or password: the URL is shown by check-config and in "
            "logs; put basic auth in a proxy in front of the gateway instead"
        )
    return value.rstrip("/")


ApiUrl = Annotated[str, AfterValidator(_check_api_url)]
SecureUrl = Annotated[str, AfterValidator(_check_secure_url)]
PushgatewayUrl = Annotated[str, AfterValidator(_check_pushgateway_url)]


# --- name templates ----------------------------------------------------------------------------

PLACEHOLDERS = ("workspace", "credential")


def template_literals(template: str) -> list[str]:
    """The literal parts of a name template; ValueError unless its only placeholders are
    ``{workspace}`` and ``{credential}``, written plainly."""
    literals: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        raise ValueError(
            "is not a valid name template: write braces only as {workspace} or {credential}"
        ) from None
    for literal, field, spec, conversion in parsed:
        literals.append(literal)
        if field is None:
            continue
        if field not in PLACEHOLDERS or spec or conversion:
            written = (
                field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            )
            raise ValueError(
                f"may use only the placeholders {{workspace}} and {{credential}}, not {{{written}}}"
            )
    return literals


def name_template(
    allowed: str, allowed_text: str, *, per_credential: bool = False
) -> AfterValidator:
    """The check of a name template whose literal text may hold only ``allowed`` characters.

    ``per_credential``: the template must hold ``{credential}``, for a sink that keeps each
    credential in a place of its own (without it, every credential would share one, and the
    sink refuses to start). A credential route's target may name one fixed place (validated
    with the context ``{"target": True}``): the route's name is then one credential's, which
    the workspaces file's checks see to.
    """
    pattern = re.compile(allowed)

    def check(value: str, info: ValidationInfo) -> str:
        if not value:
            raise ValueError("must not be empty")
        for literal in template_literals(value):
            if literal and not pattern.fullmatch(literal):
                raise ValueError(f"may hold only {allowed_text} besides its placeholders")
        target = isinstance(info.context, dict) and info.context.get("target") is True
        if per_credential and not target and "{credential}" not in value:
            raise ValueError(
                "must contain {credential}: else every credential would share one place"
            )
        return value

    return AfterValidator(check)


def _check_path_segments(value: str) -> str:
    # A Vault path: no empty, '.' or '..' segment, which Vault would collapse into another path.
    if any(segment in ("", ".", "..") for segment in value.split("/")):
        raise ValueError("must not have an empty, '.' or '..' segment")
    return value


PathSegments = AfterValidator(_check_path_segments)


def _strip_slashes(value: object) -> object:
    return value.strip().strip("/") if isinstance(value, str) else value


Slashless = BeforeValidator(_strip_slashes)

WorkloadKind = Literal["Deployment", "StatefulSet", "DaemonSet"]
