"""The dataset card (README.md) of a build: Hub metadata, then how the dataset was made, as plain markdown.

    molspec.json + data/*.parquet + spec/ ──render_card──▶ README.md (YAML front matter + body)
                                          ──structure_png──▶ structure.png

Everything comes from the build directory, so a card can be re-rendered at any time and the same build
always gives the same bytes (no clock, no environment). Nothing secret goes in: engine options whose
name looks like a credential, URL user-info and token-shaped strings are masked.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from molspec.publish.plots import bond_order, structure_png

README, PICTURE, MANIFEST = "README.md", "structure.png", "molspec.json"
PAPER = "https://arxiv.org/abs/2601.06002"
TAGS = ["reasoning", "long-cot", "mole-syn", "synthetic", "molspec"]
SIZE_BOUNDS = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
               (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
MASK = "***"
SECRET_KEY = re.compile(r"(?i)(key(?![a-z])|token(?![a-z])|secret|passw|auth(?!or)|credential|cookie|header)")
SECRET_VALUE = re.compile(r"\b(hf_[A-Za-z0-9]{8,}|sk-[A-Za-z0-9_-]{8,}|(?i:bearer)\s+\S+)")
URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@")
COLUMNS = {
    "id": "`<split>-<sample index>`; stable across rebuilds of the same spec",
    "split": "split name",
    "sample_index": "index of the sample in the plan",
    "question_id": "id of the seed question in its source",
    "question": "the seed question",
    "gold": "the reference answer (null when the source has none)",
    "graph": "the graph (isomer) the walk was drawn from",
    "bonds": "the planned walk: bond names in order",
    "steps": "one generated step per bond: {bond, text, n_tokens, finish_reason}",
    "thinking": "the steps joined with blank lines",
    "answer": "the final answer step",
    "correct": "the verifier's verdict against gold (null: not graded)",
    "messages": "chat for SFT, {role, content}: the user question; the assistant `<think>…</think>` + answer",
    "error": "why the sample failed (failed samples are not in the data)",
    "metadata": "JSON: model, engine, sampling, spec sha256 and git commit, molspec version, seed",
}


# --------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------


def write_card(build_dir: Path, repo: str | None = None) -> Path:
    """Draw `structure.png` and write `README.md` into `build_dir`; returns the README's path."""
    build_dir = Path(build_dir)
    structure_png(read_manifest(build_dir), build_dir / PICTURE)
    path = build_dir / README
    _write_atomic(path, render_card(build_dir, repo))
    return path


def render_card(build_dir: Path, repo: str | None = None) -> str:
    """The README.md of a build directory; `repo` (NS/NAME) is the Hub repo the card tells readers to load."""
    build_dir = Path(build_dir)
    m = read_manifest(build_dir)
    shards = _shards(build_dir, m)
    repo = repo or hub_repo(m) or _placeholder_repo(m)
    front = yaml.safe_dump(card_metadata(m, build_dir), sort_keys=False, allow_unicode=True, width=100)
    sections = [
        _intro(m, shards, repo),
        _about(m),
        _usage(m, build_dir, shards, repo),
        _structure(m, build_dir),
        _lengths(m),
        _quality(m),
        _model(m),
        _provenance(m),
        _spec(m, build_dir),
        _citation(),
    ]
    body = "\n\n".join(s.strip("\n") for s in sections if s.strip())
    return f"---\n{front}---\n\n{body}\n"


def read_manifest(build_dir: Path) -> dict[str, Any]:
    """The build's molspec.json (ValueError with the reason when it is missing or unreadable)."""
    from molspec.runtime.store import StoreError
    from molspec.runtime.store import read_manifest as read

    try:
        return read(build_dir)
    except StoreError as err:
        raise ValueError(err.message) from None


def hub_repo(manifest: dict[str, Any]) -> str | None:
    """The spec's `output { hub = "NS/NAME" }`, if it has one."""
    hub = (manifest.get("output") or {}).get("hub")
    return str(hub) if hub else None


