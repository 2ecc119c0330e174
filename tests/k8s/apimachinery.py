"""The API machinery the stand-in API server follows: resource types, validation, Status
errors, label selectors, patches and a bearer-token RBAC authorizer.

Written from the Kubernetes API's documented behaviour (the API conventions, the validation
rules of k8s.io/apimachinery and the messages a real server answers with). The HTTP side, the
store and the test controls are in :mod:`tests.k8s.apiserver`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

JsonObject = dict[str, Any]

# --- validation rules, as k8s.io/apimachinery/pkg/util/validation spells them --------------------

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN: Final = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_MICRO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_QUALIFIED_NAME_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_MAX_SECRET_BYTES: Final = 1024 * 1024
_MAX_ANNOTATIONS_BYTES: Final = 256 * 1024
_RFC3339_MICRO_LAYOUT: Final = "2006-01-02T15:04:05.000000Z07:00"

_META_FIELDS: Final = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
        "selfLink",
    }
)
#: Set by the server alone: what a client sends there is replaced.
SERVER_META: Final = ("uid", "creationTimestamp", "generation", "selfLink", "managedFields")


@dataclass(frozen=True)
class ResourceType:
    """One API resource the stand-in serves."""

    group: str
    version: str
    plural: str
    kind: str
    #: Top-level fields of the object besides apiVersion, kind and metadata.
    fields: frozenset[str]
    workload: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``secrets`` or ``leases.coordination.k8s.io``, as messages name a resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


SECRETS: Final = ResourceType(
    "", "v1", "secrets", "Secret", frozenset({"data", "stringData", "type", "immutable"})
)
LEASES: Final = ResourceType("coordination.k8s.io", "v1", "leases", "Lease", frozenset({"spec"}))
DEPLOYMENTS: Final = ResourceType(
    "apps", "v1", "deployments", "Deployment", frozenset({"spec", "status"}), workload=True
)
STATEFULSETS: Final = ResourceType(
    "apps", "v1", "statefulsets", "StatefulSet", frozenset({"spec", "status"}), workload=True
)
DAEMONSETS: Final = ResourceType(
    "apps", "v1", "daemonsets", "DaemonSet", frozenset({"spec", "status"}), workload=True
)
EVENTS: Final = ResourceType(
    "events.k8s.io",
    "v1",
    "events",
    "Event",
    frozenset(
        {
            "action",
            "deprecatedCount",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            "deprecatedSource",
            "eventTime",
            "note",
            "reason",
            "regarding",
            "related",
            "reportingController",
            "reportingInstance",
            "series",
            "type",
        }
    ),
)
#: Status fields the API always writes, zero included (they lack ``omitempty``); the client's
#: models require them.
STATUS_ZEROS: Final[dict[str, dict[str, int]]] = {
    "StatefulSet": {"replicas": 0},
    "DaemonSet": {
        "currentNumberScheduled": 0,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 0,
        "numberReady": 0,
    },
}
RESOURCES: Final = {
    (r.group, r.version, r.plural): r
    for r in (SECRETS, LEASES, DEPLOYMENTS, STATEFULSETS, DAEMONSETS, EVENTS)
}
BY_KIND: Final = {r.kind: r for r in RESOURCES.values()}


# --- authorization -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One RBAC PolicyRule: ``*`` matches everything in its list."""

    verbs: frozenset[str]
    resources: frozenset[str]
    api_groups: frozenset[str] = frozenset({"*"})
    resource_names: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        verbs: Iterable[str],
        resources: Iterable[str],
        api_groups: Iterable[str] = ("*",),
        resource_names: Iterable[str] = (),
    ) -> Rule:
        return cls(
            frozenset(verbs), frozenset(resources), frozenset(api_groups), frozenset(resource_names)
        )

    @classmethod
    def from_manifest(cls, rule: Mapping[str, Any]) -> Rule:
        """A rule from a Role manifest's ``rules`` entry."""
        return cls.of(
            rule.get("verbs", ()),
            rule.get("resources", ()),
            rule.get("apiGroups", ()),
            rule.get("resourceNames", ()),
        )

    def allows(self, verb: str, group: str, resource: str, name: str | None) -> bool:
        def matches(values: frozenset[str], value: str) -> bool:
            return "*" in values or value in values

        if not (
            matches(self.verbs, verb)
            and matches(self.api_groups, group)
            and matches(self.resources, resource)
        ):
            return False
        # A rule scoped to names cannot allow a request that names nothing (list, create).
        return not self.resource_names or (name is not None and name in self.resource_names)


