"""Every knowledge tracer by name: the service, the refit task and the benchmark pick implementations here.

To add a tracer, add one line to `TRACER_PATHS`: `"name": "package.module:ClassName"`. Modules are imported only
when a tracer is first looked up, so the web service does not import torch to serve BKT, and a module that does
not exist yet (or whose optional dependency is missing) hides its tracers instead of breaking the registry:
`available()` lists what can be built here, `TRACERS` maps each of those names to its class.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any

from learners.tracing.base import Tracer

TRACER_PATHS: dict[str, str] = {
    # BKT family (learners/tracing/bkt.py)
    "bkt": "learners.tracing.bkt:BKT",
    "bkt_forget": "learners.tracing.bkt:BKTForget",
    "bkt_idem": "learners.tracing.bkt:BKTIdem",
    "bkt_prior": "learners.tracing.bkt:BKTPrior",
    "bkt_idem_forget": "learners.tracing.bkt:BKTIdemForget",
    "bkt_full": "learners.tracing.bkt:BKTFull",
    # logistic / IRT family (learners/tracing/logistic.py)
    "elo": "learners.tracing.logistic:EloTracer",
    "pfa": "learners.tracing.logistic:PFATracer",
    "best_lr": "learners.tracing.logistic:BestLRTracer",
    "best_lr_plus": "learners.tracing.logistic_plus:BestLRPlusTracer",
    # neural tracers (learners/tracing/neural.py)
    "dkt": "learners.tracing.neural:DKTTracer",
    "simplekt": "learners.tracing.neural:SimpleKTTracer",
}

DEFAULT_TRACER = "bkt"


class UnknownTracerError(KeyError):
    """A tracer name that is not registered, or whose implementation cannot be imported here."""


def _resolve(path: str) -> type[Tracer]:
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, attr)
    if not (isinstance(cls, type) and issubclass(cls, Tracer)):
        raise TypeError(f"{path} is not a Tracer subclass")
    return cls


class _Registry(MutableMapping[str, type[Tracer]]):
    """A dict of name -> Tracer class whose values are imported on first access.

    Iteration, `len` and `in` see only the tracers that import successfully, so a listing never offers a tracer
    that cannot be built. Assigning `TRACERS[name] = cls` registers a class directly (tests, plug-ins).
    """

    def __init__(self, paths: dict[str, str]) -> None:
        self._paths = paths
        self._loaded: dict[str, type[Tracer]] = {}
        self._failed: dict[str, str] = {}

    def _load(self, name: str) -> type[Tracer] | None:
        if name in self._loaded:
            return self._loaded[name]
        path = self._paths.get(name)
        if path is None or name in self._failed:
            return None
        try:
            cls = _resolve(path)
        except (ImportError, AttributeError, TypeError) as exc:
            self._failed[name] = f"{type(exc).__name__}: {exc}"
            return None
        self._loaded[name] = cls
        return cls

    def __getitem__(self, name: str) -> type[Tracer]:
        cls = self._load(name)
        if cls is None:
            why = self._failed.get(name, "not registered")
            raise UnknownTracerError(f"tracer {name!r} is unavailable ({why}); available: {', '.join(self)}")
        return cls

    def __setitem__(self, name: str, cls: type[Tracer]) -> None:
        self._loaded[name] = cls
        self._failed.pop(name, None)

    def __delitem__(self, name: str) -> None:
        self._loaded.pop(name, None)
        self._paths.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        names = list(dict.fromkeys([*self._paths, *self._loaded]))
        return iter([n for n in names if self._load(n) is not None])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._load(name) is not None

    def unavailable(self) -> dict[str, str]:
        """Registered names that failed to import, with the reason."""
        list(self)
        return dict(self._failed)


TRACERS: _Registry = _Registry(dict(TRACER_PATHS))


def available() -> list[str]:
    """Names of the tracers that can be built in this environment, in registry order."""
    return list(TRACERS)


def make_tracer(name: str, **params: Any) -> Tracer:
    """A new, unfitted tracer with hyperparameters `params` (the class defaults for the rest)."""
    return TRACERS[name](**params)


def load_tracer(name: str, fp: Any) -> Tracer:
    """A fitted tracer read back from what its `save` wrote."""
    return TRACERS[name].load(fp)
