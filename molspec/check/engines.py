"""Checks of how a spec meets its engine: started replies (a `reply` template, bond leads) on a server known not
to continue one."""

from __future__ import annotations

from urllib.parse import urlparse

from pydantic import ValidationError

from molspec.diagnostics import Diagnostic, Label, Severity
from molspec.engines.options import OpenAIOptions
from molspec.spec import ModelSpec, Spec

# Servers that answer a new turn after a final assistant message instead of continuing it (OpenAI's chat API
# has no prefill). Others may too; the build's `restart` check finds them from what they write.
NO_PREFILL_HOSTS = frozenset({"api.openai.com"})


def check_engines(spec: Spec) -> list[Diagnostic]:
    starts_replies = spec.templates.reply is not None or any(b.lead is not None for b in spec.bonds.values())
    if not starts_replies:
        return []
    return [_no_prefill(m, host) for m in spec.models.values() if (host := _no_prefill_host(m)) is not None]


def _no_prefill_host(model: ModelSpec) -> str | None:
    """The first of the model's servers that cannot continue a started reply, unless it is asked in words. The
    options are read as the engine reads them (`OpenAIOptions`: base_url or base_urls, else $OPENAI_BASE_URL)."""
    if model.engine != "openai":
        return None
    try:
        options = OpenAIOptions.model_validate(model.options)
    except ValidationError:
        return None  # MOL122 already says what is wrong with them
    if options.continuation == "prompt":
        return None
    hosts = (urlparse(url).hostname for url in options.base_urls)
    return next((h for h in hosts if h in NO_PREFILL_HOSTS), None)


def _no_prefill(model: ModelSpec, host: str) -> Diagnostic:
    assert model.span is not None
    return Diagnostic(
        "MOL123", f"model '{model.name}' is served by {host}, which does not continue a started reply",
        Label(model.span, "its steps would start a new reply after each lead"), severity=Severity.WARNING,
        help='set `options { continuation = "prompt" }` in this model block: the started reply is then asked for '
             "in words (docs/language.md, \"Started replies and leads\")")
