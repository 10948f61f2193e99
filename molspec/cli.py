"""The `molspec` command: a thin shell over the API (argparse; no logic of its own).

Exit codes: 0 ok, 1 the spec or data is wrong (or the build failed), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from molspec.argtypes import positive_int
from molspec.atomic import write_atomic
from molspec.diagnostics import MolspecError, Severity, render_short
from molspec.engines.registry import ENGINE_NAMES
from molspec.version import __version__

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code: int = args.func(args)
        return code
    except MolspecError as err:  # every molspec error (spec, source, build dir, engine, Hub) prints here
        _print_diagnostics(err, args)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (the last line of defence: a bug, said as one)
        return _failure(exc)


def _failure(exc: Exception) -> int:
    if os.environ.get("MOLSPEC_DEBUG"):
        raise exc
    print(f"internal error: {type(exc).__name__}: {exc}\n"
          "this is a bug in molspec; rerun with MOLSPEC_DEBUG=1 for the traceback and report it",
          file=sys.stderr)
    return EXIT_BAD_INPUT


def _color(args: argparse.Namespace) -> bool:
    mode = getattr(args, "color", "auto")
    if mode == "auto":
        return sys.stderr.isatty() and not os.environ.get("NO_COLOR")
    return bool(mode == "always")


def _print_diagnostics(err: MolspecError, args: argparse.Namespace) -> None:
    if getattr(args, "format", "rich") == "short":
        for d in err.diagnostics:
            print(render_short(d), file=sys.stderr)
    else:
        print(err.render(color=_color(args), limit=getattr(args, "max_errors", 50)), file=sys.stderr)


# ---------------------------------------------------------------- check

def cmd_check(args: argparse.Namespace) -> int:
    from molspec.api import load

    failed = False
    for path in args.specs:
        try:
            doc = load(path)
        except MolspecError as err:
            _print_diagnostics(err, args)
            failed = True
            continue
        diags = [d for d in doc.diagnostics if args.warnings or d.severity is not Severity.NOTE]
        errors = [d for d in diags if d.is_error or (args.strict and d.severity is Severity.WARNING)]
        failed |= bool(errors) or doc.spec is None
        if diags:
            _print_diagnostics(MolspecError(diags, doc.sources), args)
        elif not args.quiet:
            print(f"{path}: ok", file=sys.stderr)
    return EXIT_BAD_INPUT if failed else EXIT_OK


# ---------------------------------------------------------------- fmt

def cmd_fmt(args: argparse.Namespace) -> int:
    from molspec.lang.fmt import format_text

    changed = []
    for path in args.specs:
        text = _read_text(path)
        new = format_text(text, path)
        if new == text:
            continue
        changed.append(path)
        if args.check:
            print(f"would reformat {path}", file=sys.stderr)
        else:
            write_atomic(Path(path), new)
            print(f"reformatted {path}", file=sys.stderr)
    if args.check and changed:
        return EXIT_BAD_INPUT
    return EXIT_OK


def _read_text(path: str) -> str:
    from molspec.lang.imports import read_spec

    return read_spec(path)


# ---------------------------------------------------------------- plan

def cmd_plan(args: argparse.Namespace) -> int:
    from molspec.api import load
    from molspec.plan.output import print_stats, write_walks
    from molspec.plan.stats import plan_stats

    doc = load(args.spec)
    if doc.raise_for_errors().variants:
        return _plan_variants(args, doc)
    plan = doc.compile(seed=args.seed, samples=args.samples)
    stats = plan_stats(plan)
    if args.out:
        write_walks(plan, Path(args.out))
    if args.json:
        extra = {"estimated_from_walks": stats.walked} if stats.estimated else {}
        print(json.dumps({**stats.to_json(), **extra}, indent=2))
    else:
        print_stats(doc.path, plan, stats, out=args.out)
    return EXIT_OK


def _plan_variants(args: argparse.Namespace, doc: Any) -> int:
    """Every variant's statistics side by side, with the pairing; `--out` writes one walk file per variant."""
    from molspec.plan.output import print_variant_stats, write_walks
    from molspec.plan.pairing import pairing
    from molspec.plan.stats import plan_stats

    plans = doc.compile_variants(seed=args.seed, samples=args.samples)
    stats = {name: plan_stats(p) for name, p in plans.items()}
    pairs = pairing({name: p.spec for name, p in plans.items()})
    if args.out:
        out = Path(args.out)
        for name, p in plans.items():
            write_walks(p, out.with_name(f"{out.stem}.{name}{out.suffix}"))
    if args.json:
        variants = {name: {"title": p.spec.variant_title, "changes": list(p.spec.changes), **stats[name].to_json()}
                    for name, p in plans.items()}
        print(json.dumps({"pairing": pairs.to_json(), "variants": variants}, indent=2))
    else:
        print_variant_stats(doc.path, plans, stats, pairs)
        if args.out:
            print(f"walks written next to {args.out}, one file per variant ({out.stem}.NAME{out.suffix})")
    return EXIT_OK


