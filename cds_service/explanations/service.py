"""Requesting and running explanations; never on a card's critical path.

- :func:`request_explanation` (in the caller's transaction) stores a ``pending`` row holding the
  model's input (structured findings only) and enqueues an ``llm.explain`` job keyed by the row:
  one insert each, so a card that asks for an explanation does not wait for it.
- :func:`run_explanation` (the job) reuses a ready explanation with the same cache key (input
  hash + prompt version + model digest), else asks the model, validates the answer, checks its
  grounding and stores it, or the deterministic template with the reason. The model call runs
  outside any transaction.
- Every stored explanation carries its counters (generations, retries, grounding failure,
  fallback, cache hit, latency, tokens): :func:`llm_stats` sums them.

Labels: a model text is "Model-generated (model, digest); not verified" wherever it is shown;
a template says it is one.
"""

from __future__ import annotations

import hashlib
import logging
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy.orm import Session, sessionmaker

from cds_service.db.base import utcnow
from cds_service.explanations import repository
from cds_service.models.analysis import Analysis
from cds_service.models.explanations import Explanation
from cds_service.settings import LlmSettings, Settings
from inference.genomics.serialize import interpretation_from_json
from inference.imaging.results import ImageAnalysis
from inference.llm import (
    ExplanationInput,
    check_grounding,
    genomic_input,
    histopathology_input,
    load_prompt,
    output_model,
    template_explanation,
)
from inference.llm.prompts import Prompt
from inference.llm.schemas import json_schema

if TYPE_CHECKING:  # the ollama client is the [llm] extra: imported only when the LLM is on
    from integrations.ollama import OllamaConfig, OllamaStructuredClient

log = logging.getLogger(__name__)

