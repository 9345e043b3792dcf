"""FHIR Genomics Reporting Observations (STU3, and older STU1/STU2 shapes) to domain types.

Input is parsed JSON: a Bundle, a single resource, or a list of either. Every Observation is
first validated as an R4 Observation (``integrations.fhir.resources``); one that fails becomes a
problem at ``Observation/<id>`` and the others are still read. Then, by ``Observation.code``
(LOINC):

======================  ==========================================================================
``69548-6`` Variant     :class:`Variant` (or a fusion / copy-number :class:`Biomarker`, below)
``81247-9`` panel       STU1 master panel: read like a variant when it carries variant components
                        itself; its ``hasMember`` Observations are read as they come in the input
``84413-4`` genotype    :class:`Genotype` (pharmacogene diplotype, e.g. DPYD ``*1/*2A``)
``94076-7`` TMB         :class:`Biomarker` TMB (mutations per megabase)
``81695-9`` MSI         :class:`Biomarker` MSI-high for ``LA26203-2`` (MSI-H); stable is no finding
======================  ==========================================================================

Other Observations (implications, region studied, grouping) carry no alteration and are skipped.
A variant whose value is Absent / No call / Indeterminate (LOINC LL1971-2) is not an alteration.

Variant components (Genomics Reporting STU3 ``variant`` profile; reference note §1.4):
``48018-6`` gene (HGNC id as code, symbol as display), ``48004-6`` c.HGVS, ``48005-3`` p.HGVS,
``81290-9`` g.HGVS, ``51958-7`` transcript, ``48002-0`` genomic source class, ``81258-6``
allele fraction, ``82121-5`` depth, ``53034-5`` allelic state, ``48000-4`` chromosome,
``62374-4`` assembly, ``48013-7`` genomic RefSeq (``NC_`` accession, whose version implies the
build), ``92822-6`` coordinate system with ``81254-5`` exact start-end, ``69547-8`` ref and
``69551-0`` alt alleles, ``48019-4`` DNA change type (copy-number gain/loss, gene fusion),
``82155-3`` copy number, ``81252-9`` variation code (SPDI ``NC_000007.14:140753335:A:T`` as the
genomics-operations reference implementation sends it; substitutions only).

Positions are converted to VCF's 1-based ``pos``: 0-based interval counting (``LA30100-4``) gives
``low + 1``; 1-based counting (``LA30102-0``) gives ``low``. Without a coordinate-system component
the range itself decides (``high - low == len(ref)`` is a 0-based interval, ``len(ref) - 1`` is
1-based inclusive); a bare ``low`` is 1-based, the convention of LOINC panel 81247-9. Alleles that
are not VCF-style (SPDI's empty allele) leave the variant without a position, never a guessed one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import pydantic

from inference.genomics.hgvs import protein_change_key
from inference.genomics.model import (
    Alteration,
    Biomarker,
    BiomarkerKind,
    Gene,
    GenomeBuild,
    GenomicPosition,
    Genotype,
    Origin,
    Variant,
    Zygosity,
)
from integrations.errors import IntakeError
from integrations.fhir.resources import Observation, ObservationComponent
from integrations.intake import IntakeResult
from integrations.memo import LruCache, canonical_json
from integrations.normalise import (
    REFSEQ_CHROMOSOMES,
    ProblemSink,
    allele,
    gene,
    normalise_chrom,
    normalise_hgnc_id,
    parse_build,
    parse_fraction,
    split_hgvs,
)

#: Most resources read from one input.
MAX_RESOURCES: Final = 50_000

VARIANT: Final = "69548-6"
MASTER_PANEL: Final = "81247-9"
SIMPLE_VARIANT_PANEL: Final = "81250-3"
GENOTYPE: Final = "84413-4"
TMB: Final = "94076-7"
MSI: Final = "81695-9"

GENE: Final = "48018-6"
HGVS_C: Final = "48004-6"
HGVS_P: Final = "48005-3"
HGVS_G: Final = "81290-9"
TRANSCRIPT: Final = "51958-7"
SOURCE_CLASS: Final = "48002-0"
ALLELE_FRACTION: Final = "81258-6"
DEPTH: Final = "82121-5"
ALLELIC_STATE: Final = "53034-5"
CHROMOSOME: Final = "48000-4"
EXACT_START_END: Final = "81254-5"
COORDINATE_SYSTEM: Final = "92822-6"
REF_ALLELE: Final = "69547-8"
ALT_ALLELE: Final = "69551-0"
ASSEMBLY: Final = "62374-4"
GENOMIC_REFSEQ: Final = "48013-7"
CHANGE_TYPE: Final = "48019-4"
COPY_NUMBER: Final = "82155-3"
VARIATION_CODE: Final = "81252-9"

_NOT_PRESENT: Final = frozenset({"LA9634-2", "LA18198-4", "LA11884-6"})  # absent, no call, indet.
_ASSEMBLIES: Final = {"LA14029-5": GenomeBuild.GRCH37, "LA26806-2": GenomeBuild.GRCH38}
_ZERO_BASED_INTERVAL: Final = "LA30100-4"
_ZERO_BASED_CHARACTER: Final = "LA30101-2"
_ONE_BASED_CHARACTER: Final = "LA30102-0"
# LOINC answer list LL378-1 (genomic source class).
_SOURCE_CLASS: Final = {
    "LA6683-2": Origin.GERMLINE,
    "LA6684-0": Origin.SOMATIC,
    "LA18194-3": Origin.GERMLINE,  # likely germline
    "LA18195-0": Origin.SOMATIC,  # likely somatic
    "LA26807-0": Origin.GERMLINE,  # de novo: constitutional, not tumour-acquired
    "LA10429-1": Origin.UNKNOWN,  # fetal
    "LA18196-8": Origin.UNKNOWN,  # likely fetal
    "LA18197-6": Origin.UNKNOWN,
}
# LOINC answer list LL381-5 (allelic state).
_ALLELIC_STATE: Final = {
    "LA6706-1": Zygosity.HETEROZYGOUS,
    "LA6705-3": Zygosity.HOMOZYGOUS,
    "LA6707-9": Zygosity.HEMIZYGOUS,
}
# LOINC answer list LL2938-0 (chromosome): LA21254-0 is chromosome 1 … LA21277-1 is Y.
_CHROMOSOME_LA: Final = {
    "LA21254-0": "1", "LA21255-7": "2", "LA21256-5": "3", "LA21257-3": "4", "LA21258-1": "5",
    "LA21259-9": "6", "LA21260-7": "7", "LA21261-5": "8", "LA21262-3": "9", "LA21263-1": "10",
    "LA21264-9": "11", "LA21265-6": "12", "LA21266-4": "13", "LA21267-2": "14",
    "LA21268-0": "15", "LA21269-8": "16", "LA21270-6": "17", "LA21271-4": "18",
    "LA21272-2": "19", "LA21273-0": "20", "LA21274-8": "21", "LA21275-5": "22",
    "LA21276-3": "X", "LA21277-1": "Y",
}  # fmt: skip
# Sequence Ontology terms for DNA change type (48019-4) that are gene-level biomarkers.
_SO_GAIN: Final = frozenset({"SO:0001742", "copy_number_gain"})
_SO_LOSS: Final = frozenset({"SO:0001743", "copy_number_loss"})
_SO_FUSION: Final = frozenset({"SO:0001565", "gene_fusion"})
_MSI_HIGH: Final = "LA26203-2"
_MSI_NEGATIVE: Final = frozenset({"LA14122-8", "LA26202-4"})  # stable, MSI-low
_CHROMOSOME_TEXT = re.compile(r"^(?:chromosome|chr)?\s*([0-9]{1,2}|X|Y|MT?)$", re.IGNORECASE)
_G_SNV = re.compile(r"^g\.(\d+)([ACGT])>([ACGT])$")
# SPDI (NCBI Variation Services) as the genomics-operations reference implementation sends it in
# the variation-code component; only substitutions (equal, non-empty alleles) map to VCF directly.
_SPDI = re.compile(r"^(?P<acc>NC_\d+\.\d+):(?P<pos>\d+):(?P<ref>[ACGT]+):(?P<alt>[ACGT]+)$")
_STAR_DIPLOTYPE = re.compile(r"^(?:(?P<gene>[A-Za-z0-9-]+)\s*)?(?P<dip>\*\w+\s*/\s*\*\w+)$")

Json = Mapping[str, Any]


# ------------------------------------------------------------------ generic FHIR value access


def _codings(concept: Any) -> list[Json]:
    if not isinstance(concept, Mapping):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, Mapping)]


def _codes(concept: Any) -> set[str]:
    return {str(c["code"]).strip() for c in _codings(concept) if c.get("code")}


def _texts(concept: Any) -> list[str]:
    out = [str(c["display"]).strip() for c in _codings(concept) if c.get("display")]
    if isinstance(concept, Mapping) and concept.get("text"):
        out.append(str(concept["text"]).strip())
    return out


def _string(component: Json) -> str | None:
    """A component's value as text: valueString, or the code / display / text of its concept."""
    if component.get("valueString"):
        return str(component["valueString"]).strip()
    concept = component.get("valueCodeableConcept")
    for coding in _codings(concept):
        if coding.get("code"):
            return str(coding["code"]).strip()
    texts = _texts(concept)
    return texts[0] if texts else None