# ---------------------------------------------------------------- build

def cmd_build(args: argparse.Namespace) -> int:
    from molspec.api import load
    from molspec.pipeline import build
    from molspec.runtime.build import BuildOptions
    from molspec.runtime.console import ProgressLine, summary

    doc = load(args.spec)
    if args.out and "://" in args.out and not args.out.startswith("file://"):
        print(f"error: --out {args.out}: builds write to a local or shared-filesystem folder; object stores "
              "are not supported yet (build locally, then `molspec push` or copy the folder)", file=sys.stderr)
        return EXIT_USAGE
    if args.out is not None and not args.out.strip():
        print("error: --out is empty: give the folder to build into (default: out/<spec name>)", file=sys.stderr)
        return EXIT_USAGE
    problem = _variant_problem(args, doc)
    if isinstance(problem, MolspecError):
        _print_diagnostics(problem, args)
        return EXIT_USAGE
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out.removeprefix("file://")) if args.out else _default_out(args.spec)
    opts = BuildOptions(out=out, limit=args.limit, engine=args.engine, model=args.model, fresh=args.fresh,
                        window=args.batch, gate=args.gate, command=_command_line(), cache=args.cache,
                        variants=tuple(dict.fromkeys(args.variant or ())))
    display = ProgressLine()
    try:
        if args.executor == "ray":
            result = _build_on_ray(args, doc, opts)
        else:
            result = build(doc, opts, on_round=None if args.quiet else display)
    finally:
        display.close()
    print(summary(result), file=sys.stderr)
    print(str(result.out))
    if args.push:
        return _push_after_build(args, result.out)
    return EXIT_OK if result.done > 0 or result.target == 0 else EXIT_BAD_INPUT


def _variant_problem(args: argparse.Namespace, doc: Any) -> MolspecError | str | None:
    """Why the variant options cannot be used with this spec (MOL809 for an unknown name), or None."""
    doc.raise_for_errors()
    for name in args.variant or ():
        try:
            doc.variant(name)
        except MolspecError as err:
            return err
    return None


def _build_on_ray(args: argparse.Namespace, doc: Any, opts: Any) -> Any:
    from molspec.pipeline import build_ray
    from molspec.runtime.console import RayProgressLine

    display = RayProgressLine()  # cmd_build's display ends its line
    return build_ray(doc, opts, replicas=args.replicas, address=args.ray_address, shard_size=args.shard_size,
                     gpus_per_replica=args.gpus_per_replica, on_round=None if args.quiet else display,
                     on_replicas=display.replicas)


def _push_after_build(args: argparse.Namespace, out: Path) -> int:
    from molspec.publish.cli import push_dir

    return push_dir(out, repo=args.repo, revision=args.revision, private=args.private)


def _default_out(spec: str) -> Path:
    return Path("out") / Path(spec).stem


def _command_line() -> str:
    import shlex

    return "molspec " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _build_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("spec", metavar="SPEC")
    sp.add_argument("--out", metavar="DIR", help="dataset directory (default: out/<spec name>)")
    sp.add_argument("--limit", type=positive_int, metavar="N", help="build only the first N samples of the plan")
    sp.add_argument("--engine", choices=ENGINE_NAMES, help="override the engine")
    sp.add_argument("--model", metavar="M", help="override the model (hub id, local path, builtin:...)")
    sp.add_argument("--fresh", action="store_true",
                    help="discard an earlier build in DIR and start over (the step cache is kept)")
    sp.add_argument("--variant", action="append", metavar="NAME",
                    help="build only this variant of the spec (repeatable; default: every variant)")
    sp.add_argument("--cache", action=argparse.BooleanOptionalAction, default=True,
                    help="answer steps already generated from the step cache in DIR/.molspec (default: on)")
    sp.add_argument("--batch", type=positive_int, metavar="N", help="samples in flight (engine batch size)")
    sp.add_argument("--gate", action=argparse.BooleanOptionalAction, default=None,
                    help="the fidelity gate: re-ask steps that miss their bond (default: the spec's fidelity.gate, on)")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    sp.add_argument("--push", action="store_true", help="push the dataset to the Hub when the build ends")
    sp.add_argument("--repo", metavar="NS/NAME", help="Hub repo for --push (default: the spec's output.hub)")
    sp.add_argument("--revision", metavar="TAG", help="tag for --push (default: spec-<sha8>)")
    sp.add_argument("--private", action="store_true", help="create the Hub repo as private")
    ray = sp.add_argument_group("scale-out on Ray (pip install 'molspec[ray]'; see docs/ray.md)")
    ray.add_argument("--executor", choices=("local", "ray"), default="local", help="where the engine runs")
    ray.add_argument("--ray-address", metavar="ADDR", help="Ray cluster (auto, HOST:PORT, ray://HOST:10001)")
    ray.add_argument("--replicas", type=positive_int, metavar="N", help="engine replicas (default: GPUs / G, else 1)")
    ray.add_argument("--gpus-per-replica", type=float, metavar="G",
                     help="GPUs per replica (default for vllm: tensor_parallel_size x pipeline_parallel_size)")
    ray.add_argument("--shard-size", type=positive_int, metavar="N", help="samples handed to a replica at a time")


