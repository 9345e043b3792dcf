"""Interpret alterations against the knowledge base: therapies, tiers, hereditary risk, PGx.

``interpret(alterations, context)`` is pure and deterministic (same input, same output, same
order), thread-safe (the knowledge base is read-only and loaded once) and never guesses: an
alteration the knowledge base cannot match is returned as an :class:`UnknownResult`.

Matching, in order of preference:

1. genomic key (``GRCh38:7:140753336:A:T``) when the variant has a position, in either build
   (the KB precomputes both), giving the KB's gene and protein change;
2. gene + protein change (1- and 3-letter HGVS meet on one key, ``V600E``);
3. gene + c. HGVS (transcript prefix ignored), mapped to the protein change by the KB;
4. biomarkers by kind + gene (+ fusion partner); MSI-H; TMB by threshold.

A protein change matches statements about exactly that change, about its codon (CIViC
``G12``/``H1047X``/``G12/G13`` style) and, for in-frame deletions, about a codon range
(EGFR exon 19). Gene-level "any mutation" statements are not matched, so KRAS G12D never
inherits a G12C-only drug.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from inference.errors import InputTooLargeError
from inference.genomics.kb import keys
from inference.genomics.kb.store import (
    NOT_INDICATED_VIEW,
    WITHDRAWN_VIEW,
    KnowledgeBase,
    StatementView,
    load_knowledge_base,
)
from inference.genomics.matching import (
    Match,
    annotated,
    biomarker_match,
    is_loss_of_function,
    variant_match,
)
from inference.genomics.model import (
    Alteration,
    Conflict,
    DiagnosticFinding,
    Evidence,
    Gene,
    Genotype,
    HereditaryRiskFinding,
    Interpretation,
    Medication,
    Origin,
    PatientContext,
    PharmacogenomicFinding,
    RegulatoryStatus,
    Response,
    Significance,
    TherapeuticFinding,
    Tier,
    TierAssignment,
    UnknownResult,
    Variant,
)
from inference.genomics.queries import drug_keys
from inference.genomics.tiering import (
    PAN_CANCER,
    Relation,
    best,
    context_missing,
    rank,
    tier_and_rank,
    tumour_relation,
)

NOT_IN_KB: Final = "not in knowledge base"
#: Upper bounds per call (a whole-exome somatic VCF has ~10^3-10^4 coding variants; callers
#: stream larger inputs in chunks).
MAX_ALTERATIONS: Final = 100_000
MAX_GENOTYPES: Final = 1_000
#: Memoised (statements, tumour context) groupings kept per process.
_CACHE_SIZE: Final = 4096


# ------------------------------------------------------------------ statements → findings


def _disease_key(statement: dict[str, Any]) -> str:
    """Rows are grouped per disease: the tumour code, or the source's disease when unmapped."""
    code = statement.get("tumour")
    return str(code) if code else "?" + str(statement["disease"])


def _disease_name(statement: dict[str, Any], kb: KnowledgeBase) -> str:
    code = statement.get("tumour")
    if code and code in kb.tumour_types:
        return kb.tumour_types[code].name
    return str(statement["disease"])


@dataclass(slots=True)
class _Group:
    tiers: list[TierAssignment] = field(default_factory=list)
    scored: list[tuple[tuple[int, int], str, int]] = field(default_factory=list)
    evidence: dict[tuple[str, str], tuple[tuple[int, int], Evidence]] = field(default_factory=dict)
    fda_for_tumour: bool = False
    notes: list[str] = field(default_factory=list)
    line: str | None = None
    label_id: str | None = None
    levels: set[str] = field(default_factory=set)
    withdrawn_label: bool = False
    #: A label for this tumour type matched, but a condition it names is not stated.
    conditional_here: bool = False
    #: A current (not withdrawn) FDA indication of the regimen is among the group's facts.
    current_label: bool = False
    #: Resistance from a CIViC "A AND B" profile the patient meets (more specific evidence).
    co_occurring: bool = False
    #: Kinds of the views grouped (``predictive``, label exclusion, withdrawn label).
    kinds: set[str] = field(default_factory=set)


def _add_evidence(group: _Group, order: tuple[int, int], evidence: Evidence) -> None:
    key = (evidence.source, evidence.id)
    if key not in group.evidence or order < group.evidence[key][0]:
        group.evidence[key] = (order, evidence)


#: Statement views read as therapy evidence (:mod:`inference.genomics.kb.store`).
_THERAPY_VIEWS: Final = frozenset({"predictive", NOT_INDICATED_VIEW, WITHDRAWN_VIEW})

#: CIViC level D is preclinical evidence (cell lines, animal models).
_PRECLINICAL_LEVELS: Final = frozenset({"D"})


