"""The `messages` column is what TRL's SFTTrainer takes: one real training step on a tiny model."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest

import molspec
from molspec.pipeline import build
from molspec.runtime.build import BuildOptions
from tests.support.tiny_model import build_tiny_model

trl = pytest.importorskip("trl")
transformers = pytest.importorskip("transformers")


@pytest.mark.slow
def test_sft_trainer_takes_the_dataset(tiny_spec: Path, tmp_path: Path) -> None:
    build(molspec.load(tiny_spec), BuildOptions(out=tmp_path / "out", limit=8))
    ds = datasets.load_dataset("parquet", data_dir=str(tmp_path / "out" / "data"), split="train")
    assert trl.data_utils.is_conversational(ds[0])
    model_dir = build_tiny_model(tmp_path / "model")
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir)
    cfg = trl.SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=1, per_device_train_batch_size=2,
                        max_length=256, report_to=[], save_strategy="no", logging_steps=1, use_cpu=True,
                        dataloader_num_workers=0)
    trainer = trl.SFTTrainer(model=model, args=cfg, train_dataset=ds.select_columns(["messages"]),
                             processing_class=tok)
    out = trainer.train()
    assert out.global_step == 1 and out.training_loss > 0
