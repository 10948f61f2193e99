"""Checks of the dataset block: isomer mixing, and a model to build with."""

from __future__ import annotations

from molspec.diagnostics import Diagnostic, Label, Severity
from molspec.spec import Spec

MIXING_HELP = ("the paper behind Mole-Syn found that mixing two teachers' structures in one training "
               "set destabilises learning; build one split per graph, or set `allow_mixing = true`")


def check_dataset(spec: Spec) -> list[Diagnostic]:
    d = spec.dataset
    if d is None:
        return []
    out: list[Diagnostic] = []
    for split in d.splits:
        assert split.span is not None
        if len(split.graphs) > 1 and not split.allow_mixing:
            out.append(Diagnostic("MOL601", f"split '{split.name}' mixes {len(split.graphs)} graphs "
                                  f"({', '.join(split.graphs)})", Label(split.span, "isomer mixing"),
                                  help=MIXING_HELP))
        elif len(split.graphs) > 1:
            out.append(Diagnostic("MOL607", f"split '{split.name}' mixes graphs {', '.join(split.graphs)} "
                                  "(allowed by allow_mixing)", Label(split.span), severity=Severity.NOTE,
                                  help="run `molspec compare` on the graphs: r >= 0.9 is compatible"))
    return out
