"""The system the model drives: one emulator, one generated deployment, the CLI's code path.

Responsible for turning a generated :class:`Deployment` into real things (emulated workspaces
and keys, credential files, a workspaces file, an environment), for running the rotator as ops
do (``rotator.cli.main`` with ``run-once`` or ``rotate NAME --now``), and for reading back, by
their own means, what the provider and every sink target hold now: the emulator's key list, the
files of the file sink and of the exec sink's folder program, the memory sink's dicts. The
invariants (``tests/model/invariants.py``) judge only what this module reads, never the
rotator's report.

The only departures from a deployment are what ``rotator.cli.main`` takes explicitly for a
program embedding the rotator (``rotator.app.Hooks``): the emulator's clock (the API's clock
moves when the model lets time pass; the rotator's must move with it), for a crash a checkpoint
that raises, and for a workspace marked ``memory`` the model's own MemorySink, which lives
across passes as a real backend would (and takes injected sink failures).

It knows nothing of how the rotator works inside: no runner, plan or reconcile internals.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from rotator.app import Hooks
from rotator.cli import main
from rotator.emulator import Emulator
from rotator.models import base_name, rotator_created_at
from rotator.sinks.memory import MemorySink

ROOT = Path(__file__).resolve().parents[2]
FOLDER_SINK = ROOT / "config" / "exec-sink" / "folder-sink.py"
#: folder-sink.py as ops teams vary it (``chatty``: prints the key it holds; ``listless``:
#: cannot list).
VARIANT_SINK = Path(__file__).resolve().parent / "variant_sink.py"
#: The base name of the rotator's own key in every workspace (ROTATOR_SELF_KEY_NAME when set).
OWN = "rotator"
#: The name of the key a person uses in each workspace (never selected by any pattern).
PERSON_KEY = "pat-laptop"
#: How long until the next scheduled pass (ROTATOR_SCHEDULE's default fires daily).
NEXT_PASS = timedelta(hours=24)
#: The base names people give keys: some selected by the generated patterns, some never.
NAMES = ("app-billing", "app-crm", "app-legacy", "svc-mail", "erp-sync", "odata-feed")
ROTATE_BEFORE_DAYS = 30
VALIDITY_DAYS = 730
ORPHAN_MIN_AGE = timedelta(minutes=10)


#: The emulator's clock at the start of every example (a Monday, 03:00 UTC).
START = datetime(2027, 3, 1, 3, 0, tzinfo=UTC)


class Crash(BaseException):
    """The process dying at a checkpoint: the engine catches Exception, never this."""


# --------------------------------------------------------------------------- the generated set-up


@dataclass(frozen=True)
class WorkspaceSpec:
    """One workspace as generated: its patterns (None: the global ones), own key, sink."""

    name: str
    key_names: tuple[str, ...] | None
    exclude_key_names: tuple[str, ...] | None
    #: "none": the credential file is outside the sink and the admin key unmanaged; "sink": the
    #: own key is managed and the credential file is its sink target; "elsewhere": managed, but
    #: the credential is read from another file (issue 15, item 8).
    own_key: str
    #: A MemorySink replaces this workspace's file sink (only with ROTATOR_SINK=file).
    memory: bool
    admin_days_left: float
    #: Keys people made before the rotator first ran: (base name, days left).
    keys: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Deployment:
    """Everything generated once per example: workspaces, global settings, sink kind."""

    workspaces: tuple[WorkspaceSpec, ...]
    key_names: tuple[str, ...]
    exclude_key_names: tuple[str, ...]
    sink: str  # "file" or "exec"; in the slow profile also "vault" or "aws"
    exec_program: str  # "folder", or a variant of it: "chatty", "listless", "flat"
    #: Every workspace's exec program writes into one folder (docs/sinks.md's example as is).
    exec_shared_folder: bool
    budget: int
    concurrency: int
    workspace_concurrency: int
    grace_hours: float
    max_age_days: int | None
    max_retries: int
    #: The last workspace is a second entry for the first one's workspace (issue 15, item 6).
    listed_twice: bool
    #: The second workspace's file-sink folder is the first's, spelled ``X/../X`` (item 7).
    folder_spelled_twice: bool
    #: With ``listed_twice``: the second entry holds an admin key of its own (another key of
    #: the same workspace), so only ``me`` answering one workspace id tells the two apart.
    twin_own_credential: bool = False
    #: ROTATOR_SHARDS: 2 runs every pass as two processes (ROTATOR_SHARD_INDEX 0, then 1), as
    #: the Indexed CronJob's pods do; 1 is unsharded.
    shards: int = 1
    #: Each entry names its ``workspace_id`` in the workspaces file (a twin then pins the
    #: first entry's id: refused at start).
    declared_ids: bool = False

    def patterns(self, spec: WorkspaceSpec) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The patterns ops configured for ``spec`` (its own, else the global ones)."""
        names = spec.key_names if spec.key_names is not None else self.key_names
        excluded = (
            spec.exclude_key_names if spec.exclude_key_names is not None else self.exclude_key_names
        )
        return names, excluded

    def selects(self, spec: WorkspaceSpec, credential: str) -> bool:
        """Whether ops asked the rotator to manage ``credential`` in ``spec``'s workspace."""
        if spec.own_key != "none" and credential == OWN:
            return True
        names, excluded = self.patterns(spec)
        if any(fnmatchcase(credential, p) for p in excluded):
            return False
        return any(fnmatchcase(credential, p) for p in names)

    def due(self, expires: datetime, now: datetime) -> bool:
        """The policy as README states it: fewer than 30 days left, or older than the max age."""
        left = (expires - now) / timedelta(days=1)
        if left < ROTATE_BEFORE_DAYS:
            return True
        return self.max_age_days is not None and VALIDITY_DAYS - left > self.max_age_days


