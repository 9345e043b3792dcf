"""Job kinds, per-process worker resources, and the context a handler runs with.

A feature registers its kinds with :func:`job_kind` in a module listed in
``cds_service/jobs/kinds.py`` (``JOB_MODULES``); :func:`load_kinds` imports them all. Resources a
handler needs once per process (a loaded model bundle, an HTTP client) register a factory with
:func:`worker_resource`; ``ctx.resource(name)`` builds it on first use in a worker process,
never on a request path. A resource registered with ``warm_for=(queue, ...)`` is built when a
worker process serving one of those queues starts (:meth:`ResourcePool.warm`), so that the
first job does not pay for it (a model bundle takes seconds to verify and load).
"""

from __future__ import annotations

import importlib
import logging
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

log = logging.getLogger(__name__)

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
#: name -> (queues whose workers build it at start, condition on the settings or None)
_WARM: dict[str, tuple[frozenset[str], Callable[[Settings], bool] | None]] = {}
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


def worker_resource(
    name: str,
    *,
    warm_for: Iterable[str] = (),
    warm_if: Callable[[Settings], bool] | None = None,
) -> Callable[[ResourceFactory], ResourceFactory]:
    """Register ``factory(settings)`` as the builder of resource ``name`` (once per process).

    ``warm_for``: the queues whose worker processes build it as they start rather than at the
    first job, when ``warm_if(settings)`` (if given) holds, e.g. only when a bundle is installed.
    """
    queues = frozenset(warm_for)
    unknown = queues.difference(QUEUES)
    if unknown:
        raise ValueError(f"unknown job queue(s) {sorted(unknown)} for resource {name!r}")

    def register(factory: ResourceFactory) -> ResourceFactory:
        with _LOCK:
            _RESOURCE_FACTORIES[name] = factory
            if queues:
                _WARM[name] = (queues, warm_if)
            else:
                _WARM.pop(name, None)
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
    """Per-process resources, each built once (at :meth:`warm` or on first use) by its
    registered factory."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._built: dict[str, Any] = {}
        self._lock = threading.Lock()
        # One lock per resource: a model loading for seconds does not hold up another resource.
        self._build_locks: dict[str, threading.Lock] = {}

    def get(self, name: str) -> Any:
        try:
            return self._built[name]
        except KeyError:
            pass
        with self._lock:
            build_lock = self._build_locks.setdefault(name, threading.Lock())
        with build_lock:  # one build even when several threads ask at once (or warm() runs)
            if name not in self._built:
                factory = _RESOURCE_FACTORIES.get(name)
                if factory is None:
                    raise LookupError(f"no worker resource {name!r} is registered")
                self._built[name] = factory(self._settings)
            return self._built[name]

    def provide(self, name: str, resource: Any) -> None:
        """Use ``resource`` as ``name`` in this pool instead of building it: a process that
        already holds one (the MLLP listener's HL7 worker, on its own engine) shares it with
        the jobs it runs. Closed with the pool like a built one."""
        with self._lock:
            self._built[name] = resource

    def warm(self, queues: Iterable[str] | None) -> list[str]:
        """Build now the resources registered ``warm_for`` one of ``queues`` (None: all queues)
        whose ``warm_if`` holds; return the names built. A factory that fails is logged (no
        PHI: the exception type) and left to fail again at the job, which records why; readiness
        reports a broken bundle. A worker must start even so, not crash-loop."""
        served = frozenset(QUEUES if queues is None else queues)
        with _LOCK:
            candidates = [
                (name, cond) for name, (qs, cond) in _WARM.items() if qs.intersection(served)
            ]
        built: list[str] = []
        for name, cond in candidates:
            try:
                if cond is not None and not cond(self._settings):
                    continue
                self.get(name)
            except Exception as exc:  # noqa: BLE001 - see the docstring
                log.warning(
                    "worker resource not warmed",
                    extra={"resource": name, "error_type": type(exc).__name__},
                )
                continue
            built.append(name)
        return built

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