def _regulatory_status(
    kb: KnowledgeBase,
    drugs: tuple[str, ...],
    *,
    approved_here: bool,
    labelled_elsewhere: bool,
    withdrawn_label: bool,
    conditional_here: bool = False,
) -> RegulatoryStatus:
    if approved_here:
        return RegulatoryStatus.APPROVED_FOR_TUMOUR
    if withdrawn_label:
        return RegulatoryStatus.WITHDRAWN
    if conditional_here:
        return RegulatoryStatus.APPROVED_FOR_TUMOUR_IF
    status = _drugs_status(kb, drugs)
    if labelled_elsewhere and status is RegulatoryStatus.APPROVED_OFF_LABEL:
        return RegulatoryStatus.APPROVED_OTHER_TUMOUR
    return status


def _drugs_status_of(kb: KnowledgeBase, drugs: tuple[str, ...]) -> RegulatoryStatus:
    """The status of a regimen from its drugs' curated statuses (a pure function, memoised as
    :func:`_drugs_status`)."""
    statuses = [kb.drug_status(d) for d in drugs]
    if "withdrawn" in statuses:
        return RegulatoryStatus.WITHDRAWN
    if "preclinical" in statuses:
        return RegulatoryStatus.PRECLINICAL
    if "investigational" in statuses:
        return RegulatoryStatus.INVESTIGATIONAL
    if statuses and all(status == "approved" for status in statuses):
        return RegulatoryStatus.APPROVED_OFF_LABEL
    return RegulatoryStatus.UNKNOWN  # a class ("chemotherapy") or a drug the table lacks


def _regimen_of(kb: KnowledgeBase, drugs: tuple[str, ...]) -> tuple[Medication, ...]:
    """The regimen's drugs with their RxNorm codes (immutable, so shared between findings:
    memoised as :func:`_regimen`)."""
    return tuple(Medication(name=d, rxnorm=kb.drugs.get(d)) for d in drugs)


# The memos wrap undecorated functions rather than decorate them: mutmut 3 does not mutate a
# decorated function (docs/mutation-testing.md), and these hold the grouping rules.
_drugs_status = functools.lru_cache(maxsize=_CACHE_SIZE)(_drugs_status_of)
_regimen = functools.lru_cache(maxsize=_CACHE_SIZE)(_regimen_of)


def _takes(kb: KnowledgeBase, drug: str, medications: frozenset[str]) -> bool:
    """The patient takes ``drug`` (``medications``: the keys of :func:`_medications`)."""
    return bool(drug_keys(Medication(name=drug, rxnorm=kb.drugs.get(drug))) & medications)


