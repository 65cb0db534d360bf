"""SomaConfig: every tunable of the engine, with the paper's defaults (appendix C.2).

Values come, lowest priority first, from: the defaults below, a YAML or TOML file
(``SOMA_CONFIG`` or an explicit path), ``SOMA_*`` environment variables (nested fields
with a double underscore: ``SOMA_GATE__EPSILON=0.08``), then keyword overrides.
Unknown keys are an error that names the key, wherever they come from.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ENV_PREFIX = "SOMA_"
# SOMA_* variables that are not config fields (paths and switches read elsewhere, and the
# test suite's Redis URL); documented in the README, so an operator exporting one must not
# break SomaConfig.load().
RESERVED_ENV = {"SOMA_CONFIG", "SOMA_HOME", "SOMA_LOG_LEVEL", "SOMA_ADAPTERS_URL", "SOMA_TEST_REDIS_URL"}


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message says which and how to fix it."""


class _Section(BaseModel):
    # inf is refused like NaN: an infinite TTL, temperature or learning rate is a typo, not a setting.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class MiningConfig(_Section):
    """Soft-prompt mining, Eq. 1-3. Ranges from appendix C.2."""

    soft_len: int = Field(8, ge=1, le=256, description="L, soft-prompt length (C.2: 4-64)")
    candidates: int = Field(3, ge=1, le=16, description="M, parallel prompt candidates (C.2: 3-5)")
    steps: int = Field(30, ge=0, description="optimisation steps per candidate")
    lr: float = Field(3e-3, gt=0, description="AdamW learning rate (C.2: 1e-4 to 5e-3)")
    weight_decay: float = Field(1e-2, ge=0, description="AdamW weight decay (C.2: 0 to 1e-2)")
    grad_clip: float = Field(1.0, gt=0, description="gradient-norm clip (C.2: 0.5-1.0)")
    neighbors_k: int = Field(20, ge=1, description="k, semantic neighbourhood size (C.2: 20-100)")
    top_m: int = Field(50, ge=1, description="m, top-m truncation of the expectation (C.2: 50-200)")
    tau: float = Field(0.7, gt=0, description="tau, neighbourhood temperature (C.2: 0.4-1.2)")
    lambda_exp: float = Field(1.0, ge=0, description="lambda_exp, expectation weight (C.2: 0.5-2.0)")
    beta: float = Field(0.05, ge=0, description="beta, anti-degeneration weight (C.2: 0.02-0.15)")
    lambda_p: float = Field(1e-4, ge=0, description="lambda_P, prompt L2 penalty in Eq. 3")
    init_std: float = Field(0.02, gt=0, description="sigma, soft-prompt init scale (Sec. 3.1)")
    tail_k: int = Field(8, ge=1, description="K, positions in the entropy tail H_tail")
    hnsw_above: int = Field(200_000, ge=1, description="vocabularies larger than this use an HNSW index, else exact")
    hardness: Literal["divergence", "literal"] = Field(
        "divergence",
        description="r_t of Sec. 3.3: 'divergence' = max_P exp(-L_sem_exp) (the turns mining pushes G off F "
        "most easily; miner.py explains the sign), 'literal' = max_P L_sem_exp as Sec. 3.3 prints it",
    )
    probe_teacher: bool = Field(False, description="send verbalized V(P) probes to the teacher")
    probe_budget: int = Field(4, ge=0, description="most teacher probe calls per adaptation")
    row_chunk: int = Field(
        256, ge=1, description="answer rows whose |V|-wide logits exist at once (recomputed per chunk in the backward)"
    )
    activation_budget_mb: int | None = Field(
        None,
        ge=0,
        description="estimated decoder activations above this are recomputed in the backward (gradient "
        "checkpointing), for mining and LoRA steps alike; 0: always; None: 512 MB on a CPU, a quarter of the "
        "free memory on a CUDA device (answer_rows.activation_budget)",
    )


