"""CIViC sources: checked by sha256, joined (evidence → molecular profile → variants) and
compiled into knowledge-base statements, assertions, germline pathogenic variants and the
genomic/cDNA allele keys (see :mod:`inference.genomics.kb.build`)."""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from inference.errors import KnowledgeBaseSourceError
from inference.genomics.assembly import REFSEQ_CHROMOSOMES
from inference.genomics.classes import named_class
from inference.genomics.hgvs import protein_change_key
from inference.genomics.kb import keys

CIVIC_RELEASE: Final = "01-Aug-2024"
CIVIC_FILES: Final = {
    "01-Aug-2024-ClinicalEvidenceSummaries.tsv": (
        "34131f092dc5df061bcf12528e2ce14308d5a220a381c885eb2bfde153e3c1da"
    ),
    "01-Aug-2024-AssertionSummaries.tsv": (
        "99e4fc69a430dcfd2245c81947f52e3d02d2cc41038f83e04e10d9112713d2f2"
    ),
    "01-Aug-2024-VariantSummaries.tsv": (
        "e483c014d1268c0b88123e4fcca1ae694e6bade2449c31443b8caff645bdc325"
    ),
    "01-Aug-2024-MolecularProfileSummaries.tsv": (
        "f163cbee550bcfa5904872b700e0ba73797d9b6cd62879b32ec5239da3b3b6f7"
    ),
}
_NC_SNV = re.compile(r"^(NC_\d+\.\d+):g\.(\d+)([ACGT])>([ACGT])$")
_C_HGVS = re.compile(r"^N[MR]_\d+(?:\.\d+)?:(c\.[^,]+)$")
_CODON = re.compile(r"^([ACDEFGHIKLMNPQRSTVWY])(\d+)X?$")
_CODONS = re.compile(r"^[ACDEFGHIKLMNPQRSTVWY]\d+(?:/[ACDEFGHIKLMNPQRSTVWY]\d+)+$")
# CIViC "Exon N Deletion" variants the matcher supports, as codon ranges of the canonical
# transcript (EGFR NM_005228: exon 19 encodes codons 729-761).
_EXON_RANGES: Final = {("EGFR", "EXON 19 DELETION"): (729, 761)}

_CIVIC_EVIDENCE_URL = "https://civicdb.org/links/evidence_items/{}"
_CIVIC_ASSERTION_URL = "https://civicdb.org/links/assertions/{}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def read_tsv(path: Path) -> Iterator[dict[str, str]]:
    # CIViC TSVs are tab-separated with no quoting (see sources/civic/README.md).
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)


def civic_variant_keys(gene: str, name: str) -> list[str]:  # noqa: PLR0911 - one per class
    """Matcher keys for a CIViC variant name, or ``[]`` when the KB cannot match that class.

    Unsupported on purpose: gene-level "Mutation", exon-level changes other than the classes of
    :mod:`inference.genomics.classes` (EGFR exon 19 deletions / exon 20 insertions, MET exon 14
    skipping, FLT3 ITD), expression, methylation and other descriptive variants (matching them
    to a patient's variant would be a guess).
    """
    base = name.split(" (", 1)[0].strip()
    upper = base.upper()
    if upper in {"FUSION", "REARRANGEMENT", "TRANSLOCATION"}:
        return [keys.fusion(gene)]
    if "::" in base:
        parts = base.split(" ", 1)[0].split("::")
        if len(parts) == 2 and all(parts):
            return [keys.fusion(parts[0], parts[1])]
        return []
    if upper == "AMPLIFICATION":
        return [keys.amplification(gene)]
    if upper in {"DELETION", "LOSS"}:
        return [keys.deletion(gene)]
    # Class names (FLT3 ITD, EGFR Exon 19 Deletion / Exon 20 Insertion, MET Exon 14 Skipping
    # Mutation) also carry the class key, so a report stating the class meets them too.
    named = named_class(gene, base)
    class_keys = [keys.variant_class(gene, named)] if named is not None else []
    if upper == "ITD":
        return [keys.named(gene, "ITD"), *class_keys]
    exon = _EXON_RANGES.get((gene, upper))
    if exon is not None:
        return [keys.codon_range(gene, exon[0], exon[1]), *class_keys]
    if class_keys:
        return class_keys
    key = protein_change_key(base)
    if key is not None and not key.endswith("="):
        return [keys.protein(gene, key)]
    codon = _CODON.match(base)
    if codon:
        return [keys.codon(gene, f"{codon.group(1)}{codon.group(2)}")]
    if _CODONS.match(base):
        return [keys.codon(gene, part) for part in base.split("/")]
    return []