# --------------------------------------------------------------------------------------------------
# Hub metadata
# --------------------------------------------------------------------------------------------------


def card_metadata(m: dict[str, Any], build_dir: Path) -> dict[str, Any]:
    """The YAML front matter: what the Hub indexes, plus the `configs` / `dataset_info` datasets reads."""
    ds = m.get("dataset") or {}
    shards = _shards(build_dir, m)
    meta: dict[str, Any] = {}
    if ds.get("license"):
        meta["license"] = str(ds["license"])
    if ds.get("language"):
        meta["language"] = [str(x) for x in ds["language"]]
    meta["task_categories"] = ["text-generation"]
    meta["tags"] = list(TAGS)
    meta["size_categories"] = [size_category(sum(n for files in shards.values() for _, n in files))]
    meta["pretty_name"] = str(ds.get("name") or "molspec dataset")
    data_files = [{"split": split, "path": _one_or_list([p for p, _ in files])} for split, files in shards.items()]
    meta["configs"] = [{"config_name": "default", "data_files": data_files}]
    info = _dataset_info(build_dir, shards)
    if info:
        meta["dataset_info"] = info
    return meta


def size_category(rows: int) -> str:
    """The Hub's `size_categories` bucket for a row count."""
    for bound, label in SIZE_BOUNDS:
        if rows < bound:
            return label
    return "n>1B"


def _one_or_list(paths: list[str]) -> str | list[str]:
    return paths[0] if len(paths) == 1 else paths


def _dataset_info(build_dir: Path, shards: dict[str, list[tuple[str, int]]]) -> dict[str, Any]:
    """`dataset_info.features` exactly as `datasets` writes it, from the parquet schema.

    Split sizes are left out: `datasets` wants their arrow size too, which would mean reading every shard.
    """
    from datasets import DatasetInfo, Features
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    schema = _schema(build_dir, shards)
    if schema is None:
        return {}
    card = DatasetCardData()
    DatasetInfosDict({"default": DatasetInfo(features=Features.from_arrow_schema(schema))}).to_dataset_card_data(card)
    info: dict[str, Any] = card.to_dict().get("dataset_info") or {}  # type: ignore[no-untyped-call]
    return {"features": info["features"]} if "features" in info else {}


# --------------------------------------------------------------------------------------------------
# Reading the build
# --------------------------------------------------------------------------------------------------


def _shards(build_dir: Path, m: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    """split -> [(path in the build dir, rows)], in the manifest's split order."""
    listed = m.get("files") or {}
    if not listed:  # an older manifest: read the shard names instead
        for path in sorted((build_dir / "data").glob("*-?????-of-?????*.parquet")):
            listed.setdefault(path.name.rsplit("-", 3)[0], []).append(f"data/{path.name}")
    out: dict[str, list[tuple[str, int]]] = {}
    for split, paths in listed.items():
        out[str(split)] = [(str(p), _rows(build_dir / p)) for p in paths]
    return out


def _rows(path: Path) -> int:
    try:
        return int(pq.read_metadata(path).num_rows)
    except (OSError, pa.ArrowException):
        return 0


def _schema(build_dir: Path, shards: dict[str, list[tuple[str, int]]]) -> pa.Schema | None:
    paths = (build_dir / p for files in shards.values() for p, _ in files)
    return next((s for s in map(_read_schema, paths) if s is not None), None)


def _read_schema(path: Path) -> pa.Schema | None:
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException):
        return None


# --------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------


