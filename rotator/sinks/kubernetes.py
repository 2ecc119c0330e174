"""The Kubernetes sink: one Secret per credential, its metadata in the Secret's annotations.

For credential B of workspace W, the Secret is named by the template (``pm-api-key-{credential}``
by default) with ``{workspace}`` and ``{credential}`` made DNS-1123 safe (lower case, each run of
other characters one ``-``), the whole trimmed and kept within 253 characters; the secret is
``data[<key>]`` (``api-key`` by default), so a pod that mounts the Secret reads it as a file of
that name. Beside it, annotations prefixed ``key-rotator.io/`` hold every
:class:`~rotator.models.SinkRecord` field (times ISO 8601 UTC with ``Z``), the exact credential
and workspace names, and ``record-format`` once a record was written; labels
``app.kubernetes.io/managed-by: key-rotator``, ``key-rotator.io/workspace`` and
``key-rotator.io/credential`` (label-safe forms: a name a label cannot hold is cut and suffixed
with a digest) let :meth:`KubernetesSink.list_credentials` select them. The rotation history is
a Secret of its own, ``<name>.history`` (data ``history``, the JSON document), with the same
labels but no record: annotations on the credential's Secret would move its ``resourceVersion``
under a rotation in flight, and a Secret needs no rights beyond those the sink has.

Compare-and-set: the version token is the Secret's ``resourceVersion``. The first write creates
the Secret (409 AlreadyExists: another writer was first); every later write is one JSON merge
patch carrying the ``resourceVersion`` it was given, which the API server applies only if it is
still the stored one (409 Conflict otherwise), and which leaves every field and data key the
rotator does not own as it is. A Secret of that name without the managed-by label is never taken
over: reading it is a ``SinkMetadataError`` that says how to hand it over.

Consumers: ``restart`` names the workloads (Deployment, StatefulSet, DaemonSet) that read a
credential; :meth:`KubernetesSink.rollout` restarts each as ``kubectl rollout restart`` does (the
pod template annotation ``kubectl.kubernetes.io/restartedAt``) once per delivery and reports when
every replica runs the new template.

API failures become :mod:`rotator.errors` SinkErrors naming the server and the object; never a
token or the secret. The client library is lightkube (typed models on httpx), imported only when
a sink is built; :mod:`rotator.kube` gives each request its deadline and retries reads that got
no answer. This module knows nothing of settings or the engine.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import string
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from rotator.errors import (
    ConfigError,
    SinkConflictError,
    SinkError,
    SinkMetadataError,
    SinkNameError,
    SinkPermissionError,
    SinkUnavailableError,
)
from rotator.kube import (
    SERVICE_ACCOUNT_DIR,
    WORKLOAD_KINDS,
    Connection,
    Failure,
    FailureKind,
    dns_safe,
    fit_name,
    is_dns_label,
    is_dns_subdomain,
    label_value,
    load_configuration,
    own_namespace,
    workload_resource,
)
from rotator.models import Secret, SinkRecord, utc
from rotator.settings.sinks import KubernetesSinkSettings
from rotator.sinks.base import (
    BaseSink,
    RolloutState,
    SinkContext,
    SinkState,
    WorkloadRollout,
    format_time,
    history_from_document,
    history_to_document,
    name_problems,
    parse_time,
    record_from_fields,
)

if TYPE_CHECKING:
    from lightkube.resources.core_v1 import Secret as KubeSecret

_T = TypeVar("_T")

DEFAULT_SECRET_NAME: Final = "pm-api-key-{credential}"  # noqa: S105 - a name, not a secret
DEFAULT_SECRET_KEY: Final = "api-key"  # noqa: S105 - a data key's name
DEFAULT_ROLLOUT_TIMEOUT: Final = timedelta(minutes=30)
DEFAULT_REQUEST_TIMEOUT: Final = timedelta(seconds=10)

ANNOTATION_PREFIX: Final = "key-rotator.io/"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "key-rotator"
WORKSPACE_LABEL: Final = "key-rotator.io/workspace"
CREDENTIAL_LABEL: Final = "key-rotator.io/credential"
CREDENTIAL_ANNOTATION: Final = ANNOTATION_PREFIX + "credential"
WORKSPACE_ANNOTATION: Final = ANNOTATION_PREFIX + "workspace"
#: Present once a record was written: a Secret the rotator created holds a record only then.
RECORD_FORMAT_ANNOTATION: Final = ANNOTATION_PREFIX + "record-format"
RECORD_FORMAT: Final = "1"
#: The rotation history of the credential whose Secret is N is the Secret N.history (data key
#: ``history``: the history document as JSON), annotated with the credential it belongs to.
HISTORY_SUFFIX: Final = ".history"
HISTORY_KEY: Final = "history"
HISTORY_OF_ANNOTATION: Final = ANNOTATION_PREFIX + "history-of"
#: What ``kubectl rollout restart`` sets on the pod template: changing it rolls the pods.
RESTARTED_AT_ANNOTATION: Final = "kubectl.kubernetes.io/restartedAt"

_SETTING = "ROTATOR_SINK"
_NAME_SETTING = "ROTATOR_SINK_KUBERNETES_SECRET_NAME"
_KEY_SETTING = "ROTATOR_SINK_KUBERNETES_SECRET_KEY"
_RESTART_SETTING = "ROTATOR_SINK_KUBERNETES_RESTART"
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_LIST_PAGE: Final = 250

#: SinkRecord field -> annotation name (after the prefix), in the record's order.
_STRING_FIELDS: Final = {
    "key_id": "key-id",
    "key_name": "key-name",
    "previous_key_id": "previous-key-id",
    "pending_key_id": "pending-key-id",
}
_HASH_FIELDS: Final = {
    "secret_sha256": "secret-sha256",
    "previous_secret_sha256": "previous-secret-sha256",
    "pending_secret_sha256": "pending-secret-sha256",
}
_TIME_FIELDS: Final = {
    "expires": "expires",
    "delivered_at": "delivered-at",
    "retire_previous_after": "retire-previous-after",
}
_RECORD_ANNOTATIONS: Final = {**_STRING_FIELDS, **_HASH_FIELDS, **_TIME_FIELDS}


class KubernetesSink(BaseSink):
    """A :class:`~rotator.sinks.base.Sink` writing one Secret per credential in one namespace."""

    can_read_secret = True

    kind = "kubernetes"

    def __init__(
        self,
        *,
        namespace: str | None,
        secret_name_template: str = DEFAULT_SECRET_NAME,
        secret_key: str = DEFAULT_SECRET_KEY,
        workspace: str,
        kubeconfig: Path | None = None,
        restart: Sequence[tuple[str, Sequence[tuple[str, str]]]] = (),
        rollout_timeout: timedelta = DEFAULT_ROLLOUT_TIMEOUT,
        request_timeout: timedelta = DEFAULT_REQUEST_TIMEOUT,
        service_account_dir: Path = SERVICE_ACCOUNT_DIR,
    ) -> None:
        self._workspace = workspace
        self._namespace = namespace or own_namespace(service_account_dir)
        self._template = secret_name_template
        self._secret_key = secret_key
        self._restart = tuple((glob, tuple(workloads)) for glob, workloads in restart)
        self._rollout_timeout = rollout_timeout
        self._check_settings()
        cluster = load_configuration(
            kubeconfig,
            setting=_SETTING,
            what="the kubernetes sink",
            service_account_dir=service_account_dir,
        )
        self._server = cluster.server
        self._kube = Connection(cluster, timeout_seconds=request_timeout.total_seconds())
        # The models' modules load now, with the client, rather than in the first pass's calls.
        from lightkube.resources import apps_v1, core_v1  # noqa: F401, PLC0415

    def __repr__(self) -> str:
        return (
            f"KubernetesSink(server={self._server!r}, namespace={self._namespace!r}, "
            f"secret_name={self._template!r}, secret_key={self._secret_key!r})"
        )

    @property
    def namespace(self) -> str:
        return self._namespace

    def secret_name(self, credential: str) -> str:
        """The name of ``credential``'s Secret (it may be invalid: see :meth:`check_names`)."""
        return secret_name_for(self._template, self._workspace, credential)

    # -- the Sink protocol -------------------------------------------------------------------

    def describe(self) -> str:
        return (
            f"kubernetes:{self._server} namespace {self._namespace}, Secret "
            f"{self._template}, key {self._secret_key}"
        )

    def place_of(self, credential: str) -> str:
        return f"kubernetes:{self.namespace}/{self.secret_name(credential)}"

    def check_names(self, credentials: Collection[str]) -> Mapping[str, str]:
        return name_problems(
            credentials, stored_name=self.secret_name, problem=self._name_problem,
            what="Secret name",
        )  # fmt: skip

    def list_credentials(self) -> Sequence[str]:
        from lightkube.resources.core_v1 import Secret as KubeSecret  # noqa: PLC0415

        items = self._kube.list(
            f"list Secrets in namespace {self._namespace}",
            KubeSecret,
            namespace=self._namespace,
            labels={MANAGED_BY_LABEL: MANAGED_BY, WORKSPACE_LABEL: label_value(self._workspace)},
            chunk_size=_LIST_PAGE,
        )
        if isinstance(items, Failure):
            raise _sink_error(items) from items.cause
        found: set[str] = set()
        for item in items:
            annotations = _strings(item.metadata.annotations if item.metadata else None)
            credential = annotations.get(CREDENTIAL_ANNOTATION)
            if (
                credential
                and RECORD_FORMAT_ANNOTATION in annotations
                and annotations.get(WORKSPACE_ANNOTATION) == self._workspace
            ):
                found.add(credential)
        return sorted(found)

    def read(self, credential: str) -> SinkState:
        name = self._checked_name(credential)
        secret = self._get(credential, name)
        if secret is None:
            return SinkState(record=None, secret_sha256=None, version=None)
        where = f"Secret {self._namespace}/{name}"
        annotations = _strings(secret.metadata.annotations if secret.metadata else None)
        record = _record_from_annotations(annotations, where, credential)
        value = self._decoded(secret, where)
        digest = None if value is None else hashlib.sha256(value).hexdigest()
        return SinkState(
            record=record,
            secret_sha256=digest,
            version=secret.metadata.resourceVersion if secret.metadata else None,
        )

    def read_secret(self, credential: str) -> Secret:
        name = self._checked_name(credential)
        secret = self._get(credential, name)
        where = f"Secret {self._namespace}/{name}"
        value = None if secret is None else self._decoded(secret, where)
        if value is None:
            raise SinkError(f"{where} holds no data[{self._secret_key}]")
        return Secret(value.decode())

    def _decoded(self, secret: Any, where: str) -> bytes | None:
        raw = _strings(secret.data).get(self._secret_key)
        if raw is None:
            return None
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SinkError(f"{where}: data[{self._secret_key}] is not base64") from exc

    def write_record(
        self, credential: str, record: SinkRecord, *, expected_version: str | None
    ) -> str | None:
        annotations: dict[str, str | None] = {
            ANNOTATION_PREFIX + name: _annotation_value(getattr(record, field_name))
            for field_name, name in _RECORD_ANNOTATIONS.items()
        }
        annotations[RECORD_FORMAT_ANNOTATION] = RECORD_FORMAT
        return self._write(credential, annotations, None, expected_version=expected_version)

    def write_secret(
        self, credential: str, secret: Secret, *, expected_version: str | None
    ) -> str | None:
        encoded = base64.b64encode(secret.reveal().encode()).decode()
        return self._write(
            credential,
            {},
            {self._secret_key: encoded},
            expected_version=expected_version,
            redact=(secret.reveal(), encoded),
        )

    def rollout(
        self, credential: str, delivered_at: datetime, now: datetime
    ) -> Sequence[WorkloadRollout]:
        delivered_at, now = utc(delivered_at), utc(now)
        results: list[WorkloadRollout] = []
        for kind, name in restarted_workloads(self._restart, credential):
            workload = self._read_workload(kind, name)
            started = False
            restarted_at = _restarted_at(workload)
            if restarted_at is None or restarted_at < delivered_at:
                workload = self._restart_workload(kind, name, delivered_at)
                started = True
            if _rolled_out(kind, workload):
                state = RolloutState.READY
            elif now > delivered_at + self._rollout_timeout:
                state = RolloutState.STALLED
            else:
                state = RolloutState.WAITING
            results.append(WorkloadRollout(kind=kind, name=name, state=state, started=started))
        return results

    def read_history(self, credential: str) -> list[dict[str, Any]]:
        name = self._history_name(credential)
        where = f"Secret {self._namespace}/{name}"
        result = self._read_secret(name)
        if result is None:
            return []
        labels = _strings(result.metadata.labels if result.metadata else None)
        if labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
            raise SinkMetadataError(f"{where} exists but is not managed by the rotator")
        raw = _strings(result.data).get(HISTORY_KEY)
        if raw is None:
            return []
        try:
            document = json.loads(base64.b64decode(raw, validate=True).decode("utf-8"))
        except (binascii.Error, ValueError):
            raise SinkMetadataError(f"{where}: data[{HISTORY_KEY}] is not a JSON history") from None
        return history_from_document(
            document, where=where, credential=credential, workspace=self._workspace
        )

    def write_history(self, credential: str, entries: Sequence[Mapping[str, Any]]) -> None:
        """Create or patch the history's own Secret (no resourceVersion precondition: only a
        pass holding the workspace's lock writes it, and nothing reads its version)."""
        from lightkube.resources.core_v1 import Secret as KubeSecret  # noqa: PLC0415

        name = self._history_name(credential)
        where = f"Secret {self._namespace}/{name}"
        document = history_to_document(entries, credential=credential, workspace=self._workspace)
        encoded = base64.b64encode(json.dumps(document).encode()).decode()
        labels = {
            MANAGED_BY_LABEL: MANAGED_BY,
            WORKSPACE_LABEL: label_value(self._workspace),
            CREDENTIAL_LABEL: label_value(credential),
        }
        # No record-format annotation: list_credentials never takes it for a credential.
        annotations = {HISTORY_OF_ANNOTATION: credential, WORKSPACE_ANNOTATION: self._workspace}
        from lightkube.types import PatchType  # noqa: PLC0415

        patch = {"metadata": {"labels": labels, "annotations": annotations}}
        result = self._kube.call(
            f"update {where}",
            lambda: self._kube.client.patch(
                KubeSecret,
                name,
                {**patch, "data": {HISTORY_KEY: encoded}},
                namespace=self._namespace,
                patch_type=PatchType.MERGE,
            ),
        )
        if isinstance(result, Failure) and result.kind is FailureKind.NOT_FOUND:
            from lightkube.models.meta_v1 import ObjectMeta  # noqa: PLC0415

            body = KubeSecret(
                metadata=ObjectMeta(name=name, labels=labels, annotations=annotations),
                type="Opaque",
                data={HISTORY_KEY: encoded},
            )
            result = self._kube.call(
                f"create {where}",
                lambda: self._kube.client.create(body, namespace=self._namespace),
            )
        if isinstance(result, Failure):
            raise _sink_error(result) from result.cause

    def close(self) -> None:
        self._kube.close()

    def _history_name(self, credential: str) -> str:
        """The history's own Secret: the credential's Secret name and ``.history``, which no
        credential's Secret name ends in (``check_names`` refuses one that would)."""
        return fit_name(self._checked_name(credential) + HISTORY_SUFFIX)

    # -- Secrets -----------------------------------------------------------------------------

    def _read_secret(self, name: str) -> KubeSecret | None:
        """The Secret ``name`` of the namespace, as it is; None when there is none."""
        from lightkube.resources.core_v1 import Secret as KubeSecret  # noqa: PLC0415

        result = self._kube.call(
            f"read Secret {self._namespace}/{name}",
            lambda: self._kube.client.get(KubeSecret, name, namespace=self._namespace),
            read=True,
        )
        if isinstance(result, Failure):
            if result.kind is FailureKind.NOT_FOUND:
                return None
            raise _sink_error(result) from result.cause
        return result

    def _get(self, credential: str, name: str) -> KubeSecret | None:
        """The managed Secret of ``credential``, None when there is none."""
        where = f"Secret {self._namespace}/{name}"
        result = self._read_secret(name)
        if result is None:
            return None
        metadata = result.metadata
        labels = _strings(metadata.labels if metadata else None)
        annotations = _strings(metadata.annotations if metadata else None)
        if labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
            raise SinkMetadataError(
                f"{where} exists but is not managed by the rotator; label it "
                f"{MANAGED_BY_LABEL}={MANAGED_BY} to let the rotator manage it"
            )
        owner = annotations.get(CREDENTIAL_ANNOTATION)
        if owner is not None and owner != credential:
            raise SinkMetadataError(f"{where} holds the credential {owner!r}, not {credential!r}")
        workspace = annotations.get(WORKSPACE_ANNOTATION)
        if workspace is not None and workspace != self._workspace:
            raise SinkMetadataError(
                f"{where} belongs to workspace {workspace!r}, not {self._workspace!r}: give each "
                "workspace its own namespace or put {workspace} in the Secret name template"
            )
        return result

    def _write(
        self,
        credential: str,
        annotations: Mapping[str, str | None],
        data: Mapping[str, str] | None,
        *,
        expected_version: str | None,
        redact: Sequence[str] = (),
    ) -> str | None:
        name = self._checked_name(credential)
        where = f"Secret {self._namespace}/{name}"
        labels = {
            MANAGED_BY_LABEL: MANAGED_BY,
            WORKSPACE_LABEL: label_value(self._workspace),
            CREDENTIAL_LABEL: label_value(credential),
        }
        owned = {CREDENTIAL_ANNOTATION: credential, WORKSPACE_ANNOTATION: self._workspace}
        from lightkube.resources.core_v1 import Secret as KubeSecret  # noqa: PLC0415

        result: KubeSecret | Failure
        if expected_version is None:
            from lightkube.models.meta_v1 import ObjectMeta  # noqa: PLC0415

            present = {k: v for k, v in {**owned, **annotations}.items() if v is not None}
            body = KubeSecret(
                metadata=ObjectMeta(name=name, labels=labels, annotations=present),
                type="Opaque",
                data=dict(data) if data else None,
            )
            result = self._kube.call(
                f"create {where}",
                lambda: self._kube.client.create(body, namespace=self._namespace),
                redact=redact,
            )
        else:
            patch: dict[str, Any] = {
                "metadata": {
                    # The precondition: the server applies the patch only to this version.
                    "resourceVersion": expected_version,
                    "labels": labels,
                    "annotations": {**owned, **annotations},
                }
            }
            if data:
                patch["data"] = dict(data)
            from lightkube.types import PatchType  # noqa: PLC0415

            result = self._kube.call(
                f"update {where}",
                lambda: self._kube.client.patch(
                    KubeSecret,
                    name,
                    patch,
                    namespace=self._namespace,
                    patch_type=PatchType.MERGE,
                ),
                redact=redact,
            )
        if isinstance(result, Failure):
            if result.kind in (FailureKind.ALREADY_EXISTS, FailureKind.CONFLICT):
                raise SinkConflictError(
                    f"{where}: {credential!r} changed since it was read ({result.message})"
                ) from result.cause
            if result.kind is FailureKind.NOT_FOUND:
                raise SinkConflictError(
                    f"{where}: {credential!r} was deleted since it was read"
                ) from result.cause
            raise _sink_error(result) from result.cause
        return result.metadata.resourceVersion if result.metadata else None

    def _checked_name(self, credential: str) -> str:
        problem = self._name_problem(credential)
        if problem is not None:
            raise SinkNameError(f"credential {credential!r} cannot be stored: {problem}")
        return self.secret_name(credential)

    def _name_problem(self, credential: str) -> str | None:
        if not credential:
            return "an empty credential name cannot be stored"
        name = self.secret_name(credential)
        if not is_dns_subdomain(name):
            return f"its Secret name {name!r} is not a valid DNS-1123 subdomain"
        if name.endswith(HISTORY_SUFFIX):
            return f"its Secret name {name!r} ends in {HISTORY_SUFFIX!r}, reserved for histories"
        return None

    # -- workloads ---------------------------------------------------------------------------

    def _read_workload(self, kind: str, name: str) -> Any:
        resource = workload_resource(kind)
        return self._workload_call(
            f"read {kind} {self._namespace}/{name}",
            lambda: self._kube.client.get(resource, name, namespace=self._namespace),
            read=True,
        )

    def _restart_workload(self, kind: str, name: str, delivered_at: datetime) -> Any:
        from lightkube.types import PatchType  # noqa: PLC0415

        resource = workload_resource(kind)
        body = {
            "spec": {
                "template": {
                    "metadata": {
                        "annotations": {RESTARTED_AT_ANNOTATION: format_time(delivered_at)}
                    }
                }
            }
        }
        return self._workload_call(
            f"restart {kind} {self._namespace}/{name}",
            lambda: self._kube.client.patch(
                resource,
                name,
                body,
                namespace=self._namespace,
                patch_type=PatchType.STRATEGIC,
            ),
        )

    def _workload_call(self, doing: str, call: Callable[[], _T], *, read: bool = False) -> _T:
        result = self._kube.call(doing, call, read=read)
        if isinstance(result, Failure):
            if result.kind is FailureKind.NOT_FOUND:
                raise SinkError(
                    f"{result.message}: a workload named in {_RESTART_SETTING} does not exist"
                ) from result.cause
            raise _sink_error(result) from result.cause
        return result

    # -- settings ----------------------------------------------------------------------------

    def _check_settings(self) -> None:
        problems: list[str] = []
        if not is_dns_label(self._namespace):
            problems.append(
                f"ROTATOR_SINK_KUBERNETES_NAMESPACE: {self._namespace!r} is not a valid namespace"
            )
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(self._template) if f is not None}
        except ValueError as exc:
            fields = set()
            problems.append(f"{_NAME_SETTING}: {self._template!r} is not a valid template: {exc}")
        unknown = fields - {"workspace", "credential"}
        if unknown:
            problems.append(
                f"{_NAME_SETTING}: unknown placeholders {sorted(unknown)} in {self._template!r} "
                "(use {workspace} and {credential})"
            )
        elif not problems:
            probe = self.secret_name("x")
            if not is_dns_subdomain(probe):
                problems.append(
                    f"{_NAME_SETTING}: {self._template!r} gives names like {probe!r}, which is not "
                    "a valid Secret name (lower case letters, digits, '-' and '.')"
                )
        if (
            not _CONFIG_KEY.match(self._secret_key)
            or len(self._secret_key) > 253
            or self._secret_key in (".", "..")
        ):
            problems.append(
                f"{_KEY_SETTING}: {self._secret_key!r} is not a valid data key "
                "(letters, digits, '-', '_' and '.')"
            )
        for glob, workloads in self._restart:
            if not glob:
                problems.append(f"{_RESTART_SETTING}: an empty credential pattern")
            for kind, name in workloads:
                if kind not in WORKLOAD_KINDS:
                    problems.append(
                        f"{_RESTART_SETTING}: {kind!r} is not one of {', '.join(WORKLOAD_KINDS)}"
                    )
                if not is_dns_subdomain(name):
                    problems.append(f"{_RESTART_SETTING}: {name!r} is not a valid workload name")
        if self._rollout_timeout <= timedelta(0):
            problems.append("ROTATOR_SINK_KUBERNETES_ROLLOUT_TIMEOUT_MINUTES: must be positive")
        if problems:
            raise ConfigError(problems)