def _therapeutic_rows(  # noqa: PLR0912, PLR0915, PLR0917 - grouping, exclusion, notes in one pass
    kb: KnowledgeBase,
    alteration_id: str,
    indices: tuple[int, ...],
    context: PatientContext,
    medications: frozenset[str],
    origin: Origin | None = None,
) -> tuple[TherapeuticFinding, ...]:
    """Therapeutic findings for one alteration's statements: one row per regimen, response and
    disease, conflicts resolved (:func:`resolve_conflicts`).

    FDA label exclusions (``not-indicated``) that match in the patient's tumour type are rows of
    their own (resistant, cited with the label section) that outweigh sensitivity evidence for
    the regimen from any source, except a combination labelled for this alteration at the same
    tier. Withdrawn indications never make a row approved; they mark the row withdrawn. An FDA
    fact requiring a germline (somatic) variant does not match a variant of the other origin
    and, when the origin is not stated, is shown with a note and not as an approval.

    A pure function of immutable arguments, so it is memoised as :func:`_therapeutic`
    (``functools.lru_cache`` is thread-safe). Alteration ids derive from the variant's
    content, so the same hotspot in the same tumour context is grouped and tiered once per
    process, whichever patient carries it.
    """
    relate = _Relations(context)
    groups: dict[tuple[tuple[str, ...], str, str], _Group] = {}
    views = kb.views
    predictive = [
        (view, relate(view)) for view in [views[i] for i in indices] if view.kind in _THERAPY_VIEWS
    ]
    # A label that excludes the patient's tumour (dabrafenib + trametinib: not colorectal) also
    # overrides pan-cancer statements about the same regimen from other sources.
    excluded_regimens = {
        view.drugs: view.id
        for view, relation in predictive
        if relation is Relation.EXCLUDED and view.kind == "predictive"
    }
    evidence_of, refs_of = kb.statement_evidence, kb.statement_refs
    #: Line-specific label exclusions, by regimen: notes only.
    line_exclusions: dict[tuple[str, ...], list[str]] = {}
    #: Regimens an FDA label names for this alteration in another tumour type.
    labelled: set[tuple[str, ...]] = set()
    for view, relation in predictive:
        if relation is Relation.EXCLUDED:
            continue
        if excluded_regimens and view.drugs in excluded_regimens and view.tumour in PAN_CANCER:
            continue
        if view.origin is not None and origin not in {None, Origin.UNKNOWN, Origin(view.origin)}:
            continue  # a germline-only fact says nothing about a somatic variant (and vice versa)
        statement = kb.statements[view.index]
        response = view.response or ""
        if view.kind == NOT_INDICATED_VIEW:
            if relation is not Relation.MATCH:
                continue  # an exclusion speaks only about the label's own tumour type
            if statement.get("line") not in {None, "any"}:
                # "Not indicated first-line" (ICLUSIG in newly diagnosed CML, checkpoint
                # inhibitors first-line in EGFR-mutant NSCLC) is no resistance: a note on the
                # regimen's rows, never a row that outweighs a later-line indication.
                line_exclusions.setdefault(view.drugs, []).append(
                    f"FDA label {statement.get('label_id') or view.id} section "
                    f"{statement.get('section') or '?'} ({view.id}): not indicated "
                    f"{statement['line']}"
                )
                continue
            response = Response.RESISTANT.value
        tier, order = tier_and_rank(view.level, relation)
        group_key = (view.drugs, response, view.tumour or _disease_key(statement))
        group = groups.get(group_key)
        if group is None:
            group = groups[group_key] = _Group()
        group.kinds.add(view.kind)
        if view.kind == WITHDRAWN_VIEW:
            # Evidence of the row, never its tier nor an approval.
            group.withdrawn_label = True
            withdrawn = statement.get("withdrawn")
            group.notes.append(
                f"FDA indication {view.id} withdrawn" + (f" ({withdrawn})" if withdrawn else "")
            )
            _add_evidence(group, order, evidence_of[view.index])
            continue
        if view.kind == NOT_INDICATED_VIEW:
            group.notes.append(
                f"FDA label {statement.get('label_id') or view.id} section "
                f"{statement.get('section') or '?'} ({view.id}): {statement['disease']}"
            )
        if view.all_of is not None and response == Response.RESISTANT.value:
            group.co_occurring = True
        group.tiers.append(tier)
        group.levels.add(view.level)
        group.scored.append((order, view.id, view.index))
        if view.all_of is not None:
            group.notes.append(f"CIViC {view.id}: requires all of {statement['profile']}")
        _add_evidence(group, order, evidence_of[view.index])
        for ref in refs_of[view.index]:
            _add_evidence(group, order, ref)
        if view.source == "FDA" and view.response == "sensitive":
            # Fields of the FDA fact layer (issue 12); older KBs lack them: read with defaults.
            if statement.get("status") == "withdrawn":
                group.withdrawn_label = True
                continue
            if statement.get("effect", "indicated") != "indicated":
                continue
            group.current_label = True
            if view.origin is not None and origin is not Origin(view.origin):
                group.notes.append(
                    f"FDA label ({view.id}) requires a {view.origin} variant; origin not stated"
                )
                group.conditional_here |= relation is Relation.MATCH
                continue
            group.label_id = group.label_id or str(
                statement.get("label_id") or statement["evidence_id"]
            )
            if relation is not Relation.MATCH:
                # "Approved in another tumour type" only from a label about another tumour: a
                # label for this one whose conditions are not stated is noted, not "elsewhere".
                labelled.add(view.drugs)
                continue
            missing = context_missing(list(view.context), context.clinical_context)
            if missing:
                group.notes.append(
                    f"FDA label requires {'/'.join(view.context)}; "
                    f"not stated in the patient context: {', '.join(missing)}"
                )
                group.conditional_here = True
            else:
                group.fda_for_tumour = True
            group.line = group.line or statement.get("line")
    findings = []
    co_occurring, exact = [], []
    for (drugs, response, _), group in groups.items():
        if not group.scored:
            continue  # only withdrawn indications: nothing to offer
        group.scored.sort()
        top = kb.statements[group.scored[0][2]]
        notes = list(dict.fromkeys(group.notes))
        notes.extend(line_exclusions.get(drugs, ()))
        if drugs in excluded_regimens:
            notes.append(
                f"the FDA label ({excluded_regimens[drugs]}) excludes this tumour type for "
                "this regimen"
            )
        if top["source"] != "CIViC" and top.get("effect") != "not-indicated":
            # Curated statements carry their text: the FDA indication or the resistance rule.
            prefix = (
                "FDA indication: " if top["level"] == "label" and response == "sensitive" else ""
            )
            notes.insert(0, prefix + str(top["disease"]))
            if top.get("note"):
                notes.append(str(top["note"]))
        drug_meds = _regimen(kb, drugs)
        # A regimen's evidence is about the regimen: it concerns the patient's current
        # medication only when the patient takes every drug of it (a single agent included).
        current = response == "resistant" and all(_takes(kb, d, medications) for d in drugs)
        approved_here = group.fda_for_tumour and response == "sensitive"
        status = _regulatory_status(
            kb,
            drugs,
            approved_here=approved_here,
            labelled_elsewhere=drugs in labelled,
            # A withdrawn indication beside a current one (olaparib: gBRCA later-line ovarian
            # withdrawn, first-line maintenance current) leaves the regimen approved.
            withdrawn_label=group.withdrawn_label and not group.current_label,
            conditional_here=group.conditional_here and response == "sensitive",
        )
        finding = TherapeuticFinding(
            alteration_id=alteration_id,
            drugs=drug_meds,
            response=Response(response),
            tier=best(group.tiers),
            evidence=tuple(
                ev for _, ev in sorted(group.evidence.values(), key=lambda x: (x[0], x[1].id))
            ),
            disease=_disease_name(top, kb),
            fda_approved_for_tumour=approved_here,
            line_of_therapy=group.line,
            context_note="; ".join(n for n in notes if n) or None,
            current_medication=current,
            tumour_code=top.get("tumour"),
            source=str(top["source"]),
            label_id=group.label_id,
            regulatory_status=status,
            preclinical=group.levels <= _PRECLINICAL_LEVELS
            or status is RegulatoryStatus.PRECLINICAL,
        )
        findings.append(finding)
        if group.co_occurring:
            co_occurring.append(finding)
        if group.kinds <= {NOT_INDICATED_VIEW, WITHDRAWN_VIEW}:
            exact.append(finding)
    return resolve_conflicts(findings, co_occurring=co_occurring, exact=exact)


