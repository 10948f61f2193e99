"""The group card of a variant build: configs per variant, the comparison table, pairing, and local loading."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import datasets
import pyarrow.parquet as pq
import pytest
from huggingface_hub import DatasetCard, metadata_load

from molspec.publish.card import write_group_card
from molspec.publish.card_group import render_group_card
from molspec.records import features, read_manifest
from molspec.variant_records import read_variants_manifest
from tests.publish.variant_builds import NAMES, copy_group, make_group


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_group(tmp_path_factory.mktemp("variants") / "ablations")  # the build writes the group card


def _table(card: str, header: str) -> dict[str, dict[str, str]]:
    """The markdown table whose header row starts with `header`, as {first cell: {column: cell}}."""
    lines = card.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header}"))
    cols = [c.strip() for c in lines[start].strip("|").split("|")]
    out = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[cells[0].strip("`")] = dict(zip(cols, cells, strict=True))
    return out


def _rows(variant_dir: Path) -> list[dict[str, Any]]:
    return [r for p in sorted((variant_dir / "data").glob("train-*.parquet")) for r in pq.read_table(p).to_pylist()]


def test_front_matter_has_a_config_per_variant(built: Path) -> None:
    meta = metadata_load(built / "README.md")
    assert meta is not None
    assert [c["config_name"] for c in meta["configs"]] == list(NAMES)
    assert meta["configs"][0]["default"] is True and not any(c.get("default") for c in meta["configs"][1:])
    for c in meta["configs"]:
        assert c["data_files"] == [{"split": "train", "path": f"{c['config_name']}/data/train-*.parquet"}]
    expected = DatasetCard.load(built / "r1" / "README.md").data.to_dict()["dataset_info"]["features"]
    assert [i["config_name"] for i in meta["dataset_info"]] == list(NAMES)
    assert all(i["features"] == expected for i in meta["dataset_info"])
    assert {f["name"] for f in expected} == set(features())
    assert "&id" not in (built / "README.md").read_text()  # no YAML anchors
    assert meta["license"] == "mit" and "ablation" in meta["tags"]


def test_each_config_loads_locally(built: Path, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")  # a fresh datasets cache: nothing read from an earlier run
    for name in NAMES:
        loaded = datasets.load_dataset(str(built), name, cache_dir=cache)
        assert set(loaded) == {"train"}
        assert list(loaded["train"]) == _rows(built / name)
    # Without a name: the first variant (the default config).
    assert list(datasets.load_dataset(str(built), split="train", cache_dir=cache)) == _rows(built / "r1")


def test_the_table_compares_the_variants(built: Path) -> None:
    card = (built / "README.md").read_text()
    table = _table(card, "config")
    assert list(table) == list(NAMES)
    # The changes, then the variant's title from the spec (`variant qwq "QwQ-32B's transition graph" { ... }`).
    assert table["r1"]["changes"] == "the base spec: DeepSeek-R1's transition graph"
    assert table["r1"]["r planned"] == "reference"
    assert table["no_reflect"]["changes"] == "`drop reflect`: R1's graph without self-reflection"
    assert table["qwq"]["changes"] == "`graph teacher`: QwQ-32B's transition graph"
    assert [table[n]["walks"] for n in NAMES] == ["base", "own", "own", "base"]
    # terse_answer draws r1's walks: its planned structure is r1's exactly.
    assert table["terse_answer"]["r planned"] == "1.00 (compatible)"
    r, verdict = re.fullmatch(r"(-?\d\.\d\d) \((\w+)\)", table["qwq"]["r planned"]).groups()  # type: ignore[union-attr]
    assert float(r) < 0.8 and verdict == "incompatible"
    for name in NAMES:
        m = read_manifest(built / name)
        assert table[name]["rows"] == str(m.summary.kept) == "8"
        assert table[name]["step tokens"] == f"{sum(t.total for t in m.realised.tokens.values()):,}"
        assert table[name]["accuracy"] == f"{100 * (m.realised.accuracy or 0):.1f}% of {m.realised.graded}"
        assert table[name]["fidelity"].endswith("%")
    # Step tokens: terse_answer re-uses r1's bond steps, so it generated the same step tokens.
    assert table["terse_answer"]["step tokens"] == table["r1"]["step tokens"]
    shares = _table(card, "bond")
    assert shares["reflect"]["`no_reflect`"].startswith("0.0% / ")
    assert not shares["reflect"]["`r1`"].startswith("0.0% / ")


def test_pairing_cache_and_how_to_load(built: Path) -> None:
    card = (built / "README.md").read_text()
    g = read_variants_manifest(built)
    assert g is not None and g.cache is not None
    assert g.pairing in card and "`r1` and `terse_answer` also walk the same bonds" in g.pairing
    asked = g.cache.hits + g.cache.misses
    assert g.cache.hits > 0
    assert (f"{g.cache.hits:,} of {asked:,} step requests ({100 * g.cache.hits / asked:.1f}%) came from the step "
            f"cache, {g.cache.misses:,} were generated") in card
    for name in NAMES:
        assert f'{name} = load_dataset("molspec/ablations", "{name}", split="train")' in card
    assert f'revision="spec-{g.group_sha256[:8]}"' in card


def test_the_picture(built: Path) -> None:
    png = (built / "structure.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "](structure.png)" in (built / "README.md").read_text()


def test_the_card_is_rewritten_only_when_it_changes(built: Path, tmp_path: Path) -> None:
    group = copy_group(built, tmp_path / "g")
    before = (group / "README.md").stat().st_mtime_ns
    write_group_card(group)
    assert (group / "README.md").stat().st_mtime_ns == before  # same bytes: not written again
    assert render_group_card(group, "acme/other") != (group / "README.md").read_text()
    write_group_card(group, "acme/other")
    assert 'load_dataset("acme/other", "qwq", split="train")' in (group / "README.md").read_text()


def test_not_a_variant_build(built: Path) -> None:
    from molspec.diagnostics import MolspecError

    with pytest.raises(MolspecError, match="not a variant build"):
        write_group_card(built / "r1")