def _intro(m: dict[str, Any], shards: dict[str, list[tuple[str, int]]], repo: str) -> str:
    ds, spec, eng = m.get("dataset") or {}, m.get("spec") or {}, m.get("engine") or {}
    rows = sum(n for files in shards.values() for _, n in files)
    per_split = ", ".join(f"{split}: {sum(n for _, n in files):,}" for split, files in shards.items())
    lines = [f"# {ds.get('name') or repo}", ""]
    if ds.get("description"):
        lines += [f"> {ds['description']}", ""]
    lines.append(
        f"{rows:,} rows ({per_split}) of synthetic long chain-of-thought, built by molspec "
        f"{m.get('molspec_version', '?')} from the spec `{spec.get('path', '?')}` "
        f"(sha256 `{_short(spec.get('sha256'), 12)}`, git commit `{_short(spec.get('git_commit'), 12)}`) "
        f"with the `{eng.get('engine', '?')}` engine and the model `{_clean(eng.get('model', '?'))}`."
    )
    if eng.get("engine") == "echo":
        lines += ["", "**Note:** the `echo` engine writes placeholder text that names each bond, not model output. "
                      "This build previews the structure and the pipeline; do not train on it."]
    if spec.get("git_dirty"):
        lines += ["", _dirty_warning(spec)]
    return "\n".join(lines)


def _dirty_warning(spec: dict[str, Any]) -> str:
    return ("**Warning:** the spec's git working tree had uncommitted changes when this dataset was built, so "
            f"commit `{_short(spec.get('git_commit'), 12)}` does not hold the spec that made it. The exact files "
            "are under `spec/` in this repository and in the spec section below.")


def _about(m: dict[str, Any]) -> str:
    return f"""## What this dataset is

It was made with Mole-Syn, the method of "The Molecular Structure of Thought" (Chen et al., 2026,
arXiv:2601.06002, {PAPER}). The paper finds that the long chains of thought of strong reasoning
models are built from a few step behaviours, called bonds: deep reasoning (covalent), self-reflection
(hydrogen bond), self-exploration (van der Waals) and normal operation; and that what a student model
learns from them is the structure: the share of each bond and the probabilities of moving from one bond
to the next. Mole-Syn random-walks such a behaviour-transition graph and has an instruction model write
each step with the instruction of the sampled bond. Each row here is one walk: a seed question, its
planned bond sequence, one generated step per bond and a final answer, also given as chat `messages`
ready for supervised fine-tuning."""


def _usage(m: dict[str, Any], build_dir: Path, shards: dict[str, list[tuple[str, int]]], repo: str) -> str:
    split = "train" if "train" in shards else next(iter(shards), "train")
    schema = _schema(build_dir, shards)
    lines = [
        "## Load it", "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'ds = load_dataset("{repo}")',
        f'print(ds["{split}"][0]["messages"])',
        "```", "",
        "Each build is a tag (`spec-<first 8 hex of the spec sha256>` unless named otherwise): "
        f'`load_dataset("{repo}", revision="spec-{_short((m.get("spec") or {}).get("sha256"), 8)}")` '
        "always returns this build.", "",
        "Fine-tune on it with TRL (the `messages` column is in the conversational format `SFTTrainer` takes):", "",
        "```python",
        "from datasets import load_dataset",
        "from trl import SFTConfig, SFTTrainer",
        "",
        f'train = load_dataset("{repo}", split="{split}").select_columns(["messages"])',
        'trainer = SFTTrainer(model="Qwen/Qwen2.5-0.5B-Instruct", train_dataset=train,',
        '                     args=SFTConfig(output_dir="sft-out"))',
        "trainer.train()",
        "```",
    ]
    if schema is not None:
        rows = [[f"`{f.name}`", _type(f.type), COLUMNS.get(f.name, "")] for f in schema]
        lines += ["", "### Columns", "", _table(["column", "type", "meaning"], rows)]
    return "\n".join(lines)


