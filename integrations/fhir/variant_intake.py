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
``69551-0`` alt alleles, ``48019-4`` DNA change type (copy-number gain/loss, gene fusion with
both genes, FLT3 tandem duplication as FLT3-ITD; mCODE's ``molecular-consequence`` too; a fusion
with a c./p. change gives the fusion and the change), ``82155-3`` copy number, ``53037-8`` stated
significance, ``81252-9`` variation code (SPDI ``NC_000007.14:140753335:A:T`` as the
genomics-operations reference implementation sends it; substitutions only). Codes come from
:mod:`.genomics_codes`, chromosomes and accessions from :mod:`integrations.chromosomes`: an
accession of the other build, or of neither, is a problem.

Positions are converted to VCF's 1-based ``pos``: 0-based interval counting (``LA30100-4``) gives
``low + 1``; 1-based counting (``LA30102-0``) gives ``low``. Without a coordinate-system component
the range itself decides (``high - low == len(ref)`` is a 0-based interval, ``len(ref) - 1`` is
1-based inclusive); a bare ``low`` is 1-based, the convention of LOINC panel 81247-9. Alleles that
are not VCF-style (SPDI's empty allele) leave the variant without a position, never a guessed one.

JSON access is in :mod:`.variant_intake_json`, R4 validation (with its caches) in
:mod:`.variant_intake_validation`. :func:`genes_studied` reads the genes of every result,
present or absent, the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

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
    Significance,
    Variant,
    VariantClass,
    Zygosity,
)
from integrations.chromosomes import LA_CHROMOSOME, REFSEQ_CHROMOSOMES, accession_problem
from integrations.errors import IntakeError
from integrations.fhir import genomics_codes as gc
from integrations.fhir import variant_intake_json as fj
from integrations.fhir.variant_intake_json import Json
from integrations.fhir.variant_intake_validation import ValidationCaches, validation_problem
from integrations.intake import IntakeResult
from integrations.normalise import (
    ProblemSink,
    allele,
    gene,
    normalise_chrom,
    normalise_hgnc_id,
    parse_build,
    parse_fraction,
    split_hgvs,
)

#: mCODE's component for the SO term of a fusion (``loinc.org-requested-cs#molecular-consequence``).
MOLECULAR_CONSEQUENCE: Final = "molecular-consequence"
#: Most resources read from one input.
MAX_RESOURCES: Final = 50_000
#: Process-wide validation memory (see :mod:`.variant_intake_validation`).
VALIDATION_CACHES: Final = ValidationCaches.sized()

_CHROMOSOME_TEXT = re.compile(r"^(?:chromosome|chr)?\s*([0-9]{1,2}|X|Y|MT?)$", re.IGNORECASE)
_G_SNV = re.compile(r"^g\.(\d+)([ACGT])>([ACGT])$")
# SPDI (NCBI Variation Services) as the genomics-operations reference implementation sends it in
# the variation-code component; only substitutions (equal, non-empty alleles) map to VCF directly.
_SPDI = re.compile(r"^(?P<acc>NC_\d+\.\d+):(?P<pos>\d+):(?P<ref>[ACGT]+):(?P<alt>[ACGT]+)$")
_HRD_NAME = re.compile(r"\bHRD\b|homologous recombination deficien", re.IGNORECASE)
# SNOMED CT qualifier values labs use for a qualitative result: 10828004 Positive, 260385009
# Negative; LOINC LA6576-8 Positive, LA6577-6 Negative.
_POSITIVE: Final = frozenset({"10828004", "LA6576-8"})
_NEGATIVE: Final = frozenset({"260385009", "LA6577-6"})
_STAR_DIPLOTYPE = re.compile(r"^(?:(?P<gene>[A-Za-z0-9-]+)\s*)?(?P<dip>\*\w+\s*/\s*\*\w+)$")


# ------------------------------------------------------------------ mapping


