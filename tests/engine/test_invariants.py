"""Invariant tests that close the gaps a mutation check of the engine found (invariants 1-8 of
docs/how-it-works.md).

Each invariant was broken on purpose, one small realistic bug at a time, in the engine, the
policy, the sinks and the logging module; tests/test_engine.py caught most. Each test here was
seen to fail against a mutant that survived it (named in the test's docstring) and to pass
against the real code.

Like tests/test_engine.py, these drive the real engine through the real HTTP client against the
bundled emulator; failures are injected through the memory sink's hooks, the engine's checkpoint
callable, or small test doubles of the sink and key-provider protocols.
"""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import timedelta

import pytest

from rotator.client import ProjectManagerClient
from rotator.errors import SinkUnavailableError
from rotator.logging import configure as configure_logging
from rotator.logging import get_logger
from rotator.models import ApiKey, Identity, NewKey, Secret
from rotator.policy import RotationPolicy
from rotator.rotation import Outcome
from rotator.sinks.memory import MemorySink
from rotator.survey import Workspace
from tests.conftest import Crash, World, crash_at, deliver_due


def _events(world: World, name: str) -> list[dict[str, object]]:
    return [e for e in world.events() if e["event"] == name]


class _LosingSink(MemorySink):
    """A sink that acknowledges the next secret write but keeps the old secret (a lost write)."""

    def __init__(self) -> None:
        super().__init__()
        self.lose_next_secret_write = False

    def write_secret(
        self, credential: str, secret: Secret, *, expected_version: str | None
    ) -> str | None:
        if self.lose_next_secret_write:
            self.lose_next_secret_write = False
            return expected_version
        return super().write_secret(credential, secret, expected_version=expected_version)


class _TruncatingSink(_LosingSink):
    """A sink that acknowledges the next secret write but stores something else: the secret cut
    short, as a store with a length limit would keep it."""

    def write_secret(
        self, credential: str, secret: Secret, *, expected_version: str | None
    ) -> str | None:
        if self.lose_next_secret_write:
            self.lose_next_secret_write = False
            cut = Secret(secret.reveal()[:-1])
            return MemorySink.write_secret(self, credential, cut, expected_version=expected_version)
        return super().write_secret(credential, secret, expected_version=expected_version)


class _ForeignWorkspaceProvider:
    """The real client, except that new keys say they belong to another workspace."""

    def __init__(self, client: ProjectManagerClient) -> None:
        self._client = client

    def list_keys(self) -> list[ApiKey]:
        return self._client.list_keys()

    def create_key(self, token_name: str) -> NewKey:
        return self._client.create_key(token_name)

    def revoke_key(self, key_id: str) -> None:
        self._client.revoke_key(key_id)

    def me(self, credential: Secret | None = None) -> Identity:
        identity = self._client.me(credential)
        if credential is None:
            return identity
        return dataclasses.replace(identity, workspace_id="another-workspace")


@pytest.fixture
def losing_world(world: World) -> World:
    world.sink = _LosingSink()
    return world


# ------------------------------------------------------------------------ invariant 1


def test_invariant_1_read_back_mismatch_keeps_the_old_key(losing_world: World) -> None:
    """Mutant: the read-back comparison after delivery is skipped (the write is trusted)."""
    w = losing_world
    assert isinstance(w.sink, _LosingSink)
    old_id, old_secret = deliver_due(w)
    w.sink.lose_next_secret_write = True
    report = w.run()
    assert report.exit_code == 1
    failed = _events(w, "rotation.failed")
    assert failed and failed[0]["step"] == "deliver"
    # The sink still holds the old secret, so the old key must still be live and working.
    assert w.held_secret("app-billing") == Secret(old_secret)
    assert old_id in [k["id"] for k in w.live("app-billing")]
    assert w.works(w.held_secret("app-billing"))
    assert "rotation.revoked" not in [e["event"] for e in w.events()]


