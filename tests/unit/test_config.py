"""SomaConfig: paper defaults (appendix C.2), YAML/TOML files, SOMA_* env vars, precedence
and the sources it reports, and errors that name the offending key or field."""

from __future__ import annotations

from pathlib import Path

import pytest

from soma_engine.config import ConfigError, GateConfig, SomaConfig, env_overrides, load_with_sources

# ------------------------------------------------------------------------------- defaults


def test_defaults_lie_in_the_paper_ranges() -> None:
    cfg = SomaConfig()
    # Appendix C.2: W in [3, 12], M in {3,4,5}, L in {4..64}, k in {20,50,100}, m in {50,100,200},
    # tau in [0.4, 1.2], lambda in [0.5, 2], beta in [0.02, 0.15], r and alpha in {4..32},
    # LoRA lr in [5e-5, 2e-3], mining lr in [1e-4, 5e-3], wd in [0, 1e-2], clip in [0.5, 1],
    # epsilon in [0.05, 0.12], m_cons in {2, 3}.
    assert 3 <= cfg.warm_window <= 12
    assert cfg.mining.candidates in {3, 4, 5}
    assert cfg.mining.soft_len in {4, 8, 16, 32, 64}
    assert cfg.mining.neighbors_k in {20, 50, 100}
    assert cfg.mining.top_m in {50, 100, 200}
    assert 0.4 <= cfg.mining.tau <= 1.2
    assert 0.5 <= cfg.mining.lambda_exp <= 2.0
    assert 0.02 <= cfg.mining.beta <= 0.15
    assert 1e-4 <= cfg.mining.lr <= 5e-3
    assert 0 <= cfg.mining.weight_decay <= 1e-2
    assert 0.5 <= cfg.mining.grad_clip <= 1.0
    assert cfg.lora.rank in {4, 8, 16, 32}
    assert cfg.lora.alpha in {4, 8, 16, 32}
    assert 5e-5 <= cfg.lora.lr <= 2e-3
    assert 0.05 <= cfg.gate.epsilon <= 0.12
    assert cfg.gate.consecutive in {2, 3}
    # Off by default: probes cost teacher calls.
    assert cfg.mining.probe_teacher is False
    assert cfg.adaptation == "background"
    assert cfg.share == "none"


def test_contract_field_names_exist() -> None:
    cfg = SomaConfig()
    for name in ("warm_window", "recent_turns", "summary_tokens", "max_new_tokens", "adaptation", "share"):
        assert hasattr(cfg, name), name
    assert cfg.session_ttl > 0
    for name in ("soft_len", "candidates", "steps", "lr", "weight_decay", "grad_clip", "neighbors_k", "top_m"):
        assert hasattr(cfg.mining, name), name
    for name in ("tau", "lambda_exp", "beta", "lambda_p", "probe_teacher"):
        assert hasattr(cfg.mining, name), name
    for name in ("rank", "alpha", "dropout", "target_modules", "steps", "batch_size", "lr", "early_stop_patience"):
        assert hasattr(cfg.lora, name), name
    for name in ("epsilon", "delta", "min_fidelity", "locality_threshold", "drift_threshold", "consecutive"):
        assert hasattr(cfg.gate, name), name
    assert hasattr(cfg.gate, "audit_rate")


# ------------------------------------------------------------------------------- files

TOML = """
warm_window = 6
recent_turns = 3

[gate]
epsilon = 0.08
consecutive = 3

[lora]
target_modules = ["q_proj", "v_proj"]
"""

YAML = """
warm_window: 7
adaptation: inline
mining:
  neighbors_k: 50
  tau: 0.9
gate:
  audit_rate: 0.25
"""


def test_load_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "soma.toml"
    path.write_text(TOML)
    cfg, sources = load_with_sources(path, environ={})
    assert cfg.warm_window == 6
    assert cfg.recent_turns == 3
    assert cfg.gate.epsilon == pytest.approx(0.08)
    assert cfg.gate.consecutive == 3
    assert cfg.lora.target_modules == ["q_proj", "v_proj"]
    # Untouched fields keep their defaults.
    assert cfg.gate.delta == SomaConfig().gate.delta
    assert sources["warm_window"].startswith("file")
    assert sources["gate.epsilon"].startswith("file")
    assert sources["gate.delta"] == "default"


