"""The fine-tuning pipeline end to end on a tiny randomly initialised model (no weights).

``python -m training llm train`` runs once per module on CPU: pairs from the real KB (FDA,
CPIC and curated facts), evaluation before, 4 LoRA steps, evaluation after, export. The base
model is :func:`tests.training.llm.tiny_model.build_tiny_model` (a Gemma 3 text model of hidden
size 32, two layers, and a BPE tokenizer trained here; a Llama with the ChatML format runs once
more, briefly): its answers are noise, so the before/after figures
are meaningless for quality and no test asserts their values; the tests check the machinery
(it runs, exports a model that reloads and generates as trained, a Modelfile that reads back,
nothing is fetched from the network).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from inference.genomics.kb.store import load_knowledge_base
from tests.training.llm.modelfile import parse_modelfile
from tests.training.llm.tiny_model import build_tiny_model
from training.__main__ import main
from training.llm.chat import FORMATS
from training.llm.errors import BaseModelError
from training.llm.facts import facts_from_kb
from training.llm.lora import load_base_model
from training.llm.pairs import pairs_for, read_pairs

SOURCES = ("FDA", "CPIC", "curated")
ONCOCDS = str(Path(sys.executable).parent / "oncocds")


def _config(base: Path, model: Path, out: Path, **extra: str) -> Path:
    text = f"""
[base_model]
path = "{model}"
chat_format = "{extra.get("chat_format", "gemma")}"

[pairs]
sources = {json.dumps(list(SOURCES))}
held_out_fraction = 0.25
max_train_pairs = 16

[train]
steps = 4
batch_size = 2
learning_rate = 0.005
max_length = 1024

[evaluation]
held_out_pairs = 3
max_new_tokens = 24

