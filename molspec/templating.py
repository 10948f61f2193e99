"""The one Jinja environment molspec renders prompts with: sandboxed, strict about undefined names.

A spec from a stranger must not be able to run code: the sandbox blocks attribute access to
internals (`__class__`, `mro`, ...), and StrictUndefined turns a misspelt variable into an error
instead of an empty string in the prompt.
"""

from __future__ import annotations

import functools

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import ImmutableSandboxedEnvironment


@functools.cache
def environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                         keep_trailing_newline=False, trim_blocks=True, lstrip_blocks=True)


@functools.lru_cache(maxsize=256)
def compile_template(source: str) -> Template:
    """Compile once per distinct source (the runtime renders the same few templates millions of times)."""
    return environment().from_string(source)