class _Mapper:
    def __init__(self, build: GenomeBuild | None, sink: ProblemSink) -> None:
        self.build = build
        self.sink = sink

    def observation(self, resource: Json, location: str, result: IntakeResult) -> None:
        codes = fj.codes(resource.get("code"))
        if gc.CODE_GENOTYPE in codes:
            genotype = self.genotype(resource, location)
            if genotype is not None:
                result.genotypes.append(genotype)
            return
        alteration: Alteration | None = None
        if gc.CODE_TMB in codes:
            alteration = self.tmb(resource, location)
        elif gc.CODE_MSI in codes:
            alteration = self.msi(resource, location)
        elif _names_hrd(resource.get("code")):
            alteration = self.hrd(resource, location)
        elif codes & {gc.CODE_VARIANT, gc.CODE_MASTER_PANEL, gc.CODE_SIMPLE_VARIANT}:
            components = fj.Components(resource)
            if gc.CODE_VARIANT not in codes and not (
                components.first(gc.C_GENE) or components.first(gc.C_REF_ALLELE)
            ):
                return  # a grouping panel: its members are read on their own
            if fj.codes(resource.get("valueCodeableConcept")) & gc.VARIANT_NOT_PRESENT:
                return
            result.alterations.extend(self.variant(components, location))
            return
        if alteration is not None:
            result.alterations.append(alteration)

    # -------------------------------------------------------------- variants

    def variant(self, components: fj.Components, location: str) -> tuple[Alteration, ...]:
        """A Variant Observation: a sequence variant, a fusion or copy-number change (48019-4),
        or a fusion with the change it carries (``BCR::ABL1`` with ``ABL1 T315I``)."""
        genes = [g for g in (self.gene(c) for c in components.all(gc.C_GENE)) if g is not None]
        origin = self.origin(components)
        change_type: set[str] = set()
        # mCODE puts the SO term in a "molecular-consequence" component instead of 48019-4.
        for component in [
            *components.all(gc.C_CHANGE_TYPE),
            *components.all(MOLECULAR_CONSEQUENCE),
        ]:
            concept = component.get("valueCodeableConcept")
            change_type |= fj.codes(concept) | {t.lower() for t in fj.texts(concept)}
        if change_type & (gc.SO_FUSION | gc.SO_COPY_GAIN | gc.SO_COPY_LOSS) or any(
            "fusion" in t for t in change_type
        ):
            biomarker = self.gene_level(components, genes, change_type, origin, location)
            if biomarker is None:
                return ()
            if biomarker.kind is BiomarkerKind.FUSION and (
                components.string(gc.C_CODING_HGVS) or components.string(gc.C_PROTEIN_HGVS)
            ):
                change = self.sequence_variant(components, biomarker.gene, origin, location)
                return (biomarker,) if change is None else (biomarker, change)
            return (biomarker,)
        if (
            change_type & gc.SO_TANDEM_DUPLICATION
            and genes
            and genes[0].symbol == "FLT3"
            and not (components.string(gc.C_CODING_HGVS) or components.string(gc.C_PROTEIN_HGVS))
        ):
            # A FLT3 tandem duplication stated without HGVS is the FLT3-ITD class.
            return (
                Variant(
                    gene=genes[0],
                    origin=origin,
                    variant_class=VariantClass.ITD,
                    allele_frequency=self.fraction(components, location),
                    source_ref=location,
                ),
            )
        found = self.sequence_variant(components, genes[0] if genes else None, origin, location)
        return () if found is None else (found,)

    def sequence_variant(
        self, components: fj.Components, gene_: Gene | None, origin: Origin, location: str
    ) -> Variant | None:
        transcript = components.string(gc.C_TRANSCRIPT)
        hgvs_c = hgvs_p = None
        c_text = components.string(gc.C_CODING_HGVS)
        if c_text:
            accession, hgvs_c = split_hgvs(c_text)
            transcript = transcript or accession
        p_text = components.string(gc.C_PROTEIN_HGVS)
        if p_text:
            hgvs_p = split_hgvs(p_text)[1]
        hgvs_g = components.string(gc.C_GENOMIC_HGVS)
        position = self.position(components, hgvs_g, location)
        if position is False:
            return None
        fraction = self.fraction(components, location)
        depth = self.depth(components, location)
        if position is None and not (gene_ and (hgvs_c or hgvs_p)) and not hgvs_g:
            self.sink.add(location, "variant has neither gene with HGVS nor a genomic position")
            return None
        state = fj.codes((components.first(gc.C_ALLELIC_STATE) or {}).get("valueCodeableConcept"))
        zygosity = next(
            (gc.ALLELIC_STATE_ZYGOSITY[c] for c in state if c in gc.ALLELIC_STATE_ZYGOSITY), None
        )
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
            classification=self.classification(components),
        )

    def classification(self, components: fj.Components) -> Significance | None:
        """53037-8 where a sender states it on the Variant (the IG puts it on implications)."""
        concept = (components.first(gc.C_CLIN_SIG) or {}).get("valueCodeableConcept")
        for code in fj.codes(concept):
            if code in gc.CLINICAL_SIGNIFICANCE_TERM:
                return Significance(gc.CLINICAL_SIGNIFICANCE_TERM[code])
        return None

    def gene_level(
        self,
        components: fj.Components,
        genes: list[Gene],
        change_type: set[str],
        origin: Origin,
        location: str,
    ) -> Biomarker | None:
        """A fusion or copy-number change stated on a Variant Observation (48019-4)."""
        if change_type & gc.SO_FUSION or any("fusion" in t for t in change_type):
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
        if change_type & (gc.SO_COPY_GAIN | gc.SO_COPY_LOSS):
            if not genes:
                self.sink.add(location, "copy-number change without a gene-studied component")
                return None
            copies = components.first(gc.C_COPY_NUMBER)
            quantity = fj.quantity(copies) if copies else None
            return Biomarker(
                kind=BiomarkerKind.AMPLIFICATION
                if change_type & gc.SO_COPY_GAIN
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
        for coding in fj.codings(concept):
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

    def origin(self, components: fj.Components) -> Origin:
        component = components.first(gc.C_SOURCE_CLASS)
        if component is None:
            return Origin.UNKNOWN
        concept = component.get("valueCodeableConcept")
        for code in fj.codes(concept):
            if code in gc.SOURCE_CLASS_ORIGIN:
                return gc.SOURCE_CLASS_ORIGIN[code]
        for text in [*fj.texts(concept), str(component.get("valueString") or "")]:
            lowered = text.lower()
            if "somatic" in lowered:
                return Origin.SOMATIC
            if "germline" in lowered:
                return Origin.GERMLINE
        return Origin.UNKNOWN

    def fraction(self, components: fj.Components, location: str) -> float | None:
        component = components.first(gc.C_AF)
        quantity = fj.quantity(component) if component else None
        if quantity is None:
            return None
        value, unit = quantity
        fraction = parse_fraction(value, percent=unit.strip() == "%")
        if fraction is None:
            self.sink.add(location, f"allele fraction {value:g}{unit} is outside 0..1; ignored")
        return fraction

    def depth(self, components: fj.Components, location: str) -> int | None:
        component = components.first(gc.C_DEPTH)
        quantity = fj.quantity(component) if component else None
        if quantity is None:
            return None
        value = quantity[0]
        if value < 0 or value != int(value):
            self.sink.add(location, f"read depth {value:g} is not a read count; ignored")
            return None
        return int(value)

    def stated_build(self, components: fj.Components) -> GenomeBuild | None:
        """The build the assembly component (62374-4) names, by LA code or by name."""
        assembly_component = components.first(gc.C_ASSEMBLY)
        if assembly_component is None:
            return None
        concept = assembly_component.get("valueCodeableConcept")
        found = [gc.ASSEMBLY_BUILD[c] for c in fj.codes(concept) if c in gc.ASSEMBLY_BUILD]
        found += [b for b in (parse_build(t) for t in fj.texts(concept)) if b is not None]
        if assembly_component.get("valueString"):
            value_build = parse_build(str(assembly_component["valueString"]))
            found += [value_build] if value_build else []
        return found[0] if found else None

    def position(
        self, components: fj.Components, hgvs_g: str | None, location: str
    ) -> GenomicPosition | bool | None:
        """The VCF-style position, ``None`` when not given, ``False`` after a conflict."""
        chrom = None
        refseq_text = components.string(gc.C_GENOMIC_REFSEQ)
        g_accession, g_expression = split_hgvs(hgvs_g) if hgvs_g else (None, "")
        spdi = _spdi(components)
        accession = (refseq_text or g_accession or (spdi.group("acc") if spdi else "")).strip()
        refseq = REFSEQ_CHROMOSOMES.get(accession)
        build = self.stated_build(components)
        # The one accession table: an accession of the other build contradicts the assembly; one
        # of neither build (NC_000007.12 is GRCh36) cannot be placed (as in HL7 and VCF).
        conflict = accession_problem(accession, build) if accession else None
        if conflict is not None:
            self.sink.add(location, conflict)
            return False
        if refseq is not None:
            build, chrom = refseq
        chromosome_component = components.first(gc.C_CHROMOSOME)
        if chromosome_component is not None:
            stated = _chromosome(chromosome_component)
            if stated is not None and chrom is not None and stated != chrom:
                self.sink.add(
                    location, f"chromosome {stated} contradicts RefSeq chromosome {chrom}"
                )
                return False
            chrom = chrom or stated
        build = build or self.build

        ref_text = components.string(gc.C_REF_ALLELE)
        alt_text = components.string(gc.C_ALT_ALLELE)
        start_end = components.first(gc.C_EXACT_START_END)
        pos: int | None = None
        ref = allele(ref_text) if ref_text else None
        alt = allele(alt_text) if alt_text else None
        if start_end is not None and ref is not None:
            pos = _vcf_pos(start_end, components.string(gc.C_COORD_SYSTEM), len(ref))
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
        components = fj.Components(resource)
        gene_component = components.first(gc.C_GENE)
        gene_ = self.gene(gene_component) if gene_component else None
        concept = resource.get("valueCodeableConcept")
        candidates = [str(c.get("display") or c.get("code") or "") for c in fj.codings(concept)]
        candidates += fj.texts(concept)
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

    def hrd(self, resource: Json, location: str) -> Biomarker | None:
        """HRD status as the lab states it (positive or negative), with its score if given.

        A score alone is not read as positive: the cut-off belongs to the test (as for text).
        """
        concept = resource.get("valueCodeableConcept")
        codes = fj.codes(concept)
        words = " ".join([*fj.texts(concept), str(resource.get("valueString") or "")]).lower()
        score = None
        for component in resource.get("component") or []:
            quantity = fj.quantity(component) if isinstance(component, Mapping) else None
            if quantity is not None:
                score = quantity[0]
        if codes & _NEGATIVE or "negative" in words or "not detected" in words:
            return None
        if codes & _POSITIVE or "positive" in words or words.strip() == "detected":
            return Biomarker(kind=BiomarkerKind.HRD, score=score, source_ref=location)
        self.sink.add(location, "HRD status not understood (expected positive or negative)")
        return None

    def msi(self, resource: Json, location: str) -> Biomarker | None:
        concept = resource.get("valueCodeableConcept")
        codes = fj.codes(concept)
        texts = " ".join([*fj.texts(concept), str(resource.get("valueString") or "")]).lower()
        if gc.MSI_HIGH[0] in codes or "msi-h" in texts or "high" in texts:
            return Biomarker(kind=BiomarkerKind.MSI_HIGH, source_ref=location)
        if codes & gc.MSI_NEGATIVE or "stable" in texts or "msi-l" in texts or "low" in texts:
            return None
        self.sink.add(location, "microsatellite status not understood (expected MSI-H or stable)")
        return None


def _names_hrd(concept: Any) -> bool:
    """Whether an Observation's code names HRD status. LOINC has no code for it, so labs send a
    local one: it is recognised by its display or text, nothing else."""
    return any(_HRD_NAME.search(text) for text in fj.texts(concept))


def _spdi(components: fj.Components) -> re.Match[str] | None:
    for component in components.all(gc.C_VARIATION_CODE):
        for code in fj.codes(component.get("valueCodeableConcept")):
            match = _SPDI.match(code)
            if match and len(match.group("ref")) == len(match.group("alt")):
                return match
    return None


def _chromosome(component: Json) -> str | None:
    concept = component.get("valueCodeableConcept")
    for code in fj.codes(concept):
        if code in LA_CHROMOSOME:
            return LA_CHROMOSOME[code]
    for text in [*fj.texts(concept), str(component.get("valueString") or "")]:
        match = _CHROMOSOME_TEXT.match(text.strip())
        if match:
            return normalise_chrom(match.group(1))
    return None


def _vcf_pos(start_end: Json, system: str | None, ref_length: int) -> int | None:
    """1-based VCF POS from an exact start-end Range and its coordinate system (see module doc)."""
    value_range = start_end.get("valueRange")
    if not isinstance(value_range, Mapping):
        quantity = fj.quantity(start_end)  # HL7 v2-derived senders put a bare number here
        return int(quantity[0]) if quantity else None
    low = (value_range.get("low") or {}).get("value")
    high = (value_range.get("high") or {}).get("value")
    if low is None:
        return None
    low_i = int(low)
    if system in {gc.ZERO_BASED_INTERVAL[0], gc.ZERO_BASED_CHARACTER[0]}:
        return low_i + 1
    if system == gc.ONE_BASED_CHARACTER[0]:
        return low_i
    if high is not None and int(high) - low_i == ref_length:
        return low_i + 1
    return low_i


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
    for count, (fallback, resource) in enumerate(fj.resources(data), start=1):
        if count > MAX_RESOURCES:
            raise IntakeError(f"{name}: more than {MAX_RESOURCES} resources")
        if not resource:
            sink.add(fallback, "not a FHIR resource (expected a JSON object)")
            continue
        if resource.get("resourceType") != "Observation":
            continue  # DiagnosticReport, Patient, …: their Observations come as entries
        result.records_read += 1
        location = fj.location(resource, fallback)
        problem = validation_problem(resource, VALIDATION_CACHES)
        if problem is not None:
            sink.add(location, problem)
            continue
        try:
            mapper.observation(resource, location, result)
        except (TypeError, ValueError, AttributeError) as exc:
            # Valid FHIR but values of an unexpected shape inside: one record, not the input.
            sink.add(location, f"could not read: {type(exc).__name__}")
    return sink.finish(result, strict=strict)


def genes_studied(data: Any) -> set[str]:
    """Symbols of every gene a genomic Observation names (48018-6), present or absent.

    A variant reported absent (LOINC LL1971-2 ``LA9634-2``) still means its gene was tested: a
    negative EGFR result is an EGFR result on file. Genes are read the way
    :func:`read_fhir_variants` reads them (HGNC display, code or text; upper-case symbols), from
    every Observation in a Bundle, a resource or a list, whatever its code.
    """
    mapper = _Mapper(None, ProblemSink("genes studied"))
    found: set[str] = set()
    for count, (_fallback, resource) in enumerate(fj.resources(data), start=1):
        if count > MAX_RESOURCES:
            break
        if resource.get("resourceType") != "Observation":
            continue
        for component in fj.Components(resource).all(gc.C_GENE):
            studied = mapper.gene(component)
            if studied is not None:
                found.add(studied.symbol.upper())
    return found