def _quantity(component: Json) -> tuple[float, str] | None:
    quantity = component.get("valueQuantity")
    if not isinstance(quantity, Mapping) or quantity.get("value") is None:
        return None
    unit = str(quantity.get("code") or quantity.get("unit") or "")
    return float(quantity["value"]), unit


class _Components:
    """An Observation's components by LOINC code (code-only and system-less forms accepted)."""

    def __init__(self, resource: Json) -> None:
        self.by_code: dict[str, list[Json]] = {}
        for component in resource.get("component") or []:
            if not isinstance(component, Mapping):
                continue
            for code in _codes(component.get("code")):
                self.by_code.setdefault(code, []).append(component)

    def first(self, code: str) -> Json | None:
        found = self.by_code.get(code)
        return found[0] if found else None

    def all(self, code: str) -> list[Json]:
        return self.by_code.get(code, [])

    def string(self, code: str) -> str | None:
        component = self.first(code)
        return _string(component) if component else None


# ------------------------------------------------------------------ collection of resources


def _resources(data: Any, path: str = "") -> Iterator[tuple[str, Json]]:
    """(fallback location, resource) for every resource in a Bundle / resource / list."""
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        for i, item in enumerate(data):
            yield from _resources(item, f"{path}[{i}]")
        return
    if not isinstance(data, Mapping):
        yield path or "input", {}
        return
    if data.get("resourceType") == "Bundle":
        for i, entry in enumerate(data.get("entry") or []):
            resource = entry.get("resource") if isinstance(entry, Mapping) else None
            if resource is None:
                continue
            full_url = entry.get("fullUrl") if isinstance(entry, Mapping) else None
            yield from _resources(resource, str(full_url or f"{path}Bundle.entry[{i}]"))
        return
    yield path or "input", data
    # Contained Observations (some EHRs inline them in a DiagnosticReport) are read as well.
    for i, contained in enumerate(data.get("contained") or []):
        if isinstance(contained, Mapping):
            yield f"{path or 'input'}.contained[{i}]", contained


