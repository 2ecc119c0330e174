"""The connection to a Kubernetes API server, shared by the Secret sink and the Lease lock.

Responsible for: importing lightkube (a typed Kubernetes client on httpx) lazily (a missing extra
is a ``ConfigError`` that names the ``pip install``); loading its configuration with lightkube's
own loaders, never hand-written auth (an explicit kubeconfig, else the pod's service account,
else ``KUBECONFIG`` or ``~/.kube/config``); a :class:`Connection` whose every request has a
deadline as a whole (:mod:`rotator.deadline`, as the API client's requests have), whose reads
that got no answer are retried twice and whose writes never are; the namespace a pod runs in;
names and label values the API accepts; and sorting the client's exceptions into a few
:class:`Failure` kinds, with a message that names the server and the object, never a token or a
secret.

Configuration: a kubeconfig's token, token file, client certificate, basic auth or exec plugin
(``client.authentication.k8s.io/v1beta1``) is used as lightkube reads it. ``KUBECONFIG`` may
list several files (``:``-separated); they are merged as kubectl merges them: for each cluster,
user and context name, and for ``current-context``, the first file that sets it wins, and a
relative path is relative to the file it came from. In a pod, the service-account token is
read from its file, and read again when the API answers 401 (the kubelet rotates it).

Proxies: ``HTTPS_PROXY``/``NO_PROXY`` are honoured as kubectl honours them, except for a
loopback API server (a ``kubectl proxy`` or a test's stand-in), which is never reached
through a proxy.

It knows nothing of credentials, records, sinks or locks: each of those maps a ``Failure`` to
its own errors. Only the Secret sink (:mod:`rotator.sinks.kubernetes`), the Lease lock
(:mod:`rotator.locks.lease`) and the Kubernetes Events channel (:mod:`rotator.kube_events`)
import it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import urlsplit

from rotator.deadline import enforce_deadlines, request_deadline
from rotator.errors import ConfigError
from rotator.models import is_loopback_host, utc

if TYPE_CHECKING:
    import httpx
    from lightkube import Client
    from lightkube.config.kubeconfig import SingleConfig

_T = TypeVar("_T")

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
# kubeconfig fields that name files, relative to the kubeconfig they are in.
_PATH_FIELDS: Final = {
    "cluster": ("certificate-authority",),
    "user": ("client-certificate", "client-key", "tokenFile"),
}


def load_client_library(setting: str, what: str) -> ModuleType:
    """The ``lightkube`` package, imported now; ConfigError naming ``setting`` when absent."""
    try:
        import lightkube  # noqa: PLC0415 - the optional extra is imported only when used
    except ImportError as exc:
        raise ConfigError([f"{setting}: {what} needs its extra: {INSTALL_HINT}"]) from exc
    return lightkube


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


#: The workloads the rotator restarts (and records rollout Events on).
WORKLOAD_KINDS: Final = ("Deployment", "StatefulSet", "DaemonSet")


def workload_resource(kind: str) -> Any:
    """lightkube's resource class of a workload kind (one of WORKLOAD_KINDS)."""
    from lightkube.resources.apps_v1 import DaemonSet, Deployment, StatefulSet  # noqa: PLC0415

    return {"Deployment": Deployment, "StatefulSet": StatefulSet, "DaemonSet": DaemonSet}[kind]


def micro_time(value: datetime) -> datetime:
    """``value`` as this client must send a MicroTime (a Lease's times, an Event's time).

    The client writes datetimes with ``isoformat()``, which drops the fraction when it is zero,
    and the API server reads a MicroTime only with exactly six fractional digits (a 400
    otherwise): a whole second is moved on by one microsecond.
    """
    value = utc(value)
    return value if value.microsecond else value.replace(microsecond=1)


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


