"""The dataset card (README.md) of a variant build: one dataset, one config per variant, compared side by side.

    Group (variants.json + each variant's molspec.json and rows)
        ──card_structure per variant──▶ planned and labelled Structure ──compare with the first──▶ r, verdict
        ──group_card_data──▶ DatasetCardData (configs: <variant>/data/<split>-*.parquet) ─┐
        ──group_context──▶ template values ──────────────────────────────────────────────┴─ group_card.md.j2

As the single card: everything comes from the group directory, no clock, so a re-render gives the same bytes,
and the file is written atomically only when they change. The variants' own README.md cards stay in their
folders (a push leaves them out, so the repo has this one card).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from molspec.publish import markdown as md
from molspec.publish.card import (
    PAPER,
    PICTURE,
    README,
    TAGS,
    Shards,
    dataset_info,
    shards_of,
    size_category,
    write_if_changed,
)
from molspec.publish.card_structure import CardStructure, card_structure
from molspec.structure.compare import Structure, compare
from molspec.structure.group import Group, GroupVariant, open_group

TEMPLATE = "group_card.md.j2"


@dataclass(frozen=True)
class VariantFacts:
    """What the card shows about one variant."""

    v: GroupVariant
    shards: Shards
    cs: CardStructure

    @property
    def rows(self) -> int:
        return sum(n for files in self.shards.values() for _, n in files)

    def planned(self) -> Structure:
        t = self.v.manifest.planned
        return _structure(t.transitions.bonds, t.transitions.matrix, t.bond_shares)

    def labelled(self) -> Structure:
        shares = self.cs.text.shares("labelled")
        return _structure(list(self.cs.bonds), self.cs.text.transitions("labelled").tolist(), shares)


def write_group_card(group_dir: Path, repo: str | None = None) -> Path:
    """Write the group's README.md (only if its bytes change); `repo` is the Hub repo it tells readers to load.

    Raises:
        MolspecError: MOL701, the folder is not a readable variant build.
    """
    group = open_group(Path(group_dir))
    facts = variant_facts(group)
    write_if_changed(group.dir / PICTURE, group_png(facts, group.manifest.dataset or group.manifest.spec))
    path = group.dir / README
    write_if_changed(path, _render(group, facts, repo).encode("utf-8"))
    return path


def render_group_card(group_dir: Path, repo: str | None = None) -> str:
    """The README.md of a variant build (default repo: the spec's `output.hub`, else a placeholder).

    Raises:
        MolspecError: MOL701, the folder is not a readable variant build.
    """
    group = open_group(Path(group_dir))
    return _render(group, variant_facts(group), repo)


def variant_facts(group: Group) -> list[VariantFacts]:
    """Each variant's shards and structure (its rows labelled, as its own card labels them)."""
    return [VariantFacts(v, shards_of(v.dir, v.manifest), card_structure(v.dir, v.manifest)) for v in group.variants]


def _render(group: Group, facts: list[VariantFacts], repo: str | None) -> str:
    from huggingface_hub import DatasetCard

    template = resources.files("molspec.publish").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")
    values = group_context(group, facts, repo or group_repo(group))
    text = str(DatasetCard.from_template(group_card_data(group, facts), template_str=template, **values))
    return text if text.endswith("\n") else text + "\n"


def group_repo(group: Group) -> str:
    """The Hub repo of the group: the first variant's `output.hub` (variants cannot change it), else a placeholder."""
    first = group.variants[0].manifest
    name = first.output.hub or first.dataset.name or group.manifest.dataset or "dataset"
    return name if "/" in name else f"YOUR-NAMESPACE/{name}"


def group_png(facts: list[VariantFacts], name: str) -> bytes:
    """Per variant (columns): planned and labelled transitions over one bond order; then the shares."""
    from molspec.structure.plots import Bars, Heatmap, Panel, figure_png

    bonds = tuple(dict.fromkeys(b for f in facts for b in (*f.planned().bonds, *f.cs.bonds)))
    planned = [f.planned().aligned(bonds) for f in facts]
    labelled = [f.labelled().aligned(bonds) for f in facts]
    grid: list[list[Panel]] = [
        [Heatmap(f"{f.v.name}: planned", p, bonds, bonds) for f, (p, _) in zip(facts, planned, strict=True)],
        [Heatmap(f"{f.v.name}: labelled", p, bonds, bonds, "next label", "label")
         for f, (p, _) in zip(facts, labelled, strict=True)],
        [Bars("Bond shares, planned", bonds, {f.v.name: list(pi) for f, (_, pi) in zip(facts, planned, strict=True)}),
         Bars("Bond shares, labelled", bonds,
              {f.v.name: list(pi) for f, (_, pi) in zip(facts, labelled, strict=True)})],
    ]
    return figure_png(grid, f"{name}: the variants' structure, planned and labelled")


# --------------------------------------------------------------------------------------------------
# Hub metadata
# --------------------------------------------------------------------------------------------------


def config_files(name: str, path: str, splits: list[str]) -> list[dict[str, str]]:
    """`data_files` of one variant's config: every shard of each split under its folder."""
    return [{"split": split, "path": f"{path}/data/{split}-*.parquet"} for split in splits]


def group_card_data(group: Group, facts: list[VariantFacts]) -> Any:
    """Front matter: one config per variant (the first is the default), each with the row features."""
    from huggingface_hub import DatasetCardData

    first = group.variants[0].manifest
    configs: list[dict[str, Any]] = []
    for i, f in enumerate(facts):
        config = {"config_name": f.v.name, "data_files": config_files(f.v.name, f.v.entry.path, list(f.shards))}
        configs.append(config | ({"default": True} if i == 0 else {}))
    features = dataset_info()
    # A copy per config: shared objects would be dumped as YAML anchors, which not every reader follows.
    info = [{"config_name": f.v.name, **copy.deepcopy(features)} for f in facts] if features else None
    return DatasetCardData(
        license=first.dataset.license or None, language=list(first.dataset.language) or None,
        task_categories=["text-generation"], tags=[*TAGS, "ablation"],
        size_categories=[size_category(sum(f.rows for f in facts))],
        pretty_name=first.dataset.name or group.manifest.dataset or "molspec dataset",
        configs=configs, dataset_info=info)


# --------------------------------------------------------------------------------------------------
# Template values
# --------------------------------------------------------------------------------------------------


def group_context(group: Group, facts: list[VariantFacts], repo: str) -> dict[str, Any]:
    """Every value the template reads (tables already rendered)."""
    g, first = group.manifest, group.variants[0].manifest
    splits = list(facts[0].shards) or ["train"]
    return {
        "g": g, "first": first, "md": md, "repo": repo, "paper": PAPER, "base": group.variants[0].name,
        "names": [v.name for v in group.variants], "split": "train" if "train" in splits else splits[0],
        "rows": sum(f.rows for f in facts), "tag": f"spec-{g.group_sha256[:8]}",
        "variants_table": variants_table(facts), "pairing": pairing_sentence(group),
        "cache": cache_sentence(group), "shares_table": shares_table(facts),
        "engines": sorted({f"`{v.manifest.engine.engine}` / `{md.clean(v.manifest.engine.model)}`"
                           for v in group.variants}),
        "echo": any(v.manifest.engine.engine == "echo" for v in group.variants),
        "picture": PICTURE if (group.dir / PICTURE).is_file() else None,
    }


def variants_table(facts: list[VariantFacts]) -> str:
    """One row per variant: what it changes and its structure, fidelity, tokens, accuracy and rows."""
    ref_planned, ref_labelled = facts[0].planned(), facts[0].labelled()
    rows = []
    for i, f in enumerate(facts):
        m = f.v.manifest
        changes = ", ".join(f"`{c}`" for c in f.v.entry.changes) or ("the base spec" if i == 0 else "nothing")
        if f.v.entry.title:
            changes += f": {f.v.entry.title}"
        walks = "base" if f.v.entry.same_walks else "own"
        planned = "reference" if i == 0 else _r(compare(ref_planned, f.planned()).r)
        labelled = "reference" if i == 0 else _r(compare(ref_labelled, f.labelled()).r)
        accuracy = f"{md.pct(m.realised.accuracy)} of {m.realised.graded:,}" if m.realised.accuracy is not None \
            else "not graded"
        rows.append([f"`{f.v.name}`", changes, walks, planned, labelled, md.pct(f.cs.text.fidelity().overall),
                     md.num(sum(t.total for t in m.realised.tokens.values())), accuracy, md.num(f.rows)])
    return md.table(["config", "changes", "walks", "r planned", "r labelled", "fidelity", "step tokens",
                     "accuracy", "rows"], rows)


def shares_table(facts: list[VariantFacts]) -> str:
    """Bond shares per variant, planned / labelled."""
    bonds = list(dict.fromkeys(b for f in facts for b in f.cs.bonds))
    rows = []
    for b in bonds:
        cells = [f"{md.pct(f.v.manifest.planned.bond_shares.get(b, 0.0))} / "
                 f"{md.pct(f.cs.text.shares('labelled').get(b, 0.0))}" for f in facts]
        rows.append([b, *cells])
    return md.table(["bond", *[f"`{f.v.name}`" for f in facts]], rows)


def pairing_sentence(group: Group) -> str:
    """What is the same across the variants (variants.json says it, walks included), and how rows pair up."""
    return group.manifest.pairing.rstrip(".") + ". Rows pair up by `id` (also `sample_index` and `question`)."


def cache_sentence(group: Group) -> str:
    c = group.manifest.cache
    if c is None:
        return "The build did not record its step cache."
    asked = c.hits + c.misses
    share = f" ({md.pct(c.hits / asked)})" if asked else ""
    return (f"Steps that two variants ask with the same prompt and sampling settings were generated once: "
            f"{c.hits:,} of {asked:,} step requests{share} came from the step cache, {c.misses:,} were generated "
            f"({c.entries:,} completions stored).")


def _structure(bonds: list[str], matrix: list[list[float]], shares: dict[str, float]) -> Structure:
    import numpy as np

    p = np.asarray(matrix, dtype=np.float64).reshape(len(bonds), len(bonds))
    return Structure(tuple(bonds), p, np.asarray([shares.get(b, 0.0) for b in bonds], dtype=np.float64))


def _r(r: float) -> str:
    return "n/a" if math.isnan(r) else f"{r:.2f} ({verdict_of(r)})"


def verdict_of(r: float) -> str:
    from molspec.structure.compare import verdict

    return verdict(r)
