"""A tiny interpreter of the Go text/template subset Ollama chat templates use here:
``{{ range .Messages }}…{{ end }}``, ``{{ if eq .Role "x" }}…{{ else if eq .Role "y" }}…
{{ else }}…{{ end }}``, ``{{ .Content }}``, ``{{ .Role }}``, and the ``{{-``/``-}}`` trim markers
(text/template: they remove the whitespace next to the action). Written for the tests, from the
text/template documentation (https://pkg.go.dev/text/template), to render a generated template
and compare it with the training-side Jinja rendering. Anything else raises.
"""

from __future__ import annotations

import re
from typing import Any

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)
_EQ = re.compile(r'^eq \.Role "([^"]*)"$')


def _tokens(template: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    for match in _ACTION.finditer(template):
        text = template[pos : match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        if text:
            out.append(("text", text))
        out.append(("action", match.group(2)))
        trim_next = bool(match.group(3))
        pos = match.end()
    tail = template[pos:]
    if trim_next:
        tail = tail.lstrip()
    if tail:
        out.append(("text", tail))
    return out


def render(template: str, messages: list[dict[str, str]]) -> str:
    tokens = _tokens(template)
    result, end = _block(tokens, 0, {"Messages": messages}, stop=())
    if end != len(tokens):
        raise ValueError("unbalanced template")
    return result


def _block(
    tokens: list[tuple[str, str]], i: int, scope: dict[str, Any], stop: tuple[str, ...]
) -> tuple[str, int]:
    out = []
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "text":
            out.append(value)
            i += 1
            continue
        if value in stop or any(value.startswith(s + " ") for s in stop):
            return "".join(out), i
        if value == "range .Messages":
            body_start = i + 1
            end = _skip(tokens, body_start)
            for message in scope["Messages"]:
                text, _ = _block(
                    tokens,
                    body_start,
                    {"Role": message["role"], "Content": message["content"]},
                    stop=("end",),
                )
                out.append(text)
            i = end + 1
        elif value.startswith("if "):
            text, i = _if(tokens, i, scope)
            out.append(text)
        elif value in (".Content", ".Role"):
            out.append(scope[value[1:]])
            i += 1
        else:
            raise ValueError(f"unsupported action {value!r}")
    return "".join(out), i


def _skip(tokens: list[tuple[str, str]], i: int) -> int:
    """Index of the ``end`` closing the block that starts at ``i``."""
    depth = 0
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "action" and (value.startswith(("if ", "range "))):
            depth += 1
        elif kind == "action" and value == "end":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    raise ValueError("no end")


def _if(tokens: list[tuple[str, str]], i: int, scope: dict[str, Any]) -> tuple[str, int]:
    chosen: str | None = None
    condition: str | None = tokens[i][1].removeprefix("if ")
    i += 1
    while True:
        text, i = _block(tokens, i, scope, stop=("else", "end"))
        matches = condition is None or _true(condition, scope)
        if chosen is None and matches:
            chosen = text
        value = tokens[i][1]
        if value == "end":
            return chosen or "", i + 1
        condition = value.removeprefix("else if ") if value.startswith("else if ") else None
        i += 1


def _true(condition: str, scope: dict[str, Any]) -> bool:
    match = _EQ.match(condition)
    if match is None:
        raise ValueError(f"unsupported condition {condition!r}")
    return bool(scope["Role"] == match.group(1))
