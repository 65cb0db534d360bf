"""The ``soma`` command and the demo loop (on a tiny surrogate, through ``engine.chat``)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from soma_engine.cli import app
from soma_engine.demo import CONVERSATION, SCRIPT, SYSTEM, make_teacher, run_demo

runner = CliRunner()
PIRATE = "Arr matey, hoist the sails and hold firm on yer price!"


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "bench", "config", "sessions", "adapters"):
        assert command in result.output


def test_config_reports_sources(tmp_path, monkeypatch):
    cfg = tmp_path / "soma.toml"
    cfg.write_text("warm_window = 6\n[gate]\nepsilon = 0.08\n")
    monkeypatch.setenv("SOMA_RECENT_TURNS", "3")
    result = runner.invoke(app, ["config", "--file", str(cfg), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["warm_window"] == {"value": 6, "source": f"file {cfg}"}
    assert data["gate.epsilon"]["value"] == 0.08
    assert data["recent_turns"] == {"value": 3, "source": "environment"}
    assert data["lora.rank"]["source"] == "default"


def test_bad_input_is_a_one_line_error_not_a_traceback(tmp_path):
    cfg = tmp_path / "soma.toml"
    cfg.write_text("warm_windw = 6\n")
    result = runner.invoke(app, ["config", "--file", str(cfg)])
    assert result.exit_code == 2
    assert "unknown config key 'warm_windw'" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["sessions", "show", "nope", "--store", f"sqlite:///{tmp_path / 's.db'}"])
    assert result.exit_code == 2 and "no session 'nope'" in result.output


def test_demo_loop_switches_and_saves_tokens(new_engine, permissive_config, tmp_path):
    engine = new_engine(f"sqlite:///{tmp_path / 'soma.db'}", config=permissive_config(lora={"steps": 40, "lr": 1e-2}))
    # The tiny surrogate cannot judge locality sensibly: accept every follow-up.
    engine.config.gate.locality_threshold = 2.0
    report = run_demo(lambda h: engine.chat("demo-test", h, lambda m: PIRATE), engine, session_id="demo-test")
    served = [row.served_by for row in report.turns]
    assert len(served) == len(CONVERSATION) >= 16
    assert served[:4] == ["teacher"] * 4
    assert served.count("surrogate") >= 6, served
    assert report.teacher_tokens < report.teacher_only_tokens
    assert 0 < report.tokens_saved < 1
    path = report.write(tmp_path / "out")
    data = json.loads(path.read_text())
    assert data["surrogate_turns"] == served.count("surrogate")
    assert (tmp_path / "out" / "tokens.png").stat().st_size > 1000
    assert report.why_no_local_turn() is None


def test_demo_says_why_no_turn_was_served_locally(new_engine, permissive_config, tmp_path):
    config = permissive_config(lora={"steps": 2}, gate={"min_fidelity": 1.0})  # no adapter can pass
    engine = new_engine(f"sqlite:///{tmp_path / 'soma.db'}", config=config)
    report = run_demo(lambda h: engine.chat("demo-refused", h, lambda m: PIRATE), engine, session_id="demo-refused")
    assert report.surrogate_turns == 0 and "rejected" in {r.phase for r in report.turns}
    assert "gate refused" in (report.why_no_local_turn() or "")
    for row in report.turns[4:]:  # as when a CPU adaptation outlasts the conversation
        row.phase = "adapting"
    assert "adaptation outlasted the conversation" in (report.why_no_local_turn() or "")


def test_sessions_and_adapters_commands(new_engine, permissive_config, tmp_path):
    store = f"sqlite:///{tmp_path / 'ops.db'}"
    engine = new_engine(store, config=permissive_config())
    history = [{"role": "user", "content": "Hello there"}]
    engine.chat("ops-1", history, lambda m: PIRATE)
    engine.close()
    result = runner.invoke(app, ["sessions", "list", "--store", store, "--json"])
    rows = json.loads(result.output)
    assert [r["session_id"] for r in rows] == ["ops-1"] and rows[0]["turns"] == 1
    result = runner.invoke(app, ["sessions", "show", "ops-1", "--store", store, "--json"])
    assert json.loads(result.output)["turns"][0]["served_by"] == "teacher"
    assert runner.invoke(app, ["sessions", "delete", "ops-1", "--store", store]).exit_code == 0
    assert json.loads(runner.invoke(app, ["sessions", "list", "--store", store, "--json"]).output) == []


def test_bench_tabulates_summaries_and_results_without_one(tmp_path):
    (tmp_path / "savings.json").write_text(json.dumps({"summary": {"saved [settled]": "71.0%"}, "results": {}}))
    (tmp_path / "drift.json").write_text(json.dumps({"default": {"test": {"detection_rate": 0.875}}, "seconds": 35.2}))
    (tmp_path / "broken.json").write_text("{not json")
    result = runner.invoke(app, ["bench", "--no-run", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for text in ("savings", "saved [settled]", "71.0%", "drift", "default.test.detection_rate", "0.875", "35.2"):
        assert text in result.output, text
    assert "unreadable" in result.output
    result = runner.invoke(app, ["bench", "--no-run", "--out", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no benchmark results" in result.output


def test_scripted_teacher_bills_what_it_reads(new_engine, permissive_config, tmp_path):
    from soma_engine.types import normalize_messages

    engine = new_engine(f"sqlite:///{tmp_path / 'scripted.db'}", config=permissive_config())
    played = make_teacher("scripted", engine, 16)
    assert "scripted stand-in" in played.note and played.queries == CONVERSATION and played.system == SYSTEM
    rt = engine.surrogate
    report = run_demo(
        lambda h: engine.chat("scripted", h, played.teacher), engine, session_id="scripted", queries=CONVERSATION[:5]
    )
    first = report.turns[0]
    assert first.served_by == "teacher"
    prompt = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": CONVERSATION[0]}]
    assert first.text == SCRIPT[0][1]
    assert first.teacher_tokens == rt.count_tokens(rt.render(normalize_messages(prompt))) + rt.count_tokens(first.text)
    assert report.teacher_tokens == sum(r.teacher_tokens for r in report.turns)


def test_turn_lines_stay_short_and_show_the_recorded_answer():
    from soma_engine.cli import turn_lines
    from soma_engine.demo import TurnRow

    row = TurnRow(7, "surrogate", "serving", 1234.5, 0, 88, 0.91, "", "Our approach: " + "word " * 60, query="q " * 80)
    row.reference, row.similarity = "At our team we take a collaborative approach " * 5, 0.634
    lines = turn_lines(row)
    assert "sim 0.63" in lines[0] and "recorded" in lines[3] and "served" in lines[2]
    teacher = TurnRow(2, "teacher", "warm", 12.0, 300, 0, None, "", "recorded text", query="Hi")
    assert len(turn_lines(teacher)) == 2 and "300 tok billed" in turn_lines(teacher)[0]


def test_demo_replays_a_recorded_conversation_in_80_columns(tmp_path, visible_model_path, monkeypatch):
    """`soma demo` end to end on the tiny surrogate: the default teacher replays a ShareGPT
    conversation (a small file made here), no printed line is wider than 80 columns, and the
    report scores each served answer against the recorded one."""
    from rich.console import Console

    from soma_engine import cli
    from soma_engine.datasets import sharegpt

    long_answer = "Our machine learning service helps organisations turn data into decisions. " * 6
    convo = {"id": "demo_0", "conversations": []}
    for i in range(8):
        convo["conversations"] += [
            {"from": "human", "value": f"What would be the text for section {i} of our data science website?"},
            {"from": "gpt", "value": f"Section {i}: {long_answer}"},
        ]
    source = tmp_path / "sg.json"
    source.write_text(json.dumps([convo]))
    monkeypatch.setattr(sharegpt, "data_file", lambda: source)
    monkeypatch.setattr(cli, "console", Console(width=80, record=True))
    permissive = tmp_path / "soma.yaml"  # any adapter passes; no locality rollbacks on the tiny model
    permissive.write_text("gate:\n  min_fidelity: 0.0\n  min_improvement: null\n  locality_threshold: 4\n")
    monkeypatch.setenv("SOMA_CONFIG", str(permissive))
    out = tmp_path / "demo"
    args = ["demo", "--quick", "--conversation", "demo_0", "--surrogate", str(visible_model_path)]
    args += ["--think-time", "120", "--out", str(out), "--store", f"sqlite:///{tmp_path / 'd.db'}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    screen = cli.console.export_text()
    assert "recorded ChatGPT answers (ShareGPT conversation demo_0, 8 turns)" in screen.replace("\n", " ")
    assert max(len(line) for line in screen.splitlines()) <= 80
    report = json.loads((out / "report.json").read_text())
    assert [r["reference"] for r in report["turns"]] == [m["value"].strip() for m in convo["conversations"][1::2]]
    local = [r for r in report["turns"] if r["served_by"] == "surrogate"]
    assert local and all(0 <= r["similarity"] <= 1 for r in local)
    assert report["local_similarity"] == pytest.approx(sum(r["similarity"] for r in local) / len(local), abs=1e-3)
    assert "similarity of local turns to the recorded answers" in screen


def test_sessions_show_names_a_base_served_session_as_the_base(new_engine, permissive_config, tmp_path):
    from soma_engine.session.transitions import start_serving

    store = f"sqlite:///{tmp_path / 'base.db'}"
    engine = new_engine(store, config=permissive_config())
    engine.chat("ops-base", [{"role": "user", "content": "Hello there"}], lambda m: PIRATE)
    with engine.store.session(engine.key("ops-base"), 60, create=False) as st:
        start_serving(st, None, {})  # as the permissive gate does when the base itself clears the floor
    engine.close()
    result = runner.invoke(app, ["sessions", "show", "ops-base", "--store", store])
    assert result.exit_code == 0 and "adapter=base (no adapter)" in result.output, result.output
    data = json.loads(runner.invoke(app, ["sessions", "show", "ops-base", "--store", store, "--json"]).output)
    assert data["adapter_id"] is None and data["metrics"]["served_by_detail"] == "base"