def _structure(m: dict[str, Any], build_dir: Path) -> str:
    bonds = bond_order(m)
    planned, realised = m.get("planned") or {}, m.get("realised") or {}
    lines = ["## Structure: planned vs realised", ""]
    if (build_dir / PICTURE).is_file():
        lines += [f"![Planned vs realised transitions and bond shares]({PICTURE})", ""]
    lines += ["*Planned* counts the walks of the build's plan (drawn from the spec's graphs with its seed); "
              "*realised* counts the steps of the rows in the dataset.", ""]
    stationary = planned.get("stationary") or {}
    header = ["bond", "planned", "realised"] + [f"stationary ({g})" for g in stationary]
    rows = [[b, _pct(planned.get("bond_shares", {}).get(b)), _pct(realised.get("bond_shares", {}).get(b))]
            + [_pct(stationary[g].get(b)) for g in stationary] for b in bonds]
    lines += ["### Bond shares (share of all steps)", "", _table(header, rows)]
    for title, stats in (("planned", planned), ("realised", realised)):
        matrix = (stats.get("transitions") or {}).get("matrix")
        if matrix:
            lines += ["", f"### Transitions, {title}: P(next bond | bond)", "",
                      _matrix_table((stats.get("transitions") or {}).get("bonds") or bonds, matrix)]
    for name, g in (m.get("graphs") or {}).items():
        lines += ["", f"### Graph `{name}` as specified", "",
                  f"Steps per walk: {g.get('steps', ['?', '?'])[0]} to {g.get('steps', ['?', '?'])[-1]}. "
                  "Rows give P(next | bond); `start` is the first bond, `end` the chance to stop after a bond.", "",
                  _graph_table(g)]
    return "\n".join(lines)


def _lengths(m: dict[str, Any]) -> str:
    planned, realised = m.get("planned") or {}, m.get("realised") or {}
    shown = [(name, stats["steps"]) for name, stats in (("planned", planned), ("realised", realised))
             if stats.get("steps")]
    keys = [k for k in ("mean", "min", "p50", "p95", "max", "total") if all(k in steps for _, steps in shown)]
    lines = ["## Steps and tokens", "", "Steps per sample:", ""]
    rows = [[name, *[_num(steps.get(k)) for k in keys]] for name, steps in shown]
    lines.append(_table(["", *keys], rows))
    tokens = realised.get("tokens") or {}
    if tokens:
        samp = m.get("sampling") or {}
        per_bond = samp.get("per_bond") or {}
        cols = ["mean", "p50", "p95", "max", "total"]
        rows = [[b, *[_num(t.get(k)) for k in cols], _num(t.get("cut_by_max_tokens")),
                 _num((per_bond.get(b) or {}).get("max_tokens") or samp.get("max_tokens"))]
                for b, t in tokens.items()]
        total = sum(int(t.get("total") or 0) for t in tokens.values())
        lines += ["", f"Generated tokens per step, by bond ({total:,} step tokens in all; answers not counted):", "",
                  _table(["bond", *cols, "cut by max_tokens", "max_tokens"], rows)]
    return "\n".join(lines)


def _quality(m: dict[str, Any]) -> str:
    summary, realised, answer = m.get("summary") or {}, m.get("realised") or {}, m.get("answer") or {}
    accuracy, graded = realised.get("accuracy", summary.get("accuracy")), realised.get("graded")
    lines = ["## Accuracy and failures", ""]
    verify = answer.get("verify", "?")
    if accuracy is None:
        lines.append(f"Accuracy against gold: not graded (verifier: `{verify}`; no sample had both a gold answer and "
                     "a verdict).")
    else:
        of = f" of {graded:,} graded answers" if isinstance(graded, int) else ""
        lines.append(f"Accuracy against gold: **{_pct(accuracy)}**{of} (verifier: `{verify}`; "
                     f"rows kept: `{answer.get('keep', 'all')}`).")
    rows = [[split, ", ".join(s.get("graphs") or [s.get("graph", "")]), _num(s.get("samples")), _num(s.get("done")),
             _num(s.get("failed"))] for split, s in (m.get("splits") or {}).items()]
    if rows:
        lines += ["", _table(["split", "graphs", "planned", "done", "failed"], rows)]
    failed = summary.get("failed", len(m.get("failures") or []))
    lines += ["", f"Samples: {_num(summary.get('planned'))} planned, {_num(summary.get('target'))} targeted, "
                  f"{_num(summary.get('done'))} done, {_num(failed)} failed, "
                  f"{_num(summary.get('kept'))} in the dataset."]
    failures = m.get("failures") or []
    if failures:
        lines += ["", "First failures (failed samples are not in the data; `molspec build` retries them on resume):",
                  ""]
        lines += [f"- sample {f.get('sample_index')}: {_clean(str(f.get('error')))[:200]}" for f in failures[:5]]
    return "\n".join(lines)


