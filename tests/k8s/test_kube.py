"""rotator.kube: names the API accepts, the pod's namespace, and how the client's failures are
sorted and worded (never with a token or a secret)."""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lightkube import ApiError
from lightkube import ConfigError as LightkubeConfigError
from lightkube.resources.core_v1 import Secret as KubeSecret

from rotator.errors import SinkUnavailableError
from rotator.kube import (
    FailureKind,
    _plain_unless_status,
    classify,
    dns_safe,
    fit_name,
    in_cluster,
    is_dns_subdomain,
    label_value,
    own_namespace,
)
from rotator.models import Secret
from rotator.sinks.kubernetes import KubernetesSink
from tests.k8s.apiserver import write_kubeconfig
from tests.k8s.fixtures import NAMESPACE, Cluster

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _response(status: int, body: object) -> httpx.Response:
    text = body if isinstance(body, str) else json.dumps(body)
    media = "text/html" if isinstance(body, str) else "application/json"
    request = httpx.Request("PUT", "https://api:6443/api/v1/namespaces/ns/secrets/x")
    return httpx.Response(
        status, content=text.encode(), headers={"Content-Type": media}, request=request
    )


def _api_exception(status: int, body: object) -> httpx.HTTPStatusError:
    """What lightkube raises for this answer, after the connection's hook saw it."""
    response = _response(status, body)
    _plain_unless_status(response)
    if response.headers["Content-Type"] == "application/json":
        return ApiError(request=response.request, response=response)
    return httpx.HTTPStatusError("error", request=response.request, response=response)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Billing_Sync", "billing-sync"), ("a..b", "a-b"), ("--", ""), ("ÄÖ x", "x"), ("a.b", "a-b")],
)
def test_dns_safe(value: str, expected: str) -> None:
    assert dns_safe(value) == expected


def test_fit_name_cuts_long_names_keeping_them_distinct() -> None:
    long_a, long_b = "a" * 300, "a" * 299 + "b"
    assert len(fit_name(long_a)) == 253
    assert fit_name(long_a) != fit_name(long_b)
    assert is_dns_subdomain(fit_name(long_a))
    assert fit_name("-x-") == "x"


@pytest.mark.parametrize("value", ["ok", "a" * 63, "a" * 64, "a b c", "-x-", "Ü", "", "_._"])
def test_label_values_are_always_valid(value: str) -> None:
    made = label_value(value)
    assert len(made) <= 63
    assert LABEL_VALUE.match(made)
    if len(value) <= 63 and LABEL_VALUE.match(value):
        assert made == value


def test_the_pods_namespace(tmp_path: Path) -> None:
    assert own_namespace(tmp_path) == "default"
    assert not in_cluster(tmp_path)
    (tmp_path / "namespace").write_text("\n")
    assert own_namespace(tmp_path) == "default"
    (tmp_path / "namespace").write_text("team-a\n")
    (tmp_path / "token").write_text("t")
    assert own_namespace(tmp_path) == "team-a"
    assert in_cluster(tmp_path)


@pytest.mark.parametrize(
    ("status", "reason", "kind"),
    [
        (401, "Unauthorized", FailureKind.UNAUTHORIZED),
        (403, "Forbidden", FailureKind.FORBIDDEN),
        (404, "NotFound", FailureKind.NOT_FOUND),
        (409, "AlreadyExists", FailureKind.ALREADY_EXISTS),
        (409, "Conflict", FailureKind.CONFLICT),
        (400, "BadRequest", FailureKind.INVALID),
        (422, "Invalid", FailureKind.INVALID),
        (429, "TooManyRequests", FailureKind.UNAVAILABLE),
        (504, "Timeout", FailureKind.UNAVAILABLE),
        (418, "Teapot", FailureKind.OTHER),
    ],
)
def test_statuses_are_sorted_by_their_meaning(status: int, reason: str, kind: FailureKind) -> None:
    exc = _api_exception(
        status, {"kind": "Status", "reason": reason, "message": "it failed", "code": status}
    )
    failure = classify(exc, doing="update Secret ns/x", server="https://api:6443")
    assert failure is not None
    assert failure.kind is kind
    assert failure.status == status
    assert failure.cause is exc
    assert failure.message == (
        "kubernetes API https://api:6443: cannot update Secret ns/x: "
        f"HTTP {status} {reason}: it failed"
    )


def test_a_body_that_is_no_status_falls_back_to_the_http_reason() -> None:
    for body in ("<html>bad gateway</html>", [1, 2]):
        failure = classify(_api_exception(502, body), doing="read", server="s")
        assert failure is not None
        assert failure.kind is FailureKind.UNAVAILABLE
        assert failure.message == "kubernetes API s: cannot read: HTTP 502 Bad Gateway"