def _location(resource: Json, fallback: str) -> str:
    kind = resource.get("resourceType") or "resource"
    rid = resource.get("id")
    return f"{kind}/{rid}" if rid else f"{fallback} ({kind})"


def _validation_reason(exc: pydantic.ValidationError) -> str:
    # Location and message only: FHIR input may hold PHI, so the offending value is not echoed.
    parts = []
    for error in exc.errors()[:3]:
        loc = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{loc}: {error.get('msg', 'invalid')}")
    more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return "invalid Observation: " + "; ".join(parts) + more


# ------------------------------------------------------------------ mapping


class _Mapper:
    def __init__(self, build: GenomeBuild | None, sink: ProblemSink) -> None:
        self.build = build
        self.sink = sink

    def observation(self, resource: Json, location: str, result: IntakeResult) -> None:
        codes = _codes(resource.get("code"))
        if GENOTYPE in codes:
            genotype = self.genotype(resource, location)
            if genotype is not None:
                result.genotypes.append(genotype)
            return
        alteration: Alteration | None = None
        if TMB in codes:
            alteration = self.tmb(resource, location)
        elif MSI in codes:
            alteration = self.msi(resource, location)
        elif codes & {VARIANT, MASTER_PANEL, SIMPLE_VARIANT_PANEL}:
            components = _Components(resource)
            if VARIANT not in codes and not (
                components.first(GENE) or components.first(REF_ALLELE)
            ):
                return  # a grouping panel: its members are read on their own
            if _codes(resource.get("valueCodeableConcept")) & _NOT_PRESENT:
                return
            alteration = self.variant(components, location)
        if alteration is not None:
            result.alterations.append(alteration)

    # -------------------------------------------------------------- variants

    def variant(self, components: _Components, location: str) -> Alteration | None:
        genes = [g for g in (self.gene(c) for c in components.all(GENE)) if g is not None]
        origin = self.origin(components)
        change_type: set[str] = set()
        for component in components.all(CHANGE_TYPE):
            concept = component.get("valueCodeableConcept")
            change_type |= _codes(concept) | {t.lower() for t in _texts(concept)}
        if change_type & (_SO_FUSION | _SO_GAIN | _SO_LOSS) or any(
            "fusion" in t for t in change_type
        ):
            return self.gene_level(components, genes, change_type, origin, location)
        gene_ = genes[0] if genes else None
        transcript = components.string(TRANSCRIPT)
        hgvs_c = hgvs_p = None
        c_text = components.string(HGVS_C)
        if c_text:
            accession, hgvs_c = split_hgvs(c_text)
            transcript = transcript or accession
        p_text = components.string(HGVS_P)
        if p_text:
            hgvs_p = split_hgvs(p_text)[1]
        hgvs_g = components.string(HGVS_G)
        position = self.position(components, hgvs_g, location)
        if position is False:
            return None
        fraction = self.fraction(components, location)
        depth = self.depth(components, location)
        if position is None and not (gene_ and (hgvs_c or hgvs_p)) and not hgvs_g:
            self.sink.add(location, "variant has neither gene with HGVS nor a genomic position")
            return None
        state = _codes((components.first(ALLELIC_STATE) or {}).get("valueCodeableConcept"))
        zygosity = next((_ALLELIC_STATE[c] for c in state if c in _ALLELIC_STATE), None)
        return Variant(
            gene=gene_,
            hgvs_c=hgvs_c,
            hgvs_p=hgvs_p,
            hgvs_g=hgvs_g,
            transcript=transcript,
            protein_change=protein_change_key(hgvs_p),
            position=position if isinstance(position, GenomicPosition) else None,
            origin=origin,
            zygosity=zygosity or Zygosity.UNKNOWN,
            allele_frequency=fraction,
            depth=depth,
            source_ref=location,
        )

    def gene_level(
        self,
        components: _Components,
        genes: list[Gene],
        change_type: set[str],
        origin: Origin,
        location: str,
    ) -> Biomarker | None:
        """A fusion or copy-number change stated on a Variant Observation (48019-4)."""
        if change_type & _SO_FUSION or any("fusion" in t for t in change_type):
            if not genes:
                self.sink.add(location, "gene fusion without a gene-studied component")
                return None
            return Biomarker(
                kind=BiomarkerKind.FUSION,
                gene=genes[-1],
                fusion_partner=genes[0] if len(genes) >= 2 else None,
                origin=origin if origin is not Origin.UNKNOWN else Origin.SOMATIC,
                source_ref=location,
            )
        if change_type & (_SO_GAIN | _SO_LOSS):
            if not genes:
                self.sink.add(location, "copy-number change without a gene-studied component")
                return None
            copies = components.first(COPY_NUMBER)
            quantity = _quantity(copies) if copies else None
            return Biomarker(
                kind=BiomarkerKind.AMPLIFICATION
                if change_type & _SO_GAIN
                else BiomarkerKind.DELETION,
                gene=genes[0],
                copy_number=quantity[0] if quantity else None,
                origin=origin if origin is not Origin.UNKNOWN else Origin.SOMATIC,
                source_ref=location,
            )

        return None  # pragma: no cover - the caller checked the change type

    def gene(self, component: Json) -> Gene | None:
        concept = component.get("valueCodeableConcept")
        hgnc_id = None
        symbol = None
        for coding in _codings(concept):
            code = str(coding.get("code") or "").strip()
            system = str(coding.get("system") or "")
            if code.upper().startswith("HGNC:") or ("genenames" in system and code.isdigit()):
                hgnc_id = normalise_hgnc_id(code)
            elif code and "genenames" in system and symbol is None:
                symbol = code  # older senders put the symbol in the code
            if coding.get("display") and symbol is None:
                symbol = str(coding["display"])
        if symbol is None and isinstance(concept, Mapping) and concept.get("text"):
            symbol = str(concept["text"])
        if symbol is None and component.get("valueString"):
            symbol = str(component["valueString"])
        return gene(symbol, hgnc_id) if symbol else None

    def origin(self, components: _Components) -> Origin:
        component = components.first(SOURCE_CLASS)
        if component is None:
            return Origin.UNKNOWN
        concept = component.get("valueCodeableConcept")
        for code in _codes(concept):
            if code in _SOURCE_CLASS:
                return _SOURCE_CLASS[code]
        for text in [*_texts(concept), str(component.get("valueString") or "")]:
            lowered = text.lower()
            if "somatic" in lowered:
                return Origin.SOMATIC
            if "germline" in lowered:
                return Origin.GERMLINE
        return Origin.UNKNOWN

    def fraction(self, components: _Components, location: str) -> float | None:
        component = components.first(ALLELE_FRACTION)
        quantity = _quantity(component) if component else None
        if quantity is None:
            return None
        value, unit = quantity
        fraction = parse_fraction(value, percent=unit.strip() == "%")
        if fraction is None:
            self.sink.add(location, f"allele fraction {value:g}{unit} is outside 0..1; ignored")
        return fraction

    def depth(self, components: _Components, location: str) -> int | None:
        component = components.first(DEPTH)
        quantity = _quantity(component) if component else None
        if quantity is None:
            return None
        value = quantity[0]
        if value < 0 or value != int(value):
            self.sink.add(location, f"read depth {value:g} is not a read count; ignored")
            return None
        return int(value)

    def position(
        self, components: _Components, hgvs_g: str | None, location: str
    ) -> GenomicPosition | bool | None:
        """The VCF-style position, ``None`` when not given, ``False`` after a conflict."""
        build = None
        chrom = None
        refseq_text = components.string(GENOMIC_REFSEQ)
        g_accession, g_expression = split_hgvs(hgvs_g) if hgvs_g else (None, "")
        spdi = _spdi(components)
        refseq = REFSEQ_CHROMOSOMES.get(
            (refseq_text or g_accession or (spdi.group("acc") if spdi else "")).strip()
        )
        assembly_component = components.first(ASSEMBLY)
        if assembly_component is not None:
            concept = assembly_component.get("valueCodeableConcept")
            found = [_ASSEMBLIES[c] for c in _codes(concept) if c in _ASSEMBLIES]
            found += [b for b in (parse_build(t) for t in _texts(concept)) if b is not None]
            if assembly_component.get("valueString"):
                value_build = parse_build(str(assembly_component["valueString"]))
                found += [value_build] if value_build else []
            build = found[0] if found else None
        if refseq is not None:
            if build is not None and build is not refseq[0]:
                self.sink.add(
                    location,
                    f"assembly {build.value} contradicts RefSeq {refseq_text or g_accession} "
                    f"({refseq[0].value})",
                )
                return False
            build, chrom = refseq
        chromosome_component = components.first(CHROMOSOME)
        if chromosome_component is not None:
            stated = _chromosome(chromosome_component)
            if stated is not None and chrom is not None and stated != chrom:
                self.sink.add(
                    location, f"chromosome {stated} contradicts RefSeq chromosome {chrom}"
                )
                return False
            chrom = chrom or stated
        build = build or self.build

        ref_text = components.string(REF_ALLELE)
        alt_text = components.string(ALT_ALLELE)
        start_end = components.first(EXACT_START_END)
        pos: int | None = None
        ref = allele(ref_text) if ref_text else None
        alt = allele(alt_text) if alt_text else None
        if start_end is not None and ref is not None:
            pos = _vcf_pos(start_end, components.string(COORDINATE_SYSTEM), len(ref))
        elif (snv := _G_SNV.match(g_expression or "")) is not None and refseq is not None:
            pos, ref, alt = int(snv.group(1)), snv.group(2), snv.group(3)
        elif spdi is not None and refseq is not None:
            # SPDI position is 0-based; equal-length alleles need no anchor base (SNV/MNV).
            pos, ref, alt = int(spdi.group("pos")) + 1, spdi.group("ref"), spdi.group("alt")
        if pos is None or ref is None or alt is None or chrom is None:
            return None
        if build is None:
            self.sink.add(location, "genomic coordinates without a genome build; position ignored")
            return None
        if pos < 1:
            self.sink.add(location, f"start position {pos} is not a valid 1-based position")
            return False
        return GenomicPosition(build, chrom, pos, ref, alt)

    # -------------------------------------------------------------- other observations

    def genotype(self, resource: Json, location: str) -> Genotype | None:
        components = _Components(resource)
        gene_component = components.first(GENE)
        gene_ = self.gene(gene_component) if gene_component else None
        concept = resource.get("valueCodeableConcept")
        candidates = [str(c.get("display") or c.get("code") or "") for c in _codings(concept)]
        candidates += _texts(concept)
        if resource.get("valueString"):
            candidates.append(str(resource["valueString"]))
        for text in candidates:
            match = _STAR_DIPLOTYPE.match(text.strip())
            if match is None:
                continue
            if gene_ is None and match.group("gene"):
                gene_ = gene(match.group("gene"))
            if gene_ is None:
                break
            diplotype = re.sub(r"\s+", "", match.group("dip"))
            return Genotype(gene=gene_, diplotype=diplotype, source_ref=location)
        self.sink.add(location, "genotype without a gene and a star-allele diplotype (*1/*2A)")
        return None

    def tmb(self, resource: Json, location: str) -> Biomarker | None:
        quantity = resource.get("valueQuantity")
        value = quantity.get("value") if isinstance(quantity, Mapping) else None
        if value is None or float(value) < 0:
            self.sink.add(location, "tumour mutational burden without a value")
            return None
        return Biomarker(kind=BiomarkerKind.TMB, tmb=float(value), source_ref=location)

    def msi(self, resource: Json, location: str) -> Biomarker | None:
        concept = resource.get("valueCodeableConcept")
        codes = _codes(concept)
        texts = " ".join([*_texts(concept), str(resource.get("valueString") or "")]).lower()
        if _MSI_HIGH in codes or "msi-h" in texts or "high" in texts:
            return Biomarker(kind=BiomarkerKind.MSI_HIGH, source_ref=location)
        if codes & _MSI_NEGATIVE or "stable" in texts or "msi-l" in texts or "low" in texts:
            return None
        self.sink.add(location, "microsatellite status not understood (expected MSI-H or stable)")
        return None