_therapeutic = functools.lru_cache(maxsize=_CACHE_SIZE)(_therapeutic_rows)


def _conflict(
    finding: TherapeuticFinding, winner: TherapeuticFinding, reason: str = ""
) -> Conflict:
    return Conflict(
        drugs=finding.drugs,
        response=finding.response,
        tier=finding.tier,
        disease=finding.disease,
        evidence=finding.evidence,
        resolution=(
            f"{finding.response.value} evidence ({finding.tier.label}; {finding.disease}) "
            f"outweighed by {winner.response.value} evidence ({winner.tier.label}; "
            f"{winner.disease}){reason}"
        ),
    )


def resolve_conflicts(
    findings: Sequence[TherapeuticFinding],
    *,
    co_occurring: Collection[TherapeuticFinding] = (),
    exact: Collection[TherapeuticFinding] = (),
) -> tuple[TherapeuticFinding, ...]:
    """Resolve sensitivity and resistance evidence about the same drug (one alteration).

    Resistance to a regimen R concerns a sensitive row S when every drug of R is in S
    (erlotinib resistance concerns erlotinib + pemetrexed; a regimen's resistance says nothing
    about one of its drugs alone).

    - R at a stronger tier than S's (or as strong, about the very same regimen): S is not
      offered; it is kept, cited, in the ``conflicts`` of the strongest such R. At equal tiers
      a combination stays: single-agent resistance is not evidence about the combination
      (encorafenib + cetuximab against cetuximab alone).
    - R weaker than S and about the very same regimen: R is not listed; it is kept in the
      ``conflicts`` of the strongest such S.
    - R weaker than S and a part of it (cetuximab vs encorafenib + cetuximab): both stay.
    - R in ``co_occurring`` (a profile requiring an alteration the patient also carries, CIViC
      "BCR::ABL1 AND ABL1 T315I") is more specific than any S about the alteration alone: it
      wins over every S it concerns, whatever the tiers.
    - R in ``exact`` (only FDA label exclusions: "not indicated" names a regimen) concerns only
      S of the very same regimen: TAFINLAR + MEKINIST are not indicated in colorectal cancer,
      which says nothing of dabrafenib + trametinib + panitumumab.
    """
    specific = {id(f) for f in co_occurring}
    same_regimen_only = {id(f) for f in exact}
    # (finding, drug names, rank) once each: the pairs below are many (50 x 50 for BRAF V600E).
    resistant = [
        (f, frozenset(d.name for d in f.drugs), rank(f.tier))
        for f in findings
        if f.response is Response.RESISTANT
    ]
    if not resistant or all(f.response is Response.RESISTANT for f in findings):
        return tuple(findings)
    sensitive = [
        (f, frozenset(d.name for d in f.drugs), rank(f.tier))
        for f in findings
        if f.response is Response.SENSITIVE
    ]
    resisted = frozenset().union(*(names for _, names, _ in resistant))

    def strongest(candidates: list[tuple[TherapeuticFinding, Any, Any]]) -> TherapeuticFinding:
        return min(candidates, key=lambda c: (c[2], c[0].disease))[0]

    dropped: set[int] = set()
    added: dict[int, list[Conflict]] = {}
    for r, r_names, r_rank in resistant:
        if id(r) in specific:
            continue
        stronger = [c for c in sensitive if c[1] == r_names and c[2] < r_rank]
        if stronger:
            winner = strongest(stronger)
            dropped.add(id(r))
            added.setdefault(id(winner), []).append(_conflict(r, winner))
    standing = [c for c in resistant if id(c[0]) not in dropped]
    for s, s_names, s_rank in sensitive:
        if resisted.isdisjoint(s_names):
            continue
        against = [
            c
            for c in standing
            if (c[1] == s_names or (c[1] <= s_names and id(c[0]) not in same_regimen_only))
            and (id(c[0]) in specific or c[2] < s_rank or (c[2] == s_rank and c[1] == s_names))
        ]
        if against:
            winner = strongest(against)
            reason = (
                ", which requires an alteration the patient also carries"
                if id(winner) in specific
                else ""
            )
            dropped.add(id(s))
            added.setdefault(id(winner), []).append(_conflict(s, winner, reason))
    out = []
    for finding in findings:
        if id(finding) in dropped:
            continue
        extra = added.get(id(finding))
        out.append(replace(finding, conflicts=(*finding.conflicts, *extra)) if extra else finding)
    return tuple(out)


