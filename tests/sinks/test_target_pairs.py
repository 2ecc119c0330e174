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
from rotator.models import Secret
from rotator.sinks.memory import MemorySink
from rotator.sinks.targets import TargetSet, routed
from tests.conftest import Crash, World, _world, crash_at
from tests.sinks.backends import Backend, discover
from tests.sinks.faulty_target import FaultyTarget

CREDENTIAL = "app-billing"
REAL = sorted(kind for kind in discover() if kind != "memory")
PAIRS = list(itertools.combinations(REAL, 2))


@dataclass
class Pair:
    world: World
    targets: tuple[FaultyTarget, FaultyTarget]
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
    targets = (FaultyTarget(backends[0].reopen()), FaultyTarget(backends[1].reopen()))
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
