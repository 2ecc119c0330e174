"""The Lease lock beyond the shared lock contract: the Lease's fields, expiry, renewal, races,
loss and the API's failures; the real client against the loopback stand-in."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rotator.errors import ConfigError, LockHeldError, LockLostError, LockUnavailableError
from rotator.kube import micro_time
from rotator.locks.base import HeldLock
from rotator.locks.lease import LeaseLock, default_holder_identity, lease_name
from tests.k8s.apiserver import Rule
from tests.k8s.fixtures import NAMESPACE, Cluster

NAME = "key-rotator-acme"
MICRO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


@pytest.fixture
def make_lock(cluster: Cluster) -> Callable[..., LeaseLock]:
    def make(identity: str = "pass-1", **overrides: object) -> LeaseLock:
        values: dict[str, object] = {
            "namespace": NAMESPACE,
            "name": NAME,
            "holder_identity": identity,
            "duration": timedelta(seconds=3),
            "kubeconfig": cluster.kubeconfig,
        }
        values.update(overrides)
        return LeaseLock(**values)  # type: ignore[arg-type]

    return make


def _still_held(held: HeldLock) -> bool:
    try:
        held.check()
    except LockLostError:
        return False
    return True


def _lease(cluster: Cluster) -> dict[str, object]:
    lease = cluster.server.get_object("Lease", NAMESPACE, NAME)
    assert lease is not None
    return lease


def _spec(cluster: Cluster) -> dict[str, object]:
    spec = _lease(cluster)["spec"]
    assert isinstance(spec, dict)
    return spec


def _put_lease(cluster: Cluster, holder: str, renewed: datetime, seconds: int = 60) -> None:
    cluster.server.create_object(
        "Lease",
        NAMESPACE,
        {
            "metadata": {"name": NAME},
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": seconds,
                "acquireTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "leaseTransitions": 4,
            },
        },
    )


def test_taking_a_new_lease_creates_it_with_every_field(
    make_lock: Callable[..., LeaseLock], cluster: Cluster
) -> None:
    with make_lock().hold():
        spec = _spec(cluster)
        assert spec["holderIdentity"] == "pass-1"
        assert spec["leaseDurationSeconds"] == 3
        assert spec["leaseTransitions"] == 0
        assert MICRO_TIME.match(str(spec["acquireTime"]))
        assert MICRO_TIME.match(str(spec["renewTime"]))
        labels = _lease(cluster)["metadata"]["labels"]  # type: ignore[index]
        assert labels == {"app.kubernetes.io/managed-by": "key-rotator"}
    released = _spec(cluster)
    assert "holderIdentity" not in released
    assert released["leaseTransitions"] == 0


def test_another_holder_counts_a_transition(
    make_lock: Callable[..., LeaseLock], cluster: Cluster
) -> None:
    with make_lock("pass-1").hold():
        pass
    with make_lock("pass-2").hold():
        assert _spec(cluster)["holderIdentity"] == "pass-2"
        assert _spec(cluster)["leaseTransitions"] == 1
    with make_lock("pass-2").hold():
        assert _spec(cluster)["leaseTransitions"] == 2  # released in between: a new holding


def test_a_lease_held_by_another_is_refused_naming_the_holder(
    make_lock: Callable[..., LeaseLock], cluster: Cluster
) -> None:
    _put_lease(cluster, "rotator-7d9f_12_ab", datetime.now(UTC))
    before = _lease(cluster)
    with (
        pytest.raises(LockHeldError, match="held by rotator-7d9f_12_ab until") as caught,
        make_lock().hold(),
    ):
        pytest.fail("took a live Lease")
    assert f"lease:{NAMESPACE}/{NAME}" in str(caught.value)
    assert _lease(cluster) == before


def test_a_lease_not_renewed_within_its_duration_expires_and_can_be_taken(
    make_lock: Callable[..., LeaseLock], cluster: Cluster
) -> None:
    _put_lease(cluster, "dead-pass", datetime.now(UTC) - timedelta(seconds=61), seconds=60)
    with make_lock().hold() as held:
        held.check()
        spec = _spec(cluster)
        assert spec["holderIdentity"] == "pass-1"
        assert spec["leaseTransitions"] == 5
        assert spec["leaseDurationSeconds"] == 3


def test_a_lease_without_renew_time_is_free(
    make_lock: Callable[..., LeaseLock], cluster: Cluster
) -> None:
    cluster.server.create_object(
        "Lease", NAMESPACE, {"metadata": {"name": NAME}, "spec": {"holderIdentity": "someone"}}
    )
    with make_lock().hold():
        assert _spec(cluster)["holderIdentity"] == "pass-1"


def test_the_holder_renews_about_every_third_of_the_duration(
    make_lock: Callable[..., LeaseLock], cluster: Cluster
) -> None:
    with make_lock().hold() as held:
        first = _spec(cluster)["renewTime"]
        version = _lease(cluster)["metadata"]["resourceVersion"]  # type: ignore[index]
        time.sleep(2.5)
        held.check()
        assert _spec(cluster)["renewTime"] > first  # type: ignore[operator]
        assert _lease(cluster)["metadata"]["resourceVersion"] != version  # type: ignore[index]
    renewals = [r for r in cluster.server.requests_for("update", "leases") if r.code == 200]
    # One take-over-free create, two renewals in 2.5 s (every second), one release.
    assert 2 <= len(renewals) <= 4


def test_two_passes_racing_for_an_expired_lease_one_wins(
    make_lock: Callable[..., LeaseLock], cluster: Cluster
) -> None:
    _put_lease(cluster, "dead-pass", datetime.now(UTC) - timedelta(minutes=5))
    locks = [make_lock(f"pass-{i}") for i in range(4)]
    barrier = threading.Barrier(len(locks))
    outcomes: list[str] = []
    release = threading.Event()

    def take(lock: LeaseLock) -> None:
        barrier.wait()
        try:
            with lock.hold():
                outcomes.append("won")
                release.wait(10)
        except LockHeldError:
            outcomes.append("held")

    threads = [threading.Thread(target=take, args=(lock,)) for lock in locks]
    for thread in threads:
        thread.start()
    # Hold the winner until every thread has answered: released after three of four, the
    # fourth may (rightly) take the lease the winner just gave back, and the test would flake.
    deadline = time.monotonic() + 10
    while len(outcomes) < len(locks) and time.monotonic() < deadline:
        time.sleep(0.02)
    release.set()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(outcomes) == ["held", "held", "held", "won"]


def test_a_race_to_create_is_lost_cleanly(
    make_lock: Callable[..., LeaseLock], cluster: Cluster
) -> None:
    # Another pass creates the Lease between this pass's read (404) and its create.
    cluster.server.delay_next(0.5, verbs={"get"}, resource="leases", after_applying=True)
    outcome: list[BaseException] = []

    def take() -> None:
        try:
            with make_lock("pass-1").hold():
                pass
        except LockHeldError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=take)
    thread.start()
    time.sleep(0.2)
    _put_lease(cluster, "pass-2", datetime.now(UTC))
    thread.join(timeout=10)
    assert len(outcome) == 1
    assert "just taken" in str(outcome[0])


def test_a_takeover_is_detected_by_check(
    make_lock: Callable[..., LeaseLock], cluster: Cluster
) -> None:
    with make_lock().hold() as held:
        cluster.server.modify(
            "Lease", NAMESPACE, NAME, lambda lease: lease["spec"].update(holderIdentity="intruder")
        )
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and _still_held(held):
            time.sleep(0.05)
        with pytest.raises(LockLostError, match="taken over by intruder"):
            held.check()
    # A lost Lease is not released: it is the intruder's now.
    assert _spec(cluster)["holderIdentity"] == "intruder"


def test_a_change_that_keeps_the_holder_is_not_a_loss(
    make_lock: Callable[..., LeaseLock], cluster: Cluster
) -> None:
    with make_lock().hold() as held:
        cluster.server.modify(
            "Lease", NAMESPACE, NAME, lambda lease: lease["metadata"].update(labels={"x": "y"})
        )
        time.sleep(2.2)
        held.check()
        assert _spec(cluster)["holderIdentity"] == "pass-1"


def test_a_deleted_lease_is_lost(make_lock: Callable[..., LeaseLock], cluster: Cluster) -> None:
    with make_lock().hold() as held:
        cluster.server.delete_object("Lease", NAMESPACE, NAME)
        time.sleep(1.5)
        with pytest.raises(LockLostError, match="deleted"):
            held.check()


def test_renewals_that_keep_failing_lose_the_lease_before_it_expires(
    make_lock: Callable[..., LeaseLock], cluster: Cluster
) -> None:
    with make_lock().hold() as held:
        cluster.server.fail_next(503, "ServiceUnavailable", verbs={"update"}, times=50)
        time.sleep(1.5)
        held.check()  # one renewal failed; the Lease is still surely ours
        time.sleep(1.2)
        with pytest.raises(LockLostError, match="not renewed for"):
            held.check()


def test_a_release_that_fails_is_not_an_error(
    make_lock: Callable[..., LeaseLock], cluster: Cluster
) -> None:
    with make_lock().hold():
        cluster.server.fail_next(503, "ServiceUnavailable", verbs={"update"}, times=50)
    assert _spec(cluster)["holderIdentity"] == "pass-1"  # it will expire by itself


def test_one_instance_holds_once(make_lock: Callable[..., LeaseLock]) -> None:
    lock = make_lock()
    with lock.hold(), pytest.raises(LockHeldError, match="this process"), lock.hold():
        pass


@pytest.fixture
def forbidden_lock(make_lock: Callable[..., LeaseLock], cluster: Cluster) -> LeaseLock:
    may_read = cluster.identity("reader", [Rule.of({"get"}, {"leases"}, {"coordination.k8s.io"})])
    return make_lock(kubeconfig=may_read)


def test_rbac_refusal_is_unavailable_not_held(forbidden_lock: LeaseLock) -> None:
    with pytest.raises(LockUnavailableError, match="cannot create resource"), forbidden_lock.hold():
        pass


def test_an_unreachable_api_is_unavailable(
    make_lock: Callable[..., LeaseLock], cluster: Cluster
) -> None:
    with (
        pytest.raises(LockUnavailableError, match="no answer") as caught,
        make_lock(kubeconfig=cluster.unreachable()).hold(),
    ):
        pass
    assert "admin-token" not in str(caught.value)


def test_a_refused_takeover_write_is_unavailable(
    make_lock: Callable[..., LeaseLock], cluster: Cluster
) -> None:
    _put_lease(cluster, "dead-pass", datetime.now(UTC) - timedelta(minutes=5))
    cluster.server.fail_next(500, "InternalError", verbs={"update"})
    with pytest.raises(LockUnavailableError, match="HTTP 500"), make_lock().hold():
        pass


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"name": "Key_Rotator"}, "not a valid object name"),
        ({"holder_identity": ""}, "identity is empty"),
        ({"duration": timedelta(milliseconds=500)}, "at least 1"),
        ({"namespace": "a.b"}, "not a valid namespace"),
    ],
)
def test_bad_settings_are_config_errors(
    make_lock: Callable[..., LeaseLock], overrides: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ConfigError, match=complaint):
        make_lock(**overrides)


def test_describe_and_repr(make_lock: Callable[..., LeaseLock], tmp_path: Path) -> None:
    lock = make_lock()
    assert lock.describe() == f"lease:{NAMESPACE}/{NAME}"
    assert "admin-token" not in repr(lock)
    assert lock.holder_identity == "pass-1"
    assert make_lock(namespace=None, service_account_dir=tmp_path).describe() == (
        f"lease:default/{NAME}"
    )


@pytest.mark.parametrize(
    ("workspace", "name"),
    [("acme", "key-rotator-acme"), ("Acme EU", "key-rotator-acme-eu"), ("x" * 300, None)],
)
def test_lease_names_are_dns_safe(workspace: str, name: str | None) -> None:
    made = lease_name(workspace)
    assert len(made) <= 253
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", made)
    if name is not None:
        assert made == name


def test_micro_time_always_has_a_fraction() -> None:
    whole = datetime(2026, 11, 27, 3, 0, 0, tzinfo=UTC)
    assert micro_time(whole).isoformat() == "2026-11-27T03:00:00.000001+00:00"
    exact = whole.replace(microsecond=250000)
    assert micro_time(exact) == exact


def test_default_holder_identities_differ() -> None:
    assert default_holder_identity() != default_holder_identity()