def _diagnostic_rows(
    kb: KnowledgeBase, alteration_id: str, indices: tuple[int, ...], context: PatientContext
) -> tuple[DiagnosticFinding, ...]:
    """Diagnostic and prognostic findings (memoised as :func:`_diagnostic`, like
    :func:`_therapeutic`)."""
    relate = _Relations(context)
    groups: dict[tuple[str, str, str], list[tuple[TierAssignment, int]]] = {}
    for index in indices:
        view = kb.views[index]
        if view.kind not in {"diagnostic", "prognostic"}:
            continue
        relation = relate(view)
        if relation is Relation.EXCLUDED:
            continue
        statement = kb.statements[index]
        key = (view.kind, statement["disease"], statement["significance"])
        groups.setdefault(key, []).append((tier_and_rank(view.level, relation)[0], index))
    findings = []
    for (kind, disease, significance), items in groups.items():
        items.sort(key=lambda item: (rank(item[0]), kb.views[item[1]].id))
        findings.append(
            DiagnosticFinding(
                alteration_id=alteration_id,
                kind=kind,
                statement=f"{kb.statements[items[0][1]]['profile']}: {significance}",
                disease=disease,
                tier=items[0][0],
                evidence=tuple(kb.statement_evidence[i] for _, i in items),
            )
        )
    return tuple(findings)


_diagnostic = functools.lru_cache(maxsize=_CACHE_SIZE)(_diagnostic_rows)


def _co_occurrence_met(
    all_of: tuple[frozenset[str], ...] | None, own: frozenset[str], patient: frozenset[str]
) -> bool:
    """True for single-alteration statements; for AND profiles, when every part is present and
    this alteration is the first part (so the finding is reported once, on that alteration)."""
    if all_of is None:
        return True
    return bool(own & all_of[0]) and all(patient & part for part in all_of)


class _Relations:
    """Tumour relation per (statement tumour, exclusions, required context), cached per call."""

    __slots__ = ("_cache", "_context", "_tumour")

    def __init__(self, context: PatientContext) -> None:
        self._tumour = context.tumour_type
        self._context = context.clinical_context
        self._cache: dict[tuple[str | None, tuple[str, ...], tuple[str, ...]], Relation] = {}

    def __call__(self, view: StatementView) -> Relation:
        key = view.site
        relation = self._cache.get(key)
        if relation is None:
            relation = tumour_relation(
                view.tumour, view.excludes, view.context, self._tumour, self._context
            )
            self._cache[key] = relation
        return relation


def _hereditary(
    variant: Variant, alteration_id: str, match: Match, kb: KnowledgeBase
) -> HereditaryRiskFinding | None:
    if variant.origin is not Origin.GERMLINE or match.gene is None:
        return None
    table = kb.hereditary
    recommendation = str(table["recommendation"])
    for key in match.keys:
        for known in kb.germline_pathogenic.get(key, ()):
            return HereditaryRiskFinding(
                alteration_id=alteration_id,
                gene=Gene(match.gene),
                classification=str(known["classification"]),
                condition=str(known["condition"]),
                recommendation=recommendation,
                evidence=(
                    Evidence(
                        source="CIViC",
                        id=str(known["id"]),
                        url=str(known["url"]),
                        level="ACMG " + ",".join(known["acmg_codes"])
                        if known["acmg_codes"]
                        else None,
                        version=str(known["version"]),
                    ),
                ),
            )
    gene = table["genes"].get(match.gene)
    if gene is None or not gene["lof"] or not is_loss_of_function(variant, match.protein):
        return None
    sources = table["sources"]
    evidence = []
    if gene["acmg_sf"]:
        sf = sources["acmg_sf"]
        evidence.append(
            Evidence(source="ACMG", id=sf["id"], url=sf["url"], pmids=tuple(sf["pmids"]))
        )
    pvs1 = sources["pvs1"]
    evidence.append(
        Evidence(source="ACMG", id=pvs1["id"], url=pvs1["url"], pmids=tuple(pvs1["pmids"]))
    )
    return HereditaryRiskFinding(
        alteration_id=alteration_id,
        gene=Gene(match.gene),
        classification="predicted loss of function (PVS1); classification to be confirmed",
        condition=str(gene["condition"]),
        recommendation=recommendation,
        evidence=tuple(evidence),
    )


