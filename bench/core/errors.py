"""Errors shown to a user as one line (no traceback) by the CLI."""
from __future__ import annotations

from bench.core.imageio import ImageReadError
from bench.core.registry import UnknownNameError


class UserError(Exception):
    """A problem with the user's input or environment, with the fix in the message."""


#: every error the CLI shows as one line; bench.weights' MissingWeightsError is a UserError
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, ImageReadError, UnknownNameError)