def _model(m: dict[str, Any]) -> str:
    eng, samp, ds = m.get("engine") or {}, m.get("sampling") or {}, m.get("dataset") or {}
    base = {k: v for k, v in samp.items() if k != "per_bond"}
    rows = [["engine", f"`{eng.get('engine', '?')}`"], ["model", f"`{_clean(str(eng.get('model', '?')))}`"],
            ["seed", _num(ds.get("seed"))]]
    rows += [[k, _num(v)] for k, v in base.items()]
    options = sorted(_redact(eng.get("options")).items())
    rows += [[f"engine option `{k}`", f"`{_clean(json.dumps(v))}`"] for k, v in options]
    lines = ["## Model and sampling", "", _table(["setting", "value"], rows)]
    per_bond = {b: v for b, v in (samp.get("per_bond") or {}).items() if v}
    if per_bond:
        keys = sorted({k for v in per_bond.values() for k in v})
        lines += ["", "Per-bond overrides (unset: the model's value above):", "",
                  _table(["bond", *keys], [[b, *[_num(v.get(k)) for k in keys]] for b, v in per_bond.items()])]
    return "\n".join(lines)


def _provenance(m: dict[str, Any]) -> str:
    spec = m.get("spec") or {}
    commit, path = spec.get("git_commit"), spec.get("path", "SPEC")
    tree = "uncommitted changes at build time" if spec.get("git_dirty") else "clean"
    rows = [["spec", f"`{path}`"], ["spec sha256", f"`{spec.get('sha256', '?')}`"],
            ["git commit", f"`{commit}`" if commit else "none (the spec was not in a git repository)"],
            ["git working tree", tree if commit else "n/a"],
            ["molspec version", f"`{m.get('molspec_version', '?')}`"], ["created", str(m.get("created", "?"))]]
    command = _clean(str(m.get("command") or f"molspec build {path}"))
    lines = ["## Provenance: rebuild it", "", _table(["", ""], rows), ""]
    if commit and not spec.get("git_dirty"):
        lines += ["In the git repository that holds the spec:", "", "```bash", f"git checkout {commit}",
                  f'pip install "molspec=={m.get("molspec_version", "?")}"', command, "```"]
    else:
        lines += ["The git commit does not hold this exact spec; rebuild from the copy in this repository's `spec/` "
                  "folder (its seed questions must be at the paths the spec names):", "",
                  "```bash", f'pip install "molspec=={m.get("molspec_version", "?")}"', command, "```"]
    lines += ["", "The same spec, seed and model give the same plan (the same questions and bond walks); the "
                  "generated text is as reproducible as the engine's sampling."]
    if spec.get("git_dirty"):
        lines += ["", _dirty_warning(spec)]
    return "\n".join(lines)


def _spec(m: dict[str, Any], build_dir: Path) -> str:
    spec = m.get("spec") or {}
    files = [str(f) for f in spec.get("files") or []]
    # The build copies the spec to spec/<its file name> and its imports relative to it.
    copied = f"spec/{Path(str(spec.get('path', ''))).name}"
    main = copied if copied in files else spec.get("main")
    ordered = ([main] if main in files else []) + [f for f in files if f != main]
    lines = ["## The spec", "", f"The spec and every file it imports, as built (also under `spec/` here). "
             f"sha256 of the spec's meaning: `{spec.get('sha256', '?')}`."]
    for rel in ordered:
        try:
            text = (build_dir / rel).read_text(encoding="utf-8")
        except OSError:
            continue
        role = "the spec" if rel == main else "imported"
        fence = _fence(text)
        shown = rel.removeprefix("spec/")
        lines += ["", f"### `{shown}` ({role})", "", f"{fence}mol", text.rstrip("\n"), fence]
    return "\n".join(lines)


