"""Progress bars on a terminal only: a log redirected to a file gets no redraw spam."""
from __future__ import annotations

import sys
from typing import Any


class NullProgress:
    """What :func:`progress` gives when no bar is drawn: the same calls, doing nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def on_terminal(stream: Any = None) -> bool:
    """Whether ``stream`` (default stderr) is an interactive terminal."""
    stream = stream if stream is not None else sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def progress(total: int | None, desc: str, quiet: bool = False, unit: str = "img", **kwargs: Any) -> Any:
    """A tqdm bar on stderr when it is a terminal and not ``quiet``; else a :class:`NullProgress`."""
    if quiet or not on_terminal():
        return NullProgress()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True, file=sys.stderr, **kwargs)
