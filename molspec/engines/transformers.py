"""The transformers engine: batched `generate` on CPU or any torch device, the portable fallback.

Requests of one batch may differ in temperature, top_p, seed, max_tokens and stop strings, so one
`generate` call serves them all: a logits processor samples each row with its own seeded
`torch.Generator` (then greedy decoding keeps that choice), and a stopping criterion ends each row
at its own budget or stop string and records why it ended. Rows are left-padded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from molspec.engines.base import Completion, EngineError, FinishReason, Request, SamplingParams
from molspec.engines.builtin import resolve_model
from molspec.engines.common import closed_error, cut_at_stop, describe, fit_prompt, seed_of
from molspec.engines.options import TransformersOptions, parse_options

MISSING_TRANSFORMERS = "the transformers engine needs torch and transformers: pip install 'molspec[transformers]'"
# options molspec reads itself (TransformersOptions); everything else goes to `from_pretrained`
OWN_OPTIONS = tuple(TransformersOptions.model_fields)
# of the rest, those that also concern the tokenizer (model-only kwargs would confuse it)
TOKENIZER_OPTIONS = ("revision", "trust_remote_code", "token", "cache_dir", "local_files_only")


def create(*, model: str | None, options: Mapping[str, Any], seed: int) -> TransformersEngine:
    """Load `model` (Hub id, local folder, or built-in alias) with transformers.

    Options (`TransformersOptions`): `device` (default cuda when available, else cpu), `dtype`
    (default float32 on CPU, the checkpoint's own elsewhere), `batch_size` (default 16),
    `max_model_len` (default the model's max_position_embeddings); the rest go to `from_pretrained`.

    Raises:
        EngineError: bad options, transformers missing, model not found, or loading failed.
    """
    opts: TransformersOptions = parse_options("transformers", TransformersOptions, options)
    try:
        import torch
        import transformers  # noqa: F401  (fail here, with the extra's name, if it is missing)
    except ImportError as exc:
        raise EngineError(MISSING_TRANSFORMERS) from exc
    path = resolve_model(model)
    device = opts.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = _dtype(opts.dtype, device)
    extra = {k: v for k, v in opts.given().items() if k not in OWN_OPTIONS}
    try:
        tokenizer, lm = _load(path, device, dtype, extra)
    except Exception as exc:
        raise EngineError(f"transformers could not load {model or path}: {type(exc).__name__}: {exc}") from exc
    settings = _Settings(
        device=device,
        batch_size=opts.batch_size,
        max_model_len=opts.max_model_len or _max_positions(lm),
        seed=seed,
    )
    return TransformersEngine(lm, tokenizer, settings, model=model or path, options=opts.given())


def _load(path: str, device: str, dtype: Any, extra: dict[str, Any]) -> tuple[Any, Any]:
    """Tokenizer and model in eval mode on `device`; `extra` are from_pretrained kwargs."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, **{k: v for k, v in extra.items() if k in TOKENIZER_OPTIONS})
    lm: Any = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **extra)
    return tokenizer, lm.to(device).eval()


@dataclass(frozen=True)
class _Settings:
    device: str
    batch_size: int
    max_model_len: int
    seed: int


@dataclass
class _Row:
    """One request ready to run: prompt ids, token budget, and its own sampling state."""

    index: int
    key: str
    prompt_ids: list[int]
    budget: int
    params: SamplingParams
    seed: int


class TransformersEngine:
    """An `Engine` over a transformers causal LM."""

    name = "transformers"

    def __init__(self, lm: Any, tokenizer: Any, settings: _Settings, *, model: str, options: dict[str, Any]) -> None:
        self._lm: Any | None = lm
        self._tokenizer = tokenizer
        self._settings = settings
        self._model = model
        self._options = options
        self._pad_id = _pad_id(tokenizer)
        self._eos_ids = _eos_ids(lm, tokenizer)

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        """Run the batch in chunks of `batch_size`, shortest prompts together to limit padding."""
        if self._lm is None:
            raise closed_error(self.name)
        results: dict[int, Completion] = {}
        rows: list[_Row] = []
        for index, request in enumerate(requests):
            prepared = self._prepare(index, request)
            if isinstance(prepared, Completion):
                results[index] = prepared
            else:
                rows.append(prepared)
        rows.sort(key=lambda row: len(row.prompt_ids))
        size = self._settings.batch_size
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            for row, completion in zip(chunk, self._run(chunk), strict=True):
                results[row.index] = completion
        return [results[i] for i in range(len(requests))]

    def describe(self) -> dict[str, Any]:
        """Engine name, model as the spec named it, and the spec's engine options."""
        import transformers

        return describe(self.name, self._model, self._options, version=str(transformers.__version__))

    def close(self) -> None:
        """Drop the model (and free accelerator memory); safe to call twice."""
        if self._lm is None:
            return
        self._lm = None
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _prepare(self, index: int, request: Request) -> _Row | Completion:
        fitted = fit_prompt(request, self._tokenizer, self._settings.max_model_len)
        if isinstance(fitted, Completion):
            return fitted
        seed = seed_of(request, self._settings.seed)
        return _Row(index, request.key, fitted.prompt_ids, fitted.budget, request.params, seed)

    def _run(self, rows: list[_Row]) -> list[Completion]:
        import torch

        lm = self._lm
        if lm is None:
            raise closed_error(self.name)
        input_ids, attention = self._pad(rows)
        tracker = _RowStops(rows, self._tokenizer, self._eos_ids, width=input_ids.shape[1])
        want = max(row.params.logprobs for row in rows)  # raw first-step logits, same forward pass
        try:
            with torch.no_grad():
                output = lm.generate(
                    input_ids=input_ids,
                    attention_mask=attention,
                    generation_config=self._generation_config(max(row.budget for row in rows), logits=want > 0),
                    logits_processor=[_RowSampler(rows, self._settings.device)],
                    stopping_criteria=[tracker],
                )
        except (RuntimeError, MemoryError) as exc:
            raise EngineError(
                f"transformers failed on a batch of {len(rows)}: {type(exc).__name__}: {exc}. If memory "
                "ran out, lower batch_size (default 16) or max_tokens in the model's options { }."
            ) from exc
        tops = self._first_logprobs(output.logits[0], rows, want) if want else [()] * len(rows)
        sequences = output.sequences if want else output
        generated = sequences[:, input_ids.shape[1] :].tolist()
        return [
            replace(self._completion(row, ids, tracker, i), top_logprobs=tops[i])
            for i, (row, ids) in enumerate(zip(rows, generated, strict=True))
        ]

    def _first_logprobs(self, logits: Any, rows: list[_Row], want: int) -> list[tuple[tuple[str, float], ...]]:
        """Each row's `params.logprobs` most likely first tokens, from the unprocessed logits."""
        values, ids = logits.float().log_softmax(dim=-1).topk(want, dim=-1)
        out: list[tuple[tuple[str, float], ...]] = []
        for row, vs, ts in zip(rows, values.tolist(), ids.tolist(), strict=True):
            n = row.params.logprobs
            out.append(tuple((self._tokenizer.decode([t]), float(v)) for t, v in zip(ts[:n], vs[:n], strict=True)))
        return out

    def _pad(self, rows: list[_Row]) -> tuple[Any, Any]:
        """Left-pad prompts (decoder-only models continue from the right end)."""
        import torch

        width = max(len(row.prompt_ids) for row in rows)
        ids = [[self._pad_id] * (width - len(r.prompt_ids)) + r.prompt_ids for r in rows]
        mask = [[0] * (width - len(r.prompt_ids)) + [1] * len(r.prompt_ids) for r in rows]
        device = self._settings.device
        return torch.tensor(ids, device=device), torch.tensor(mask, device=device)

    def _generation_config(self, max_new_tokens: int, logits: bool = False) -> Any:
        from transformers import GenerationConfig

        # Greedy on purpose: _RowSampler has already sampled rows that asked for sampling.
        return GenerationConfig(  # type: ignore[no-untyped-call]
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=self._eos_ids or None,
            pad_token_id=self._pad_id,
            output_logits=logits,
            return_dict_in_generate=logits,
        )

    def _completion(self, row: _Row, ids: list[int], tracker: _RowStops, i: int) -> Completion:
        n_tokens, reason = tracker.finished.get(i, (len(ids), "length"))
        text = self._tokenizer.decode(ids[:n_tokens], skip_special_tokens=True)
        text, cut = cut_at_stop(text, row.params.stop)
        if cut:
            reason = "stop"
        return Completion(
            key=row.key, text=text, n_tokens=n_tokens, finish_reason=reason, prompt_tokens=len(row.prompt_ids)
        )


class _RowSampler:
    """A logits processor that samples each row with its own generator, temperature and top_p.

    It returns scores where only the sampled token is finite, so the greedy step picks it. Rows
    with temperature 0 keep their scores (plain greedy).
    """

    def __init__(self, rows: list[_Row], device: str) -> None:
        import torch

        self._rows = rows
        self._generators = [torch.Generator(device=device).manual_seed(row.seed) for row in rows]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        out = scores.clone()
        for i, row in enumerate(self._rows):
            if row.params.temperature <= 0:
                continue
            probs = _nucleus(torch.softmax(scores[i] / row.params.temperature, dim=-1), row.params.top_p)
            choice = torch.multinomial(probs, 1, generator=self._generators[i])
            out[i].fill_(float("-inf"))
            out[i, choice] = 0.0
        return out


class _RowStops:
    """A stopping criterion that ends each row at EOS, a stop string, or its own token budget.

    It records, per row, how many tokens it generated and why it ended (`finished`), which
    `generate`'s padded output cannot tell when the pad token is also the EOS token.
    """

    def __init__(self, rows: list[_Row], tokenizer: Any, eos_ids: list[int], *, width: int) -> None:
        self._rows = rows
        self._tokenizer = tokenizer
        self._eos = set(eos_ids)
        self._width = width
        self.finished: dict[int, tuple[int, FinishReason]] = {}

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        steps = input_ids.shape[1] - self._width
        for i, row in enumerate(self._rows):
            if i not in self.finished:
                reason = self._reason(row, input_ids[i, self._width :].tolist(), steps)
                if reason is not None:
                    self.finished[i] = (steps, reason)
        done = [i in self.finished for i in range(len(self._rows))]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def _reason(self, row: _Row, generated: list[int], steps: int) -> FinishReason | None:
        if generated and generated[-1] in self._eos:
            return "stop"
        if row.params.stop and self._tail_has_stop(generated, row.params.stop):
            return "stop"
        return "length" if steps >= row.budget else None

    def _tail_has_stop(self, generated: list[int], stop: tuple[str, ...]) -> bool:
        # A stop string that just completed lies in the last few tokens; byte-level tokens can be
        # shorter than a character, hence the margin.
        window = 2 * max(len(s) for s in stop) + 4
        tail = self._tokenizer.decode(generated[-window:], skip_special_tokens=True)
        return any(s in tail for s in stop)


def _nucleus(probs: Any, top_p: float) -> Any:
    """Zero the tail of `probs` outside the smallest set whose mass reaches top_p."""
    if top_p >= 1.0:
        return probs
    import torch

    sorted_probs, order = torch.sort(probs, descending=True)
    outside = torch.cumsum(sorted_probs, dim=-1) - sorted_probs >= top_p  # keeps at least one token
    sorted_probs[outside] = 0.0
    return torch.zeros_like(probs).scatter(-1, order, sorted_probs)


def _dtype(name: Any, device: str) -> Any:
    import torch

    if name is None:
        # float32 on CPU: bf16 matmuls are several times slower without AVX-512 bf16.
        return torch.float32 if device == "cpu" else "auto"
    if name == "auto":
        return "auto"
    value = getattr(torch, str(name), None)
    if not isinstance(value, torch.dtype):
        raise EngineError(f"unknown dtype '{name}' in the model's options; use float32, bfloat16 or float16")
    return value


def _max_positions(lm: Any) -> int:
    return int(getattr(lm.config, "max_position_embeddings", None) or 1 << 30)


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad if pad is not None else 0)


def _eos_ids(lm: Any, tokenizer: Any) -> list[int]:
    """End-of-turn ids from the generation config (chat models often list several), else the tokenizer."""
    configured = getattr(getattr(lm, "generation_config", None), "eos_token_id", None)
    if configured is None:
        configured = tokenizer.eos_token_id
    if configured is None:
        return []
    return [int(x) for x in (configured if isinstance(configured, list) else [configured])]