@pytest.mark.parametrize("sink", [_LosingSink, _TruncatingSink])
def test_invariant_1_a_lost_secret_write_is_rolled_back_and_the_record_restored(
    world: World, sink: type[_LosingSink]
) -> None:
    """Mutants: the secret's read-back checks only that *something* is stored, or only that
    the stored secret changed, so a write the sink lost (it still holds the old secret, or
    something else) is taken as delivered."""
    w = world
    w.sink = sink()
    assert isinstance(w.sink, _LosingSink)
    old_id, old_secret = deliver_due(w)
    before = w.record("app-billing")
    w.sink.lose_next_secret_write = True
    report = w.run()
    assert report.exit_code == 1
    created = _events(w, "rotation.created")
    assert len(created) == 1
    new_id = created[0]["key_id"]
    # The new key no sink holds is revoked, not left behind, and the record is what it was:
    # the old key current, no pending fields.
    assert [e["key_id"] for e in _events(w, "rotation.rolled_back")] == [new_id]
    assert [k["id"] for k in w.live("app-billing")] == [old_id]
    restored = w.record("app-billing")
    assert restored == before
    assert restored is not None and restored.key_id == old_id
    assert (restored.pending_key_id, restored.pending_secret_sha256) == (None, None)
    if sink is _LosingSink:
        assert w.held_secret("app-billing") == Secret(old_secret)


def test_invariant_2_pass_after_a_read_back_mismatch_keeps_the_held_key(
    losing_world: World,
) -> None:
    w = losing_world
    assert isinstance(w.sink, _LosingSink)
    deliver_due(w)
    w.sink.lose_next_secret_write = True
    w.run()
    w.emu.advance(timedelta(minutes=11))
    w.run()
    assert w.works(w.held_secret("app-billing"))


# ------------------------------------------------------------------------ invariant 2


def test_invariant_2_key_answering_for_another_workspace_is_never_delivered(world: World) -> None:
    """Mutant: verify skips the same-workspace check of ``me`` with the new key."""
    old_id, old_secret = deliver_due(world)
    workspace = Workspace(
        name="acme", provider=_ForeignWorkspaceProvider(world.client()), sink=world.sink
    )
    report = world.engine().run_pass([workspace])
    assert report.exit_code == 1
    assert world.held_secret("app-billing") == Secret(old_secret)
    assert [k["id"] for k in world.live("app-billing")] == [old_id]
    failed = _events(world, "rotation.failed")
    assert failed and failed[0]["step"] == "verify"
    assert "rotation.rolled_back" in [e["event"] for e in world.events()]


def test_invariant_2_key_answering_as_another_user_is_never_delivered(world: World) -> None:
    """Mutant: verify checks the new key's workspace but not its user: a key acting as someone
    else (another admin's, whose rights and lifetime are theirs) would be handed to a consumer."""
    old_id, old_secret = deliver_due(world)
    before = world.record("app-billing")
    # The emulator's new keys act as another admin of the same workspace.
    other = world.emu.add_user(world.workspace_id, "Another Admin")
    world.emu.set_new_key_user(world.workspace_id, other)
    report = world.run()
    assert report.exit_code == 1
    failed = _events(world, "rotation.failed")
    assert failed and failed[0]["step"] == "verify"
    assert "another user" in str(failed[0]["error"])
    (created,) = _events(world, "rotation.created")
    # Rolled back: revoked by id, never delivered, the record untouched.
    assert [e["key_id"] for e in _events(world, "rotation.rolled_back")] == [created["key_id"]]
    assert [k["id"] for k in world.live("app-billing")] == [old_id]
    assert world.held_secret("app-billing") == Secret(old_secret)
    assert world.record("app-billing") == before


# ------------------------------------------------------------------------ invariant 4


@pytest.mark.parametrize(
    "step", ["created", "verified", "pending-recorded", "secret-written", "delivered", "revoked"]
)
def test_invariant_4_first_rotation_without_metadata_converges_after_a_crash(
    step: str, world: World
) -> None:
    """Mutants: the first pending record omits the key held; a missing secret counts as held."""
    old_id, _ = world.add_key("app-billing", days_left=5)  # a person's key; the sink is empty
    with pytest.raises(Crash):
        world.run(checkpoint=crash_at(step))
    for _ in range(3):
        world.emu.advance(timedelta(minutes=11))
        report = world.run()
    assert report.exit_code == 0
    live = world.live("app-billing")
    assert len(live) == 1, live  # the person's old key retired, nothing left behind
    assert live[0]["id"] != old_id
    assert world.works(world.held_secret("app-billing"))
    record = world.record("app-billing")
    assert record is not None and record.key_id == live[0]["id"] and not record.has_pending