def _citation() -> str:
    return """## Citation

```bibtex
@article{chen2026molecular,
  title   = {The Molecular Structure of Thought},
  author  = {Chen, Qiguang and Du, Yantao and Li, Ziniu and Liu, Jinhao and Duan, Songyao and Guo, Jiarui
             and Liu, Minghao and Liu, Jiaheng and Yang, Tong and Zhang, Ge and Qin, Libo and Che, Wanxiang
             and Huang, Wenhao},
  journal = {arXiv preprint arXiv:2601.06002},
  year    = {2026}
}
```"""


# --------------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table padded to line up in plain text; numeric columns are right-aligned."""
    cells = [[str(c).replace("|", "\\|").replace("\n", " ") for c in row] for row in [header, *rows]]
    width = [max(3, *(len(r[i]) for r in cells)) for i in range(len(header))]
    numeric = [all(_numeric(r[i]) for r in cells[1:]) and len(cells) > 1 for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(row, width, numeric,
                                                                                      strict=True)) + " |"

    rule = "| " + " | ".join(("-" * (w - 1) + ":") if n else "-" * w for w, n in zip(width, numeric, strict=True))
    return "\n".join([line(cells[0]), rule + " |", *(line(r) for r in cells[1:])])


def _matrix_table(bonds: Sequence[str], matrix: Sequence[Sequence[float]]) -> str:
    rows = [[str(b), *[f"{float(p):.3f}" for p in row]] for b, row in zip(bonds, matrix, strict=False)]
    return _table(["from \\ to", *map(str, bonds)], rows)


def _graph_table(g: dict[str, Any]) -> str:
    bonds = [str(b) for b in g.get("bonds") or []]
    rows = [["start", *[f"{float(p):.3f}" for p in g.get("start") or []]]]
    rows += [[b, *[f"{float(p):.3f}" for p in row]] for b, row in zip(bonds, g.get("transitions") or [], strict=False)]
    table = _table(["from \\ to", *bonds], rows)
    end = g.get("end") or []
    if any(float(p) > 0 for p in end):
        table += "\n\n" + _table(["end after", *bonds], [["P(stop)", *[f"{float(p):.3f}" for p in end]]])
    return table


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d,]*\.?\d+%?|—", text))


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"
    return _clean(str(value))


def _pct(value: Any) -> str:
    return "—" if value is None else f"{100 * float(value):.1f}%"


def _short(value: Any, n: int) -> str:
    return str(value)[:n] if value else "unknown"


def _fence(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    return "`" * (longest + 1)


def _type(t: pa.DataType) -> str:
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{_type(t.value_type)}>"
    if pa.types.is_struct(t):
        return "struct"
    return {"bool": "bool", "large_string": "string"}.get(str(t), str(t))


def _redact(options: Any) -> dict[str, Any]:
    """Engine options with credential-looking values masked (names of environment variables are kept)."""
    if not isinstance(options, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in options.items():
        if SECRET_KEY.search(str(key)) and not str(key).endswith("_env"):
            out[str(key)] = MASK
        elif isinstance(value, dict):
            out[str(key)] = _redact(value)
        else:
            out[str(key)] = value
    return out


def _clean(text: str) -> str:
    """Text with token-shaped strings and URL credentials masked."""
    text = URL_USERINFO.sub(lambda mt: f"{mt['scheme']}{MASK}@", text)
    return SECRET_VALUE.sub(MASK, text)


def _placeholder_repo(m: dict[str, Any]) -> str:
    name = str((m.get("dataset") or {}).get("name") or "dataset")
    return name if "/" in name else f"YOUR-NAMESPACE/{name}"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
