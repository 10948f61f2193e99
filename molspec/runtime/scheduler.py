"""The wavefront scheduler: every live sample's next step goes to the engine in one batch.

A window of samples is in flight; each round sends one request per live sample (its next bond step,
or its answer once the walk is done), and samples that finish are replaced from the queue at once, so
the engine always sees a full batch. Consecutive steps of a sample share their prompt prefix, which
the engine's prefix cache turns into saved compute.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from molspec.diagnostics import MolspecError
from molspec.engines.base import Completion, Engine, EngineError, Request, SamplingParams, StreamingEngine, starts_reply
from molspec.engines.common import request_seed
from molspec.records import Failure, Message, Row, Step
from molspec.runtime.fidelity import (
    CONTEXT_STEPS,
    Attempt,
    StepTrial,
    checked,
    fidelity,
    label_last,
    labelled,
    led,
    prompt_words,
    restated_prompt,
)
from molspec.runtime.hygiene import frame_of
from molspec.runtime.partners import partner
from molspec.runtime.prompts import (
    StepPrompt,
    StepText,
    WalkContext,
    answer_messages,
    sft_messages,
    step_prompt,
    thinking,
)
from molspec.runtime.runconfig import Job, Progress, RunConfig
from molspec.runtime.verify import verify
from molspec.spec import Spec
from molspec.structure.label import NextLabel, StepLabeler


@dataclass
class _Live:
    job: Job
    walk: WalkContext
    steps: list[StepText] = field(default_factory=list)
    records: list[Step] = field(default_factory=list)
    trial: StepTrial = field(default_factory=StepTrial)  # attempts at the current step
    frame: str = ""  # the current step's prompt without the question and the earlier steps
    partner: int | None = None
    grams: list[frozenset[tuple[str, ...]]] = field(default_factory=list)  # each kept step's word 3-grams
    asked: StepPrompt = StepPrompt(())  # the current step's rendered prompt (a retry restates its user turn)
    read: object = None  # what a step labeler has read of the kept steps (`label.StepLabeler`), once it labels


def run(spec: Spec, engine: Engine, jobs: Iterator[Job], cfg: RunConfig,
        emit: Callable[[list[Row | Failure]], None], progress: Progress | None = None,
        on_round: Callable[[Progress], None] | None = None) -> Progress:
    """Generate every job; `emit` receives finished rows (successes and failures) as they complete."""
    prog = progress or Progress()
    with _older_rounds_frozen() as freeze:
        if isinstance(engine, StreamingEngine):
            return _stream(spec, engine, jobs, cfg, emit, prog, _then(freeze, on_round))
        return _rounds(spec, engine, jobs, cfg, emit, prog, _then(freeze, on_round))


@contextmanager
def _older_rounds_frozen() -> Iterator[Callable[[], None]]:
    """A `freeze` to call after each round: the cyclic GC then skips what earlier rounds made.

    Thousands of walks in flight hold hundreds of thousands of small objects (steps, their n-grams, records),
    and each full collection walked them all again: a third of an echo build's generation time. Frozen
    objects are still freed by reference counting; `gc.unfreeze` at the end hands them back to the collector.
    Nothing is frozen when the process had frozen objects of its own (it then owns freezing)."""
    if gc.get_freeze_count():
        yield lambda: None
        return
    try:
        yield gc.freeze  # O(1): it moves the collector's generation lists
    finally:
        gc.unfreeze()


def _then(first: Callable[[], None], on_round: Callable[[Progress], None] | None) -> Callable[[Progress], None]:
    def both(prog: Progress) -> None:
        first()
        if on_round is not None:
            on_round(prog)

    return both


def _rounds(spec: Spec, engine: Engine, jobs: Iterator[Job], cfg: RunConfig,
            emit: Callable[[list[Row | Failure]], None], prog: Progress,
            on_round: Callable[[Progress], None] | None) -> Progress:
    """Batch-synchronous wavefront: one engine call per round over every live sample."""
    live: list[_Live] = []
    exhausted = False
    while live or not exhausted:
        if not exhausted:
            admitted, exhausted = _admit(jobs, cfg.window - len(live))
            live += admitted
        if not live:
            break
        finished: list[Row | Failure] = []
        asking: list[_Live] = []
        requests: list[Request] = []
        for s in live:
            req = _next_request(spec, s, cfg, prog)
            if isinstance(req, Failure):
                finished.append(req)
            else:
                asking.append(s)
                requests.append(req)
        completions = engine.generate(requests) if requests else []
        prog.requests += len(requests)
        still: list[_Live] = []
        for s, row in zip(asking, _settle(spec, list(zip(asking, completions, strict=True)), cfg, prog), strict=True):
            if row is None:
                still.append(s)
            else:
                finished.append(row)
        live = still
        if finished:
            emit(finished)
        if on_round is not None:
            on_round(prog)
    return prog


FLUSH_S = 0.5  # streaming: finished rows are journalled at least this often (a kill loses no more)


def _stream(spec: Spec, engine: StreamingEngine, jobs: Iterator[Job], cfg: RunConfig,
            emit: Callable[[list[Row | Failure]], None], prog: Progress,
            on_round: Callable[[Progress], None] | None) -> Progress:
    """Continuous batching: a sample's next step is queued the moment its previous step returns."""
    live: dict[str, _Live] = {}
    exhausted = False
    pending: list[Row | Failure] = []
    last_flush = time.perf_counter()
    while True:
        fresh: list[Request] = []
        if not exhausted:
            admitted, exhausted = _admit(jobs, cfg.window - len(live))
            fresh = [r for s in admitted if (r := _track(live, s, _next_request(spec, s, cfg, prog), pending))]
        if fresh:
            engine.submit(fresh)
        if not live:
            break
        completions = engine.poll()
        if not completions:
            raise EngineError(f"the engine stopped with {len(live)} requests unanswered")
        follow: list[Request] = []
        answered = [(live.pop(c.key), c) for c in completions]
        prog.requests += len(answered)
        for (s, _c), row in zip(answered, _settle(spec, answered, cfg, prog), strict=True):
            if row is None:
                if req := _track(live, s, _next_request(spec, s, cfg, prog), pending):
                    follow.append(req)
            else:
                pending.append(row)
        if follow:
            engine.submit(follow)
        now = time.perf_counter()
        if pending and (now - last_flush >= FLUSH_S or not live):
            emit(pending)
            pending, last_flush = [], now
        if on_round is not None:
            on_round(prog)
    if pending:
        emit(pending)
    return prog


