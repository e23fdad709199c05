"""``python -m cogflex``: the ``cogflex`` command (for Make rules and environments without the console script)."""

import sys

from cogflex.cli import main

sys.exit(main())
