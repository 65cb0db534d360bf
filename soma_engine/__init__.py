"""SOMA engine: serve later turns of a conversation from a small surrogate adapted to it."""

from .config import ConfigError, SomaConfig
from .engine import SomaEngine
from .surrogate import SurrogateError
from .types import Message, Phase, Reply, Route, SessionKey, SessionView, TurnRecord, Usage

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
