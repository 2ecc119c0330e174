"""key-rotator: rotates ProjectManager.com API keys before their two-year life runs out.

The public surface is the ``rotator`` command (``rotator.cli.main``); the modules are private.
The version is written here, not read from the installed metadata: ``importlib.metadata`` alone
costs more start-up time than the rest of ``--help`` (a test holds it equal to pyproject.toml).
"""

import sys

__version__ = "0.2.0"

# The rotator never speaks HTTP/2: every httpx client it makes is HTTP/1.1. lightkube (the
# kubernetes extra) depends on httpx[http2], which installs h2, and httpcore imports h2 (and
# hpack) as soon as it is installed: about 1.4 MB of memory in every rotator process, whatever
# its sink. Marked absent before httpx loads, it stays unloaded; httpcore would then refuse
# HTTP/2 only if asked for it, and nothing here asks.
sys.modules.setdefault("h2", None)  # type: ignore[arg-type] # None means: not importable

__all__ = ["__version__"]
