"""The dataset card (README.md) of a build: Hub metadata, then how the dataset was made, as plain markdown.

    Manifest + rows + spec/ ──card_structure──▶ CardStructure ──structure_png──▶ structure.png
                            ──card_data──▶ DatasetCardData ─┐
                            ──context──▶ template values ───┴─ templates/card.md.j2 ─▶ DatasetCard ─▶ README.md

Everything comes from the build directory, so a card can be re-rendered at any time and the same build
always gives the same bytes (no clock, no environment). Both files are written atomically and only when
their bytes change. Nothing secret goes in: engine options whose name looks like a credential, URL
user-info and token-shaped strings are masked (`molspec.engines.redact`).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from molspec.engines.redact import redact_options
from molspec.publish import markdown as md
from molspec.publish.card_structure import CardStructure, card_structure, structure_context, structure_png
from molspec.records import SCHEMA, Distribution, Manifest, SamplingInfo, column_docs
from molspec.runtime.store import write_atomic
from molspec.structure.rows import open_build

README, PICTURE = "README.md", "structure.png"
TEMPLATE = "card.md.j2"
PAPER = "https://arxiv.org/abs/2601.06002"
TAGS = ["reasoning", "long-cot", "mole-syn", "synthetic", "molspec"]
SIZE_BOUNDS = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
               (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
Shards = dict[str, list[tuple[str, int]]]


# --------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------


def write_card(build_dir: Path, repo: str | None = None) -> Path:
    """Draw `structure.png` and write `README.md` into `build_dir` (each only if its bytes change).

    Raises:
        MolspecError: MOL701, the folder is not a readable build directory.
    """
    build_dir = Path(build_dir)
    m = open_build(build_dir)
    cs = card_structure(build_dir, m)
    write_if_changed(build_dir / PICTURE, structure_png(cs, m.dataset.name or "dataset"))
    path = build_dir / README
    write_if_changed(path, _render(build_dir, m, cs, repo).encode("utf-8"))
    return path


def write_group_card(group_dir: Path, repo: str | None = None) -> Path:
    """Write the README.md of a variant build (one config per variant; see card_group.py).

    Raises:
        MolspecError: MOL701, the folder is not a readable variant build.
    """
    from molspec.publish.card_group import write_group_card as write

    return write(group_dir, repo)


def render_card(build_dir: Path, repo: str | None = None) -> str:
    """The README.md of a build directory; `repo` (NS/NAME) is the Hub repo the card tells readers to load.

    Raises:
        MolspecError: MOL701, the folder is not a readable build directory.
    """
    build_dir = Path(build_dir)
    m = open_build(build_dir)
    return _render(build_dir, m, card_structure(build_dir, m), repo)


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write `data` atomically unless the file already holds exactly it (a rerun leaves it untouched)."""
    if path.is_file() and path.read_bytes() == data:
        return False
    write_atomic(path, data)
    return True


def hub_repo(m: Manifest) -> str | None:
    """The spec's `output { hub = "NS/NAME" }`, if it has one."""
    return m.output.hub or None


def size_category(rows: int) -> str:
    """The Hub's `size_categories` bucket for a row count."""
    return next((label for bound, label in SIZE_BOUNDS if rows < bound), "n>1B")


def _render(build_dir: Path, m: Manifest, cs: CardStructure, repo: str | None) -> str:
    from huggingface_hub import DatasetCard

    shards = shards_of(build_dir, m)
    template = resources.files("molspec.publish").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")
    values = context(build_dir, m, cs, shards, repo or hub_repo(m) or _placeholder_repo(m))
    text = str(DatasetCard.from_template(card_data(m, shards), template_str=template, **values))
    return text if text.endswith("\n") else text + "\n"  # jinja drops the template's final newline


# --------------------------------------------------------------------------------------------------
# Hub metadata
# --------------------------------------------------------------------------------------------------