def _nc_key(expression: str) -> str | None:
    """``NC_000007.14:g.140753336A>T`` → ``GRCh38:7:140753336:A:T`` (the accession's version
    gives the build); ``None`` for another shape or an accession of neither build."""
    match = _NC_SNV.match(expression)
    if match is None:
        return None
    placed = REFSEQ_CHROMOSOMES.get(match.group(1))
    if placed is None:
        return None
    build, chrom = placed
    return f"{build.value}:{chrom}:{match.group(2)}:{match.group(3)}:{match.group(4)}"


# ------------------------------------------------------------------ tables


def check_civic(civic_dir: Path) -> dict[str, str]:
    hashes = {}
    for name, expected in CIVIC_FILES.items():
        path = civic_dir / name
        if not path.is_file():
            raise KnowledgeBaseSourceError(f"missing CIViC source {path}")
        actual = sha256_file(path)
        if actual != expected:
            raise KnowledgeBaseSourceError(
                f"{path}: sha256 {actual} does not match the recorded release hash {expected}"
            )
        hashes[name] = actual
    return hashes


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip() and part.strip() != "N/A"]


class Civic:
    """The CIViC tables joined: molecular profile → variants → matcher keys and coordinates."""

    def __init__(self, civic_dir: Path, doid_map: dict[str, str], names_map: dict[str, str]):
        self.dir = civic_dir
        self.doid_map = doid_map
        self.names_map = names_map
        self.variants = {
            row["variant_id"]: row
            for row in read_tsv(civic_dir / "01-Aug-2024-VariantSummaries.tsv")
        }
        self.profiles = {
            row["molecular_profile_id"]: row
            for row in read_tsv(civic_dir / "01-Aug-2024-MolecularProfileSummaries.tsv")
        }
        self.unsupported_profiles: set[str] = set()

    def profile_keys(self, profile_id: str) -> tuple[list[str], list[list[str]] | None]:
        """Matcher keys of a molecular profile and, for an AND profile, the keys of each part.

        Single-variant profiles give ``(keys, None)``. ``A OR B`` profiles match either part:
        ``(keys of A and B, None)``. ``A AND B`` profiles need every part present in the
        patient: ``(all keys, [keys of A, keys of B])``. NOT and nested profiles, and profiles
        with an unsupported part, give ``([], None)``.
        """
        profile = self.profiles.get(profile_id)
        if profile is None:
            return [], None
        variant_ids = _split(profile["variant_ids"])
        parts = []
        for variant_id in variant_ids:
            variant = self.variants.get(variant_id)
            parts.append(civic_variant_keys(variant["gene"], variant["variant"]) if variant else [])
        name = profile["name"]
        # A NOT profile ("NOT KIT D816V") is about patients *without* the variant: its variant
        # ids name what must be absent, so it is unsupported even with one part (matching it
        # on the variant would state the evidence for the patients it excludes).
        negated = name.startswith("NOT ") or " NOT " in name
        if negated:
            keys, all_of = [], None
        elif len(parts) == 1:
            keys, all_of = parts[0], None
        elif "(" in name or (" AND " in name and " OR " in name):
            keys, all_of = [], None
        elif " AND " in name:
            supported = all(parts)
            keys = sorted({k for part in parts for k in part}) if supported else []
            all_of = [sorted(part) for part in parts] if supported else None
        else:
            keys, all_of = sorted({k for part in parts for k in part}), None
        if not keys:
            self.unsupported_profiles.add(profile_id)
        return keys, all_of

    def genomic_alleles(self) -> tuple[dict[str, list[str]], dict[str, str]]:
        """Genomic key → [gene, protein key] and ``GENE:c.…`` → protein key."""
        genomic: dict[str, list[str]] = {}
        cdna: dict[str, str] = {}
        for row in self.variants.values():
            gene = row["gene"]
            variant_keys = civic_variant_keys(gene, row["variant"])
            if len(variant_keys) != 1:
                continue
            parsed = keys.parse(variant_keys[0])
            if parsed.kind is not keys.KeyKind.PROTEIN:
                continue
            change = parsed.fields[0]
            ref, alt = row["reference_bases"], row["variant_bases"]
            if (
                row["reference_build"] == "GRCh37"
                and row["chromosome"]
                and row["start"]
                and ref
                and alt
                and re.fullmatch("[ACGT]+", ref + alt)
                and len(ref) == len(alt)
            ):
                genomic[f"GRCh37:{row['chromosome']}:{row['start']}:{ref}:{alt}"] = [gene, change]
            for expression in _split(row["hgvs_descriptions"]):
                key = _nc_key(expression)
                if key is not None:
                    genomic[key] = [gene, change]
                c_match = _C_HGVS.match(expression)
                if c_match and expression.startswith("NM_"):
                    cdna[f"{gene}:{c_match.group(1)}"] = change
        return genomic, cdna

    def tumour_of(self, doid: str, disease: str) -> str | None:
        if doid and doid in self.doid_map:
            return self.doid_map[doid]
        return self.names_map.get(disease)


