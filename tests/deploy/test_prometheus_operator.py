"""The Prometheus Operator component (config/kubernetes/components/prometheus-operator).

Rendered with the service overlay as operations.md composes it: the Kubernetes objects validate
strictly against the API schemas; the ServiceMonitor and the PrometheusRule (custom resources
the offline validator has no schema for) are checked against the fields of the operator's
``monitoring.coreos.com/v1`` CRDs that they use, the ServiceMonitor selects the Service that
serves /metrics by its port's name, and the PrometheusRule holds exactly the shipped alert
rules, which ``promtool check rules`` accepts as they come out of the render.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import CONFIG, KUBERNETES, documents, kustomize, one, run, tool

MONITORING = "monitoring.coreos.com/v1"
#: The fields of the CRDs' specs this component may use (prometheus-operator v0.7x+).
SERVICE_MONITOR_SPEC = {"selector", "endpoints", "namespaceSelector", "jobLabel"}
ENDPOINT_FIELDS = {"port", "path", "interval", "scrapeTimeout", "scheme", "honorLabels"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("prometheus-operator")
    relative = os.path.relpath(KUBERNETES, folder)
    (folder / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "namespace: key-rotator\n"
        f"resources:\n  - {relative}/overlays/service\n"
        f"components:\n  - {relative}/components/prometheus-operator\n",
        encoding="utf-8",
    )
    return documents(kustomize(folder))


def test_the_kubernetes_objects_validate_strictly(rendered: list[dict[str, Any]]) -> None:
    core = [doc for doc in rendered if doc["apiVersion"] != MONITORING]
    assert {doc["kind"] for doc in rendered} - {doc["kind"] for doc in core} == {
        "ServiceMonitor",
        "PrometheusRule",
    }
    text = "\n---\n".join(yaml.safe_dump(doc) for doc in core)
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", "-", stdin=text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_service_monitor_scrapes_the_services_metrics(rendered: list[dict[str, Any]]) -> None:
    monitor = one(rendered, "ServiceMonitor")
    service = one(rendered, "Service")
    assert monitor["apiVersion"] == MONITORING
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"] == "key-rotator"
    spec = monitor["spec"]
    assert set(spec) <= SERVICE_MONITOR_SPEC
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    # It must not also select another Service of the rendering.
    services = [doc for doc in rendered if doc["kind"] == "Service"]
    assert [s for s in services if selector.items() <= s["metadata"]["labels"].items()] == [service]
    (endpoint,) = spec["endpoints"]
    assert set(endpoint) <= ENDPOINT_FIELDS
    ports = {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["port"] in ports
    assert endpoint["path"] == "/metrics"


def test_the_prometheus_rule_holds_the_shipped_alert_rules(
    rendered: list[dict[str, Any]],
) -> None:
    rule = one(rendered, "PrometheusRule")
    assert rule["apiVersion"] == MONITORING
    assert rule["metadata"]["namespace"] == "key-rotator"
    shipped = yaml.safe_load((CONFIG / "prometheus" / "rotator-alerts.yaml").read_text())
    assert rule["spec"] == shipped, (
        "components/prometheus-operator/prometheusrule.yaml differs from "
        "config/prometheus/rotator-alerts.yaml: copy the rule file's groups into its spec"
    )


def test_promtool_accepts_the_rendered_rules(
    rendered: list[dict[str, Any]], tmp_path: Path
) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool not found: apt-get install --no-install-recommends prometheus"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(one(rendered, "PrometheusRule")["spec"]), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 rules found" in result.stdout
