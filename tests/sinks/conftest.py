"""Fixtures of the sink tests: the servers some backends need.

The server modules under tests/servers are written as pytest plugins, but pytest 9 refuses
``pytest_plugins`` in a conftest below the top level; importing their fixtures here has the same
effect for the tests in this folder. One line per server module.
"""

from tests.k8s.fixtures import apiserver, cluster, kubeconfig, tls_cluster  # noqa: F401 - fixtures
from tests.servers.moto import aws_env, moto_server  # noqa: F401
from tests.servers.openbao import openbao, openbao_tls  # noqa: F401