def _spdi(components: _Components) -> re.Match[str] | None:
    for component in components.all(VARIATION_CODE):
        for code in _codes(component.get("valueCodeableConcept")):
            match = _SPDI.match(code)
            if match and len(match.group("ref")) == len(match.group("alt")):
                return match
    return None


def _chromosome(component: Json) -> str | None:
    concept = component.get("valueCodeableConcept")
    for code in _codes(concept):
        if code in _CHROMOSOME_LA:
            return _CHROMOSOME_LA[code]
    for text in [*_texts(concept), str(component.get("valueString") or "")]:
        match = _CHROMOSOME_TEXT.match(text.strip())
        if match:
            return normalise_chrom(match.group(1))
    return None


def _vcf_pos(start_end: Json, system: str | None, ref_length: int) -> int | None:
    """1-based VCF POS from an exact start-end Range and its coordinate system (see module doc)."""
    value_range = start_end.get("valueRange")
    if not isinstance(value_range, Mapping):
        quantity = _quantity(start_end)  # HL7 v2-derived senders put a bare number here
        return int(quantity[0]) if quantity else None
    low = (value_range.get("low") or {}).get("value")
    high = (value_range.get("high") or {}).get("value")
    if low is None:
        return None
    low_i = int(low)
    if system in {_ZERO_BASED_INTERVAL, _ZERO_BASED_CHARACTER}:
        return low_i + 1
    if system == _ONE_BASED_CHARACTER:
        return low_i
    if high is not None and int(high) - low_i == ref_length:
        return low_i + 1
    return low_i


