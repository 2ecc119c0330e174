"""The invariants the model checks after every step, judged from the emulator's own key list and
what each sink target holds (read directly), never from the rotator's report.

Each failure is an AssertionError whose message starts with a tag naming the invariant, e.g.
``[I1 held-key-revoked]``, so a shrunk example says at once which promise broke. The invariants
are :data:`INVARIANTS` (``docs/reliability.md`` is generated from it).

The bookkeeping is :class:`Ledger`: which targets were ever delivered, which key ids a record
ever named, how many quiet passes ran. Nothing else is remembered between steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tests.model.stats import STATS
from tests.model.system import NEXT_PASS, ORPHAN_MIN_AGE, OWN, Held, PassResult, World

#: Every invariant the model checks: its tag, and the promise it holds the rotator to.
INVARIANTS: dict[str, str] = {
    "I1": "No key a sink target holds (its current or in-flight secret) was revoked, nor the key "
    "the rotator itself authenticates with.",
    "I2": "Every target that has ever been delivered holds a key the emulator issued for its own "
    "workspace (a place several workspaces share unbeknown to the rotator: for the workspace "
    "that delivered there first), and, right after a pass that exited 0, one that works past "
    "the next pass.",
    "I3": "No key outside the configured patterns was created or revoked by the rotator (keys made "
    "while earlier settings selected their credential excepted).",
    "I4": "No person-made key (a look-alike included) was revoked unless some record named it as "
    "a credential's current or previous key: extras are never revoked.",
    "I5": "No secret the emulator ever issued is in a log line, standard output or sink metadata.",
    "I6": "Two quiet passes after the last disturbance the state has converged: no pending "
    "delivery, the record names the held key, no orphan older than the minimum age, no previous "
    "key past its grace.",
    "I7": "The exit code tells the truth: 0 only when nothing due was left undone, nothing "
    "expires before the next pass and no credential is blocked; 3 only when nothing changed; 2 "
    "only for a refused set-up; two workspaces sharing one place always 2, one workspace "
    "listed twice always 1 (3 when no workspace could be used at all); never 0 when a sink "
    "could not list what it holds; rotate refuses a name several workspaces hold.",
    "I8": "A credential whose metadata a person edited into something untrustworthy (unreadable, "
    "a garbage or foreign key id, one key in two roles, a hash of nothing held, a garbage time) "
    "is blocked: its sink entry stays as the person left it and none of its keys is created or "
    "revoked.",
    "I9": "The shards of a sharded deployment take every listed workspace exactly once between "
    "them.",
    "I10": "A pass the budget cuts short spends it on the most urgent rotations over all its "
    "workspaces: no credential rotated had more days left than a due one left waiting.",
}


@dataclass
class Ledger:
    """The model's own memory between steps: small on purpose."""

    #: (workspace, credential) targets that have held a secret (a person's delete forgets one).
    delivered: set[tuple[str, str]] = field(default_factory=set)
    #: Key ids some record named as current, previous or pending: keys a retire may revoke.
    ever_recorded: set[str] = field(default_factory=set)
    #: Passes since the last fault, crash or sink failure (convergence is due after two).
    quiet_passes: int = 0
    #: (workspace, credential) entries a person edited into untrustworthy metadata, with what
    #: the entry and the credential's keys were right after the edit.
    tampered: dict[tuple[str, str], Tampered] = field(default_factory=dict)
    #: Key ids a person wrote into a record: never a record the rotator wrote, so never a key a
    #: retire may revoke.
    forged: set[str] = field(default_factory=set)
    #: (workspace, credential) entries a person ever edited (until deleted): after a person's
    #: revoke ends the block's tracking, the record may still be untrustworthy, so blocked.
    edited: set[tuple[str, str]] = field(default_factory=set)
    #: (place, credential) -> the workspace id whose key that place held first, for a place
    #: several workspaces share unbeknown to the rotator (the ``flat`` exec program): its
    #: consumer reads that workspace's key, and must never be handed another's.
    owners: dict[tuple[str, str], str] = field(default_factory=dict)


@dataclass(frozen=True)
class Tampered:
    """A sink entry as a person's edit left it, and the keys of its credential then."""

    held: Held
    keys: frozenset[str]
    revoked: frozenset[str]


def fail(tag: str, detail: str) -> None:
    STATS.failed(tag)
    raise AssertionError(f"[{tag}] {detail}")