def card_data(m: Manifest, shards: Shards) -> Any:
    """The front matter: what the Hub indexes, plus the `configs` / `dataset_info` that `datasets` reads."""
    from huggingface_hub import DatasetCardData

    data_files = [{"split": split, "path": _one_or_list([p for p, _ in files])} for split, files in shards.items()]
    return DatasetCardData(
        license=m.dataset.license or None, language=list(m.dataset.language) or None,
        task_categories=["text-generation"], tags=list(TAGS), size_categories=[size_category(_total(shards))],
        pretty_name=m.dataset.name or "molspec dataset",
        configs=[{"config_name": "default", "data_files": data_files}], dataset_info=dataset_info())


def dataset_info() -> dict[str, Any]:
    """`dataset_info.features` exactly as `datasets` writes it, from the row schema.

    Split sizes are left out: `datasets` wants their arrow size too, which would mean reading every shard.
    """
    from datasets import DatasetInfo
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    from molspec.records import features

    card = DatasetCardData()
    DatasetInfosDict({"default": DatasetInfo(features=features())}).to_dataset_card_data(card)
    info: dict[str, Any] = card.to_dict().get("dataset_info") or {}  # type: ignore[no-untyped-call]
    return {"features": info["features"]} if "features" in info else {}


def _one_or_list(paths: list[str]) -> str | list[str]:
    return paths[0] if len(paths) == 1 else paths