# ------------------------------------------------------------------ pharmacogenomics


def _pgx(genotype: Genotype, kb: KnowledgeBase) -> PharmacogenomicFinding | UnknownResult:
    gene = genotype.gene.symbol.upper()
    ident = f"genotype:{gene}:{genotype.diplotype}"
    label = f"{gene} {genotype.diplotype}"
    spec = kb.pharmacogenomics.get(gene)
    if spec is None:
        return UnknownResult(ident, label, f"{NOT_IN_KB}: pharmacogene {gene}")
    alleles = [a.strip() for a in genotype.diplotype.split("/")]
    table = {k.lower(): v for k, v in spec["alleles"].items()}
    if len(alleles) != 2 or any(a.lower() not in table for a in alleles):
        return UnknownResult(ident, label, f"{NOT_IN_KB}: {gene} allele(s) in {genotype.diplotype}")
    values = [table[a.lower()] for a in alleles]
    score: float | None = None
    row: dict[str, Any] | None = None
    if spec["model"] == "activity_score":
        score = float(sum(values))
        row = next((r for r in spec["phenotypes"] if r["min"] <= score <= r["max"]), None)
    else:
        reduced = sum(1 for v in values if v != "normal")
        row = next((r for r in spec["phenotypes"] if r["decreased"] == reduced), None)
    if row is None:
        return UnknownResult(ident, label, f"{NOT_IN_KB}: no phenotype rule for {label}")
    source = spec["source"]
    return PharmacogenomicFinding(
        gene=Gene(gene),
        diplotype=genotype.diplotype,
        phenotype=str(row["phenotype"]),
        activity_score=score,
        drugs=tuple(Medication(name=d, rxnorm=kb.drugs.get(d)) for d in spec["drugs"]),
        recommendation=str(row["recommendation"]),
        evidence=(
            Evidence(
                source=source["id"].split()[0],
                id=str(source["id"]),
                url=str(source["url"]),
                pmids=tuple(source["pmids"]),
                version=str(source["version"]),
            ),
        ),
    )


# ------------------------------------------------------------------ entry point


def _outside_label_tumour(
    view: StatementView, own: frozenset[str], relate: _Relations, *, recognised: bool
) -> bool:
    """An FDA fact that says nothing for this alteration in this tumour type:

    - matched only through a gene-level "any mutation" key (``MUT|KRAS``, AVMAPKI in LGSOC)
      outside the label's own tumour type: an unknown variant is never made actionable
      elsewhere by a gene-level rule;
    - matched only through a gene-level key, in the label's tumour type, by a variant nothing
      else in the knowledge base recognises and no stated classification calls pathogenic
      (EGFR A1118T is not "EGFR-mutated" for DATROWAY: unknown is said as unknown);
    - a label exclusion outside the label's tumour type.
    """
    if view.source != "FDA":
        return False
    gene_level_only = view.specific.isdisjoint(own)
    if gene_level_only and view.kind != NOT_INDICATED_VIEW and not recognised:
        return True
    if view.kind == NOT_INDICATED_VIEW or gene_level_only:
        return relate(view) is not Relation.MATCH
    return False


_PATHOGENIC: Final = frozenset({Significance.PATHOGENIC, Significance.LIKELY_PATHOGENIC})


def _recognised(alteration: Alteration, own: frozenset[str], kb: KnowledgeBase) -> bool:
    """The knowledge base knows this alteration by more than its gene (any statement matched
    by a specific key: allele, codon, class, exon, fusion, copy number...), or the report
    states it pathogenic / likely pathogenic."""
    if isinstance(alteration, Variant) and alteration.classification in _PATHOGENIC:
        return True
    specific = [k for k in own if keys.parse(k).kind is not keys.KeyKind.MUTATION]
    return bool(kb.statements_for(specific))


def _gene_level_fact_ids(kb: KnowledgeBase) -> frozenset[str]:
    """Ids of the FDA facts keyed on gene-level "any mutation" keys only (memoised per KB as
    :func:`_gene_level_ids`)."""
    return frozenset(v.id for v in kb.views if v.source == "FDA" and not v.specific)


_gene_level_ids = functools.lru_cache(maxsize=4)(_gene_level_fact_ids)


