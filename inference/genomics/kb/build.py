"""Compile the knowledge-base sources into one JSON file (``oncocds kb build``).

Sources (``inference/genomics/kb/sources/``):

- ``civic/``: the CIViC 01-Aug-2024 release (CC0), checked by sha256 before use;
- ``curated/``: hand-curated TOML (FDA approvals, resistance rules, hereditary genes,
  pharmacogenomics, tumour types, drugs, hotspot coordinates for both builds).

The output is deterministic: the same sources give a byte-identical file (sorted keys, sorted
lists, no timestamps; the version is derived from the sources' hashes). Genomic keys are
precomputed for GRCh37 (CIViC VariantSummaries coordinates and ``NC_…`` GRCh37 g. HGVS) and
GRCh38 (``NC_…`` GRCh38 g. HGVS and the curated hotspots), so no sequence database is needed at
run time.

Every statement the compiled KB holds carries its citation (CIViC EID/AID, FDA label, CPIC/DPWG
guideline, PubMed ids); the builder refuses a curated item without one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from inference.errors import KnowledgeBaseSourceError
from inference.genomics import classes, hgvs
from inference.genomics.kb import civic as civic_source
from inference.genomics.kb import curated as curated_source
from inference.genomics.kb import fda as fda_source
from inference.genomics.kb import keys
from inference.genomics.kb.civic import CIVIC_RELEASE, read_tsv, sha256_file
from inference.genomics.kb.tumours import tumour_types

FORMAT: Final = 1
CURATED_FILES: Final = (
    "drugs.toml",
    "hereditary.toml",
    "hotspots.toml",
    "pharmacogenomics.toml",
    "resistance.toml",
    "tumour_types.toml",
)


# The builder's own modules: the KB version changes with any of them.
_BUILDER_MODULES: Final = (
    __file__,
    civic_source.__file__,
    curated_source.__file__,
    fda_source.__file__,
    keys.__file__,
    classes.__file__,
    hgvs.__file__,
    tumour_types.__code__.co_filename,
)
#: Drug statuses ``drugs.toml`` may give (see its header).
DRUG_STATUSES: Final = frozenset(
    {"approved", "withdrawn", "investigational", "preclinical", "class"}
)

# ------------------------------------------------------------------ curated


def _civic_drug_names(data: dict[str, Any]) -> dict[str, str]:
    """CIViC therapy name (lower case) → the drug table's generic name (``drugs.toml``
    ``civic_names``)."""
    names: dict[str, str] = {}
    for entry in data.get("drug", []):
        for civic_name in entry.get("civic_names", ()):
            names.setdefault(str(civic_name).strip().lower(), str(entry["name"]))
    return names


def _drug_status(data: dict[str, Any]) -> dict[str, str]:
    """Drug name → approved/withdrawn/investigational/preclinical/class (``drugs.toml``)."""
    status: dict[str, str] = {}
    for entry in data.get("drug", []):
        name, value = entry.get("name"), entry.get("status")
        if not isinstance(name, str) or value not in DRUG_STATUSES:
            raise KnowledgeBaseSourceError(f"drugs.toml: drug {name!r}: status {value!r} unknown")
        if name in status:
            raise KnowledgeBaseSourceError(f"drugs.toml: drug {name} listed twice")
        status[name] = str(value)
    # Synonyms, brands and CIViC names after every generic name, so another drug's synonym
    # never shadows a generic name.
    for entry in data.get("drug", []):
        for other in (
            *entry.get("synonyms", ()),
            *entry.get("civic_names", ()),
            *entry.get("brands", ()),
        ):
            status.setdefault(str(other).strip().lower(), str(entry["status"]))
    return dict(sorted(status.items()))


# ------------------------------------------------------------------ build


def build_knowledge_base(sources_dir: Path) -> dict[str, Any]:
    """Compile the sources under ``sources_dir`` (``civic/`` and ``curated/``) into a dict.

    Raises:
        KnowledgeBaseSourceError: a source is missing, altered or inconsistent.
    """
    civic_dir, curated_dir = sources_dir / "civic", sources_dir / "curated"
    civic_hashes = civic_source.check_civic(civic_dir)
    curated = {name: curated_source.load_toml(curated_dir / name) for name in CURATED_FILES}
    curated_hashes = {name: sha256_file(curated_dir / name) for name in CURATED_FILES}

    tumours = tumour_types(curated["tumour_types.toml"], sources_dir / "oncotree")
    types, doid_map, names_map, doid_context = tumours[:4]
    civic = civic_source.Civic(civic_dir, doid_map, names_map)
    civic_statements, skipped = civic_source.civic_statements(
        civic, doid_context, _civic_drug_names(curated["drugs.toml"])
    )
    assertions, germline = civic_source.civic_assertions(civic)
    eids = {s["evidence_id"] for s in civic_statements} | {
        f"EID{row['evidence_id']}"
        for row in read_tsv(civic_dir / "01-Aug-2024-ClinicalEvidenceSummaries.tsv")
    }
    tumour_codes = {t["code"] for t in types}
    curated_statements = curated_source.curated_statements(
        curated["resistance.toml"], tumour_codes, eids
    )
    fda_dir = curated_dir / "fda"
    fda = fda_source.load_fda_layer(fda_dir, tumour_codes, eids)
    curated_hashes.update(
        {f"fda/{path.name}": sha256_file(path) for path in sorted(fda_dir.glob("*.toml"))}
    )
    drug_status = _drug_status(curated["drugs.toml"])
    genomic, cdna = civic.genomic_alleles()
    hot_genomic, hot_cdna = curated_source.hotspots(curated["hotspots.toml"])
    for key, allele in hot_genomic.items():
        if key in genomic and genomic[key] != allele:
            raise KnowledgeBaseSourceError(f"hotspot {key} disagrees with CIViC {genomic[key]}")
        genomic[key] = allele
    cdna.update(hot_cdna)

    # A fact whose tumour code the tumour table does not hold yet (the OncoTree table is being
    # completed) is held out and listed: a statement must name a known tumour type.
    # (Exclusions may name codes the table lacks: no patient can be of such a type yet.)
    fda_statements = [s for s in fda.statements if s["tumour"] in tumour_codes]
    fda_held_out = sorted(s["id"] for s in fda.statements if s not in fda_statements)
    statements = sorted(
        civic_statements + curated_statements + fda_statements, key=lambda s: s["id"]
    )
    ids = [s["id"] for s in statements]
    if len(set(ids)) != len(ids):
        raise KnowledgeBaseSourceError("statement ids repeat across sources")
    drugs_named = sorted({d for s in statements if s["kind"] == "predictive" for d in s["drugs"]})
    rxnorm = curated["drugs.toml"]["rxnorm"]
    pgx = curated["pharmacogenomics.toml"]
    for gene, spec in pgx.items():
        if gene != "version" and not spec["source"].get("url"):
            raise KnowledgeBaseSourceError(f"pharmacogenomics {gene}: no citation")
    pgx_drugs = sorted({d for g, s in pgx.items() if g != "version" for d in s["drugs"]})
    all_drugs = sorted(set(drugs_named) | set(pgx_drugs) | set(rxnorm))

    # The version changes with any source byte and with the builder itself (its own source).
    builder_hash = [sha256_file(Path(module)) for module in _BUILDER_MODULES]
    fingerprint = hashlib.sha256(
        json.dumps(
            [civic_hashes, curated_hashes, builder_hash, tumours.fingerprint], sort_keys=True
        ).encode()
    ).hexdigest()[:12]
    curated_release = max([*fda.versions.values(), curated["resistance.toml"]["version"]])
    version = f"civic-{CIVIC_RELEASE}+curated-{curated_release}+{fingerprint}"
    genes = sorted(
        {gene for s in statements for k in s["matchers"] for gene in keys.genes_of(k)}
        | set(curated["hereditary.toml"]["genes"])
    )
    counts = {
        "civic_evidence_items": len({s["evidence_id"] for s in civic_statements}),
        "civic_statements": len(civic_statements),
        "civic_assertions": len(assertions),
        "civic_skipped": dict(sorted(skipped.items())),
        "fda_approvals": sum(1 for s in fda.statements if s["effect"] == "indicated"),
        "fda_not_indicated": sum(1 for s in fda.statements if s["effect"] == "not-indicated"),
        "fda_withdrawn": sum(1 for s in fda.statements if s["status"] == "withdrawn"),
        "fda_labels": len(fda.labels),
        "fda_facts_to_check": len(fda.to_check),
        "fda_facts_held_out": len(fda_held_out),
        "fda_tumours_pending": fda.pending_tumours,
        "resistance_rules": len(curated["resistance.toml"]["rule"]),
        "hereditary_genes": len(curated["hereditary.toml"]["genes"]),
        "germline_pathogenic_variants": len(germline),
        "pharmacogenes": len([g for g in pgx if g != "version"]),
        "tumour_types": len(types),
        "genomic_keys": len(genomic),
        "genomic_keys_grch38": sum(1 for k in genomic if k.startswith("GRCh38:")),
        "cdna_keys": len(cdna),
        "drugs": len(all_drugs),
        "drugs_with_rxnorm": len(rxnorm),
        "genes": len(genes),
    }
    return {
        "format": FORMAT,
        "version": version,
        "sources": [
            {
                "name": "CIViC",
                "release": CIVIC_RELEASE,
                "licence": "CC0-1.0",
                "url": f"https://civicdb.org/downloads/{CIVIC_RELEASE}/",
                "files": civic_hashes,
            },
            {
                "name": "OncoCDS curated: FDA labels, resistance, ACMG SF, CPIC/DPWG, tumour types",
                "release": curated_release,
                "licence": "project",
                "files": curated_hashes,
            },
            tumours.source,
        ],
        "counts": counts,
        "tumour_types": types,
        "drugs": {name: rxnorm.get(name) for name in all_drugs},
        "drug_status": drug_status,
        "fda_to_check": dict(sorted(fda.to_check.items())),
        "fda_held_out": fda_held_out,
        "genomic_alleles": dict(sorted(genomic.items())),
        "cdna_alleles": dict(sorted(cdna.items())),
        "statements": statements,
        "assertions": sorted(assertions, key=lambda a: int(a["id"][3:])),
        "germline_pathogenic": sorted(germline, key=lambda g: g["id"]),
        "hereditary": curated["hereditary.toml"],
        "pharmacogenomics": pgx,
        "genes": genes,
    }


def _canonical(data: Any) -> Iterable[str]:
    yield json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    yield "\n"


def write_knowledge_base(sources_dir: Path, output: Path) -> dict[str, Any]:
    """Build and write the compiled KB to ``output`` (byte-identical for identical sources)."""
    data = build_knowledge_base(sources_dir)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(output.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as handle:
        for chunk in _canonical(data):
            handle.write(chunk)
    tmp.replace(output)
    return data
