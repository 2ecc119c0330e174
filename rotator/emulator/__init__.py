"""The bundled emulator of the ProjectManager.com API-key endpoints (tests, `rotator demo`).

Only the ``emulator`` and ``demo`` commands and the tests import this package; nothing on the
path of a pass does. It knows nothing of the rotator: it is a stand-in for the real service.
"""

from rotator.emulator._run import run
from rotator.emulator._seed import SeedError, load_seed, seed_problems
from rotator.emulator._server import Emulator
from rotator.emulator._state import CLOCKS, ODD_LIST_ENTRIES, REQUEST_LOG_LIMIT

__all__ = [
    "CLOCKS",
    "ODD_LIST_ENTRIES",
    "REQUEST_LOG_LIMIT",
    "Emulator",
    "SeedError",
    "load_seed",
    "run",
    "seed_problems",
]
