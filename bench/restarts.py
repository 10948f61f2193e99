"""How often the `restart` check fires: steps whose words start a new reply where their lead stops mid-sentence.

With no arguments it reads every stored SmolLM2 lead build (the `smollm2-fidelity-bench` fixture walks; the
fixtures keep each step's text, so the quickstart's leads are found by their words); with build folders as
arguments it reads their rows (each step records its lead). A model that continues its reply should almost
never restart; a server that answers a new turn instead restarts on nearly every step.

    .venv/bin/python bench/restarts.py                      # the stored builds
    .venv/bin/python bench/restarts.py out/quickstart ...   # builds of your own
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fidelity_hand import QUICKSTART_LEADS, walks  # noqa: E402  (bench/, the script's folder)

from molspec.records import read_manifest  # noqa: E402
from molspec.runtime.hygiene import restarts  # noqa: E402
from molspec.structure.rows import read_rows  # noqa: E402

FIXTURE = "smollm2-fidelity-bench"
# the explore leads tried at seed 13, then the quickstart's (listed first: of alternatives that match, the first wins)
METHOD_LEADS = ("A different method would be to set up an equation where|"
                "Another way to approach this problem would be to work backwards from")
LEAD = re.compile(rf"^({METHOD_LEADS}|{QUICKSTART_LEADS})", re.S)


def stored() -> dict[str, list[tuple[str, str]]]:
    """Build name -> (lead, the words after it) of every stored lead-build step."""
    out: dict[str, list[tuple[str, str]]] = {}
    for w in walks(FIXTURE):
        thinking = str(w["thinking"])
        for a, b in w["step_spans"]:  # type: ignore[attr-defined]
            text = thinking[int(a):int(b)]
            if (m := LEAD.match(text)) and text[m.end():].strip():
                out.setdefault(str(w["id"]).rsplit("/", 1)[-1].rsplit("-", 1)[0], []).append((m[0], text[m.end():]))
    return out


def built(folder: Path) -> list[tuple[str, str]]:
    rows = read_rows(folder, read_manifest(folder))
    return [(s.lead, s.text[len(s.lead):]) for r in rows for s in r.steps
            if s.lead and s.text.startswith(s.lead) and s.text[len(s.lead):].strip()]


def main(args: list[str]) -> None:
    builds = {a: built(Path(a)) for a in args} if args else stored()
    total: Counter[str] = Counter()
    for name, steps in builds.items():
        hits = [lead + words for lead, words in steps if restarts(lead, words)]
        total["steps"] += len(steps)
        total["restarts"] += len(hits)
        if hits or args:
            print(f"{name}: {len(hits)} of {len(steps)}" + "".join(f"\n    {h[:110]!r}" for h in hits[:3]))
    print(f"all: {total['restarts']} of {total['steps']} steps restart ({len(builds)} builds)")


if __name__ == "__main__":
    main(sys.argv[1:])
