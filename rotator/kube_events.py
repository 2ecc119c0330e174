"""Kubernetes Events for what a pass did: the ``kubernetes-events`` channel.

Responsible for: a :class:`~rotator.events.Channel` turning each
:class:`~rotator.events.Event` about a credential delivered to a Kubernetes Secret into
``events.k8s.io/v1`` Events in that Secret's namespace, so that ``kubectl events --for
secret/NAME`` shows what the rotator did to it: ``regarding`` the Secret, or for a rollout event
each workload restarted for the credential, with its uid when it can be read (``kubectl
describe`` matches a workload's Events by uid; ``related`` then names the Secret);
``reportingController`` ``key-rotator.io/rotator``; ``reportingInstance`` the pod's name (its
host name); ``action``, ``reason``, ``type`` (Normal or Warning) from :data:`KINDS`; a short
``note`` made of the event's names, key ids, reason and detail (never a secret: an Event carries
none, and the note is scrubbed as log lines are); ``eventTime`` with microseconds. An Event's
name is derived from the event's id and the object, so the same event sent twice is one Event
(the second create is 409 AlreadyExists, taken as recorded): a retry never doubles it.

Where a credential's Secret is (its namespace and name, the workloads restarted after its
delivery, the kubeconfig of its cluster) is asked of a :data:`Resolver` given to the
constructor: this module knows nothing of settings, sinks or the engine. Event types with no
Kubernetes reason here (a pass that failed, a leak report that matched nothing) and credentials
the resolver places in no Secret are left out.

Never harms the pass: :meth:`KubernetesEventsChannel.send` never raises, each create has a short
deadline (:mod:`rotator.kube`), creates are never retried (one that may have landed is not sent
twice), a cluster that did not answer is not asked again in the same send, and the whole send
stops within ``timeout_seconds``. Each Event not recorded is a ``notify.failed`` line
(``channel`` ``kubernetes-events``, the error naming the server and the object, never a token);
the Events recorded are one ``notify.sent`` line.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from rotator.errors import ConfigError
from rotator.events import Event
from rotator.kube import (
    WORKLOAD_KINDS,
    Connection,
    Failure,
    FailureKind,
    fit_name,
    load_configuration,
    micro_time,
    workload_resource,
)
from rotator.logging import get_logger, scrub_text

if TYPE_CHECKING:
    from lightkube.models.core_v1 import ObjectReference

CHANNEL: Final = "kubernetes-events"
REPORTING_CONTROLLER: Final = "key-rotator.io/rotator"
#: The whole of one send: a pass's end waits no longer for its Events.
DEFAULT_TIMEOUT_SECONDS: Final = 5.0
#: One create: an API server that answers at all answers a create in milliseconds.
DEFAULT_REQUEST_TIMEOUT_SECONDS: Final = 2.0
#: The API server's limits (events.k8s.io/v1): ``note`` 1 kB, the names 128 characters.
MAX_NOTE_BYTES: Final = 1024
MAX_FIELD_LENGTH: Final = 128
_SETTING: Final = "ROTATOR_SINK_KUBERNETES_KUBECONFIG"


@dataclass(frozen=True)
class CredentialObjects:
    """Where one credential lives in a cluster: its Secret, and the workloads (kind, name) in the
    same namespace restarted after each of its deliveries."""

    namespace: str
    secret: str
    workloads: tuple[tuple[str, str], ...] = ()
    #: The cluster's kubeconfig; None: the in-cluster service account, else KUBECONFIG.
    kubeconfig: Path | None = None


#: (workspace, credential) -> the Secrets the credential is delivered to (none: not in a cluster).
Resolver = Callable[[str, str], Sequence[CredentialObjects]]


@dataclass(frozen=True)
class Kind:
    """How one event type reads as a Kubernetes Event."""

    reason: str
    type: str  # Normal or Warning
    action: str
    #: What it means, as the note's first words.
    summary: str
    #: A rollout event: it regards the workloads restarted, not the Secret.
    on_workloads: bool = False


#: Event type -> its Kubernetes Event. The Secret's own history: rotated, retired, failed,
#: blocked; and the consumers' restarts that did not finish.
KINDS: Final[dict[str, Kind]] = {
    "rotation.delivered": Kind("Rotated", "Normal", "Rotate", "a new key was delivered"),
    "rotation.revoked": Kind("Retired", "Normal", "Retire", "the previous key was revoked"),
    "rotation.failed": Kind(
        "RotationFailed", "Warning", "Rotate", "a rotation failed; the Secret keeps a working key"
    ),
    "rotation.rolled_back": Kind(
        "RotationRolledBack", "Warning", "Rotate", "a replacement key was revoked, undelivered"
    ),
    "rollout.stalled": Kind(
        "RolloutStalled",
        "Warning",
        "Restart",
        "the restart after a key rotation did not finish in time; the previous key stays",
        on_workloads=True,
    ),
    "orphan.revoked": Kind(
        "OrphanRevoked", "Normal", "RevokeOrphan", "a replacement key no Secret holds was revoked"
    ),
    "credential.blocked": Kind(
        "CredentialBlocked",
        "Warning",
        "Reconcile",
        "the metadata cannot be trusted; nothing is changed until a person looks",
    ),
    "key.expiring": Kind("KeyExpiring", "Warning", "Rotate", "the current key expires soon"),
    "self.waiting": Kind(
        "OwnKeyWaiting",
        "Warning",
        "Retire",
        "the rotator does not use its own new key yet; its previous key stays",
    ),
    "leak.matched": Kind(
        "LeakReported", "Warning", "Rotate", "a leak report matched a key; it is rotated at once"
    ),
}


@dataclass(frozen=True)
class PlannedEvent:
    """One Event to create, and the event it records."""

    event: Event
    kubeconfig: Path | None
    namespace: str
    body: Any  # lightkube's events_v1 Event


class KubernetesEventsChannel:
    """A :class:`~rotator.events.Channel` recording events.k8s.io/v1 Events on the Secrets (and
    restarted workloads) of the credentials the events are about."""

    name: str = CHANNEL

    def __init__(
        self,
        resolve: Resolver,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
        reporting_instance: str | None = None,
    ) -> None:
        self._resolve = resolve
        self._timeout = timeout_seconds
        self._request_timeout = min(request_timeout_seconds, timeout_seconds)
        # In a pod, the host name is the pod's name.
        self._instance = (reporting_instance or socket.gethostname())[:MAX_FIELD_LENGTH]

    def __repr__(self) -> str:
        return f"KubernetesEventsChannel(instance={self._instance!r}, timeout={self._timeout})"

    def send(self, events: Sequence[Event]) -> None:
        """Record ``events`` as Kubernetes Events; log what failed; never raise."""
        try:
            self._send(events)
        except Exception as exc:  # noqa: BLE001 - a channel never changes what the pass did
            get_logger().error(
                "notify.failed", channel=CHANNEL, error=f"unexpected {type(exc).__name__}"
            )

    def _plan(self, events: Sequence[Event]) -> list[PlannedEvent]:
        """The Events ``events`` become, in order (nothing sent)."""
        from lightkube.models.core_v1 import ObjectReference  # noqa: PLC0415 - optional extra

        planned: list[PlannedEvent] = []
        for event in events:
            kind = KINDS.get(event.type)
            if kind is None or not event.workspace or not event.credential:
                continue
            for objects in self._resolve(event.workspace, event.credential):
                secret = ObjectReference(
                    apiVersion="v1", kind="Secret", name=objects.secret, namespace=objects.namespace
                )
                workloads = _workloads_meant(event, objects) if kind.on_workloads else []
                regarding = [
                    ObjectReference(
                        apiVersion="apps/v1", kind=k, name=n, namespace=objects.namespace
                    )
                    for k, n in workloads
                ] or [secret]
                for target in regarding:
                    related = secret if target is not secret else None
                    body = self._body(event, kind, target, related, _note(event, kind, workloads))
                    planned.append(PlannedEvent(event, objects.kubeconfig, objects.namespace, body))
        return planned

    def _body(
        self,
        event: Event,
        kind: Kind,
        regarding: ObjectReference,
        related: ObjectReference | None,
        note: str,
    ) -> Any:
        from lightkube.models.meta_v1 import ObjectMeta  # noqa: PLC0415 - optional extra
        from lightkube.resources.events_v1 import Event as KubeEvent  # noqa: PLC0415

        # Stable for this event and object: sent again, it is the same Event (409, recorded).
        digest = hashlib.sha256(
            f"{event.id}\0{regarding.kind}\0{regarding.name}".encode()
        ).hexdigest()[:16]
        return KubeEvent(
            metadata=ObjectMeta(
                name=fit_name(f"{regarding.name}.{digest}"), namespace=regarding.namespace
            ),
            eventTime=micro_time(event.time),
            action=kind.action,
            reason=kind.reason,
            type=kind.type,
            note=note,
            regarding=regarding,
            related=related,
            reportingController=REPORTING_CONTROLLER,
            reportingInstance=self._instance,
        )

    def _send(self, events: Sequence[Event]) -> None:
        planned = self._plan(events)
        if not planned:
            return
        log = get_logger()
        deadline = time.monotonic() + self._timeout
        connections: dict[Path | None, Connection | str] = {}
        recorded = 0
        try:
            for item in planned:
                connection = connections.get(item.kubeconfig)
                if connection is None:
                    connection = connections[item.kubeconfig] = self._connect(item.kubeconfig)
                if isinstance(connection, str):
                    error = connection
                elif deadline - time.monotonic() < self._request_timeout:
                    error = f"not sent: the channel's {self._timeout:g} s were spent"
                else:
                    failure = self._create(connection, item, deadline)
                    if failure is None:
                        recorded += 1
                        continue
                    error = failure.message
                    if failure.status is None and failure.kind is FailureKind.UNAVAILABLE:
                        # No answer: the rest of this cluster's Events would wait as long.
                        connection.close()
                        connections[item.kubeconfig] = (
                            f"not sent: {connection.server} did not answer an earlier Event"
                        )
                log.error(
                    "notify.failed",
                    channel=CHANNEL,
                    event_id=item.event.id,
                    type=item.event.type,
                    workspace=item.event.workspace,
                    credential=item.event.credential,
                    error=error,
                )
        finally:
            for connection in connections.values():
                if isinstance(connection, Connection):
                    connection.close()
        if recorded:
            log.info("notify.sent", channel=CHANNEL, events=recorded)

    def _connect(self, kubeconfig: Path | None) -> Connection | str:
        """A connection to the cluster, or why there is none (for the failure lines)."""
        try:
            cluster = load_configuration(kubeconfig, setting=_SETTING, what="Kubernetes Events")
            return Connection(cluster, timeout_seconds=self._request_timeout)
        except ConfigError as exc:
            return "; ".join(exc.problems)

    def _create(
        self, connection: Connection, item: PlannedEvent, deadline: float
    ) -> Failure | None:
        """Create one Event: None when it is recorded (now, or by an earlier send)."""
        regarding = item.body.regarding
        if (
            regarding.kind in WORKLOAD_KINDS
            and deadline - time.monotonic() >= 2 * self._request_timeout
        ):
            # `kubectl describe` shows a workload's Events only when they name its uid; the
            # Event is worth recording without it (`kubectl events --for` finds it by name).
            resource = workload_resource(regarding.kind)
            found = connection.call(
                f"read {regarding.kind} {item.namespace}/{regarding.name}",
                lambda: connection.client.get(resource, regarding.name, namespace=item.namespace),
            )
            if isinstance(found, Failure):
                if found.status is None and found.kind is FailureKind.UNAVAILABLE:
                    return found
            elif found.metadata is not None:
                regarding.uid = found.metadata.uid
        name = item.body.metadata.name
        result = connection.call(
            f"create Event {item.namespace}/{name}",
            lambda: connection.client.create(item.body, namespace=item.namespace),
        )
        if isinstance(result, Failure) and result.kind is not FailureKind.ALREADY_EXISTS:
            return result
        return None


def _workloads_meant(event: Event, objects: CredentialObjects) -> list[tuple[str, str]]:
    """The restarted workloads a rollout event is about: those its detail names as
    ``Kind/name``, else every workload restarted for the credential."""
    named = [(k, n) for k, n in objects.workloads if f"{k}/{n}" in (event.detail or "")]
    return named or list(objects.workloads)


def _note(event: Event, kind: Kind, workloads: Sequence[tuple[str, str]]) -> str:
    """A short note: what it means, then the event's ids and words; at most 1 kB."""
    facts = [
        f"credential {event.credential}",
        f"key {event.key_id}" if event.key_id else "",
        f"previous key {event.previous_key_id}" if event.previous_key_id else "",
        f"reason {event.reason}" if event.reason else "",
        "restarted " + ", ".join(f"{k}/{n}" for k, n in workloads) if workloads else "",
    ]
    text = f"{kind.summary[:1].upper()}{kind.summary[1:]} ({', '.join(f for f in facts if f)})."
    if event.detail:
        text = f"{text} {event.detail}"
    encoded = scrub_text(text).encode()
    if len(encoded) <= MAX_NOTE_BYTES:
        return encoded.decode()
    return encoded[: MAX_NOTE_BYTES - 3].decode(errors="ignore") + "..."
