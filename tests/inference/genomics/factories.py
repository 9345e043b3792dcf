"""Factories for domain objects used by the genomics tests (keyword defaults, no fixtures)."""

from __future__ import annotations

from inference.genomics import (
    Biomarker,
    BiomarkerKind,
    Gene,
    GenomeBuild,
    GenomicPosition,
    Medication,
    Origin,
    PatientContext,
    Variant,
    resolve_tumour_type,
)


def variant(
    gene: str | None = None,
    *,
    protein: str | None = None,
    hgvs_p: str | None = None,
    hgvs_c: str | None = None,
    build: str | None = None,
    chrom: str = "",
    pos: int = 0,
    ref: str = "",
    alt: str = "",
    origin: Origin = Origin.SOMATIC,
) -> Variant:
    position = (
        GenomicPosition(GenomeBuild(build), chrom, pos, ref, alt) if build is not None else None
    )
    return Variant(
        gene=Gene(gene) if gene else None,
        protein_change=protein,
        hgvs_p=hgvs_p,
        hgvs_c=hgvs_c,
        position=position,
        origin=origin,
    )


def biomarker(
    kind: BiomarkerKind,
    gene: str | None = None,
    *,
    partner: str | None = None,
    tmb: float | None = None,
) -> Biomarker:
    return Biomarker(
        kind=kind,
        gene=Gene(gene) if gene else None,
        fusion_partner=Gene(partner) if partner else None,
        tmb=tmb,
    )


def context(
    tumour: str | None = None,
    *,
    tags: tuple[str, ...] = (),
    medications: tuple[str, ...] = (),
) -> PatientContext:
    return PatientContext(
        tumour_type=resolve_tumour_type(tumour) if tumour else None,
        clinical_context=frozenset(tags),
        medications=tuple(Medication(name=m) for m in medications),
    )