class LoraConfig(_Section):
    """Localized LoRA fine-tuning, Eq. 4."""

    rank: int = Field(8, ge=1, description="LoRA rank r (C.2: 4-32)")
    alpha: int = Field(16, ge=1, description="LoRA scale alpha (C.2: 4-32)")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | None = Field(None, description="module names; None detects attention+MLP projections")
    steps: int = Field(60, ge=1, description="optimizer steps")
    batch_size: int = Field(4, ge=1)
    lr: float = Field(1e-3, gt=0, description="LoRA learning rate (C.2: 5e-5 to 2e-3)")
    early_stop_patience: int = Field(3, ge=1, description="validations without improvement")
    eval_every: int = Field(10, ge=1, description="optimizer steps between validations (at least 3 per run)")
    grad_clip: float = Field(1.0, gt=0, description="gradient-norm clip of the LoRA parameters")
    train_fraction: float = Field(
        0.6,
        gt=0,
        le=1,
        description="|H| = ceil(fraction x training turns), at least 2, for soma and random-ft; history-ft uses all",
    )
    max_seq_len: int = Field(1024, ge=32, description="training sequences are cut to this")
    max_answer_tokens: int = Field(
        256,
        ge=1,
        description="teacher answers are cut to their first this many tokens (and at most max_seq_len // 2) for "
        "mining and training; the context loses its oldest tokens to fit max_seq_len, keeping its system "
        "message and newest message when they fit together",
    )
    kl_weight: float = Field(
        0.0,
        ge=0,
        description="weight of a KL(p_base || p_adapted) term over the answer positions added to each LoRA step's "
        "loss, pulling the adapter towards the base model (not in the paper; 0: off, no extra forward)",
    )
    seed: int = 0


class GateConfig(_Section):
    """Acceptance gate, locality and drift (Sec. 3.3, 4.1).

    ``mode="fidelity"`` (default) switches when the held-out fidelity clears ``min_fidelity``
    and the adapted surrogate beats the old one (the base model at first) on the same held-out
    turns by more than ``min_improvement`` (Thm 4.2's Δ̂_B); the Thm 4.2 bound is computed and
    stored too. ``mode="bound"`` switches only when
    Δ̂_B ≥ ε + γ_B(δ) (Thm 4.2 / Cor. 4.3) on an acceptance batch grown by shadow evaluation:
    with ε = 0.05, δ = 0.1 that needs |B|_eff ≥ 7 held-out contexts even for a perfect adapter
    and ≈ 45-75 at a realistic improvement of 0.2-0.3, so it suits long sessions (see
    soma_engine/gate.py and the README). Locality: the statistic x_t of
    ``drift.locality.SessionLocality``; thresholds measured with ``benchmarks/drift.py``.
    """

    epsilon: float = Field(0.05, ge=0, le=1, description="epsilon, required improvement (C.2: 0.05-0.12)")
    delta: float = Field(0.1, gt=0, lt=1, description="delta, confidence level of the bounds")
    min_fidelity: float = Field(0.6, ge=0, le=1, description="mean 1 - Gap on held-out turns")
    locality_threshold: float = Field(
        1.275,
        ge=0,
        le=4,
        description="locality statistic x_t (SessionLocality) above which a surrogate turn rolls the session "
        "back (above threshold + locality_severe_margin at once, else when two consecutive turns average above it)",
    )
    locality_severe_margin: float = Field(
        0.175, ge=0, le=4, description="one turn above locality_threshold + this rolls back at once"
    )
    locality_audit_margin: float = Field(
        0.075, ge=0, le=4, description="turns above locality_threshold - this are borderline: always audited"
    )
    resume_threshold: float = Field(
        0.8,
        ge=0,
        le=4,
        description="a locality rollback parks the adapter; a later query whose resume statistic (query distance "
        "+ novel words, SessionLocality.resume_statistic) against the parked topic is below this resumes it "
        "without re-adapting (0: never). Chosen on benchmarks/drift.py's dev splits",
    )
    drift_threshold: float = Field(0.5, ge=0, le=1, description="audit Gap that counts as a breach")
    consecutive: int = Field(2, ge=1, description="m_cons, consecutive breaches that roll back")
    audit_rate: float = Field(0.1, ge=0, le=1, description="share of surrogate turns audited")
    audit_seed: int | None = Field(
        None, description="seed of the audit sampler, one draw per session and turn (None: from the OS)"
    )
    holdout: int = Field(1, ge=1, description="warm turns held out of training for the gate")
    max_batch: int = Field(
        48, ge=2, le=1000, description="bound mode: most held-out contexts a candidate is shadow-evaluated on"
    )
    min_improvement: float | None = Field(
        0.0,
        ge=0,
        le=1,
        description="fidelity mode: the adapted surrogate must beat the one it replaces (the base model at first) on "
        "the same held-out turns by more than this, Thm 4.2's mean Gap_old - Gap_new; None: off, the floor alone "
        "decides (permissive setups only); a first adaptation whose training never beat step 0 is then the base "
        "model, gated as such, and serves only as the base (no adapter id, served_by_detail 'base')",
    )
    mode: Literal["fidelity", "bound"] = Field(
        "fidelity",
        description="fidelity: switch when mean 1 - Gap >= min_fidelity; bound: Thm 4.2 / Cor. 4.3 on a "
        "batch grown by shadow evaluation",
    )


