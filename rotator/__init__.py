"""key-rotator: rotates ProjectManager.com API keys before their two-year life runs out.

The public surface is the ``rotator`` command (``rotator.cli.main``); the modules are private.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("key-rotator")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