JOB_KIND: Final = "llm.explain"
TEMPLATE_MODEL: Final = "template"
_REASON_MAX: Final = 512


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one run produced (the explanation and its counters)."""

    content: dict[str, Any]
    source: str  # "model" or "template"
    fallback_reason: str | None
    problems: tuple[str, ...]
    generations: int
    retries: int
    grounding_failed: bool
    latency_ms: int | None
    eval_count: int
    digest: str | None


def ollama_config(llm: LlmSettings) -> OllamaConfig:
    from integrations.ollama import OllamaConfig

    return OllamaConfig(
        url=llm.url,
        model=llm.model,
        digest=llm.digest,
        keep_alive=llm.keep_alive,
        num_ctx=llm.num_ctx,
        num_predict=llm.num_predict,
        temperature=llm.temperature,
        seed=llm.seed,
        connect_timeout_s=llm.connect_timeout_s,
        read_timeout_s=llm.read_timeout_s,
    )


def user_message(source: ExplanationInput) -> str:
    """The user turn: the findings document, and the ids that need a paragraph."""
    ids = ", ".join(source.finding_ids) or "none"
    return f"Findings (JSON):\n{source.text}\n\nFinding ids: {ids}"


class Explainer:
    """Turns one input into an explanation: the model's, if valid and grounded, else the
    template. ``client`` ``None`` (LLM switched off) gives the template at once."""

    def __init__(self, client: OllamaStructuredClient | None) -> None:
        self.client = client

    def __enter__(self) -> Explainer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    @property
    def model(self) -> str:
        return self.client.config.model if self.client else TEMPLATE_MODEL

    @property
    def digest(self) -> str | None:
        return self.client.config.digest if self.client else None

    def _template(self, source: ExplanationInput, reason: str, **counters: Any) -> Outcome:
        explanation = template_explanation(source)
        return Outcome(
            content=explanation.model_dump(),
            source="template",
            fallback_reason=reason[:_REASON_MAX],
            problems=tuple(counters.pop("problems", ())),
            grounding_failed=bool(counters.pop("grounding_failed", False)),
            generations=int(counters.pop("generations", 0)),
            retries=int(counters.pop("retries", 0)),
            latency_ms=counters.pop("latency_ms", None),
            eval_count=int(counters.pop("eval_count", 0)),
            digest=counters.pop("digest", None),
        )

    def explain(self, source: ExplanationInput, prompt: Prompt | None = None) -> Outcome:
        prompt = prompt or load_prompt(source.kind)
        if self.client is None:
            return self._template(source, "LLM switched off")
        result = self.client.generate(
            prompt.text, user_message(source), output_model(source.kind), json_schema(source.kind)
        )
        counters: dict[str, Any] = {
            "generations": len(result.attempts),
            "retries": result.retries,
            "latency_ms": round(result.latency_s * 1000),
            "eval_count": result.eval_count,
            "digest": result.digest or self.digest,
        }
        if result.value is None:
            return self._template(source, f"model answer not used: {result.failure}", **counters)
        grounding = check_grounding(result.value, source)
        if not grounding.ok:
            return self._template(
                source,
                "not grounded in the findings: " + "; ".join(grounding.problems),
                problems=grounding.problems,
                grounding_failed=True,
                **counters,
            )
        return Outcome(
            content=result.value.model_dump(),
            source="model",
            fallback_reason=None,
            problems=(),
            grounding_failed=False,
            **counters,
        )


def explainer_for(llm: LlmSettings) -> Explainer:
    """A new explainer for these settings (its HTTP client is closed with ``close()`` or
    ``with``); the job worker builds one per process as a resource."""
    if not llm.enabled:
        return Explainer(None)
    from integrations.ollama import OllamaStructuredClient

    return Explainer(OllamaStructuredClient(ollama_config(llm)))


def cache_key(source: ExplanationInput, prompt: Prompt, model: str, digest: str | None) -> str:
    text = "|".join((source.input_hash, prompt.version, model, digest or "unpinned"))
    return hashlib.sha256(text.encode()).hexdigest()


def _finding_ids(document: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(f["id"]) for f in document.get("findings", ()) if isinstance(f, dict))


def stored_input(row: Explanation) -> ExplanationInput:
    if row.kind == "genomic":
        return ExplanationInput("genomic", row.input, _finding_ids(row.input))
    return ExplanationInput("histopathology", row.input)


def request_explanation(
    session: Session,
    settings: Settings,
    *,
    subject_kind: str,
    subject_id: str,
    source: ExplanationInput,
    enqueue_job: bool = True,
) -> Explanation:
    """The explanation of ``source`` for this subject: the existing row for the same cache key,
    or a new ``pending`` row with its ``llm.explain`` job (``enqueue_job`` False: the caller
    runs it itself, as ``oncocds explain`` does). Flushes only (the job commits with the
    caller's data)."""
    prompt = load_prompt(source.kind)
    model = settings.llm.model if settings.llm.enabled else TEMPLATE_MODEL
    digest = settings.llm.digest if settings.llm.enabled else None
    key = cache_key(source, prompt, model, digest)
    existing = repository.find(session, subject_kind, subject_id, key)
    if existing is not None:
        return existing
    row = repository.add(
        session,
        Explanation(
            id=str(uuid.uuid4()),
            subject_kind=subject_kind,
            subject_id=subject_id[:128],
            kind=source.kind,
            cache_key=key,
            input_hash=source.input_hash,
            prompt_version=prompt.version,
            model=model,
            model_digest=digest,
            input=source.document,
            status="pending",
            grounding_problems=[],
            generations=0,
            retries=0,
            grounding_failed=False,
            fallback=False,
            cached=False,
            eval_count=0,
            created=utcnow(),
        ),
    )
    if enqueue_job:
        from cds_service.explanations import jobs as _registers_the_kind  # noqa: F401
        from cds_service.jobs import enqueue

        enqueue(session, kind=JOB_KIND, key=f"llm:{row.id}", payload={"explanationId": row.id})
    return row


def request_for_analysis(
    session: Session, settings: Settings, analysis: Analysis, *, enqueue_job: bool = True
) -> Explanation:
    source = genomic_input(interpretation_from_json(analysis.interpretation))
    return request_explanation(
        session,
        settings,
        subject_kind="analysis",
        subject_id=analysis.id,
        source=source,
        enqueue_job=enqueue_job,
    )


def enqueue_for_analysis(session: Session, analysis_id: str) -> None:
    """The card path's whole share (one job row by one prebuilt Core INSERT, in the caller's
    transaction, committed with its analysis; no ORM object): the job
    reads the stored interpretation, builds the input and the pending row, then explains."""
    from cds_service.explanations import jobs as _registers_the_kind  # noqa: F401
    from cds_service.jobs import enqueue_row

    enqueue_row(
        session,
        kind=JOB_KIND,
        key=f"llm:analysis:{analysis_id}",
        payload={"analysisId": analysis_id},
    )


def request_for_image(
    session: Session, settings: Settings, image_id: str, image: ImageAnalysis
) -> Explanation:
    return request_explanation(
        session,
        settings,
        subject_kind="image",
        subject_id=image_id,
        source=histopathology_input(image),
    )


def image_subject(image_id: int) -> str:
    """The explanation subject id of one stored image (``imaging_images.id``)."""
    return f"imaging-image:{image_id}"


def image_explanations(session: Session, image_ids: Sequence[int]) -> list[dict[str, Any] | None]:
    """What the imaging section shows per image, in order (see :func:`report_explanation`)."""
    return [report_explanation(session, image_subject(i), "image") for i in image_ids]


def _store(row: Explanation, outcome: Outcome, *, cached: bool) -> None:
    row.status = "ready"
    row.source = outcome.source
    row.content = outcome.content
    row.fallback_reason = outcome.fallback_reason
    row.grounding_problems = list(outcome.problems)
    row.generations = 0 if cached else outcome.generations
    row.retries = 0 if cached else outcome.retries
    row.grounding_failed = False if cached else outcome.grounding_failed
    row.fallback = outcome.source == "template"
    row.cached = cached
    row.latency_ms = None if cached else outcome.latency_ms
    row.eval_count = 0 if cached else outcome.eval_count
    if outcome.digest and row.model != TEMPLATE_MODEL:
        row.model_digest = outcome.digest[:100]
    row.completed = utcnow()


def _outcome_of(row: Explanation) -> Outcome:
    return Outcome(
        content=dict(row.content or {}),
        source=row.source or "template",
        fallback_reason=row.fallback_reason,
        problems=tuple(row.grounding_problems or ()),
        generations=0,
        retries=0,
        grounding_failed=False,
        latency_ms=None,
        eval_count=0,
        digest=row.model_digest,
    )


def run_explanation(
    session_factory: sessionmaker[Session], explainer: Explainer, explanation_id: str
) -> Explanation | None:
    """Fill one pending explanation (the ``llm.explain`` job). Idempotent: a ready row is left
    as it is. Returns the row (detached), or ``None`` when it does not exist."""
    with session_factory.begin() as session:
        row = repository.get(session, explanation_id)
        if row is None:
            return None
        if row.status == "ready":
            session.expunge(row)
            return row
        same = repository.ready_with_key(session, row.cache_key)
        if same is not None:
            _store(row, _outcome_of(same), cached=True)
            session.flush()
            session.expunge(row)
            return row
        source = stored_input(row)
    started = time.perf_counter()
    outcome = explainer.explain(source)
    log.info(
        "explanation generated",
        extra={
            "explanation_id": explanation_id,
            "source": outcome.source,
            "generations": outcome.generations,
            "elapsed_ms": round((time.perf_counter() - started) * 1000),
        },
    )
    with session_factory.begin() as session:
        row = repository.get(session, explanation_id)
        if row is None:
            return None
        if row.status != "ready":
            _store(row, outcome, cached=False)
            session.flush()
        session.expunge(row)
        return row


def make_label(source: str | None, model: str, digest: str | None, reason: str | None) -> str:
    """What every display of an explanation says about where it comes from."""
    if source == "model":
        short = (digest or "unpinned").removeprefix("sha256:")[:12]
        return f"Model-generated ({model}, {short}); not verified"
    why = f": {reason}" if reason else ""
    return f"Deterministic template built from the findings (no model text used{why})"


def label(row: Explanation) -> str:
    return make_label(row.source, row.model, row.model_digest, row.fallback_reason)


def explanation_json(row: Explanation) -> dict[str, Any]:
    """The wire form (camelCase), labelled."""
    return {
        "id": row.id,
        "status": row.status,
        "kind": row.kind,
        "source": row.source,
        "label": label(row) if row.status == "ready" else None,
        "model": row.model,
        "modelDigest": row.model_digest,
        "promptVersion": row.prompt_version,
        "explanation": row.content,
    }


def latest_for(session: Session, subject_kind: str, subject_id: str) -> Explanation | None:
    return repository.latest_for(session, subject_kind, subject_id)


def llm_stats(session: Session, settings: Settings) -> dict[str, Any]:
    """Counters over every stored explanation and the latency of generated ones."""
    stats: dict[str, Any] = {
        "enabled": settings.llm.enabled,
        "model": settings.llm.model if settings.llm.enabled else TEMPLATE_MODEL,
        "digest": settings.llm.digest if settings.llm.enabled else None,
        **repository.counters(session),
    }
    latencies = sorted(repository.recent_latencies(session))
    if latencies:
        cuts = (
            statistics.quantiles(latencies, n=100, method="inclusive")
            if len(latencies) > 1
            else [latencies[0]] * 99
        )
        stats["latencyMs"] = {"p50": round(cuts[49]), "p95": round(cuts[94]), "n": len(latencies)}
    else:
        stats["latencyMs"] = {"p50": None, "p95": None, "n": 0}
    return stats


def _sections(row: Explanation) -> list[dict[str, Any]]:
    content = row.content or {}
    if row.kind == "genomic":
        sections = [
            {"title": "For the clinician", "paragraphs": [content.get("clinician_summary", "")]}
        ]
        paragraphs = content.get("patient_paragraphs", ())
        if paragraphs:
            sections.append(
                {
                    "title": "For the patient",
                    "paragraphs": [f"{p['finding_id']}: {p['text']}" for p in paragraphs],
                }
            )
        return sections
    return [
        {"title": "Findings", "paragraphs": [content.get("findings", "")]},
        {"title": "Interpretation", "paragraphs": [content.get("interpretation", "")]},
        {"title": "Next steps", "paragraphs": list(content.get("next_steps", ()))},
    ]


def report_explanation(
    session: Session, analysis_id: str, subject_kind: str = "analysis"
) -> dict[str, Any] | None:
    """What the report page shows: the newest explanation of the analysis (or of the subject
    of ``subject_kind``, e.g. an ``image``), if one was asked for (pending: a notice; ready:
    labelled sections)."""
    row = repository.latest_for(session, subject_kind, analysis_id)
    if row is None:
        return None
    return {
        "status": row.status,
        "source": row.source,
        "label": label(row) if row.status == "ready" else None,
        "sections": _sections(row) if row.status == "ready" else [],
    }
