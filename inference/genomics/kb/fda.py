"""The FDA layer: strict loader of ``sources/curated/fda/*.toml`` (format: docs/kb/fda-facts.md).

Every field of every ``[[label]]`` and ``[[fact]]`` is checked; anything unknown (a field, a
biomarker kind, a class, a ``requires`` tag, a line) is refused with the file and the fact id.
The label index and the facts must agree both ways: every indexed indication has a fact and
every fact is indexed by its label. CIViC evidence ids must exist in the CIViC release.

Each fact becomes one knowledge-base statement (``source = "FDA"``, ``level = "label"``); its
biomarker specs compile to the matcher keys of :mod:`inference.genomics.kb.keys`, which
:mod:`inference.genomics.matching` produces for a patient's alterations.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from inference.errors import KnowledgeBaseSourceError
from inference.genomics.classes import CLASS_GENES
from inference.genomics.hgvs import X_MEANS_STOP, protein_change_key
from inference.genomics.kb import keys

#: Context tags a fact may require (docs/kb/fda-facts.md; CD117+ for imatinib's Kit-positive
#: GIST, which the curators flagged for the loader).
REQUIRES_TAGS: Final = frozenset(
    {
        "HR+", "HR-", "ER+", "PR+", "HER2+", "HER2-", "HER2-low", "PD-L1+", "Ph+", "CD20+",
        "CD33+", "BCMA+", "CLDN18.2+", "FRalpha+", "TROP2+", "CD117+",
    }
)  # fmt: skip
LINES: Final = frozenset(
    {"first-line", "later-line", "maintenance", "adjuvant", "neoadjuvant", "any", "perioperative"}
)
EFFECTS: Final = {"indicated": "sensitive", "not-indicated": "not-indicated"}
APPROVALS: Final = frozenset({"regular", "accelerated"})
STATUSES: Final = frozenset({"approved", "withdrawn"})
ORIGINS: Final = frozenset({"any", "germline", "somatic"})
#: Tumour codes of the whole-cancer and solid-tumour roots: a fact there is tumour-agnostic.
AGNOSTIC: Final = frozenset({"CANCER", "SOLID"})

_LABEL_REQUIRED: Final = frozenset(
    {"id", "brand", "drugs", "application", "url", "revised", "indications"}
)
_LABEL_OPTIONAL: Final = frozenset({"setid"})
_FACT_REQUIRED: Final = frozenset(
    {
        "id", "label", "section", "drugs", "effect", "tumour", "biomarkers", "line", "setting",
        "indication", "date", "approval", "status",
    }
)  # fmt: skip
_FACT_OPTIONAL: Final = frozenset(
    {
        "excludes", "requires", "origin", "all_of", "combination", "withdrawn", "withdrawn_note",
        "cdx", "pmids", "civic_eids", "note", "check",
    }
)  # fmt: skip
_FILE_KEYS: Final = frozenset({"version", "area", "label", "fact"})

_GENE = re.compile(r"^[A-Z][A-Z0-9-]*$")
_CODON = re.compile(r"^[ACDEFGHIKLMNPQRSTVWY]\d+$")
_DRUG = re.compile(r"^[a-z0-9][a-z0-9 ()./+-]*$")
_DATE = re.compile(r"^\d{4}-\d{2}(?:-\d{2})?$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_APPLICATION = re.compile(r"^(?:(?:NDA|BLA) \d{6}|unknown)$")
_SETID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_TUMOUR = re.compile(r"^[A-Z][A-Z0-9_/]*$")
_SECTION = re.compile(r"^\d+(?:\.\d+)*$")
_ID = re.compile(r"^[A-Z0-9][A-Z0-9-]*$")
_DIGITS = re.compile(r"^\d+$")


@dataclass(slots=True)
class FdaLayer:
    """The compiled FDA layer: statements, the label index, and what needs a curator's check."""

    statements: list[dict[str, Any]]
    labels: dict[str, dict[str, Any]]
    versions: dict[str, str]
    #: Fact id → what is uncertain (the curators' ``check``).
    to_check: dict[str, str] = field(default_factory=dict)
    #: Tumour codes the facts use that the KB's tumour table does not hold (yet).
    pending_tumours: list[str] = field(default_factory=list)


