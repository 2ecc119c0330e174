"""structlog configuration: JSON lines (or console) on standard error, and secret redaction.

Only this module configures structlog. Secrets are kept out at the source (callers log key ids,
never :class:`~rotator.models.Secret` values); the processors here are the second line of
defence: they blank any :class:`Secret`, any field whose name says it holds a credential, and
anything that looks like a bearer token or an ``Authorization`` header.
"""

from __future__ import annotations

import logging as stdlib_logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from rotator.models import Secret

REDACTED = "**********"

#: Field names whose values are credentials whatever they look like.
_SENSITIVE_FIELDS = re.compile(
    r"(secret|token|password|api_?key|authorization|credential_value)$", re.I
)
#: ``Bearer <token>`` and ``Authorization: <anything>`` inside any string.
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
_AUTH_HEADER = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\",}\s]+(\s+[^'\",}\s]+)?")

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def scrub_text(text: str) -> str:
    """``text`` with bearer tokens and Authorization header values blanked."""
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{REDACTED}", text)


def _scrub(value: Any) -> Any:
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {k: REDACTED if _is_sensitive(k) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _is_sensitive(name: object) -> bool:
    return isinstance(name, str) and bool(_SENSITIVE_FIELDS.search(name))


def redact_secrets(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: blank secrets in every field (second line of defence)."""
    for name in list(event_dict):
        value = event_dict[name]
        event_dict[name] = REDACTED if _is_sensitive(name) and value is not None else _scrub(value)
    return event_dict


def configure(
    *, log_format: str = "json", level: str = "info", stream: TextIO | None = None
) -> None:
    """Send structured events to ``stream`` (standard error by default) at ``level`` and above."""
    renderer: structlog.typing.Processor
    if log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            _LEVELS.get(level, stdlib_logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(
            file=stream if stream is not None else sys.stderr
        ),
        cache_logger_on_first_use=False,
    )


def get_logger(**initial: Any) -> structlog.typing.FilteringBoundLogger:
    """A logger bound to ``initial`` context; events are dotted names (``rotation.revoked``)."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(**initial)
    return logger
