"""``python -m vidsort`` = the ``vidsort`` command."""

import sys

from vidsort.cli import main

sys.exit(main())
