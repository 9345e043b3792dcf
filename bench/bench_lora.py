"""Fine-tuning data and evaluation costs (training/llm), each beside a same-run baseline.

1. Pairs: facts + instruction pairs + split for the whole shipped KB, against loading and
   indexing the KB itself (``read_knowledge_base``), which every run does first.
2. Grounding check of every reference answer: the default checker (drug names matched as token
   n-grams, one set lookup each) against the same checker with drugs found by one regex
   alternation of every drug name (the obvious way, and the first version of this code). The
   figure printed says in how many answers both find the same drugs; they differ where a name
   is followed by a hyphen ("trastuzumab-based"), which only the token matcher counts.

No model is loaded: LoRA step times on a tiny test model would say nothing about a real one.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable

from inference.genomics.kb import DEFAULT_KB_PATH, read_knowledge_base
from training.llm.facts import facts_from_kb
from training.llm.grounding import KbGroundingChecker, Vocabulary
from training.llm.pairs import build_pairs

ROUNDS = 5


def _median(run: Callable[[], object], rounds: int = ROUNDS) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class _RegexDrugs(KbGroundingChecker):
    """The baseline: the same checker, drugs found with one alternation of every name."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        super().__init__(vocabulary)
        names = sorted(vocabulary.drugs, key=len, reverse=True)
        self._pattern = re.compile(
            r"(?<![\w-])(?:" + "|".join(re.escape(n) for n in names) + r")(?![\w-])",
            re.IGNORECASE,
        )

    def drugs(self, text: str) -> set[str]:
        return {m.group(0).lower() for m in self._pattern.finditer(text)}


def main() -> None:
    kb = read_knowledge_base(DEFAULT_KB_PATH)
    load = _median(lambda: read_knowledge_base(DEFAULT_KB_PATH))
    pairs_time = _median(lambda: build_pairs(facts_from_kb(kb), seed=0, held_out_fraction=0.2))
    split = build_pairs(facts_from_kb(kb), seed=0, held_out_fraction=0.2)
    pairs = split.train + split.held_out
    print(f"KB load and index (baseline): {load * 1000:.0f} ms")
    print(
        f"facts + {len(pairs)} pairs + split: {pairs_time * 1000:.0f} ms "
        f"({pairs_time / load:.2f}x the KB load)"
    )

    vocabulary = Vocabulary.from_kb(kb)
    ours, baseline = KbGroundingChecker(vocabulary), _RegexDrugs(vocabulary)
    sample = pairs[::10]

    def check(checker: KbGroundingChecker) -> Callable[[], object]:
        return lambda: [checker(p.answer, p.input) for p in sample]

    t_ours = _median(check(ours), 3)
    t_base = _median(check(baseline), 3)
    agree = sum(ours.drugs(p.answer) == baseline.drugs(p.answer) for p in sample)
    print(
        f"grounding check, {len(sample)} answers: token n-grams {t_ours * 1000:.0f} ms "
        f"({len(sample) / t_ours:.0f}/s); regex alternation (baseline) {t_base * 1000:.0f} ms "
        f"({len(sample) / t_base:.0f}/s); ratio {t_ours / t_base:.3f}; "
        f"same drugs found in {agree}/{len(sample)} answers"
    )