def test_load_toml_file_with_soma_table(tmp_path: Path) -> None:
    path = tmp_path / "pyproject-like.toml"
    path.write_text("[soma]\nwarm_window = 9\n[soma.gate]\ndelta = 0.2\n")
    cfg = SomaConfig.load(path)
    assert cfg.warm_window == 9
    assert cfg.gate.delta == pytest.approx(0.2)


def test_load_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "soma.yaml"
    path.write_text(YAML)
    cfg, sources = load_with_sources(path, environ={})
    assert cfg.warm_window == 7
    assert cfg.adaptation == "inline"
    assert cfg.mining.neighbors_k == 50
    assert cfg.mining.tau == pytest.approx(0.9)
    assert cfg.gate.audit_rate == pytest.approx(0.25)
    assert sources["mining.tau"].startswith("file")
    assert sources["mining.beta"] == "default"


def test_soma_config_env_var_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "via-env.yml"
    path.write_text("warm_window: 11\n")
    cfg, sources = load_with_sources(environ={"SOMA_CONFIG": str(path)})
    assert cfg.warm_window == 11
    assert str(path) in sources["warm_window"]


def test_missing_file_and_bad_suffix_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_with_sources(tmp_path / "nope.toml", environ={})
    odd = tmp_path / "soma.ini"
    odd.write_text("warm_window = 5\n")
    with pytest.raises(ConfigError, match=r"\.toml"):
        load_with_sources(odd, environ={})


# ------------------------------------------------------------------------------- env vars


def test_env_vars_top_level_and_nested() -> None:
    env = {
        "SOMA_WARM_WINDOW": "5",
        "SOMA_GATE__EPSILON": "0.09",
        "SOMA_MINING__PROBE_TEACHER": "true",
        "SOMA_LORA__TARGET_MODULES": '["q_proj", "k_proj"]',
        "SOMA_HOME": "/somewhere",  # reserved: not a config field
        "OTHER_VAR": "x",
    }
    cfg, sources = load_with_sources(environ=env)
    assert cfg.warm_window == 5
    assert cfg.gate.epsilon == pytest.approx(0.09)
    assert cfg.mining.probe_teacher is True
    assert cfg.lora.target_modules == ["q_proj", "k_proj"]
    assert sources["warm_window"] == "environment"
    assert sources["gate.epsilon"] == "environment"
    assert sources["gate.delta"] == "default"


def test_env_overrides_nests_on_double_underscore() -> None:
    assert env_overrides({"SOMA_GATE__EPSILON": "0.08", "SOMA_SHARE": "agent", "SOMA_CONFIG": "x.toml"}) == {
        "gate": {"epsilon": "0.08"},
        "share": "agent",
    }


def test_soma_config_load_reads_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOMA_GATE__EPSILON", "0.11")
    monkeypatch.setenv("SOMA_RECENT_TURNS", "4")
    cfg = SomaConfig.load()
    assert cfg.gate.epsilon == pytest.approx(0.11)
    assert cfg.recent_turns == 4


# ------------------------------------------------------------------------------- precedence


def test_precedence_file_then_env_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "soma.toml"
    path.write_text("warm_window = 6\nrecent_turns = 3\nsummary_tokens = 64\n[gate]\nepsilon = 0.06\ndelta = 0.2\n")
    env = {"SOMA_WARM_WINDOW": "7", "SOMA_RECENT_TURNS": "5", "SOMA_GATE__EPSILON": "0.07"}
    cfg, sources = load_with_sources(path, environ=env, warm_window=8, gate={"min_fidelity": 0.3})
    # file only
    assert cfg.summary_tokens == 64 and sources["summary_tokens"].startswith("file")
    assert cfg.gate.delta == pytest.approx(0.2) and sources["gate.delta"].startswith("file")
    # env beats file
    assert cfg.recent_turns == 5 and sources["recent_turns"] == "environment"
    assert cfg.gate.epsilon == pytest.approx(0.07) and sources["gate.epsilon"] == "environment"
    # overrides beat env and file
    assert cfg.warm_window == 8 and sources["warm_window"] == "argument"
    # a nested override merges into the section instead of replacing it
    assert cfg.gate.min_fidelity == pytest.approx(0.3) and sources["gate.min_fidelity"] == "argument"
    # defaults everywhere else
    assert sources["max_new_tokens"] == "default"
    assert cfg.max_new_tokens == SomaConfig().max_new_tokens


