"""Instruction pairs from the knowledge base's cited facts, split by fact group, as JSONL.

Every pair is ``instruction`` + ``input`` (the fact's structured finding, JSON) → ``output``
(``{"answer": text, "citations": [ids]}``). Answers are written by templates from the fact's
own fields only, so every gene, variant, drug, level and number an answer names is in its input
(the test runs the grounding checker over every reference answer), and every answer cites the
fact's citation ids. Three templates per fact: a clinician summary, a patient-facing paragraph,
and the therapies the evidence names ("none" for diagnostic and prognostic evidence: unknown is
said as unknown).

The split is by fact *group* (facts that share any citation), never by template: all pairs of a
fact, and of every fact citing the same EID, PubMed id, label or guideline, fall on one side. A
group is held out when ``sha256(seed|group)`` falls below the held-out fraction, so a fact's
side does not change when other facts are added to the KB.

:func:`export_pairs` writes ``train.jsonl``, ``held_out.jsonl`` and ``manifest.json`` (sha256 and
pair count per file, fact counts per split and kind, the KB version, the seed, the answer schema).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from training.llm.facts import Fact
from training.llm.schema import ANSWER_SCHEMA, MAX_CITATIONS

#: Bump when a template's wording changes (recorded in the manifest and the model card).
TEMPLATE_VERSION: Final = "1"
INSTRUCTIONS: Final = {
    "clinician": (
        "Summarise this genomic finding for the treating oncologist in one or two sentences. "
        "Use only the finding below; cite its evidence ids."
    ),
    "patient": (
        "Explain this finding to the patient in plain language, in two or three short "
        "sentences, without advice beyond what the finding states. Cite its evidence ids."
    ),
    "therapies": (
        "Which therapies does the evidence below name for this finding, and what does it "
        "state about them? Answer from the finding only; cite its evidence ids."
    ),
}
TRAIN_FILE: Final = "train.jsonl"
HELD_OUT_FILE: Final = "held_out.jsonl"
MANIFEST_FILE: Final = "manifest.json"


@dataclass(frozen=True, slots=True)
class Pair:
    id: str
    fact_id: str
    group: str
    kind: str
    template: str
    instruction: str
    input: Mapping[str, Any]
    answer: str
    citations: tuple[str, ...]

    def prompt(self) -> str:
        """The user turn: the instruction, then the finding as canonical JSON."""
        return f"{self.instruction}\n\nFinding (JSON):\n{canonical_json(self.input)}"

    def target(self) -> str:
        """The assistant turn: the answer object as compact JSON."""
        return json.dumps(
            {"answer": self.answer, "citations": list(self.citations)},
            ensure_ascii=False,
            separators=(",", ":"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fact_id": self.fact_id,
            "group": self.group,
            "kind": self.kind,
            "template": self.template,
            "instruction": self.instruction,
            "input": self.input,
            "output": {"answer": self.answer, "citations": list(self.citations)},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Pair:
        return cls(
            id=data["id"],
            fact_id=data["fact_id"],
            group=data["group"],
            kind=data["kind"],
            template=data["template"],
            instruction=data["instruction"],
            input=data["input"],
            answer=data["output"]["answer"],
            citations=tuple(data["output"]["citations"]),
        )


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _answers(fact: Fact) -> dict[str, str]:
    """The three answers for ``fact``, from its finding's fields only."""
    f = fact.finding
    alteration = f.get("alteration", "this alteration")
    tumour = f.get("tumour", {}).get("name", "this tumour type")
    drugs = _join(list(f.get("drugs", ())))
    if fact.kind.startswith("fda-"):
        return _fda_answers(fact.kind, f, alteration, tumour, drugs)
    if fact.kind == "pgx":
        phenotype, recommendation = f["phenotype"], f["recommendation"]
        return {
            "clinician": f"{phenotype} ({f['guideline']}): {recommendation}",
            "patient": (
                f"Your genetic test shows that you are a {phenotype}. This changes how your "
                f"body handles {drugs}. The guideline says: {recommendation}"
            ),
            "therapies": f"{drugs}: {recommendation}",
        }
    if fact.kind == "curated-resistance":
        return {
            "clinician": (
                f"{alteration} in {tumour}: {f.get('summary', '')} (evidence level "
                f"{f.get('evidence_level')})"
            ),
            "patient": (
                f"Your tumour test found {alteration}. The cited sources link this change in "
                f"{tumour} with resistance to {drugs}, in the setting they describe."
            ),
            "therapies": f"{drugs}: resistance in {tumour} with {alteration}.",
        }
    return _civic_answers(f, alteration, drugs)


def _fda_answers(
    kind: str, f: Mapping[str, Any], alteration: str, tumour: str, drugs: str
) -> dict[str, str]:
    regimen = f.get("regimen") or drugs
    source = f"{f.get('label')}, section {f.get('label_section')}, dated {f.get('label_date')}"
    if kind == "fda-not-indicated":
        return {
            "clinician": (
                f"{alteration} in {tumour}: the FDA label ({source}) states that {regimen} is "
                "not indicated for tumours with this alteration."
            ),
            "patient": (
                f"Your tumour test found {alteration}. The FDA drug label states that {drugs} "
                f"is not meant for {tumour} with this change."
            ),
            "therapies": f"{regimen}: not indicated for {alteration} in {tumour} (FDA label).",
        }
    if kind == "fda-withdrawn":
        return {
            "clinician": (
                f"{alteration} in {tumour}: the FDA indication of {regimen} ({source}) was "
                f"withdrawn on {f.get('withdrawn')}; it is no longer an approved option."
            ),
            "patient": (
                f"Your tumour test found {alteration}. An earlier FDA approval of {drugs} for "
                f"{tumour} with this change was withdrawn, so it is no longer an approved option."
            ),
            "therapies": f"{regimen}: FDA indication withdrawn on {f.get('withdrawn')}.",
        }
    details = [f"setting: {f['setting']}"] if f.get("setting") else []
    if f.get("line") and f.get("line") != "any":
        details.append(str(f["line"]))
    details.append(f"{f.get('approval')} approval")
    return {
        "clinician": (
            f"{alteration} in {tumour}: the FDA label ({source}) indicates {regimen} "
            f"({'; '.join(details)})."
        ),
        "patient": (
            f"Your tumour test found {alteration}. For {tumour} with this change, an FDA "
            f"drug label names {drugs} as a treatment. Your care team will decide with you "
            "whether it fits your situation."
        ),
        "therapies": f"{regimen}: FDA-indicated for {alteration} in {tumour} ({details[0]}).",
    }


