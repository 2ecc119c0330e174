"""The settings of telling people and machines: ROTATOR_NOTIFY_URLS, ROTATOR_NOTIFY_ON,
ROTATOR_WEBHOOK_SECRET; how each is parsed, checked, and shown with its secret parts redacted.

An Apprise URL carries its credentials anywhere: in the user info (``mailto://user:pass@host``),
in the host (``slack://TokenA/TokenB/TokenC``: no host at all, three tokens), in the path
(``json://host/hook/TOKEN``) or in the query (``?token=...``, ``?-X-Api-Key=...``). Apprise's own
"privacy" form keeps a path token and a header argument whole, and the first and last letter of
the others, so :func:`redacted_notify_url` is stricter: only the scheme, a host that is one (a
dotted name, an address, ``localhost``) with its port, and the names of query arguments are
shown; everything else is ``****``.

Apprise is imported only when ROTATOR_NOTIFY_URLS is set (extra ``notify``); it must accept
each URL now, so that a typo is exit 2 at start rather than a message lost after a pass. It must
not know how the settings are used: nothing is sent from here.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import re
import warnings
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, SecretStr

from rotator.settings._values import complete

__all__ = [
    "NOTIFY_ON_CHOICES",
    "NotifyOn",
    "NotifyUrl",
    "NotifyUrls",
    "WebhookSecret",
    "apprise_module",
    "redacted_notify_url",
]

#: What ROTATOR_NOTIFY_ON may name (rotator.events says which events each selects).
NOTIFY_ON_CHOICES: Final = ("failure", "rotation", "leak", "all")
_MASK: Final = "****"
#: Query arguments whose values say where a message goes or how, never a credential: shown.
_SHOWN_ARGUMENTS: Final = frozenset({"to", "cc", "bcc", "from", "smtp", "format", "mode"})
_MISSING_EXTRA: Final = "needs the notify extra (Apprise): pip install 'key-rotator[notify]'"


def apprise_module() -> Any:
    """Apprise, imported now, with its own logging silenced: its log lines quote URLs with
    parts of their tokens, and the rotator logs what it sends itself. ImportError names the
    extra that brings it."""
    with warnings.catch_warnings():
        # Apprise loads its plugins on first use; one of them imports the standard library's
        # deprecated imghdr (a DeprecationWarning that is Apprise's to fix, not ops' to read).
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import apprise  # noqa: PLC0415 - the optional extra, only when configured
        except ImportError:
            raise ImportError(_MISSING_EXTRA) from None
        manager: Any = apprise.manager_plugins.NotificationManager  # untyped; a singleton
        manager().load_modules()
    quiet = logging.getLogger("apprise")
    quiet.propagate = False
    quiet.handlers = [logging.NullHandler()]
    quiet.setLevel(logging.CRITICAL + 1)
    return apprise


class NotifyUrl(SecretStr):
    """One Apprise URL: a secret (its repr and ``str`` are masked) that knows how it may be
    shown (``shown``, what check-config prints)."""

    @property
    def shown(self) -> str:
        return redacted_notify_url(self.get_secret_value())


def _looks_like_a_host(netloc_host: str) -> bool:
    if netloc_host == "localhost" or "." in netloc_host:
        return bool(re.fullmatch(r"[A-Za-z0-9.-]+", netloc_host))
    try:
        ipaddress.ip_address(netloc_host.strip("[]"))
    except ValueError:
        return False
    return True


def redacted_notify_url(url: str) -> str:
    """``url`` with every part that may be a credential replaced by ``****``: the user info,
    a "host" that is not one (a token), each path segment, and the values of the query's
    arguments (but those of :data:`_SHOWN_ARGUMENTS`)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return f"{url.split('://', 1)[0]}://{_MASK}" if "://" in url else _MASK
    netloc = parts.netloc.rpartition("@")[2]
    host = netloc.rsplit(":", 1)[0] if port is not None else netloc
    shown_host = netloc if host and _looks_like_a_host(host) else (_MASK if host else "")
    user = f"{_MASK}@" if "@" in parts.netloc else ""
    path = "/".join(_MASK if segment else "" for segment in parts.path.split("/"))
    query = "&".join(
        f"{name}={value if name.lower() in _SHOWN_ARGUMENTS else _MASK}" if equals else _MASK
        for name, equals, value in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    return f"{parts.scheme}://{user}{shown_host}{path}" + (f"?{query}" if query else "")


def _split_notify_urls(value: object) -> object:
    """ROTATOR_NOTIFY_URLS' text into URLs: separated by spaces or commas (a comma inside a
    URL's query, ``?to=a@x.org,b@x.org``, stays in it: a new URL starts with ``scheme://``)."""
    if not isinstance(value, str):
        return value
    urls: list[str] = []
    for word in re.split(r"\s+", value.strip()):
        pieces = re.split(r",(?=[A-Za-z][A-Za-z0-9+.-]*://)", word)
        urls.extend(piece.strip(",") for piece in pieces if piece.strip(","))
    return tuple(urls)


def _check_notify_urls(urls: tuple[SecretStr, ...]) -> tuple[NotifyUrl, ...]:
    if not urls:
        return ()
    try:
        apprise = apprise_module()
    except ImportError as exc:
        raise complete(str(exc)) from None
    refused = []
    for url in urls:
        text = url.get_secret_value()
        if not apprise.Apprise().add(text):
            refused.append(redacted_notify_url(text))
    if refused:
        raise complete(
            "Apprise cannot use "
            + ", ".join(refused)
            + " (an unknown service, or a URL its service does not accept: see "
            "https://github.com/caronc/apprise/wiki)"
        )
    return tuple(NotifyUrl(url.get_secret_value()) for url in urls)


def _split_words(value: object) -> object:
    if isinstance(value, str):
        return tuple(word.strip().lower() for word in value.split(",") if word.strip())
    return value


def _check_notify_on(words: tuple[str, ...]) -> tuple[str, ...]:
    wrong = [word for word in words if word not in NOTIFY_ON_CHOICES]
    if wrong or not words:
        raise complete(
            "must be a comma-separated list of "
            + ", ".join(NOTIFY_ON_CHOICES)
            + (f"; {', '.join(repr(w) for w in wrong)} is not one" if wrong else "")
        )
    return tuple(dict.fromkeys(words))


def _check_webhook_secret(value: SecretStr | None) -> SecretStr | None:
    """``whsec_`` and the base64 of at least one byte, as Standard Webhooks defines it; the
    text never quotes the value."""
    if value is None:
        return value
    text = value.get_secret_value()
    if not text.startswith("whsec_"):
        raise complete("must start with whsec_ (a Standard Webhooks secret: whsec_ + base64)")
    try:
        key = base64.b64decode(text.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise complete("must be whsec_ followed by base64 (A-Z, a-z, 0-9, +, /, =)") from None
    if not key:
        raise complete("must be whsec_ followed by the base64 of the key (it is empty)")
    return value


NotifyUrls = Annotated[
    tuple[SecretStr, ...],
    BeforeValidator(_split_notify_urls),
    AfterValidator(_check_notify_urls),
]
NotifyOn = Annotated[
    tuple[str, ...], BeforeValidator(_split_words), AfterValidator(_check_notify_on)
]
WebhookSecret = Annotated[SecretStr | None, AfterValidator(_check_webhook_secret)]