# ------------------------------------------------------------------------------ sink targets


@dataclass
class Held:
    """What one sink target holds for one credential, read by the model's own means."""

    secret: str | None
    record: dict[str, Any] | None


class Target:
    """Where one workspace's sink keeps its credentials, read and edited directly."""

    def held(self, credential: str) -> Held:
        raise NotImplementedError

    def credentials(self) -> set[str]:
        raise NotImplementedError

    def delete(self, credential: str) -> None:
        raise NotImplementedError

    def texts(self) -> list[str]:
        """Everything stored beside the secrets (metadata), for the secret-leak check."""
        raise NotImplementedError

    def edit_record(self, credential: str, changes: dict[str, Any] | None) -> bool:
        """A person edits ``credential``'s metadata: ``changes`` set fields (None: the file is
        made unreadable). False when there is no record to edit, or the target cannot hold
        such a change."""
        raise NotImplementedError


class FolderTarget(Target):
    """The file sink (``B``, ``B.meta.json``, ``B.history.json``) or the folder program
    (``B.secret`` ...)."""

    def __init__(self, folder: Path, secret_suffix: str) -> None:
        self.folder = folder
        self.suffix = secret_suffix

    def _secret_path(self, credential: str) -> Path:
        return self.folder / f"{credential}{self.suffix}"

    def _meta_path(self, credential: str) -> Path:
        return self.folder / f"{credential}.meta.json"

    def held(self, credential: str) -> Held:
        secret_path, meta_path = self._secret_path(credential), self._meta_path(credential)
        secret = secret_path.read_text().strip() if secret_path.exists() else None
        record = None
        if meta_path.exists():
            try:
                record = json.loads(meta_path.read_text())
            except ValueError:
                # A person's hand-edit made it unreadable (the rotator must leave it so).
                record = {"unreadable": meta_path.read_text()}
        return Held(secret or None, record)

    def credentials(self) -> set[str]:
        if not self.folder.is_dir():
            return set()
        found = set()
        for path in self.folder.iterdir():
            if path.name.startswith(".") or path.name.endswith((".lock", ".history.json")):
                continue
            name = path.name.removesuffix(".meta.json")
            if self.suffix:
                name = name.removesuffix(self.suffix)
            found.add(name)
        return found

    def delete(self, credential: str) -> None:
        self._secret_path(credential).unlink(missing_ok=True)
        self._meta_path(credential).unlink(missing_ok=True)

    def texts(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        # The metadata, and the rotation history kept beside it.
        return [p.read_text() for p in self.folder.glob("*.meta.json")] + [
            p.read_text() for p in self.folder.glob("*.history.json")
        ]

    def edit_record(self, credential: str, changes: dict[str, Any] | None) -> bool:
        path = self._meta_path(credential)
        if not path.exists():
            return False
        if changes is None:
            path.write_text("{ not json, edited by hand\n")
            return True
        try:
            document = json.loads(path.read_text())
        except ValueError:
            return False
        path.write_text(json.dumps({**document, **changes}) + "\n")
        return True


class MemoryTarget(Target):
    def __init__(self, sink: MemorySink) -> None:
        self.sink = sink

    def held(self, credential: str) -> Held:
        secret = self.sink.secret_of(credential)
        record = self.sink.record_of(credential)
        return Held(
            secret.reveal() if secret is not None else None,
            None if record is None else record_document(record),
        )

    def credentials(self) -> set[str]:
        # Every credential the model can make a key for (the sink's own list may be failing).
        return {
            credential
            for credential in (*NAMES, OWN)
            if self.sink.secret_of(credential) or self.sink.record_of(credential)
        }

    def delete(self, credential: str) -> None:
        self.sink.put(credential, record=None, secret=None)

    def texts(self) -> list[str]:
        return [repr(self.sink.record_of(c)) for c in self.credentials()] + [
            repr(self.sink.read_history(c)) for c in self.credentials()
        ]

    def edit_record(self, credential: str, changes: dict[str, Any] | None) -> bool:
        record = self.sink.record_of(credential)
        # The memory sink keeps typed records: only a changed id or hash fits in one.
        if (
            record is None
            or changes is None
            or not all(isinstance(v, str) for v in changes.values())
        ):
            return False
        if any(name.endswith("_at") or name == "expires" for name in changes):
            return False
        self.sink.put(
            credential,
            record=dataclasses.replace(record, **changes),
            secret=self.sink.secret_of(credential),
        )
        return True


def record_document(record: Any) -> dict[str, Any]:
    """A SinkRecord as the document the file sink would store (times as ISO text)."""

    def text(value: object) -> object:
        return value.isoformat() if isinstance(value, datetime) else value

    return {name: text(getattr(record, name)) for name in record.__dataclass_fields__}


# ---------------------------------------------------------------------------------- the world


@dataclass
class PassResult:
    """One command as ops saw it, and what it logged."""

    argv: tuple[str, ...]
    exit_code: int | None  # None: the process "died" (a simulated crash)
    log: str
    stdout: str
    changed: bool  # the emulator saw a POST or DELETE during the command
    #: The workspace ids whose credentials the command used for more than asking ``me`` (from
    #: the emulator's request log): a sharded pod asks ``me`` with the credential of every other
    #: shard's entry too, to find one workspace listed twice, and takes none of them.
    touched: frozenset[str] = frozenset()
    #: The workspace ids in which the command created or revoked a key (POST or DELETE).
    changed_in: frozenset[str] = frozenset()
    #: ROTATOR_SHARD_INDEX of this pass, when the deployment is sharded.
    shard: int | None = None
    #: API faults were queued for this command.
    faulted: bool = False

    def events(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log.splitlines():
            with contextlib.suppress(ValueError):
                document = json.loads(line)
                if isinstance(document, dict):
                    found.append(document)
        return found


@dataclass
class World:
    """A running emulator and one deployment of the rotator against it."""

    deployment: Deployment
    emu: Emulator
    root: Path
    ws_ids: dict[str, str] = field(default_factory=dict)
    admin_users: dict[str, str] = field(default_factory=dict)
    people: dict[str, str] = field(default_factory=dict)
    targets: dict[str, Target] = field(default_factory=dict)
    memory_sinks: dict[str, MemorySink] = field(default_factory=dict)
    credential_files: dict[str, Path] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    #: Keys the model itself made (people, look-alikes, the admins): every other key is the
    #: rotator's.
    model_made: set[str] = field(default_factory=set)
    #: Of those, the ones whose name carries the rotator's marker (never current or previous).
    lookalikes: set[str] = field(default_factory=set)
    #: Keys the model revoked itself (a person did it).
    people_revoked: set[str] = field(default_factory=set)
    #: API faults queued for the next command only (people's own requests never meet them).
    faults: list[tuple[str, str, int, dict[str, Any]]] = field(default_factory=list)
    #: The workspaces the workspaces file lists now, in its order (a person may take one out
    #: and put it back between passes).
    listed: list[str] = field(default_factory=list)
    #: Keys made (or revoked) under earlier settings, when their credential was still
    #: selected: not the rotator's doing under the present patterns.
    made_under_earlier_settings: set[str] = field(default_factory=set)
    revoked_under_earlier_settings: set[str] = field(default_factory=set)
    _entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: OpenBao and moto, for a deployment on the Vault or AWS sink (the slow profile).
    servers: Any = None
    _readers: list[Any] = field(default_factory=list)
    #: The sink variables of a Vault or AWS deployment (one fresh place per example).
    _remote_env: dict[str, str] = field(default_factory=dict)
    _admin_secret: dict[str, str] = field(default_factory=dict)
    _people_secrets: dict[str, str] = field(default_factory=dict)

    # -- building -------------------------------------------------------------------------

    @classmethod
    def build(cls, deployment: Deployment, servers: Any = None) -> World:
        emu = Emulator()
        # A fixed start: key names carry the time, and a replayed example must see the same ones.
        emu.set_now(START)
        emu.start()
        world = cls(deployment, emu, Path(tempfile.mkdtemp(prefix="rotator-model-")))
        world.servers = servers
        try:
            world._seed()
        except BaseException:
            world.close()
            raise
        return world

    def close(self) -> None:
        for reader in self._readers:
            reader.close()
        self.emu.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _seed(self) -> None:
        d = self.deployment
        specs = list(d.workspaces)
        place = ""
        if d.sink in ("vault", "aws"):
            self._remote_env, place = self.servers.environment(d.sink)
        for index, spec in enumerate(specs):
            twin = d.listed_twice and index == len(specs) - 1 and index > 0
            if twin:
                # The same workspace again: its id and admin key are the first entry's.
                first = specs[0].name
                self.ws_ids[spec.name] = self.ws_ids[first]
                self.admin_users[spec.name] = self.admin_users[first]
                self.people[spec.name] = self.people[first]
                self._people_secrets[spec.name] = self._people_secrets[first]
                admin_secret = self._admin_secret[first]
                if d.twin_own_credential:
                    # Never selected by any pattern, never the own key: the twin's own login.
                    twin_id, admin_secret = self.emu.add_key(
                        self.ws_ids[first],
                        f"{OWN}-twin",
                        expires=self.emu.now() + timedelta(days=700),
                    )
                    self.model_made.add(twin_id)
            else:
                ws_id = self.emu.add_workspace(spec.name.title())
                self.ws_ids[spec.name] = ws_id
                self.admin_users[spec.name] = self.emu.admin_user_id(ws_id)
                self.people[spec.name] = self.emu.add_user(ws_id, "Pat Person")
                # Pat's own key (the web app, as far as the model is concerned): what people
                # revoke with. Its name is never selected, so the rotator must never touch it.
                pat_id, self._people_secrets[spec.name] = self.emu.add_key(
                    ws_id,
                    PERSON_KEY,
                    expires=self.emu.now() + timedelta(days=3650),
                    created_by=self.people[spec.name],
                )
                self.model_made.add(pat_id)
                admin_id, admin_secret = self.emu.add_key(
                    ws_id, OWN, expires=self.emu.now() + timedelta(days=spec.admin_days_left)
                )
                self.model_made.add(admin_id)
                self._admin_secret[spec.name] = admin_secret
                for name, days in spec.keys:
                    self.add_person_key(spec.name, name, days)
            entry: dict[str, Any] = {"name": spec.name}
            sink_overrides: dict[str, str] = {}
            if d.sink == "file":
                folder = self.root / "secrets" / spec.name
                if d.folder_spelled_twice and index == 1:
                    folder = self.root / "secrets" / specs[0].name
                    sink_overrides["dir"] = str(folder / ".." / specs[0].name)
                target: Target = FolderTarget(folder, "")
                if spec.memory:
                    sink = MemorySink()
                    self.memory_sinks[spec.name] = sink
                    target = MemoryTarget(sink)
            elif d.sink in ("vault", "aws"):
                from tests.model.remote_targets import (  # noqa: PLC0415 - slow profile only
                    RemoteTarget,
                    remote_reader,
                )

                reader = remote_reader(d.sink, self._remote_env, spec.name)
                self._readers.append(reader)
                target = RemoteTarget(reader, self.servers, d.sink, place, spec.name)
            elif d.exec_program == "flat":
                # One folder for every workspace, spelled another way for each (``X``, ``X/.``,
                # ...): the program ignores the workspace, so they all share its files.
                folder = self.root / "exec" / "flat"
                sink_overrides["command"] = self._exec_command(f"{folder}{'/.' * index}")
                target = FolderTarget(folder, ".secret")
            else:
                folder = self.root / "exec" / ("shared" if d.exec_shared_folder else spec.name)
                if not d.exec_shared_folder:
                    sink_overrides["command"] = self._exec_command(folder)
                # The program keeps each workspace in a subfolder of its folder, named after it.
                target = FolderTarget(folder / spec.name, ".secret")
            self.targets[spec.name] = target
            if spec.own_key == "sink":
                assert isinstance(target, FolderTarget)
                source = target.folder / f"{OWN}{target.suffix}"
            else:
                source = self.root / "credentials" / f"{spec.name}.key"
            if not source.exists():
                source.parent.mkdir(parents=True, exist_ok=True)
                source.write_text(admin_secret + "\n")
            self.credential_files[spec.name] = source
            entry["api_key_file"] = str(source)
            if spec.own_key != "none":
                entry["self_key_name"] = OWN
            if sink_overrides:
                entry["sink"] = sink_overrides
            self._entries[spec.name] = entry
            self.listed.append(spec.name)
        self.write_settings()

    def write_settings(self) -> None:
        """The workspaces file and the environment, from the deployment and ``listed``."""
        d = self.deployment
        entries = []
        for name in self.listed:
            spec, entry = self.spec(name), dict(self._entries[name])
            if spec.key_names is not None:
                entry["key_names"] = list(spec.key_names)
            if spec.exclude_key_names is not None:
                entry["exclude_key_names"] = list(spec.exclude_key_names)
            if d.declared_ids:
                entry["workspace_id"] = self.ws_ids[name]
            entries.append(entry)
        workspaces_file = self.root / "workspaces.yaml"
        workspaces_file.write_text(yaml.safe_dump({"workspaces": entries}))
        self.env = {
            "ROTATOR_API_URL": self.emu.url,
            "ROTATOR_WORKSPACES_FILE": str(workspaces_file),
            "ROTATOR_KEY_NAMES": ",".join(d.key_names),
            "ROTATOR_EXCLUDE_KEY_NAMES": ",".join(d.exclude_key_names),
            "ROTATOR_SINK": d.sink,
            "ROTATOR_LOCK": "file",
            "ROTATOR_GRACE_HOURS": str(d.grace_hours),
            "ROTATOR_MAX_ROTATIONS_PER_PASS": str(d.budget),
            "ROTATOR_CONCURRENCY": str(d.concurrency),
            "ROTATOR_WORKSPACE_CONCURRENCY": str(d.workspace_concurrency),
            "ROTATOR_HTTP_MAX_RETRIES": str(d.max_retries),
            "ROTATOR_HTTP_TIMEOUT_SECONDS": "5",
            "ROTATOR_LOG_FORMAT": "json",
            "ROTATOR_LOG_LEVEL": "debug",
        }
        if d.max_age_days is not None:
            self.env["ROTATOR_MAX_AGE_DAYS"] = str(d.max_age_days)
        if d.sink in ("vault", "aws"):
            self.env.update(self._remote_env)
            self.env["ROTATOR_LOCK_DIR"] = str(self.root / "locks")
        elif d.sink == "file":
            self.env["ROTATOR_SINK_FILE_DIR"] = str(self.root / "secrets")
            if d.folder_spelled_twice:
                # With a lock folder of their own the two workspaces both run (and collide);
                # without one the second is locked out by the first forever.
                self.env["ROTATOR_LOCK_DIR"] = str(self.root / "locks")
        else:
            self.env["ROTATOR_SINK_EXEC_COMMAND"] = self._exec_command(
                self.root / "exec" / "shared"
            )
            self.env["ROTATOR_LOCK_DIR"] = str(self.root / "locks")

    def change_settings(self, deployment: Deployment, listed: list[str]) -> None:
        """Ops change the settings between passes: what the old patterns selected stays
        explained (its keys were made, or revoked, while it was still managed)."""
        for ws in self.ws_ids:
            spec = self.spec(ws)
            for key in self.keys(ws):
                if self.deployment.selects(spec, self.credential_of(key)):
                    self.made_under_earlier_settings.add(str(key["id"]))
                    if key["revoked"]:
                        self.revoked_under_earlier_settings.add(str(key["id"]))
        self.deployment = deployment
        self.listed = list(listed)
        self.write_settings()

    def _exec_command(self, folder: Path | str) -> str:
        variant = self.deployment.exec_program
        program = f"{FOLDER_SINK}" if variant == "folder" else f"{VARIANT_SINK} {variant}"
        # -S: the program needs the standard library alone, and starts twice as fast without
        # site-packages (a pass calls it a dozen times).
        return f"{sys.executable} -S {program} {folder}"

    # -- people -----------------------------------------------------------------------------

    def place_of(self, ws: str) -> str:
        """Where ``ws``'s target lies, as the model knows it (the rotator may not: see the
        ``flat`` exec program)."""
        target = self.targets[ws]
        return str(target.folder) if isinstance(target, FolderTarget) else f"{ws}'s own"

    def sharing(self, ws: str) -> list[str]:
        """The workspaces whose target is ``ws``'s place, ``ws`` among them."""
        place = self.place_of(ws)
        return [other for other in self.targets if self.place_of(other) == place]

    def spec(self, name: str) -> WorkspaceSpec:
        return next(s for s in self.deployment.workspaces if s.name == name)

    def add_person_key(self, ws: str, name: str, days_left: float) -> str:
        key_id, _secret = self.emu.add_key(
            self.ws_ids[ws], name, expires=self.emu.now() + timedelta(days=days_left)
        )
        self.model_made.add(key_id)
        return key_id

    def add_lookalike(self, ws: str, base: str, days_left: float) -> str:
        """A key a person named like the rotator's (``base@<time>``), as a person."""
        stamp = (self.emu.now() - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        key_id, _secret = self.emu.add_key(
            self.ws_ids[ws],
            f"{base}@{stamp}",
            expires=self.emu.now() + timedelta(days=days_left),
            created_by=self.people[ws],
        )
        self.model_made.add(key_id)
        self.lookalikes.add(key_id)
        return key_id

    def revoke(self, ws: str, key_id: str) -> None:
        """A person revokes a key in the web app."""
        import httpx  # noqa: PLC0415 - only people use it

        response = httpx.delete(
            f"{self.emu.url}/api/data/api-keys/{key_id}/revoke",
            headers={"Authorization": f"Bearer {self._people_secrets[ws]}"},
            timeout=5,
        )
        assert response.status_code == 200, response.text
        self.people_revoked.add(key_id)

    def credential(self, ws: str) -> str:
        """The key the rotator of ``ws`` authenticates with now (its credential file)."""
        return self.credential_files[ws].read_text().strip()

    # -- the provider, read directly -------------------------------------------------------

    def keys(self, ws: str, *, include_revoked: bool = True) -> list[dict[str, Any]]:
        return self.emu.keys(self.ws_ids[ws], include_revoked=include_revoked)

    def key(self, key_id: str) -> tuple[str, dict[str, Any]] | None:
        """The key ``key_id`` and the name of a workspace holding it (revoked ones too)."""
        for ws in self.ws_ids:
            for key in self.keys(ws):
                if key["id"] == key_id:
                    return ws, key
        return None

    def rotator_made(self, ws: str, key: dict[str, Any]) -> bool:
        return key["id"] not in self.model_made and key["created_by"] == self.admin_users[ws]

    def live(self, key: dict[str, Any]) -> bool:
        return not key["revoked"] and key["expires"] > self.emu.now()

    @staticmethod
    def credential_of(key: dict[str, Any]) -> str:
        return base_name(str(key["name"]))

    @staticmethod
    def created_at(key: dict[str, Any]) -> datetime | None:
        return rotator_created_at(str(key["name"]))

    # -- running the rotator ----------------------------------------------------------------

    def run(
        self,
        *argv: str,
        checkpoint: Callable[[str, str], None] | None = None,
        shard: int | None = None,
    ) -> PassResult:
        """``rotator ARGV`` through the CLI's own entry point, with the emulator's clock
        (``shard``: as the pod of that ROTATOR_SHARD_INDEX)."""
        log, out = io.StringIO(), io.StringIO()
        env = dict(self.env)
        if shard is not None:
            env["ROTATOR_SHARDS"] = str(self.deployment.shards)
            env["ROTATOR_SHARD_INDEX"] = str(shard)
        before = len(self.emu.request_log())
        faulted = bool(self.faults)
        for method, path, times, options in self.faults:
            self.emu.add_fault(method, path, times=times, **options)
        self.faults.clear()
        exit_code: int | None = None
        hooks = Hooks(clock=self.emu.now, checkpoint=checkpoint, sinks=dict(self.memory_sinks))
        with _kept_signal_handlers():
            try:
                with contextlib.redirect_stderr(log), contextlib.redirect_stdout(out):
                    exit_code = main(list(argv), env, hooks=hooks)
            except Crash:
                exit_code = None
            finally:
                self.emu.clear_faults()  # what the command did not meet is not for the next
        requests = self.emu.request_log()[before:]
        changed = any(r["method"] in ("POST", "DELETE") for r in requests)
        return PassResult(
            tuple(argv),
            exit_code,
            log.getvalue(),
            out.getvalue(),
            changed,
            touched=self._workspaces_of([r for r in requests if not _asks_me(r)]),
            changed_in=self._workspaces_of(
                [r for r in requests if r["method"] in ("POST", "DELETE")]
            ),
            shard=shard,
            faulted=faulted,
        )

    def _workspaces_of(self, requests: list[dict[str, Any]]) -> frozenset[str]:
        """The workspace ids of the keys that authenticated ``requests``."""
        key_ids = {
            str(r["headers"].get("authorization", "")).removeprefix("Bearer ") for r in requests
        }
        return frozenset(
            ws_id
            for ws, ws_id in self.ws_ids.items()
            for key in self.keys(ws)
            if key["id"] in key_ids
        )


def _asks_me(request: dict[str, Any]) -> bool:
    """Whether an API request only asked who its credential is (``GET /api/data/me``)."""
    return request["method"] == "GET" and request["path"] == "/api/data/me"


@contextlib.contextmanager
def _kept_signal_handlers() -> Iterator[None]:
    """``run-once`` installs SIGTERM and SIGINT handlers; put pytest's back afterwards."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
