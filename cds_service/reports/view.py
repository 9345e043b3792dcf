"""The report page's view model: plain data built from a stored analysis, ready for Jinja2.

Everything shown comes from the stored interpretation (the same one the FHIR Bundle was built
from). Charts are inline SVG geometry computed here (no JavaScript library, no CDN).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from cds_service.models.analysis import Analysis
from inference.genomics import queries
from inference.genomics.kb.tumours import ONCOTREE_ATTRIBUTION
from inference.genomics.model import (
    Evidence,
    Interpretation,
    RegulatoryStatus,
    Tier,
    TierAssignment,
    Variant,
)

TIER_ORDER: Final = (Tier.I, Tier.II, Tier.III, Tier.IV)
_CHART_BAR_MAX: Final = 220


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True, slots=True)
class FindingRow:
    gene: str
    variant: str
    vaf: str
    tier: str
    tier_class: str
    kind: str
    therapy: str
    response: str
    disease: str
    evidence: tuple[Link, ...]
    note: str = ""


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    value_text: str
    length: float
    y: int
    css: str


@dataclass(frozen=True, slots=True)
class SectionRow:
    title: str
    detail: str
    recommendation: str
    evidence: tuple[Link, ...]


@dataclass(slots=True)
class ReportView:
    analysis_id: str
    created: str
    tumour_type: str
    kb_version: str
    oncocds_version: str
    source_kind: str
    findings: list[FindingRow] = field(default_factory=list)
    tier_bars: list[Bar] = field(default_factory=list)
    vaf_bars: list[Bar] = field(default_factory=list)
    hereditary: list[SectionRow] = field(default_factory=list)
    pharmacogenomic: list[SectionRow] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Text written by a language model (none yet); rendered with a "model-generated" label.
    model_generated: list[str] = field(default_factory=list)
    #: The tumour-type ontology's attribution (CC BY 4.0 requires it wherever it is shown).
    oncotree_attribution: str = ONCOTREE_ATTRIBUTION


def _links(evidence: tuple[Evidence, ...]) -> tuple[Link, ...]:
    out: list[Link] = []
    for ev in evidence:
        level = f" (level {ev.level})" if ev.level else ""
        out.append(Link(f"{ev.label}{level}", ev.url))
        out.extend(Link(f"PMID {p}", f"https://pubmed.ncbi.nlm.nih.gov/{p}/") for p in ev.pmids)
    return tuple(out)


def _tier_class(tier: TierAssignment) -> str:
    return f"tier-{tier.tier.value.lower()}"


def build_report_view(
    analysis: Analysis, interpretation: Interpretation, *, model_generated: tuple[str, ...] = ()
) -> ReportView:
    tumour = interpretation.context.tumour_type
    view = ReportView(
        analysis_id=analysis.id,
        created=analysis.created.strftime("%Y-%m-%d %H:%M UTC"),
        tumour_type=f"{tumour.name} ({tumour.code})" if tumour else "not stated (unknown)",
        kb_version=analysis.kb_version,
        oncocds_version=analysis.oncocds_version,
        source_kind=analysis.source_kind,
        warnings=list(interpretation.warnings),
        model_generated=list(model_generated),
    )
    alterations = {alt.id: alt for alt in interpretation.alterations}

    def describe(alteration_id: str) -> tuple[str, str, str]:
        alt = alterations.get(alteration_id)
        if alt is None:
            return "?", "(unknown alteration)", "-"
        if isinstance(alt, Variant):
            gene = alt.gene.symbol if alt.gene else "?"
            change = alt.label.removeprefix(gene).strip()
            vaf = f"{alt.allele_frequency:.0%}" if alt.allele_frequency is not None else "-"
            return gene, change, vaf
        gene = alt.gene.symbol if alt.gene else ""
        return gene or "-", alt.label, "-"

    for tx in interpretation.therapeutic:
        gene, change, vaf = describe(tx.alteration_id)
        status = (
            RegulatoryStatus.APPROVED_FOR_TUMOUR
            if tx.fda_approved_for_tumour
            else tx.regulatory_status
        )
        lead = [status.display + "."] if status is not RegulatoryStatus.UNKNOWN else []
        if tx.preclinical:
            lead.insert(0, "Preclinical evidence only (not a therapy option).")
        conflicts = [
            f"Conflicting evidence resolved: {c.resolution} "
            f"({', '.join(e.label for e in c.evidence[:3])})."
            for c in tx.conflicts
        ]
        note = " ".join([*lead, tx.context_note or "", *conflicts]).strip()
        view.findings.append(
            FindingRow(
                gene=gene,
                variant=change,
                vaf=vaf,
                tier=tx.tier.label,
                tier_class=_tier_class(tx.tier),
                kind="therapeutic",
                therapy=" + ".join(d.name for d in tx.drugs),
                response=tx.response.value,
                disease=tx.disease,
                evidence=_links(tx.evidence),
                note=note,
            )
        )
    for dx in interpretation.diagnostic:
        gene, change, vaf = describe(dx.alteration_id)
        view.findings.append(
            FindingRow(
                gene=gene,
                variant=change,
                vaf=vaf,
                tier=dx.tier.label,
                tier_class=_tier_class(dx.tier),
                kind=dx.kind,
                therapy="-",
                response="-",
                disease=dx.disease,
                evidence=_links(dx.evidence),
                note=dx.statement,
            )
        )
    view.findings.sort(key=lambda r: (r.tier, r.gene))

    # Variants, each once at its tier: the count the report card states (issue 12).
    counts: list[tuple[str, int, str]] = [
        (label, n, "tier-" + label.removeprefix("Tier ").lower())
        for label, n in queries.variants_by_tier(interpretation).items()
    ]
    peak = max((n for _, n, _ in counts), default=0) or 1
    view.tier_bars = [
        Bar(label, n, str(n), round(_CHART_BAR_MAX * n / peak, 1), 10 + i * 28, css)
        for i, (label, n, css) in enumerate(counts)
    ]
    variants = [
        a
        for a in interpretation.alterations
        if isinstance(a, Variant) and a.allele_frequency is not None
    ]
    view.vaf_bars = [
        Bar(
            v.label,
            float(v.allele_frequency or 0.0),
            f"{(v.allele_frequency or 0.0):.0%}",
            round(_CHART_BAR_MAX * min(1.0, max(0.0, v.allele_frequency or 0.0)), 1),
            10 + i * 28,
            "vaf",
        )
        for i, v in enumerate(variants[:50])
    ]
    for hr in interpretation.hereditary:
        view.hereditary.append(
            SectionRow(
                title=f"{hr.gene.symbol}: {hr.classification}",
                detail=hr.condition,
                recommendation=hr.recommendation,
                evidence=_links(hr.evidence),
            )
        )
    for pgx in interpretation.pharmacogenomic:
        score = f", activity score {pgx.activity_score:g}" if pgx.activity_score is not None else ""
        view.pharmacogenomic.append(
            SectionRow(
                title=f"{pgx.gene.symbol} {pgx.diplotype}: {pgx.phenotype}{score}",
                detail=", ".join(d.name for d in pgx.drugs),
                recommendation=pgx.recommendation,
                evidence=_links(pgx.evidence),
            )
        )
    view.unknown = [f"{u.label}: {u.reason}" for u in interpretation.unknown]
    return view