[output]
dir = "{out}"
{extra.get("output_extra", "")}
"""
    path = base / f"{out.name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@contextlib.contextmanager
def _no_network() -> Iterator[None]:
    """Any connection attempt fails the run: nothing may be downloaded."""

    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"network connection attempted to {address!r}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield


@dataclass(frozen=True)
class Run:
    base: Path
    model: Path
    out: Path
    stdout: str


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    base = tmp_path_factory.mktemp("llm")
    facts = facts_from_kb(load_knowledge_base(), sources=SOURCES)
    texts = [t for f in facts for p in pairs_for(f) for t in (p.prompt(), p.target())]
    model = build_tiny_model(base / "tiny-base", texts, FORMATS["gemma"])
    config = _config(base, model, base / "out")
    stdout = io.StringIO()
    with _no_network(), contextlib.redirect_stdout(stdout):
        assert main(["llm", "train", str(config), "--progress", "none"]) == 0
    return Run(base, model, base / "out", stdout.getvalue())


def test_the_run_prints_before_and_after_figures_labelled_meaningless(run: Run) -> None:
    lines = run.stdout.splitlines()
    assert lines[0].startswith("before: 3 held-out pairs; schema-valid ")
    assert lines[1].startswith("after: 3 held-out pairs; schema-valid ")
    assert "say nothing about explanation quality" in lines[2]


def test_the_evaluation_record(run: Run) -> None:
    record = json.loads((run.out / "evaluation.json").read_text())
    assert record["kb_version"] == load_knowledge_base().version
    manifest = (run.out / "pairs" / "manifest.json").read_bytes()
    assert record["pairs_manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
    # 16 sampled; the few whose prompt and answer exceed 1024 tokens of the tiny tokenizer
    # are left out and counted, never cut.
    assert record["trained_on_pairs"] + record["pairs_too_long"] == 16
    assert record["trained_on_pairs"] > 0
    assert record["losses"]["steps"] == 4
    for when in ("before", "after"):
        figures = record["evaluation"][when]
        assert figures["pairs"] == 3
        for key in ("schema_valid", "grounding_failures", "unsupported_drug_outputs"):
            assert 0 <= figures[key] <= 3
    held_out = read_pairs(run.out / "pairs" / "held_out.jsonl")
    train = read_pairs(run.out / "pairs" / "train.jsonl")
    assert {p.kind.split("-")[0] for p in held_out + train} <= {"fda", "pgx", "curated"}
    assert not {p.group for p in held_out} & {p.group for p in train}


def _prompt(tokenizer: Any, run: Run) -> Any:
    pair = read_pairs(run.out / "pairs" / "held_out.jsonl")[0]
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": pair.prompt()}], tokenize=False, add_generation_prompt=True
    )
    return tokenizer(text, add_special_tokens=False, return_tensors="pt")


# peft 0.21 reads model.is_gradient_checkpointing, deprecated by transformers 5 (FutureWarning).
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")
def test_the_merged_model_reloads_and_generates_as_base_plus_adapter(run: Run) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run.out / "merged", local_files_only=True)
    merged = AutoModelForCausalLM.from_pretrained(run.out / "merged", local_files_only=True)
    base = AutoModelForCausalLM.from_pretrained(run.model, local_files_only=True)
    with torch.inference_mode():
        inputs = _prompt(tokenizer, run)
        base_logits = base(**inputs).logits
        adapted = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(run.model, local_files_only=True),
            run.out / "adapter",
        )
        adapted.eval()
        merged.eval()  # type: ignore[no-untyped-call]
        merged_logits = merged(**inputs).logits
        assert torch.allclose(merged_logits, adapted(**inputs).logits, atol=1e-5)
        # Training moved the weights: the merged model is not the base model.
        assert not torch.allclose(merged_logits, base_logits, atol=1e-4)
        width = inputs["input_ids"].shape[1]
        options = {"max_new_tokens": 8, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
        out_merged = merged.generate(**inputs, **options)[0, width:]
        out_adapted = adapted.generate(**inputs, **options)[0, width:]  # type: ignore[no-untyped-call]
    assert out_merged.tolist() == out_adapted.tolist()
    assert len(out_merged) > 0
    assert isinstance(tokenizer.decode(out_merged), str)


def test_the_exported_tokenizer_carries_the_training_chat_template(run: Run) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run.out / "merged", local_files_only=True)
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert rendered == "<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"


def test_the_modelfile_reads_back_with_the_models_stop_tokens(run: Run) -> None:
    from transformers import AutoTokenizer

    text = (run.out / "Modelfile").read_text()
    parsed = parse_modelfile(text)
    assert parsed.from_ == "./oncocds-explainer.Q8_0.gguf"
    assert parsed.parameters["temperature"] == ["0"]
    assert parsed.parameters["stop"] == ["<end_of_turn>", "<start_of_turn>"]
    assert parsed.template is not None
    assert "{{ .Content }}" in parsed.template
    assert "# Output: Model-generated; not verified" in text
    tokenizer = AutoTokenizer.from_pretrained(run.out / "merged", local_files_only=True)
    for stop in parsed.parameters["stop"]:
        token = tokenizer.convert_tokens_to_ids(stop)
        assert isinstance(token, int)
        assert tokenizer.decode([token]) == stop


def test_a_missing_base_model_is_one_line(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(run.base, run.base / "no-such-model", run.base / "missing")
    assert main(["llm", "train", str(config), "--progress", "none"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("training: error: base model ")
    assert "no config.json there" in err
    assert err.count("\n") == 1
    assert not (run.base / "missing").exists()


def test_a_chat_format_the_tokenizer_lacks_is_refused(run: Run) -> None:
    with pytest.raises(BaseModelError, match=r"no <\|im_start\|>, <\|im_end\|> token"):
        load_base_model(run.model, FORMATS["chatml"])


def test_a_wrong_config_field_is_one_line(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(run.base, run.model, run.base / "bad", output_extra="colour = 1")
    assert main(["llm", "pairs", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("training: error: ")
    assert "output.colour" in err
    assert err.count("\n") == 1


def test_oncocds_train_llm_writes_the_same_pairs_through_the_child(run: Run) -> None:
    """``oncocds train-llm --pairs-only`` runs ``python -m training llm pairs`` as a child."""
    config = _config(run.base, run.model, run.base / "pairs-only")
    result = subprocess.run(
        [ONCOCDS, "train-llm", str(config), "--pairs-only"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("pairs: ")
    for name in ("train.jsonl", "held_out.jsonl"):
        written = (run.base / "pairs-only" / "pairs" / name).read_bytes()
        assert written == (run.out / "pairs" / name).read_bytes()


def test_oncocds_train_llm_passes_a_one_line_error_through(run: Run) -> None:
    config = _config(run.base, run.base / "absent", run.base / "absent-out")
    result = subprocess.run(
        [ONCOCDS, "train-llm", str(config), "--progress", "none"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("training: error: base model ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_a_llama_with_the_chatml_format_runs_through_export(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    chat = FORMATS["chatml"]
    facts = facts_from_kb(load_knowledge_base(), sources=("CPIC",))
    texts = [t for f in facts for p in pairs_for(f) for t in (p.prompt(), p.target())]
    model = build_tiny_model(run.base / "tiny-llama", texts, chat, architecture="llama")
    config = _config(run.base, model, run.base / "llama-out", chat_format="chatml")
    text = config.read_text()
    for old, new in (("steps = 4", "steps = 1"), ("held_out_pairs = 3", "held_out_pairs = 1")):
        assert old in text
        text = text.replace(old, new)
    config.write_text(text)
    with _no_network():
        assert main(["llm", "train", str(config), "--progress", "none"]) == 0
    assert capsys.readouterr().out.startswith("before: 1 held-out pairs")
    out = run.base / "llama-out"
    parsed = parse_modelfile((out / "Modelfile").read_text())
    assert parsed.parameters["stop"] == ["<|im_end|>", "<|im_start|>"]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(out / "merged", local_files_only=True)
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


# peft 0.21 reads model.is_gradient_checkpointing, deprecated by transformers 5 (FutureWarning).
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")
def test_training_is_seeded(run: Run) -> None:
    from training.llm.config import LoraConfig, TrainConfig
    from training.llm.lora import add_lora, train_lora

    pairs = read_pairs(run.out / "pairs" / "train.jsonl")[:6]

    def losses(seed: int) -> list[float]:
        loaded = load_base_model(run.model, FORMATS["gemma"])
        model = add_lora(loaded, LoraConfig(), seed)
        config = TrainConfig(steps=2, batch_size=2, learning_rate=0.005, max_length=512, seed=seed)
        return train_lora(loaded, model, pairs, config, lambda event, fields: None).losses

    first = losses(0)
    assert losses(0) == first
    assert losses(1) != first


def test_no_pair_fitting_max_length_is_an_error_not_a_nan_loss(run: Run) -> None:
    from training.errors import DataError
    from training.llm.config import LoraConfig, TrainConfig
    from training.llm.lora import add_lora, train_lora

    pairs = read_pairs(run.out / "pairs" / "train.jsonl")[:4]
    loaded = load_base_model(run.model, FORMATS["gemma"])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
        model = add_lora(loaded, LoraConfig(), 0)
    config = TrainConfig(steps=1, max_length=64)
    with pytest.raises(DataError, match="none of the 4 training pairs fits"):
        train_lora(loaded, model, pairs, config, lambda event, fields: None)
