"""Structured generation with Ollama, done with the official ``ollama`` client (issue #16).

- The model is named *and pinned by digest*: before generating, the digest Ollama lists for the
  model (``/api/tags``) must start with the configured one, or nothing is generated.
- Options: ``num_ctx``, ``num_predict`` (the bound on generated tokens, which decides the
  latency), ``temperature`` 0 and a fixed ``seed``; ``keep_alive`` keeps the model loaded.
- Separate connect and read timeouts (httpx); a hanging server costs at most the read timeout.
- ``format`` is the answer's JSON Schema (bounded strings and arrays); the answer is validated
  with pydantic, ``done_reason`` must be ``stop`` (``length`` means it was cut off), and one
  retry carries the validation error back to the model. Timeouts and unreachable servers are
  not retried here (the job that called may be).

Nothing here logs a prompt or an answer: only failure categories and counts.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

import httpx
import ollama
from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
_DIGEST_TTL_S: Final = 60.0
_MAX_ERROR_CHARS: Final = 600
_READINESS_READ_S: Final = 3.0


@dataclass(frozen=True, slots=True)
class OllamaConfig:
    url: str
    model: str
    digest: str | None
    keep_alive: str = "30m"
    num_ctx: int = 4096
    num_predict: int = 512
    temperature: float = 0.0
    seed: int = 16
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 120.0

    @property
    def options(self) -> dict[str, Any]:
        return {
            "num_ctx": self.num_ctx,
            "num_predict": self.num_predict,
            "temperature": self.temperature,
            "seed": self.seed,
        }


@dataclass(frozen=True, slots=True)
class Attempt:
    """One call to ``/api/chat``: what came back (``error`` is a category, never content)."""

    done_reason: str | None
    eval_count: int
    eval_duration_s: float
    duration_s: float
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StructuredResult(Generic[M]):
    """The validated answer, or why there is none (``failure``), with every attempt."""

    value: M | None
    attempts: tuple[Attempt, ...] = ()
    failure: str | None = None
    digest: str | None = None
    latency_s: float = 0.0
    raw: tuple[str, ...] = field(default=(), repr=False)

    @property
    def retries(self) -> int:
        return max(0, len(self.attempts) - 1)

    @property
    def eval_count(self) -> int:
        return sum(a.eval_count for a in self.attempts)

    @property
    def eval_duration_s(self) -> float:
        return sum(a.eval_duration_s for a in self.attempts)


def _digest_matches(listed: str | None, pinned: str | None) -> bool:
    if pinned is None:
        return listed is not None
    if listed is None:
        return False
    want = pinned.removeprefix("sha256:").lower()
    have = listed.removeprefix("sha256:").lower()
    return len(want) >= 12 and have.startswith(want)


_TRANSPORT_ERRORS: Final = (httpx.HTTPError, ConnectionError, ollama.ResponseError)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, ollama.ResponseError):
        return "server error"
    return "unavailable"


def _validation_message(exc: ValidationError | ValueError) -> str:
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in e['loc']) or '$'}: {e['msg']}" for e in exc.errors()[:8]
        ]
        text = "; ".join(parts)
    else:
        text = f"not valid JSON ({type(exc).__name__})"
    return text[:_MAX_ERROR_CHARS]


class OllamaStructuredClient:
    """One configured model on one Ollama server; thread-safe (httpx clients are)."""

    def __init__(self, config: OllamaConfig) -> None:
        self.config = config
        self._client = ollama.Client(
            host=config.url,
            timeout=httpx.Timeout(config.read_timeout_s, connect=config.connect_timeout_s),
        )
        self._probe = ollama.Client(
            host=config.url,
            timeout=httpx.Timeout(
                min(_READINESS_READ_S, config.read_timeout_s), connect=config.connect_timeout_s
            ),
        )
        self._lock = threading.Lock()
        self._digest: tuple[float, str | None] | None = None

    def __enter__(self) -> OllamaStructuredClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]
        self._probe.close()  # type: ignore[no-untyped-call]

    # ------------------------------------------------------------ model identity

    def listed_digest(self, *, refresh: bool = False) -> str | None:
        """The digest ``/api/tags`` gives for the configured model (cached for a minute).

        Raises:
            ollama.ResponseError, ConnectionError, httpx.HTTPError: the server did not answer.
        """
        with self._lock:
            now = time.monotonic()
            if not refresh and self._digest is not None and now - self._digest[0] < _DIGEST_TTL_S:
                return self._digest[1]
        listed = self._probe.list()
        digest = next((m.digest for m in listed.models if m.model == self.config.model), None)
        with self._lock:
            self._digest = (time.monotonic(), digest)
        return digest

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """``/readyz``: the model, its pinned digest, and whether it is installed and loaded."""
        details: dict[str, Any] = {
            "model": self.config.model,
            "digest": self.config.digest,
        }
        try:
            listed = self.listed_digest(refresh=True)
            running = self._probe.ps()
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError) as exc:
            details["error"] = type(exc).__name__
            return False, details
        details["installed"] = listed is not None
        details["digestMatches"] = _digest_matches(listed, self.config.digest)
        details["loaded"] = any(m.model == self.config.model for m in running.models)
        return bool(details["digestMatches"]), details

    # ------------------------------------------------------------ generation

    def _chat(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> tuple[str, Attempt]:
        started = time.perf_counter()
        response = self._client.chat(
            model=self.config.model,
            messages=messages,
            format=schema,
            options=self.config.options,
            keep_alive=self.config.keep_alive,
            stream=False,
        )
        attempt = Attempt(
            done_reason=response.done_reason,
            eval_count=response.eval_count or 0,
            eval_duration_s=(response.eval_duration or 0) / 1e9,
            duration_s=time.perf_counter() - started,
        )
        return response.message.content or "", attempt

    def _check(self, content: str, attempt: Attempt, output: type[M]) -> tuple[M | None, str, str]:
        """The validated answer, or (None, the problem told to the model, failure category)."""
        if attempt.done_reason != "stop":
            return (
                None,
                f"the answer was cut off (done_reason {attempt.done_reason!r})",
                "truncated",
            )
        try:
            return output.model_validate_json(content), "", ""
        except (ValidationError, ValueError) as exc:
            return None, _validation_message(exc), "invalid"

    def generate(
        self, system: str, user: str, output: type[M], schema: dict[str, Any]
    ) -> StructuredResult[M]:
        """Ask for an answer matching ``schema``; validate it as ``output``.

        Never raises for a model or server failure: the result's ``failure`` says what went
        wrong (``timeout``, ``unavailable``, ``server error``, ``digest mismatch``,
        ``truncated``, ``invalid``) and ``value`` is ``None``.
        """
        started = time.perf_counter()
        attempts: list[Attempt] = []
        raw: list[str] = []

        def done(value: M | None, failure: str | None, digest: str | None) -> StructuredResult[M]:
            if failure is not None:
                log.warning("LLM generation failed", extra={"failure": failure})
            return StructuredResult(
                value, tuple(attempts), failure, digest, time.perf_counter() - started, tuple(raw)
            )

        try:
            digest = self.listed_digest()
        except _TRANSPORT_ERRORS as exc:
            return done(None, _failure(exc), None)
        if not _digest_matches(digest, self.config.digest):
            return done(None, "digest mismatch", digest)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        failure = "invalid"
        for _ in range(2):
            try:
                content, attempt = self._chat(messages, schema)
            except _TRANSPORT_ERRORS as exc:
                attempts.append(Attempt(None, 0, 0.0, time.perf_counter() - started, _failure(exc)))
                return done(None, _failure(exc), digest)
            raw.append(content)
            value, problem, failure = self._check(content, attempt, output)
            attempts.append(
                Attempt(
                    attempt.done_reason,
                    attempt.eval_count,
                    attempt.eval_duration_s,
                    attempt.duration_s,
                    failure or None,
                )
            )
            if value is not None:
                return done(value, None, digest)
            # One retry, carrying what was wrong with the first answer.
            messages = [
                *messages,
                {"role": "assistant", "content": content[:4000]},
                {
                    "role": "user",
                    "content": "That answer was not usable: "
                    + problem
                    + ". Answer again, shorter, with JSON only that matches the schema: "
                    + json.dumps(schema, separators=(",", ":")),
                },
            ]
        return done(None, failure, digest)
