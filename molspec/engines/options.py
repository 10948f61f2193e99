"""Engine options as pydantic models: one per engine, validated before anything starts.

The options come from a spec's model block (``options { ... }``) or the API. A wrong type or an
unknown name (for engines that know all their options) becomes an `EngineError` that names the
engine, the option, what it must be and what it got. Engines that hand the rest of their options to a
library (transformers' `from_pretrained`, `vllm.LLM`) type the options molspec reads and let the rest
through; the echo engine accepts anything, so that `--engine echo` previews any spec.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from molspec.engines.base import EngineError

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"


def _integral(value: Any) -> Any:
    """Accept 4.0 where an integer is wanted (spec numbers may be written as floats); bool stays refused."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Int = Annotated[int, BeforeValidator(_integral)]


class EngineOptions(BaseModel):
    """Base of every engine's options: immutable and strict (no "5" for 5, no 1 for true)."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    def given(self) -> dict[str, Any]:
        """The options as the user gave them (validated), without the defaults they did not set."""
        return self.model_dump(exclude_unset=True)


class EchoOptions(EngineOptions):
    """The echo engine reads no option and accepts any, so a spec written for vLLM previews as is."""

    model_config = ConfigDict(extra="allow")


class TransformersOptions(EngineOptions):
    """Options molspec reads; any other option goes to `from_pretrained` (revision, trust_remote_code...)."""

    model_config = ConfigDict(extra="allow")

    device: str | None = Field(None, description="torch device; default cuda when available, else cpu")
    dtype: str | None = Field(None, description="float32, bfloat16, float16 or auto; default float32 on CPU")
    batch_size: Int = Field(16, ge=1, description="requests per `generate` call")
    max_model_len: Int | None = Field(None, ge=1, description="context length; default the model's own")


class VllmOptions(EngineOptions):
    """Options typed here so mistakes fail before vLLM starts; every option goes to `vllm.LLM`."""

    model_config = ConfigDict(extra="allow")

    max_model_len: Int | None = Field(None, ge=1, description="context length")
    kv_cache_memory_bytes: Int | None = Field(None, ge=1, description="KV cache size (CPU default 1 GiB)")
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1, description="share of memory vLLM may use")
    tensor_parallel_size: Int | None = Field(None, ge=1, description="GPUs per model")
    dtype: str | None = Field(None, description="weights dtype (CPU default float32)")


class OpenAIOptions(EngineOptions):
    """An OpenAI-compatible server: where it is, how hard to push it, how to retry (see engines/openai.py)."""

    base_urls: tuple[str, ...] = Field(description="server URLs, used round-robin (option base_url: one URL)")
    api_key_env: str = Field("OPENAI_API_KEY", min_length=1, description="variable holding the API key")
    concurrency: Int = Field(32, ge=1, description="requests in flight at most")
    max_retries: Int = Field(5, ge=0, description="retries of one request after its first try")
    backoff_s: float = Field(0.5, ge=0, description="first retry delay")
    max_backoff_s: float = Field(60.0, ge=0, description="cap on any retry delay")
    timeout_s: float = Field(600.0, ge=0.001, description="read timeout of one request")
    connect_timeout_s: float = Field(10.0, ge=0.001, description="connect timeout")
    cooldown_s: float = Field(10.0, ge=0, description="how long a URL that refused a connection is skipped")
    check_model: bool = Field(True, description="check at start that the servers serve the model")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="extra JSON fields for every request")
    continuation: Literal["fields", "prompt"] = Field(
        "fields", description="how a started reply (a lead) is continued: 'fields' sends continue_final_message "
        "(vLLM, SGLang; llama.cpp continues by itself), 'prompt' asks in words, for servers that answer anew")

    @model_validator(mode="before")
    @classmethod
    def _one_url_option(cls, data: Any) -> Any:
        """`base_url` or `base_urls` (not both), else $OPENAI_BASE_URL, else the local vLLM default."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if "base_url" in data and "base_urls" in data:
            raise ValueError("give either option 'base_url' or 'base_urls', not both")
        raw = data.pop("base_urls", data.pop("base_url", None))
        if raw is None:
            raw = os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        urls = [raw] if isinstance(raw, str) else raw
        if not isinstance(urls, (list, tuple)) or not urls or not all(isinstance(u, str) and u for u in urls):
            raise ValueError(f"option 'base_urls' must be a non-empty list of URLs, got {raw!r}")
        data["base_urls"] = tuple(u.rstrip("/") for u in urls)
        return data


def parse_options(engine: str, model: type[EngineOptions], options: Mapping[str, Any]) -> Any:
    """Validate `options` for `engine`; raise an `EngineError` that names each bad option.

    Raises:
        EngineError: an unknown option (for engines that know all theirs) or a wrong value.
    """
    try:
        return model.model_validate(dict(options))
    except ValidationError as err:
        raise EngineError(options_message(engine, model, err)) from None


def options_message(engine: str, model: type[EngineOptions], err: ValidationError) -> str:
    """One line per problem, unknown names first (with the known ones), then wrong values."""
    errors = err.errors(include_url=False)
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    lines = []
    if unknown:
        known = ", ".join(sorted({"base_url", *model.model_fields} if model is OpenAIOptions else model.model_fields))
        lines.append(f"unknown option(s) {', '.join(unknown)}; known: {known}")
    lines += [_value_problem(e) for e in errors if e["type"] != "extra_forbidden"]
    return f"{engine} engine: " + "; ".join(lines)


_MUST_BE = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
    "string_type": "a string", "dict_type": "a table", "tuple_type": "a list", "list_type": "a list",
}


def _value_problem(e: ErrorDetails) -> str:
    name = ".".join(str(part) for part in e["loc"]) or "options"
    ctx = e.get("ctx") or {}
    if e["type"] in _MUST_BE:
        return f"option '{name}' must be {_MUST_BE[e['type']]}, got {e['input']!r}"
    for kind, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if kind in ctx:
            return f"option '{name}' must be {sign} {ctx[kind]}, got {e['input']!r}"
    if e["type"] == "value_error":
        return str(ctx.get("error", e["msg"]))
    return f"option '{name}': {e['msg'].lower()}, got {e['input']!r}"