class _Where:
    """Error messages that name the file and the item."""

    def __init__(self, path: Path, item: str) -> None:
        self.path, self.item = path, item

    def error(self, message: str) -> KnowledgeBaseSourceError:
        return KnowledgeBaseSourceError(f"{self.path.name}: {self.item}: {message}")


def _str(
    where: _Where, item: dict[str, Any], name: str, pattern: re.Pattern[str] | None = None
) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value.strip():
        raise where.error(f"{name} must be a non-empty string")
    if pattern is not None and not pattern.match(value):
        raise where.error(f"{name} {value!r} is not of the form {pattern.pattern}")
    return value


def _strings(
    where: _Where,
    item: dict[str, Any],
    name: str,
    pattern: re.Pattern[str] | None = None,
    *,
    required: bool = False,
) -> list[str]:
    value = item.get(name)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise where.error(f"{name} must be a list of non-empty strings")
    if required and not value:
        raise where.error(f"{name} must not be empty")
    for entry in value:
        if pattern is not None and not pattern.match(entry):
            raise where.error(f"{name} entry {entry!r} is not of the form {pattern.pattern}")
    if len(set(value)) != len(value):
        raise where.error(f"{name} lists an entry twice")
    return list(value)


def _fields(
    where: _Where, item: dict[str, Any], required: frozenset[str], optional: frozenset[str]
) -> None:
    missing = sorted(required - item.keys())
    if missing:
        raise where.error(f"missing field(s) {', '.join(missing)}")
    unknown = sorted(item.keys() - required - optional)
    if unknown:
        raise where.error(f"unknown field(s) {', '.join(unknown)}")


def _one_of(
    where: _Where,
    item: dict[str, Any],
    name: str,
    allowed: Iterable[str],
    default: str | None = None,
) -> str:
    value = item.get(name, default)
    allowed = sorted(allowed)
    if value not in allowed:
        raise where.error(f"{name} {value!r} is not one of {', '.join(allowed)}")
    return str(value)


# ------------------------------------------------------------------ biomarker specs


def _gene(where: _Where, spec: dict[str, Any]) -> str:
    gene = spec.get("gene")
    if not isinstance(gene, str) or not _GENE.match(gene):
        raise where.error(f"biomarker {spec!r}: gene must be an HGNC symbol")
    return gene