#: Top-level Observation elements that differ from one patient, order or result to the next
#: (with their ``_element`` primitive extensions). The other elements (status, category, code,
#: value, method, interpretation, …) and each component repeat across a lab's results.
_PER_RESULT: Final = frozenset(
    {
        "id",
        "meta",
        "implicitRules",
        "language",
        "text",
        "contained",
        "extension",
        "modifierExtension",
        "identifier",
        "basedOn",
        "partOf",
        "subject",
        "focus",
        "encounter",
        "effectiveDateTime",
        "effectivePeriod",
        "effectiveTiming",
        "effectiveInstant",
        "issued",
        "performer",
        "note",
        "specimen",
        "device",
        "hasMember",
        "derivedFrom",
    }
)

#: Canonical JSON of a whole Observation → why it is invalid ("" when valid).
_known_problems: LruCache[bytes, str] = LruCache(16_384)
#: Canonical JSON of the repeating part of an Observation, or of a component → valid?
_known_shells: LruCache[bytes, bool] = LruCache(4_096)
_known_components: LruCache[bytes, bool] = LruCache(16_384)


def _remembered_validity(cache: LruCache[bytes, bool], model: Any, data: Json) -> bool:
    key = canonical_json(data)
    known = cache.get(key)
    if known is None:
        try:
            model.model_validate(data)
        except pydantic.ValidationError:
            known = False
        else:
            known = True
        cache.put(key, known)
    return known


