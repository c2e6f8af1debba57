"""Sub-commands of the ``bfrbench`` CLI, discovered by :mod:`bench.cli`."""