def _admit(jobs: Iterator[Job], room: int) -> tuple[list[_Live], bool]:
    """Up to `room` new samples from the queue, and whether the queue is now exhausted."""
    out: list[_Live] = []
    while len(out) < room:
        job = next(jobs, None)
        if job is None:
            return out, True
        out.append(_Live(job, WalkContext(job.question.question, job.bonds, job.index, job.split, job.graph)))
    return out, False


def _track(live: dict[str, _Live], s: _Live, req: Request | Failure, failed: list[Row | Failure]) -> Request | None:
    """Register a request as in flight; a sample whose prompt could not be made is finished as failed."""
    if isinstance(req, Failure):
        failed.append(req)
        return None
    live[req.key] = s
    return req


def _next_request(spec: Spec, s: _Live, cfg: RunConfig, prog: Progress) -> Request | Failure:
    """The sample's next request, or its Failure when a template cannot render (only that sample fails)."""
    try:
        return _request(spec, s, cfg)
    except MolspecError as err:
        prog.failed += 1
        return _failure(s.job, f"{_where(s.job, len(s.steps))}: {err.short()}")


def _request(spec: Spec, s: _Live, cfg: RunConfig) -> Request:
    step, attempt = len(s.steps), len(s.trial.attempts)
    if step < len(s.job.bonds):
        bond = spec.bonds[s.job.bonds[step]]
        if not attempt:  # a retry's prompt is the first attempt's (same steps, bond and partner), restated
            s.partner = None
            if bond.kind == "hydrogen":  # the walk's kinds and texts are needed only to pick a reflection's partner
                s.partner = partner([spec.bonds[b].kind for b in s.job.bonds], [t.text for t in s.steps], step)
            s.asked = step_prompt(spec, s.walk, s.steps, bond, s.partner)
        msgs = s.asked.messages
        if attempt:
            msgs = restated_prompt(msgs, bond, s.trial.attempts[-1].problems)
        # The frame is the prompt as sent: a retry's restated hints are words the step must not echo either.
        s.frame = frame_of(prompt_words(msgs, s.asked.lead), s.job.question.question, [t.text for t in s.steps])
        max_tokens, temperature, top_p = cfg.sampling(bond.sampling)
        if attempt and temperature > 0:  # a retry is a new candidate, not the same step at a new seed; greedy
            temperature = max(temperature, cfg.gate.retry_temperature)  # stays greedy (the user chose repeatable)
        meta = {"sample": s.job.index, "step": step, "bond": bond.name, "kind": bond.kind, "attempt": attempt}
    else:
        msgs = answer_messages(spec, s.walk, s.steps)
        max_tokens, temperature, top_p = cfg.sampling(spec.answer.sampling)
        meta = {"sample": s.job.index, "step": step, "bond": "answer", "kind": "answer"}
    retry = (attempt,) if attempt else ()  # a first attempt keeps the seed it has always had
    # A continued reply is one paragraph: a blank line is where `thinking` starts the next step.
    stop = ("\n\n",) if starts_reply(msgs) else ()
    params = SamplingParams(max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                            seed=request_seed(cfg.seed, s.job.index, step, *retry), stop=stop)
    key = f"{s.job.index}:{step}" + (f":{attempt}" if attempt else "")
    return Request(key=key, messages=msgs, params=params, meta=meta)