def _gene_level_approval(finding: TherapeuticFinding, kb: KnowledgeBase) -> bool:
    """An approval resting only on gene-level facts ("EGFR-mutated"): listed after approvals
    whose label names the patient's alteration (osimertinib for T790M before datopotamab
    deruxtecan for any EGFR mutation, at the same tier)."""
    if not finding.fda_approved_for_tumour:
        return False
    gene_level = _gene_level_ids(kb)
    return all(e.id in gene_level for e in finding.evidence if e.source == "FDA")


def _names(finding: TherapeuticFinding) -> frozenset[str]:
    return frozenset(d.name for d in finding.drugs)


def _resistance_across_alterations(
    therapeutic: list[tuple[int, TherapeuticFinding]], genes: dict[str, str | None]
) -> list[tuple[int, TherapeuticFinding]]:
    """Tier I resistance on one alteration of a gene (an acquired-resistance mutation, EGFR
    T790M) removes the sensitive rows of another alteration of the same gene (EGFR L858R) for
    regimens containing every drug of the resistant row (erlotinib, gefitinib, afatinib; not
    osimertinib). Each removed row is stated once, cited, in the ``conflicts`` of the strongest
    such resistant row. Runs after every alteration's (memoised) findings are collected."""
    # Only genes with resistance on one alteration and findings on another are looked at.
    resistant: dict[str, list[tuple[TherapeuticFinding, frozenset[str]]]] = {}
    for _, f in therapeutic:
        gene = genes.get(f.alteration_id)
        if gene is not None and f.response is Response.RESISTANT and f.tier.tier is Tier.I:
            resistant.setdefault(gene, []).append((f, _names(f)))
    if not resistant:
        return therapeutic
    dropped: set[int] = set()
    added: dict[int, list[Conflict]] = {}
    for _, s in therapeutic:
        if s.response is not Response.SENSITIVE:
            continue
        candidates = resistant.get(genes.get(s.alteration_id) or "")
        if not candidates:
            continue
        s_names = _names(s)
        against = [
            r
            for r, r_names in candidates
            if r.alteration_id != s.alteration_id and r_names <= s_names
        ]
        if against:
            winner = min(against, key=lambda r: (rank(r.tier), r.disease))
            dropped.add(id(s))
            added.setdefault(id(winner), []).append(
                _conflict(s, winner, ", on another alteration of the same gene in this patient")
            )
    if not dropped:
        return therapeutic
    out = []
    for position, finding in therapeutic:
        if id(finding) in dropped:
            continue
        extra = added.get(id(finding))
        kept = replace(finding, conflicts=(*finding.conflicts, *extra)) if extra else finding
        out.append((position, kept))
    return out


def _unknown_reason(match: Match, kb: KnowledgeBase) -> str:
    if match.gene is None:
        return f"{NOT_IN_KB}: no gene and no known genomic position"
    if match.gene not in kb.genes:
        return f"{NOT_IN_KB}: gene {match.gene}"
    return f"{NOT_IN_KB}: no evidence for this alteration of {match.gene}"


def clear_caches() -> None:
    """Forget every memo of this module (benchmarks measure cold runs, tests check the rules
    afresh; a new KB object needs none: the memos are keyed by it)."""
    for memo in (_therapeutic, _diagnostic, _drugs_status, _regimen, _gene_level_ids):
        memo.cache_clear()


