"""Argument types shared by the command-line front ends (`molspec.cli` and the stages' own `cli` modules).

A module of its own so that a stage's CLI can use them without importing `molspec.cli`, which nothing may.
"""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An argparse `type=` for counts: a whole number of at least 1 (a usage error, exit 2, otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value
