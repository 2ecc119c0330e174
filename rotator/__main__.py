"""``python -m rotator``: the same as the ``rotator`` console script."""

import sys

from rotator.cli import main

sys.exit(main())
