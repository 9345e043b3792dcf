"""Chat formats: one definition gives the training template and the serving template.

A :class:`ChatFormat` names the turn markers of a model family. From it come

- the Jinja chat template set on the tokenizer before training (:meth:`ChatFormat.jinja`), so
  training never depends on whatever template a base model ships, and the exported tokenizer
  carries the one the model was tuned with;
- the Ollama ``TEMPLATE`` (Go template over ``.Messages``) and ``stop`` parameters of the
  generated Modelfile (:meth:`ChatFormat.ollama_template`), so serving renders the same turns.

Formats (turn markers as the model families' own chat templates write them):

- ``gemma``: ``<start_of_turn>user\\n…<end_of_turn>\\n<start_of_turn>model\\n`` (Gemma 2/3; no
  system role: a system message is sent as a user turn, as Ollama's gemma3 template does);
- ``chatml``: ``<|im_start|>user\\n…<|im_end|>\\n<|im_start|>assistant\\n`` (Qwen, SmolLM).

The BOS token is written by the Jinja template (``bos_token``) but not by the Ollama template:
llama.cpp adds it from the GGUF metadata (``tokenizer.ggml.add_bos_token``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class ChatFormat:
    name: str
    turn_start: str
    turn_end: str
    #: Role name written after ``turn_start`` for user, assistant and system messages.
    user: str
    assistant: str
    system: str
    #: Whether the Jinja template starts with the tokenizer's BOS token.
    bos: bool

    @property
    def special_tokens(self) -> tuple[str, str]:
        return (self.turn_start, self.turn_end)

    @property
    def stop(self) -> tuple[str, ...]:
        """Strings that end generation (the end of the turn, or the start of another)."""
        return (self.turn_end, self.turn_start)

    def jinja(self) -> str:
        """The Hugging Face chat template (``tokenizer.chat_template``)."""
        role = (
            f"{{% if message['role'] == 'assistant' %}}{{{{ {self.assistant!r} }}}}"
            f"{{% elif message['role'] == 'system' %}}{{{{ {self.system!r} }}}}"
            f"{{% else %}}{{{{ {self.user!r} }}}}{{% endif %}}"
        )
        return (
            ("{{ bos_token }}" if self.bos else "")
            + "{% for message in messages %}"
            + f"{{{{ {self.turn_start!r} }}}}{role}{{{{ '\\n' + message['content'] + "
            + f"{self.turn_end!r} + '\\n' }}}}"
            + "{% endfor %}"
            + "{% if add_generation_prompt %}"
            + f"{{{{ {self.turn_start + self.assistant!r} + '\\n' }}}}"
            + "{% endif %}"
        )

    def ollama_template(self) -> str:
        """The Modelfile ``TEMPLATE`` (Go text/template over ``.Messages``)."""
        return (
            "{{- range .Messages }}"
            + self.turn_start
            + f'{{{{ if eq .Role "assistant" }}}}{self.assistant}'
            + f'{{{{ else if eq .Role "system" }}}}{self.system}'
            + f"{{{{ else }}}}{self.user}{{{{ end }}}}\n"
            + "{{ .Content }}"
            + self.turn_end
            + "\n{{ end }}"
            + self.turn_start
            + self.assistant
            + "\n"
        )


FORMATS: Final = {
    "gemma": ChatFormat(
        name="gemma",
        turn_start="<start_of_turn>",
        turn_end="<end_of_turn>",
        user="user",
        assistant="model",
        system="user",
        bos=True,
    ),
    "chatml": ChatFormat(
        name="chatml",
        turn_start="<|im_start|>",
        turn_end="<|im_end|>",
        user="user",
        assistant="assistant",
        system="system",
        bos=False,
    ),
}
