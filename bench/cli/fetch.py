"""``bfrbench fetch NAME|all [--force [--repin]] [--offline]``, ``bfrbench fetch --list``: checkpoints and test sets."""
from __future__ import annotations

import argparse
import sys

from bench.cli._argtypes import int_range

COMMAND = "fetch"
HELP = "download and verify checkpoints and standard test sets (or list them)"
DESCRIPTION = (
    "Download checkpoints and data assets into the bfrbench cache ($BFRBENCH_HOME/weights), "
    "resuming interrupted downloads and checking size and SHA-256. Where no hash is published, "
    "the first download's hash is pinned in pins.json and enforced afterwards. A standard test set's name "
    "(celeba-test, lfw-test, wider-test ...) fetches it from the Hugging Face hub (HF_ENDPOINT honoured), verified "
    "against the SHA-256 the hub states, into the data root ($BFRBENCH_DATA or ./datasets); a set no hashed source "
    "serves prints where to get it and where to put it."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="weights or test sets to fetch, or 'all' (weights)")
    parser.add_argument("--list", action="store_true", help="list the known weights and test sets and whether they are here")
    parser.add_argument("--force", action="store_true", help="download again even when a verified copy exists")
    parser.add_argument("--repin", action="store_true",
                        help="with --force: replace the pinned SHA-256 of a file that has no published one "
                             "(after checking the new file yourself)")
    parser.add_argument("--offline", action="store_true", default=None,
                        help="never touch the network (also BFRBENCH_OFFLINE=1): only check the cache")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    parser.add_argument("--retries", type=int_range("--retries", 1, 100), default=5, help="download attempts per URL (default 5)")


def _known() -> dict:
    from bench import weights
    from bench.core import plugins

    plugins.load_all()  # modules register their own assets on import
    return weights.WEIGHTS


def _fmt_size(n: int | None) -> str:
    if not n:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "?"  # pragma: no cover


def list_weights(out=None) -> None:
    """Print one line per known asset: name, cached?, size, licence, source."""
    from bench import weights

    out = out or sys.stdout

    _known()
    rows = weights.spec_table()
    width = max([len(r["name"]) for r in rows] + [4])
    print(f"{'name':<{width}}  cached  {'size':>9}  {'license':<22} source", file=out)
    for r in rows:
        mark = "yes" if r["cached"] else "-"
        print(f"{r['name']:<{width}}  {mark:<6}  {_fmt_size(r['size']):>9}  {r['license'][:22]:<22} {r['source']}", file=out)
    if weights.ALIASES:
        aliases = ", ".join(f"{a} -> {n}" for a, n in sorted(weights.ALIASES.items()))
        print(f"aliases: {aliases}", file=out)
    print(f"cache: {weights.cache_dir()}", file=out)
    from bench.data.datasets import data_root
    from bench.data.fetch import listing

    rows = listing()
    width = max(len(r[0]) for r in rows)
    print(f"\n{'test set':<{width}}  fetched  source", file=out)
    for name, fetched, source in rows:
        print(f"{name:<{width}}  {fetched:<7}  {source}", file=out)
    print(f"data root: {data_root()}", file=out)


def _fetch_sets(names: list[str], args: argparse.Namespace, alone: bool) -> list[str]:
    """Fetch standard test sets (the hub's, verified) or print how to get the others; the names that failed."""
    from bench.data.datasets import SPECS, data_root
    from bench.data.fetch import DatasetFetchError, fetch_set, manual_instructions

    failed = []
    for name in names:
        if not SPECS[name].hub:
            print(manual_instructions(SPECS[name], data_root()))
            continue
        try:
            path = fetch_set(name, force=args.force, offline=args.offline, quiet=args.quiet)
        except DatasetFetchError as exc:
            if alone:
                raise
            print(f"bfrbench: {name}: FAILED: {exc}", file=sys.stderr)
            failed.append(name)
            continue
        print(f"{name}: {path}")
    return failed


def main(args: argparse.Namespace) -> int:
    from bench import weights
    from bench.core.errors import UserError

    if args.list:
        list_weights()
        return 0
    if args.repin and not args.force:
        raise UserError("--repin replaces a pinned hash and needs --force too: `bfrbench fetch NAME --force --repin`")
    if not args.names:
        raise UserError("name the weights to fetch (`bfrbench fetch NAME` or `bfrbench fetch all`); "
                        "`bfrbench fetch --list` shows them")
    from bench.data.datasets import SPECS

    sets = [n for n in args.names if n in SPECS]
    args.names = [n for n in args.names if n not in SPECS]
    failed: list[str] = _fetch_sets(sets, args, alone=not args.names and len(sets) == 1)
    if not args.names:
        return 1 if failed else 0
    known = _known()
    if args.names == ["all"]:
        names = sorted(known)
    else:
        names = []
        for name in args.names:
            try:
                names.append(weights.canonical_name(name))
            except KeyError as exc:
                raise UserError(f"{exc.args[0]}; `bfrbench fetch --list` shows the known ones") from None
    for name in names:
        spec = known[name]
        manual = spec.source == "url" and not spec.url and not spec.extra.get("mirrors")
        if manual and len(names) > 1 and not weights.expected_path(name).is_file():
            where = spec.extra.get("manual_url", "its project page")
            print(f"{name}: no direct download; get it from {where} and place it at {weights.expected_path(name)}")
            continue
        try:
            path = weights.fetch(name, force=args.force, repin=args.repin, offline=args.offline, quiet=args.quiet,
                                 retries=args.retries)
        except weights.MissingWeightsError as exc:
            if len(names) == 1:
                raise
            print(f"bfrbench: {name}: FAILED: {exc}", file=sys.stderr)
            failed.append(name)
            continue
        print(f"{name}: {path}")
    if failed:
        print(f"bfrbench: {len(failed)} of {len(names) + len(sets)} failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