def secret_name_for(template: str, workspace: str, credential: str) -> str:
    """The name of the Secret of ``credential`` in ``workspace`` by the name ``template``:
    ``{workspace}`` and ``{credential}`` made DNS-1123 safe, the whole trimmed to fit (it may
    still be invalid: see :meth:`KubernetesSink.check_names`)."""
    rendered = template.format(workspace=dns_safe(workspace), credential=dns_safe(credential))
    return fit_name(rendered)


def restarted_workloads(
    restart: Sequence[tuple[str, Sequence[tuple[str, str]]]], credential: str
) -> list[tuple[str, str]]:
    """The workloads (kind, name) ``restart`` names for ``credential``: those of every pattern
    it matches, each once, in the order they are named."""
    workloads: dict[tuple[str, str], None] = {}
    for glob, named in restart:
        if fnmatchcase(credential, glob):
            workloads.update(dict.fromkeys(named))
    return list(workloads)


# -- records as annotations ----------------------------------------------------------------------


def _annotation_value(value: str | datetime | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return format_time(value)


def _record_from_annotations(
    annotations: Mapping[str, str], where: str, credential: str
) -> SinkRecord | None:
    """The record the annotations hold, None when none was written; SinkMetadataError naming
    the annotation (never its value) when one cannot be trusted."""
    record_format = annotations.get(RECORD_FORMAT_ANNOTATION)
    if record_format is None:
        return None
    if record_format != RECORD_FORMAT:
        raise SinkMetadataError(
            f"{where}: {RECORD_FORMAT_ANNOTATION} is {record_format!r}; this rotator reads "
            f"{RECORD_FORMAT!r} (written by another version?)"
        )
    values = {
        field_name: annotations.get(ANNOTATION_PREFIX + name)
        for field_name, name in _RECORD_ANNOTATIONS.items()
    }
    return record_from_fields(
        values,
        where=where,
        key_of=lambda field_name: ANNOTATION_PREFIX + _RECORD_ANNOTATIONS[field_name],
        credential=credential,
    )


# -- rollouts -------------------------------------------------------------------------------------


def _strings(value: object) -> dict[str, str]:
    """A map of labels, annotations or Secret data as the API sends it (None: empty).

    lightkube's models do not check the types of what they read: a map that is not one of
    strings is an answer no API server gives, refused rather than half read.
    """
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise SinkError("kubernetes API: unexpected answer (a map that is not one of strings)")
    return value


def _restarted_at(workload: Any) -> datetime | None:
    """When the workload's pods were last asked to restart, or None (never, or unreadable)."""
    template = workload.spec.template if workload.spec else None
    metadata = template.metadata if template else None
    annotations = metadata.annotations if metadata else None
    text = annotations.get(RESTARTED_AT_ANNOTATION) if isinstance(annotations, dict) else None
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        return None


def _rolled_out(kind: str, workload: Any) -> bool:
    """Whether every replica runs the current template and is ready and available.

    The controller must have seen the current generation (``observedGeneration``), and the
    updated, ready and available counts must all equal the desired count (for a Deployment or
    StatefulSet also the total: no old replica left).
    """
    generation = workload.metadata.generation or 0
    status = workload.status
    if status is None or (status.observedGeneration or 0) < generation:
        return False
    counts: tuple[int, ...]
    if kind == "DaemonSet":
        desired = status.desiredNumberScheduled or 0
        counts = (
            status.updatedNumberScheduled or 0,
            status.numberReady or 0,
            status.numberAvailable or 0,
        )
    else:
        desired = 1 if workload.spec.replicas is None else workload.spec.replicas
        counts = (
            status.updatedReplicas or 0,
            status.readyReplicas or 0,
            status.availableReplicas or 0,
            status.replicas or 0,
        )
    return all(count == desired for count in counts)


def _sink_error(failure: Failure) -> SinkError:
    if failure.kind is FailureKind.UNAVAILABLE:
        return SinkUnavailableError(failure.message)
    if failure.kind in (FailureKind.UNAUTHORIZED, FailureKind.FORBIDDEN):
        return SinkPermissionError(failure.message)
    if failure.kind in (FailureKind.CONFLICT, FailureKind.ALREADY_EXISTS):
        return SinkConflictError(failure.message)
    return SinkError(failure.message)


def from_settings(settings: KubernetesSinkSettings, context: SinkContext) -> KubernetesSink:
    """The sink of one workspace, from its settings (the registry's entry point)."""
    return KubernetesSink(
        namespace=settings.namespace,
        secret_name_template=settings.secret_name,
        secret_key=settings.secret_key,
        workspace=context.workspace,
        kubeconfig=settings.kubeconfig,
        restart=settings.restart,
        rollout_timeout=timedelta(minutes=settings.rollout_timeout_minutes),
        request_timeout=timedelta(seconds=context.timeout_seconds),
    )
