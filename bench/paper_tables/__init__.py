"""Published numbers to check a run against (``bfrbench compare RUN --against NAME``): package data."""
