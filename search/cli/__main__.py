"""``python -m search.cli``: the ``mtl-search`` command."""

import sys

from search.cli import main

sys.exit(main())
