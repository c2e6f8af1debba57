"""Declarative suites (YAML): datasets, methods, metrics with options, a score formula and an identity gate.

Built-in suites ship as package data in ``builtin/``: ``paper-celeba``, ``paper-realworld``,
``ntire2025-rwfr`` and ``ntire2026-rwfr``. ``bfrbench run --suite NAME|FILE.yaml`` runs one.
"""
from __future__ import annotations

from bench.suites.spec import Suite, builtin_suites, load_suite, parse_suite

__all__ = ["Suite", "builtin_suites", "load_suite", "parse_suite"]
