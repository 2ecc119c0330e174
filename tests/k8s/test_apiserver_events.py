"""The stand-in serves ``events.k8s.io/v1`` Events as a real API server does: namespaced create
and list, the fields a new Event must have (refused with the server's field paths, which are
those of the internal core Event: ``involvedObject`` for ``regarding``, ``message`` for
``note``), MicroTime precision, and RBAC on the ``events.k8s.io`` group.

Valid Events go through lightkube, the client the rotator's channel uses; invalid ones as plain
JSON with httpx, since lightkube's models would not let some of them be written at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from lightkube import ApiError, Client, KubeConfig
from lightkube.models.core_v1 import ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.events_v1 import Event

from tests.k8s.apiserver import ApiServer, Rule
from tests.k8s.fixtures import NAMESPACE, Cluster

EVENTS_PATH = f"/apis/events.k8s.io/v1/namespaces/{NAMESPACE}/events"
WHEN = datetime(2026, 11, 27, 3, 0, 0, 123456, tzinfo=UTC)


def _client(kubeconfig: object) -> Client:
    return Client(KubeConfig.from_file(str(kubeconfig)), lazy=False, trust_env=False)


@pytest.fixture
def api(cluster: Cluster) -> Iterator[Client]:
    with _client(cluster.kubeconfig) as api_client:
        yield api_client


@pytest.fixture
def wire(apiserver: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=apiserver.url, headers={"Authorization": "Bearer admin-token"}, trust_env=False
    ) as client:
        yield client


def _event(name: str = "pm-api-key-billing.1", namespace: str = NAMESPACE) -> Event:
    return Event(
        metadata=ObjectMeta(name=name),
        eventTime=WHEN,
        action="Rotate",
        reason="Rotated",
        note="key k2 replaced key k1",
        type="Normal",
        regarding=ObjectReference(
            apiVersion="v1", kind="Secret", name="pm-api-key-billing", namespace=namespace
        ),
        reportingController="key-rotator.io/rotator",
        reportingInstance="rotator-7d9f-abcde",
    )


def _body(**changes: Any) -> dict[str, Any]:
    """A valid Event as JSON, with ``changes`` (None: the field left out)."""
    body: dict[str, Any] = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "e1"},
        "eventTime": "2026-11-27T03:00:00.123456Z",
        "action": "Rotate",
        "reason": "Rotated",
        "note": "key k2 replaced key k1",
        "type": "Normal",
        "regarding": {"apiVersion": "v1", "kind": "Secret", "name": "s", "namespace": NAMESPACE},
        "reportingController": "key-rotator.io/rotator",
        "reportingInstance": "rotator-0",
    }
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def test_an_event_is_created_in_its_namespace_and_listed_there(
    api: Client, apiserver: ApiServer
) -> None:
    created = api.create(_event(), namespace=NAMESPACE)
    api.create(_event("elsewhere.1", namespace="other"), namespace="other")
    assert created.metadata is not None
    assert created.metadata.namespace == NAMESPACE
    assert created.metadata.uid
    assert created.eventTime == WHEN
    listed = list(api.list(Event, namespace=NAMESPACE))
    assert [e.metadata.name for e in listed if e.metadata] == ["pm-api-key-billing.1"]
    (stored,) = apiserver.objects("Event", NAMESPACE)
    assert stored["eventTime"] == "2026-11-27T03:00:00.123456Z"
    assert stored["regarding"]["name"] == "pm-api-key-billing"
    assert stored["reportingController"] == "key-rotator.io/rotator"


def test_an_event_of_an_existing_name_is_409(api: Client) -> None:
    api.create(_event(), namespace=NAMESPACE)
    with pytest.raises(ApiError) as caught:
        api.create(_event(), namespace=NAMESPACE)
    assert caught.value.status.code == 409
    assert caught.value.status.reason == "AlreadyExists"


@pytest.mark.parametrize(
    ("changes", "field", "kind"),
    [
        ({"eventTime": None}, "eventTime", "FieldValueRequired"),
        ({"reportingController": None}, "reportingController", "FieldValueRequired"),
        ({"reportingController": "not a name!"}, "reportingController", "FieldValueInvalid"),
        ({"reportingInstance": None}, "reportingInstance", "FieldValueRequired"),
        ({"reportingInstance": "x" * 129}, "reportingInstance", "FieldValueInvalid"),
        ({"action": None}, "action", "FieldValueRequired"),
        ({"action": "x" * 129}, "action", "FieldValueInvalid"),
        ({"reason": None}, "reason", "FieldValueRequired"),
        ({"reason": "x" * 129}, "reason", "FieldValueInvalid"),
        ({"note": "x" * 1025}, "message", "FieldValueInvalid"),
        ({"regarding": None}, "involvedObject.namespace", "FieldValueInvalid"),
        ({"regarding": {"kind": "Secret", "name": "s"}}, "involvedObject.namespace", None),
        ({"type": None}, "type", "FieldValueInvalid"),
        ({"type": "Error"}, "type", "FieldValueInvalid"),
        ({"deprecatedCount": 3}, "count", "FieldValueInvalid"),
        ({"deprecatedSource": {"component": "x"}}, "source", "FieldValueInvalid"),
        ({"series": {"count": 1, "lastObservedTime": "2026-11-27T03:00:00.123456Z"}},
         "series.count", "FieldValueInvalid"),
        ({"metadata": {"name": "Not_A_Name"}}, "metadata.name", "FieldValueInvalid"),
    ],
)  # fmt: skip
def test_what_a_new_event_must_have_is_422_naming_the_field(
    wire: httpx.Client, apiserver: ApiServer, changes: dict[str, Any], field: str, kind: str | None
) -> None:
    answer = wire.post(EVENTS_PATH, json=_body(**changes))
    assert answer.status_code == 422, answer.text
    status = answer.json()
    assert status["reason"] == "Invalid"
    assert status["details"]["kind"] == "Event"
    causes = {(c["field"], c["reason"]) for c in status["details"]["causes"]}
    assert field in {f for f, _ in causes}, causes
    if kind is not None:
        assert (field, kind) in causes
    assert apiserver.objects("Event", NAMESPACE) == []


def test_a_valid_event_as_plain_json_is_201(wire: httpx.Client) -> None:
    answer = wire.post(EVENTS_PATH, json=_body(note=None, related=None))
    assert answer.status_code == 201, answer.text
    assert answer.json()["metadata"]["namespace"] == NAMESPACE


def test_an_event_in_default_may_regard_an_object_without_a_namespace(
    apiserver: ApiServer,
) -> None:
    body = _body(regarding={"apiVersion": "v1", "kind": "Node", "name": "node-1"})
    with httpx.Client(
        base_url=apiserver.url, headers={"Authorization": "Bearer admin-token"}
    ) as client:
        answer = client.post("/apis/events.k8s.io/v1/namespaces/default/events", json=body)
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize(
    "event_time", ["2026-11-27T03:00:00Z", "2026-11-27T03:00:00.123Z", "yesterday", 5]
)
def test_an_event_time_without_six_fractional_digits_is_400(
    wire: httpx.Client, event_time: object
) -> None:
    answer = wire.post(EVENTS_PATH, json=_body(eventTime=event_time))
    assert answer.status_code == 400, answer.text
    assert answer.json()["reason"] == "BadRequest"


def test_rbac_on_events_is_by_group_and_verb(cluster: Cluster) -> None:
    creator = cluster.identity(
        "system:serviceaccount:rotator-test:rotator",
        [Rule.of(["create"], ["events"], ["events.k8s.io"])],
    )
    core_only = cluster.identity("core-events", [Rule.of(["create"], ["events"], [""])])
    with _client(creator) as client:
        client.create(_event(), namespace=NAMESPACE)
        with pytest.raises(ApiError) as listing:
            list(client.list(Event, namespace=NAMESPACE))
    assert listing.value.status.code == 403
    with _client(core_only) as client, pytest.raises(ApiError) as caught:
        client.create(_event("another.1"), namespace=NAMESPACE)
    assert caught.value.status.code == 403
    assert caught.value.status.message == (
        'events.events.k8s.io is forbidden: User "core-events" cannot create resource "events" '
        f'in API group "events.k8s.io" in the namespace "{NAMESPACE}"'
    )
    assert [e["metadata"]["name"] for e in cluster.server.objects("Event", NAMESPACE)] == [
        "pm-api-key-billing.1"
    ]