def _settle(spec: Spec, answered: list[tuple[_Live, Completion]], cfg: RunConfig,
            prog: Progress) -> list[Row | Failure | None]:
    """Record a batch of completions: per sample, its finished row (or failure), or None while it goes on.

    The batch's step attempts are checked one by one, labelled together (one `label_many` call, which a
    labeler can batch), then kept or asked again; the labels are those of one call per attempt."""
    out: list[Row | Failure | None] = []
    attempts: list[tuple[_Live, Attempt]] = []
    for s, c in answered:
        got = _advance(spec, s, c, cfg, prog)
        if isinstance(got, Attempt):
            attempts.append((s, got))
            got = None
        out.append(got)
    for (s, a), (label, read) in zip(attempts, _labels(cfg, attempts), strict=True):
        _judge(spec, s, labelled(a, label, spec.bonds[s.job.bonds[len(s.steps)]], read, cfg.gate.min_fit), cfg,
               prog)
    return out


def _labels(cfg: RunConfig, attempts: list[tuple[_Live, Attempt]]) -> list[tuple[str | None, NextLabel | None]]:
    """Each attempt's label in context (None: no labeler, or nothing kept), from one batched call, with a step
    labeler's whole reading (`NextLabel`). A step labeler reads each attempt after what it has kept of the walk
    (all of it); another reads the attempt after the walk's last CONTEXT_STEPS steps again."""
    labeler, stepper = cfg.labeler, cfg.stepper
    todo = [i for i, (_s, a) in enumerate(attempts) if a.text] if labeler is not None else []
    out: list[tuple[str | None, NextLabel | None]] = [(None, None)] * len(attempts)
    if labeler is None or not todo:
        return out
    got: list[tuple[str | None, NextLabel | None]]
    if stepper is not None:
        got = [(n.label, n) for n in stepper.label_next([(_read(stepper, s), a.text)
                                                         for s, a in (attempts[i] for i in todo)])]
    else:
        got = [(label, None) for label in label_last(labeler, [
            (s.job.question.question, [t.text for t in s.steps[-CONTEXT_STEPS:]], a.text)
            for s, a in (attempts[i] for i in todo)])]  # fmt: skip
    for i, label_read in zip(todo, got, strict=True):
        out[i] = label_read
    return out


