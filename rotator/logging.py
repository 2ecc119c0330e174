"""structlog configuration: JSON lines (or console lines on a terminal) on standard error, and
secret redaction.

Only this module configures structlog. Secrets are kept out at the source (callers log key ids,
never :class:`~rotator.models.Secret` values); the processor here is the second line of
defence, run last before rendering (after exceptions are formatted, so a traceback's text is
redacted too). It blanks:

- any :class:`Secret`, wherever it is (nested in dicts, lists, tuples, sets);
- the value of any field whose name says it holds a credential (``api_key``, ``apiKey``,
  ``X-Api-Key``, ``token``, ``secret``, ``secret_id``, ``password``, ``authorization``,
  ``cookie``, ``private_key``, ...; any case, ``-`` or ``_``), at the top level or nested;
- inside any text, a ``Bearer <token>`` (any case), an ``Authorization`` header's value, and
  the value after such a name in ``name=value`` or ``name: value`` form (URLs, reprs, JSON);
- the same inside the text any other object would be rendered as (an exception, bytes, ...).

Names that only mention a secret are kept: ``credential`` (a credential's base name),
``key_id``, ``token_name``, ``secret_sha256``.
"""

from __future__ import annotations

import functools
import logging as stdlib_logging
import re
import sys
from collections.abc import MutableMapping
from datetime import date, datetime, time, timedelta
from enum import Enum
from pathlib import PurePath
from typing import Any, TextIO
from uuid import UUID

import structlog

from rotator.models import Secret

REDACTED = "**********"

#: What a credential's field is called, without its prefix (``access_``, ``X-Vault-``, ...).
_SENSITIVE_NAME = (
    r"(?:api[-_]?key|token|secrets?|secret[-_]?id|secret[-_]?access[-_]?key|password|passwd"
    r"|authorization|cookie|private[-_]?key|credential[-_]?value)"
)
#: Field names whose values are credentials whatever they look like.
_SENSITIVE_FIELDS = re.compile(rf"{_SENSITIVE_NAME}$", re.IGNORECASE)
#: ``Bearer <token>`` inside any string: the token runs to the next space or quote.
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s'\"\\]+")
#: ``Authorization: <scheme> <value>`` inside any string.
_AUTH_HEADER = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\",}\s]+(\s+[^'\",}\s]+)?")
#: ``<sensitive name> = value`` or ``"<sensitive name>": "value"`` inside any string.
_NAMED_VALUE = re.compile(
    rf"(?i)(\b[\w-]*?{_SENSITIVE_NAME}(?:\\?['\"])?\s*[:=]\s*(?:\\?['\"])?)[^\s'\"\\,;&}}\]]+"
)
#: A word every one of the three patterns above needs (same flags): a text without one cannot
#: match any of them, and skips their substitutions (most log values: ids, names, times).
_MAY_HOLD_SECRET = re.compile(rf"(?i)bearer|{_SENSITIVE_NAME}")
#: Deeper than this, a value is not looked into but replaced (a structure referring to itself).
_MAX_DEPTH = 16
_TOO_DEEP = "[too deeply nested]"
#: Values whose rendering cannot carry a secret, kept as they are for the renderer.
_PLAIN = (bool, int, float, datetime, date, time, timedelta, UUID, PurePath, Enum)

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def scrub_text(text: str) -> str:
    """``text`` with bearer tokens, Authorization values and ``secret=value`` values blanked."""
    return substitute_secrets(text) if _MAY_HOLD_SECRET.search(text) else text


def substitute_secrets(text: str) -> str:
    """:func:`scrub_text` without its shortcut: the three substitutions, always run."""
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return _NAMED_VALUE.sub(lambda m: f"{m.group(1)}{REDACTED}", text)


def _is_sensitive(name: object) -> bool:
    return isinstance(name, str) and _sensitive_name(name)


@functools.lru_cache(maxsize=512)
def _sensitive_name(name: str) -> bool:
    """Cached: a process logs the same few dozen field names over and over."""
    return bool(_SENSITIVE_FIELDS.search(name))


def _scrub(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, _PLAIN):
        return value
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, str):
        return scrub_text(value)
    if depth >= _MAX_DEPTH:
        return _TOO_DEEP
    if isinstance(value, dict):
        return {
            scrub_text(k) if isinstance(k, str) else k: _scrub_field(k, v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v, depth + 1) for v in value]
    # Anything else would be rendered by its repr (structlog's JSON fallback and console alike):
    # scrub that text, so an exception's message or a client's headers cannot slip through.
    return scrub_text(repr(value))


def _scrub_field(name: object, value: Any, depth: int) -> Any:
    return REDACTED if _is_sensitive(name) and value is not None else _scrub(value, depth)


def redact_secrets(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: blank secrets in every field (second line of defence)."""
    for name in list(event_dict):
        event_dict[name] = _scrub_field(name, event_dict[name], 0)
    return event_dict


def resolve_format(log_format: str, stream: TextIO) -> str:
    """``json`` or ``console``: ``auto`` is console on a terminal, else JSON (a pod's logs, a
    pipe, a file), so that what log shippers read never changes under them."""
    if log_format != "auto":
        return log_format
    try:
        return "console" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # a closed or unusual stream: the machine format
        return "json"


def configure(
    *,
    log_format: str = "json",
    level: str = "info",
    stream: TextIO | None = None,
    colors: bool = False,
) -> None:
    """Send structured events to ``stream`` (standard error by default) at ``level`` and above.

    ``log_format`` is ``json``, ``console`` or ``auto`` (:func:`resolve_format`); ``colors``
    colours console lines (the caller decides: a terminal, and no NO_COLOR).
    """
    target = stream if stream is not None else sys.stderr
    renderer: structlog.typing.Processor
    if resolve_format(log_format, target) == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=colors)
    else:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            # Exceptions become text first, so that redaction sees (and blanks) their text too.
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            _LEVELS.get(level, stdlib_logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=target),
        cache_logger_on_first_use=False,
    )


def get_logger(**initial: Any) -> structlog.typing.FilteringBoundLogger:
    """A logger bound to ``initial`` context; events are dotted names (``rotation.revoked``)."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(**initial)
    return logger
