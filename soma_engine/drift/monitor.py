"""The drift monitor and audit sampling (paper Sec. 3.3): audit-Gap breaches, severe
locality and the two-turn locality sum trigger a rollback; audits are sampled, always on
borderline locality."""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

from ..acceptance.bounds import RANGE_TOL

# --------------------------------------------------------------------------------------------
# Drift monitor and audits (Sec. 3.3)
# --------------------------------------------------------------------------------------------


class _ScoreLike(Protocol):
    ok: bool
    borderline: bool


class DriftMonitor:
    """Rollback trigger from audit Gaps and locality outcomes (Sec. 3.3).

    * ``observe_gap(g)``: a breach is g > ``drift_threshold``; True (roll back) once
      ``consecutive`` breaches come in a row. A non-breach resets the streak.
    * ``observe_locality(score)``: a *severe* failure (not ok and not borderline, i.e. beyond
      the border band of a bound) rolls back at once; a borderline failure counts toward a
      streak of min(``consecutive``, 2); an ok score resets it. So an abrupt topic shift rolls
      back within two turns whatever ``consecutive`` is.

    * ``pair_threshold`` set (the engine: 2 · ``gate.locality_threshold``): scores that carry a
      ``statistic`` (:class:`SessionLocality`) roll back when two consecutive statistics sum
      above it, x_{t−1} + x_t > pair_threshold, or at once when severe. This is the two-turn
      rule measured in ``benchmarks/drift.py``; it replaces the borderline streak.

    Streaks are not cleared on a True result: call :meth:`reset` after rolling back.
    ``window`` recent values of each kind are kept for inspection.
    """

    def __init__(
        self,
        drift_threshold: float = 0.5,
        consecutive: int = 2,
        window: int = 32,
        pair_threshold: float | None = None,
    ) -> None:
        thr = float(drift_threshold)
        if not (math.isfinite(thr) and 0.0 <= thr <= 1.0):
            raise ValueError(f"drift_threshold must be in [0, 1], got {drift_threshold}")
        if int(consecutive) != consecutive or consecutive < 1:
            raise ValueError(f"consecutive must be an integer >= 1, got {consecutive}")
        if int(window) != window or window < 1:
            raise ValueError(f"window must be an integer >= 1, got {window}")
        if pair_threshold is not None and not (math.isfinite(float(pair_threshold)) and pair_threshold >= 0.0):
            raise ValueError(f"pair_threshold must be finite and >= 0, got {pair_threshold}")
        self.drift_threshold = thr
        self.consecutive = int(consecutive)
        self.window = int(window)
        self.pair_threshold = None if pair_threshold is None else float(pair_threshold)
        self.gaps: deque[float] = deque(maxlen=self.window)
        self.locality: deque[str] = deque(maxlen=self.window)  # "ok" | "borderline" | "severe"
        self.statistics: deque[float] = deque(maxlen=self.window)
        self.last_statistic: float | None = None
        self.gap_streak = 0
        self.locality_streak = 0

    @classmethod
    def from_config(cls, gate: Any, window: int = 32) -> DriftMonitor:
        """Build from a :class:`~soma_engine.config.GateConfig` (pair rule at 2 · locality_threshold)."""
        return cls(gate.drift_threshold, gate.consecutive, window, 2.0 * float(gate.locality_threshold))

    @property
    def locality_limit(self) -> int:
        return min(self.consecutive, 2)

    def observe_gap(self, g: float) -> bool:
        """Record an audit Gap; True when ``consecutive`` breaches in a row → roll back."""
        v = float(g)
        if not (math.isfinite(v) and -RANGE_TOL <= v <= 1.0 + RANGE_TOL):
            raise ValueError(f"audit Gap must be in [0, 1], got {g}")
        v = min(max(v, 0.0), 1.0)
        self.gaps.append(v)
        self.gap_streak = self.gap_streak + 1 if v > self.drift_threshold else 0
        return self.gap_streak >= self.consecutive

    def observe_locality(self, score: _ScoreLike) -> bool:
        """Record a :class:`LocalityScore`; True → roll back (severe now; then the two-turn
        sum in pair mode, else a borderline streak)."""
        stat = getattr(score, "statistic", None)
        if self.pair_threshold is not None and stat is not None:
            x = float(stat)
            outcome = "ok" if score.ok else ("borderline" if score.borderline else "severe")
            self.locality.append(outcome)
            self.statistics.append(x)
            fire = outcome == "severe" or (
                self.last_statistic is not None and self.last_statistic + x > self.pair_threshold
            )
            self.locality_streak = self.locality_streak + 1 if not score.ok else 0
            self.last_statistic = x
            return fire
        if score.ok:
            self.locality.append("ok")
            self.locality_streak = 0
            return False
        if not score.borderline:
            self.locality.append("severe")
            self.locality_streak += 1
            return True
        self.locality.append("borderline")
        self.locality_streak += 1
        return self.locality_streak >= self.locality_limit

    def reset(self) -> None:
        """Clear streaks and windows (after a rollback or a new adapter)."""
        self.gaps.clear()
        self.locality.clear()
        self.statistics.clear()
        self.last_statistic = None
        self.gap_streak = 0
        self.locality_streak = 0

    def state(self) -> dict[str, Any]:
        return {
            "drift_threshold": self.drift_threshold,
            "consecutive": self.consecutive,
            "window": self.window,
            "pair_threshold": self.pair_threshold,
            "gaps": list(self.gaps),
            "locality": list(self.locality),
            "statistics": list(self.statistics),
            "last_statistic": self.last_statistic,
            "gap_streak": self.gap_streak,
            "locality_streak": self.locality_streak,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> DriftMonitor:
        mon = cls(state["drift_threshold"], state["consecutive"], state.get("window", 32), state.get("pair_threshold"))
        mon.gaps.extend(float(g) for g in state.get("gaps", ()))
        mon.statistics.extend(float(x) for x in state.get("statistics", ()))
        last = state.get("last_statistic")
        mon.last_statistic = None if last is None else float(last)
        for item in state.get("locality", ()):
            if item not in ("ok", "borderline", "severe"):
                raise ValueError(f"DriftMonitor.from_state: bad locality outcome {item!r}")
            mon.locality.append(item)
        mon.gap_streak = int(state.get("gap_streak", 0))
        mon.locality_streak = int(state.get("locality_streak", 0))
        return mon


def audit_rng(seed: int, session: str, turn: int) -> random.Random:
    """The audit draw's generator for one turn of one session under ``gate.audit_seed``:
    seeded by the three, so a session's audits do not depend on what other sessions (or
    replicas) drew before it, and one seed does not give every session the same stream."""
    return random.Random(f"audit-{int(seed)}-{session}-{int(turn)}")


def should_audit(rng: random.Random, audit_rate: float, borderline: bool = False) -> bool:
    """Audit this surrogate turn against the teacher? Always when locality is borderline,
    otherwise with probability ``audit_rate`` (one ``rng.random()`` draw)."""
    rate = float(audit_rate)
    if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
        raise ValueError(f"audit_rate must be in [0, 1], got {audit_rate}")
    if borderline:
        return True
    return rng.random() < rate
