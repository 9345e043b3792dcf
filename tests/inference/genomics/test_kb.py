"""Knowledge-base build: reproducible, tamper-evident, every producible therapy cited."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from inference.errors import KnowledgeBaseFormatError, KnowledgeBaseSourceError
from inference.genomics import (
    Alteration,
    BiomarkerKind,
    PatientContext,
    TumourType,
    interpret,
)
from inference.genomics.kb import DEFAULT_KB_PATH, read_knowledge_base, write_knowledge_base
from inference.genomics.kb.store import load_knowledge_base
from inference.genomics.model import Gene, Origin, Variant, VariantClass
from tests.inference.genomics.factories import biomarker, variant

SOURCES = DEFAULT_KB_PATH.parent.parent / "sources"
#: The report wording that carries each class key (``CLS|gene|class``).
_STATED_CLASS = {
    "exon19_deletion": VariantClass.EXON19_DELETION,
    "exon20_insertion": VariantClass.EXON20_INSERTION,
    "exon14_skipping": VariantClass.EXON14_SKIPPING,
    "itd": VariantClass.ITD,
    "tkd": VariantClass.TKD,
    "activating": VariantClass.ACTIVATING,
    "kinase_domain": VariantClass.KINASE_DOMAIN,
    "truncating": VariantClass.TRUNCATING,
}


def test_build_is_byte_identical_and_matches_the_committed_file(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    write_knowledge_base(SOURCES, first)
    write_knowledge_base(SOURCES, second)
    assert first.read_bytes() == second.read_bytes()
    # The committed compiled file must be what the committed sources build.
    assert first.read_bytes() == DEFAULT_KB_PATH.read_bytes()


def test_changed_civic_file_is_refused(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(SOURCES, sources)
    tsv = sources / "civic" / "01-Aug-2024-AssertionSummaries.tsv"
    tsv.write_bytes(tsv.read_bytes().replace(b"Tier I - Level A", b"Tier II - Level C", 1))
    with pytest.raises(KnowledgeBaseSourceError, match="sha256"):
        write_knowledge_base(sources, tmp_path / "kb.json")
    assert not (tmp_path / "kb.json").exists()


def test_curated_approval_without_citation_is_refused(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(SOURCES, sources)
    path = sources / "curated" / "resistance.toml"
    text = path.read_text()
    text = re.sub(r'^url = ".*"$', 'url = ""', text, count=1, flags=re.MULTILINE)
    path.write_text(text)
    with pytest.raises(KnowledgeBaseSourceError, match="no citation"):
        write_knowledge_base(sources, tmp_path / "kb.json")


def test_tumour_type_cycle_is_refused(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(SOURCES, sources)
    path = sources / "curated" / "tumour_types.toml"
    text = path.read_text().replace('code = "CANCER"\n', 'code = "CANCER"\nparent = "LUAD"\n', 1)
    path.write_text(text)
    with pytest.raises(KnowledgeBaseSourceError, match="cycle"):
        write_knowledge_base(sources, tmp_path / "kb.json")


def test_unreadable_or_foreign_compiled_file(tmp_path: Path) -> None:
    broken = tmp_path / "kb.json"
    broken.write_text("{not json")
    with pytest.raises(KnowledgeBaseFormatError):
        read_knowledge_base(broken)
    broken.write_text(json.dumps({"format": 999}))
    with pytest.raises(KnowledgeBaseFormatError, match="format"):
        read_knowledge_base(broken)


def test_no_oncokb_or_cosmic_content() -> None:
    data = json.loads(DEFAULT_KB_PATH.read_text())
    assert {s["source"] for s in data["statements"]} == {"CIViC", "FDA", "curated"}
    assert [s["name"].split()[0] for s in data["sources"]] == ["CIViC", "OncoCDS", "OncoTree"]


# ---------------------------------------------------------------- every therapy is cited


def _alteration_for(key: str) -> Alteration:  # noqa: PLR0911, PLR0912 - one per matcher kind
    """A patient alteration that carries exactly the KB matcher ``key``."""
    kind, *parts = key.split("|")
    if kind == "P":
        return variant(parts[0], protein=parts[1])
    if kind == "C":
        ref = parts[1][0]
        return variant(parts[0], protein=f"{parts[1]}{'A' if ref != 'A' else 'G'}")
    if kind == "N":
        return variant(parts[0], protein=parts[1])
    if kind == "R":
        start = int(parts[1]) + 1
        return variant(parts[0], hgvs_p=f"p.A{start}_A{start + 2}del")
    if kind == "F":
        return biomarker(BiomarkerKind.FUSION, parts[0])
    if kind == "F2":
        return biomarker(BiomarkerKind.FUSION, parts[1], partner=parts[0])
    if kind == "AMP":
        return biomarker(BiomarkerKind.AMPLIFICATION, parts[0])
    if kind == "DEL":
        return biomarker(BiomarkerKind.DELETION, parts[0])
    if kind == "MSI":
        return biomarker(BiomarkerKind.MSI_HIGH)
    if kind == "TMB":
        return biomarker(BiomarkerKind.TMB, tmb=float(parts[0]))
    if kind == "HRD":
        return biomarker(BiomarkerKind.HRD)
    if kind == "CLS":
        return Variant(gene=Gene(parts[0]), variant_class=_STATED_CLASS[parts[1]])
    if kind == "EX":
        return Variant(
            gene=Gene(parts[0]), variant_class=VariantClass.EXON_MUTATION, exon=int(parts[1])
        )
    if kind == "DLT":
        origin = Origin(parts[1]) if len(parts) > 1 else Origin.UNKNOWN
        return Variant(gene=Gene(parts[0]), hgvs_c="c.100_101delAG", origin=origin)
    if kind == "MUT":
        return Variant(gene=Gene(parts[0]), variant_class=VariantClass.MUTATION)
    raise AssertionError(f"matcher kind {kind} has no test alteration")


def _keys_carried(key: str) -> set[str]:
    """The matcher keys the test alteration for ``key`` carries (fusion: either gene too;
    substitution: its codon; codon: the concrete substitution _alteration_for builds)."""
    kind, *parts = key.split("|")
    keys = {key}
    if kind == "F2":
        keys |= {f"F|{parts[0]}", f"F|{parts[1]}"}
    elif kind == "P":
        sub = re.match(r"^([A-Z])(\d+)([A-Z*])$", parts[1])
        if sub and sub.group(1) != sub.group(3):
            keys.add(f"C|{parts[0]}|{sub.group(1)}{sub.group(2)}")
        keys.add(f"N|{parts[0]}|{parts[1]}")
    elif kind == "C":
        change = f"{parts[1]}{'A' if parts[1][0] != 'A' else 'G'}"
        keys |= {f"P|{parts[0]}|{change}", f"N|{parts[0]}|{change}"}
    elif kind == "N":
        keys.add(f"P|{parts[0]}|{parts[1]}")
    elif kind == "TMB":
        keys |= {f"TMB|{t}" for t in ("10",) if float(parts[0]) >= 10}
    elif kind in {"CLS", "EX"}:
        keys.add(f"MUT|{parts[0]}")
    elif kind == "DLT":
        # A c. frameshift: truncating, deleterious (with and without its origin), a mutation;
        # with the origin not stated, both origin keys (the facts are then found, not approved).
        keys |= {f"DLT|{parts[0]}", f"MUT|{parts[0]}", f"CLS|{parts[0]}|truncating"}
        if len(parts) == 1:
            keys |= {f"DLT|{parts[0]}|germline", f"DLT|{parts[0]}|somatic"}
    return keys


def _gene_class_drugs(allowed: dict[str, set[tuple[str, ...]]], gene: str) -> set[tuple[str, ...]]:
    """Drugs of the class-by-rule keys (class, exon, deleterious, mutation) of ``gene``."""
    found: set[tuple[str, ...]] = set()
    for key, drugs in allowed.items():
        kind, *parts = key.split("|")
        if kind in {"CLS", "EX", "DLT", "MUT"} and parts[0] == gene:
            found |= drugs
    return found


def _variant_class_drugs(
    allowed: dict[str, set[tuple[str, ...]]], key: str
) -> set[tuple[str, ...]]:
    """A sequence variant (P, C, N, R keys) also meets the class-by-rule keys of its gene."""
    kind, *parts = key.split("|")
    return _gene_class_drugs(allowed, parts[0]) if kind in {"P", "C", "N", "R"} else set()


@pytest.mark.slow
def test_every_producible_therapeutic_finding_is_cited() -> None:
    """Walk every matcher key in the KB, for every tumour type a statement names (and none)."""
    kb = read_knowledge_base(DEFAULT_KB_PATH)
    data = json.loads(DEFAULT_KB_PATH.read_text())
    # Drug sets each matcher key may yield, read straight from the compiled statements.
    allowed: dict[str, set[tuple[str, ...]]] = {}
    for statement in data["statements"]:
        if statement["kind"] == "predictive":
            for key in statement["matchers"]:
                allowed.setdefault(key, set()).add(tuple(statement["drugs"]))
    tumours: list[TumourType | None] = [None]
    for code in sorted({s["tumour"] for s in data["statements"] if s["tumour"]}):
        entry = kb.tumour_types[code]
        tumours.append(TumourType(code=code, name=entry.name, lineage=entry.lineage))
    findings = 0
    for key in sorted(allowed):
        alteration = _alteration_for(key)
        permitted = set().union(*(allowed.get(k, set()) for k in _keys_carried(key)))
        permitted |= _variant_class_drugs(allowed, key)
        for tumour in tumours:
            result = interpret([alteration], PatientContext(tumour_type=tumour), kb=kb)
            for finding in result.therapeutic:
                findings += 1
                drugs = tuple(d.name for d in finding.drugs)
                assert finding.evidence, (key, drugs)
                for evidence in finding.evidence:
                    assert evidence.url.startswith("https://"), evidence
                    assert evidence.id
                assert any(e.source in {"CIViC", "FDA", "curated"} for e in finding.evidence)
                # Only drugs some statement names for a key this alteration carries.
                assert drugs in permitted, (key, drugs)
    # CIViC "A AND B" profiles only fire with every part present: walk those combinations too.
    combos = 0
    for statement in data["statements"]:
        if statement["kind"] != "predictive" or "all_of" not in statement:
            continue
        parts = [part[0] for part in statement["all_of"]]
        alterations = [_alteration_for(key) for key in parts]
        carried = set().union(*(_keys_carried(key) for key in parts))
        permitted = set().union(*(allowed.get(k, set()) for k in carried))
        permitted |= set().union(*(_variant_class_drugs(allowed, key) for key in parts))
        entry = kb.tumour_types.get(statement["tumour"] or "CANCER")
        assert entry is not None
        tumour = TumourType(code=entry.code, name=entry.name, lineage=entry.lineage)
        result = interpret(alterations, PatientContext(tumour_type=tumour), kb=kb)
        produced = {tuple(d.name for d in f.drugs) for f in result.therapeutic}
        assert tuple(statement["drugs"]) in produced, statement["id"]
        for finding in result.therapeutic:
            combos += 1
            assert finding.evidence
            assert all(e.url.startswith("https://") for e in finding.evidence)
            assert tuple(d.name for d in finding.drugs) in permitted, statement["id"]
    assert findings > 5000
    assert combos > 100


def test_protein_changes_yield_only_drugs_stated_for_them_or_their_codon() -> None:
    kb = read_knowledge_base(DEFAULT_KB_PATH)
    data = json.loads(DEFAULT_KB_PATH.read_text())
    allowed: dict[str, set[tuple[str, ...]]] = {}
    for statement in data["statements"]:
        if statement["kind"] == "predictive":
            for key in statement["matchers"]:
                allowed.setdefault(key, set()).add(tuple(statement["drugs"]))
    checked = 0
    for key in sorted(k for k in allowed if k.startswith("P|")):
        gene, change = key.split("|")[1:]
        codon = re.match(r"^([A-Z])(\d+)([A-Z*])$", change)
        permitted = set(allowed[key])
        if codon and codon.group(1) != codon.group(3):
            permitted |= allowed.get(f"C|{gene}|{codon.group(1)}{codon.group(2)}", set())
        permitted |= _gene_class_drugs(allowed, gene)
        result = interpret([variant(gene, protein=change)], PatientContext(), kb=kb)
        for finding in result.therapeutic:
            assert tuple(d.name for d in finding.drugs) in permitted, (key, finding.drugs)
            checked += 1
    assert checked > 500


def test_civic_therapy_names_are_folded_into_the_drug_tables_generic_names() -> None:
    """CIViC writes "Imatinib Mesylate" beside "Imatinib": both are imatinib in
    ``curated/drugs.toml`` (``civic_names``), so one drug gives one therapy row."""
    kb = load_knowledge_base()
    named = {d for s in kb.statements if s["source"] == "CIViC" for d in s.get("drugs", ())}
    assert "imatinib" in named
    assert "imatinib mesylate" not in named
    assert "pictilisib bismesylate" not in named
