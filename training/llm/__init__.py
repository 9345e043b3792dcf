"""LoRA fine-tuning of the local explanation model (issue 16, item 5).

Instruction pairs come only from the knowledge base's cited facts (:mod:`.facts`,
:mod:`.pairs`); a local base model is tuned with LoRA (:mod:`.lora`), evaluated before and after
on held-out facts (:mod:`.metrics`, :mod:`.grounding`), and exported merged with an Ollama
Modelfile (:mod:`.export`). ``python -m training llm …`` runs it (:mod:`.cli`); the walkthrough
is docs/llm-finetuning.md. Never imported by the service.
"""
