"""The one error hierarchy, at the leaf (imports nothing from bfrbench): every error carries its fix.

``BfrBenchError(message, fix=...)`` is the base; the CLI shows any of them as one line with the fix
(:func:`format_error`), never a traceback. Subclasses say what went wrong:

- :class:`UserError`: bad usage or input (a flag, a spec, a config file);
- :class:`UnknownNameError`: a name no registry knows (with "did you mean");
- :class:`ImageReadError`: an image file that cannot be used;
- :class:`MetricUnavailable`: a metric that cannot run here (missing weights or package);
- ``bench.weights.MissingWeightsError`` / ``WeightsFileError``: weights not in the cache, or unusable.
"""
from __future__ import annotations

import os


class BfrBenchError(Exception):
    """A problem the user can fix: ``str(exc)`` is the message, ``exc.fix`` what to do about it."""

    def __init__(self, message: str = "", fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:  # KeyError / OSError would quote or decorate the message
        return self.message


class UserError(BfrBenchError):
    """A problem with the user's input or environment (bad flag, spec or file)."""


class UnknownNameError(BfrBenchError, KeyError):
    """A name no registry entry or prefix resolver knows; the message suggests close names."""


class ImageReadError(BfrBenchError, ValueError):
    """An image file that cannot be used; the message names the file, the reason and the fix."""

    def __init__(self, path: str | os.PathLike[str], reason: str, fix: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        fix = fix or "re-download or re-export the file, or remove it from the folder"
        super().__init__(f"{self.path}: {reason} ({fix})", fix)


class MetricUnavailable(BfrBenchError, RuntimeError):
    """A metric that cannot run here (missing weights or package); the run skips it and says why."""

    @classmethod
    def because(cls, metric: str, exc: BaseException, extra: str = "") -> MetricUnavailable:
        """``metric`` cannot run because of ``exc`` (e.g. missing weights): its message, and its fix."""
        return cls(f"{metric}: {exc}{'; ' + extra if extra else ''}", getattr(exc, "fix", ""))


#: errors that mean bad usage or input: nothing useful can run (profile re-raises these)
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, ImageReadError, UnknownNameError)


def format_error(exc: BaseException) -> str:
    """One line for the user: the message, then the fix unless the message already says it."""
    text = str(exc)
    fix = getattr(exc, "fix", "")
    if fix and fix not in text:
        text = f"{text} (fix: {fix})"
    return text