def test_only_a_status_object_reaches_lightkube_as_json() -> None:
    status = _response(409, {"kind": "Status", "reason": "Conflict"})
    _plain_unless_status(status)
    assert status.headers["Content-Type"] == "application/json"
    for response in (_response(502, [1, 2]), _response(502, "<html/>"), _response(500, "")):
        _plain_unless_status(response)
        assert response.headers["Content-Type"] == "text/plain"
    bare = httpx.Response(503, content=b"down")
    _plain_unless_status(bare)  # no Content-Type at all: lightkube would fail on a KeyError
    assert bare.headers["Content-Type"] == "text/plain"
    broken = httpx.Response(500, content=b"{", headers={"Content-Type": "application/json"})
    _plain_unless_status(broken)
    assert broken.headers["Content-Type"] == "text/plain"
    fine = httpx.Response(200, content=b"[]", headers={"Content-Type": "application/json"})
    _plain_unless_status(fine)
    assert fine.headers["Content-Type"] == "application/json"


def test_messages_are_cut_and_never_carry_the_secret() -> None:
    secret = "pm-key-5ecret-VALUE"
    exc = _api_exception(422, {"reason": "Invalid", "message": f"bad {secret} " + "x" * 500})
    failure = classify(exc, doing="create", server="s", redact=[secret, ""])
    assert failure is not None
    assert secret not in failure.message
    assert "**********" in failure.message
    assert len(failure.message) < 400


def test_failures_without_an_answer() -> None:
    unverified = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    unverified.__cause__ = ssl.SSLCertVerificationError("certificate verify failed")
    tls = classify(unverified, doing="x", server="s")
    assert tls is not None and (tls.kind, tls.status) == (FailureKind.UNAVAILABLE, None)
    assert tls.message == "kubernetes API s: cannot x: TLS failed"
    timeout = classify(httpx.ReadTimeout("timed out"), doing="x", server="s")
    assert (
        timeout is not None
        and timeout.message == "kubernetes API s: cannot x: no answer (ReadTimeout)"
    )
    refused = classify(ConnectionRefusedError(111, "refused"), doing="x", server="s")
    assert refused is not None and refused.kind is FailureKind.UNAVAILABLE


def test_credentials_that_cannot_be_refreshed_are_unauthorized() -> None:
    # lightkube's own words when a kubeconfig's exec plugin fails: its standard error follows.
    failure = classify(
        LightkubeConfigError("Exec aws returned 1: secret stderr\nmore"), doing="x", server="s"
    )
    assert failure is not None
    assert failure.kind is FailureKind.UNAUTHORIZED
    assert failure.message == "kubernetes API s: cannot x: credentials: Exec aws returned 1"


def test_an_answer_the_models_cannot_read_is_other() -> None:
    with pytest.raises(AttributeError) as caught:
        KubeSecret.from_dict({"metadata": 5}, lazy=False)
    failure = classify(caught.value, doing="read", server="s")
    assert failure is not None
    assert failure.kind is FailureKind.OTHER
    assert failure.message == "kubernetes API s: cannot read: unexpected answer (AttributeError)"
    with pytest.raises(json.JSONDecodeError) as not_json:
        httpx.Response(200, content=b"<html>").json()
    failure = classify(not_json.value, doing="read", server="s")
    assert failure is not None and failure.kind is FailureKind.OTHER


def test_exceptions_of_our_own_are_not_classified() -> None:
    assert classify(RuntimeError("a bug"), doing="x", server="s") is None
    # The same types the client's decoding raises, raised by the rotator's own code: a bug.
    with pytest.raises(KeyError) as ours:
        _ = {}["missing"]
    assert classify(ours.value, doing="x", server="s") is None


@pytest.fixture
def sink_without_ca(tls_cluster: Cluster) -> Iterator[KubernetesSink]:
    kubeconfig = write_kubeconfig(
        tls_cluster.directory / "no-ca", tls_cluster.server.url, tls_cluster.admin_token
    )
    sink = KubernetesSink(namespace=NAMESPACE, workspace="acme", kubeconfig=kubeconfig)
    yield sink
    sink.close()


def test_a_server_certificate_nobody_vouches_for_is_refused(
    sink_without_ca: KubernetesSink,
) -> None:
    with pytest.raises(SinkUnavailableError) as caught:
        sink_without_ca.write_secret("billing-sync", Secret("v"), expected_version=None)
    assert "kubernetes API https://127.0.0.1:" in str(caught.value)
