"""Load a local base model, train LoRA adapters on instruction pairs, generate answers.

Nothing is downloaded: the base model is a local Hugging Face folder read with
``local_files_only=True``; a missing folder is one readable error. The chat template is set
explicitly from the configured :class:`~training.llm.chat.ChatFormat` (never the one the base
model ships), and the format's turn markers must be single tokens of the base tokenizer.

Training is a plain seeded loop on CPU (AdamW over the LoRA parameters only; the loss is taken
on the answer tokens and the closing turn marker, never on the prompt). Pairs longer than
``max_length`` tokens are left out (counted), never cut.

torch, transformers and peft are imported inside functions (CONTRIBUTING: heavy ML imports are
lazy).
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.errors import DataError, TrainingError
from training.llm.chat import ChatFormat
from training.llm.config import LoraConfig, TrainConfig
from training.llm.errors import BaseModelError
from training.llm.pairs import Pair

Progress = Callable[[str, dict[str, Any]], None]


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    chat: ChatFormat
    #: Token ids that end an answer (the turn end marker and the tokenizer's EOS).
    stop_ids: list[int]


def load_base_model(path: Path, chat: ChatFormat) -> LoadedModel:
    """The base model and tokenizer at ``path`` (local only), with ``chat``'s template set.

    Raises:
        BaseModelError: ``path`` is not a local model folder, cannot be loaded, or its
            tokenizer lacks the chat format's turn markers.
    """
    if not (path / "config.json").is_file():
        raise BaseModelError(
            f"base model {path}: no config.json there; give a local Hugging Face model folder "
            "(nothing is downloaded)"
        )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            path, local_files_only=True, dtype=torch.float32
        )
    except (OSError, ValueError) as exc:
        raise BaseModelError(f"base model {path}: cannot be loaded ({exc})") from exc
    marker_ids = {marker: _token_id(tokenizer, marker) for marker in chat.special_tokens}
    missing = [marker for marker, token in marker_ids.items() if token is None]
    if missing:
        raise BaseModelError(
            f"base model {path}: its tokenizer has no {', '.join(missing)} token; "
            f"chat_format {chat.name!r} does not fit it"
        )
    tokenizer.chat_template = chat.jinja()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = chat.turn_end
    stop_ids = [marker_ids[chat.turn_end] or 0]  # not None: checked above
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in stop_ids:
        stop_ids.append(int(tokenizer.eos_token_id))
    model.eval()  # type: ignore[no-untyped-call]
    return LoadedModel(model, tokenizer, chat, stop_ids)


def _token_id(tokenizer: Any, token: str) -> int | None:
    """The id of ``token`` when the tokenizer has it as one token, else ``None``."""
    found = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(found, int) or found == tokenizer.unk_token_id:
        return None
    return found


def prompt_ids(loaded: LoadedModel, pair: Pair) -> list[int]:
    """The tokens of the rendered user turn and the assistant's turn opening."""
    text = loaded.tokenizer.apply_chat_template(
        [{"role": "user", "content": pair.prompt()}], tokenize=False, add_generation_prompt=True
    )
    return list(loaded.tokenizer(text, add_special_tokens=False)["input_ids"])


def answer_ids(loaded: LoadedModel, pair: Pair) -> list[int]:
    """The tokens of the reference answer and the turn end marker (what the loss is on)."""
    text = pair.target() + loaded.chat.turn_end
    return list(loaded.tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]


def examples(
    loaded: LoadedModel, pairs: Sequence[Pair], max_length: int
) -> tuple[list[Example], int]:
    """The pairs that fit ``max_length`` tokens whole, and how many did not.

    A pair too long is left out, never cut: a cut answer would teach unclosed JSON, a cut
    prompt would teach answers without their facts (and an answer cut away entirely leaves no
    token to take the loss on).
    """
    out = []
    too_long = 0
    for pair in pairs:
        prompt, answer = prompt_ids(loaded, pair), answer_ids(loaded, pair)
        if len(prompt) + len(answer) > max_length:
            too_long += 1
            continue
        out.append(Example(prompt + answer, [-100] * len(prompt) + answer))
    return out, too_long


