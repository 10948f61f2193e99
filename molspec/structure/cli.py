"""`molspec extract`, `analyze`, `compare` and `review` (argument parsing and printing only)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from molspec.argtypes import positive_int
from molspec.engines.registry import DEFAULT_ENGINE, ENGINE_NAMES

EXIT_OK, EXIT_BAD, EXIT_USAGE = 0, 1, 2


# The labelers' names, written here so that building the CLI's parser loads no labeler (structure.label.LABELERS
# is the same tuple; tests/structure keeps them equal).
LABELER_CHOICES = ("learned", "learned-blind", "learned-causal", "learned-lm", "learned-lm-causal", "cue", "llm")

# ---------------------------------------------------------------- extract

def extract_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("traces", nargs="+", metavar="TRACES", help=".jsonl / .parquet files, folders or Hub dataset ids")
    sp.add_argument("-o", "--out", required=True, metavar="OUT.mol", help="where to write the graph")
    sp.add_argument("--name", default="teacher", help="the graph's name (default: teacher)")
    sp.add_argument("--labeler", choices=LABELER_CHOICES, default="learned",
                    help="learned (default): trained from hand labels, CPU; learned-blind: the same, blind to "
                         "opening cue words; learned-lm: learned plus SmolLM2's reading, better and ~11 steps/s on a "
                         "CPU; cue: rules; llm: an LLM judge scoring the bonds by log-probabilities")
    sp.add_argument("--engine", choices=ENGINE_NAMES, default=DEFAULT_ENGINE, help="engine of the llm labeler")
    sp.add_argument("--model", default="builtin:smollm2-135m-instruct", help="model of the llm labeler")
    sp.add_argument("--alpha", type=float, default=0.5, help="additive smoothing of the counts (default 0.5)")
    sp.add_argument("--bonds", choices=("declare", "use", "none"), default="declare",
                    help="declare the four bonds in the file, `use` bonds/standard.mol, or write only the graph")
    sp.add_argument("--labels", metavar="FILE.jsonl", help="also write per-trace labels and step offsets (JSON lines)")


def extract_run(args: argparse.Namespace) -> int:
    from molspec.lang.fmt import format_text
    from molspec.structure.extract import extract
    from molspec.structure.label import get_labeler
    labeler = _labeler(args) if args.labeler == "llm" else get_labeler(args.labeler)
    result = extract(args.traces, labeler=labeler, alpha=args.alpha, keep_labels=bool(args.labels))  # MOL410
    g = result.graph
    if g.n_traces == 0:
        print("error: no traces found in " + ", ".join(args.traces), file=sys.stderr)
        return EXIT_BAD
    note = f"molspec extract {' '.join(args.traces)} --labeler {args.labeler} --alpha {args.alpha}"
    text = format_text(g.to_mol(args.name, note, bonds=args.bonds), args.out)
    out = Path(args.out)
    _write_atomic(out, text)
    if args.labels:
        _write_atomic(Path(args.labels), _labels_json(result.traces))
    shares = ", ".join(f"{b} {s:.3f}" for b, s in zip(g.bonds, g.shares, strict=True))
    print(f"{g.n_traces:,} traces, {g.n_steps:,} steps; shares {shares}; steps p50 {g.steps.p50}", file=sys.stderr)
    print(str(out))
    return EXIT_OK


def _write_atomic(path: Path, data: str | bytes) -> None:
    from molspec.atomic import write_atomic

    write_atomic(path, data)


def _labels_json(traces: Any) -> str:
    from molspec.structure.estimate import labels_to_json

    return labels_to_json(traces)


def _labeler(args: argparse.Namespace) -> Any:
    from molspec.engines import create
    from molspec.structure.label import get_labeler

    return get_labeler("llm", engine=create(args.engine, args.model, {}, 0))


# ---------------------------------------------------------------- compare

def compare_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("a", metavar="A", help="a spec (spec.mol or spec.mol:GRAPH), a build directory, traces, or a "
                                           "variant build (alone: every variant against the first)")
    sp.add_argument("b", metavar="B", nargs="?", help="the same kinds as A (e.g. two variants: GROUP/a GROUP/b)")
    sp.add_argument("--base", metavar="VARIANT", help="with a variant build: compare with this variant "
                                                      "(default: the first)")
    sp.add_argument("--labeler", metavar="NAME", help="with a variant build: re-label every step with this CPU "
                    "labeler (cue, learned, ...) for the labelled view; `none`: walks only. Default: the labels "
                    "each variant's fidelity gate stored, else the default labeler")
    sp.add_argument("--json", action="store_true", help="print one JSON object")


def compare_run(args: argparse.Namespace) -> int:
    from molspec.structure.group import is_group

    if args.b is None:
        if not is_group(Path(args.a)):
            print(f"error: {args.a} is not a variant build (no variants.json): compare it with a second spec, "
                  "build directory or traces, `molspec compare A B`", file=sys.stderr)
            return EXIT_BAD
        return _compare_group(args)
    if args.base or args.labeler or is_group(Path(args.a)) or is_group(Path(args.b)):
        print("error: a variant build is compared alone (`molspec compare GROUP [--base VARIANT] [--labeler NAME]`); "
              "to compare two of its variants, name their directories: `molspec compare GROUP/a GROUP/b`",
              file=sys.stderr)
        return EXIT_BAD
    return _compare_two(args)


def _compare_two(args: argparse.Namespace) -> int:
    from molspec.structure.compare import bond_differences, compare
    from molspec.structure.compare_variants import GUIDANCE, bond_table
    from molspec.structure.graphs import load_graph

    name_a, a = load_graph(args.a)  # TraceError (MOL410) and spec errors print through cli.main
    name_b, b = load_graph(args.b)
    c, diffs = compare(a, b), bond_differences(a, b)
    if args.json:
        print(json.dumps({"a": name_a, "b": name_b, **c.to_dict(), "per_bond": [d.to_dict() for d in diffs]},
                         indent=2))
    else:
        print(f"{name_a}  vs  {name_b}")
        print(f"  {c.summary()}")
        print(f"  {GUIDANCE}")
        print("\n".join(["", "per bond (b - a)", *bond_table(diffs, "a", "b")]))
    return EXIT_OK


def _compare_group(args: argparse.Namespace) -> int:
    from molspec.structure.compare_variants import compare_group, text_report
    from molspec.structure.group import open_group

    if args.labeler == "llm":
        print("error: compare labels with a CPU labeler; the llm judge needs an engine (see `molspec extract "
              "--labeler llm`)", file=sys.stderr)
        return EXIT_BAD
    group = open_group(Path(args.a))  # MOL701 prints through cli.main
    try:
        pairs = compare_group(group, args.base, args.labeler)
    except ValueError as err:  # an unknown labeler name
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD
    base = args.base or group.variants[0].name
    if args.json:
        print(json.dumps({"group": str(args.a), "base": base, "pairing": group.manifest.pairing,
                          "pairs": [p.to_dict() for p in pairs]}, indent=2))
    else:
        print(text_report(pairs, f"{args.a}: {len(group.variants)} variants, each against {base} "
                                 "(walks: the bonds their rows were asked for; labelled: the labels of their text)"))
    return EXIT_OK


# ---------------------------------------------------------------- analyze

def analyze_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("dir", metavar="DIR", help="a build directory")
    sp.add_argument("--spec", metavar="SPEC", help="compare with this spec instead of the one the build used")
    sp.add_argument("--labeler", metavar="NAME",
                    help="re-label every step with this CPU labeler (cue, learned, ...); `none`: no labelled view. "
                         "Default: the labels the build's fidelity gate stored, else the default labeler")
    sp.add_argument("--json", action="store_true", help="print the report as one JSON object")
    sp.add_argument("--png", metavar="FILE", help="where to draw the report (default DIR/analysis.png)")


def analyze_run(args: argparse.Namespace) -> int:
    from molspec.structure.analyze import analyze
    from molspec.structure.report import picture, text_report

    if args.labeler == "llm":
        print("error: analyze labels with a CPU labeler; the llm judge needs an engine (see `molspec extract "
              "--labeler llm`)", file=sys.stderr)
        return EXIT_BAD
    build_dir = Path(args.dir)
    try:
        report = analyze(build_dir, Path(args.spec) if args.spec else None, args.labeler)
    except ValueError as err:  # an unknown labeler name
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD
    png = Path(args.png) if args.png else build_dir / "analysis.png"
    _write_atomic(png, picture(report))
    report.png = str(png)
    print(json.dumps(report.to_json(), indent=2) if args.json else text_report(report))
    return EXIT_OK


# ---------------------------------------------------------------- review

REVIEW_WALKS = 20
REVIEW_HOWTO = (
    "Label each step by what its text does, per docs/labelling-guide.md: explore (opens a new direction), "
    "deep (derives something new from the step before), reflect (checks, doubts or corrects earlier work) or "
    "normal (routine work a careful clerk could write). Read each walk from its first step and label a step in "
    "the light of the steps before it; do not look at the dataset's `bonds` column or any labeler's labels. "
    "Write the label in the `label` column (leave it empty to skip a step), keep `key` and `sha1` as they are "
    "(as text, if a spreadsheet asks), save as CSV, then score it: molspec review {dir} --score {sheet}")


def review_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("dir", metavar="DIR", help="a build directory (of a variant build: one variant's folder)")
    sp.add_argument("--walks", type=positive_int, metavar="N",
                    help=f"whole walks on the sheet, sampled and shuffled (default {REVIEW_WALKS})")
    sp.add_argument("--seed", type=int, metavar="S", help="seed of the sample (default 0)")
    sp.add_argument("--out", metavar="FILE", help="where to write the sheet (default ./<DIR name>-review.csv); "
                                                  "an existing file is never overwritten")
    sp.add_argument("--score", metavar="FILE", help="score a filled sheet against DIR instead of writing one")
    sp.add_argument("--json", action="store_true", help="with --score: print the score as one JSON object")


def review_run(args: argparse.Namespace) -> int:
    if args.score is not None and (args.walks is not None or args.seed is not None or args.out is not None):
        print("error: --score reads a filled sheet; --walks, --seed and --out are for writing one", file=sys.stderr)
        return EXIT_USAGE
    if args.score is None and args.json:
        print("error: --json prints a score: give the filled sheet with --score FILE", file=sys.stderr)
        return EXIT_USAGE
    return _review_score(args) if args.score is not None else _review_write(args)


def _review_write(args: argparse.Namespace) -> int:
    from molspec.structure.review import write_review

    build_dir = Path(args.dir)
    out = Path(args.out) if args.out else Path(f"{build_dir.resolve().name}-review.csv")
    seed = 0 if args.seed is None else args.seed
    walks = REVIEW_WALKS if args.walks is None else args.walks
    info = write_review(build_dir, walks, seed, out)
    more = f" (the build has only {info.available})" if info.walks < walks else ""
    print(f"wrote {out}: {info.walks} walks{more}, {info.steps} steps of {args.dir}, sampled with seed {seed}, "
          "shuffled, their bonds hidden")
    print()
    print(REVIEW_HOWTO.format(dir=args.dir, sheet=out))
    return EXIT_OK


def _review_score(args: argparse.Namespace) -> int:
    from molspec.structure.review import score_review, score_text

    score = score_review(Path(args.dir), Path(args.score), args.score)
    print(score.model_dump_json(indent=2) if args.json else score_text(score))
    return EXIT_OK
