"""The connection to a Kubernetes API server, shared by the Secret sink and the Lease lock.

Responsible for: importing the official ``kubernetes`` client lazily (a missing extra is a
``ConfigError`` that names the ``pip install``); loading its configuration with the library's
own loaders, never hand-written auth (an explicit kubeconfig, else the pod's service account,
else ``KUBECONFIG`` or ``~/.kube/config``); the namespace a pod runs in; names and label values
the API accepts; and sorting the client's exceptions into a few :class:`Failure` kinds, with a
message that names the server and the object, never a token or a secret.

It knows nothing of credentials, records, sinks or locks: each of those maps a ``Failure`` to
its own errors. Only the Secret sink (:mod:`rotator.sinks.kubernetes`) and the Lease lock
(:mod:`rotator.locks.lease`) import it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from rotator.errors import ConfigError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, Configuration

#: Where Kubernetes mounts a pod's service-account token, CA bundle and namespace.
SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_NAMESPACE: Final = "default"
INSTALL_HINT: Final = "pip install 'key-rotator[kubernetes]'"

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_NOT_DNS = re.compile(r"[^a-z0-9]+")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")
MAX_NAME_LENGTH: Final = 253
MAX_LABEL_VALUE_LENGTH: Final = 63
# A Status message is a sentence or two; a longer one is cut (it could quote a request body).
_MAX_MESSAGE: Final = 300
# Read retries only: a write that may have landed is never sent twice (the caller settles it).
_READ_RETRIES: Final = 2
_RETRY_BACKOFF_SECONDS: Final = 0.2


def load_client_library(setting: str, what: str) -> Any:
    """The ``kubernetes`` package, imported now; ConfigError naming ``setting`` when absent."""
    try:
        import kubernetes  # noqa: PLC0415 - the optional extra is imported only when used
    except ImportError as exc:
        raise ConfigError([f"{setting}: {what} needs its extra: {INSTALL_HINT}"]) from exc
    return kubernetes


def is_dns_subdomain(name: str) -> bool:
    """Whether ``name`` is a valid object name (a DNS-1123 subdomain, at most 253 characters)."""
    return len(name) <= MAX_NAME_LENGTH and _DNS1123_SUBDOMAIN.match(name) is not None


def is_dns_label(name: str) -> bool:
    """Whether ``name`` is a valid namespace name (a DNS-1123 label, at most 63 characters)."""
    return len(name) <= MAX_LABEL_VALUE_LENGTH and re.fullmatch(_DNS1123_LABEL, name) is not None


def dns_safe(value: str) -> str:
    """``value`` as a piece of an object name: lower case, every run of other characters one
    ``-``, no ``-`` at either end (it may be empty)."""
    return _NOT_DNS.sub("-", value.lower()).strip("-")


def fit_name(name: str, limit: int = MAX_NAME_LENGTH) -> str:
    """``name`` trimmed of ``-``/``.`` at its ends and, when longer than ``limit``, cut and
    suffixed with a digest of the whole, so that distinct long names stay distinct."""
    name = name.strip("-.")
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: limit - len(digest) - 1].rstrip('-.')}-{digest}"


def label_value(value: str) -> str:
    """``value`` as a valid label value: itself when valid, else a readable part and a digest.

    Label values are at most 63 characters of ``[A-Za-z0-9_.-]``, alphanumeric at both ends;
    a value that is not one keeps its exact form in an annotation, the label only selects.
    """
    if len(value) <= MAX_LABEL_VALUE_LENGTH and _LABEL_VALUE.match(value):
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:10]
    readable = _NOT_LABEL.sub("-", value)[: MAX_LABEL_VALUE_LENGTH - len(digest) - 1]
    readable = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", readable)
    return f"{readable}-{digest}" if readable else digest


def in_cluster(service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> bool:
    """Whether a service-account token is mounted (the process runs in a pod with one)."""
    return (service_account_dir / "token").is_file()


def own_namespace(service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> str:
    """The pod's own namespace when it runs in one, else ``default``."""
    try:
        namespace = (service_account_dir / "namespace").read_text(encoding="utf-8").strip()
    except OSError:
        return DEFAULT_NAMESPACE
    return namespace or DEFAULT_NAMESPACE


def new_api_client(configuration: Configuration) -> ApiClient:
    """A client (its own connection pool) on a loaded configuration; close it after use."""
    from kubernetes.client import ApiClient  # noqa: PLC0415 - optional extra

    return ApiClient(configuration)