def _batch(loaded: LoadedModel, batch: Sequence[Example]) -> dict[str, Any]:
    import torch

    width = max(len(e.input_ids) for e in batch)
    pad = loaded.tokenizer.pad_token_id
    ids = [e.input_ids + [pad] * (width - len(e.input_ids)) for e in batch]
    labels = [e.labels + [-100] * (width - len(e.labels)) for e in batch]
    mask = [[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in batch]
    return {
        "input_ids": torch.tensor(ids),
        "attention_mask": torch.tensor(mask),
        "labels": torch.tensor(labels),
    }


def add_lora(loaded: LoadedModel, config: LoraConfig, seed: int) -> Any:
    """Wrap the base model with fresh LoRA adapters (B starts at zero: same outputs as base)."""
    import torch
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    torch.manual_seed(seed)
    peft_config = PeftLoraConfig(
        r=config.r,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        # peft 0.21 reads model.is_gradient_checkpointing, which transformers 5 deprecates
        # with a FutureWarning (pytest turns warnings into errors); nothing for us to change.
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing", category=FutureWarning
        )
        try:
            return get_peft_model(loaded.model, peft_config)
        except ValueError as exc:
            raise BaseModelError(f"LoRA target modules do not fit the base model ({exc})") from exc


@dataclass(frozen=True)
class TrainingRun:
    losses: list[float]
    pairs_used: int
    #: Pairs left out because prompt and answer together exceed ``max_length`` tokens.
    pairs_too_long: int


def train_lora(
    loaded: LoadedModel,
    peft_model: Any,
    pairs: Sequence[Pair],
    config: TrainConfig,
    progress: Progress,
) -> TrainingRun:
    """Train the adapters for ``config.steps`` steps.

    Raises:
        DataError: no pair fits ``config.max_length``.
        TrainingError: the loss stopped being a finite number.
    """
    import math

    import torch

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    data, too_long = examples(loaded, pairs, config.max_length)
    if not data:
        raise DataError(
            f"none of the {len(pairs)} training pairs fits train.max_length = "
            f"{config.max_length} tokens (prompt and answer together); raise it"
        )
    order = list(range(len(data)))
    rng = random.Random(config.seed)  # noqa: S311 -- a seeded batch order, not a secret
    rng.shuffle(order)
    parameters = [p for p in peft_model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(parameters, lr=config.learning_rate)
    peft_model.train()
    losses: list[float] = []
    cursor = 0
    for step in range(1, config.steps + 1):
        batch = []
        for _ in range(min(config.batch_size, len(data))):
            if cursor == len(order):
                rng.shuffle(order)
                cursor = 0
            batch.append(data[order[cursor]])
            cursor += 1
        loss = peft_model(**_batch(loaded, batch)).loss
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingError(f"the loss is {value} at step {step}; lower train.learning_rate")
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        losses.append(value)
        progress("step", {"step": step, "steps": config.steps, "loss": value})
    peft_model.eval()
    return TrainingRun(losses, len(data), too_long)


def generate(
    loaded: LoadedModel, model: Any, pairs: Sequence[Pair], max_new_tokens: int
) -> list[str]:
    """Greedy answers of ``model`` to ``pairs`` (special tokens dropped)."""
    import torch
    from transformers import GenerationConfig

    # A generation config of our own: a base model's shipped sampling defaults (temperature,
    # top_p) would otherwise apply or warn; evaluation decodes greedily, like temperature 0.
    settings = GenerationConfig(  # type: ignore[no-untyped-call]
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=loaded.stop_ids,
        pad_token_id=loaded.tokenizer.pad_token_id,
    )
    outputs = []
    model.eval()
    with torch.inference_mode():
        for pair in pairs:
            ids = torch.tensor([prompt_ids(loaded, pair)])
            generated = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                generation_config=settings,
            )
            new = generated[0, ids.shape[1] :]
            outputs.append(loaded.tokenizer.decode(new, skip_special_tokens=True).strip())
    return outputs
