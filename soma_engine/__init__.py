"""SOMA engine: serve later turns of a conversation from a small surrogate adapted to it.

Packages follow the paper (docs/design.md): ``adaptation`` (mining Eq. 1–3, distillation
Eq. 4, jobs), ``acceptance`` (Gap, Lemma 4.1, Theorem 4.2), ``drift`` (locality and rollback,
Sec. 3.3), ``runtime`` (the surrogate and its model thread), ``session`` and ``adapters``
(what is stored).
"""

import importlib
import sys

from .config import ConfigError, SomaConfig
from .engine import SomaEngine
from .runtime.surrogate import SurrogateError
from .types import Message, Phase, Reply, Route, SessionKey, SessionView, TurnRecord, Usage

# The first layout's module paths (DESIGN.md), still importable: apps and notebooks written
# against ``soma_engine.surrogate`` and friends keep working after the move into packages.
for _old, _new in {
    "surrogate": "runtime.surrogate",
    "models": "runtime.models",
    "encoder": "runtime.encoder",
    "miner": "adaptation.miner",
    "distiller": "adaptation.distiller",
    "jobs": "adaptation.jobs",
}.items():
    globals()[_old] = sys.modules[f"{__name__}.{_old}"] = importlib.import_module(f"{__name__}.{_new}")

__all__ = [
    "ConfigError",
    "Message",
    "Phase",
    "Reply",
    "Route",
    "SessionKey",
    "SessionView",
    "SomaConfig",
    "SomaEngine",
    "SurrogateError",
    "TurnRecord",
    "Usage",
]
__version__ = "0.1.0"
