"""A model of one credential delivered to several targets: Hypothesis draws the targets (two or
three: real file sinks and in-memory ones, in any order) and a sequence of steps, and checks the
roll-forward rules after every one, against what each target holds and the emulator's key list.

Steps: time passing; a pass (grace 0 or an hour); ``rotate --now`` (emergency); a fault armed in
one target's next secret write (refused before it lands, landed with its answer lost, or the
process dying right after it landed); a pass killed at a checkpoint of the rotation; a person
wiping one target's entry.

Invariants, after every step: no key that a target holds was revoked (a wiped target holds
nothing until a pass without faults brought it back); after two passes with no fault armed,
every target holds the same record and secret. Derandomized and bounded in CI;
``ROTATOR_MODEL_EXAMPLES=N`` runs N examples with random seeds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from tempfile import mkdtemp

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from rotator.emulator import Emulator
from rotator.sinks.file import FileSink
from rotator.sinks.memory import MemorySink
from rotator.sinks.targets import routed
from tests.conftest import Crash, World, _world, crash_at
from tests.sinks.faulty_target import FaultyTarget

CREDENTIAL = "app-billing"
CHECKPOINTS = ("created", "verified", "pending-recorded", "secret-written", "delivered",
               "caught-up", "finished-delivery")  # fmt: skip


def _wipe(target: FaultyTarget, credential: str) -> None:
    """A person deletes the target's entry."""
    inner = target.inner
    if isinstance(inner, FileSink):
        for path in inner.directory.glob(f"{credential}*"):
            path.unlink()
    elif isinstance(inner, MemorySink):
        inner._records.pop(credential, None)  # a person's edit, not the rotator's API
        inner._secrets.pop(credential, None)


@dataclass
class _Run:
    world: World
    targets: list[FaultyTarget]
    folder: Path
    wiped: set[int] = field(default_factory=set)
    clean_passes: int = 0


class TargetsModel(RuleBasedStateMachine):
    run: _Run | None = None

    @initialize(
        kinds=st.lists(st.sampled_from(["file", "memory"]), min_size=2, max_size=3),
        grace=st.sampled_from([0, 1]),
    )
    def deploy(self, kinds: list[str], grace: int) -> None:
        self.emu = Emulator()
        self.emu.__enter__()
        folder = Path(mkdtemp(prefix="rotator-targets-model-"))
        targets = [
            FaultyTarget(FileSink(folder / f"t{i}") if kind == "file" else MemorySink(), f"t{i}")
            for i, kind in enumerate(kinds)
        ]
        world = _world(self.emu, routed(MemorySink(), [("app-*", targets)]))
        self.run = _Run(world, targets, folder)
        self.grace = timedelta(hours=grace)
        key_id, secret = world.add_key(CREDENTIAL, days_left=20)
        world.deliver(CREDENTIAL, key_id, secret)

    def teardown(self) -> None:
        if self.run is not None:
            for client in self.run.world.clients:
                client.close()
            shutil.rmtree(self.run.folder, ignore_errors=True)
            self.emu.__exit__(None, None, None)

    # -- steps --------------------------------------------------------------------------------

    @rule(days=st.sampled_from([0.5, 3, 15, 30]))
    def time_passes(self, days: float) -> None:
        assert self.run is not None
        self.emu.advance(timedelta(days=days))

    @rule(emergency=st.booleans())
    def a_pass(self, emergency: bool) -> None:
        assert self.run is not None
        armed = any(t.armed for t in self.run.targets)
        with contextlib.suppress(Crash):
            if emergency:
                self.run.world.engine(grace=timedelta(0), emergency=True).run_pass(
                    [self.run.world.workspace()], forced={CREDENTIAL}
                )
            else:
                self.run.world.run(grace=self.grace)
        if not armed:
            self.run.wiped.clear()  # a pass without faults brings a wiped target back
        self.run.clean_passes = 0 if armed else self.run.clean_passes + 1

    @rule(index=st.integers(0, 2), fault=st.sampled_from(["refuse", "lose", "die"]))
    def fault_in_a_target(self, index: int, fault: str) -> None:
        assert self.run is not None
        self.run.targets[index % len(self.run.targets)].armed = fault
        self.run.clean_passes = 0

    @rule(step=st.sampled_from(CHECKPOINTS))
    def a_pass_killed(self, step: str) -> None:
        assert self.run is not None
        with contextlib.suppress(Crash):
            self.run.world.run(checkpoint=crash_at(step), grace=self.grace)
        self.run.clean_passes = 0

    @rule(index=st.integers(0, 2))
    def a_person_wipes_a_target(self, index: int) -> None:
        assert self.run is not None
        chosen = index % len(self.run.targets)
        if len(self.run.wiped | {chosen}) == len(self.run.targets):
            # Every copy gone: no pass can know the secret again (`rotate --now` replaces it,
            # as for a wiped single sink); the model keeps one copy somewhere.
            return
        _wipe(self.run.targets[chosen], CREDENTIAL)
        self.run.wiped.add(chosen)
        self.run.clean_passes = 0

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def no_key_a_target_holds_was_revoked(self) -> None:
        if self.run is None:
            return
        world = self.run.world
        revoked = {
            str(k["id"]) for k in world.emu.keys(world.workspace_id, include_revoked=True)
            if k["revoked"]
        }  # fmt: skip
        for index, target in enumerate(self.run.targets):
            if index in self.run.wiped:
                continue
            key_id = world.emu.key_id_of(target.read_secret(CREDENTIAL).reveal())
            assert key_id is not None, f"{target.label} holds a secret no key has"
            assert key_id not in revoked, f"{target.label} holds key {key_id}, revoked"

    @invariant()
    def two_clean_passes_converge(self) -> None:
        if self.run is None or self.run.clean_passes < 2:
            return
        states = [t.read(CREDENTIAL) for t in self.run.targets]
        assert all(s.record == states[0].record for s in states), "records differ"
        assert len({s.secret_sha256 for s in states}) == 1, "secrets differ"
        record = states[0].record
        assert record is not None and not record.has_pending


_PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
if os.environ.get("ROTATOR_MODEL_SHRINK", "1") != "0":
    _PHASES.append(Phase.shrink)
TargetsModel.TestCase.settings = settings(
    max_examples=int(os.environ.get("ROTATOR_MODEL_EXAMPLES") or 30),
    stateful_step_count=10,
    derandomize=not os.environ.get("ROTATOR_MODEL_EXAMPLES"),
    database=None,
    deadline=None,
    phases=_PHASES,
    suppress_health_check=[HealthCheck.too_slow],
)
TestTargetsModel = TargetsModel.TestCase
