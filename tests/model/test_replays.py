"""Failing examples the model found, replayed as plain tests: the same machine, deployment and
rules as ``test_model.py``, with the draws written out instead of generated.

Each names the invariant that broke and the issue-15 item it is. While an item is in
``KNOWN_SEAMS`` (kept out of the generated space until main's fix is merged) its replay is an
expected failure, *strict*: when the fix lands the replay passes, the strict xfail fails the
run, and the seam must be removed from ``KNOWN_SEAMS``, which makes the replay an ordinary
regression test and lets the model generate the combination again. Nothing here is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from tests.model.system import Deployment, WorkspaceSpec
from tests.model.test_model import KNOWN_SEAMS, RotatorModel


class Draws:
    """Stands for Hypothesis' ``data``: hands out the written-down draws in order."""

    def __init__(self, *values: object) -> None:
        self._values = list(values)

    def draw(self, _strategy: object, label: str | None = None) -> Any:
        assert self._values, f"no draw written down for {label}"
        return self._values.pop(0)


Step = tuple[str, dict[str, Any]]


def replay(deployment: Deployment, *steps: Step, first_pass: bool = False) -> None:
    """Run the model's rules in order, checking its invariants after each, as Hypothesis does."""
    machine = RotatorModel()
    try:
        machine.deploy(deployment, first_pass)
        machine.safe()
        for name, arguments in steps:
            getattr(machine, name)(**arguments)
            machine.safe()
    finally:
        machine.teardown()


def ws(name: str, *keys: tuple[str, float], **overrides: Any) -> WorkspaceSpec:
    spec = WorkspaceSpec(name, None, None, "none", False, 700, tuple(keys))
    return replace(spec, **overrides)


BASE = Deployment(
    workspaces=(),
    key_names=("app-*",),
    exclude_key_names=(),
    sink="file",
    exec_program="folder",
    exec_shared_folder=False,
    budget=50,
    concurrency=1,
    workspace_concurrency=1,
    grace_hours=0,
    max_age_days=None,
    max_retries=0,
    listed_twice=False,
    folder_spelled_twice=False,
)


#: ws-b is ws-a listed again under an admin key of its own; ws-a's app-billing expires first.
TWINS_OWN_KEYS = replace(
    BASE,
    workspaces=(ws("ws-a", ("app-billing", 0.5)), ws("ws-b")),
    budget=1,
    listed_twice=True,
    twin_own_credential=True,
)


