"""``python -m aicircle``: the same as the ``aicircle`` command."""

import sys

from .cli import main

sys.exit(main())