@dataclass(frozen=True)
class User:
    name: str
    #: None: allowed everything (cluster-admin).
    rules: tuple[Rule, ...] | None = None

    def allows(self, verb: str, group: str, resource: str, name: str | None) -> bool:
        if self.rules is None:
            return True
        return any(rule.allows(verb, group, resource, name) for rule in self.rules)


# --- errors as Status objects --------------------------------------------------------------------


class StatusError(Exception):
    """An answer other than success, rendered as a ``Status`` body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JsonObject | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> JsonObject:
        body: JsonObject = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def details_of(rtype: ResourceType, name: str, **extra: Any) -> JsonObject:
    details: JsonObject = {"name": name}
    if rtype.group:
        details["group"] = rtype.group
    details["kind"] = rtype.plural
    details.update(extra)
    return details


def not_found(rtype: ResourceType, name: str) -> StatusError:
    return StatusError(
        404, "NotFound", f'{rtype.qualified} "{name}" not found', details_of(rtype, name)
    )


def already_exists(rtype: ResourceType, name: str) -> StatusError:
    return StatusError(
        409, "AlreadyExists", f'{rtype.qualified} "{name}" already exists', details_of(rtype, name)
    )


def conflict(rtype: ResourceType, name: str, detail: str) -> StatusError:
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rtype.qualified} "{name}": {detail}',
        details_of(rtype, name),
    )


MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


@dataclass
class FieldError:
    field: str
    kind: str  # FieldValueInvalid, FieldValueRequired, FieldValueTooLong, FieldValueForbidden
    text: str

    def cause(self) -> JsonObject:
        return {"reason": self.kind, "message": self.text, "field": self.field}

    def render(self) -> str:
        return f"{self.field}: {self.text}"


def _invalid(field_path: str, value: Any, detail: str) -> FieldError:
    shown = json.dumps(value) if isinstance(value, str) else str(value)
    return FieldError(field_path, "FieldValueInvalid", f"Invalid value: {shown}: {detail}")


def _required(field_path: str) -> FieldError:
    return FieldError(field_path, "FieldValueRequired", "Required value")


def invalid(rtype: ResourceType, name: str, errors: list[FieldError]) -> StatusError:
    rendered = [e.render() for e in errors]
    joined = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    details: JsonObject = {"name": name}
    if rtype.group:
        details["group"] = rtype.group
    details["kind"] = rtype.kind
    details["causes"] = [e.cause() for e in errors]
    return StatusError(422, "Invalid", f'{rtype.kind} "{name}" is invalid: {joined}', details)


# --- label selectors ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # =, !=, in, notin, exists, !, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator in ("=", "in"):
            return present and value in self.values
        if self.operator in ("!=", "notin"):
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if not present or value is None:
            return False
        try:
            number = int(value)
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if self.operator == "gt" else number < bound


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


_SET_REQUIREMENT = re.compile(
    r"^\s*(?P<key>[^\s!=<>(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\s*$"
)
_EQUALITY_REQUIREMENT = re.compile(
    r"^\s*(?P<key>[^\s!=<>(),]+)\s*(?P<op>==|=|!=|>|<)\s*(?P<value>[^\s!=<>(),]*)\s*$"
)
_EXISTS_REQUIREMENT = re.compile(r"^\s*(?P<neg>!?)\s*(?P<key>[^\s!=<>(),]+)\s*$")


def parse_label_selector(text: str) -> tuple[Requirement, ...]:
    """A label selector in the API's string form; ValueError with the API's wording."""
    if not text.strip():
        return ()
    requirements: list[Requirement] = []
    for part in _split_top_level(text):
        if match := _SET_REQUIREMENT.match(part):
            values = tuple(v.strip() for v in match["values"].split(","))
            values = tuple(v for v in values if v)
            requirement = Requirement(match["key"], match["op"], values)
        elif match := _EQUALITY_REQUIREMENT.match(part):
            op = {"==": "=", ">": "gt", "<": "lt"}.get(match["op"], match["op"])
            requirement = Requirement(match["key"], op, (match["value"],))
            if op in ("gt", "lt") and not re.fullmatch(r"-?\d+", match["value"]):
                raise ValueError(
                    "unable to parse requirement: "
                    "for 'Gt', 'Lt' operators, the value must be an integer"
                )
        elif match := _EXISTS_REQUIREMENT.match(part):
            requirement = Requirement(match["key"], "!" if match["neg"] else "exists")
        else:
            raise ValueError(f"unable to parse requirement: found '{part.strip()}', expected: key")
        if problem := _qualified_name_problem(requirement.key):
            raise ValueError(
                f"unable to parse requirement: invalid label key {requirement.key!r}: {problem}"
            )
        for value in requirement.values:
            if len(value) > 63 or not _LABEL_VALUE.match(value):
                raise ValueError(
                    f"unable to parse requirement: invalid label value: {value!r}: at key: "
                    f"{requirement.key!r}: {_LABEL_VALUE_MESSAGE}"
                )
        requirements.append(requirement)
    return tuple(requirements)


def _qualified_name_problem(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        return f"prefix part {_SUBDOMAIN_MESSAGE}"
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _QUALIFIED_NAME.match(name):
        return _QUALIFIED_NAME_MESSAGE
    return None


# --- patches ----------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge for maps (as merge patch); lists are not implemented and refused."""
    if isinstance(patch, list):
        raise bad_request("stand-in: strategic merge of lists is not implemented")
    if isinstance(patch, dict):
        if any(key.startswith("$") for key in patch):
            raise bad_request("stand-in: strategic merge directives are not implemented")
        result = copy.deepcopy(target) if isinstance(target, dict) else {}
        for key, value in patch.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = strategic_merge_patch(result.get(key), value)
        return result
    return copy.deepcopy(patch)