def _spec_fields(where: _Where, spec: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(spec.keys() - allowed - {"kind"})
    if unknown:
        raise where.error(f"biomarker {spec!r}: unknown field(s) {', '.join(unknown)}")


def _protein(where: _Where, spec: dict[str, Any], origin: str) -> list[str]:
    _spec_fields(where, spec, {"gene", "changes"})
    gene = _gene(where, spec)
    changes = _strings(where, spec, "changes", required=True)
    for change in changes:
        # The key must be the one matching computes for the same change, or it never matches.
        if protein_change_key(change, x_means=X_MEANS_STOP) != change:
            raise where.error(f"biomarker {gene} {change!r}: not a normalised protein change key")
    return [keys.protein(gene, c) for c in changes]


def _codon(where: _Where, spec: dict[str, Any], origin: str) -> list[str]:
    _spec_fields(where, spec, {"gene", "codons"})
    gene = _gene(where, spec)
    return [keys.codon(gene, c) for c in _strings(where, spec, "codons", _CODON, required=True)]


def _class(where: _Where, spec: dict[str, Any], origin: str) -> list[str]:
    _spec_fields(where, spec, {"gene", "class"})
    gene = _gene(where, spec)
    name = spec.get("class")
    if name not in CLASS_GENES:
        raise where.error(
            f"biomarker {gene}: unknown class {name!r} (known: {', '.join(sorted(CLASS_GENES))})"
        )
    genes = CLASS_GENES[name]
    if genes is not None and gene not in genes:
        raise where.error(f"biomarker class {name} is not defined for {gene}")
    return [keys.variant_class(gene, name)]


def _exon(where: _Where, spec: dict[str, Any], origin: str) -> list[str]:
    _spec_fields(where, spec, {"gene", "exons", "change"})
    gene = _gene(where, spec)
    exons = spec.get("exons")
    if (
        not isinstance(exons, list)
        or not exons
        or not all(isinstance(n, int) and n > 0 for n in exons)
    ):
        raise where.error(f"biomarker {gene}: exons must be a list of exon numbers")
    change = spec.get("change", "any")
    if change not in keys.EXON_CHANGES:
        raise where.error(f"biomarker {gene}: exon change {change!r} unknown")
    return [keys.exon(gene, n, change) for n in exons]


def _fusion(where: _Where, spec: dict[str, Any], origin: str) -> list[str]:
    _spec_fields(where, spec, {"gene", "partner"})
    gene = _gene(where, spec)
    partner = spec.get("partner")
    if partner is not None and (not isinstance(partner, str) or not _GENE.match(partner)):
        raise where.error(f"biomarker {gene}: partner must be an HGNC symbol")
    return [keys.fusion(gene, partner)]


def _gene_only(build: Callable[[str], str]) -> Callable[[_Where, dict[str, Any], str], list[str]]:
    def compile_spec(where: _Where, spec: dict[str, Any], origin: str) -> list[str]:
        _spec_fields(where, spec, {"gene"})
        return [build(_gene(where, spec))]

    return compile_spec


def _deleterious(where: _Where, spec: dict[str, Any], origin: str) -> list[str]:
    _spec_fields(where, spec, {"gene"})
    return [keys.deleterious(_gene(where, spec), origin)]


def _tmb(where: _Where, spec: dict[str, Any], origin: str) -> list[str]:
    _spec_fields(where, spec, {"min"})
    minimum = spec.get("min")
    if not isinstance(minimum, int | float) or isinstance(minimum, bool) or minimum <= 0:
        raise where.error("biomarker tmb: min must be a positive number (mut/Mb)")
    return [keys.tmb(float(minimum))]


def _constant(key: str) -> Callable[[_Where, dict[str, Any], str], list[str]]:
    def compile_spec(where: _Where, spec: dict[str, Any], origin: str) -> list[str]:
        _spec_fields(where, spec, set())
        return [key]

    return compile_spec


#: Biomarker kinds (docs/kb/fda-facts.md, "Biomarker specs") → their key compilers.
SPEC_KINDS: Final[dict[str, Callable[[_Where, dict[str, Any], str], list[str]]]] = {
    "protein": _protein,
    "codon": _codon,
    "class": _class,
    "exon": _exon,
    "fusion": _fusion,
    "amplification": _gene_only(keys.amplification),
    "deletion": _gene_only(keys.deletion),
    "deleterious": _deleterious,
    "mutation": _gene_only(keys.mutation),
    "msi-high": _constant(keys.MSI),
    "tmb": _tmb,
    "hrd": _constant(keys.HRD),
}


def describe(spec: dict[str, Any]) -> str:
    """A reader's text for a (checked) biomarker spec: ``ABL1 T315I``, ``BCR::ABL1 fusion``."""
    kind, gene = spec["kind"], spec.get("gene", "")
    text: str
    if kind == "protein":
        text = f"{gene} {'/'.join(spec['changes'])}"
    elif kind == "codon":
        text = f"{gene} {'/'.join(spec['codons'])}"
    elif kind == "class":
        text = f"{gene} {spec['class'].replace('_', ' ')}"
    elif kind == "exon":
        exons = "/".join(str(n) for n in spec["exons"])
        change = spec.get("change", "any")
        text = f"{gene} exon {exons} " + ("mutation" if change == "any" else change)
    elif kind == "fusion":
        text = f"{spec['partner']}::{gene} fusion" if spec.get("partner") else f"{gene} fusion"
    elif kind == "msi-high":
        text = "MSI-H/dMMR"
    elif kind == "tmb":
        text = f"TMB >= {float(spec['min']):g} mut/Mb"
    elif kind == "hrd":
        text = "HRD-positive"
    else:
        text = f"{gene} {kind}"
    return text


def spec_keys(where: _Where, specs: Any, origin: str, name: str) -> list[str]:
    """Matcher keys of a list of biomarker specs (any one matches)."""
    if not isinstance(specs, list) or not specs or not all(isinstance(s, dict) for s in specs):
        raise where.error(f"{name} must be a non-empty list of biomarker specs")
    found: list[str] = []
    for spec in specs:
        kind = spec.get("kind")
        compile_spec = SPEC_KINDS.get(kind) if isinstance(kind, str) else None
        if compile_spec is None:
            raise where.error(
                f"unknown biomarker kind {kind!r} (known: {', '.join(sorted(SPEC_KINDS))})"
            )
        found.extend(compile_spec(where, spec, origin))
    return sorted(set(found))


# ------------------------------------------------------------------ labels and facts


def _label(path: Path, item: dict[str, Any]) -> dict[str, Any]:
    where = _Where(path, f"label {item.get('id')}")
    _fields(where, item, _LABEL_REQUIRED, _LABEL_OPTIONAL)
    _str(where, item, "id", _ID)
    _str(where, item, "brand")
    _strings(where, item, "drugs", _DRUG, required=True)
    _str(where, item, "application", _APPLICATION)
    url = _str(where, item, "url")
    if not url.startswith("https://dailymed.nlm.nih.gov/"):
        raise where.error("url must be a DailyMed page")
    _str(where, item, "revised", _MONTH)
    _strings(where, item, "indications", _ID, required=True)
    if "setid" in item:
        setid = _str(where, item, "setid", _SETID)
        if setid not in url:
            raise where.error("url does not name the label's setid")
    return item


def _fact(  # noqa: PLR0915, PLR0917 - one check per field, in the format's order
    path: Path,
    item: dict[str, Any],
    labels: dict[str, dict[str, Any]],
    tumour_codes: set[str],
    civic_eids: set[str],
    layer: FdaLayer,
) -> dict[str, Any]:
    where = _Where(path, f"fact {item.get('id')}")
    _fields(where, item, _FACT_REQUIRED, _FACT_OPTIONAL)
    fact_id = _str(where, item, "id", _ID)
    label_id = _str(where, item, "label", _ID)
    label = labels.get(label_id)
    if label is None:
        raise where.error(f"label {label_id} is not indexed by any [[label]]")
    if fact_id not in label["indications"]:
        raise where.error(f"label {label_id} does not list this fact in its indications")
    section = _str(where, item, "section", _SECTION)
    drugs = _strings(where, item, "drugs", _DRUG, required=True)
    effect = _one_of(where, item, "effect", EFFECTS)
    tumour = _str(where, item, "tumour", _TUMOUR)
    excludes = _strings(where, item, "excludes", _TUMOUR)
    for code in [tumour, *excludes]:
        if code not in tumour_codes and code not in layer.pending_tumours:
            layer.pending_tumours.append(code)
    requires = _strings(where, item, "requires")
    unknown_tags = sorted(set(requires) - REQUIRES_TAGS)
    if unknown_tags:
        raise where.error(
            f"unknown requires tag(s) {', '.join(unknown_tags)} "
            f"(known: {', '.join(sorted(REQUIRES_TAGS))})"
        )
    origin = _one_of(where, item, "origin", ORIGINS, default="any")
    matchers = spec_keys(where, item["biomarkers"], origin, "biomarkers")
    all_of: list[list[str]] | None = None
    if "all_of" in item:
        extra = [spec_keys(where, [spec], origin, "all_of") for spec in item["all_of"]]
        all_of = [matchers, *extra]
        matchers = sorted({k for part in all_of for k in part})
    line = _one_of(where, item, "line", LINES)
    setting = _str(where, item, "setting")
    indication = _str(where, item, "indication")
    date = _str(where, item, "date", _DATE)
    approval = _one_of(where, item, "approval", APPROVALS)
    status = _one_of(where, item, "status", STATUSES)
    if status == "withdrawn":
        _str(where, item, "withdrawn", _DATE)
        _str(where, item, "withdrawn_note")
    elif "withdrawn" in item or "withdrawn_note" in item:
        raise where.error("withdrawn/withdrawn_note given for an approved fact")
    combination = _str(where, item, "combination") if "combination" in item else None
    cdx = _strings(where, item, "cdx")
    pmids = _strings(where, item, "pmids", _DIGITS)
    eids = _strings(where, item, "civic_eids", _DIGITS)
    for eid in eids:
        if f"EID{eid}" not in civic_eids:
            raise where.error(f"EID{eid} is not in the CIViC release")
    note = _str(where, item, "note") if "note" in item else None
    if "check" in item:
        layer.to_check[fact_id] = _str(where, item, "check")
    statement: dict[str, Any] = {
        "id": fact_id,
        "evidence_id": fact_id,
        "source": "FDA",
        "kind": "predictive",
        "matchers": matchers,
        "drugs": sorted(drugs),
        "effect": effect,
        "response": EFFECTS[effect],
        "disease": indication,
        "tumour": tumour,
        "tumour_agnostic": tumour in AGNOSTIC,
        "excludes": sorted(excludes),
        "context": sorted(requires),
        "level": "label",
        "line": line,
        "setting": setting,
        "combination": combination,
        "label": f"{label['brand'].upper()} ({', '.join(label['drugs'])}) prescribing information",
        "label_id": label_id,
        "section": section,
        "setid": label.get("setid"),
        "url": label["url"],
        "version": date,
        "approval": approval,
        "status": status,
        "withdrawn": item.get("withdrawn"),
        "origin": origin,
        "cdx": sorted(cdx),
        "pmids": sorted(pmids),
        "civic_eids": sorted(f"EID{e}" for e in eids),
        "note": note,
    }
    profile = " OR ".join(describe(spec) for spec in item["biomarkers"])
    if all_of is not None:
        statement["all_of"] = all_of
        profile = " AND ".join([profile, *(describe(spec) for spec in item["all_of"])])
    statement["profile"] = profile
    return statement


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise KnowledgeBaseSourceError(f"{path.name}: invalid TOML: {exc}") from exc
    unknown = sorted(data.keys() - _FILE_KEYS)
    if unknown:
        raise KnowledgeBaseSourceError(f"{path.name}: unknown top-level key(s) {unknown}")
    where = _Where(path, "file")
    _str(where, data, "version", _DAY)
    _str(where, data, "area")
    for table in ("label", "fact"):
        if not isinstance(data.get(table, []), list):
            raise where.error(f"{table} must be an array of tables")
    return data


def load_fda_layer(fda_dir: Path, tumour_codes: set[str], civic_eids: set[str]) -> FdaLayer:
    """Read, check and compile every ``*.toml`` in ``fda_dir``.

    Args:
        fda_dir: ``sources/curated/fda``.
        tumour_codes: codes of the KB's tumour table (a code outside it is listed in
            ``pending_tumours``, not refused: the OncoTree table is being completed).
        civic_eids: ``EID…`` ids of the CIViC release.

    Raises:
        KnowledgeBaseSourceError: a file, label or fact breaks the format (message names the
            file and the id), ids repeat, or the label index and the facts disagree.
    """
    paths = sorted(fda_dir.glob("*.toml"))
    if not paths:
        raise KnowledgeBaseSourceError(f"no FDA fact files in {fda_dir}")
    files = {path: _load(path) for path in paths}
    labels: dict[str, dict[str, Any]] = {}
    label_file: dict[str, Path] = {}
    for path, data in files.items():
        for item in data.get("label", []):
            label = _label(path, item)
            if label["id"] in labels:
                other = label_file[label["id"]].name
                raise KnowledgeBaseSourceError(
                    f"{path.name}: label {label['id']} also indexed in {other}"
                )
            labels[label["id"]] = label
            label_file[label["id"]] = path
    layer = FdaLayer(
        statements=[],
        labels=labels,
        versions={path.name: str(data["version"]) for path, data in files.items()},
    )
    seen: dict[str, Path] = {}
    for path, data in files.items():
        for item in data.get("fact", []):
            statement = _fact(path, item, labels, tumour_codes, civic_eids, layer)
            if statement["id"] in seen:
                raise KnowledgeBaseSourceError(
                    f"{path.name}: fact {statement['id']} also in {seen[statement['id']].name}"
                )
            seen[statement["id"]] = path
            layer.statements.append(statement)
    for label_id, label in labels.items():
        missing = [i for i in label["indications"] if i not in seen]
        if missing:
            raise KnowledgeBaseSourceError(
                f"{label_file[label_id].name}: label {label_id}: indexed indication(s) without "
                f"a [[fact]]: {', '.join(missing)}"
            )
    layer.pending_tumours.sort()
    layer.statements.sort(key=lambda s: s["id"])
    return layer