_RESPONSE_WORDS: Final = {"sensitive": "sensitivity", "resistant": "resistance"}
_RESPONSE_PLAIN: Final = {"sensitive": "a better response to", "resistant": "a poorer response to"}


def _civic_answers(f: Mapping[str, Any], alteration: str, drugs: str) -> dict[str, str]:
    disease = f.get("disease", "this disease")
    level, meaning = f.get("evidence_level"), f.get("evidence_level_meaning")
    statement = f.get("statement", "unknown")
    if f.get("evidence_type") == "predictive":
        word = _RESPONSE_WORDS.get(statement, statement)
        return {
            "clinician": (
                f"{alteration} in {disease}: CIViC evidence level {level} ({meaning}) "
                f"associates it with {word} to {drugs}."
            ),
            "patient": (
                f"Your tumour test found {alteration}. Research collected in CIViC ({meaning}) "
                f"links this change with {_RESPONSE_PLAIN.get(statement, word)} {drugs} in "
                f"{disease}. On its own this is not a treatment recommendation."
            ),
            "therapies": f"{drugs}: {word} (CIViC evidence level {level}, {meaning}).",
        }
    kind = f.get("evidence_type", "")
    return {
        "clinician": (
            f"{alteration} in {disease}: CIViC {kind} evidence level {level} ({meaning}); "
            f"significance: {statement}."
        ),
        "patient": (
            f"Your tumour test found {alteration}. Research collected in CIViC ({meaning}) "
            f"describes this change as {kind} in {disease} ({statement})."
        ),
        "therapies": (
            f"The evidence for this finding names no therapy: it is {kind} evidence "
            f"({statement}); which treatment fits is unknown from it."
        ),
    }


def pairs_for(fact: Fact) -> list[Pair]:
    """The instruction pairs of one fact (one per template), each citing the fact's ids."""
    citations = fact.citation_ids[:MAX_CITATIONS]
    answers = _answers(fact)
    return [
        Pair(
            id=f"{fact.id}#{template}",
            fact_id=fact.id,
            group=fact.group or fact.id,
            kind=fact.kind,
            template=template,
            instruction=instruction,
            input=fact.finding,
            answer=answers[template],
            citations=citations,
        )
        for template, instruction in INSTRUCTIONS.items()
    ]


def is_held_out(group: str, *, seed: int, fraction: float) -> bool:
    digest = hashlib.sha256(f"{seed}|{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


@dataclass(frozen=True, slots=True)
class PairSplit:
    train: tuple[Pair, ...]
    held_out: tuple[Pair, ...]


def build_pairs(facts: Iterable[Fact], *, seed: int, held_out_fraction: float) -> PairSplit:
    """All pairs of ``facts``, split by fact group (deterministic for a seed)."""
    train: list[Pair] = []
    held_out: list[Pair] = []
    for fact in facts:
        side = (
            held_out
            if is_held_out(fact.group or fact.id, seed=seed, fraction=held_out_fraction)
            else train
        )
        side.extend(pairs_for(fact))
    return PairSplit(tuple(train), tuple(held_out))


def _write_jsonl(path: Path, pairs: Sequence[Pair]) -> dict[str, Any]:
    body = "".join(canonical_json(p.to_json()) + "\n" for p in pairs).encode("utf-8")
    path.write_bytes(body)
    return {"sha256": hashlib.sha256(body).hexdigest(), "pairs": len(pairs)}


def export_pairs(
    split: PairSplit, out: Path, *, kb_version: str, seed: int, fraction: float
) -> dict[str, Any]:
    """Write the split as JSONL with a manifest; returns the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        TRAIN_FILE: _write_jsonl(out / TRAIN_FILE, split.train),
        HELD_OUT_FILE: _write_jsonl(out / HELD_OUT_FILE, split.held_out),
    }

    def counts(pairs: Sequence[Pair]) -> dict[str, Any]:
        facts = {p.fact_id: p.kind for p in pairs}
        return {
            "pairs": len(pairs),
            "facts": len(facts),
            "groups": len({p.group for p in pairs}),
            "facts_by_kind": dict(sorted(Counter(facts.values()).items())),
        }

    manifest = {
        "generator": "training.llm.pairs",
        "template_version": TEMPLATE_VERSION,
        "kb_version": kb_version,
        "seed": seed,
        "held_out_fraction": fraction,
        "split_unit": "fact group (facts sharing a CIViC EID, PubMed id, FDA label or guideline)",
        "files": files,
        "counts": {"train": counts(split.train), "held_out": counts(split.held_out)},
        "answer_schema": ANSWER_SCHEMA,
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_pairs(path: Path) -> list[Pair]:
    return [
        Pair.from_json(json.loads(line)) for line in path.read_text("utf-8").splitlines() if line
    ]