@dataclass(slots=True)
class _Collected:
    therapeutic: list[tuple[int, TherapeuticFinding]] = field(default_factory=list)
    diagnostic: list[tuple[int, DiagnosticFinding]] = field(default_factory=list)
    hereditary: list[HereditaryRiskFinding] = field(default_factory=list)
    unknown: list[UnknownResult] = field(default_factory=list)
    alteration_tiers: list[tuple[str, TierAssignment]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _medications(context: PatientContext) -> frozenset[str]:
    # Same drug as queries.same_drug: by name or RxNorm code (kept as keys so the memoised
    # grouping is keyed by a hashable set).
    return frozenset(key for med in context.medications for key in drug_keys(med))


def _collect(
    out: _Collected,
    position: int,
    *,
    alteration: Alteration,
    alteration_id: str,
    match: Match,
    statements: tuple[int, ...],
    kb: KnowledgeBase,
    context: PatientContext,
) -> None:
    """Add one alteration's findings (or its UnknownResult) to ``out``."""
    label = alteration.label
    origin = alteration.origin if isinstance(alteration, Variant) else None
    found = _therapeutic(kb, alteration_id, statements, context, _medications(context), origin)
    for finding in found:
        if finding.current_medication:
            out.warnings.append(
                f"{label}: current medication {', '.join(d.name for d in finding.drugs)} - "
                f"knowledge base evidence of resistance ({finding.tier.label})"
            )
    out.therapeutic.extend((position, f) for f in found)
    out.diagnostic.extend(
        (position, f) for f in _diagnostic(kb, alteration_id, statements, context)
    )
    risk = (
        _hereditary(alteration, alteration_id, match, kb)
        if isinstance(alteration, Variant)
        else None
    )
    if risk is not None:
        out.hereditary.append(risk)
    if not statements and risk is None:
        out.unknown.append(UnknownResult(alteration_id, label, _unknown_reason(match, kb)))
        return
    # The alteration's tier counts sensitivity evidence outweighed by resistance too (PCGR:
    # the tier is of the evidence, the resolution is of what is offered).
    sensitive = [f.tier for f in found if f.response is Response.SENSITIVE]
    sensitive += [c.tier for f in found for c in f.conflicts if c.response is Response.SENSITIVE]
    out.alteration_tiers.append(
        (alteration_id, best(sensitive) if sensitive else TierAssignment(Tier.III))
    )


def interpret(
    alterations: Sequence[Alteration] | Iterable[Alteration],
    context: PatientContext,
    *,
    genotypes: Sequence[Genotype] = (),
    kb: KnowledgeBase | None = None,
) -> Interpretation:
    """Interpret alterations (and pharmacogene genotypes) for one patient.

    Args:
        alterations: variants and biomarkers, in report order.
        context: tumour type, receptor status, current medications.
        genotypes: pharmacogene diplotypes (DPYD, UGT1A1, TPMT, NUDT15).
        kb: a knowledge base; default the shipped one, loaded once per process.

    Returns:
        Findings ordered by tier, then input order; unknown alterations as UnknownResult.

    Raises:
        InputTooLargeError: more than ``MAX_ALTERATIONS`` alterations or ``MAX_GENOTYPES``
            genotypes.
    """
    kb = kb or load_knowledge_base()
    alterations = tuple(alterations)
    if len(alterations) > MAX_ALTERATIONS or len(genotypes) > MAX_GENOTYPES:
        raise InputTooLargeError(
            f"{len(alterations)} alterations / {len(genotypes)} genotypes: at most "
            f"{MAX_ALTERATIONS} / {MAX_GENOTYPES} per interpretation"
        )
    out = _Collected()
    if context.tumour_type is None:
        out.warnings.append("no tumour type given: tiers computed in tumour-agnostic mode")
    seen: set[str] = set()
    matched: list[tuple[int, Alteration, str, Match]] = []
    for position, given in enumerate(alterations):
        alteration: Alteration = given
        if isinstance(given, Variant):
            match = variant_match(given, kb)
            alteration = annotated(given, match)
        else:
            match = biomarker_match(given, kb)
        alteration_id = alteration.id
        if alteration_id in seen:
            continue
        seen.add(alteration_id)
        out.warnings.extend(match.warnings)
        matched.append((position, alteration, alteration_id, match))
    # CIViC "A AND B" profiles need every part somewhere in the patient's alterations.
    patient_keys = frozenset(k for *_, match in matched for k in match.keys)
    relate = _Relations(context)
    for position, alteration, alteration_id, match in matched:
        own = frozenset(match.keys)
        recognised = _recognised(alteration, own, kb)
        views = kb.views
        statements = tuple(
            i
            for i in kb.statements_for(match.keys)
            if (views[i].all_of is None or _co_occurrence_met(views[i].all_of, own, patient_keys))
            and (
                views[i].source != "FDA"
                or not _outside_label_tumour(views[i], own, relate, recognised=recognised)
            )
        )
        _collect(
            out,
            position,
            alteration=alteration,
            alteration_id=alteration_id,
            match=match,
            statements=statements,
            kb=kb,
            context=context,
        )
    genes = {alteration_id: match.gene for _, _, alteration_id, match in matched}
    out.therapeutic = _resistance_across_alterations(out.therapeutic, genes)
    therapeutic, diagnostic, unknown = out.therapeutic, out.diagnostic, out.unknown
    pgx: list[PharmacogenomicFinding] = []
    for genotype in genotypes:
        result = _pgx(genotype, kb)
        if isinstance(result, UnknownResult):
            unknown.append(result)
        else:
            pgx.append(result)
    therapeutic.sort(
        key=lambda item: (
            rank(item[1].tier),
            item[1].response != Response.SENSITIVE,
            not item[1].fda_approved_for_tumour,
            _gene_level_approval(item[1], kb),
            item[0],
            tuple(d.name for d in item[1].drugs),
            item[1].disease,
        )
    )
    diagnostic.sort(key=lambda item: (rank(item[1].tier), item[0], item[1].kind, item[1].disease))
    return Interpretation(
        alterations=tuple(alteration for _, alteration, _, _ in matched),
        genotypes=tuple(genotypes),
        context=context,
        therapeutic=tuple(f for _, f in therapeutic),
        diagnostic=tuple(f for _, f in diagnostic),
        hereditary=tuple(out.hereditary),
        pharmacogenomic=tuple(pgx),
        unknown=tuple(unknown),
        kb_version=kb.version,
        warnings=tuple(dict.fromkeys(out.warnings)),
        alteration_tiers=tuple(out.alteration_tiers),
    )
