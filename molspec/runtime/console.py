"""What a build shows while it runs (progress) and when it ends (summary)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from molspec.records import CacheInfo, FidelityInfo
from molspec.runtime.build import BuildResult
from molspec.runtime.cache import CACHE_DIR, CACHE_FILE
from molspec.runtime.runconfig import Progress
from molspec.runtime.variants import VariantsResult

if TYPE_CHECKING:
    from molspec.runtime.ray_actors import ReplicaStatus


class ProgressLine:
    """The build's progress: a rich progress bar on a terminal, a plain line every few seconds otherwise."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s = every_s
        self.last = 0.0
        self._bar: Any = None
        self._task: Any = None
        self._progress: Progress | None = None  # a variant build runs one Progress per variant

    def __call__(self, p: Progress, total: int) -> None:
        if p is not self._progress:
            self.close()  # the next variant: a bar of its own
            self._bar, self._progress, self.last = None, p, 0.0
        if self.tty:
            self._draw(p, total)
            return
        now = time.perf_counter()
        if now - self.last < self.every_s and p.done + p.failed < total:
            return
        self.last = now
        self.stream.write(progress_text(p, total, now) + "\n")
        self.stream.flush()

    def _draw(self, p: Progress, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        if self._bar is None:
            self._bar = Bar(TextColumn("samples"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                            TimeRemainingColumn(), console=Console(file=self.stream), refresh_per_second=5)
            self._bar.start()
            self._task = self._bar.add_task("build", total=total, info="")
        elapsed = max(time.perf_counter() - p.started, 1e-9)
        info = (f"{p.failed:,} failed  {p.steps:,} steps ({p.steps / elapsed:,.1f}/s)  "
                f"{p.tokens:,} tokens ({p.tokens / elapsed:,.1f}/s)  {p.retries:,} asked again")
        self._bar.update(self._task, completed=min(p.done + p.failed, total), info=info)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def progress_text(p: Progress, total: int, now: float) -> str:
    """samples done/total, failures, steps and tokens with their rates, and the ETA."""
    elapsed = max(now - p.started, 1e-9)
    finished = min(p.done + p.failed, total)
    rate = finished / elapsed
    eta = (total - finished) / rate if rate > 0 else float("nan")
    return (f"samples {finished:,}/{total:,} ({p.failed:,} failed)  steps {p.steps:,} ({p.steps / elapsed:,.1f}/s)"
            f"  tokens {p.tokens:,} ({p.tokens / elapsed:,.1f}/s)  ETA {_duration(eta)}")


def _duration(s: float) -> str:
    if s != s or s == float("inf"):
        return "?"
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def summary(r: BuildResult) -> str:
    if isinstance(r, VariantsResult):
        return variants_summary(r)
    acc = "n/a (no gold answers)" if r.accuracy is None else f"{100 * r.accuracy:.1f}%"
    lines = [
        f"built {r.out}",
        f"  samples    {r.done:,} done of {r.target:,} targeted ({r.planned:,} planned); "
        f"{r.resumed:,} from an earlier run; {r.failed:,} failed; {r.kept:,} in the dataset",
        f"  accuracy   {acc}",
        f"  generated  {r.steps:,} steps, {r.tokens:,} tokens in {r.wall_s:,.1f} s ({r.tokens_per_s:,.1f} tokens/s)",
        "  files      " + ", ".join(f for fs in r.files.values() for f in fs),
    ]
    if r.fidelity is not None and r.fidelity.overall is not None:
        lines.insert(3, "  fidelity   " + fidelity_text(r.fidelity))
    if r.fidelity is not None and (warning := restart_warning(r.fidelity, r.steps)):
        lines.insert(4, "  warning    " + warning)
    if r.cache is not None:
        lines.append("  cache      " + cache_text(r.cache))
    if r.rejected:
        lines.append(f"  journal    {r.rejected:,} damaged records set aside (.molspec/rejected.jsonl); "
                     "their samples were generated again")
    if r.errors:
        lines.append("  failures   " + "; ".join(r.errors[:3]) + (" ..." if len(r.errors) > 3 else ""))
    if r.done < r.target:
        lines.append("  rerun the same command to retry the missing samples")
    lines.append(f"  load it    datasets.load_dataset(\"{r.out}\")")
    return "\n".join(lines)


def cache_text(c: CacheInfo, meta: Path | None = None) -> str:
    """`58 steps from the cache, 150 generated (150 stored)`: a step here is one engine request; with `meta`
    (a .molspec/ folder), where the cache files are."""
    return f"{c.hits:,} steps from the cache, {c.misses:,} generated ({c.entries:,} stored" + \
        (f" in {_cache_files(meta)})" if meta else ")")


def _cache_files(meta: Path) -> str:
    files = [f"{meta / name}{end}" for name, end in ((CACHE_FILE, ""), (CACHE_DIR, "/")) if (meta / name).exists()]
    return " and ".join(files) or str(meta / CACHE_FILE)


def variants_summary(r: VariantsResult) -> str:
    """One line per variant built, then the shared cache, the pairing and how to load a variant."""
    width = max((len(n) for n in r.variants), default=0)
    lines = [f"built {len(r.variants)} variant{'s' * (len(r.variants) != 1)} of {r.spec} into {r.out}"]
    for name, v in r.variants.items():
        acc = "" if v.accuracy is None else f"; accuracy {100 * v.accuracy:.1f}%"
        steps = "; nothing left to do" if v.cache is None and not v.steps else \
            f"; {v.cache.hits:,} steps from the cache, {v.cache.misses:,} generated" if v.cache else ""
        lines.append(f"  {name:<{width}}  {v.done:,} of {v.target:,} done ({v.resumed:,} from an earlier run), "
                     f"{v.failed:,} failed, {v.kept:,} in the dataset{acc}{steps}; {v.wall_s:,.1f} s")
    if r.cache is not None:
        lines.append(f"  cache      {cache_text(r.cache, r.out / '.molspec')}")
    lines.append(f"  pairing    {r.pairing}")
    if r.errors:
        lines.append("  failures   " + "; ".join(r.errors[:3]) + (" ..." if len(r.errors) > 3 else ""))
    if r.done < r.target:
        lines.append("  rerun the same command to retry the missing samples")
    if r.variants:
        lines.append(f"  load it    datasets.load_dataset(\"{r.out}\", \"{next(iter(r.variants))}\")")
    return "\n".join(lines)


RESTART_SHARE = 0.1  # of a build's steps kept with a `restart` problem, past which the summary warns


def restart_warning(f: FidelityInfo, steps: int) -> str | None:
    """Why many steps start over where their lead stops, and what to do (None: few or none do)."""
    n = f.problems.get("restart", 0)
    if n < 3 or n < RESTART_SHARE * steps:
        return None
    return (f"{n:,} of {steps:,} steps start a new reply instead of carrying on their lead: the engine answered a "
            "new turn. On a server that cannot continue a started reply (OpenAI's API, most hosted ones) set "
            "options { continuation = \"prompt\" } on the model; a small model may still start over")


def fidelity_text(f: FidelityInfo) -> str:
    """`0.62 (explore 0.40, deep 0.70); 31 steps asked again (cue labeler)`."""
    bonds = ", ".join(f"{b} {v:.2f}" for b, v in f.per_bond.items())
    gate = f"{f.retries:,} steps asked again" if f.gate else "gate off"
    return f"{f.overall:.2f} of {f.labelled:,} steps read as their bond ({bonds}); {gate} ({f.labeler} labeler)"


class RayProgressLine:
    """Build progress with one entry per replica: redrawn in place on a terminal, every few seconds otherwise."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s = 0.5 if self.tty else every_s
        self.last = 0.0
        self.slots: list[ReplicaStatus] = []
        self.shown: tuple[int, int] | None = None  # the final counts, once printed

    def replicas(self, statuses: list[ReplicaStatus]) -> None:
        self.slots = statuses

    def __call__(self, p: Progress, total: int) -> None:
        now = time.perf_counter()
        finished = min(p.done + p.failed, total)
        if (now - self.last < self.every_s and finished < total) or self.shown == (finished, total):
            return
        self.last, self.shown = now, (finished, total) if finished == total else None
        elapsed = max(now - p.started, 1e-9)
        head = progress_text(p, total, now)
        if self.tty:
            parts = [f"r{s.slot} {s.progress.done:,} {s.progress.steps / elapsed:,.0f}/s" for s in self.slots]
            self.stream.write("\r\x1b[2K" + head + ("  │ " + "  ".join(parts) if parts else ""))
        else:
            lines = [head] + [self._line(s, elapsed) for s in self.slots]
            self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()

    def _line(self, s: ReplicaStatus, elapsed: float) -> str:
        pr = s.progress
        return (f"  replica {s.slot} [{s.node} pid {s.pid}] {s.state}: samples {pr.done:,} ({pr.failed:,} failed)  "
                f"steps {pr.steps / elapsed:,.1f}/s  tokens {pr.tokens / elapsed:,.1f}/s  restarts {s.attempt}")

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
