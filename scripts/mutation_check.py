#!/usr/bin/env python3
"""A small mutation check: plausible one-line bugs in the engine, the policy, the file and
Kubernetes sinks, the client, the metrics and the logging, each applied alone to a copy of the tree, and the
tests that should catch it run against it. Prints which were caught and which survived.

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
           "        decision = missing()\n    return CredentialView(", "        decision = None\n    return CredentialView(",
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
