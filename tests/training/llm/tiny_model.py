"""A tiny randomly initialised causal language model, built here from a config (no weights, no
download): a Gemma 3 text model (the family the explanation model is tuned from) or a Llama, with
hidden size 32 and 2 layers, and a byte-level BPE tokenizer trained at test time on the given
texts, with the chat format's turn markers as special tokens.

It exists to run the fine-tuning machinery end to end on CPU in seconds; what it generates is
noise, and no test reads meaning into it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from training.llm.chat import ChatFormat

SPECIAL = ("<pad>", "<bos>", "<eos>")


def build_tiny_model(
    folder: Path,
    texts: Iterable[str],
    chat: ChatFormat,
    *,
    architecture: Literal["gemma3", "llama"] = "gemma3",
    vocab_size: int = 600,
    seed: int = 0,
) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        Gemma3ForCausalLM,
        Gemma3TextConfig,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[*SPECIAL, *chat.special_tokens],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>"
    )
    shape = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "tie_word_embeddings": True,
    }
    torch.manual_seed(seed)
    model: Any
    if architecture == "gemma3":
        model = Gemma3ForCausalLM(Gemma3TextConfig(**shape, head_dim=8, sliding_window=64))
    else:
        model = LlamaForCausalLM(LlamaConfig(**shape))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