def shards_of(build_dir: Path, m: Manifest) -> Shards:
    """split -> [(path in the build dir, rows)], in the manifest's split order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def rows(rel: str) -> int:
        try:
            return int(pq.read_metadata(build_dir / rel).num_rows)
        except (OSError, pa.ArrowException):
            return 0

    return {split: [(p, rows(p)) for p in paths] for split, paths in m.files.items()}


def _total(shards: Shards) -> int:
    return sum(n for files in shards.values() for _, n in files)


# --------------------------------------------------------------------------------------------------
# Template values
# --------------------------------------------------------------------------------------------------


def context(build_dir: Path, m: Manifest, cs: CardStructure, shards: Shards, repo: str) -> dict[str, Any]:
    """Every value the template reads (tables already rendered; `md` formats the rest)."""
    split = "train" if "train" in shards else next(iter(shards), "train")
    return {
        "m": m, "md": md, "repo": repo, "split": split, "paper": PAPER, "rows": _total(shards),
        "per_split": ", ".join(f"{s}: {sum(n for _, n in files):,}" for s, files in shards.items()),
        "picture": PICTURE if (build_dir / PICTURE).is_file() else None,
        "columns_table": _columns_table(), **structure_context(cs, m), **_graphs(m), **_lengths(m),
        **_quality(m), **_model(m), "command": md.clean(m.command or f"molspec build {m.spec.path}"),
        "spec_files": _spec_files(build_dir, m),
    }


def _columns_table() -> str:
    docs = column_docs()
    return md.table(["column", "type", "meaning"], [[f"`{f.name}`", md.arrow_type(f.type), docs[f.name]]
                                                    for f in SCHEMA])


def _graphs(m: Manifest) -> dict[str, Any]:
    out = []
    for name, g in m.graphs.items():
        rows = [["start", *[f"{p:.3f}" for p in g.start]]]
        rows += [[b, *[f"{p:.3f}" for p in row]] for b, row in zip(g.bonds, g.transitions, strict=False)]
        end = md.table(["end after", *g.bonds], [["P(stop)", *[f"{p:.3f}" for p in g.end]]]) \
            if any(p > 0 for p in g.end) else None
        out.append({"name": name, "steps": g.steps, "table": md.table(["from \\ to", *g.bonds], rows), "end": end})
    return {"graphs": out}


def _lengths(m: Manifest) -> dict[str, Any]:
    keys = [k for k in Distribution.model_fields if k in m.planned.steps]
    steps = md.table(["", *keys], [["planned", *[md.num(m.planned.steps[k]) for k in keys]],
                                   ["realised", *[md.num(getattr(m.realised.steps, k)) for k in keys]]])
    cols = ["mean", "p50", "p95", "max", "total"]
    rows = []
    for bond, t in m.realised.tokens.items():
        limit = (m.sampling.per_bond[bond].max_tokens if bond in m.sampling.per_bond else None) \
            or m.sampling.max_tokens
        rows.append([bond, *[md.num(getattr(t, k)) for k in cols], md.num(t.cut_by_max_tokens), md.num(limit)])
    tokens = md.table(["bond", *cols, "cut by max_tokens", "max_tokens"], rows) if rows else None
    return {"steps_table": steps, "tokens_table": tokens,
            "step_tokens": sum(t.total for t in m.realised.tokens.values())}


def _quality(m: Manifest) -> dict[str, Any]:
    splits = [[split, ", ".join(s.graphs), md.num(s.samples), md.num(s.done), md.num(s.failed)]
              for split, s in m.splits.items()]
    return {"accuracy": m.realised.accuracy,
            "splits_table": md.table(["split", "graphs", "planned", "done", "failed"], splits) if splits else None,
            "failures": [(f.sample_index, md.clean(f.error)[:200]) for f in m.failures[:5]]}


def _model(m: Manifest) -> dict[str, Any]:
    base = m.sampling.model_dump(exclude={"per_bond"})
    rows = [["engine", f"`{m.engine.engine}`"], ["model", f"`{md.clean(m.engine.model)}`"],
            ["seed", md.num(m.dataset.seed)]]
    rows += [[k, md.num(v)] for k, v in base.items()]
    rows += [[f"engine option `{k}`", f"`{md.clean(json.dumps(v))}`"]
             for k, v in sorted(redact_options(m.engine.options).items())]
    per_bond = {b: v.model_dump(exclude_none=True) for b, v in m.sampling.per_bond.items()}
    per_bond = {b: v for b, v in per_bond.items() if v}
    keys = [k for k in SamplingInfo.model_fields if any(k in v for v in per_bond.values())]
    overrides = md.table(["bond", *keys], [[b, *[md.num(v.get(k)) for k in keys]] for b, v in per_bond.items()]) \
        if per_bond else None
    return {"model_table": md.table(["setting", "value"], rows), "overrides_table": overrides,
            "provenance_table": _provenance(m)}


def _provenance(m: Manifest) -> str:
    commit = m.spec.git_commit
    tree = "uncommitted changes at build time" if m.spec.git_dirty else "clean"
    rows = [["spec", f"`{m.spec.path}`"], ["spec sha256", f"`{m.spec.sha256}`"],
            ["git commit", f"`{commit}`" if commit else "none (the spec was not in a git repository)"],
            ["git working tree", tree if commit else "n/a"],
            ["seed questions sha256", f"`{m.data.sha256}` ("
             + ", ".join(f"{name}: {n:,} questions" for name, n in sorted(m.data.sources.items())) + ")"],
            ["molspec version", f"`{m.molspec_version}`"], ["created", m.created]]
    return md.table(["", ""], rows)


def _spec_files(build_dir: Path, m: Manifest) -> list[dict[str, str]]:
    """The copied spec first, then its imports, each with its text and a fence longer than its backticks."""
    # The build copies the spec to spec/<its file name> and its imports relative to it.
    copied = f"spec/{Path(m.spec.path).name}"
    main = copied if copied in m.spec.files else m.spec.main
    out = []
    for rel in ([main] if main in m.spec.files else []) + [f for f in m.spec.files if f != main]:
        try:
            text = (build_dir / rel).read_text(encoding="utf-8")
        except OSError:
            continue
        out.append({"name": rel.removeprefix("spec/"), "role": "the spec" if rel == main else "imported",
                    "fence": md.fence(text), "text": text.rstrip("\n")})
    return out


def _placeholder_repo(m: Manifest) -> str:
    name = m.dataset.name or "dataset"
    return name if "/" in name else f"YOUR-NAMESPACE/{name}"
