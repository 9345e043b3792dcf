"""The tumour type of an HL7 genetic result: from OBX 81259-4 / 51967-8, OBR-31 or DG1-3 when
the curated table knows it, else "tumour type unknown" (never a guess)."""

from __future__ import annotations

import pytest

from cds_service.hl7.processing import tumour_type_of
from integrations.hl7v2.oru import read_genetic_results
from tests.hl7_support import make_oru


def _with(extra_after_obr: str = "", obr31: str = "", dg1: str = "") -> str:
    segments = make_oru("TT1").decode().rstrip("\r").split("\r")
    out = []
    for original in segments:
        segment = original
        if segment.startswith("OBR|") and obr31:
            fields = segment.split("|")
            fields += [""] * (32 - len(fields))
            fields[31] = obr31
            segment = "|".join(fields)
        out.append(segment)
        if segment.startswith("PID|") and dg1:
            out.append(f"DG1|1||{dg1}||20260101|F")
        if segment.startswith("OBR|") and extra_after_obr:
            out.append(extra_after_obr)
    return "\r".join(out) + "\r"


@pytest.mark.parametrize(
    ("text", "expected", "source"),
    [
        (
            _with("OBX|90|CWE|81259-4^Associated phenotype^LN|2a|C18.7^Sigmoid colon cancer^I10"),
            "COAD",
            "OBX 81259-4",
        ),
        (
            _with("OBX|90|CWE|51967-8^Genetic disease assessed^LN|1|^Colorectal adenocarcinoma"),
            "COADREAD",
            "OBX 51967-8",
        ),
        (_with(obr31="363406005^Carcinoma of colon^SCT"), "COAD", "OBR-31"),
        (_with(dg1="C18.7^Malignant neoplasm of sigmoid colon^I10"), "COAD", "DG1-3"),
        # The whole OncoTree and the mappings for common cancers (the same table as the CLI).
        (_with(dg1="D47.02^Systemic mastocytosis^I10C"), "SM", "DG1-3"),
        (_with(dg1="C82.09^Follicular lymphoma grade I^I10"), "FL", "DG1-3"),
        (_with(obr31="BLCA^Bladder Urothelial Carcinoma^ONCOTREE"), "BLCA", "OBR-31"),
        (_with(obr31="MM^Multiple myeloma^ONCOTREE"), "PCM", "OBR-31"),
        (_with(obr31="702369008^Carcinosarcoma of uterus^SCT"), "UCS", "OBR-31"),
    ],
)
def test_tumour_type_is_read_from_the_message(text: str, expected: str, source: str) -> None:
    tumour, found_in = tumour_type_of(read_genetic_results(text))
    assert tumour is not None
    assert (tumour.code, found_in) == (expected, source)


def test_unknown_or_absent_diagnosis_is_not_guessed() -> None:
    assert tumour_type_of(read_genetic_results(_with())) == (None, None)
    odd = _with("OBX|90|CWE|81259-4^Associated phenotype^LN|2a|X99^Something else^L")
    assert tumour_type_of(read_genetic_results(odd)) == (None, None)