# --- decoding and validation --------------------------------------------------------------------


def _decode_error(rtype: ResourceType, detail: str) -> StatusError:
    return bad_request(
        f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: {detail}'
    )


def _string_map(rtype: ResourceType, value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _decode_error(rtype, f"{where}: expected map[string]string")
    return dict(value)


def _normalise_micro_time(rtype: ResourceType, value: Any, where: str) -> str | None:
    """A MicroTime as the server reads it (exactly six fractional digits) and writes it (UTC)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _MICRO_TIME.match(value):
        raise _decode_error(
            rtype,
            f"{where}: parsing time {json.dumps(value)} as {json.dumps(_RFC3339_MICRO_LAYOUT)}: "
            "cannot parse",
        )
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _normalise_time(rtype: ResourceType, value: Any, where: str) -> str | None:
    """A metav1.Time: any RFC 3339 time in, whole seconds in UTC out."""
    if value is None:
        return None
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise _decode_error(rtype, f"{where}: parsing time {json.dumps(value)}: cannot parse")
    text = re.sub(r"\.\d+", "", value).replace("Z", "+00:00")
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _require_int(rtype: ResourceType, value: Any, where: str) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise _decode_error(rtype, f"{where}: readUint64: unexpected character")


def decode(rtype: ResourceType, body: Any, warnings: list[str]) -> JsonObject:
    """The object as the server holds it after decoding: known fields only, types checked."""
    if not isinstance(body, dict):
        raise bad_request("the body of the request was in an unknown format")
    kind = body.get("kind")
    api_version = body.get("apiVersion")
    if kind not in (None, "", rtype.kind) or api_version not in (None, "", rtype.api_version):
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version "
            f"({rtype.api_version})"
            if api_version not in (None, "", rtype.api_version)
            else f"{kind} is not a {rtype.kind}"
        )
    obj: JsonObject = {"kind": rtype.kind, "apiVersion": rtype.api_version}
    for key, value in body.items():
        if key in ("kind", "apiVersion"):
            continue
        if key == "metadata" or key in rtype.fields:
            obj[key] = copy.deepcopy(value)
        else:
            warnings.append(f'unknown field "{key}"')
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise _decode_error(rtype, "metadata: expected an object")
    for key in list(metadata):
        if key not in _META_FIELDS:
            warnings.append(f'unknown field "metadata.{key}"')
            del metadata[key]
    for key in ("name", "generateName", "namespace", "uid", "resourceVersion"):
        if metadata.get(key) is not None and not isinstance(metadata[key], str):
            raise _decode_error(rtype, f"metadata.{key}: expected a string")
    for key in ("labels", "annotations"):
        if key in metadata:
            metadata[key] = _string_map(rtype, metadata[key], f"metadata.{key}")
            if not metadata[key]:
                del metadata[key]
    obj["metadata"] = metadata
    if rtype is SECRETS:
        data = _string_map(rtype, obj.get("data"), "data")
        for key, value in data.items():
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise _decode_error(rtype, f"data[{key}]: illegal base64 data") from exc
        string_data = _string_map(rtype, obj.pop("stringData", None), "stringData")
        # stringData is write-only: merged into data (over it) and never stored.
        for key, value in string_data.items():
            data[key] = base64.b64encode(value.encode()).decode()
        if data:
            obj["data"] = data
        else:
            obj.pop("data", None)
        if obj.get("type") in (None, ""):
            obj["type"] = "Opaque"
        elif not isinstance(obj["type"], str):
            raise _decode_error(rtype, "type: expected a string")
        if "immutable" in obj and not isinstance(obj["immutable"], bool):
            raise _decode_error(rtype, "immutable: expected a bool")
    elif rtype is LEASES:
        spec = obj.get("spec") or {}
        if not isinstance(spec, dict):
            raise _decode_error(rtype, "spec: expected an object")
        for key in ("leaseDurationSeconds", "leaseTransitions"):
            _require_int(rtype, spec.get(key), f"spec.{key}")
        if spec.get("holderIdentity") is not None and not isinstance(spec["holderIdentity"], str):
            raise _decode_error(rtype, "spec.holderIdentity: expected a string")
        for key in ("acquireTime", "renewTime"):
            normalised = _normalise_micro_time(rtype, spec.get(key), f"spec.{key}")
            if normalised is None:
                spec.pop(key, None)
            else:
                spec[key] = normalised
        for key in [k for k, v in spec.items() if v is None]:
            del spec[key]
        obj["spec"] = spec
    elif rtype is EVENTS:
        _decode_event(rtype, obj)
    else:
        spec = obj.get("spec")
        if spec is not None and not isinstance(spec, dict):
            raise _decode_error(rtype, "spec: expected an object")
        if isinstance(spec, dict):
            _require_int(rtype, spec.get("replicas"), "spec.replicas")
            template_meta = (spec.get("template") or {}).get("metadata") or {}
            for key in ("labels", "annotations"):
                if key in template_meta:
                    template_meta[key] = _string_map(
                        rtype, template_meta[key], f"spec.template.metadata.{key}"
                    )
    return obj


_EVENT_STRINGS: Final = (
    "action",
    "note",
    "reason",
    "reportingController",
    "reportingInstance",
    "type",
)
_REFERENCE_FIELDS: Final = (
    "apiVersion",
    "fieldPath",
    "kind",
    "name",
    "namespace",
    "resourceVersion",
    "uid",
)


def _decode_event(rtype: ResourceType, obj: JsonObject) -> None:
    """An events.k8s.io/v1 Event's fields, typed as the server's decoder reads them."""

    def string(value: Any, where: str) -> None:
        if value is not None and not isinstance(value, str):
            raise _decode_error(rtype, f"{where}: expected a string")

    def nested(key: str, fields: Iterable[str]) -> JsonObject | None:
        value = obj.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _decode_error(rtype, f"{key}: expected an object")
        for name in fields:
            string(value.get(name), f"{key}.{name}")
        return value

    for key in _EVENT_STRINGS:
        string(obj.get(key), key)
    for key in ("eventTime",):
        obj[key] = _normalise_micro_time(rtype, obj.get(key), key)
    for key in ("deprecatedFirstTimestamp", "deprecatedLastTimestamp"):
        obj[key] = _normalise_time(rtype, obj.get(key), key)
    _require_int(rtype, obj.get("deprecatedCount"), "deprecatedCount")
    nested("regarding", _REFERENCE_FIELDS)
    nested("related", _REFERENCE_FIELDS)
    nested("deprecatedSource", ("component", "host"))
    series = nested("series", ())
    if series is not None:
        _require_int(rtype, series.get("count"), "series.count")
        series["lastObservedTime"] = _normalise_micro_time(
            rtype, series.get("lastObservedTime"), "series.lastObservedTime"
        )
    for key in [k for k, v in obj.items() if v is None]:
        del obj[key]


#: The limits of an Event's fields (pkg/apis/core/validation/events.go).
_EVENT_FIELD_LIMIT: Final = 128
_EVENT_NOTE_LIMIT: Final = 1024
_EVENT_TYPES: Final = ("Normal", "Warning")
_NAMESPACES_WITHOUT_OBJECTS: Final = ("default", "kube-system")
_NOT_EVENT_NAMESPACE: Final = "does not match event.namespace"


def _event_errors(obj: JsonObject) -> list[FieldError]:
    """What the API server refuses in an Event created through events.k8s.io/v1.

    The rules and the field paths are the server's: it validates the internal (core) Event, so
    ``regarding`` is ``involvedObject`` and ``note`` is ``message`` in its messages.
    """
    errors: list[FieldError] = []
    namespace = obj["metadata"].get("namespace", "")
    regarding = obj.get("regarding") or {}
    regarding_namespace = regarding.get("namespace", "")
    event_time = obj.get("eventTime")
    if not event_time:
        # An Event without eventTime must agree with its object's namespace (the legacy rule).
        wanted = ("", "default") if not regarding_namespace else (regarding_namespace,)
        if namespace not in wanted:
            errors.append(
                _invalid("involvedObject.namespace", regarding_namespace, _NOT_EVENT_NAMESPACE)
            )
    else:
        if not regarding_namespace and namespace not in _NAMESPACES_WITHOUT_OBJECTS:
            errors.append(
                _invalid("involvedObject.namespace", regarding_namespace, _NOT_EVENT_NAMESPACE)
            )
        controller = obj.get("reportingController", "")
        if not controller:
            errors.append(_required("reportingController"))
        if problem := _qualified_name_problem(controller):
            errors.append(_invalid("reportingController", controller, problem))
        for key, path in (
            ("reportingInstance", "reportingInstance"),
            ("action", "action"),
            ("reason", "reason"),
        ):
            value = obj.get(key, "")
            if not value:
                errors.append(_required(path))
            elif len(value) > _EVENT_FIELD_LIMIT:
                errors.append(
                    _invalid(path, "", f"can have at most {_EVENT_FIELD_LIMIT} characters")
                )
        if len(obj.get("note", "")) > _EVENT_NOTE_LIMIT:
            errors.append(
                _invalid("message", "", f"can have at most {_EVENT_NOTE_LIMIT} characters")
            )
    if not DNS1123_SUBDOMAIN.match(namespace):
        errors.append(_invalid("namespace", namespace, _SUBDOMAIN_MESSAGE))
    series = obj.get("series")
    if series is not None:
        if (series.get("count") or 0) < 2:
            errors.append(_invalid("series.count", "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            errors.append(_required("series.lastObservedTime"))
    if not event_time:
        errors.append(_required("eventTime"))
    if obj.get("type") not in _EVENT_TYPES:
        errors.append(_invalid("type", "", f"has invalid value: {obj.get('type', '')}"))
    for key, path in (
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
        ("deprecatedSource", "source"),
    ):
        value = obj.get(key)
        if isinstance(value, dict):
            value = any(value.values())
        if value:
            errors.append(_invalid(path, "", "needs to be unset"))
    return errors


def metadata_errors(obj: JsonObject) -> list[FieldError]:
    metadata = obj["metadata"]
    errors: list[FieldError] = []
    name = metadata.get("name", "")
    if len(name) > 253:
        errors.append(_invalid("metadata.name", name, "must be no more than 253 characters"))
    elif not DNS1123_SUBDOMAIN.match(name):
        errors.append(_invalid("metadata.name", name, _SUBDOMAIN_MESSAGE))
    errors += _map_errors(metadata.get("labels", {}), "metadata.labels", labels=True)
    errors += _map_errors(metadata.get("annotations", {}), "metadata.annotations", labels=False)
    return errors


def _map_errors(values: Mapping[str, str], where: str, *, labels: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    total = 0
    for key, value in values.items():
        if problem := _qualified_name_problem(key):
            errors.append(_invalid(where, key, problem))
        if labels and (len(value) > 63 or not _LABEL_VALUE.match(value)):
            detail = (
                "must be no more than 63 characters" if len(value) > 63 else _LABEL_VALUE_MESSAGE
            )
            errors.append(_invalid(f"{where}", value, detail))
        total += len(key) + len(value)
    if not labels and total > _MAX_ANNOTATIONS_BYTES:
        errors.append(
            FieldError(
                where,
                "FieldValueTooLong",
                f"Too long: must have at most {_MAX_ANNOTATIONS_BYTES} bytes",
            )
        )
    return errors


def kind_errors(rtype: ResourceType, obj: JsonObject, old: JsonObject | None) -> list[FieldError]:
    errors: list[FieldError] = []
    if rtype is SECRETS:
        total = 0
        for key, value in obj.get("data", {}).items():
            if (
                len(key) > 253
                or not _CONFIG_KEY.match(key)
                or key in (".", "..")
                or key.startswith("..")
            ):
                errors.append(
                    _invalid(
                        f"data[{key}]",
                        key,
                        "a valid config key must consist of alphanumeric characters, '-', '_' or "
                        "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                        "validation is '[-._a-zA-Z0-9]+')",
                    )
                )
            total += len(base64.b64decode(value))
        if total > _MAX_SECRET_BYTES:
            errors.append(
                FieldError(
                    "data",
                    "FieldValueTooLong",
                    f"Too long: must have at most {_MAX_SECRET_BYTES} bytes",
                )
            )
        if old is not None:
            if obj.get("type") != old.get("type"):
                errors.append(_invalid("type", obj.get("type"), "field is immutable"))
            if old.get("immutable") is True:
                if obj.get("immutable") is not True:
                    errors.append(
                        FieldError(
                            "immutable",
                            "FieldValueForbidden",
                            "Forbidden: field is immutable when `immutable` is set",
                        )
                    )
                if obj.get("data", {}) != old.get("data", {}):
                    errors.append(
                        FieldError(
                            "data",
                            "FieldValueForbidden",
                            "Forbidden: field is immutable when `immutable` is set",
                        )
                    )
    elif rtype is EVENTS:
        errors += _event_errors(obj)
    elif rtype is LEASES:
        spec = obj.get("spec", {})
        duration = spec.get("leaseDurationSeconds")
        if duration is not None and duration <= 0:
            errors.append(_invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
        transitions = spec.get("leaseTransitions")
        if transitions is not None and transitions < 0:
            errors.append(
                _invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0")
            )
    else:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [_required("spec")]
        selector = spec.get("selector")
        if not isinstance(selector, dict) or not (
            selector.get("matchLabels") or selector.get("matchExpressions")
        ):
            errors.append(_required("spec.selector"))
        else:
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels", {})
            wanted = selector.get("matchLabels") or {}
            if any(labels.get(k) != v for k, v in wanted.items()):
                errors.append(
                    _invalid(
                        "spec.template.metadata.labels",
                        f"map[string]string{labels}",
                        "`selector` does not match template `labels`",
                    )
                )
            if old is not None and selector != old.get("spec", {}).get("selector"):
                errors.append(_invalid("spec.selector", str(selector), "field is immutable"))
        replicas = spec.get("replicas")
        if replicas is not None and replicas < 0:
            errors.append(_invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    return errors


def set_defaults(rtype: ResourceType, obj: JsonObject) -> None:
    if rtype in (DEPLOYMENTS, STATEFULSETS) and isinstance(obj.get("spec"), dict):
        obj["spec"].setdefault("replicas", 1)
