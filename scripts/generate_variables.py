"""Write rotator/variables.py, what ``--help`` shows of each variable, from the settings models.

Run after changing a setting (its default, its description, a new one): ``python
scripts/generate_variables.py``. ``--check`` changes nothing and exits 1 when the file is stale
(the tests do the same).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rotator.settings._help import variables_module, write_variables_module

TARGET = Path(__file__).resolve().parents[1] / "rotator" / "variables.py"


def main(argv: list[str]) -> int:
    if "--check" in argv:
        stale = not TARGET.exists() or TARGET.read_text() != variables_module()
        if stale:
            print(f"{TARGET} is stale: run python scripts/generate_variables.py", file=sys.stderr)
        return 1 if stale else 0
    changed = write_variables_module(TARGET)
    print(f"{TARGET}: {'written' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
