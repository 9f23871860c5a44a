"""`python -m robustbench_gan` is the `rbg` command."""

import sys

from .cli import main

sys.exit(main())
