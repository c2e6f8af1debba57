"""Built-in suite files (package data)."""