def _parse(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def observe(world: World, ledger: Ledger) -> None:
    """Note what every target holds now (before judging, so a record seen now counts)."""
    for ws, target in world.targets.items():
        for credential in target.credentials():
            if (ws, credential) in ledger.tampered:
                continue  # the ids in a person's edit are no record the rotator wrote
            held = target.held(credential)
            # A target is a credential the workspace manages, in its sink: what else lies in a
            # place two workspaces share is the other's.
            if held.secret is not None and world.deployment.selects(world.spec(ws), credential):
                ledger.delivered.add((ws, credential))
            if held.record is not None:
                for name in ("key_id", "previous_key_id", "pending_key_id"):
                    if held.record.get(name) and held.record[name] not in ledger.forged:
                        ledger.ever_recorded.add(str(held.record[name]))


def check_safety(world: World, ledger: Ledger, result: PassResult | None = None) -> None:
    """I1 to I5, and no crash of the rotator itself, after any step."""
    observe(world, ledger)
    _check_targets(world, ledger)
    STATS.invariants_held["I1"] += 1
    STATS.invariants_held["I2"] += 1
    _check_selection(world)
    STATS.invariants_held["I3"] += 1
    _check_people(world, ledger)
    STATS.invariants_held["I4"] += 1
    _check_secrets(world, result)
    STATS.invariants_held["I5"] += 1
    _check_tampered(world, ledger)
    STATS.invariants_held["I8"] += 1
    if result is not None:
        for event in result.events():
            if event.get("event") == "rotator.crashed":
                fail("crash", f"rotator {' '.join(result.argv)} crashed: {event}")
        _check_one_credential_twice(world, result)


def _check_one_credential_twice(world: World, result: PassResult) -> None:
    """I7: one credential in two entries is known before any request, so no command ever
    creates or revokes a key in that workspace, whatever ``me`` answers (or fails to)."""
    d = world.deployment
    if d.listed_twice and not d.twin_own_credential:
        if world.ws_ids[d.workspaces[0].name] in result.changed_in:
            fail(
                "I7 listed-twice-changed", f"{result.argv} changed keys of a workspace listed twice"
            )
        STATS.invariants_held["I7"] += 1


def _check_targets(world: World, ledger: Ledger) -> None:
    for ws, target in world.targets.items():
        spec = world.spec(ws)
        for credential in sorted(target.credentials() | _delivered_of(ledger, ws)):
            if not world.deployment.selects(spec, credential):
                continue  # not this workspace's target (I3 judges keys made for it)
            held = target.held(credential)
            if held.secret is None:
                if (ws, credential) in ledger.delivered:
                    fail("I2 target-emptied", f"{ws}/{credential} held a key and holds none now")
                continue
            key_id = world.emu.key_id_of(held.secret)
            if key_id is None:
                fail("I2 unknown-secret", f"{ws}/{credential} holds a secret never issued")
            found = world.key(str(key_id))
            assert found is not None
            owner, key = found
            expected = world.ws_ids[ws]
            if len(world.sharing(ws)) > 1:
                # A place several workspaces share: the first to deliver there owns it.
                place = (world.place_of(ws), credential)
                expected = ledger.owners.setdefault(place, world.ws_ids[owner])
            if world.ws_ids[owner] != expected:
                fail(
                    "I2 foreign-key",
                    f"{ws}/{credential} holds key {key_id} ({key['name']}) of workspace {owner}",
                )
            if key["revoked"] and key_id not in world.people_revoked:
                fail("I1 held-key-revoked", f"{ws}/{credential} holds revoked key {key_id}")
    for ws in world.ws_ids:
        key_id = world.emu.key_id_of(world.credential(ws))
        found = world.key(str(key_id))
        if found and found[1]["revoked"] and key_id not in world.people_revoked:
            fail("I1 own-credential-revoked", f"{ws}'s rotator authenticates with revoked {key_id}")


def _check_tampered(world: World, ledger: Ledger) -> None:
    for (ws, credential), then in sorted(ledger.tampered.items()):
        where = f"{ws}/{credential}"
        if world.targets[ws].held(credential) != then.held:
            fail("I8 blocked-entry-changed", f"{where}: the rotator wrote over a person's edit")
        for key in world.keys(ws):
            if world.credential_of(key) != credential:
                continue
            if key["id"] not in then.keys and world.rotator_made(ws, key):
                fail("I8 blocked-key-created", f"{where}: {key['name']} ({key['id']}) created")
            revoked_now = key["revoked"] and key["id"] not in world.people_revoked
            if revoked_now and key["id"] not in then.revoked:
                fail("I8 blocked-key-revoked", f"{where}: {key['name']} ({key['id']}) revoked")


def tamper_snapshot(world: World, ws: str, credential: str) -> Tampered:
    keys = [k for k in world.keys(ws) if world.credential_of(k) == credential]
    return Tampered(
        world.targets[ws].held(credential),
        frozenset(str(k["id"]) for k in keys),
        frozenset(str(k["id"]) for k in keys if k["revoked"]),
    )


def _delivered_of(ledger: Ledger, ws: str) -> set[str]:
    return {c for w, c in ledger.delivered if w == ws}


def _check_selection(world: World) -> None:
    by_id: dict[str, list[str]] = {}
    for ws, ws_id in world.ws_ids.items():
        by_id.setdefault(ws_id, []).append(ws)
    for names in by_id.values():
        specs = [world.spec(n) for n in names]
        for key in world.keys(names[0]):
            credential = world.credential_of(key)
            if any(world.deployment.selects(s, credential) for s in specs):
                continue
            earlier = world.made_under_earlier_settings
            if key["id"] not in world.model_made and key["id"] not in earlier:
                fail("I3 unselected-key-created", f"{names}: {key['name']} ({key['id']})")
            if (
                key["revoked"]
                and key["id"] not in world.people_revoked
                and key["id"] not in world.revoked_under_earlier_settings
            ):
                fail("I3 unselected-key-revoked", f"{names}: {key['name']} ({key['id']})")


def _check_people(world: World, ledger: Ledger) -> None:
    for ws in world.ws_ids:
        for key in world.keys(ws):
            if not key["revoked"] or key["id"] in world.people_revoked:
                continue
            # A person's key may be current (the newest one, while the sink holds no record: a
            # first rotation, or a wiped sink; a look-alike too) and then retired; an extra never.
            if key["id"] in world.model_made and key["id"] not in ledger.ever_recorded:
                tag = (
                    "I4 lookalike-revoked" if key["id"] in world.lookalikes else "I4 extra-revoked"
                )
                fail(tag, f"{ws}: {key['name']} ({key['id']}) was never current or previous")


def _check_secrets(world: World, result: PassResult | None) -> None:
    issued = world.emu.issued_secrets()
    texts = [text for target in world.targets.values() for text in target.texts()]
    for secret in issued:
        if result is not None and (secret in result.log or secret in result.stdout):
            line = next((x for x in result.log.splitlines() if secret in x), "stdout")
            fail("I5 secret-in-log", line.replace(secret, "<SECRET>")[:300])
        if any(secret in text for text in texts):
            fail("I5 secret-in-metadata", "a sink's metadata holds a secret")


# ------------------------------------------------------------------------------ after a pass


def selected_credentials(world: World, ws: str) -> set[str]:
    """The credentials of ``ws`` that ops asked to manage and that exist (a key, or a record)."""
    spec = world.spec(ws)
    names = {world.credential_of(k) for k in world.keys(ws, include_revoked=False)}
    target = world.targets[ws]
    shared = len(world.sharing(ws)) > 1
    for credential in target.credentials():
        record = target.held(credential).record
        # In a place several workspaces share, a record is the workspace's it names.
        if record is not None and (not shared or record.get("workspace") == ws):
            names.add(credential)
    return {c for c in names if world.deployment.selects(spec, c)}


def budget_suffices(world: World) -> bool:
    """Whether one pass may rotate every managed credential (else some wait, by design)."""
    total = sum(len(selected_credentials(world, ws)) for ws in world.listed)
    return world.deployment.budget >= total


def check_exit_code(
    world: World, result: PassResult, ledger: Ledger, workspaces: list[str] | None = None
) -> None:
    """I7: what the exit code claims, against what the provider and the sinks hold now
    (``workspaces``: the ones this pass took, when sharded; else every listed one)."""
    code = result.exit_code
    if refused_at_start(world) and code != 2:
        fail("I7 refused-setup-not-refused", f"{result.argv} exited {code}, not 2")
    # Exit 3 says no workspace could be used at all (the API failing, every admin key dead; of
    # this pod's, when sharded): nothing is done there, and nothing could tell twins apart.
    considered = world.listed if workspaces is None else workspaces
    unusable = result.faulted or not any(
        world.live(_key_of_secret(world, world.credential(ws))) for ws in considered
    )
    if world.deployment.listed_twice and (code == 0 or (code == 3 and not unusable)):
        fail("I7 listed-twice-not-refused", f"{result.argv} exited {code}, not 1")
    if code == 3 and result.changed:
        fail("I7 exit-3-but-changed", f"{result.argv} changed keys yet exited 3")
    if code == 2:
        if result.changed:
            fail("I7 exit-2-but-changed", f"{result.argv} changed keys yet exited 2")
        if not refused_setup(world) and result.argv[0] == "run-once":
            fail("I7 exit-2-valid-setup", f"run-once refused a valid set-up:\n{result.stdout}")
    if code != 0 or result.argv[0] != "run-once":
        return
    now = world.emu.now()
    every = budget_suffices(world)
    taken = world.listed if workspaces is None else workspaces
    for ws, credential in sorted(ledger.tampered):
        if ws in taken and world.deployment.selects(world.spec(ws), credential):
            fail("I7 exit-0-but-blocked", f"{ws}/{credential}: its metadata was edited, exit 0")
    for ws in taken:
        target = world.targets[ws]
        for credential in sorted(selected_credentials(world, ws)):
            held = target.held(credential)
            if held.record is not None and held.secret is not None:
                key = _key_of_secret(world, held.secret)
                expires: datetime = key["expires"]
                if key["revoked"] or expires <= now + NEXT_PASS:
                    fail(
                        "I7 exit-0-but-expires",
                        f"{ws}/{credential}: the held key {key['id']} expires {expires} "
                        f"(now {now}) or is revoked, and the pass exited 0",
                    )
                if (
                    every
                    and world.deployment.due(expires, now)
                    and not _in_grace(world, held.record, now)
                ):
                    fail("I7 exit-0-but-due", f"{ws}/{credential}: held key {key['id']} is due")
                continue
            live = [
                k
                for k in world.keys(ws, include_revoked=False)
                if world.credential_of(k) == credential
            ]
            # With no record, the newest key a person made is current (a look-alike is a
            # person's), else the newest rotator-made one: the rule for a sink without metadata.
            people = [k for k in live if not world.rotator_made(ws, k)]
            if not (people or live):
                continue
            newest = max(people or live, key=lambda k: k["expires"])
            if newest["expires"] <= now + NEXT_PASS or (
                every and world.deployment.due(newest["expires"], now)
            ):
                fail(
                    "I7 exit-0-but-undelivered",
                    f"{ws}/{credential}: its newest key {newest['id']} ({newest['name']}) expires "
                    f"{newest['expires']} (now {now}), nothing was delivered, and the pass "
                    "exited 0",
                )
        spec = world.spec(ws)
        if spec.own_key != "none":
            key = _key_of_secret(world, world.credential(ws))
            own = target.held(OWN).record
            # Its replacement delivered in this pass, or the old key in its grace period: the
            # process may still switch (a mounted Secret takes a while); a later pass must fail.
            delivered = _parse(own.get("delivered_at")) if own is not None else None
            switching = (
                own is not None
                and own.get("key_id") != key["id"]
                and (_in_grace(world, own, now) or (delivered is not None and delivered >= now))
            )
            if world.deployment.due(key["expires"], now) and every and not switching:
                fail(
                    "I7 exit-0-but-own-key-due",
                    f"{ws}: the rotator authenticates with {key['id']}, due at {now}, exit 0",
                )


@dataclass(frozen=True)
class Urgency:
    """A credential as a pass finds it: its days left (missing: far below any), whether it is
    due, and the keys it had."""

    days_left: float
    due: bool
    keys: frozenset[str]


def urgencies(
    world: World, ledger: Ledger, workspaces: list[str]
) -> dict[tuple[str, str], Urgency]:
    """Before a pass: each selected credential's urgency, judged as README states the policy
    (a credential in its previous key's grace, a blocked one and the own key left out)."""
    now = world.emu.now()
    found = {}
    for ws in workspaces:
        if not world.live(_key_of_secret(world, world.credential(ws))):
            continue  # its rotator is locked out: it cannot even read what is due
        target = world.targets[ws]
        for credential in sorted(selected_credentials(world, ws) - {OWN}):
            if (ws, credential) in ledger.tampered or (ws, credential) in ledger.edited:
                continue
            keys = [k for k in world.keys(ws) if world.credential_of(k) == credential]
            held = target.held(credential)
            if held.record is not None and held.secret is not None:
                if _in_grace(world, held.record, now):
                    continue
                key = _key_of_secret(world, held.secret)
                current = key if world.live(key) else None
            else:
                live = [k for k in keys if world.live(k)]
                people = [k for k in live if not world.rotator_made(ws, k)]
                current = max(people or live, key=lambda k: k["expires"]) if live else None
            days = -1e9 if current is None else (current["expires"] - now) / timedelta(days=1)
            due = current is None or world.deployment.due(current["expires"], now)
            found[(ws, credential)] = Urgency(days, due, frozenset(str(k["id"]) for k in keys))
    return found


def check_budget_order(world: World, before: dict[tuple[str, str], Urgency]) -> None:
    """I10, after a clean pass: no rotated credential was less urgent than a due one that
    waits (a rotation is a new key the rotator made for the credential in this pass)."""
    rotated, waiting = [], []
    for (ws, credential), then in before.items():
        made = [
            k
            for k in world.keys(ws)
            if world.credential_of(k) == credential
            and str(k["id"]) not in then.keys
            and world.rotator_made(ws, k)
        ]
        if made:
            rotated.append((then.days_left, f"{ws}/{credential}"))
        elif then.due:
            waiting.append((then.days_left, f"{ws}/{credential}"))
    if rotated and waiting and min(waiting) < max(rotated) and min(waiting)[0] < max(rotated)[0]:
        fail(
            "I10 budget-not-most-urgent",
            f"{max(rotated)[1]} ({max(rotated)[0]:.2f} days left) was rotated while "
            f"{min(waiting)[1]} ({min(waiting)[0]:.2f} days left) waits",
        )


def refused_at_start(world: World) -> bool:
    """Whether every command must refuse the deployment at start (exit 2): two workspaces
    sharing one place (a folder spelled twice, one exec program and arguments), or two
    entries pinning one ``workspace_id``."""
    d = world.deployment
    return (
        d.folder_spelled_twice
        or (d.exec_shared_folder and d.sink == "exec" and len(world.listed) > 1)
        or (d.listed_twice and d.declared_ids)
    )


def refused_setup(world: World) -> bool:
    """Whether every command may refuse the deployment at start (exit 2): two workspaces
    sharing one place (a folder spelled twice, one exec program and arguments), or one
    workspace listed twice."""
    d = world.deployment
    return (
        d.folder_spelled_twice
        or d.listed_twice
        or (d.exec_shared_folder and d.sink == "exec" and len(d.workspaces) > 1)
    )


def _key_of_secret(world: World, secret: str) -> dict[str, Any]:
    key_id = world.emu.key_id_of(secret)
    found = world.key(str(key_id))
    assert found is not None, "a secret the emulator never issued"
    return found[1]


def _in_grace(world: World, record: dict[str, Any], now: datetime) -> bool:
    """A due credential whose previous key is still in its grace period waits (README)."""
    previous = record.get("previous_key_id")
    until = _parse(record.get("retire_previous_after"))
    if not previous or until is None or until <= now:
        return False
    found = world.key(str(previous))
    return found is not None and not found[1]["revoked"]


def check_converged(world: World, ledger: Ledger) -> None:
    """I6, after two quiet passes: one current key per credential, nothing left behind (a
    blocked credential, or one no pattern selects now, is left as it is, by design)."""
    now = world.emu.now()
    every = budget_suffices(world)
    for ws in world.listed:
        target = world.targets[ws]
        for credential in sorted(target.credentials()):
            if (
                (ws, credential) in ledger.tampered
                or (ws, credential) in ledger.edited
                or not world.deployment.selects(world.spec(ws), credential)
            ):
                continue
            held = target.held(credential)
            record = held.record
            if record is None or held.secret is None:
                continue
            where = f"{ws}/{credential}"
            found = world.key(str(world.emu.key_id_of(held.secret)))
            if found is not None and world.ws_ids[found[0]] != world.ws_ids[ws]:
                continue  # another workspace's, in a place they share: blocked here, by design
            if record.get("pending_key_id"):
                fail("I6 pending-left", f"{where}: pending {record['pending_key_id']} remains")
            key = _key_of_secret(world, held.secret)
            if key["id"] != record.get("key_id"):
                fail("I6 record-disagrees", f"{where}: holds {key['id']}, record names another")
            if every and not world.live(key):
                fail("I6 current-dead", f"{where}: holds {key['id']}, which no longer works")
            until = _parse(record.get("retire_previous_after"))
            for other in world.keys(ws, include_revoked=False):
                if world.credential_of(other) != credential or not world.rotator_made(ws, other):
                    continue
                if other["id"] == record.get("key_id") or not world.live(other):
                    continue
                if other["id"] == record.get("previous_key_id"):
                    if until is not None and until > now:
                        continue
                    fail(
                        "I6 previous-past-grace",
                        f"{where}: previous {other['id']} lives past its grace ({until})",
                    )
                created = world.created_at(other)
                if created is not None and now - created < ORPHAN_MIN_AGE:
                    continue
                fail("I6 orphan-left", f"{where}: orphan {other['id']} ({other['name']}) lives")
