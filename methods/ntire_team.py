"""``ntire:PATH``: an NTIRE 2025/2026 real-world face restoration team folder run as a method.

The challenge's contract: a package ``models/<team>/`` whose function is called as
``func(model_dir=..., input_path=..., output_path=..., device=...)``, with its weights under
``model_zoo/<team>/``. PATH is the folder holding ``models/`` (one team in it) or ``models/<team>``
itself; ``ntire:PATH::MODULE:FUNC`` names another function than the package's ``main``. For each
dataset the team's function restores the LQ images into an outputs folder inside the run folder,
which is then scored like ``outputs:DIR``. It runs the team's own Python code in this process, so
a run needs ``--allow-code`` (``RunConfig.allow_code``); the team folder's content hash is recorded.
Under torchrun the runner refuses it (``distributed.refuse_in_process_user_code``): one folder, many ranks.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from bench.core.atomic import atomic_write_json
from bench.core.errors import UserError
from bench.core.filehash import file_identity, files_digest
from bench.core.registry import METHODS, Entry
from methods.base import MethodInfo
from methods.outputs_folder import OutputsFolder, printable

PREFIX = "ntire"
#: the challenge's default entry point (``from models.team00_CodeFormer import main``)
DEFAULT_FUNCTION = "main"
#: the file that marks a finished team run in its dataset folder (its absence: rerun)
DONE = "done.json"


def parse_ntire_spec(spec: str) -> tuple[str, str, str, str]:
    """``ntire:PATH[::MODULE:FUNC]`` -> (label, PATH, module within the package or "", function name)."""
    rest = spec.strip().split(":", 1)[1] if ":" in spec else ""
    folder, sep, entry = rest.partition("::")
    folder = folder.strip()
    if not folder:
        raise UserError(f"method {spec!r}: name the team folder, e.g. ntire:NTIRE2025_RWFR (holding models/<team>/) "
                        "or ntire:NTIRE2025_RWFR/models/team00_CodeFormer")
    module, func = "", DEFAULT_FUNCTION
    if sep:
        mod, colon, fn = entry.strip().rpartition(":")
        module, func = (mod.strip(), fn.strip()) if colon else ("", entry.strip())
        if not func.isidentifier() or (module and not all(p.isidentifier() for p in module.split("."))):
            raise UserError(f"method {printable(spec)}: {printable(entry)} is not MODULE:FUNCTION",
                            "name the function as ntire:PATH::inference_codeformer:main (module inside the team package)")
    return printable(Path(folder.rstrip("/\\")).name or folder), folder, module, func


def locate_team(folder: str | os.PathLike[str]) -> tuple[Path, str, Path | None]:
    """(challenge root, team package name, its model_zoo folder or None) for a team folder."""
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise UserError(f"ntire team folder {folder} does not exist or is not a folder",
                        "give the folder holding models/<team>/ (the NTIRE challenge layout)")
    if (path / "__init__.py").is_file() and path.parent.name == "models":
        root, team = path.parent.parent, path.name
    else:
        teams = sorted(p.parent.name for p in (path / "models").glob("*/__init__.py"))
        if len(teams) != 1:
            found = f"found {', '.join(teams)}" if teams else "found none"
            raise UserError(f"ntire team folder {path}: expected one team package models/<team>/__init__.py, {found}",
                            f"name the team: ntire:{path}/models/<team>")
        root, team = path, teams[0]
    zoo = root / "model_zoo" / team
    return root, team, zoo if zoo.is_dir() else None


def team_content_hash(root: Path, team: str) -> str:
    """SHA-256 over (relative path, SHA-256) of every file of the team's code and weights folders."""
    files = {}
    for part in ("models", "model_zoo"):
        base = root / part / team
        if base.is_dir():
            for p in sorted(base.rglob("*")):
                if p.is_file() and "__pycache__" not in p.parts:
                    files[p.relative_to(root).as_posix()] = file_identity(p)
    return files_digest(files)


@contextlib.contextmanager
def _team_imports(root: Path) -> Iterator[None]:
    """``models.<team>`` importable from ``root`` while the team runs; the interpreter's modules and path restored after."""
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "models" or k.startswith("models.")}
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(root))
        for k in [k for k in sys.modules if k == "models" or k.startswith("models.")]:
            del sys.modules[k]
        sys.modules.update(saved)