def test_invariant_4_retire_and_rotate_happen_in_one_pass(world: World) -> None:
    """Mutant: the rotate step uses the view from before settling (previous already retired)."""
    policy = RotationPolicy(key_names=("app-*",), rotate_before_days=30, max_age_days=1)
    old_id, _ = deliver_due(world)
    first = world.run(policy=policy, grace=timedelta(hours=24))
    assert first.rotations_succeeded == 1
    world.emu.advance(timedelta(days=2))  # grace over, and the new key is over max age
    second = world.run(policy=policy, grace=timedelta(hours=24))
    assert second.exit_code == 0
    assert second.rotations_succeeded == 1
    assert old_id not in [k["id"] for k in world.live()]
    assert len(world.live("app-billing")) == 2  # the current one and its in-grace previous
    assert world.works(world.held_secret("app-billing"))


# ------------------------------------------------------------------------ invariant 5


def _assert_no_issued_secret_in(world: World, *extra: str) -> None:
    secrets = world.emu.issued_secrets()
    texts = [world.log_stream.getvalue(), repr(world.sink), *extra]
    for text in texts:
        for secret in secrets:
            assert secret not in text
            assert secret[:12] not in text


def test_invariant_5_no_secret_on_failure_paths(world: World) -> None:
    """Mutants: the new secret put into the verify / delivery failure message."""
    assert isinstance(world.sink, MemorySink)
    for name in ("app-verify", "app-deliver", "app-unknown"):
        deliver_due(world, name)
    reports = []
    world.emu.set_variants(propagation_failures=100)
    reports.append(world.run(policy=RotationPolicy(key_names=("app-verify",))))
    world.emu.set_variants(propagation_failures=0)
    world.sink.fail_next["write_secret"] = SinkUnavailableError("disk full")
    reports.append(world.run(policy=RotationPolicy(key_names=("app-deliver",))))
    world.sink.fail_next["write_secret"] = SinkUnavailableError("timed out")
    world.sink.fail_always["read_back"] = SinkUnavailableError("unreachable")
    reports.append(world.run(policy=RotationPolicy(key_names=("app-unknown",))))
    assert [r.exit_code for r in reports] == [1, 1, 1]
    steps = [e["step"] for e in _events(world, "rotation.failed")]
    assert steps == ["verify", "deliver", "deliver"]
    _assert_no_issued_secret_in(world, *(repr(r) for r in reports))


def test_invariant_5_a_secret_logged_by_mistake_is_blanked() -> None:
    """Mutant: the logging redaction processor lets :class:`Secret` values through."""
    stream = io.StringIO()
    configure_logging(log_format="json", level="debug", stream=stream)
    get_logger().info("test.event", value=Secret("s3cr3t-value"), nested={"inner": [Secret("x9")]})
    line = json.loads(stream.getvalue())
    assert "s3cr3t-value" not in stream.getvalue() and "x9" not in stream.getvalue()
    assert line["value"] == "**********"


# ------------------------------------------------------------------------ invariant 6


def test_invariant_6_metadata_naming_another_credentials_key_revokes_nothing(
    world: World,
) -> None:
    """Mutant: reconcile looks up the record's key ids among every key of the workspace."""
    crm_id, crm_secret = world.add_key("app-crm", days_left=300)
    world.deliver("app-crm", crm_id, crm_secret)
    billing_id, billing_secret = world.add_key("app-billing", days_left=300)
    world.deliver("app-billing", billing_id, billing_secret)
    record = world.record("app-billing")
    assert record is not None
    # Corrupt metadata: app-billing's previous key is app-crm's live key, grace long over.
    world.put_record(
        "app-billing",
        dataclasses.replace(
            record, previous_key_id=crm_id, retire_previous_after=world.emu.now() - timedelta(1)
        ),
    )
    world.run()
    live = [k["id"] for k in world.live()]
    assert crm_id in live and billing_id in live
    assert not [r for r in world.emu.request_log() if r["method"] == "DELETE"]


# ------------------------------------------------------------------------ invariant 7


def test_invariant_7_an_unusable_workspace_does_not_stop_the_others(world: World) -> None:
    """Mutant: the pass stops at the first workspace it cannot use."""
    deliver_due(world)
    bad_client = ProjectManagerClient(
        world.emu.url, Secret("not-a-real-key"), max_retries=1, sleep=lambda _s: None
    )
    world.clients.append(bad_client)  # closed by the fixture
    broken = Workspace(name="broken", provider=bad_client, sink=MemorySink())
    report = world.engine().run_pass([broken, world.workspace()])
    assert report.exit_code == 1
    assert [w.name for w in report.workspaces] == ["broken", "acme"]
    assert not report.workspaces[0].usable
    assert report.workspaces[1].outcomes["app-billing"] is Outcome.ROTATED
    assert world.works(world.held_secret("app-billing"))
