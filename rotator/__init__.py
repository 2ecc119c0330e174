"""key-rotator: rotates ProjectManager.com API keys before their two-year life runs out.

The public surface is the ``rotator`` command (``rotator.cli.main``); the modules are private.
The version is written here, not read from the installed metadata: ``importlib.metadata`` alone
costs more start-up time than the rest of ``--help`` (a test holds it equal to pyproject.toml).
"""

__version__ = "0.2.0"

__all__ = ["__version__"]