class NtireTeam(OutputsFolder):
    """Runs an NTIRE team's function on each dataset's LQ images, then reads its outputs by name."""

    name = PREFIX

    def __init__(self, folder: str, module: str = "", function: str = DEFAULT_FUNCTION, strict: bool = False,
                 allow_code: bool = False, size: int = 512) -> None:
        if not allow_code:
            raise UserError(f"ntire:{folder} runs the team's own Python code; refused without --allow-code",
                            "add --allow-code (RunConfig.allow_code) if you trust the code in that folder")
        root, team, model_dir = locate_team(folder)
        super().__init__(str(root / "models" / team), strict=strict, size=size)
        self.root, self.team, self.model_dir = root, team, model_dir
        self.module, self.function = module, function
        self.team_hash = team_content_hash(root, team)
        self.workdir: Path | None = None
        self.team_error = ""
        self.params.update(module=module, function=function, team_hash=self.team_hash)
        self.register_buffer("_device_anchor", torch.zeros(0), persistent=False)  # .to(device) tells the team's device

    def entry_point(self) -> Callable[..., Any]:
        """The team's function, imported from ``models.<team>[.module]`` (call inside :func:`_team_imports`)."""
        where = f"models.{self.team}" + (f".{self.module}" if self.module else "")
        mod = importlib.import_module(where)
        func = getattr(mod, self.function, None)
        if not callable(func):
            raise UserError(f"ntire team {self.team}: {where} has no function {self.function}",
                            "name it: ntire:PATH::MODULE:FUNCTION")
        return func

    def bind_dataset(self, dataset: str, pairs: list[Any], aliases: tuple[str, ...] = (),
                     known: list[str] | None = None, workdir: Path | None = None) -> dict[str, Any]:
        """Run the team on ``pairs``' LQ images into ``workdir`` (once: a finished run there is reused), then match."""
        if workdir is None:
            raise UserError(f"ntire:{self.team} writes its outputs into a run folder; run it with bfrbench run")
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        inputs = sorted(p.lq_path.name for p in pairs)
        key = {"team_hash": self.team_hash, "module": self.module, "function": self.function, "inputs": inputs,
               "device": str(self.device)}
        out = workdir / "output"
        self.team_error = ""
        if _read_json(workdir / DONE) != key or not out.is_dir():
            self.team_error = self._run_team(pairs, workdir, key)
        self.folder = out if out.is_dir() else workdir
        report = super().bind_dataset(dataset, pairs, aliases, known)
        report.update(team=self.team, team_root=str(self.root), team_hash=self.team_hash, team_error=self.team_error)
        if self.team_error:
            report["problems"].insert(0, self.team_error)
        return report

    def _run_team(self, pairs: list[Any], workdir: Path, key: dict[str, Any]) -> str:
        """Call the team's function into ``output.partial``, renamed to ``output`` when it returns; "" or why it failed."""
        staged, partial, out = workdir / "input", workdir / "output.partial", workdir / "output"
        for d in (staged, partial, out):
            shutil.rmtree(d, ignore_errors=True)
        (workdir / DONE).unlink(missing_ok=True)
        staged.mkdir()
        partial.mkdir()
        for p in pairs:  # the images of this run only (--limit), under their own names
            try:
                (staged / p.lq_path.name).symlink_to(Path(p.lq_path).resolve())
            except OSError:
                shutil.copy2(p.lq_path, staged / p.lq_path.name)
        try:
            with _team_imports(self.root):
                func = self.entry_point()
                func(model_dir=str(self.model_dir) if self.model_dir else None, input_path=str(staged),
                     output_path=str(partial), device=self.device)
        except UserError:
            raise
        except (Exception, SystemExit) as exc:  # the team's code failed: its images fail, the run goes on
            return f"team {self.team}'s {self.function}() failed: {type(exc).__name__}: {exc}"
        partial.rename(out)
        atomic_write_json(workdir / DONE, key)
        return ""

    def _read(self, name: str):
        if self.team_error:
            return None, self.team_error, []
        return super()._read(name)

    def info(self) -> MethodInfo:
        info = super().info()
        info.params.update(team=self.team, team_root=str(self.root), module=self.module, function=self.function,
                           team_hash=self.team_hash)
        return info


def _read_json(path: Path) -> Any:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _resolver(rest: str) -> Entry:
    """``ntire:PATH[::MODULE:FUNC]``: the entry runs the team in PATH (only with ``allow_code``)."""
    label, folder, module, func = parse_ntire_spec(f"{PREFIX}:{rest}")

    def factory(strict: bool = False, allow_code: bool = False, weights: Any = None) -> NtireTeam:
        if weights is not None:
            raise UserError(f"ntire:{folder} takes no weights (the team loads its own from model_zoo/<team>)")
        return NtireTeam(folder, module=module, function=func, strict=strict, allow_code=allow_code)

    return Entry(name=f"{PREFIX}:{rest.strip()}", factory=factory,
                 meta={"description": "an NTIRE challenge team folder run on the dataset (needs --allow-code)",
                       "takes_quality": False, "label": label, "runs_user_code": True})


METHODS.add_resolver(PREFIX, _resolver)

__all__ = ["NtireTeam", "parse_ntire_spec", "locate_team", "team_content_hash", "PREFIX"]
