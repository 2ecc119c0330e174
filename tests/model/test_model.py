"""A model of the whole rotator: Hypothesis generates a deployment and a sequence of steps, and
the invariants of ``tests/model/invariants.py`` are checked after every one.

The deployment (drawn once per example): 1 to 4 workspaces from a ROTATOR_WORKSPACES_FILE, each with
its own or the global patterns (and often the same credential names as the first), the own key
managed or not, the file sink (some workspaces on a MemorySink instead) or the exec sink with the
example folder program (or a variant of it: one printing the key it holds, one that cannot list, one
that ignores the workspace and is given one folder spelled a different way for each); a budget,
concurrency, grace 0 or more, a max age or not, retries or not; each entry's ``workspace_id``
written down or not; unsharded, or ROTATOR_SHARDS=2 with every pass run as two processes (shard 0,
then 1). The steps: people making keys and look-alikes, revoking a key or every key of a credential,
deleting sink entries, editing a sink entry's metadata by hand into garbage or another key's id; ops
changing the settings between passes (patterns, a workspace's patterns, budget, grace, a workspace
taken out of the workspaces file or put back); time passing (alone, or a day and then a pass);
``rotator run-once`` and ``rotator rotate NAME --now`` through the CLI's entry point (also as the
answer to a leak: every key of a credential revoked by hand, then ``rotate``, maybe while its sink
cannot list); API faults (5xx, 429, dropped and applied-then-dropped answers, slow answers) and
sink failures queued for the next command; ``me`` failing for one entry only (one twin of a
workspace listed twice) during a pass or a ``rotate``; a pass killed at a checkpoint (the recovery
is the next pass, whichever step it is).

What a run tried is counted (``tests/model/stats.py``; ``ROTATOR_MODEL_STATS=PATH`` writes the
counts as JSON at the end), and ``scripts/reliability_report.py`` turns a run's counts into
``docs/reliability.md``.

Profiles: ``rotator-model-ci`` (derandomized, bounded; the default) and ``rotator-model-long``
(``ROTATOR_MODEL_EXAMPLES=N`` examples, random seeds). A failure is shrunk by Hypothesis and
replayed as a plain test in ``test_replays.py``.

``KNOWN_SEAMS`` keeps out of the generated space the combinations issue 15 lists as broken and
that are being fixed in main; each entry names its item. Empty it as the fixes land: with an
entry removed, the model generates that combination again (on today's code it finds each within
a few hundred examples), and its replay in ``test_replays.py`` stops being an expected failure.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, Literal, TypeVar

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from rotator.errors import SinkError, SinkUnavailableError
from tests.model.invariants import (
    Ledger,
    check_budget_order,
    check_converged,
    check_exit_code,
    check_safety,
    fail,
    refused_setup,
    selected_credentials,
    tamper_snapshot,
    urgencies,
)
from tests.model.stats import STATS
from tests.model.system import (
    NAMES,
    OWN,
    PERSON_KEY,
    Crash,
    Deployment,
    PassResult,
    WorkspaceSpec,
    World,
)

#: Combinations known to be broken on main's code, kept out of the generated space until their
#: fix lands (then the entry goes: the model must find the old bug and pass the new code). The
#: seams of the first hostile test (several workspaces with their own patterns, the budget over
#: workspaces and the own key, a sink that cannot list, the exec program over two workspaces, a
#: workspace listed twice, a folder spelled two ways, the own key delivered elsewhere, an exec
#: program printing its key, an ambiguous rotate) are fixed, and so is the last one found
#: since: one workspace listed twice under two admin keys, its entries in two shards (each pod
#: now asks ``me`` of the other shards' entries too). None is kept out now.
KNOWN_SEAMS: frozenset[str] = frozenset()

PATTERN_SETS = (("app-*",), ("app-*", "svc-*"), ("app-billing", "svc-mail"), ("*-sync", "svc-*"))
EXCLUDE_SETS = ((), ("app-legacy",), ("svc-*",))
#: Days left of the keys people made: expiring before (or right at) the next pass, due, almost
#: due, healthy.
DAYS = (0.5, 1, 5, 20, 29.5, 45, 100, 400, 729)
#: Where a pass can die (rotation.State's checkpoint names, plus the settling steps).
CHECKPOINTS = (
    "created",
    "verified",
    "pending-recorded",
    "secret-written",
    "delivered",
    "revoked",
    "finished-delivery",
    "retired",
)


#: ROTATOR_MODEL_PROFILE=slow: the Vault sink on OpenBao and the AWS sink on moto are drawn too
#: (``test_model_slow.py`` starts the servers; ``conftest.py`` picks the module to run).
SLOW = os.environ.get("ROTATOR_MODEL_PROFILE", "") == "slow"
SINKS: tuple[str, ...] = ("file", "file", "exec") + (("vault", "aws") if SLOW else ())


def _seam(name: str) -> bool:
    """Whether the generated space may include the issue-15 combination ``name``."""
    return name not in KNOWN_SEAMS


@st.composite
def deployments(draw: Any) -> Deployment:
    count = draw(st.integers(1, 4))
    sink = draw(st.sampled_from(SINKS))
    # The budget first: a small one is where urgency decides, so it should be common.
    budget = draw(st.sampled_from((1, 2, 3, 50)))
    if budget < 50 and count > 1 and not _seam("budget-across-workspaces"):
        budget = 50
    own_choices: tuple[str, ...] = ("none", "sink")
    if _seam("own-key-elsewhere"):
        own_choices += ("elsewhere",)
    if budget < 50 and not _seam("own-key-budget"):
        own_choices = ("none",)
    specs: list[WorkspaceSpec] = []
    # Workspaces often run the same services (app-billing in each): then one workspace's
    # record, key or budget share can be taken for another's.
    same_names = count > 1 and draw(st.booleans())
    if sink in ("vault", "aws"):
        # The rotator reads its credential from a file: it cannot be its own sink's target.
        own_choices = tuple(c for c in own_choices if c != "sink") or ("none",)
    for index in range(count):
        own = draw(st.sampled_from(own_choices))
        own_patterns = _seam("per-workspace-patterns") and draw(st.booleans())
        specs.append(
            WorkspaceSpec(
                name=f"ws-{'abcd'[index]}",
                key_names=draw(st.sampled_from(PATTERN_SETS)) if own_patterns else None,
                exclude_key_names=(
                    draw(st.sampled_from(EXCLUDE_SETS))
                    if own_patterns and draw(st.booleans())
                    else None
                ),
                own_key=own,
                memory=sink == "file" and own == "none" and draw(st.booleans()),
                # A rotator whose unmanaged credential expires is locked out by ops' own doing.
                admin_days_left=(
                    draw(st.sampled_from((700, 20, 0.8, 0.8))) if own != "none" else 700
                ),
                keys=(
                    tuple((name, draw(st.sampled_from(DAYS))) for name, _ in specs[0].keys)
                    if same_names and specs
                    else tuple(
                        draw(
                            st.lists(
                                st.tuples(st.sampled_from(NAMES), st.sampled_from(DAYS)),
                                min_size=1,
                                max_size=4,
                                unique_by=lambda k: k[0],
                            )
                        )
                    )
                ),
            )
        )
    listed_twice = count > 1 and _seam("listed-twice") and draw(st.booleans())
    twin_own = listed_twice and draw(st.booleans())
    if listed_twice:
        first = specs[0]
        specs[-1] = WorkspaceSpec(
            specs[-1].name, first.key_names, first.exclude_key_names, "none", False, 700, ()
        )
    spelled_twice = (
        count > 1
        and sink == "file"
        and not listed_twice
        and not specs[0].memory
        and not specs[1].memory
        and _seam("folder-spelled-twice")
        and draw(st.booleans())
    )
    exec_program = draw(
        st.sampled_from(
            ("folder", "folder", "flat", "flat")
            + (("chatty",) if _seam("exec-stderr-secret") else ())
            + (("listless",) if _seam("sink-list-fails") else ())
        )
    )
    flat = sink == "exec" and exec_program == "flat"
    shared_folder = not flat and (count == 1 or _seam("exec-shared-folder")) and draw(st.booleans())
    if spelled_twice or (shared_folder and sink == "exec") or flat:
        # One place for several workspaces: only the first may read its credential from it, or
        # the model itself, not the rotator, would hand one workspace the other's admin key.
        specs = [specs[0], *(replace(s, own_key="none") for s in specs[1:])]
    return Deployment(
        workspaces=tuple(specs),
        key_names=draw(st.sampled_from(PATTERN_SETS)),
        exclude_key_names=draw(st.sampled_from(EXCLUDE_SETS)),
        sink=sink,
        exec_program=exec_program,
        exec_shared_folder=shared_folder,
        budget=budget,
        concurrency=draw(st.sampled_from((1, 2, 4))),
        # The flat program has no compare-and-set: two workspaces writing one of its files at
        # the same instant is a race in ops' own program that no rotator can settle. One after
        # the other is what the workspace each record names must keep apart.
        workspace_concurrency=1 if flat else draw(st.sampled_from((1, 2))),
        grace_hours=draw(st.sampled_from((0, 0, 1, 24))),
        max_age_days=draw(st.sampled_from((None, None, 90))),
        max_retries=draw(st.sampled_from((0, 1))),
        listed_twice=listed_twice,
        folder_spelled_twice=spelled_twice,
        twin_own_credential=twin_own,
        shards=(
            draw(st.sampled_from((1, 1, 2)))
            if count > 1 and (_seam("twin-own-key-across-shards") or not twin_own)
            else 1
        ),
        declared_ids=draw(st.booleans()),
    )


#: API faults a step may queue for the next command: (method, path, options).
FAULTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("GET", "/api/data/api-keys", {"status": 500}),
    ("GET", "/api/data/api-keys", {"delay_seconds": 0.3}),
    ("GET", "/api/data/me", {"status": 503}),
    ("POST", "/api/data/api-keys", {"status": 502}),
    ("POST", "/api/data/api-keys", {"apply_then_drop": True}),
    ("POST", "/api/data/api-keys", {"status": 429, "retry_after": "0"}),
    ("DELETE", "*", {"status": 500}),
    ("DELETE", "*", {"drop": True}),
    ("*", "*", {"status": 429, "retry_after": "0"}),
)

#: How a person may spoil a sink entry's metadata by hand (each must block the credential).
METADATA_EDITS = (
    "unreadable",
    "key id garbage",
    "key id of another credential",
    "key id of another key of the credential",
    "previous key id set to the current one",
    "secret hash of nothing held",
    "delivery time garbage",
    # Not untrustworthy: a well-formed id of no key reads as a current key a person revoked
    # (the credential is missing and rotated at once, by design); only the safety invariants
    # judge what follows.
    "key id of no key",
)
#: The edits the rotator cannot tell from a real state of things (so it may act, safely).
UNBLOCKED_EDITS = frozenset({"key id of no key"})

#: What ops may change between passes.
SETTINGS_CHANGES = ("patterns", "workspace-patterns", "budget", "grace", "workspace listed")


def _metadata_edit(
    world: World, ws: str, credential: str, record: dict[str, Any], edit: str
) -> dict[str, Any] | Literal[False] | None:
    """The fields ``edit`` sets in ``record`` (None: the file made unreadable), or False when
    this record offers nothing to spoil that way."""
    current = record.get("key_id")
    if edit == "unreadable":
        return None
    if edit == "key id garbage":
        return {"key_id": "not/a key id"}
    if edit == "key id of no key":
        return {"key_id": "0a0a0a0a-no-such-key"} if current else False
    if edit == "key id of another credential":
        person = next(k for k in world.keys(ws) if k["name"] == PERSON_KEY)
        return {"key_id": str(person["id"])}
    if edit == "key id of another key of the credential":
        named = {record.get(f) for f in ("key_id", "previous_key_id", "pending_key_id")}
        others = sorted(
            str(k["id"])
            for k in world.keys(ws)
            # A live one: a revoked key's id is what a record of a credential whose current key
            # a person revoked names too (then it is missing, and rotated at once, by design).
            # Not one named like the held key: a create whose answer was lost (or a pass killed
            # after it) and its retry in the same second make two keys the API cannot tell
            # apart, and a record swapped between them is undetectable (a known limit).
            if world.credential_of(k) == credential
            and k["id"] not in named
            and world.live(k)
            and k["name"] != record.get("key_name")
        )
        return {"key_id": others[0]} if others and current else False
    if edit == "previous key id set to the current one":
        return {"previous_key_id": current} if current else False
    if edit == "secret hash of nothing held":
        pending = record.get("pending_key_id")
        return {"secret_sha256": "0" * 64} if current and not pending else False
    return {"delivered_at": "yesterday"}


SINK_FAULTS: tuple[str, ...] = (
    "write_secret",
    "write_record",
    "read_back",
    "read",
    "write_secret-applied",
    "list_credentials",
)


Rule = TypeVar("Rule", bound=Callable[..., None])


def _counted(step: Rule) -> Rule:
    """Counts each time a step of this kind is taken (``tests/model/stats.py``)."""

    @functools.wraps(step)
    def counting(*args: Any, **kwargs: Any) -> None:
        STATS.steps[step.__name__] += 1
        step(*args, **kwargs)

    return counting  # type: ignore[return-value]


class RotatorModel(RuleBasedStateMachine):
    """The rotator, its provider and its sinks, driven step by step."""

    world: World
    #: OpenBao and moto (tests/model/remote_targets.RemoteServers) in the slow profile.
    servers: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger()
        self.result: PassResult | None = None
        self.disturbed = False

    def teardown(self) -> None:
        if hasattr(self, "world"):
            self.world.close()

    # The first pass mostly follows at once: the one pass where a budget's order is judged.
    @initialize(deployment=deployments(), first_pass=st.sampled_from((True, True, False)))
    def deploy(self, deployment: Deployment, first_pass: bool = False) -> None:
        """Build the deployment; ``first_pass``: the CronJob's first run follows at once (the
        only pass sure to meet no fault, person or change first, which a budget's order over
        the workspaces needs to be judged)."""
        self.world = World.build(deployment, self.servers)
        STATS.examples += 1
        d = deployment
        STATS.deployments[f"workspaces={len(d.workspaces)}"] += 1
        STATS.deployments[f"sink={d.sink}"] += 1
        STATS.deployments[f"shards={d.shards}"] += 1
        STATS.deployments[f"memory-sinks={sum(s.memory for s in d.workspaces)}"] += 1
        for spec in d.workspaces:
            STATS.deployments[f"own-key={spec.own_key}"] += 1
        # What a deployment holds that ops should not have written: refused, or worked around.
        for bad, present in (
            ("workspace-listed-twice", d.listed_twice),
            ("folder-spelled-twice", d.folder_spelled_twice),
            (
                "one-exec-program-for-several-workspaces",
                d.sink == "exec" and d.exec_shared_folder and len(d.workspaces) > 1,
            ),
            ("exec-program-printing-its-key", d.sink == "exec" and d.exec_program == "chatty"),
            ("exec-program-that-cannot-list", d.sink == "exec" and d.exec_program == "listless"),
            (
                "exec-program-ignoring-its-workspace",
                d.sink == "exec" and d.exec_program == "flat" and len(d.workspaces) > 1,
            ),
            ("own-key-delivered-elsewhere", any(s.own_key == "elsewhere" for s in d.workspaces)),
        ):
            if present:
                STATS.bad_inputs[bad] += 1
        if first_pass:
            STATS.steps["deploy: a pass right after"] += 1
            self.safe()
            self._run_passes()

    # -- people ------------------------------------------------------------------------------

    @rule(data=st.data(), name=st.sampled_from(NAMES), days=st.sampled_from(DAYS))
    @_counted
    def person_creates_key(self, data: Any, name: str, days: float) -> None:
        self.world.add_person_key(self._workspace(data), name, days)

    @rule(data=st.data(), name=st.sampled_from(NAMES), days=st.sampled_from(DAYS))
    @_counted
    def person_creates_lookalike(self, data: Any, name: str, days: float) -> None:
        self.world.add_lookalike(self._workspace(data), name, days)

    @rule(data=st.data())
    @_counted
    def person_revokes_key(self, data: Any) -> None:
        ws = self._workspace(data)
        in_use = self.world.emu.key_id_of(self.world.credential(ws))
        live = [
            str(k["id"])
            for k in sorted(
                self.world.keys(ws, include_revoked=False), key=lambda k: (k["name"], k["expires"])
            )
            if k["id"] != in_use and self.world.live(k) and k["name"] != PERSON_KEY
        ]
        key_id = self._pick(data, live, "key")
        if key_id is not None:
            self.world.revoke(ws, key_id)
            # The held key gone makes its credential missing: its other keys are unknown until
            # the replacement is delivered, orphans a pass later (as after a deleted entry).
            self.disturbed = True
            found = self.world.key(key_id)
            if found is not None:
                self._untamper(ws, self.world.credential_of(found[1]))

    @rule(data=st.data())
    @_counted
    def person_revokes_credential(self, data: Any) -> None:
        """Every key of one credential revoked by hand: the sink remembers it, nothing lists it."""
        ws = self._workspace(data)
        in_use = self.world.emu.key_id_of(self.world.credential(ws))
        live = [
            k
            for k in self.world.keys(ws, include_revoked=False)
            if k["id"] != in_use and self.world.live(k) and k["name"] != PERSON_KEY
        ]
        credential = self._pick(data, sorted({self.world.credential_of(k) for k in live}), "name")
        for key in live:
            if self.world.credential_of(key) == credential:
                self.world.revoke(ws, str(key["id"]))
        if credential is not None:
            self._untamper(ws, credential)
            self.disturbed = True  # missing now: see person_revokes_key

    @rule(data=st.data())
    @_counted
    def person_deletes_sink_entry(self, data: Any) -> None:
        ws = self._workspace(data)
        target = self.world.targets[ws]
        # Not the own key's entry: that is the file the rotator reads its credential from.
        credential = self._pick(data, sorted(c for c in target.credentials() if c != OWN), "entry")
        if credential is not None:
            target.delete(credential)
            self.ledger.tampered.pop((ws, credential), None)  # a person's fix of an edit, too
            self.ledger.edited.discard((ws, credential))
            # Its rotator-made keys are "unknown" until the next rotation writes a record, and
            # orphans only from the pass after that: convergence is due two passes later.
            self.disturbed = True
            # Ops retired this target by hand: it is no longer one that "was delivered".
            self.ledger.delivered.discard((ws, credential))
            self.ledger.owners.pop((self.world.place_of(ws), credential), None)
            for other, other_target in self.world.targets.items():
                if other_target is target or getattr(other_target, "folder", None) == getattr(
                    target, "folder", object()
                ):
                    self.ledger.delivered.discard((other, credential))

    # In a place several workspaces share, an edit of one workspace's entry is an edit of the
    # other's too, which the ledger of blocked entries cannot follow.
    @precondition(lambda self: not _flat(self.world))
    @rule(data=st.data(), edit=st.sampled_from(METADATA_EDITS))
    @_counted
    def person_edits_metadata(self, data: Any, edit: str) -> None:
        """A person edits a sink entry's metadata by hand into something untrustworthy: the
        credential must be blocked (I8), never acted on with a wrong key."""
        world = self.world
        ws = self._workspace(data)
        target = world.targets[ws]
        credential = self._pick(
            data,
            sorted(
                c
                for c in target.credentials()
                if c != OWN
                and (ws, c) not in self.ledger.tampered
                and world.deployment.selects(world.spec(ws), c)
            ),
            "entry",
        )
        record = target.held(credential).record if credential is not None else None
        if credential is None or record is None or "unreadable" in record:
            return
        changes = _metadata_edit(world, ws, credential, record, edit)
        if changes is False or not target.edit_record(credential, changes):
            return
        self.ledger.edited.add((ws, credential))
        if edit in UNBLOCKED_EDITS:
            self.disturbed = True
        else:
            self.ledger.tampered[(ws, credential)] = tamper_snapshot(world, ws, credential)
        self.ledger.forged.update(str(v) for k, v in (changes or {}).items() if k.endswith("_id"))
        STATS.bad_inputs[f"metadata: {edit}"] += 1

    @rule(data=st.data(), change=st.sampled_from(SETTINGS_CHANGES))
    @_counted
    def ops_change_settings(self, data: Any, change: str) -> None:
        """Ops change the settings between passes (what the next command reads)."""
        world = self.world
        d, listed = world.deployment, list(world.listed)
        if change == "patterns":
            d = replace(
                d,
                key_names=data.draw(st.sampled_from(PATTERN_SETS), label="key names"),
                exclude_key_names=data.draw(st.sampled_from(EXCLUDE_SETS), label="excluded"),
            )
        elif change == "workspace-patterns":
            if d.listed_twice:
                return  # the twin's patterns are the first entry's
            ws = self._workspace(data)
            names = data.draw(st.sampled_from((None, *PATTERN_SETS)), label="key names")
            d = replace(
                d,
                workspaces=tuple(
                    replace(s, key_names=names) if s.name == ws else s for s in d.workspaces
                ),
            )
        elif change == "budget":
            d = replace(d, budget=data.draw(st.sampled_from((1, 2, 3, 50)), label="budget"))
        elif change == "grace":
            d = replace(d, grace_hours=data.draw(st.sampled_from((0, 1, 24, 72)), label="grace"))
        else:  # a workspace taken out of the workspaces file, or put back
            if refused_setup(world) or len(d.workspaces) < 2:
                return
            ws = str(data.draw(st.sampled_from([s.name for s in d.workspaces[1:]]), label="ws"))
            wanted = set(listed) ^ {ws}
            listed = [s.name for s in d.workspaces if s.name in wanted]
        world.change_settings(d, listed)
        self.disturbed = True
        STATS.steps[f"ops_change_settings: {change}"] += 1

    # -- time --------------------------------------------------------------------------------

    @rule(hours=st.sampled_from((0.25, 1, 6, 25, 24 * 3, 24 * 10)))
    @_counted
    def time_passes(self, hours: float) -> None:
        self.world.emu.advance(timedelta(hours=hours))

    # -- faults, queued for the next command -------------------------------------------------

    @rule(fault=st.sampled_from(FAULTS), times=st.sampled_from((1, 2)))
    @_counted
    def api_fault(self, fault: tuple[str, str, dict[str, Any]], times: int) -> None:
        method, path, options = fault
        self.world.faults.append((method, path, times, options))
        self.disturbed = True
        shown = ",".join(f"{k}={v}" for k, v in sorted(options.items()))
        STATS.faults[f"api {method} {path} {shown}"] += 1

    @rule(data=st.data(), skip=st.integers(0, 3), command=st.sampled_from(("run-once", "rotate")))
    @_counted
    def while_one_me_fails(self, data: Any, skip: int, command: str) -> None:
        """``run-once`` or ``rotate NAME --now`` while ``me`` fails for one entry only: the
        ``skip``-th ``me`` of the command, and its retries. Each entry asks ``me`` once as a
        command starts, in the workspaces file's order when they are surveyed one at a time:
        this is one workspace's, or one twin's and not the other's (which only the entries'
        credentials compared tell apart)."""
        times = 1 + self.world.deployment.max_retries
        options = {"status": 503, "skip": skip}
        self.world.faults.append(("GET", "/api/data/me", times, options))
        self.disturbed = True
        STATS.faults[f"api GET /api/data/me status=503 for one entry (skip {skip})"] += 1
        if command == "run-once":
            self._run_passes()
        else:
            self._rotate_drawn(data)

    @precondition(lambda self: bool(self.world.memory_sinks))
    @rule(
        data=st.data(),
        operation=st.sampled_from(SINK_FAULTS).filter(
            lambda op: op != "list_credentials" or _seam("sink-list-fails")
        ),
    )
    @_counted
    def sink_fault(self, data: Any, operation: str) -> None:
        name = data.draw(st.sampled_from(sorted(self.world.memory_sinks)), label="sink")
        sink = self.world.memory_sinks[name]
        if operation == "write_secret-applied":
            sink.fail_next_after_applying["write_secret"] = SinkUnavailableError("injected")
        elif operation in ("read", "read_back", "list_credentials"):
            sink.fail_next[operation] = SinkError("injected")
        else:
            sink.fail_next[operation] = SinkUnavailableError("injected")
        self.disturbed = True
        STATS.faults[f"sink {operation}"] += 1

    # -- the rotator -------------------------------------------------------------------------

    @rule()
    @_counted
    def run_once(self) -> None:
        self._run_passes()

    @rule(hours=st.sampled_from((12, 24)))
    @_counted
    def a_day_then_a_pass(self, hours: float) -> None:
        """The CronJob's own rhythm: time passes, then ``run-once``."""
        self.world.emu.advance(timedelta(hours=hours))
        self.safe()
        self._run_passes()

    @rule(step=st.sampled_from(CHECKPOINTS))
    @_counted
    def pass_killed_at(self, step: str) -> None:
        def checkpoint(reached: str, _credential: str) -> None:
            if reached == step:
                STATS.crash_points[step] += 1
                raise Crash(step)

        self._run_passes(checkpoint)

    @rule(data=st.data())
    @_counted
    def rotate_now(self, data: Any) -> None:
        self._rotate_drawn(data)

    def _rotate_drawn(self, data: Any) -> None:
        """``rotate NAME --now`` of a drawn workspace and name, with ``--workspace`` or not."""
        world = self.world
        ws = self._workspace(data)
        name = self._pick(
            data, sorted(selected_credentials(world, ws) - {OWN}) or list(NAMES), "name"
        )
        assert name is not None
        holders = [w for w in world.listed if name in selected_credentials(world, w)]
        omit = data.draw(
            st.booleans() if _seam("rotate-ambiguous") else st.just(False), label="omit --workspace"
        )
        self._rotate(ws, name, name_workspace=not (len(holders) > 1 and omit))

    @rule(data=st.data(), list_fails=st.booleans())
    @_counted
    def leak_revoked_by_hand_then_rotated(self, data: Any, list_fails: bool) -> None:
        """A key leaks: a person revokes every key of its credential in the web app at once,
        then asks the rotator for a new one (``rotate NAME --now --workspace WS``), maybe while
        the workspace's sink cannot list what it holds (a memory sink's list fault; the
        listless program never lists)."""
        world = self.world
        ws = self._workspace(data)
        target = world.targets[ws]
        name = self._pick(
            data,
            sorted(
                c
                for c in target.credentials()
                if c != OWN
                and world.deployment.selects(world.spec(ws), c)
                and target.held(c).secret is not None
            ),
            "name",
        )
        if name is None:
            return
        in_use = world.emu.key_id_of(world.credential(ws))
        for key in world.keys(ws, include_revoked=False):
            if world.credential_of(key) == name and world.live(key) and key["id"] != in_use:
                world.revoke(ws, str(key["id"]))
        self._untamper(ws, name)
        self.disturbed = True  # missing now: see person_revokes_key
        sink = world.memory_sinks.get(ws)
        if list_fails and sink is not None:
            # For the whole command: a one-shot fault may be met by its read-only look first.
            sink.fail_always["list_credentials"] = SinkError("injected: no right to list")
            STATS.faults["sink list_credentials (lasting)"] += 1
        try:
            self._rotate(ws, name, name_workspace=True)
        finally:
            if sink is not None:
                sink.fail_always.pop("list_credentials", None)

    def _rotate(self, ws: str, name: str, *, name_workspace: bool) -> None:
        """``rotate NAME --now`` (with ``--workspace WS`` when ``name_workspace``), judged."""
        world = self.world
        holders = [w for w in world.listed if name in selected_credentials(world, w)]
        argv = ["rotate", name, "--now"] + (["--workspace", ws] if name_workspace else [])
        before = {w: world.targets[w].held(name).secret for w in world.ws_ids}
        keys_before = {w: _key_states(world, w, other_than=name) for w in world.ws_ids}
        unlisted = self._list_faults()
        result = world.run(*argv)
        self.result = result
        self._check_listed(result, unlisted)
        self._reset_faults()
        if result.exit_code not in (0, 1, 2, 3):
            fail("I7 rotate-exit", f"{argv} -> {result.exit_code}")
        valid = not refused_setup(world)
        managed = name in selected_credentials(world, ws)
        if name_workspace and result.exit_code == 2 and managed and valid:
            fail("I7 rotate-refused-managed", f"{argv}: {name} is managed in {ws}, yet exit 2")
        if not name_workspace and result.exit_code != 2:
            fail("I7 rotate-ambiguous", f"{argv}: {name} is in {holders}, exit {result.exit_code}")
        if result.exit_code == 0 and (ws, name) in self.ledger.tampered:
            fail("I7 rotate-exit-0-blocked", f"{argv}: its metadata was edited, yet exit 0")
        if result.exit_code == 2 and result.changed:
            fail("I7 exit-2-but-changed", f"{argv} changed keys yet exited 2")
        for w in world.ws_ids:
            if _key_states(world, w, other_than=name) != keys_before[w]:
                fail("I3 rotate-touched-other", f"{argv} changed keys of another credential in {w}")
        # A record a person edited may name another key than the one held: then the rotator
        # cannot know which key leaked (the held one goes as an orphan a pass later).
        edited = (ws, name) in self.ledger.edited
        if result.exit_code == 0 and before[ws] is not None and not edited:
            old = world.emu.key_id_of(str(before[ws]))
            found = world.key(str(old))
            assert found is not None
            if world.live(found[1]):
                fail("I7 rotate-exit-0-old-live", f"{argv} exit 0 but leaked key {old} works")
        STATS.invariants_held["I3"] += 1
        STATS.invariants_held["I7"] += 1

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def safe(self) -> None:
        if hasattr(self, "world"):
            check_safety(self.world, self.ledger, self.result)
            self.result = None

    # -- helpers -----------------------------------------------------------------------------

    def _workspace(self, data: Any) -> str:
        """A workspace the workspaces file lists now (people act in any: see ``_any``)."""
        names = sorted(self.world.listed)
        return str(data.draw(st.sampled_from(names), label="workspace"))

    def _any_workspace(self, data: Any) -> str:
        names = sorted(self.world.ws_ids)
        return str(data.draw(st.sampled_from(names), label="workspace"))

    @staticmethod
    def _pick(data: Any, items: list[str], label: str) -> str | None:
        """One of ``items``, drawn the same way however many there are: which keys exist can
        depend on thread timing, and Hypothesis needs the same draws to replay an example."""
        index = data.draw(st.integers(0, 63), label=label)
        return items[index % len(items)] if items else None

    def _untamper(self, ws: str, credential: str) -> None:
        """A person revoked keys of an edited credential: what its record names may now be
        gone (then it is missing, and rotating it is right), so its block ends here (the
        safety invariants still hold over it)."""
        for other, ws_id in self.world.ws_ids.items():
            if ws_id == self.world.ws_ids[ws]:
                self.ledger.tampered.pop((other, credential), None)

    def _list_faults(self) -> dict[str, str]:
        """The workspaces whose sink will fail to list at the next command: ``once`` (a
        memory sink's one-shot fault) or ``always`` (the listless program, a lasting fault)."""
        world = self.world
        if _listless(world):
            return dict.fromkeys(world.listed, "always")
        faults = {}
        for ws, sink in world.memory_sinks.items():
            if "list_credentials" in sink.fail_always:
                faults[ws] = "always"
            elif "list_credentials" in sink.fail_next:
                faults[ws] = "once"
        return faults

    def _check_listed(self, result: PassResult, unlisted: dict[str, str]) -> None:
        """I7: a command during which a workspace's sink could not list what it holds never
        exits 0 (what it holds but no key names stayed out of sight)."""
        world, left = self.world, self._list_faults()
        met = {
            ws
            for ws, kind in unlisted.items()
            if (kind == "always" and world.ws_ids[ws] in result.touched)
            or (kind == "once" and ws not in left)
        }
        if result.exit_code == 0 and met:
            fail("I7 exit-0-but-unlisted", f"{result.argv}: {sorted(met)} could not list, exit 0")
        STATS.invariants_held["I7"] += 1

    def _reset_faults(self) -> None:
        """Faults are queued for one command: what it did not meet is dropped."""
        for sink in self.world.memory_sinks.values():
            sink.fail_next.clear()
            sink.fail_next_after_applying.clear()

    def _run_passes(self, checkpoint: Callable[[str, str], None] | None = None) -> None:
        """``run-once``; sharded, one per ROTATOR_SHARD_INDEX, as the Indexed CronJob's pods."""
        world = self.world
        # A pass with no fault queued and no set-up refused spends its budget by urgency alone.
        # (Not with the flat program: a workspace whose credential another one holds in their
        # shared place is blocked, and waits however urgent it is. Nor with the listless one: a
        # credential only its sink remembers is out of the rotator's sight, so it cannot be
        # ranked, and the pass says so with exit 1.)
        judged = (
            not self.disturbed
            and not refused_setup(world)
            and not _flat(world)
            and not _listless(world)
        )
        results = []
        for index in range(world.deployment.shards):
            before = urgencies(world, self.ledger, world.listed) if judged else {}
            shard = index if world.deployment.shards > 1 else None
            unlisted = self._list_faults()
            result = world.run("run-once", checkpoint=checkpoint, shard=shard)
            self._check_listed(result, unlisted)
            results.append(result)
            if judged and result.exit_code is not None:
                taken = [w for w in world.listed if world.ws_ids[w] in result.touched]
                check_budget_order(world, {k: v for k, v in before.items() if k[0] in taken})
                STATS.invariants_held["I10"] += 1
        self._pass(results)

    def _pass(self, results: list[PassResult]) -> None:
        """Judge one round of passes (one, or one per shard) and count quiet rounds."""
        self._reset_faults()
        world = self.world
        for result in results[:-1]:
            check_safety(world, self.ledger, result)  # its log; the last one's by ``safe``
        self.result = results[-1]
        sharded = world.deployment.shards > 1
        for result in results:
            if result.exit_code is None:
                self.disturbed = True
                continue
            if result.exit_code not in (0, 1, 2, 3):
                fail("I7 run-once-exit", f"run-once -> {result.exit_code}")
            taken = [w for w in world.listed if world.ws_ids[w] in result.touched]
            check_exit_code(world, result, self.ledger, taken if sharded else None)
            STATS.invariants_held["I7"] += 1
        if sharded and all(r.exit_code in (0, 1, 3) for r in results):
            _check_shards(world, results)
            STATS.invariants_held["I9"] += 1
        usable = all(
            world.live(world.key(str(world.emu.key_id_of(world.credential(w))))[1])  # type: ignore[index]
            for w in world.listed
        )
        # A program that can never list keeps every pass incomplete (exit 1, checked above): a
        # credential whose keys all vanished stays out of sight, so no convergence can be asked
        # while that fault lasts, only the honest exit code.
        incomplete = _listless(world) and any(r.exit_code != 0 for r in results)
        crashed = any(r.exit_code is None for r in results)
        if self.disturbed or not usable or crashed or incomplete:
            self.ledger.quiet_passes = 0
            self.disturbed = False
            return
        self.ledger.quiet_passes += 1
        if self.ledger.quiet_passes >= 2:
            check_safety(world, self.ledger, results[-1])
            check_converged(world, self.ledger)
            STATS.invariants_held["I6"] += 1