def _read(stepper: StepLabeler, s: _Live) -> object:
    """What `stepper` has read of the sample's kept steps (read once; `_keep_best` adds each new one)."""
    if s.read is None:
        s.read = stepper.walk(s.job.question.question)
        for t in s.steps:
            s.read = stepper.then(s.read, t.text)
    return s.read


def _advance(spec: Spec, s: _Live, c: Completion, cfg: RunConfig, prog: Progress) -> Row | Failure | Attempt | None:
    """Record a completion: the finished row when the sample is done (or failed), a step's attempt after
    hygiene (to be labelled and judged), or None when a failed retry settled the step."""
    step = len(s.steps)
    if c.finish_reason == "error":
        if step < len(s.job.bonds) and s.trial.attempts:  # a retry failed (its longer prompt may not fit)
            _keep_best(spec, s, cfg, prog, f"retry failed: {(c.error or 'engine error')[:200]}")
            return None
        prog.failed += 1
        return _failure(s.job, f"{_where(s.job, step)}: {c.error or 'engine error'}")
    prog.tokens += c.n_tokens
    if step >= len(s.job.bonds):
        prog.done += 1
        return _row(spec, s, c, cfg)
    return led(checked(c.text, c.n_tokens, c.finish_reason, s.frame, s.job.question.question, s.grams),
               s.asked.lead, c.text)


def _judge(spec: Spec, s: _Live, attempt: Attempt, cfg: RunConfig, prog: Progress) -> None:
    """A labelled attempt joins the step's trial: ask again (new seed, instruction restated) or settle the step."""
    s.trial.attempts.append(attempt)
    if cfg.gate.gate and attempt.problems and len(s.trial.attempts) <= cfg.gate.retries:
        prog.retries += 1
        return
    _keep_best(spec, s, cfg, prog)


def _keep_best(spec: Spec, s: _Live, cfg: RunConfig, prog: Progress, failed_retry: str | None = None) -> None:
    """The step is settled: its best attempt joins the walk, with the record of every attempt."""
    bond = spec.bonds[s.job.bonds[len(s.steps)]]
    best = s.trial.best()
    reasons = s.trial.reasons() + ([s.trial.reasons_last()] if failed_retry else [])
    s.steps.append(StepText(bond.name, bond.kind, bond.title, best.text))
    s.grams.append(best.grams)  # grams3(best.text), counted by its hygiene check
    if s.read is not None and cfg.stepper is not None:  # the walk as the labeler read it with this step
        s.read = best.read if best.read is not None else cfg.stepper.then(s.read, best.text)
    s.records.append(Step(bond=bond.name, text=best.text, n_tokens=best.n_tokens, finish_reason=best.finish_reason,
                          label=best.label, attempts=len(s.trial.attempts) + bool(failed_retry), retries=reasons,
                          repair=best.repair, problems=list(best.problems) + ([failed_retry] if failed_retry else []),
                          partner=s.partner, lead=(s.asked.lead or None) if best.text else None,
                          fit=None if best.fit is None else round(best.fit, 4)))
    s.trial = StepTrial()
    prog.steps += 1


def _row(spec: Spec, s: _Live, answer: Completion, cfg: RunConfig) -> Row:
    job = s.job
    think = thinking(s.steps)
    text = answer.text.strip()
    return Row(
        id=f"{job.split}-{job.index:06d}", split=job.split, sample_index=job.index, question_id=job.question.id,
        question=job.question.question, gold=job.question.gold, graph=job.graph, bonds=list(job.bonds),
        steps=s.records, thinking=think, answer=text, answer_tokens=answer.n_tokens,
        answer_finish_reason=answer.finish_reason, correct=verify(text, job.question.gold, spec.answer.verify),
        messages=[Message(**m) for m in sft_messages(job.question.question, think, text, spec.output.think)],
        fidelity=fidelity(s.records, spec), metadata=cfg.metadata_json)


def _where(job: Job, step: int) -> str:
    return "answer" if step >= len(job.bonds) else f"step {step + 1} ({job.bonds[step]})"


def _failure(job: Job, error: str) -> Failure:
    return Failure(split=job.split, sample_index=job.index, question_id=job.question.id, graph=job.graph,
                   bonds=list(job.bonds), error=error)
