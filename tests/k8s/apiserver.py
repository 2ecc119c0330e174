"""A loopback stand-in for the Kubernetes API server, for tests driven by the real client.

No kube-apiserver can run on the test machines, so this server implements the part of the REST
API the rotator uses, with the behaviour the API documents and a real server shows:

- resources: core/v1 ``secrets``, ``coordination.k8s.io/v1`` ``leases``, ``apps/v1``
  ``deployments``, ``statefulsets`` and ``daemonsets``, ``events.k8s.io/v1`` ``events``, all
  namespaced, under the real paths
  (``/api/v1/namespaces/NS/secrets/NAME``, ``/apis/GROUP/VERSION/namespaces/NS/...``);
- verbs: get, list (``labelSelector`` with ``=``, ``==``, ``!=``, ``in``, ``notin``, exists,
  ``!``-not-exists, ``gt``/``lt``; ``fieldSelector`` on ``metadata.name``/``metadata.namespace``;
  ``limit``/``continue`` paging), create (201; 409 ``AlreadyExists``), update/PUT (409
  ``Conflict`` when ``metadata.resourceVersion`` is set and stale; 404 when missing), patch
  (``application/merge-patch+json`` per RFC 7386, and ``strategic-merge-patch+json`` for maps;
  a ``metadata.resourceVersion`` in the patch is a precondition), delete (with
  ``preconditions``);
- one revision counter for the whole store, as etcd has: every write that changes an object
  gives it the next ``resourceVersion``; a write that changes nothing is a no-op and keeps it;
- ``metadata.generation`` on workloads, bumped when ``spec`` changes; ``status`` is kept by
  create (reset), update and patch of the main resource (only the test's controller sets it);
- validation as 422 ``Invalid`` with the API's messages and ``causes``: names (DNS-1123
  subdomain), label keys and values, annotation keys and total size, Secret data keys and
  total size, immutable Secret ``type`` and ``immutable: true`` data, Lease durations and
  transitions, workload selectors, replicas, the fields a new Event must have (``eventTime``,
  ``reportingController``, ``reportingInstance``, ``action``, ``reason``, a ``regarding``
  object in a namespace, ``type`` Normal or Warning, the length limits, no deprecated field),
  with the server's own field paths; decoding errors (bad JSON, bad base64 in a
  Secret's ``data``, a MicroTime without exactly six fractional digits) as 400 ``BadRequest``;
- unknown top-level and ``metadata`` fields dropped with a ``Warning`` header (the default
  ``fieldValidation=Warn`` of current servers); ``stringData`` merged into ``data``;
- bearer-token authentication (401 ``Unauthorized``) and an RBAC-like authorizer: each token
  has a user name and a list of :class:`Rule` (apiGroups, resources, verbs, resourceNames; no
  rules = allowed everything), answering 403 ``Forbidden`` with the API's message; a name-scoped
  rule never allows ``list`` or ``create`` (the request carries no name), as in real RBAC;
- every error body is a ``Status`` (``kind``, ``apiVersion``, ``status: Failure``,
  ``message``, ``reason``, ``details``, ``code``).

Tests control what a real cluster's other parts would do: :meth:`ApiServer.complete_rollout`
and :meth:`ApiServer.hang_rollout` play the workload controllers; :meth:`ApiServer.modify`
is another writer; ``drop_next_answer``, ``delay_next`` and ``fail_next`` inject faults.

Not implemented (a request that needs it fails loudly rather than behaving differently):
watch, JSON patch and server-side apply (415), strategic merge of lists (400), subresources,
cluster-wide lists, admission, managedFields, finalizers and graceful deletion, defaulting
beyond ``spec.replicas`` and Secret ``type``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from tests.k8s.apimachinery import (
    BY_KIND,
    DAEMONSETS,
    MODIFIED,
    RESOURCES,
    SECRETS,
    SERVER_META,
    STATUS_ZEROS,
    FieldError,
    JsonObject,
    ResourceType,
    Rule,
    StatusError,
    User,
    already_exists,
    bad_request,
    conflict,
    decode,
    details_of,
    invalid,
    kind_errors,
    merge_patch,
    metadata_errors,
    not_found,
    parse_label_selector,
    set_defaults,
    strategic_merge_patch,
)

_PATH = re.compile(
    r"^/(?:api/(?P<core_version>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"/namespaces/(?P<namespace>[^/]+)/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?/?$"
)


# --- the store --------------------------------------------------------------------------------


@dataclass
class RequestRecord:
    """One request as the server saw it (tests assert what was sent, and by whom)."""

    method: str
    path: str
    query: dict[str, list[str]]
    user: str | None
    verb: str | None
    code: int = 0
    content_type: str | None = None
    body: Any = None


@dataclass
class _Fault:
    verbs: frozenset[str]
    resource: str | None
    action: str  # drop, delay, delay-after, fail
    seconds: float = 0.0
    code: int = 0
    reason: str = ""

    def applies(self, verb: str, rtype: ResourceType) -> bool:
        return verb in self.verbs and (self.resource is None or self.resource == rtype.plural)


_NAMESPACE_MISMATCH: Final = (
    "the namespace of the provided object does not match the namespace sent on the request"
)
_WRITE_VERBS: Final = frozenset({"create", "update", "patch", "delete"})


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    """Objects by (resource, namespace, name), with one revision counter (etcd's)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str, str], JsonObject] = {}
        self._revision = 0

    @property
    def revision(self) -> int:
        return self._revision

    def _key(self, rtype: ResourceType, namespace: str, name: str) -> tuple[str, str, str]:
        return (rtype.qualified, namespace, name)

    def get(self, rtype: ResourceType, namespace: str, name: str) -> JsonObject | None:
        with self._lock:
            found = self._objects.get(self._key(rtype, namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def items(self, rtype: ResourceType, namespace: str) -> list[JsonObject]:
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (resource, ns, _name), obj in sorted(self._objects.items())
                if resource == rtype.qualified and ns == namespace
            ]

    def put(self, rtype: ResourceType, namespace: str, obj: JsonObject) -> JsonObject:
        """Store ``obj`` under the next revision; returns what is stored."""
        with self._lock:
            self._revision += 1
            obj["metadata"]["resourceVersion"] = str(self._revision)
            self._objects[self._key(rtype, namespace, obj["metadata"]["name"])] = copy.deepcopy(obj)
            return copy.deepcopy(obj)

    def remove(self, rtype: ResourceType, namespace: str, name: str) -> None:
        with self._lock:
            self._revision += 1
            del self._objects[self._key(rtype, namespace, name)]

    @property
    def lock(self) -> threading.RLock:
        return self._lock


# --- the server ---------------------------------------------------------------------------------


class ApiServer:
    """The stand-in: a store, its users, faults to inject, and a ThreadingHTTPServer on loopback.

    ``tls=(certfile, keyfile)`` serves HTTPS with that certificate; otherwise plain HTTP.
    """

    def __init__(self, *, tls: tuple[Path, Path] | None = None, daemonset_nodes: int = 2) -> None:
        self.store = Store()
        self.requests: list[RequestRecord] = []
        self.daemonset_nodes = daemonset_nodes
        self._users: dict[str, User] = {}
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._tls = tls
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> ApiServer:
        httpd = _HttpServer(("127.0.0.1", 0), _Handler)
        httpd.api = self
        if self._tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self._tls[0]), str(self._tls[1]))
            httpd.ssl_context = context
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "start() the server first"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    # -- users -----------------------------------------------------------------------------------

    def add_token(self, token: str, user: str, rules: Iterable[Rule] | None = None) -> None:
        """Accept ``token`` as ``user``, allowed what ``rules`` allow (None: everything)."""
        with self._lock:
            self._users[token] = User(user, None if rules is None else tuple(rules))

    def authenticate(self, header: str | None) -> User:
        scheme, _, token = (header or "").partition(" ")
        with self._lock:
            user = self._users.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise StatusError(401, "Unauthorized", "Unauthorized")
        return user

    @staticmethod
    def authorize(
        user: User, verb: str, rtype: ResourceType, namespace: str, name: str | None
    ) -> None:
        if user.allows(verb, rtype.group, rtype.plural, name):
            return
        target = f'{rtype.qualified} "{name}"' if name else rtype.qualified
        details = details_of(rtype, name or "")
        if not name:
            del details["name"]
        raise StatusError(
            403,
            "Forbidden",
            f'{target} is forbidden: User "{user.name}" cannot {verb} resource "{rtype.plural}" '
            f'in API group "{rtype.group}" in the namespace "{namespace}"',
            details,
        )

    # -- faults ----------------------------------------------------------------------------------

    def drop_next_answer(
        self, verbs: Iterable[str] = _WRITE_VERBS, resource: str | None = None
    ) -> None:
        """The next such request is applied, then its connection closed without an answer."""
        self._add_fault(_Fault(frozenset(verbs), resource, "drop"))

    def delay_next(
        self,
        seconds: float,
        verbs: Iterable[str] = ("get", "list", *_WRITE_VERBS),
        resource: str | None = None,
        *,
        after_applying: bool = False,
    ) -> None:
        """The next such request waits ``seconds`` before (or after) it is applied."""
        self._add_fault(
            _Fault(
                frozenset(verbs), resource, "delay-after" if after_applying else "delay", seconds
            )
        )

    def fail_next(
        self,
        code: int,
        reason: str,
        verbs: Iterable[str] = ("get", "list", *_WRITE_VERBS),
        resource: str | None = None,
        *,
        times: int = 1,
    ) -> None:
        """The next ``times`` such requests answer ``code`` with a Status, changing nothing."""
        for _ in range(times):
            self._add_fault(_Fault(frozenset(verbs), resource, "fail", code=code, reason=reason))

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def before_executing(self, verb: str, rtype: ResourceType) -> _Fault | None:
        """Apply the first injected fault for this request that acts before it is executed;
        return one that acts after (drop, delay-after)."""
        with self._lock:
            fault = next((f for f in self._faults if f.applies(verb, rtype)), None)
            if fault is not None:
                self._faults.remove(fault)
        if fault is not None and fault.action == "delay":
            time.sleep(fault.seconds)
        if fault is not None and fault.action == "fail":
            raise StatusError(fault.code, fault.reason, f"stand-in: injected {fault.reason}")
        return fault

    # -- what other parts of a cluster do ----------------------------------------------------------

    def create_object(self, kind: str, namespace: str, body: JsonObject) -> JsonObject:
        """Create as an admin client would (validated, defaulted); returns the stored object."""
        return self.create(BY_KIND[kind], namespace, body, [])

    def get_object(self, kind: str, namespace: str, name: str) -> JsonObject | None:
        return self.store.get(BY_KIND[kind], namespace, name)

    def objects(self, kind: str, namespace: str) -> list[JsonObject]:
        """Every stored object of ``kind`` in ``namespace``, by name (``kubectl get KIND``)."""
        return self.store.items(BY_KIND[kind], namespace)

    def modify(
        self, kind: str, namespace: str, name: str, mutate: Callable[[JsonObject], None]
    ) -> JsonObject:
        """Another writer changes the stored object (no validation); its revision moves on."""
        rtype = BY_KIND[kind]
        with self.store.lock:
            obj = self.store.get(rtype, namespace, name)
            if obj is None:
                raise KeyError(f"{kind} {namespace}/{name}")
            mutate(obj)
            return self.store.put(rtype, namespace, obj)

    def delete_object(self, kind: str, namespace: str, name: str) -> None:
        with self.store.lock:
            self.store.remove(BY_KIND[kind], namespace, name)

    def secret_data(self, namespace: str, name: str, key: str) -> bytes | None:
        """What a pod mounting the Secret reads in file ``key``, or None."""
        obj = self.store.get(SECRETS, namespace, name)
        value = None if obj is None else obj.get("data", {}).get(key)
        return None if value is None else base64.b64decode(value)

    def complete_rollout(self, kind: str, namespace: str, name: str) -> JsonObject:
        """The controller finished the rollout of the current generation: all updated, ready."""
        return self._set_status(kind, namespace, name, complete=True)

    def hang_rollout(self, kind: str, namespace: str, name: str) -> JsonObject:
        """The controller saw the current generation, but its new pod never becomes ready."""
        return self._set_status(kind, namespace, name, complete=False)

    def _set_status(self, kind: str, namespace: str, name: str, *, complete: bool) -> JsonObject:
        rtype = BY_KIND[kind]

        def mutate(obj: JsonObject) -> None:
            generation = obj["metadata"].get("generation", 1)
            if rtype is DAEMONSETS:
                desired = self.daemonset_nodes
                updated = desired if complete else min(1, desired)
                ready = desired if complete else max(desired - 1, 0)
                obj["status"] = {
                    "observedGeneration": generation,
                    "desiredNumberScheduled": desired,
                    "currentNumberScheduled": desired,
                    "updatedNumberScheduled": updated,
                    "numberReady": ready,
                    "numberAvailable": ready,
                    "numberMisscheduled": 0,
                }
                if not complete:
                    obj["status"]["numberUnavailable"] = desired - ready
                return
            desired = obj["spec"].get("replicas", 1)
            status: JsonObject = {"observedGeneration": generation}
            if complete:
                status.update(
                    replicas=desired,
                    updatedReplicas=desired,
                    readyReplicas=desired,
                    availableReplicas=desired,
                )
            else:
                # A surge pod of the new template that never gets ready; the old ones serve.
                status.update(
                    replicas=desired + 1,
                    updatedReplicas=min(1, desired),
                    readyReplicas=desired,
                    availableReplicas=desired,
                    unavailableReplicas=1,
                )
            # Zero counts are left out (omitempty), except those the API always writes.
            obj["status"] = {
                **STATUS_ZEROS.get(rtype.kind, {}),
                **{k: v for k, v in status.items() if v},
            }

        return self.modify(kind, namespace, name, mutate)

    # -- the API's verbs -------------------------------------------------------------------------

    def create(
        self, rtype: ResourceType, namespace: str, body: Any, warnings: list[str]
    ) -> JsonObject:
        obj = decode(rtype, body, warnings)
        metadata = obj["metadata"]
        if metadata.get("namespace") not in (None, "", namespace):
            raise bad_request(_NAMESPACE_MISMATCH)
        if metadata.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        if not metadata.get("name"):
            if metadata.get("generateName"):
                metadata["name"] = metadata["generateName"] + uuid.uuid4().hex[:5]
            else:
                raise invalid(
                    rtype,
                    "",
                    [
                        FieldError(
                            "metadata.name",
                            "FieldValueRequired",
                            "Required value: name or generateName is required",
                        )
                    ],
                )
        name = metadata["name"]
        metadata["namespace"] = namespace
        for key in SERVER_META:
            metadata.pop(key, None)
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = _now_rfc3339()
        if rtype.workload:
            metadata["generation"] = 1
            obj["status"] = dict(STATUS_ZEROS.get(rtype.kind, {}))
        set_defaults(rtype, obj)
        errors = metadata_errors(obj) + kind_errors(rtype, obj, None)
        if errors:
            raise invalid(rtype, name, errors)
        with self.store.lock:
            if self.store.get(rtype, namespace, name) is not None:
                raise already_exists(rtype, name)
            return self.store.put(rtype, namespace, obj)

    def read(self, rtype: ResourceType, namespace: str, name: str) -> JsonObject:
        obj = self.store.get(rtype, namespace, name)
        if obj is None:
            raise not_found(rtype, name)
        return obj

    def list(
        self, rtype: ResourceType, namespace: str, query: Mapping[str, list[str]]
    ) -> JsonObject:
        try:
            selector = parse_label_selector(_one(query, "labelSelector"))
        except ValueError as exc:
            raise bad_request(str(exc)) from exc
        fields = _field_selector(_one(query, "fieldSelector"))
        limit_text = _one(query, "limit")
        continue_token = _one(query, "continue")
        with self.store.lock:
            revision = self.store.revision
            items = self.store.items(rtype, namespace)
        items = [
            item
            for item in items
            if all(r.matches(item["metadata"].get("labels", {})) for r in selector)
            and all(
                item["metadata"].get(field_name) == value for field_name, value in fields.items()
            )
        ]
        if continue_token:
            try:
                after = base64.urlsafe_b64decode(continue_token.encode()).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
                raise bad_request("continue key is not valid") from exc
            items = [item for item in items if item["metadata"]["name"] > after]
        list_meta: JsonObject = {"resourceVersion": str(revision)}
        if limit_text:
            limit = int(limit_text)
            if 0 < limit < len(items):
                items = items[:limit]
                last = items[-1]["metadata"]["name"]
                list_meta["continue"] = base64.urlsafe_b64encode(last.encode()).decode()
                list_meta["remainingItemCount"] = None
        list_meta = {k: v for k, v in list_meta.items() if v is not None}
        for item in items:
            # Items of a typed list carry no kind or apiVersion of their own.
            item.pop("kind", None)
            item.pop("apiVersion", None)
        return {
            "kind": f"{rtype.kind}List",
            "apiVersion": rtype.api_version,
            "metadata": list_meta,
            "items": items,
        }

    def update(
        self, rtype: ResourceType, namespace: str, name: str, body: Any, warnings: list[str]
    ) -> JsonObject:
        new = decode(rtype, body, warnings)
        with self.store.lock:
            old = self.store.get(rtype, namespace, name)
            if new["metadata"].get("name") != name:
                raise bad_request(
                    f"the name of the object ({new['metadata'].get('name', '')}) does not match "
                    f"the name on the URL ({name})"
                )
            if old is None:
                raise not_found(rtype, name)
            return self._commit(rtype, namespace, old, new)

    def patch(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        content_type: str,
        warnings: list[str],
    ) -> JsonObject:
        media = content_type.split(";", maxsplit=1)[0].strip().lower()
        if media == "application/merge-patch+json":
            apply: Callable[[Any, Any], Any] = merge_patch
        elif media == "application/strategic-merge-patch+json":
            apply = strategic_merge_patch
        else:
            raise StatusError(
                415,
                "UnsupportedMediaType",
                f"stand-in: the patch type {media!r} is not implemented "
                "(merge-patch+json and strategic-merge-patch+json are)",
            )
        if not isinstance(body, dict):
            raise bad_request("the patch must be a JSON object")
        with self.store.lock:
            old = self.store.get(rtype, namespace, name)
            if old is None:
                raise not_found(rtype, name)
            patched = apply(old, body)
            if patched.get("metadata", {}).get("name") != name:
                raise bad_request(
                    f"the name of the object ({patched.get('metadata', {}).get('name')}) does not "
                    f"match the name on the URL ({name})"
                )
            new = decode(rtype, patched, warnings)
            return self._commit(rtype, namespace, old, new)

    def delete(self, rtype: ResourceType, namespace: str, name: str, options: Any) -> JsonObject:
        preconditions = (
            (options or {}).get("preconditions") or {} if isinstance(options, dict) else {}
        )
        with self.store.lock:
            old = self.store.get(rtype, namespace, name)
            if old is None:
                raise not_found(rtype, name)
            meta = old["metadata"]
            for key, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
                wanted = preconditions.get(key)
                if wanted and wanted != meta.get(key):
                    raise conflict(
                        rtype,
                        name,
                        f"Precondition failed: {label} in precondition: {wanted}, {label} in "
                        f"object meta: {meta.get(key)}",
                    )
            self.store.remove(rtype, namespace, name)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details_of(rtype, name, uid=meta["uid"]),
        }

    def _commit(
        self, rtype: ResourceType, namespace: str, old: JsonObject, new: JsonObject
    ) -> JsonObject:
        """Store ``new`` over ``old`` (update and patch alike); the store lock is held."""
        meta, old_meta = new["metadata"], old["metadata"]
        name = old_meta["name"]
        if meta.get("namespace") not in (None, "", namespace):
            raise bad_request(_NAMESPACE_MISMATCH)
        wanted_version = meta.get("resourceVersion")
        if wanted_version and wanted_version != old_meta["resourceVersion"]:
            raise conflict(rtype, name, MODIFIED)
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            raise conflict(
                rtype,
                name,
                f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: "
                f"{old_meta['uid']}",
            )
        meta["namespace"] = namespace
        for key in ("uid", "creationTimestamp", "generation"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        meta.pop("selfLink", None)
        meta.pop("managedFields", None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if rtype.workload:
            # The main resource cannot change status; only the controller (subresource) does.
            new["status"] = copy.deepcopy(old.get("status", {}))
            set_defaults(rtype, new)
            if new.get("spec") != old.get("spec"):
                meta["generation"] = old_meta.get("generation", 1) + 1
        errors = metadata_errors(new) + kind_errors(rtype, new, old)
        if errors:
            raise invalid(rtype, name, errors)
        if new == old:
            return old  # a no-op write: nothing stored, the revision stays
        return self.store.put(rtype, namespace, new)

    # -- routing ---------------------------------------------------------------------------------

    def route(
        self, method: str, path: str, query: Mapping[str, list[str]]
    ) -> tuple[ResourceType, str, str | None, str]:
        match = _PATH.match(path)
        rtype = None
        if match is not None:
            group = match["group"] or ""
            version = match["core_version"] or match["version"]
            rtype = RESOURCES.get((group, version, match["plural"]))
        if match is None or rtype is None:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        name = match["name"]
        if method == "GET":
            if _one(query, "watch") in ("true", "1"):
                raise StatusError(405, "MethodNotAllowed", "stand-in: watch is not implemented")
            verb = "get" if name else "list"
        elif method == "POST" and not name:
            verb = "create"
        elif method == "PUT" and name:
            verb = "update"
        elif method == "PATCH" and name:
            verb = "patch"
        elif method == "DELETE" and name:
            verb = "delete"
        else:
            raise StatusError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        return rtype, match["namespace"], name, verb

    def record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def requests_for(
        self, verb: str, resource: str, name: str | None = None
    ) -> list[RequestRecord]:
        """The requests of ``verb`` on ``resource`` (plural), of one name when given."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.verb == verb
                and f"/{resource}" in r.path
                and (name is None or r.path.rstrip("/").endswith(f"/{resource}/{name}"))
            ]


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request(f"json parse error: {exc}") from exc


def _one(query: Mapping[str, list[str]], key: str) -> str:
    values = query.get(key) or [""]
    return values[0]


def _field_selector(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, op, value = re.split(r"(==|=)", part, maxsplit=1) if "=" in part else (part, "", "")
        if not op or key.strip() not in ("metadata.name", "metadata.namespace"):
            raise bad_request(
                f'"{key.strip()}" is not a known field selector: '
                'only "metadata.name", "metadata.namespace"'
            )
        fields[key.strip().removeprefix("metadata.")] = value.strip()
    return fields


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: ApiServer
    ssl_context: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        try:
            # The handshake runs here, in the request's own thread, not in the accept loop.
            wrapped = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes: without this, Nagle's algorithm and the
    # client's delayed ACK add 40 ms to every answer.
    disable_nagle_algorithm = True
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        api = self.server.api
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        content_type = self.headers.get("Content-Type") or ""
        record = RequestRecord(method, url.path, query, None, None, content_type=content_type)
        api.record(record)
        warnings: list[str] = []
        try:
            user = api.authenticate(self.headers.get("Authorization"))
            record.user = user.name
            rtype, namespace, name, verb = api.route(method, url.path, query)
            record.verb = verb
            api.authorize(user, verb, rtype, namespace, name)
            body = record.body = _parse_json(raw)
            fault = api.before_executing(verb, rtype)
            try:
                code, payload = self._execute(
                    api, verb, rtype, namespace, name, query, body, content_type, warnings
                )
            except StatusError as failure:
                code, payload = failure.code, failure.status()
            # Faults that act once the request was executed, whatever its answer.
            if fault is not None and fault.action == "drop":
                record.code = -1
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault is not None and fault.action == "delay-after":
                time.sleep(fault.seconds)
        except StatusError as failure:
            code, payload = failure.code, failure.status()
        record.code = code
        self._send(code, payload, warnings)

    @staticmethod
    def _execute(
        api: ApiServer,
        verb: str,
        rtype: ResourceType,
        namespace: str,
        name: str | None,
        query: Mapping[str, list[str]],
        body: Any,
        content_type: str,
        warnings: list[str],
    ) -> tuple[int, JsonObject]:
        if verb == "get":
            assert name is not None
            return 200, api.read(rtype, namespace, name)
        if verb == "list":
            return 200, api.list(rtype, namespace, query)
        if verb == "create":
            return 201, api.create(rtype, namespace, body, warnings)
        assert name is not None
        if verb == "update":
            return 200, api.update(rtype, namespace, name, body, warnings)
        if verb == "patch":
            return 200, api.patch(rtype, namespace, name, body, content_type, warnings)
        return 200, api.delete(rtype, namespace, name, body)

    def _send(self, code: int, payload: JsonObject, warnings: list[str]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(
                code, HTTPStatus(code).phrase if code in HTTPStatus._value2member_map_ else None
            )
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for warning in warnings:
                self.send_header("Warning", f'299 - "{warning}"')
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            # The client gave up (its timeout): nothing to answer.
            self.close_connection = True


# --- kubeconfig files ---------------------------------------------------------------------------


def write_kubeconfig(
    path: Path,
    server: str,
    token: str,
    *,
    ca_file: Path | None = None,
    namespace: str | None = None,
) -> Path:
    """A kubeconfig with one cluster, one token user and one current context (JSON is YAML)."""
    cluster: JsonObject = {"server": server}
    if ca_file is not None:
        cluster["certificate-authority"] = str(ca_file)
    context: JsonObject = {"cluster": "stand-in", "user": "tester"}
    if namespace is not None:
        context["namespace"] = namespace
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "stand-in", "cluster": cluster}],
        "users": [{"name": "tester", "user": {"token": token}}],
        "contexts": [{"name": "stand-in", "context": context}],
        "current-context": "stand-in",
    }
    path.write_text(json.dumps(document, indent=2))
    return path