def _check_shards(world: World, results: list[PassResult]) -> None:
    """I9: the shards' passes took every listed workspace, each exactly once (as each pass
    says at its start), and each pass used no other workspace's credential but to ask ``me``
    (``touched``: a pod asks it of other shards' entries, to find one workspace listed twice)."""
    seen: dict[str, int | None] = {}
    for result in results:
        started = [e for e in result.events() if e.get("event") == "pass.started"]
        names = {str(n) for e in started for n in e.get("workspaces", ())}
        for name in sorted(names):
            if name in seen:
                fail("I9 shard-overlap", f"shards {seen[name]} and {result.shard} both took {name}")
            seen[name] = result.shard
        foreign = result.touched - {world.ws_ids[n] for n in names if n in world.ws_ids}
        if foreign:
            fail("I9 shard-foreign", f"shard {result.shard} used the credential of {foreign}")
    left = sorted(set(world.listed) - set(seen))
    if left:
        fail("I9 shard-missed", f"no shard took {left}")


def _flat(world: World) -> bool:
    """Whether every workspace's exec program shares one folder the rotator cannot see."""
    return world.deployment.sink == "exec" and world.deployment.exec_program == "flat"


def _listless(world: World) -> bool:
    """Whether every workspace's exec program fails to list (a lasting fault)."""
    return world.deployment.sink == "exec" and world.deployment.exec_program == "listless"


