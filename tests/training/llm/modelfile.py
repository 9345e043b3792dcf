"""A reader of Ollama Modelfiles, written for the tests from the format's documentation
(https://github.com/ollama/ollama/blob/main/docs/modelfile.md), independent of the generator.

``# comments``; one instruction per line (``FROM``, ``PARAMETER``, ``TEMPLATE``, ``SYSTEM``,
``ADAPTER``, ``LICENSE``, ``MESSAGE``; any case); an argument is bare, ``"quoted"`` or
``\"\"\"multi-line\"\"\"``; ``PARAMETER name value`` may repeat (``stop``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

INSTRUCTIONS = {"FROM", "PARAMETER", "TEMPLATE", "SYSTEM", "ADAPTER", "LICENSE", "MESSAGE"}


class ModelfileSyntaxError(ValueError):
    pass


@dataclass
class Modelfile:
    from_: str = ""
    template: str | None = None
    system: str | None = None
    parameters: dict[str, list[str]] = field(default_factory=dict)


def _argument(text: str, pos: int) -> tuple[str, int]:
    if text.startswith('"""', pos):
        end = text.find('"""', pos + 3)
        if end < 0:
            raise ModelfileSyntaxError("unterminated triple-quoted argument")
        return text[pos + 3 : end], end + 3
    if text.startswith('"', pos):
        end = text.find('"', pos + 1)
        if end < 0 or "\n" in text[pos:end]:
            raise ModelfileSyntaxError("unterminated quoted argument")
        return text[pos + 1 : end], end + 1
    end = text.find("\n", pos)
    end = len(text) if end < 0 else end
    return text[pos:end].strip(), end


def parse_modelfile(text: str) -> Modelfile:
    result = Modelfile()
    pos = 0
    while pos < len(text):
        if text[pos] in " \t\r\n":
            pos += 1
            continue
        if text[pos] == "#":
            newline = text.find("\n", pos)
            pos = len(text) if newline < 0 else newline + 1
            continue
        space = min(i for i in (text.find(" ", pos), text.find("\n", pos), len(text)) if i >= 0)
        word = text[pos:space].upper()
        if word not in INSTRUCTIONS:
            raise ModelfileSyntaxError(f"unknown instruction {word!r}")
        pos = space + 1
        if word == "PARAMETER":
            name_end = text.find(" ", pos)
            if name_end < 0:
                raise ModelfileSyntaxError("PARAMETER without a value")
            name = text[pos:name_end]
            value, pos = _argument(text, name_end + 1)
            result.parameters.setdefault(name, []).append(value)
            continue
        value, pos = _argument(text, pos)
        if word == "FROM":
            result.from_ = value
        elif word == "TEMPLATE":
            result.template = value
        elif word == "SYSTEM":
            result.system = value
        rest = text.find("\n", pos)
        trailing = text[pos : len(text) if rest < 0 else rest]
        if trailing.strip():
            raise ModelfileSyntaxError(f"text after the {word} argument: {trailing!r}")
    if not result.from_:
        raise ModelfileSyntaxError("no FROM")
    return result
