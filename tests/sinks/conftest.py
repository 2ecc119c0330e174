"""Server fixtures the sink tests use, from their plugin modules in tests/servers/.

pytest refuses ``pytest_plugins`` in a conftest below the top level, so each plugin's fixtures
are imported here by name instead (one line per server).
"""

from tests.servers.moto import aws_env, moto_server  # noqa: F401
