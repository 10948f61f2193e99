"""What a build shows while it runs (progress) and when it ends (summary)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from molspec.runtime.build import BuildResult
from molspec.runtime.scheduler import Progress


class ProgressLine:
    """A one-line progress display: redrawn in place on a terminal, a line every few seconds otherwise."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s = 0.2 if self.tty else every_s
        self.last = 0.0

    def __call__(self, p: Progress, total: int) -> None:
        now = time.perf_counter()
        if now - self.last < self.every_s and p.done + p.failed < total:
            return
        self.last = now
        elapsed = max(now - p.started, 1e-9)
        finished = p.done + p.failed
        rate = finished / elapsed
        eta = (total - finished) / rate if rate > 0 else float("nan")
        line = (f"samples {finished:,}/{total:,} ({p.failed:,} failed)  steps {p.steps:,} "
                f"({p.steps / elapsed:,.1f}/s)  tokens {p.tokens:,} ({p.tokens / elapsed:,.1f}/s)  "
                f"ETA {_duration(eta)}")
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def _duration(s: float) -> str:
    if s != s or s == float("inf"):
        return "?"
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def summary(r: BuildResult) -> str:
    acc = "n/a (no gold answers)" if r.accuracy is None else f"{100 * r.accuracy:.1f}%"
    lines = [
        f"built {r.out}",
        f"  samples    {r.done:,} done of {r.target:,} targeted ({r.planned:,} planned); "
        f"{r.resumed:,} from an earlier run; {r.failed:,} failed; {r.kept:,} in the dataset",
        f"  accuracy   {acc}",
        f"  generated  {r.steps:,} steps, {r.tokens:,} tokens in {r.wall_s:,.1f} s ({r.tokens_per_s:,.1f} tokens/s)",
        "  files      " + ", ".join(f for fs in r.files.values() for f in fs),
    ]
    if r.errors:
        lines.append("  failures   " + "; ".join(r.errors[:3]) + (" ..." if len(r.errors) > 3 else ""))
    if r.done < r.target:
        lines.append("  rerun the same command to retry the missing samples")
    lines.append(f"  load it    datasets.load_dataset(\"{r.out}\")")
    return "\n".join(lines)
