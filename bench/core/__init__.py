"""The ground floor: registry, errors, atomic writes, image I/O, plugin loading, locks, CSV, names, option parsing.

Nothing here imports from the rest of bfrbench (``methods``, ``reports``, ``bench.metrics`` ...).
"""