def server_of(configuration: Configuration) -> str:
    """The API server's URL as messages show it: scheme, host and port, no user info."""
    parts = urlsplit(str(configuration.host))
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def load_configuration(
    kubeconfig: Path | None,
    *,
    setting: str,
    what: str,
    service_account_dir: Path = SERVICE_ACCOUNT_DIR,
) -> Configuration:
    """The client configuration: where the API server is and how to authenticate to it.

    Explicit ``kubeconfig`` first; else the pod's service account when its token is mounted
    (the library refreshes the token from the file as the kubelet rotates it); else
    ``KUBECONFIG`` (a ``:``-separated list, as kubectl reads it) or ``~/.kube/config``. A
    configuration that cannot be loaded is a ConfigError naming ``setting``.
    """
    library = load_client_library(setting, what)
    from kubernetes.client import Configuration  # noqa: PLC0415 - optional extra
    from kubernetes.config import ConfigException  # noqa: PLC0415
    from kubernetes.config.incluster_config import InClusterConfigLoader  # noqa: PLC0415
    from urllib3.util.retry import Retry  # noqa: PLC0415 - the client's transport

    configuration = Configuration()
    source: str
    try:
        if kubeconfig is not None:
            source = str(kubeconfig)
            if not kubeconfig.is_file():
                raise ConfigError([f"{setting}: {kubeconfig} is not a file"])
            library.config.load_kube_config(
                config_file=str(kubeconfig),
                client_configuration=configuration,
                persist_config=False,
            )
        elif in_cluster(service_account_dir):
            source = f"the service account in {service_account_dir}"
            loader = InClusterConfigLoader(  # type: ignore[no-untyped-call]
                token_filename=str(service_account_dir / "token"),
                cert_filename=str(service_account_dir / "ca.crt"),
                try_refresh_token=True,
            )
            loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
        else:
            paths = os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
            source = paths
            if not any(Path(p).is_file() for p in paths.split(os.pathsep) if p):
                raise ConfigError(
                    [
                        f"{setting}: no Kubernetes configuration: no service-account token in "
                        f"{service_account_dir} (not in a pod), and no kubeconfig at {paths}"
                    ]
                )
            library.config.load_kube_config(
                config_file=paths, client_configuration=configuration, persist_config=False
            )
    except ConfigException as exc:
        raise ConfigError([f"{setting}: cannot load {source}: {_first_line(str(exc))}"]) from exc
    configuration.retries = Retry(
        total=_READ_RETRIES,
        connect=_READ_RETRIES,
        read=_READ_RETRIES,
        status=0,
        other=0,
        allowed_methods=frozenset({"GET"}),
        backoff_factor=_RETRY_BACKOFF_SECONDS,
        raise_on_status=False,
    )
    return configuration


class FailureKind(StrEnum):
    """What went wrong with one API call, as the sink and the lock need to tell it apart."""

    #: No answer (refused, reset, timed out, TLS) or a 5xx/429: a write may have landed.
    UNAVAILABLE = "unavailable"
    #: 401: the identity was not accepted.
    UNAUTHORIZED = "unauthorized"
    #: 403: RBAC refused the verb on that resource.
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not-found"
    #: 409 with reason AlreadyExists (a create of an existing name).
    ALREADY_EXISTS = "already-exists"
    #: 409 otherwise: a stale resourceVersion (or another precondition) lost.
    CONFLICT = "conflict"
    #: 400 or 422: the request was refused as malformed or invalid.
    INVALID = "invalid"
    #: An answer the client could not read, or another 4xx.
    OTHER = "other"


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    #: The HTTP status, None without an answer.
    status: int | None
    #: A message naming the server, what was done and why; never a token or a secret.
    message: str
    #: The client's exception, to chain (``raise ... from failure.cause``).
    cause: BaseException | None = field(default=None, repr=False, compare=False)


def classify(
    exc: BaseException, *, doing: str, server: str, redact: Iterable[str] = ()
) -> Failure | None:
    """The failure of ``doing`` (``"update Secret ns/name"``) on ``server``, or None when
    ``exc`` did not come from the client library (a bug: let it propagate)."""
    from kubernetes.client.exceptions import ApiException, OpenApiException  # noqa: PLC0415
    from kubernetes.config import ConfigException  # noqa: PLC0415
    from pydantic import ValidationError  # noqa: PLC0415
    from urllib3.exceptions import HTTPError  # noqa: PLC0415

    where = f"kubernetes API {server}: cannot {doing}"

    def fail(kind: FailureKind, status: int | None, message: str) -> Failure:
        return Failure(kind, status, message, exc)

    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        reason, detail = _status_of(exc)
        detail = _redact(detail, redact)
        if status == 0:
            # The client reports a TLS failure as status 0; nothing was sent.
            return fail(FailureKind.UNAVAILABLE, None, f"{where}: TLS failed")
        text = f"{where}: HTTP {status} {reason}" + (f": {detail}" if detail else "")
        if status == 401:
            return fail(FailureKind.UNAUTHORIZED, status, text)
        if status == 403:
            return fail(FailureKind.FORBIDDEN, status, text)
        if status == 404:
            return fail(FailureKind.NOT_FOUND, status, text)
        if status == 409:
            exists = reason == "AlreadyExists"
            return fail(
                FailureKind.ALREADY_EXISTS if exists else FailureKind.CONFLICT, status, text
            )
        if status in (400, 422):
            return fail(FailureKind.INVALID, status, text)
        if status == 429 or status >= 500:
            return fail(FailureKind.UNAVAILABLE, status, text)
        return fail(FailureKind.OTHER, status, text)
    if isinstance(exc, HTTPError | OSError):
        # urllib3's messages name the URL and the socket error; the type alone says enough.
        return fail(FailureKind.UNAVAILABLE, None, f"{where}: no answer ({type(exc).__name__})")
    if isinstance(exc, ConfigException):
        return fail(
            FailureKind.UNAUTHORIZED, None, f"{where}: credentials: {_first_line(str(exc))}"
        )
    if isinstance(exc, OpenApiException | ValidationError):
        # A body the client's models cannot read (pydantic's ValidationError is a ValueError).
        return fail(FailureKind.OTHER, None, f"{where}: unexpected answer ({type(exc).__name__})")
    return None


def _status_of(exc: Any) -> tuple[str, str]:
    """The Status object's reason and message from an ApiException's body."""
    reason = str(exc.reason or "")
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        return reason, ""
    if not isinstance(body, dict):
        return reason, ""
    return str(body.get("reason") or reason), _cut(str(body.get("message") or ""))


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "**********")
    return text


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _first_line(text: str) -> str:
    return _cut(text.strip().splitlines()[0] if text.strip() else "")
