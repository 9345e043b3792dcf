"""Evaluation of generated answers against the held-out facts they were asked about.

Three figures per run (issue 16, item 5), each a count and a rate over the evaluated pairs:

- **schema-valid**: the output parses as an :class:`~training.llm.schema.Answer`;
- **grounding failure**: the output's text (the ``answer`` when it parses, else the raw output)
  names an entity its finding lacks (per the checker given), or it cites an id that is not among
  the finding's evidence ids;
- **unsupported drug**: the output names a drug its finding does not.

The checker and the drug finder are parameters, so the runtime's grounding checker
(``inference/llm``) plugs in where this package's default one stands.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from training.llm.grounding import GroundingChecker
from training.llm.pairs import Pair
from training.llm.schema import parse_answer

#: ``(text, finding) -> drugs text names that finding does not``.
DrugChecker = Callable[[str, Mapping[str, Any]], Sequence[str]]


@dataclass(frozen=True)
class Evaluation:
    pairs: int
    schema_valid: int
    grounding_failures: int
    unsupported_drug_outputs: int
    #: Unsupported drug names with how many outputs named each, most frequent first.
    unsupported_drugs: tuple[tuple[str, int], ...] = field(default=())

    @staticmethod
    def _rate(count: int, total: int) -> float | None:
        return round(count / total, 4) if total else None

    def to_json(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            "schema_valid": self.schema_valid,
            "schema_valid_rate": self._rate(self.schema_valid, self.pairs),
            "grounding_failures": self.grounding_failures,
            "grounding_failure_rate": self._rate(self.grounding_failures, self.pairs),
            "unsupported_drug_outputs": self.unsupported_drug_outputs,
            "unsupported_drug_rate": self._rate(self.unsupported_drug_outputs, self.pairs),
            "unsupported_drugs": [list(item) for item in self.unsupported_drugs],
        }


def evaluate_outputs(
    pairs: Sequence[Pair],
    outputs: Sequence[str],
    *,
    checker: GroundingChecker,
    unsupported_drugs: DrugChecker,
) -> Evaluation:
    """Score ``outputs[i]``, the model's answer to ``pairs[i]``."""
    if len(pairs) != len(outputs):
        raise ValueError(f"{len(pairs)} pairs but {len(outputs)} outputs")
    valid = failures = drug_outputs = 0
    drugs: Counter[str] = Counter()
    for pair, output in zip(pairs, outputs, strict=True):
        answer = parse_answer(output)
        text = answer.answer if answer is not None else output
        cited = {e["id"] for e in pair.input.get("evidence", ())}
        miscited = answer is not None and not set(answer.citations) <= cited
        if answer is not None:
            valid += 1
        if miscited or checker(text, pair.input):
            failures += 1
        named = set(unsupported_drugs(text, pair.input))
        if named:
            drug_outputs += 1
            drugs.update(named)
    return Evaluation(
        pairs=len(pairs),
        schema_valid=valid,
        grounding_failures=failures,
        unsupported_drug_outputs=drug_outputs,
        unsupported_drugs=tuple(sorted(drugs.items(), key=lambda kv: (-kv[1], kv[0]))),
    )