def server_of(url: str) -> str:
    """The API server's URL as messages show it: scheme, host and port, no user info."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


@dataclass(frozen=True)
class ClusterConfig:
    """Where the API server is and how to authenticate to it, loaded once."""

    #: lightkube's configuration of one context.
    config: SingleConfig = field(repr=False)
    #: The server's URL as messages show it.
    server: str
    #: What it was loaded from (a kubeconfig path, or the service account's folder).
    source: str
    setting: str


def load_configuration(
    kubeconfig: Path | None,
    *,
    setting: str,
    what: str,
    service_account_dir: Path = SERVICE_ACCOUNT_DIR,
) -> ClusterConfig:
    """The client configuration: where the API server is and how to authenticate to it.

    Explicit ``kubeconfig`` first; else the pod's service account when its token is mounted;
    else ``KUBECONFIG`` (a ``:``-separated list, merged as kubectl merges it) or
    ``~/.kube/config``. A configuration that cannot be loaded is a ConfigError naming
    ``setting``.
    """
    load_client_library(setting, what)
    from lightkube import ConfigError as LightkubeConfigError  # noqa: PLC0415 - optional extra
    from lightkube.config.kubeconfig import KubeConfig  # noqa: PLC0415
    from yaml import YAMLError  # noqa: PLC0415 - lightkube reads kubeconfigs with PyYAML

    source: str
    try:
        if kubeconfig is not None:
            source = str(kubeconfig)
            if not kubeconfig.is_file():
                raise ConfigError([f"{setting}: {kubeconfig} is not a file"])
            loaded = KubeConfig.from_file(kubeconfig)
        elif in_cluster(service_account_dir):
            source = f"the service account in {service_account_dir}"
            if not os.environ.get("KUBERNETES_SERVICE_HOST"):
                raise ConfigError([f"{setting}: in a pod, but KUBERNETES_SERVICE_HOST is not set"])
            loaded = KubeConfig.from_service_account(service_account_dir)
        else:
            paths = os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
            source = paths
            files = [Path(p) for p in paths.split(os.pathsep) if p and Path(p).is_file()]
            if not files:
                raise ConfigError(
                    [
                        f"{setting}: no Kubernetes configuration: no service-account token in "
                        f"{service_account_dir} (not in a pod), and no kubeconfig at {paths}"
                    ]
                )
            loaded = (
                KubeConfig.from_file(files[0])
                if len(files) == 1
                else KubeConfig.from_dict(_merged(files), fname=files[0])
            )
        config = loaded.get()
    except (LightkubeConfigError, YAMLError, OSError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError([f"{setting}: cannot load {source}: {_config_problem(exc)}"]) from exc
    if config is None or config.user is None:
        raise ConfigError([f"{setting}: cannot load {source}: its context names no user"])
    return ClusterConfig(config, server_of(config.cluster.server), source, setting)


def _merged(files: list[Path]) -> dict[str, Any]:
    """Several kubeconfig files as one, as kubectl merges them (the first to set a name wins)."""
    import yaml  # noqa: PLC0415 - with lightkube, only when several files are listed

    merged: dict[str, Any] = {"clusters": [], "users": [], "contexts": []}
    for path in files:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(document, dict):
            raise TypeError(f"{path} is not a mapping")
        if "current-context" not in merged and document.get("current-context"):
            merged["current-context"] = document["current-context"]
        for section, key in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            known = {entry["name"] for entry in merged[section]}
            for entry in document.get(section) or []:
                if entry["name"] in known:
                    continue
                body = dict(entry.get(key) or {})
                for name in _PATH_FIELDS.get(key, ()):
                    if body.get(name) and not Path(body[name]).is_absolute():
                        body[name] = str(path.parent / body[name])
                merged[section].append({"name": entry["name"], key: body})
                known.add(entry["name"])
    return merged


def _config_problem(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no {exc.args[0]!r} where one is needed"
    return _first_line(str(exc)) or type(exc).__name__


class Connection:
    """One lightkube client (its own connection pool) on a loaded configuration; close it.

    :meth:`call` runs one API call under a deadline, retries it when it is a read that got no
    answer, and returns the call's result or its :class:`Failure`.
    """

    def __init__(self, cluster: ClusterConfig, *, timeout_seconds: float) -> None:
        import httpx  # noqa: PLC0415 - a core dependency, imported with the client
        from lightkube import Client  # noqa: PLC0415 - optional extra

        self.server = cluster.server
        self._timeout = timeout_seconds
        url = urlsplit(cluster.config.cluster.server)
        loopback = is_loopback_host(url.hostname or "")
        config = cluster.config
        if url.scheme == "http" and loopback:
            # Plain http on loopback (kubectl proxy, a test's stand-in), never through a proxy:
            # no TLS can happen, so lightkube need not load a CA bundle for each connection
            # (tens of milliseconds, and memory, at every pass).
            config = config._replace(cluster=replace(config.cluster, insecure=True))
        try:
            self.client: Client = Client(
                config,
                timeout=httpx.Timeout(timeout_seconds),
                # A typed object, not a lazy one: an answer the models cannot read fails in
                # the call (a Failure), not later where the sink or the lock reads a field.
                lazy=False,
                # A loopback API server must never be reached through a proxy from the
                # environment; kubectl honours HTTPS_PROXY for any other.
                trust_env=not loopback,
            )
        except (OSError, ssl.SSLError, ValueError) as exc:
            # A CA or client-certificate file that cannot be read.
            raise ConfigError(
                [f"{cluster.setting}: cannot load {cluster.source}: {_config_problem(exc)}"]
            ) from exc
        http = _http_client_of(self.client)
        http.event_hooks["response"] = [_plain_unless_status]
        enforce_deadlines(http)

    def call(
        self,
        doing: str,
        call: Callable[[], _T],
        *,
        read: bool = False,
        redact: Iterable[str] = (),
    ) -> _T | Failure:
        """``call()``'s result, or the Failure of ``doing`` (other exceptions propagate).

        Each attempt must be over within the timeout, as a whole. A read (``read=True``) that
        got no answer is tried again, at most twice, after 0.2 s then 0.4 s.
        """
        attempt = 0
        while True:
            try:
                with request_deadline(self._timeout):
                    return call()
            except Exception as exc:
                failure = classify(exc, doing=doing, server=self.server, redact=redact)
                if failure is None:
                    raise
                no_answer = failure.status is None and failure.kind is FailureKind.UNAVAILABLE
                if not (read and no_answer) or attempt >= _READ_RETRIES:
                    return failure
            time.sleep(_RETRY_BACKOFF_SECONDS * 2**attempt)
            attempt += 1

    def list(
        self,
        doing: str,
        resource: Any,
        *,
        namespace: str,
        labels: dict[str, Any],
        chunk_size: int,
    ) -> list[Any] | Failure:
        """Every object of ``resource`` in ``namespace`` with ``labels``, page by page.

        lightkube asks for the next page while it is iterated: each step gets a deadline of its
        own, so each page's request has the whole timeout. A page that got no answer starts the
        listing again (a read, retried as :meth:`call` retries reads).
        """

        def everything() -> list[Any]:
            pages = iter(
                self.client.list(
                    resource, namespace=namespace, labels=labels, chunk_size=chunk_size
                )
            )
            items: list[Any] = []
            while True:
                with request_deadline(self._timeout):
                    item = next(pages, _END)
                if item is _END:
                    return items
                items.append(item)

        return self.call(doing, everything, read=True)

    def close(self) -> None:
        self.client.close()


#: The end of an iteration, as ``next`` returns it.
_END: Final = object()


def _http_client_of(client: Client) -> httpx.Client:
    """The httpx client under lightkube's: it has no public handle, so this reaches for it
    and refuses to start (rather than run without deadlines) should a release move it."""
    import httpx  # noqa: PLC0415

    http = getattr(getattr(client, "_client", None), "_client", None)
    if not isinstance(http, httpx.Client):
        raise RuntimeError(  # noqa: TRY004 # pragma: no cover - only a different lightkube
            "this lightkube version hides its httpx client: cannot enforce request deadlines"
        )
    return http


def _plain_unless_status(response: httpx.Response) -> None:
    """Let lightkube see an error answer as JSON only when it is a ``Status`` object.

    lightkube reads every ``application/json`` error body as a Status and fails with an
    exception of its own (or a KeyError, without a Content-Type) on anything else; a proxy's
    HTML page or a bare JSON list is an HTTP error like any other, so its Content-Type is
    made ``text/plain`` before lightkube looks.
    """
    if response.status_code < 400:
        return
    media = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if media == "application/json":
        response.read()
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        if isinstance(body, dict):
            return
    response.headers["Content-Type"] = "text/plain"


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
    import httpx  # noqa: PLC0415
    from lightkube import ApiError  # noqa: PLC0415 - optional extra
    from lightkube import ConfigError as LightkubeConfigError  # noqa: PLC0415

    where = f"kubernetes API {server}: cannot {doing}"

    def fail(kind: FailureKind, status: int | None, message: str) -> Failure:
        return Failure(kind, status, message, exc)

    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        reason, detail = exc.response.reason_phrase, ""
        if isinstance(exc, ApiError):
            reason = str(exc.status.reason or reason)
            detail = _cut(str(exc.status.message or ""))
        detail = _redact(detail, redact)
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
    if isinstance(exc, httpx.TransportError | OSError):
        if _caused_by(exc, ssl.SSLError):
            return fail(FailureKind.UNAVAILABLE, None, f"{where}: TLS failed")
        # httpx's messages may name the URL and the socket error; the type alone says enough.
        return fail(FailureKind.UNAVAILABLE, None, f"{where}: no answer ({type(exc).__name__})")
    if isinstance(exc, LightkubeConfigError):
        # An exec plugin that failed, or a token file gone: lightkube's message goes on with
        # the plugin's standard error, which may hold anything; only its head is kept.
        head = _first_line(str(exc)).split(":", 1)[0]
        return fail(FailureKind.UNAUTHORIZED, None, f"{where}: credentials: {head}")
    if isinstance(exc, ValueError | TypeError | KeyError | AttributeError) and _raised_in(
        exc, ("lightkube", "json", "httpx")
    ):
        # A body the client's models cannot read (or no JSON at all).
        return fail(FailureKind.OTHER, None, f"{where}: unexpected answer ({type(exc).__name__})")
    return None


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _raised_in(exc: BaseException, packages: tuple[str, ...]) -> bool:
    """Whether ``exc`` was raised inside one of ``packages`` (not by the rotator's own code)."""
    traceback = exc.__traceback__
    module = None
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__")
        traceback = traceback.tb_next
    return isinstance(module, str) and module.split(".", 1)[0] in packages


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "**********")
    return text


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _first_line(text: str) -> str:
    return _cut(text.strip().splitlines()[0] if text.strip() else "")
