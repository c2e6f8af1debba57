"""``python -m bench.cli``: the ``bfrbench`` console script."""
import sys

from bench.cli.app import main

sys.exit(main())
