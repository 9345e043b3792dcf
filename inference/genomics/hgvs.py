"""Protein-change keys so that 1- and 3-letter HGVS forms meet (no sequence database needed).

``p.Val600Glu``, ``p.(Val600Glu)``, ``V600E``, ``p.V600E`` and ``NP_004324.2:p.Val600Glu`` all
give the key ``V600E``; ``p.Gly12Ter``/``p.G12*``/``p.G12X`` give ``G12*``; frameshifts give
``R273fs``; anything this parser does not understand gives ``None`` (never a guess).
"""

from __future__ import annotations

import re
from typing import Final

THREE_TO_ONE: Final = {
    "Ala": "A", "Arg": "R", "Asn": "N", "Asp": "D", "Cys": "C", "Gln": "Q", "Glu": "E",
    "Gly": "G", "His": "H", "Ile": "I", "Leu": "L", "Lys": "K", "Met": "M", "Phe": "F",
    "Pro": "P", "Ser": "S", "Thr": "T", "Trp": "W", "Tyr": "Y", "Val": "V", "Ter": "*",
    "Sec": "U", "Pyl": "O",
}  # fmt: skip
ONE_LETTER: Final = frozenset(THREE_TO_ONE.values()) | {"X"}

_AA3 = "|".join(THREE_TO_ONE)
_AA1 = "ACDEFGHIKLMNPQRSTVWYUO*X"
_PREFIX = re.compile(r"^(?:[A-Z]{2}_\d+(?:\.\d+)?:)?(?:p\.)?\(?(?P<body>.*?)\)?$")
_SUB3 = re.compile(rf"^(?P<ref>{_AA3})(?P<pos>\d+)(?P<alt>{_AA3}|=|\*)$")
_SUB1 = re.compile(rf"^(?P<ref>[{_AA1}])(?P<pos>\d+)(?P<alt>[{_AA1}]|=)$")
_FS3 = re.compile(rf"^(?P<ref>{_AA3})(?P<pos>\d+)(?:{_AA3})?fs(?:Ter|\*|X)?\d*$")
_FS1 = re.compile(rf"^(?P<ref>[{_AA1}])(?P<pos>\d+)(?:[{_AA1}])?fs(?:\*|X|Ter)?\d*$")


def _one(code: str) -> str:
    if code in THREE_TO_ONE:
        return THREE_TO_ONE[code]
    return "*" if code in {"X", "*"} else code


def protein_change_key(text: str | None) -> str | None:
    """Normalised one-letter protein change (``V600E``) or ``None`` if not understood."""
    if not text:
        return None
    match = _PREFIX.match(text.strip())
    if match is None:
        return None
    body = match.group("body").strip()
    for pattern in (_SUB3, _SUB1):
        sub = pattern.match(body)
        if sub:
            ref, pos, alt = sub.group("ref"), sub.group("pos"), sub.group("alt")
            alt_one = _one(ref) if alt == "=" else _one(alt)
            return f"{_one(ref)}{pos}{alt_one}"
    for pattern in (_FS3, _FS1):
        fs = pattern.match(body)
        if fs:
            return f"{_one(fs.group('ref'))}{fs.group('pos')}fs"
    return None
