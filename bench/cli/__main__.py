"""``python -m bench.cli``: the ``bfrbench`` console script."""
import sys

from bench.cli.app import main

if __name__ == "__main__":  # never re-run when a worker process imports the main module
    sys.exit(main())
