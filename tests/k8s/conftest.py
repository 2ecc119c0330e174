from tests.k8s.fixtures import apiserver, cluster, kubeconfig, tls_cluster  # noqa: F401 - fixtures