_RESPONSE = {
    "Sensitivity/Response": "sensitive",
    "Resistance": "resistant",
    "Reduced Sensitivity": "resistant",
}


def _therapy_sets(
    therapies: str, interaction: str, drug_names: Mapping[str, str]
) -> list[list[str]]:
    """CIViC therapies as regimens of the drug table's generic names (``Imatinib Mesylate`` is
    imatinib: one drug, one row)."""
    drugs = sorted({drug_names.get(d.lower(), d.lower()) for d in _split(therapies)})
    if not drugs:
        return []
    if interaction == "Substitutes":
        return [[d] for d in sorted(drugs)]
    return [sorted(drugs)]


def civic_statements(
    civic: Civic, doid_context: dict[str, list[str]], drug_names: Mapping[str, str]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    statements: list[dict[str, Any]] = []
    skipped = {"not_supported_profile": 0, "does_not_support": 0, "other_type": 0}
    for row in read_tsv(civic.dir / "01-Aug-2024-ClinicalEvidenceSummaries.tsv"):
        etype = row["evidence_type"]
        if etype not in {"Predictive", "Diagnostic", "Prognostic"}:
            skipped["other_type"] += 1
            continue
        if row["evidence_direction"] != "Supports":
            # "Does Not Support" items are reported by CIViC as negative findings; OncoCDS
            # never turns absence of support into a recommendation.
            skipped["does_not_support"] += 1
            continue
        keys, all_of = civic.profile_keys(row["molecular_profile_id"])
        if not keys:
            skipped["not_supported_profile"] += 1
            continue
        eid = row["evidence_id"]
        pmids = [row["citation_id"]] if row["source_type"] == "PubMed" else []
        base: dict[str, Any] = {
            "source": "CIViC",
            "matchers": sorted(set(keys)),
            "disease": row["disease"] or "unspecified",
            "tumour": civic.tumour_of(row["doid"], row["disease"]),
            "context": sorted(doid_context.get(row["doid"], [])),
            "level": row["evidence_level"],
            "url": _CIVIC_EVIDENCE_URL.format(eid),
            "pmids": pmids,
            "version": CIVIC_RELEASE,
            "profile": row["molecular_profile"],
        }
        if all_of is not None:
            base["all_of"] = all_of
        if etype == "Predictive":
            response = _RESPONSE.get(row["significance"])
            if response is None:
                skipped["other_type"] += 1
                continue
            for n, drugs in enumerate(
                _therapy_sets(row["therapies"], row["therapy_interaction_type"], drug_names)
            ):
                statements.append(
                    {
                        **base,
                        "id": f"EID{eid}" + (f".{n + 1}" if n else ""),
                        "evidence_id": f"EID{eid}",
                        "kind": "predictive",
                        "drugs": drugs,
                        "response": response,
                    }
                )
        else:
            statements.append(
                {
                    **base,
                    "id": f"EID{eid}",
                    "evidence_id": f"EID{eid}",
                    "kind": etype.lower(),
                    "significance": row["significance"],
                }
            )
    return statements, skipped


def civic_assertions(civic: Civic) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """CIViC assertions (cited on findings; germline P/LP) and the germline P/LP variants."""
    assertions: list[dict[str, Any]] = []
    germline: list[dict[str, Any]] = []
    for row in read_tsv(civic.dir / "01-Aug-2024-AssertionSummaries.tsv"):
        aid = row["assertion_id"]
        keys, all_of = civic.profile_keys(row["molecular_profile_id"])
        record = {
            "id": f"AID{aid}",
            "url": _CIVIC_ASSERTION_URL.format(aid),
            "type": row["assertion_type"],
            "significance": row["significance"],
            "disease": row["disease"],
            "doid": row["doid"],
            "tumour": civic.tumour_of(row["doid"], row["disease"]),
            "therapies": sorted(d.lower() for d in _split(row["therapies"])),
            "amp_category": row["amp_category"],
            "profile": row["molecular_profile"],
            "matchers": sorted(set(keys)),
            "evidence_ids": sorted(f"EID{e}" for e in _split(row["evidence_item_ids"])),
        }
        assertions.append(record)
        if (
            row["assertion_type"] == "Predisposing"
            and row["significance"] in {"Pathogenic", "Likely Pathogenic"}
            and keys
            and all_of is None
        ):
            germline.append(
                {
                    "id": f"AID{aid}",
                    "matchers": sorted(set(keys)),
                    "classification": row["significance"].lower(),
                    "condition": row["disease"],
                    "acmg_codes": _split(row["acmg_codes"]),
                    "url": _CIVIC_ASSERTION_URL.format(aid),
                    "version": CIVIC_RELEASE,
                }
            )
    return assertions, germline
