"""Every pair of real backends delivering one credential together, through the real engine.

Each pair (file, exec, Vault on OpenBao, AWS on moto, Kubernetes on the stand-in) is one
credential's two targets. A fault is injected into each target in turn (a write refused before it
lands, or a write that lands and whose answer is lost), and the process is killed at every
checkpoint of a delivery, including between the two targets' secret writes. After each, the
passes that follow must converge, every target must hold a working key after every pass, and the
old key must be revoked only when every target holds the new one.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from rotator.emulator import Emulator
from rotator.errors import SinkUnavailableError
from rotator.models import Secret, SinkRecord
from rotator.sinks.base import BaseSink, Sink, SinkState
from rotator.sinks.memory import MemorySink
from rotator.sinks.targets import TargetSet, routed
from tests.conftest import Crash, World, _world, crash_at
from tests.sinks.backends import Backend, discover

CREDENTIAL = "app-billing"
REAL = sorted(kind for kind in discover() if kind != "memory")
PAIRS = list(itertools.combinations(REAL, 2))


class _Faulty(BaseSink):
    """A real target with one fault armed: its next ``write_secret`` is refused before it lands
    (``refuse``), lands but its answer is lost (``lose``), or lands and the process dies
    (``die``). Everything else is the real sink's."""

    def __init__(self, inner: Sink) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.can_read_secret = inner.can_read_secret
        self.armed: str | None = None

    def describe(self) -> str:
        return self.inner.describe()

    def check_names(self, credentials: object) -> dict[str, str]:
        return dict(self.inner.check_names(credentials))  # type: ignore[arg-type]

    def list_credentials(self) -> list[str]:
        return list(self.inner.list_credentials())

    def read(self, credential: str) -> SinkState:
        return self.inner.read(credential)

    def read_secret(self, credential: str) -> Secret:
        return self.inner.read_secret(credential)

    def write_record(
        self, credential: str, record: SinkRecord, *, expected_version: str | None
    ) -> str | None:
        return self.inner.write_record(credential, record, expected_version=expected_version)

    def write_secret(
        self, credential: str, secret: Secret, *, expected_version: str | None
    ) -> str | None:
        fault, self.armed = self.armed, None
        if fault == "refuse":
            raise SinkUnavailableError(f"{self.describe()}: refused (injected)")
        version = self.inner.write_secret(credential, secret, expected_version=expected_version)
        if fault == "lose":
            raise SinkUnavailableError(f"{self.describe()}: answer lost (injected)")
        if fault == "die":
            raise Crash("between targets")
        return version

    def close(self) -> None:
        self.inner.close()


@dataclass
class Pair:
    world: World
    targets: tuple[_Faulty, _Faulty]
    backends: tuple[Backend, Backend]

    def live_ids(self) -> set[str]:
        return {str(k["id"]) for k in self.world.live(CREDENTIAL)}

    def every_target_works(self) -> None:
        """What each target's consumer reads authenticates (its backend read directly)."""
        for backend in self.backends:
            value = backend.consumer_reads(CREDENTIAL)
            assert value is not None and self.world.works(Secret(value)), backend.sink.describe()

    def converged(self) -> None:
        states = [t.read(CREDENTIAL) for t in self.targets]
        assert all(s.record == states[0].record for s in states), states
        assert len({s.secret_sha256 for s in states}) == 1
        record = states[0].record
        assert record is not None and not record.has_pending
        assert record.key_id in self.live_ids()
        self.every_target_works()


def _backend(kind: str, request: pytest.FixtureRequest, folder: Path) -> Backend:
    folder.mkdir()
    return discover()[kind](request, folder)


@pytest.fixture(params=PAIRS, ids=["+".join(p) for p in PAIRS])
def pair(request: pytest.FixtureRequest, emulator: Emulator, tmp_path: Path) -> Iterator[Pair]:
    first, second = request.param
    backends = [_backend(first, request, tmp_path / "a"), _backend(second, request, tmp_path / "b")]
    targets = (_Faulty(backends[0].reopen()), _Faulty(backends[1].reopen()))
    world = _world(emulator, routed(MemorySink(), [("app-*", list(targets))]))
    key_id, secret = world.add_key(CREDENTIAL, days_left=5)
    world.deliver(CREDENTIAL, key_id, secret)
    yield Pair(world, targets, (backends[0], backends[1]))
    for client in world.clients:
        client.close()
    for made in backends:
        made.sink.close()
        for cleanup in made.cleanups:
            cleanup()
    for target in targets:
        target.close()


def _recover(pair: Pair, old_id: str) -> None:
    """Passes after the fault: every target works after each; the old key outlives any target
    that does not hold the new one; they converge."""
    for _ in range(3):
        pair.world.emu.advance(timedelta(minutes=11))
        report = pair.world.run(grace=timedelta(0))
        pair.every_target_works()
        if old_id not in pair.live_ids():
            states = [t.read(CREDENTIAL) for t in pair.targets]
            assert len({s.secret_sha256 for s in states}) == 1, "old key revoked while lagging"
    assert report.exit_code == 0
    pair.converged()


FAULTS: list[tuple[str, int]] = [
    (fault, index) for fault in ("refuse", "lose") for index in (0, 1)
]  # fmt: skip


@pytest.mark.parametrize(("fault", "index"), FAULTS, ids=[f"{f}-{i}" for f, i in FAULTS])
def test_a_fault_in_either_target_converges(pair: Pair, fault: str, index: int) -> None:
    old_id = next(iter(pair.live_ids()))
    sink = pair.world.sink.sink_of(CREDENTIAL)  # type: ignore[attr-defined]
    assert isinstance(sink, TargetSet)
    sink.targets[index].armed = fault  # type: ignore[attr-defined]
    first = pair.world.run(grace=timedelta(0))
    assert first.exit_code == 1
    pair.every_target_works()
    assert old_id in pair.live_ids()  # a target still holds it
    _recover(pair, old_id)


CRASHES = ["created", "verified", "pending-recorded", "between", "secret-written", "delivered"]


@pytest.mark.parametrize("step", CRASHES)
def test_a_kill_at_each_checkpoint_converges(pair: Pair, step: str) -> None:
    old_id = next(iter(pair.live_ids()))
    checkpoint: Callable[[str, str], None] | None = crash_at(step)
    if step == "between":
        sink = pair.world.sink.sink_of(CREDENTIAL)  # type: ignore[attr-defined]
        sink.targets[0].armed = "die"
        checkpoint = None
    with pytest.raises(Crash):
        pair.world.run(checkpoint=checkpoint, grace=timedelta(0))
    pair.every_target_works()
    _recover(pair, old_id)


def test_the_delivery_reaches_both_and_then_retires_the_old_key(pair: Pair) -> None:
    old_id = next(iter(pair.live_ids()))
    report = pair.world.run(grace=timedelta(0))
    assert report.exit_code == 0
    pair.converged()
    assert old_id not in pair.live_ids()
