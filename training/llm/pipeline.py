"""The fine-tuning run, end to end: pairs → evaluation before → LoRA → evaluation after → export.

Writes under ``output.dir``: ``pairs/`` (JSONL + manifest), ``adapter/``, ``merged/`` (with its
tokenizer and model card), ``Modelfile`` and ``evaluation.json`` (the before/after figures on the
same held-out pairs, the losses, what was trained on). On a tiny or untrained base model the
figures say nothing about quality; the record says so when the model is that small.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Final, TypeVar

from inference.genomics.kb.store import KnowledgeBase, load_knowledge_base, read_knowledge_base
from training.llm.chat import FORMATS
from training.llm.config import LlmConfig
from training.llm.facts import facts_from_kb
from training.llm.grounding import GroundingChecker, KbGroundingChecker, Vocabulary
from training.llm.lora import Progress, add_lora, generate, load_base_model, train_lora
from training.llm.metrics import DrugChecker, Evaluation, evaluate_outputs
from training.llm.pairs import PairSplit, build_pairs, export_pairs

PAIRS_DIR: Final = "pairs"
EVALUATION_FILE: Final = "evaluation.json"
#: Below this many parameters a model is a test fixture: its figures only show the pipeline runs.
TINY_MODEL_PARAMETERS: Final = 10_000_000

T = TypeVar("T")


def even_sample(items: Sequence[T], count: int) -> list[T]:
    """``count`` items spread evenly over ``items`` (all of them when fewer), in order."""
    if count <= 0 or count >= len(items):
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


def load_kb(config: LlmConfig) -> KnowledgeBase:
    return read_knowledge_base(config.pairs.kb) if config.pairs.kb else load_knowledge_base()


def make_pairs(config: LlmConfig, kb: KnowledgeBase) -> tuple[PairSplit, dict[str, Any]]:
    """Build and write the pairs of ``config``; the split and the manifest."""
    facts = facts_from_kb(kb, sources=config.pairs.sources, civic_levels=config.pairs.civic_levels)
    split = build_pairs(
        facts, seed=config.pairs.seed, held_out_fraction=config.pairs.held_out_fraction
    )
    manifest = export_pairs(
        split,
        config.output.dir / PAIRS_DIR,
        kb_version=kb.version,
        seed=config.pairs.seed,
        fraction=config.pairs.held_out_fraction,
    )
    return split, manifest


def run(
    config: LlmConfig,
    *,
    progress: Progress,
    checker: GroundingChecker | None = None,
    drug_checker: DrugChecker | None = None,
) -> dict[str, Any]:
    """Run the whole fine-tuning; returns what ``evaluation.json`` records.

    ``checker`` and ``drug_checker`` default to this package's KB-vocabulary checker; pass the
    runtime's grounding checker to evaluate with it instead.
    """
    chat = FORMATS[config.base_model.chat_format]
    loaded = load_base_model(config.base_model.path, chat)  # first: a wrong path fails at once
    kb = load_kb(config)
    default = KbGroundingChecker(Vocabulary.from_kb(kb))
    checker = checker or default
    drug_checker = drug_checker or default.unsupported_drugs
    split, manifest = make_pairs(config, kb)
    progress("pairs", {"train": len(split.train), "held_out": len(split.held_out)})
    parameters = sum(p.numel() for p in loaded.model.parameters())
    train_pairs = even_sample(split.train, config.pairs.max_train_pairs)
    held_out = even_sample(split.held_out, config.evaluation.held_out_pairs)

    def evaluate(model: Any) -> Evaluation:
        outputs = generate(loaded, model, held_out, config.evaluation.max_new_tokens)
        return evaluate_outputs(held_out, outputs, checker=checker, unsupported_drugs=drug_checker)

    before = evaluate(loaded.model)
    progress("evaluation", {"when": "before", **before.to_json()})
    peft_model = add_lora(loaded, config.lora, config.train.seed)
    trained = train_lora(loaded, peft_model, train_pairs, config.train, progress)
    losses = trained.losses
    after = evaluate(peft_model)
    progress("evaluation", {"when": "after", **after.to_json()})

    record: dict[str, Any] = {
        "name": config.output.name,
        "base_model": config.base_model.path.name,
        "base_model_parameters": parameters,
        "chat_format": chat.name,
        "kb_version": kb.version,
        "pairs_manifest_sha256": hashlib.sha256(
            (config.output.dir / PAIRS_DIR / "manifest.json").read_bytes()
        ).hexdigest(),
        "pairs": manifest["counts"],
        "trained_on_pairs": trained.pairs_used,
        "pairs_too_long": trained.pairs_too_long,
        "lora": config.lora.model_dump(mode="json"),
        "train": config.train.model_dump(mode="json"),
        "losses": {"first": losses[0], "last": losses[-1], "steps": len(losses)},
        "evaluation": {
            "held_out_pairs": len(held_out),
            "max_new_tokens": config.evaluation.max_new_tokens,
            "before": before.to_json(),
            "after": after.to_json(),
        },
    }
    if parameters < TINY_MODEL_PARAMETERS:
        record["note"] = (
            f"base model of {parameters} parameters: a test fixture; the figures show that the "
            "pipeline runs, they say nothing about explanation quality"
        )
    from training.llm.export import export_model

    record["exported"] = export_model(
        loaded,
        peft_model,
        config.output.dir,
        name=config.output.name,
        gguf_file=config.output.gguf_file,
        num_ctx=config.output.num_ctx,
        seed=config.train.seed,
        card=record,
    )
    (config.output.dir / EVALUATION_FILE).write_text(
        json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return record


def summary_lines(record: dict[str, Any]) -> list[str]:
    """The before/after figures as lines for the terminal."""
    lines = []
    for when in ("before", "after"):
        e = record["evaluation"][when]
        lines.append(
            f"{when}: {e['pairs']} held-out pairs; schema-valid {e['schema_valid']} "
            f"({e['schema_valid_rate']}); grounding failures {e['grounding_failures']} "
            f"({e['grounding_failure_rate']}); unsupported drugs named in "
            f"{e['unsupported_drug_outputs']} ({e['unsupported_drug_rate']})"
        )
    if "note" in record:
        lines.append(f"note: {record['note']}")
    lines.append(f"exported: {record['exported']['merged']} and {record['exported']['modelfile']}")
    return lines
