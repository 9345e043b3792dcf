"""Hand-curated sources (TOML): resistance rules and hotspot coordinates, compiled into
knowledge-base statements and allele keys (see :mod:`inference.genomics.kb.build`; the FDA
layer is :mod:`inference.genomics.kb.fda`). Every item must carry a citation."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from inference.errors import KnowledgeBaseSourceError
from inference.genomics.kb import keys


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise KnowledgeBaseSourceError(f"missing knowledge-base source {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise KnowledgeBaseSourceError(f"{path}: invalid TOML: {exc}") from exc


def matcher_keys(spec: dict[str, Any]) -> list[str]:  # noqa: PLR0911 - one return per kind
    """Matcher keys of an alteration spec of ``resistance.toml`` (kinds as written there)."""
    kind = spec["kind"]
    gene = spec.get("gene", "")
    if kind == "protein":
        return [keys.protein(gene, c) for c in spec["changes"]]
    if kind == "codon":
        return [keys.codon(gene, c) for c in spec["codons"]]
    if kind == "fusion":
        return [keys.fusion(gene, spec.get("partner"))]
    if kind == "amplification":
        return [keys.amplification(gene)]
    if kind == "deletion":
        return [keys.deletion(gene)]
    if kind == "msi-high":
        return [keys.MSI]
    if kind == "tmb":
        return [keys.tmb(float(spec["min"]))]
    if kind == "inframe_deletion":
        return [keys.codon_range(gene, int(spec["start"]), int(spec["end"]))]
    if kind == "named":
        return [keys.named(gene, spec["name"])]
    raise KnowledgeBaseSourceError(f"unknown alteration kind {kind!r}")


def _require_citation(item: dict[str, Any], where: str) -> None:
    if not (item.get("url") and (item.get("label") or item.get("pmids") or item.get("civic_eids"))):
        raise KnowledgeBaseSourceError(
            f"{where} {item.get('id')}: no citation (url + label/pmids/eids)"
        )


def curated_statements(
    resistance: dict[str, Any], tumour_codes: set[str], eids: set[str]
) -> list[dict[str, Any]]:
    """Statements of the resistance rules (one per drug resisted)."""
    statements = []
    for rule in resistance["rule"]:
        _require_citation(rule, "resistance rule")
        if rule["tumour"] not in tumour_codes:
            raise KnowledgeBaseSourceError(f"resistance rule {rule['id']}: unknown tumour")
        for eid in rule.get("civic_eids", []):
            if f"EID{eid}" not in eids:
                raise KnowledgeBaseSourceError(
                    f"resistance rule {rule['id']}: EID{eid} not in CIViC"
                )
        matchers = sorted({k for spec in rule["alterations"] for k in matcher_keys(spec)})
        for drug in sorted(rule["drugs"]):
            statements.append(
                {
                    "id": f"{rule['id']}.{drug}",
                    "evidence_id": rule["id"],
                    "source": "FDA" if rule["level"] == "label" else "curated",
                    "kind": "predictive",
                    "matchers": matchers,
                    "drugs": [drug],
                    "response": "resistant",
                    "disease": rule["statement"],
                    "tumour": rule["tumour"],
                    "excludes": [],
                    "context": [],
                    "level": rule["level"],
                    "label": rule.get("label"),
                    "url": rule["url"],
                    "pmids": sorted(rule.get("pmids", [])),
                    "civic_eids": sorted(f"EID{e}" for e in rule.get("civic_eids", [])),
                    "version": resistance["version"],
                }
            )
    return statements


def hotspots(data: dict[str, Any]) -> tuple[dict[str, list[str]], dict[str, str]]:
    genomic: dict[str, list[str]] = {}
    cdna: dict[str, str] = {}
    for item in data["variant"]:
        if not item.get("source"):
            raise KnowledgeBaseSourceError(f"hotspot {item['gene']} {item['protein']}: no source")
        for build in ("GRCh37", "GRCh38"):
            if item.get(build):
                genomic[f"{build}:{item[build]}"] = [item["gene"], item["protein"]]
        if item.get("hgvs_c"):
            cdna[f"{item['gene']}:{item['hgvs_c']}"] = item["protein"]
    return genomic, cdna
