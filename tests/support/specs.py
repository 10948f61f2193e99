"""The four-bond vocabulary and graph that the runtime and publishing tests build from."""

from __future__ import annotations

BONDS = """\
bond explore : vdw "Self-exploration" { instruct = "Explore another way." }
bond deep : covalent "Deep reasoning" { instruct = "Go one step deeper."  max_tokens = 60 }
bond reflect : hydrogen "Self-reflection" { instruct = "Check an earlier step." }
bond normal : plain "Normal operation" { instruct = "Do the next routine step." }
"""


def graph(steps: str, name: str = "g") -> str:
    """A graph over BONDS that starts in exploration, with `steps = <steps>`."""
    return f"""\
graph {name} {{
  start   -> explore 1.0
  explore -> deep 0.5 | normal 0.3 | reflect 0.2
  deep    -> deep 0.4 | reflect 0.3 | normal 0.2 | explore 0.1
  reflect -> deep 0.5 | normal 0.3 | explore 0.2
  normal  -> deep 0.6 | reflect 0.2 | explore 0.2
  steps = {steps}
}}
"""
