"""A spec with variants on `--executor ray`: each variant is built on the replicas in turn, all through the
group's one step cache, into the same group folder a local variant build makes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import molspec
from molspec.cli import main
from molspec.pipeline import build, build_ray
from molspec.runtime.build import BuildOptions
from molspec.runtime.cache import CACHE_DIR, CACHE_FILE
from molspec.runtime.variants import VariantsResult
from tests.ray.conftest import CPUS_PER_REPLICA, rows
from tests.runtime.varianttools import NAMES, write_variant_spec

pytest.importorskip("ray")


def test_variants_on_ray_equal_the_local_group_and_share_its_cache(ray_runtime: Any, tmp_path: Path) -> None:
    doc = molspec.load(write_variant_spec(tmp_path / "spec", samples=12))
    local = build(doc, BuildOptions(out=tmp_path / "local"))
    res = build_ray(doc, BuildOptions(out=tmp_path / "ray"), replicas=2, cpus_per_replica=CPUS_PER_REPLICA)
    assert isinstance(res, VariantsResult) and isinstance(local, VariantsResult)
    for name in NAMES:
        assert rows(tmp_path / "ray" / name) == rows(tmp_path / "local" / name), name
    a, b = (json.loads((tmp_path / d / "variants.json").read_text()) for d in ("local", "ray"))
    assert [v["name"] for v in a["variants"]] == [v["name"] for v in b["variants"]] == list(NAMES)
    # the same work from the cache as locally: terse's bond steps are base's; only its 12 answers are new
    for name in NAMES:
        mine, theirs = res.variants[name].cache, local.variants[name].cache
        assert mine is not None and theirs is not None and (mine.hits, mine.misses) == (theirs.hits, theirs.misses)
    terse = res.variants["terse"].cache
    assert terse is not None and terse.misses == 12 and terse.hits > 0
    assert res.cache == local.cache
    meta = tmp_path / "ray" / ".molspec"
    assert not (meta / CACHE_FILE).exists() and sorted(p.name for p in (meta / CACHE_DIR).iterdir()) == [
        "replica-0-0.jsonl", "replica-1-0.jsonl"]  # the group's: each replica file serves every variant
    for name in NAMES:
        assert not (tmp_path / "ray" / name / ".molspec" / CACHE_DIR).exists()


def test_cli_builds_variants_on_ray(ray_runtime: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_variant_spec(tmp_path / "spec", samples=6)
    out = tmp_path / "out"
    argv = ["build", str(spec), "--out", str(out), "--executor", "ray", "--replicas", "1", "--variant", "base",
            "--variant", "terse", "-q"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"built 2 variants of {spec} into {out}" in err
    terse = next(line for line in err.splitlines() if line.startswith("  terse "))
    assert "6 generated" in terse  # its answers; every bond step came from base's replicas' cache
    assert f"stored in {out / '.molspec' / 'cache'}/)" in err
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [".molspec", "base", "terse"]
    assert (out / "variants.json").exists() and (out / "README.md").exists()