# ---------------------------------------------------------------- the parser

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="molspec", description="Build long chain-of-thought datasets from .mol specs.")
    p.add_argument("--version", action="version", version=f"molspec {__version__}")
    sub = p.add_subparsers(metavar="COMMAND")
    _add(sub, "check", cmd_check, "check specs; print diagnostics", _check_args)
    _add(sub, "fmt", cmd_fmt, "format specs in place (canonical form, comments kept)", _fmt_args)
    _add(sub, "plan", cmd_plan, "compile a spec and print its sampling plan", _plan_args)
    _add(sub, "build", cmd_build, "run a spec's plan on an engine into a dataset directory", _build_args)
    for name, (module, help_) in EXTRA_COMMANDS.items():
        _add_lazy(sub, name, module, help_)
    return p


# Commands whose implementation lives next to its stage: "module" has `add_arguments(parser)` and
# `run(args) -> int`; "module:name" has `name_arguments` and `name_run`. Keep those modules' imports light.
EXTRA_COMMANDS: dict[str, tuple[str, str]] = {
    "push": ("molspec.publish.cli", "push a built dataset to the Hugging Face Hub"),
    "extract": ("molspec.structure.cli:extract", "extract a behaviour-transition graph from teacher traces"),
    "analyze": ("molspec.structure.cli:analyze", "realised vs planned structure of a built dataset"),
    "compare": ("molspec.structure.cli:compare", "structural correlation of two graphs, specs or datasets"),
    "review": ("molspec.structure.cli:review",
               "a blind sheet of a build's steps for a person to label, and its score"),
}


def _add(sub: Any, name: str, func: Callable[[argparse.Namespace], int], help_: str,
         add_args: Callable[[argparse.ArgumentParser], None]) -> None:
    sp = sub.add_parser(name, help=help_, description=help_)
    add_args(sp)
    _diag_args(sp)
    sp.set_defaults(func=func)


def _add_lazy(sub: Any, name: str, module: str, help_: str) -> None:
    import importlib

    module, _, prefix = module.partition(":")
    mod = importlib.import_module(module)
    sp = sub.add_parser(name, help=help_, description=help_)
    getattr(mod, f"{prefix}_arguments" if prefix else "add_arguments")(sp)
    _diag_args(sp)
    sp.set_defaults(func=getattr(mod, f"{prefix}_run" if prefix else "run"))


def _diag_args(sp: argparse.ArgumentParser) -> None:
    g = sp.add_argument_group("diagnostics")
    g.add_argument("--format", choices=("rich", "short"), default="rich", help="diagnostic style")
    g.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    g.add_argument("--max-errors", type=int, default=50, metavar="N", help="show at most N diagnostics")


def _check_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("specs", nargs="+", metavar="SPEC")
    sp.add_argument("--strict", action="store_true", help="treat warnings as errors")
    sp.add_argument("--warnings", action="store_true", help="also show notes")
    sp.add_argument("-q", "--quiet", action="store_true", help="print nothing for clean specs")


def _fmt_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("specs", nargs="+", metavar="SPEC")
    sp.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file would change")


def _plan_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("spec", metavar="SPEC")
    sp.add_argument("--samples", type=positive_int, metavar="N", help="override the number of samples")
    sp.add_argument("--seed", type=int, metavar="S", help="override the dataset seed")
    sp.add_argument("--json", action="store_true", help="print the statistics as one JSON object")
    sp.add_argument("--out", metavar="FILE", help="write the walks to FILE (.parquet or .jsonl)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