def test_section_object_override_keeps_other_sources(tmp_path: Path) -> None:
    """Passing a section as a model object (``gate=GateConfig(...)``) overrides only what
    that object sets, like the dict form, and reports those fields as arguments."""
    path = tmp_path / "soma.toml"
    path.write_text("[gate]\ndelta = 0.2\n")
    cfg, sources = load_with_sources(path, environ={}, gate=GateConfig(epsilon=0.1))
    assert cfg.gate.epsilon == pytest.approx(0.1)
    assert sources["gate.epsilon"] == "argument"
    assert cfg.gate.delta == pytest.approx(0.2)
    assert sources["gate.delta"].startswith("file")


# ------------------------------------------------------------------------------- errors


def test_unknown_key_in_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "soma.toml"
    path.write_text("warm_window = 5\n[gate]\nepsilonn = 0.1\n")
    with pytest.raises(ConfigError) as err:
        load_with_sources(path, environ={})
    msg = str(err.value)
    assert "gate.epsilonn" in msg
    assert "unknown" in msg
    assert str(path) in msg


def test_unknown_top_level_key_in_yaml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "soma.yaml"
    path.write_text("warm_windw: 5\n")
    with pytest.raises(ConfigError, match="warm_windw"):
        load_with_sources(path, environ={})


def test_unknown_env_var_is_named() -> None:
    with pytest.raises(ConfigError) as err:
        load_with_sources(environ={"SOMA_GATE__BOGUS": "1"})
    assert "gate.bogus" in str(err.value)
    assert "environment" in str(err.value)
    with pytest.raises(ConfigError, match="warm_windows"):
        load_with_sources(environ={"SOMA_WARM_WINDOWS": "4"})


def test_unknown_override_is_named() -> None:
    with pytest.raises(ConfigError) as err:
        load_with_sources(environ={}, temperture=0.5)
    assert "temperture" in str(err.value)
    with pytest.raises(ConfigError, match=r"lora\.rnk"):
        SomaConfig.load(lora={"rnk": 4})


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"SOMA_WARM_WINDOW": "abc"}, "warm_window"),
        ({"SOMA_WARM_WINDOW": "1"}, "warm_window"),
        ({"SOMA_GATE__EPSILON": "2.5"}, "gate.epsilon"),
        ({"SOMA_ADAPTATION": "sometimes"}, "adaptation"),
        ({"SOMA_LORA__DROPOUT": "1.0"}, "lora.dropout"),
    ],
)
def test_bad_env_value_names_the_field(env: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_with_sources(environ=env)
    msg = str(err.value)
    assert f"'{field}'" in msg
    assert "environment" in msg
    assert "unknown" not in msg


def test_bad_override_value_names_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        SomaConfig.load(gate={"audit_rate": -0.5})
    assert "'gate.audit_rate'" in str(err.value)
    assert "argument" in str(err.value)


def test_bad_file_value_names_field_and_file(tmp_path: Path) -> None:
    path = tmp_path / "soma.yaml"
    path.write_text("share: everyone\n")
    with pytest.raises(ConfigError) as err:
        load_with_sources(path, environ={})
    assert "'share'" in str(err.value)
    assert str(path) in str(err.value)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_direct_construction_validates() -> None:
    with pytest.raises(ValueError, match="warm_window"):
        SomaConfig(warm_window=0)
    with pytest.raises(ValueError, match="bogus"):
        SomaConfig(bogus=1)
    cfg = SomaConfig()
    with pytest.raises(ValueError, match="epsilon"):
        cfg.gate.epsilon = 5.0