def _key_states(world: World, ws: str, *, other_than: str) -> set[tuple[str, bool]]:
    """Every key of ``ws`` but those of credential ``other_than``, and whether it is revoked."""
    return {
        (str(k["id"]), bool(k["revoked"]))
        for k in world.keys(ws)
        if world.credential_of(k) != other_than
    }


def _profile() -> str:
    # ROTATOR_MODEL_SHRINK=0 reports the first failure unshrunk (exploring: shrinking an example
    # of a dozen passes can take minutes).
    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
    if os.environ.get("ROTATOR_MODEL_SHRINK", "1") != "0":
        phases.append(Phase.shrink)
    settings.register_profile(
        "rotator-model-ci",
        derandomize=True,
        database=None,
        max_examples=100,
        stateful_step_count=20,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        phases=phases,
    )
    examples = os.environ.get("ROTATOR_MODEL_EXAMPLES", "")
    settings.register_profile(
        "rotator-model-long",
        max_examples=int(examples) if examples.isdigit() else 500,
        stateful_step_count=30,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        phases=phases,
    )
    if SLOW:
        settings.register_profile(
            "rotator-model-slow",
            derandomize=not examples,
            database=None,
            max_examples=int(examples) if examples.isdigit() else 25,
            stateful_step_count=20,
            deadline=None,
            print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            phases=phases,
        )
        return "rotator-model-slow"
    return "rotator-model-long" if examples else "rotator-model-ci"


PROFILE = _profile()
TestRotatorModel = RotatorModel.TestCase
TestRotatorModel.settings = settings.get_profile(PROFILE)