def _valid_in_parts(resource: Json) -> bool:
    """Whether an Observation is valid R4, judged in three independent parts.

    fhir.resources validation costs ~0.9 ms per Variant Observation, nearly all of it in parts
    that repeat across patients: each component and the repeating top-level elements are
    validated once per distinct content; the per-result elements (:data:`_PER_RESULT`, with
    status and code, which an Observation requires) every time. The parts share no rule: FHIR's
    choice elements fall wholly in one part (``value[x]`` repeats, ``effective[x]`` is per
    result) and required elements are in both. ``False`` means "not shown valid": the caller
    validates the whole resource then.
    """
    components = resource.get("component", [])
    if "component" in resource and not (isinstance(components, list) and components):
        return False  # null, empty or not a list: whole-resource validation judges it
    if not all(
        isinstance(c, dict) and _remembered_validity(_known_components, ObservationComponent, c)
        for c in components
    ):
        return False
    shared: dict[str, Any] = {}
    own: dict[str, Any] = {
        "resourceType": "Observation",
        "status": resource.get("status"),
        "code": resource.get("code"),
    }
    for key, value in resource.items():
        if key.lstrip("_") in _PER_RESULT:
            own[key] = value
        elif key != "component":
            shared[key] = value
    if not _remembered_validity(_known_shells, Observation, shared):
        return False
    try:
        Observation.model_validate(own)
    except pydantic.ValidationError:
        return False
    return True


