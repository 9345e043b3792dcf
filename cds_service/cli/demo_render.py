"""CDS Hooks cards as terminal text, for ``oncocds demo``.

A card's ``detail`` is GitHub Flavored Markdown (CDS Hooks 2.0 §Card); a terminal shows it as
text: emphasis markers and backslash escapes removed (``\\*2A`` reads ``*2A``), a link shown
by its label (the evidence is in the report; the card's own links are listed in full), tables
aligned in columns when they fit the width and otherwise one wrapped line per row, paragraphs
wrapped. On a colour terminal the indicator is coloured (``NO_COLOR`` turns that off,
https://no-color.org).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from typing import Any, Final

_ESCAPED: Final = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")
_LINK: Final = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_STRONG: Final = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS: Final = re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])")
_CODE: Final = re.compile(r"`([^`]+)`")
_PLACEHOLDER: Final = "\x00{}\x00"
_COLOURS: Final = {"critical": "\x1b[1;31m", "warning": "\x1b[1;33m", "info": "\x1b[1;34m"}
_RESET: Final = "\x1b[0m"


def inline(text: str) -> str:
    """One line of markdown as plain text."""
    escaped: list[str] = []

    def hold(match: re.Match[str]) -> str:
        escaped.append(match.group(1))
        return _PLACEHOLDER.format(len(escaped) - 1)

    text = _ESCAPED.sub(hold, text)  # escaped characters are literal: keep them out of the rules
    text = _CODE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _STRONG.sub(r"\2", text)
    text = _EMPHASIS.sub(r"\2", text)
    return re.sub("\x00(\\d+)\x00", lambda m: escaped[int(m.group(1))], text)


def _cells(row: str) -> list[str]:
    held = _ESCAPED.sub(lambda m: "\x01" if m.group(1) == "|" else m.group(0), row.strip())
    parts = held.strip("|").split("|")
    return [inline(part.replace("\x01", "\\|").strip()) for part in parts]


def _is_rule(row: str) -> bool:
    return bool(re.fullmatch(r"\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?", row.strip()))


def _table(rows: list[str], indent: str, width: int) -> list[str]:
    cells = [_cells(r) for r in rows if not _is_rule(r)]
    columns = max(len(r) for r in cells)
    cells = [r + [""] * (columns - len(r)) for r in cells]
    widths = [max(len(r[i]) for r in cells) for i in range(columns)]
    if len(indent) + sum(widths) + 2 * (columns - 1) <= width:
        lines = [
            indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in cells
        ]
        if len(lines) > 1:
            lines.insert(1, indent + "  ".join("-" * w for w in widths))
        return lines
    # Too wide for the terminal: each row as one wrapped line, "header: value; ...".
    header, body = (cells[0], cells[1:]) if len(cells) > 1 else ([""] * columns, cells)
    lines = []
    for row in body:
        text = "; ".join(f"{h}: {v}" if h else v for h, v in zip(header, row, strict=True) if v)
        lines.extend(_wrap(text, width, indent, "- "))
    return lines


def _wrap(text: str, width: int, indent: str, lead: str = "") -> list[str]:
    return textwrap.wrap(
        text,
        width=max(width, 40),
        initial_indent=indent + lead,
        subsequent_indent=indent + " " * len(lead),
        break_on_hyphens=False,
        break_long_words=False,
    )


def markdown_text(markdown: str, *, width: int, indent: str = "    ") -> list[str]:
    """A card detail as lines of terminal text."""
    out: list[str] = []
    lines = markdown.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("|"):
            block = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                block.append(lines[i])
                i += 1
            out.extend(_table(block, indent, width))
            continue
        i += 1
        if not line.strip():
            if out and out[-1]:
                out.append("")
            continue
        bullet = re.match(r"\s*([-*+]|\d+\.)\s+", line)
        lead = "- " if bullet else ""
        body = inline(line[bullet.end() :] if bullet else line.strip())
        out.extend(_wrap(body, width, indent, lead))
    while out and not out[-1]:
        out.pop()
    return out


def card_lines(card: dict[str, Any], *, width: int, colour: bool) -> list[str]:
    """One card: indicator and summary, source, detail, suggestions with their actions, links."""
    indicator = str(card.get("indicator", "info"))
    tag = f"[{indicator.upper()}]"
    if colour:
        tag = f"{_COLOURS.get(indicator, '')}{tag}{_RESET}"
    lines = [f"{tag} {card.get('summary', '')}"]
    label = (card.get("source") or {}).get("label")
    if label:
        lines.append(f"    source: {label}")
    if card.get("detail"):
        lines.append("")
        lines.extend(markdown_text(str(card["detail"]), width=width))
    suggestions = card.get("suggestions") or []
    if suggestions:
        lines.extend(["", "    Suggestions:"])
        for suggestion in suggestions:
            mark = " (recommended)" if suggestion.get("isRecommended") else ""
            lines.append(f"      * {suggestion.get('label', '')}{mark}")
            lines.extend(
                f"          {action.get('type', '')}: {action.get('description', '')}"
                for action in suggestion.get("actions") or []
            )
    links = card.get("links") or []
    if links:
        lines.extend(["", "    Links:"])
        lines.extend(f"      * {link.get('label', '')}: {link.get('url', '')}" for link in links)
    return lines


def response_lines(
    title: str, cards: Iterable[dict[str, Any]], *, width: int, colour: bool
) -> list[str]:
    """A service's answer: a heading, then each card (or a line saying there was none)."""
    cards = list(cards)
    lines = [title, "=" * min(len(title), width), ""]
    if not cards:
        return [*lines, "(no cards: nothing to flag for this patient)", ""]
    for card in cards:
        lines.extend(card_lines(card, width=width, colour=colour))
        lines.append("")
    return lines