class SomaConfig(_Section):
    """Engine configuration. ``SomaConfig()`` gives the defaults; ``SomaConfig.load()``
    also reads the config file and ``SOMA_*`` environment variables."""

    warm_window: int = Field(4, ge=2, le=64, description="W, teacher turns before adapting (C.2: 3-12)")
    readapt_window: int | None = Field(
        None,
        ge=2,
        le=64,
        description="fresh teacher turns after a rollback before re-adapting from the current adapter "
        "(None: warm_window)",
    )
    recent_turns: int = Field(2, ge=0, description="K, turns kept verbatim in the compressed context")
    summary_tokens: int = Field(128, ge=0, description="budget of the extractive summary")
    max_new_tokens: int = Field(128, ge=1, description="surrogate generation limit")
    temperature: float = Field(0.0, ge=0, description="surrogate sampling temperature; 0 is greedy")
    no_repeat_ngram_size: int = Field(
        0,
        ge=0,
        description="surrogate never repeats an n-gram of this many tokens, its prompt included (0: off); "
        "stops a small surrogate from copying its previous answer",
    )
    repetition_penalty: float = Field(
        1.0, gt=0, description="surrogate repetition penalty (transformers' generate; 1.0: off)"
    )
    adaptation: Literal["background", "inline", "queue"] = "background"
    adaptation_budget_s: float | None = Field(
        None,
        ge=0,
        description="seconds of mining + LoRA training per adaptation; steps and mining candidates are sized from "
        "the measured cost of the first steps, and on a CPU sequences are cut to budget.CPU_MAX_SEQ_LEN tokens "
        "(soma_engine/budget.py). None: the paper's step counts on CUDA, budget.CPU_BUDGET_S on a CPU; 0: no budget",
    )
    # The paper's method by default; "history-ft" (all warm turns, uniform) skips mining, the
    # cheaper choice on a CPU, and "random-ft" is the ablation's control.
    strategy: Literal["soma", "history-ft", "random-ft"] = "soma"
    share: Literal["none", "agent", "namespace"] = Field(
        "none",
        description="adapter sharing inside the namespace: none; agent (adapters trained on the same agent's "
        "sessions only); namespace (any agent's). A warm session near a shared adapter may adopt it early, "
        "after the gate passes on its own teacher turns; never across namespaces",
    )
    share_similarity: float = Field(
        0.3,
        ge=-1,
        le=1,
        description="cosine between a warm session's query centroid and a shared adapter's warm-start centroid "
        "needed to try that adapter; the gate on the session's own turns still decides. Default: midway between "
        "the measured cosines after 2 turns (benchmarks/sharing.py, all-MiniLM-L6-v2): same-family sessions "
        "0.40-0.85, other families at most 0.19",
    )
    share_min_turns: int = Field(
        2,
        ge=1,
        description="teacher turns a warm session needs before it looks for a shared adapter (< warm_window); "
        "they are also the turns the adoption gate is measured on",
    )
    session_ttl: float = Field(30 * 24 * 3600, gt=0, description="seconds a session is kept")
    max_adapters_in_memory: int = Field(16, ge=1, description="LRU bound of loaded adapters")
    serving_batch: int = Field(
        8, ge=1, description="most greedy surrogate turns of different sessions served in one forward pass (1: off)"
    )
    surrogate_deadline: float = Field(
        30.0, gt=0, description="seconds a surrogate answer may take; past it the teacher serves the turn"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    mining: MiningConfig = Field(default_factory=MiningConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    gate: GateConfig = Field(default_factory=GateConfig)

    @model_validator(mode="after")
    def _check_share_min_turns(self) -> SomaConfig:
        if self.share != "none" and self.share_min_turns >= self.warm_window:
            raise ValueError(
                f"share_min_turns ({self.share_min_turns}) must be below warm_window ({self.warm_window}): "
                "adoption happens before the session's own warm window is full"
            )
        return self

    def generation_options(self) -> dict[str, Any]:
        """Extra ``generate`` arguments of every surrogate generation (served turns and the
        gate's held-out answers alike, so the gate measures what will be served)."""
        opts: dict[str, Any] = {}
        if self.no_repeat_ngram_size:
            opts["no_repeat_ngram_size"] = self.no_repeat_ngram_size
        if self.repetition_penalty != 1.0:
            opts["repetition_penalty"] = self.repetition_penalty
        return opts

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, **overrides: Any) -> SomaConfig:
        """Defaults < file (``path`` or ``$SOMA_CONFIG``) < ``SOMA_*`` env vars < overrides."""
        cfg, _ = load_with_sources(path, **overrides)
        return cfg


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    text = p.read_text(encoding="utf-8")
    if p.suffix == ".toml":
        data = tomllib.loads(text)
    elif p.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    elif p.suffix == ".json":
        data = json.loads(text)
    else:
        raise ConfigError(f"config file {p}: use a .toml, .yaml, .yml or .json file")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a table/mapping at the top level")
    return data.get("soma", data) if isinstance(data.get("soma"), dict) else data


def env_overrides(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """``SOMA_GATE__EPSILON=0.08`` -> ``{"gate": {"epsilon": "0.08"}}`` (pydantic coerces)."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in RESERVED_ENV:
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _parse_env_value(value)
    return out


def _parse_env_value(value: str) -> Any:
    # Lists (target_modules) are given as JSON; everything else pydantic coerces from str.
    return json.loads(value) if value.strip().startswith("[") else value


def _merge(base: dict[str, Any], top: dict[str, Any], source: str, sources: dict[str, str], prefix: str = "") -> None:
    for key, value in top.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, BaseModel):  # gate=GateConfig(...): only the fields it sets, like a dict
            value = value.model_dump(exclude_unset=True)
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, source, sources, f"{dotted}.")
        else:
            base[key] = value
            if isinstance(value, dict):
                for sub in value:
                    sources[f"{dotted}.{sub}"] = source
            else:
                sources[dotted] = source


def load_with_sources(
    path: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> tuple[SomaConfig, dict[str, str]]:
    """The effective config and, for each dotted field, where its value came from."""
    env = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    file = path or env.get("SOMA_CONFIG")
    if file:
        _merge(merged, read_config_file(file), f"file {file}", sources)
    _merge(merged, env_overrides(env), "environment", sources)
    _merge(merged, overrides, "argument", sources)
    try:
        cfg = SomaConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, sources)) from None
    all_sources = {name: sources.get(name, "default") for name in flat_fields(cfg)}
    return cfg, all_sources


def flat_fields(cfg: BaseModel, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in type(cfg).model_fields:
        value = getattr(cfg, name)
        if isinstance(value, BaseModel):
            out.update(flat_fields(value, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = value
    return out


def _explain(exc: ValidationError, sources: dict[str, str]) -> str:
    lines = []
    for err in exc.errors():
        dotted = ".".join(str(p) for p in err["loc"])
        where = sources.get(dotted, "")
        where = f" (from {where})" if where else ""
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown config key '{dotted}'{where}: remove it or check its spelling")
        else:
            lines.append(f"config key '{dotted}'{where}: {err['msg']}")
    return "invalid SOMA configuration: " + "; ".join(lines)
