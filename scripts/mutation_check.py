#!/usr/bin/env python3
"""A small mutation check: plausible one-line bugs in the engine, the policy, the sinks (file,
Kubernetes, exec, Vault, AWS, several targets), the client, the metrics, the logging, serve's
triggers and leak matching, the notifications, the rotation history, the settings' places and
workspaces, the Kubernetes Events, the Lease lock and the schedule, each applied alone to a copy
of the tree, and the tests that should catch it run against it. Prints which were caught and
which survived.

Not part of the test run (it takes minutes): ``python scripts/mutation_check.py [-k NAME]``.
Each mutant's replacement must match exactly once, so a refactor that moves the code makes the
script fail loudly rather than test nothing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


ENGINE = ("tests/engine",)
TRIGGERS = ("tests/test_triggers.py",)
NOTIFY = ("tests/test_notify_units.py", "tests/test_notify.py")
HISTORY = ("tests/test_history.py", "tests/engine/test_history_pass.py")
EXEC = ("tests/sinks/test_exec_stderr.py", "tests/sinks/test_exec.py")
PLACES = ("tests/settings/test_places.py", "tests/settings/test_routes.py")
LEASE = ("tests/locks/test_lease.py",)
TARGETS = ("tests/engine/test_targets.py", "tests/sinks/test_target_pairs.py")
MUTANTS = [
    # -- policy
    Mutant("rotate-before off by a day", "rotator/policy.py",
           "if left < policy.rotate_before_days:", "if left < policy.rotate_before_days - 1:", ENGINE),
    Mutant("rotate-before inclusive", "rotator/policy.py",
           "if left < policy.rotate_before_days:", "if left <= policy.rotate_before_days:", ENGINE),
    Mutant("exclude globs never match", "rotator/policy.py",
           "if any(fnmatchcase(base_name, pattern) for pattern in policy.exclude_key_names):",
           "if False:", ENGINE),
    Mutant("max age ignored", "rotator/policy.py",
           "if policy.max_age_days is not None and age > policy.max_age_days:", "if False:",
           ENGINE),
    Mutant("validity hard-coded to 730 days", "rotator/policy.py",
           "return policy.validity_days - days_left(key, now)",
           "return 730 - days_left(key, now)", ENGINE),
    Mutant("rotation due at the later of the two dates", "rotator/policy.py",
           "before = max(before, policy.validity_days - policy.max_age_days)",
           "before = min(before, policy.validity_days - policy.max_age_days)", ENGINE),
    Mutant("the settings' validity never reaches the policy", "rotator/app.py",
           "validity_days=settings.validity_days,", "validity_days=730,", ENGINE),
    Mutant("missing no longer ranked first", "rotator/policy.py",
           "first = reason in (Reason.MISSING, Reason.FORCED)", "first = reason == Reason.FORCED",
           ENGINE),
    # -- reconcile
    Mutant("createdBy not required", "rotator/models.py",
           "and self.created_by == user_id\n", "\n", ENGINE),
    Mutant("pending judged against the current hash", "rotator/reconcile.py",
           "state.secret_sha256 is not None and state.secret_sha256 == record.pending_secret_sha256",
           "state.secret_sha256 is not None and state.secret_sha256 == record.secret_sha256",
           ENGINE),
    Mutant("duplicate ids trusted", "rotator/reconcile.py",
           "if len(ids) != len(set(ids)):", "if False:", ENGINE),
    Mutant("hash mismatch trusted", "rotator/reconcile.py",
           "if record.secret_sha256 is not None and state.secret_sha256 not in known:", "if False:",
           ENGINE),
    Mutant("orphan age ignored", "rotator/reconcile.py",
           "elif utc(now) - created >= config.orphan_min_age:", "elif True:", ENGINE),
    Mutant("a missing current key is not missing", "rotator/reconcile.py",
           "        decision = missing()\n        unknown, orphans, young",
           "        decision = None\n        unknown, orphans, young",
           ENGINE),
    # -- plan
    Mutant("retire while the current key is missing", "rotator/plan.py",
           "        if model.current is None:\n            # The previous key may be the only",
           "        if False:\n            # The previous key may be the only", ENGINE),
    Mutant("finishing a delivery keeps the old grace", "rotator/plan.py",
           "        retire_after=utc(now) + config.grace,\n        decision=decide(delivered",
           "        retire_after=record.retire_previous_after,\n        decision=decide(delivered",
           ENGINE),
    Mutant("missing waits for the grace", "rotator/plan.py",
           "waits = in_grace and decision.reason not in (Reason.MISSING, Reason.FORCED)",
           "waits = in_grace and decision.reason is not Reason.FORCED", ENGINE),
    Mutant("the budget goes by days left alone", "rotator/plan.py",
           "key=lambda i: (listed[i].urgency, listed[i].workspace, listed[i].credential),",
           "key=lambda i: (listed[i].days_left or 0.0, listed[i].workspace, listed[i].credential),",
           ENGINE),
    # -- rotation
    Mutant("rollback after a read-back error", "rotator/delivery.py",
           "                machine.enter(State.UNKNOWN, new.key.id, detail=\"the sink could not be read back\")\n                return",
           "                self._rollback(new.key)\n                return", ENGINE),
    Mutant("the grace restarts nowhere", "rotator/rotation.py",
           "            retire_previous_after=now + self._ctx.config.grace,\n        )\n        self._write_record(finished",
           "            retire_previous_after=record.retire_previous_after,\n        )\n        self._write_record(finished",
           ENGINE),
    Mutant("metadata read-back checks only the key id", "rotator/delivery.py",
           "if readback.record != current or readback.secret_sha256 != digest",
           "if readback.record is None or readback.record.key_id != current.key_id", ENGINE),
    Mutant("a new key answering for no workspace accepted", "rotator/rotation.py",
           "if identity.workspace_id is None or identity.workspace_id != own.workspace_id:",
           "if identity.workspace_id is not None and identity.workspace_id != own.workspace_id:",
           ENGINE),
    Mutant("own key retired without its source", "rotator/rotation.py",
           "        if self._own_key_source is None:\n            return True",
           "        if True:\n            return True", ENGINE),
    Mutant("verify checks the workspace but not the user", "rotator/rotation.py",
           "        if own.user_id is not None and identity.user_id != own.user_id:\n"
           "            raise _StepFailedError(Step.VERIFY, \"the new key answers for another user\")\n",
           "", ENGINE),
    Mutant("secret read-back checks only that something is there", "rotator/delivery.py",
           "if after.secret_sha256 != digest:", "if after.secret_sha256 is None:", ENGINE),
    Mutant("secret read-back checks only that the secret changed", "rotator/delivery.py",
           "if after.secret_sha256 != digest:", "if after.secret_sha256 == state.secret_sha256:",
           ENGINE),
    # -- several targets
    Mutant("a lagging target taken for one that holds the key", "rotator/sinks/targets.py",
           "leader.record, leader.secret_sha256, version, lagging=lagging,",
           "leader.record, leader.secret_sha256, version, lagging=(),", ENGINE),
    Mutant("a key a lagging target names taken for an orphan", "rotator/reconcile.py",
           "        if key.id in state.held_elsewhere:\n", "        if False:\n", ENGINE),
    Mutant("the failed target written first", "rotator/sinks/targets.py",
           "self._targets = tuple(sorted(targets, key=lambda t: not t.can_read_secret))",
           "self._targets = tuple(sorted(targets, key=lambda t: t.can_read_secret))",
           ("tests/engine/test_targets.py",)),
    Mutant("a grace-0 retire without its rotation", "rotator/rotation.py",
           "        if record.previous_key_id != key.id:\n", "        if False:\n", ENGINE),
    # -- runner
    Mutant("an unidentified entry holds back nothing", "rotator/runner.py",
           "        if not exposed:\n            return actions",
           "        if True:\n            return actions", ENGINE),
    Mutant("a declared workspace_id of no matter", "rotator/survey.py",
           "return {name for name, id_ in identities.items() if None in ids or id_ is None or id_ in ids}",
           "return set(identities)", ENGINE),
    Mutant("rotate --workspace forgets the entries whose me failed", "rotator/app.py",
           "                if w.name in found.unusable and w not in chosen",
           "                if False", ("tests/engine", "tests/test_cli.py", "tests/test_seams.py")),
    Mutant("breaker at the ratio, not above", "rotator/runner.py",
           "return attempts >= 3 and failures / attempts > max_failure_ratio",
           "return attempts >= 3 and failures / attempts >= max_failure_ratio", ENGINE),
    Mutant("budget not counted", "rotator/plan.py",
           "for index in rotations[max(budget, 0) :]:", "for index in ():", ENGINE),
    Mutant("the lock not held", "rotator/runner.py",
           "            run.held = run.stack.enter_context(ws.lock.hold())",
           "            run.held = None", ENGINE),
    Mutant("temporaries removed before the lock is taken", "rotator/runner.py",
           "            run.held = run.stack.enter_context(ws.lock.hold())\n            ws.sink.prepare()\n",
           "            ws.sink.prepare()\n            run.held = run.stack.enter_context(ws.lock.hold())\n",
           ENGINE),
    Mutant("temporaries removed by a dry run", "rotator/runner.py",
           "            run.held = run.stack.enter_context(ws.lock.hold())\n            ws.sink.prepare()\n",
           "            run.held = run.stack.enter_context(ws.lock.hold())\n        ws.sink.prepare()\n",
           ENGINE),
    Mutant("a fixed ROTATOR_API_KEY taken for a switched own key", "rotator/runner.py",
           "own_key_source=(run.ws.credential_source or never_switched) if own else None,",
           "own_key_source=run.ws.credential_source if own else None,", ENGINE),
    Mutant("a failed closing list confirms the revokes", "rotator/runner.py",
           "still = [i for i in ids if keys is None or not expired_or_gone(i, keys, now)]",
           "still = [i for i in ids if keys is not None and not expired_or_gone(i, keys, now)]",
           ENGINE),
    Mutant("remembered credentials forgotten", "rotator/survey.py",
           "credentials = credentials_of(grouped, [*remembered, *named], policy)",
           "credentials = credentials_of(grouped, [*named], policy)", ENGINE),
    # -- metrics
    Mutant("a locked pass wipes the key series", "rotator/app.py",
           "if ws.usable and not ws.locked:\n            metrics.selector_unmatched",
           "if ws.usable:\n            metrics.selector_unmatched", ("tests/test_metrics.py",)),
    # -- file sink
    Mutant("file sink follows symlinks on read", "rotator/sinks/file.py",
           "os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK",
           "os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK", ("tests/sinks/test_file.py",)),
    Mutant("file sink trusts another credential's record", "rotator/sinks/base.py",
           "        if named != own:\n            # The foreign name",
           "        if False:\n            # The foreign name",
           ("tests/sinks/test_file.py", "tests/sinks/test_contract.py")),
    # -- kubernetes sink
    Mutant("kubernetes list drops its workspace check", "rotator/sinks/kubernetes.py",
           "                and annotations.get(WORKSPACE_ANNOTATION) == self._workspace\n", "",
           ("tests/sinks/test_kubernetes.py",)),
    # -- client
    Mutant("loopback by prefix", "rotator/models.py",
           'if host.lower() == "localhost":', 'if host.lower().startswith("localhost"):',
           ("tests/test_client.py", "tests/settings/test_environment.py")),
    Mutant("loopback by substring", "rotator/models.py",
           'if host.lower() == "localhost":', 'if "localhost" in host.lower():',
           ("tests/test_client.py",)),
    Mutant("loopback includes private addresses", "rotator/models.py",
           'return ipaddress.ip_address(host.strip("[]")).is_loopback',
           'return ipaddress.ip_address(host.strip("[]")).is_private', ("tests/test_client.py",)),
    Mutant("loopback includes the unspecified address", "rotator/models.py",
           'return ipaddress.ip_address(host.strip("[]")).is_loopback',
           'return (lambda a: a.is_loopback or a.is_unspecified)(ipaddress.ip_address(host.strip("[]")))',
           ("tests/test_client.py",)),
    Mutant("Retry-After not capped", "rotator/client.py",
           "MAX_WAIT_SECONDS: Final = 30.0", "MAX_WAIT_SECONDS: Final = 3000.0",
           ("tests/test_client.py",)),
    # -- logging
    Mutant("redaction case-sensitive", "rotator/logging.py",
           "_SENSITIVE_FIELDS = re.compile(rf\"{_SENSITIVE_NAME}$\", re.IGNORECASE)",
           "_SENSITIVE_FIELDS = re.compile(rf\"{_SENSITIVE_NAME}$\")", ("tests/test_logging.py",)),
    # -- triggers (serve's POST /v1/rotate and /v1/leaks)
    Mutant("a trigger token accepted under any scheme", "rotator/triggers.py",
           'if bearer and scheme.lower() == "bearer":', "if bearer:", TRIGGERS),
    Mutant("a failed answer kept for its Idempotency-Key", "rotator/triggers.py",
           "if answer is not None and answer.status == 200:", "if answer is not None:",
           ("tests/test_trigger_rules.py",)),
    Mutant("an Idempotency-Key reused for another request replayed", "rotator/triggers.py",
           "if entry.fingerprint != fingerprint:", "if False:", ("tests/test_trigger_rules.py",)),
    Mutant("a signed request's webhook-id not its idempotency key", "rotator/triggers.py",
           'key = lowered.get("idempotency-key") or webhook_id',
           'key = lowered.get("idempotency-key")', TRIGGERS),
    Mutant("a rotate trigger answers 200 while a workspace was locked", "rotator/triggers.py",
           "        if any(ws.locked for ws in outcome.report.workspaces):\n"
           '            return Answer(409, {**document, "error": _LOCK_HELD})',
           "        if False:\n"
           '            return Answer(409, {**document, "error": _LOCK_HELD})', TRIGGERS),
    Mutant("no match in a workspace that could not be read is an all-clear", "rotator/triggers.py",
           "if unread and not matches:", "if False:", TRIGGERS),
    Mutant("a leak rotates a credential whose leaked key is revoked already", "rotator/triggers.py",
           "                if match.live:\n", "                if True:\n", TRIGGERS),
    # -- leak matching
    Mutant("a leak matched by the stored secret only, not the record's hash", "rotator/app.py",
           "        if state.secret_sha256 == secret_sha256 or (\n"
           "            record is not None and record.secret_sha256 == secret_sha256\n"
           "        ):",
           "        if state.secret_sha256 == secret_sha256:", TRIGGERS),
    Mutant("a leaked pending key named by the current key's id", "rotator/app.py",
           "key_id = (record.pending_key_id if pending else record.key_id) if record else None",
           "key_id = record.key_id if record else None", TRIGGERS),
    Mutant("a leaked previous key never checked for life", "rotator/app.py",
           'if any(m.role == "previous" for m in matches):', "if False:", TRIGGERS),
    Mutant("a credential that could not be read left out of unread", "rotator/app.py",
           '            found.unread.setdefault(ws.name, f"{credential}: {exc}")\n            continue',
           "            continue", TRIGGERS),
    # -- notify
    Mutant("the webhook retried under a new webhook-id", "rotator/notify/webhook.py",
           '"webhook-id": event.id,\n'
           '                "webhook-timestamp": str(int(now.timestamp())),\n'
           '                "webhook-signature": self._signer.sign(event.id, now, body),',
           '"webhook-id": f"{event.id}-{_}",\n'
           '                "webhook-timestamp": str(int(now.timestamp())),\n'
           '                "webhook-signature": self._signer.sign(f"{event.id}-{_}", now, body),',
           NOTIFY),
    Mutant("the webhook never retried", "rotator/notify/webhook.py",
           "_ATTEMPTS: Final = 2", "_ATTEMPTS: Final = 1", NOTIFY),
    Mutant("the webhook retries a 4xx answer", "rotator/notify/webhook.py",
           "if response.status_code < 500 and response.status_code not in _RETRIED_STATUS:",
           "if response.status_code < 400:", NOTIFY),
    Mutant("the webhook gives up on a connection error", "rotator/notify/webhook.py",
           '                error = f"{type(exc).__name__}: no answer"\n                continue',
           "                raise", NOTIFY),
    Mutant("an Apprise failure reported as sent", "rotator/notify/apprise_channel.py",
           'return None if result else f"Apprise: {result.status.name.lower()}"', "return None",
           NOTIFY),
    # -- rotation history
    Mutant("the history unbounded", "rotator/history.py",
           "return out[-HISTORY_MAX_ENTRIES:]", "return out", HISTORY),
    Mutant("an old key a sink still holds taken for retired", "rotator/history.py",
           "old not in live and old not in held:", "old not in live:", HISTORY),
    Mutant("an unreadable history overwritten", "rotator/history_store.py",
           '        log.warning("history.unreadable", credential=credential, error=str(exc))\n'
           "        return None\n\n\ndef _write(",
           '        log.warning("history.unreadable", credential=credential, error=str(exc))\n'
           "        return []\n\n\ndef _write(", HISTORY),
    Mutant("another workspace's history entries accepted", "rotator/history.py",
           "if (entry.workspace, entry.credential) != (workspace, credential):",
           "if entry.credential != credential:", HISTORY),
    Mutant("an expired key counted live in the history", "rotator/history_store.py",
           "live = {k.id for k in own if utc(k.expires) > utc(now) and k.id not in gone}",
           "live = {k.id for k in own if k.id not in gone}", HISTORY),
    # -- exec sink
    Mutant("the exec version blind to the secret", "rotator/sinks/exec.py",
           'digest.update(b"\\0" + (self.secret_sha256 or "-").encode())', 'digest.update(b"\\0")',
           EXEC),
    Mutant("a pending hash printed by get not blanked", "rotator/sinks/exec.py",
           '("secret_sha256", "previous_secret_sha256", "pending_secret_sha256")',
           '("secret_sha256", "previous_secret_sha256")', EXEC),
    Mutant("a wrapped known token blanks only its first line", "rotator/sinks/exec_stderr.py",
           "blanked |= {index, index + 1}", "blanked |= {index}", EXEC),
    Mutant("a stored secret's newline defeats its hash", "rotator/sinks/exec_stderr.py",
           '_STORED_ENDINGS: tuple[bytes, ...] = (b"", b"\\n", b"\\r\\n")',
           '_STORED_ENDINGS: tuple[bytes, ...] = (b"",)', EXEC),
    Mutant("secret pieces of 8 characters not blanked", "rotator/sinks/exec_stderr.py",
           "MIN_SECRET_PIECE: Final = 8", "MIN_SECRET_PIECE: Final = 9", EXEC),
    Mutant("a known token found only at a word's start", "rotator/sinks/exec_stderr.py",
           "starts = [0] + [i + 1 for i, byte in enumerate(word) if byte in _PUNCTUATION]",
           "starts = [0]", EXEC),
    # -- vault sink
    Mutant("vault data write blind to a metadata write beside it", "rotator/sinks/vault.py",
           "if after.current_version != new_version or after.custom != custom_before:",
           "if after.current_version != new_version:", ("tests/sinks/test_vault.py",)),
    Mutant("vault record of another workspace trusted", "rotator/sinks/vault.py",
           "if owner is not None and owner != workspace:", "if False:",
           ("tests/sinks/test_vault.py",)),
    Mutant("vault fields beside the key dropped", "rotator/sinks/vault.py",
           "data = dict(self._get_data(path, before.current_version) or {})", "data = {}",
           ("tests/sinks/test_vault.py",)),
    # -- aws sink
    Mutant("aws refused stage move taken as done", "rotator/sinks/aws.py",
           "            if now is not None and _current_version_id(now) == token:\n",
           "            if True:\n", ("tests/sinks/test_aws.py",)),
    Mutant("aws version token blind to the tags", "rotator/sinks/aws.py",
           "for key, value in sorted(tags.items()):", "for key, value in ():",
           ("tests/sinks/test_aws.py",)),
    Mutant("aws record of another workspace trusted", "rotator/sinks/aws.py",
           "if WORKSPACE_TAG in tags and tags[WORKSPACE_TAG] != _encode_tag_value(self._workspace):",
           "if False:", ("tests/sinks/test_aws.py",)),
    # -- places and workspaces
    Mutant("file places compared as spelt", "rotator/settings/places.py",
           "    folder = canonical_path(sink.dir)\n", "    folder = Path(sink.dir)\n",
           ("tests/settings/test_places.py", "tests/test_cli_refusals.py")),
    Mutant("lock folders never compared", "rotator/settings/places.py",
           "        if file_lock and ws.lock_dir is not None:\n", "        if False:\n", PLACES),
    Mutant("route targets not compared across workspaces", "rotator/settings/places.py",
           "        places.extend(place for route in target_places(ws, environ) for place in route)\n",
           "", PLACES),
    Mutant("a fixed-name place behind a glob allowed", "rotator/settings/places.py",
           "            if not route.is_one_name:\n", "            if False:\n", PLACES),
    Mutant("the vault namespace left out of a place", "rotator/settings/places.py",
           '("vault", server, namespace, path),', '("vault", server, path),', PLACES),
    Mutant("one workspace id listed twice accepted", "rotator/settings/workspaces.py",
           "if entry.workspace_id and entry.workspace_id in ids:", "if False:",
           ("tests/settings/test_workspaces.py",)),
    Mutant("a second program in one route accepted", "rotator/settings/workspaces.py",
           "if len(programs) < 2:", "if len(programs) < 3:", ("tests/settings/test_routes.py",)),
    # -- kubernetes events
    Mutant("an Event recorded before counted as failed", "rotator/kube_events.py",
           "if isinstance(result, Failure) and result.kind is not FailureKind.ALREADY_EXISTS:",
           "if isinstance(result, Failure):", ("tests/k8s/test_kube_events.py",)),
    Mutant("an Event's name new at every send", "rotator/kube_events.py",
           'f"{event.id}\\0{regarding.kind}\\0{regarding.name}".encode()',
           'f"{event.id}\\0{regarding.kind}\\0{regarding.name}\\0{time.time()}".encode()',
           ("tests/k8s/test_kube_events.py",)),
    # -- lease lock
    Mutant("a lease never lost to silence", "rotator/locks/lease.py",
           "if silent_for > self._deadline:", "if False:", LEASE),
    Mutant("a deleted lease not lost", "rotator/locks/lease.py",
           "        if failure.kind is FailureKind.NOT_FOUND:\n", "        if False:\n", LEASE),
    Mutant("a released lease keeps its holder", "rotator/locks/lease.py",
           "lease.spec.holderIdentity = None", "pass", LEASE),
    Mutant("a lease taken over while renewing kept", "rotator/locks/lease.py",
           "            if holder != self._identity:\n                return self._lose(",
           "            if False:\n                return self._lose(", LEASE),
    # -- several targets
    Mutant("a catch-up not read back", "rotator/sinks/targets.py",
           "if target.read(credential).secret_sha256 != digest:", "if False:", TARGETS),
    Mutant("a catch-up copies a secret that changed while read", "rotator/sinks/targets.py",
           "            if secret.sha256() == digest:\n                return secret",
           "            if True:\n                return secret", TARGETS),
    Mutant("a routed place lists another route's credentials", "rotator/sinks/targets.py",
           "found.update(c for c in sink.list_credentials() if self.sink_of(c) is sink)",
           "found.update(sink.list_credentials())", TARGETS),
    # -- schedule
    Mutant("day of month and weekday both required", "rotator/schedule.py",
           '        inner = OrTrigger([cron(day_listing, "*"), cron("*", weekday_listing)])',
           "        inner = cron(day_listing, weekday_listing)", ("tests/test_schedule.py",)),
    Mutant("a repeated wall time fires twice", "rotator/schedule.py",
           "if candidate.astimezone(UTC) == second.astimezone(UTC):", "if False:",
           ("tests/test_schedule.py",)),
    Mutant("fri-sun refused as backwards", "rotator/schedule.py",
           "if spec is _DAY_OF_WEEK and last == 0 and first > 0:", "if False:",
           ("tests/test_schedule.py",)),
]  # fmt: skip


def run(mutant: Mutant, python: str) -> bool:
    """True when the tests caught the mutant (they failed)."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "tree"
        shutil.copytree(
            ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "build")
        )
        target = copy / mutant.path
        text = target.read_text()
        if text.count(mutant.old) != 1:
            raise SystemExit(f"{mutant.name}: the code to mutate is not found exactly once")
        target.write_text(text.replace(mutant.old, mutant.new))
        done = subprocess.run(
            [python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *mutant.tests],
            cwd=copy,
            env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin", "HOME": folder},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        return done.returncode != 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", default="", help="only mutants whose name contains this")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if args.k in m.name]
    caught = 0
    for mutant in chosen:
        ok = run(mutant, sys.executable)
        caught += ok
        print(f"{'caught  ' if ok else 'SURVIVED'} {mutant.name}", flush=True)
    print(f"\n{caught} of {len(chosen)} mutants caught")
    return 0 if caught == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
