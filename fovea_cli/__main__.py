"""``python -m fovea_cli`` is ``fovea``."""

import sys

from fovea_cli.main import main

sys.exit(main())
