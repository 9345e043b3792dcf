"""Job kinds, per-process worker resources, and the context a handler runs with.

A feature registers its kinds with :func:`job_kind` in a module listed in
``cds_service/jobs/kinds.py`` (``JOB_MODULES``); :func:`load_kinds` imports them all. Resources a
handler needs once per process (a loaded model bundle, an HTTP client) register a factory with
:func:`worker_resource`; ``ctx.resource(name)`` builds it on first use in a worker process,
never on a request path.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from cds_service.settings import Settings

Handler = Callable[["JobContext", dict[str, Any]], "dict[str, Any] | None"]
ResourceFactory = Callable[["Settings"], Any]
#: How often a periodic kind runs, read from the settings (seconds; 0 or less: never).
IntervalOf = Callable[["Settings"], float]

QUEUES = ("hl7", "writeback", "imaging", "llm", "maintenance", "default")


@dataclass(frozen=True, slots=True)
class JobKind:
    name: str
    handler: Handler
    queue: str
    max_attempts: int
    #: How long one attempt may run: Celery's hard limit; in-process, the claim's lease (a run
    #: longer than this loses its claim and its outcome is refused).
    time_limit_s: float
    backoff_base_s: float
    backoff_cap_s: float
    #: Periodic kinds only: the interval (from settings), run once across all processes.
    every: IntervalOf | None = None


_KINDS: dict[str, JobKind] = {}
_RESOURCE_FACTORIES: dict[str, ResourceFactory] = {}
_LOCK = threading.Lock()


def job_kind(
    name: str,
    *,
    queue: str = "default",
    max_attempts: int = 5,
    time_limit_s: float = 300.0,
    backoff_base_s: float = 5.0,
    backoff_cap_s: float = 600.0,
    every: IntervalOf | None = None,
) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of job kind ``name``.

    The handler gets a :class:`JobContext` and the payload, and returns a JSON object
    (identifiers only; stored as the job's result) or None. Registering a name twice with a
    different handler is an error (two features claiming one kind).
    """
    if queue not in QUEUES:
        raise ValueError(f"unknown job queue {queue!r} (one of {', '.join(QUEUES)})")
    if max_attempts < 1 or time_limit_s <= 0 or backoff_base_s < 0 or backoff_cap_s < 0:
        raise ValueError(f"job kind {name!r}: attempts, time limit and backoff must be positive")
    if not name or len(name) > 64:
        raise ValueError("a job kind name is 1-64 characters")

    def register(handler: Handler) -> Handler:
        kind = JobKind(
            name, handler, queue, max_attempts, time_limit_s, backoff_base_s, backoff_cap_s, every
        )
        with _LOCK:
            existing = _KINDS.get(name)
            if existing is not None and existing.handler is not handler:
                same = (
                    existing.handler.__module__ == handler.__module__
                    and existing.handler.__qualname__ == handler.__qualname__
                )
                if not same:  # a module re-imported (tests) may register itself again
                    raise ValueError(f"job kind {name!r} is registered twice")
            _KINDS[name] = kind
        return handler

    return register


def worker_resource(name: str) -> Callable[[ResourceFactory], ResourceFactory]:
    """Register ``factory(settings)`` as the builder of resource ``name`` (once per process)."""

    def register(factory: ResourceFactory) -> ResourceFactory:
        with _LOCK:
            _RESOURCE_FACTORIES[name] = factory
        return factory

    return register


def get_kind(name: str) -> JobKind | None:
    return _KINDS.get(name)


def kinds() -> dict[str, JobKind]:
    """Every registered kind (after :func:`load_kinds`)."""
    return dict(_KINDS)


def load_kinds(extra: Iterable[str] = ()) -> dict[str, JobKind]:
    """Import every module of ``JOB_MODULES`` (and ``extra``: ``ONCOCDS_JOBS__EXTRA_MODULES``)
    so that their kinds are registered."""
    from cds_service.jobs.kinds import JOB_MODULES

    for module in (*JOB_MODULES, *extra):
        importlib.import_module(module)
    return kinds()


class ResourcePool:
    """Per-process resources, each built once on first use by its registered factory."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._built: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Any:
        try:
            return self._built[name]
        except KeyError:
            pass
        with self._lock:  # one build even when several worker threads ask at once
            if name not in self._built:
                factory = _RESOURCE_FACTORIES.get(name)
                if factory is None:
                    raise LookupError(f"no worker resource {name!r} is registered")
                self._built[name] = factory(self._settings)
            return self._built[name]

    def close(self) -> None:
        """Close what was built (resources with a ``close()``), e.g. at executor stop."""
        with self._lock:
            built, self._built = self._built, {}
        for resource in built.values():
            close = getattr(resource, "close", None)
            if callable(close):
                close()


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a handler runs with. It opens and commits its own sessions (``session_factory``)."""

    job_id: int
    key: str
    kind: str
    #: This attempt's number (1 on the first run); also the claim's fencing token.
    attempt: int
    settings: Settings
    session_factory: sessionmaker[Session]
    resources: ResourcePool = field(repr=False)

    @property
    def engine(self) -> Engine:
        """The engine of ``session_factory`` (for code that takes an engine)."""
        bind: Engine = self.session_factory.kw["bind"]
        return bind

    def resource(self, name: str) -> Any:
        """The per-process resource ``name``, built by its factory on first use."""
        return self.resources.get(name)