def seam(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """An expected failure while ``name`` is a known seam (strict: it must fail)."""
    return pytest.mark.xfail(
        name in KNOWN_SEAMS,
        reason=f"issue 15 known seam {name!r} (KNOWN_SEAMS in test_model.py)",
        raises=AssertionError,
        strict=True,
    )


RUN: Step = ("run_once", {})


def hours(count: float) -> Step:
    return ("time_passes", {"hours": count})


# ------------------------------------------------------------------------ issue 15, item by item


@seam("per-workspace-patterns")
def test_item_1_a_workspaces_own_patterns() -> None:
    """[I7 exit-0-but-undelivered]: the workspace asks for svc-* only; the pass uses the global
    app-* (rotating app-crm, which this workspace never selected) and leaves svc-mail, with 12
    hours left, to expire, exit 0."""
    spec = ws("ws-a", ("app-crm", 5), ("svc-mail", 0.5), key_names=("svc-*",))
    replay(replace(BASE, workspaces=(spec,)), RUN)


@seam("budget-across-workspaces")
def test_item_2_the_budget_goes_to_the_most_urgent_across_workspaces() -> None:
    """[I7 exit-0-but-undelivered]: budget 1; ws-a, opened first, spends it on a key with 20
    days left; ws-b's key with 12 hours left is not rotated, and the pass exits 0."""
    deployment = replace(
        BASE,
        workspaces=(ws("ws-a", ("app-billing", 20)), ws("ws-b", ("app-legacy", 0.5))),
        budget=1,
    )
    replay(deployment, RUN)


@seam("own-key-budget")
def test_item_3_the_own_key_competes_for_the_budget_by_its_urgency() -> None:
    """[I7 exit-0-but-expires]: the own key has 19 hours left, three keys 20 days; budget 3;
    the own key is not rotated and the pass exits 0."""
    spec = ws(
        "ws-a",
        ("app-billing", 20),
        ("app-crm", 20),
        ("app-legacy", 20),
        own_key="sink",
        admin_days_left=0.8,
    )
    replay(replace(BASE, workspaces=(spec,), budget=3), RUN)


@seam("sink-list-fails")
def test_item_4_a_sink_that_cannot_list_does_not_hide_a_missing_credential() -> None:
    """[I7 exit-0-but-expires]: the key a memory sink holds is revoked by a person; the next
    pass cannot list the sink, skips the missing credential and exits 0."""
    spec = ws("ws-a", ("app-billing", 5), memory=True)
    replay(
        replace(BASE, workspaces=(spec,)),
        RUN,
        ("person_revokes_key", {"data": Draws("ws-a", 1)}),  # the one rotator-made key
        ("sink_fault", {"data": Draws("ws-a"), "operation": "list_credentials"}),
        RUN,
    )


@seam("sink-list-fails")
def test_item_4_an_exec_program_without_list() -> None:
    """[I7 exit-0-but-expires]: a person revokes every key of app-billing; the exec program
    cannot list, so the missing credential is never seen, and the pass exits 0."""
    deployment = replace(
        BASE,
        workspaces=(ws("ws-a", ("app-billing", 5)),),
        sink="exec",
        exec_program="listless",
    )
    replay(
        deployment,
        RUN,
        ("person_revokes_credential", {"data": Draws("ws-a", 0)}),  # app-billing, the only one
        RUN,
    )


@seam("exec-shared-folder")
def test_item_5_the_exec_example_program_with_two_workspaces() -> None:
    """[I2 foreign-key]: both workspaces' app-billing land in one record of the folder program,
    so one workspace's consumer holds the other workspace's key."""
    deployment = replace(
        BASE,
        workspaces=(ws("ws-a", ("app-billing", 5)), ws("ws-b", ("app-billing", 5))),
        sink="exec",
        exec_shared_folder=True,
    )
    replay(deployment, RUN)


@seam("listed-twice")
def test_item_6_one_workspace_listed_twice() -> None:
    """[I7 exit-0-but-expires] (the held key is revoked): each entry takes the key the other
    delivered for an orphan and revokes it once it is ten minutes old; exit 0."""
    deployment = replace(
        BASE,
        workspaces=(ws("ws-a", ("app-billing", 5)), ws("ws-b")),
        listed_twice=True,
    )
    replay(deployment, RUN, hours(1), RUN)


@seam("folder-spelled-twice")
def test_item_7_one_folder_spelled_two_ways() -> None:
    """[I2 foreign-key]: ws-b's folder is ws-a's spelled ``ws-a/../ws-a`` (each with a lock
    folder of its own): the two overwrite each other's keys, and ws-b's consumer holds ws-a's."""
    deployment = replace(
        BASE,
        workspaces=(ws("ws-a", ("app-billing", 5)), ws("ws-b", ("app-billing", 5))),
        folder_spelled_twice=True,
    )
    replay(deployment, RUN, hours(1), RUN)


@seam("own-key-elsewhere")
def test_item_8_the_own_key_delivered_where_the_rotator_does_not_read_it() -> None:
    """[I7 exit-0-but-own-key-due]: the new own key goes to the sink, the rotator keeps using the
    old one (20 days left) from another file, and the passes exit 0."""
    spec = ws("ws-a", ("app-billing", 100), own_key="elsewhere", admin_days_left=20)
    replay(replace(BASE, workspaces=(spec,)), RUN)


@seam("exec-stderr-secret")
def test_item_9_an_exec_program_printing_the_key_it_holds() -> None:
    """[I5 secret-in-log]: the program's standard error on ``get`` is logged as is."""
    deployment = replace(
        BASE,
        workspaces=(ws("ws-a", ("app-billing", 5)),),
        sink="exec",
        exec_program="chatty",
    )
    replay(deployment, RUN, RUN)


@seam("rotate-ambiguous")
def test_item_12_rotate_now_without_workspace_when_several_hold_the_name() -> None:
    """[I7 rotate-ambiguous]: ``rotate app-billing --now`` without ``--workspace`` rotates it in
    both workspaces (and revokes both old keys at once) instead of exit 2."""
    deployment = replace(
        BASE,
        workspaces=(ws("ws-a", ("app-billing", 100)), ws("ws-b", ("app-billing", 100))),
    )
    replay(
        deployment,
        RUN,
        # workspace ws-a; the name index 0 (app-billing); --workspace left out
        ("rotate_now", {"data": Draws("ws-a", 0, True)}),
    )


# ------------------------------------------------------------------- found by the widened model


def test_a_record_naming_another_live_key_of_the_credential_is_blocked() -> None:
    """[I1 held-key-revoked] (first seen as [I7 exit-0-but-blocked]): a person sets the record's
    ``key_id`` to another live key of the same credential; trusted, the record made the key the
    sink holds an orphan, revoked under the consumer ("no sink holds it"), exit 0. Blocked now:
    the listed key's name is not the record's ``key_name``."""
    replay(
        replace(BASE, workspaces=(ws("ws-a", ("app-billing", 5)),)),
        RUN,
        ("person_creates_key", {"data": Draws("ws-a"), "name": "app-billing", "days": 400}),
        (
            "person_edits_metadata",
            {"data": Draws("ws-a", 0), "edit": "key id of another key of the credential"},
        ),
        hours(1),
        RUN,
    )


def test_a_record_naming_a_key_id_no_key_can_have_is_blocked() -> None:
    """[I1 held-key-revoked]: a person sets ``key_id`` to ``not/a key id``; the record was
    trusted, the credential read as missing, and the key the sink holds revoked as an orphan
    before its replacement was even created (the pass killed at ``created``). Blocked now."""
    replay(
        replace(BASE, workspaces=(ws("ws-a", ("app-billing", 5)),), sink="exec"),
        RUN,
        hours(25),
        ("person_edits_metadata", {"data": Draws("ws-a", 0), "edit": "key id garbage"}),
        ("pass_killed_at", {"step": "created"}),
    )


def test_while_a_credential_is_missing_its_other_keys_are_never_revoked() -> None:
    """[I1 held-key-revoked]: a person sets ``key_id`` to a well-formed id of no key; the
    credential is missing (as when a person revokes the current key) and is rotated at once, by
    design, but the key the sink really holds was revoked as an orphan before the replacement
    was created. While a credential is missing its other rotator-made keys are unknown now."""
    replay(
        replace(BASE, workspaces=(ws("ws-a", ("app-billing", 5)),)),
        RUN,
        hours(25),
        ("person_edits_metadata", {"data": Draws("ws-a", 0), "edit": "key id of no key"}),
        ("pass_killed_at", {"step": "created"}),
    )


def test_one_workspace_listed_twice_across_two_shards_is_refused_by_both() -> None:
    """[I7 listed-twice-not-refused]: ws-b holds ws-a's very credential, and ROTATOR_SHARDS=2
    puts them in different shards (ws-a in 1, ws-b in 0): each pod saw one entry only, so
    neither refused it and both acted on the one workspace, exit 0. Each pod now compares the
    credentials of every entry, its shard's or not."""
    deployment = replace(
        BASE,
        workspaces=(ws("ws-a", ("app-billing", 5)), ws("ws-b")),
        listed_twice=True,
        shards=2,
    )
    replay(deployment, RUN, hours(1), RUN)


def test_one_workspace_listed_twice_with_two_admin_keys_is_refused_by_both() -> None:
    """Not a seam of today's code: the entries hold two different admin keys of one workspace,
    so only ``me`` answering one workspace id tells them apart (the model missed the
    re-broken identity check while the twin entry always held the very same key)."""
    deployment = replace(
        BASE,
        workspaces=(ws("ws-a", ("app-billing", 5)), ws("ws-b")),
        listed_twice=True,
        twin_own_credential=True,
    )
    replay(deployment, RUN, hours(1), RUN)


def test_rotate_in_one_entry_of_a_workspace_listed_twice_under_two_admin_keys() -> None:
    """[I1 held-key-revoked]: ws-c is ws-a again under an admin key of its own; ``rotate
    app-billing --now --workspace ws-a`` then ``--workspace ws-c`` each read their own entry
    only, so the second revoked the key ws-a's sink holds. rotate --workspace now reads every
    entry's ``me`` first and runs the pass over the entry and its twins, which it refuses
    (workspace.duplicate, exit 1, nothing done in either)."""
    deployment = replace(
        BASE,
        workspaces=(ws("ws-a", ("app-billing", 0.5)), ws("ws-b", ("app-billing", 0.5)), ws("ws-c")),
        listed_twice=True,
        twin_own_credential=True,
    )
    replay(
        deployment,
        ("rotate_now", {"data": Draws("ws-a", 0, False)}),
        ("rotate_now", {"data": Draws("ws-c", 0, False)}),
    )


def test_one_workspace_listed_twice_under_two_admin_keys_across_two_shards() -> None:
    """[I7 listed-twice-not-refused]: ws-b is ws-a again under its own admin key, and
    ROTATOR_SHARDS=2 puts them in different shards: a pod that read only its own entries' ``me``
    saw no twin, so both acted on the one workspace, exit 0. Each pod now asks ``me`` of the
    other shard's entries too, and refuses its own (exit 1)."""
    deployment = replace(
        BASE,
        workspaces=(ws("ws-a", ("app-billing", 0.5)), ws("ws-b")),
        budget=1,
        listed_twice=True,
        twin_own_credential=True,
        shards=2,
    )
    replay(deployment, RUN)


def test_an_exec_program_ignoring_its_workspace_never_crosses_two_workspaces_keys() -> None:
    """[I2 foreign-key] when a record of another workspace is taken for this one: the flat
    program keeps both workspaces' files in one folder, given to each spelled another way, so
    the rotator cannot refuse the set-up at start. ws-a delivers app-billing; ws-b reads ws-a's
    record, which must block ws-b's app-billing (exit 1), never lead ws-b to write its own key
    where ws-a's consumer reads."""
    deployment = replace(
        BASE,
        workspaces=(ws("ws-a", ("app-billing", 0.5)), ws("ws-b", ("app-billing", 0.5))),
        sink="exec",
        exec_program="flat",
    )
    replay(deployment, RUN, hours(25), RUN, RUN)


def test_a_leaked_key_revoked_by_hand_is_rotated_though_the_sink_cannot_list() -> None:
    """[I7 rotate-refused-managed] when a named credential is read only if listed: every key
    of app-billing is revoked by hand, and then ``rotate app-billing --now --workspace ws-a``
    runs while the memory sink cannot list; neither a key nor a list names the credential,
    only the rotate command does."""
    spec = ws("ws-a", ("app-billing", 5), memory=True)
    replay(
        replace(BASE, workspaces=(spec,)),
        RUN,
        ("leak_revoked_by_hand_then_rotated", {"data": Draws("ws-a", 0), "list_fails": True}),
    )


def test_every_entry_unusable_exits_3_even_for_a_workspace_listed_twice() -> None:
    """A false alarm of the model, kept as a check of it: ws-b is ws-a again under its own
    admin key, and the key list fails for both; no workspace could be used, so the pass exits
    3 (nothing done anywhere), which says as much as the twins' exit 1 would."""
    replay(
        TWINS_OWN_KEYS,
        ("api_fault", {"fault": ("GET", "/api/data/api-keys", {"status": 500}), "times": 2}),
        RUN,
    )


def test_a_pod_whose_only_entry_cannot_be_used_exits_3_beside_a_twin_elsewhere() -> None:
    """A false alarm of the model, kept as a check of it: ws-d is ws-a again under its own
    admin key, in the other shard; a day on, ws-a's admin key has expired. The pod taking ws-a
    can use none of its workspaces (exit 3, nothing done); the pod taking ws-d cannot ask ws-a's
    ``me`` and so cannot tell whether ws-d is a twin: it exits 1
    (``workspace.twin_unchecked``)."""
    deployment = replace(
        BASE,
        workspaces=(
            ws("ws-a", ("app-billing", 0.5), own_key="sink", admin_days_left=0.8),
            ws("ws-b", ("app-billing", 0.5)),
            ws("ws-c", ("app-billing", 0.5)),
            ws("ws-d"),
        ),
        budget=1,
        listed_twice=True,
        twin_own_credential=True,
        shards=2,
    )
    replay(deployment, ("a_day_then_a_pass", {"hours": 24}))


def test_one_credential_in_two_entries_is_refused_while_me_fails_for_one() -> None:
    """[I7 listed-twice-changed] when entries are compared by ``me`` alone: ws-b is ws-a again
    under the very same admin key. A pass in which ws-b's ``me`` fails lets ws-a rotate
    app-billing alone (and, before revokes were held back beside an entry that cannot be
    identified, ``rotate app-billing --now --workspace ws-b`` while ws-a's ``me`` fails then
    revoked ws-a's new key under its consumer). One credential in two entries is refused at
    start, whatever ``me`` answers: nothing is ever done in that workspace."""
    deployment = replace(
        BASE,
        workspaces=(ws("ws-a", ("app-billing", 5)), ws("ws-b")),
        listed_twice=True,
    )
    replay(
        deployment,
        ("while_one_me_fails", {"data": Draws(), "skip": 1, "command": "run-once"}),
        ("while_one_me_fails", {"data": Draws("ws-b", 0, False), "skip": 0, "command": "rotate"}),
    )


def test_nothing_another_entry_may_hold_is_revoked_while_that_entry_is_unidentified() -> None:
    """[I1 held-key-revoked] when a pass acts beside an entry whose ``me`` failed: ws-b is ws-a
    again under an admin key of its own. A pass in which ws-b's ``me`` fails lets ws-a rotate
    app-billing; then ``rotate app-billing --now --workspace ws-b``, while ws-a's ``me`` fails,
    makes ws-b a new key. Neither may revoke a key the other entry's sink could hold: ws-a's
    new key must stay live while ws-a cannot be told apart from ws-b (found by the model,
    seed 1, on the search of the re-broken credential check)."""
    replay(
        TWINS_OWN_KEYS,
        ("while_one_me_fails", {"data": Draws(), "skip": 1, "command": "run-once"}),
        ("while_one_me_fails", {"data": Draws("ws-b", 0, False), "skip": 0, "command": "rotate"}),
        first_pass=True,
    )