def _validate_observation(resource: Json) -> None:
    """Validate an Observation as R4 with ``fhir.resources``; raise ``pydantic.ValidationError``.

    Cheaply in parts when it is valid (:func:`_valid_in_parts`); otherwise whole, so the problem
    reported is the one whole-resource validation gives (same locations, same order).
    """
    if not _valid_in_parts(resource):
        Observation.model_validate(resource)


def _validation_problem(resource: Json) -> str | None:
    """Why an Observation is not valid R4 (``None`` when it is), validated once per content.

    EHRs send the same Observations on every chart open, so each distinct content is validated
    once per process (the cache key is the whole canonical JSON, so any change is validated
    again); a new one reuses what its parts share with those seen before
    (:func:`_validate_observation`).
    """
    key = canonical_json(resource)
    problem = _known_problems.get(key)
    if problem is None:
        try:
            _validate_observation(resource)
        except pydantic.ValidationError as exc:
            problem = _validation_reason(exc)
        else:
            problem = ""
        _known_problems.put(key, problem)
    return problem or None


def read_fhir_variants(
    data: Any,
    *,
    build: GenomeBuild | str | None = None,
    strict: bool = False,
    name: str = "FHIR input",
) -> IntakeResult:
    """Read Genomics Reporting Observations into alterations and genotypes.

    Args:
        data: parsed JSON: a Bundle, an Observation, or a list of resources / Bundles.
        build: genome build for variants whose Observation names none (no 62374-4, no NC_).
        strict: raise :class:`IntakeError` with every problem instead of keeping good records.
        name: what the input is called in the strict-mode error message.

    Returns:
        Alterations, genotypes and one problem per unreadable Observation (``Observation/<id>``);
        ``records_read`` counts the Observations examined.

    Raises:
        IntakeError: strict mode with problems, too many resources, or nothing readable.
    """
    default_build = parse_build(str(build)) if build is not None else None
    if build is not None and default_build is None:
        raise IntakeError(f"unknown genome build {build!r}; use GRCh37 or GRCh38")
    sink = ProblemSink(name)
    mapper = _Mapper(default_build, sink)
    result = IntakeResult()
    for count, (fallback, resource) in enumerate(_resources(data), start=1):
        if count > MAX_RESOURCES:
            raise IntakeError(f"{name}: more than {MAX_RESOURCES} resources")
        if not resource:
            sink.add(fallback, "not a FHIR resource (expected a JSON object)")
            continue
        if resource.get("resourceType") != "Observation":
            continue  # DiagnosticReport, Patient, …: their Observations come as entries
        result.records_read += 1
        location = _location(resource, fallback)
        problem = _validation_problem(resource)
        if problem is not None:
            sink.add(location, problem)
            continue
        try:
            mapper.observation(resource, location, result)
        except (TypeError, ValueError, AttributeError) as exc:
            # Valid FHIR but values of an unexpected shape inside: one record, not the input.
            sink.add(location, f"could not read: {type(exc).__name__}")
    return sink.finish(result, strict=strict)
