"""Pytest fixtures around the stand-in API server (:mod:`tests.k8s.apiserver`).

``apiserver``: a running stand-in on a free loopback port (plain HTTP), with an admin token;
``kubeconfig``: a kubeconfig file for it with that token; ``cluster``: both, plus
:meth:`Cluster.identity` to add a token with its own RBAC rules and get its kubeconfig;
``tls_cluster``: the same over HTTPS with a certificate from a throwaway CA (``trustme``), whose
bundle :attr:`Cluster.ca_file` names. Each test gets its own server: no state leaks between them.

A conftest registers them by importing them (``from tests.k8s.fixtures import *``-style
imports of the names below).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.k8s.apiserver import ApiServer, Rule, write_kubeconfig

NAMESPACE = "rotator-test"
ADMIN_USER = "admin"


@dataclass
class Cluster:
    """A running stand-in and the files a client needs to reach it."""

    server: ApiServer
    directory: Path
    admin_token: str
    ca_file: Path | None = None

    @property
    def kubeconfig(self) -> Path:
        """The admin's kubeconfig (allowed everything)."""
        return self.kubeconfig_for(self.admin_token, "admin")

    def kubeconfig_for(self, token: str, label: str, *, server: str | None = None) -> Path:
        path = self.directory / f"kubeconfig-{label}"
        return write_kubeconfig(path, server or self.server.url, token, ca_file=self.ca_file)

    def identity(self, user: str, rules: Iterable[Rule] | None) -> Path:
        """A new token for ``user`` with ``rules`` (None: allowed everything); its kubeconfig."""
        token = f"token-{secrets.token_hex(8)}"
        self.server.add_token(token, user, rules)
        return self.kubeconfig_for(token, user.replace(":", "-"))

    def unreachable(self) -> Path:
        """A kubeconfig whose server listens nowhere (a closed loopback port)."""
        return self.kubeconfig_for(self.admin_token, "unreachable", server=_closed_port_url())


def _closed_port_url() -> str:
    import socket  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens there once the probe is closed: connections are refused.
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def apiserver() -> Iterator[ApiServer]:
    """A running plain-HTTP stand-in with the token ``admin-token`` allowed everything."""
    server = ApiServer().start()
    server.add_token("admin-token", ADMIN_USER)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kubeconfig(apiserver: ApiServer, tmp_path: Path) -> Path:
    """A kubeconfig for ``apiserver`` with the admin token."""
    return write_kubeconfig(tmp_path / "kubeconfig", apiserver.url, "admin-token")


@pytest.fixture
def cluster(apiserver: ApiServer, tmp_path: Path) -> Cluster:
    directory = tmp_path / "cluster"
    directory.mkdir()
    return Cluster(apiserver, directory, "admin-token")


@pytest.fixture
def tls_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """The stand-in over HTTPS: a certificate for 127.0.0.1 from a throwaway CA."""
    import trustme  # noqa: PLC0415 - only the TLS tests need it

    directory = tmp_path / "tls-cluster"
    directory.mkdir()
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = (
        directory / "server.crt",
        directory / "server.key",
        directory / "ca.crt",
    )
    certificate.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    certificate.private_key_pem.write_to_path(str(key_file))
    authority.cert_pem.write_to_path(str(ca_file))
    server = ApiServer(tls=(cert_file, key_file)).start()
    token = f"token-{secrets.token_hex(8)}"
    server.add_token(token, ADMIN_USER)
    try:
        yield Cluster(server, directory, token, ca_file)
    finally:
        server.stop()
