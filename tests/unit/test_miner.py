"""Soft-prompt mining (soma_engine.adaptation.miner): Eq. 1-3 against naive loops, neighbourhoods,
batched forward vs per-turn forward, gradient isolation, hardness ranking, mine() end to end."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from soma_engine.adaptation.answer_rows import Frozen, activation_budget, layer_checkpointing
from soma_engine.adaptation.miner import mine, probe_cases, verbalize
from soma_engine.adaptation.mining_loss import (
    hardness_from_unlikelihood,
    log_probs_at,
    mining_objective,
    semantic_divergence_loss,
    tail_entropy,
)
from soma_engine.adaptation.neighbourhoods import (
    NeighborIndex,
    clear_neighbor_cache,
    get_neighbor_index,
    neighbourhood,
)
from soma_engine.adaptation.prompt_scoring import encode_turns, score_prompts
from soma_engine.config import MiningConfig
from soma_engine.testing import build_tiny_model

# ---------------------------------------------------------------------------------------------
# Naive references: plain Python loops over positions and vocabulary, float64.
# ---------------------------------------------------------------------------------------------


def naive_cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b) / (float(a.norm()) * float(b.norm()))


def naive_neighbors(emb: torch.Tensor, u: int, k: int) -> list[int]:
    sims = [(naive_cos(emb[v], emb[u]), v) for v in range(emb.shape[0]) if v != u]
    sims.sort(key=lambda x: -x[0])
    return [v for _, v in sims[:k]]


def naive_sem_exp(logits, teacher, emb, k, tau, lam, m) -> float:
    emb = emb.double()
    total = 0.0
    for i in range(logits.shape[0]):
        row = [float(x) for x in logits[i].double()]
        mx = max(row)
        z = sum(math.exp(x - mx) for x in row)
        probs = [math.exp(x - mx) / z for x in row]
        y = int(teacher[i])
        hood = [y, *naive_neighbors(emb, y, k)]
        exps = [math.exp(naive_cos(emb[v], emb[y]) / tau) for v in hood]
        s = [e / sum(exps) for e in exps]
        unl = sum(s_v * -math.log(1.0 - probs[v]) for s_v, v in zip(s, hood, strict=True))
        top = sorted(range(len(probs)), key=lambda v: -probs[v])[:m]
        e_bar = sum(probs[v] * emb[v] for v in top)  # not renormalised (cos is scale-free)
        w = 1.0 + lam * min(max(naive_cos(e_bar, emb[y]), 0.0), 1.0)
        total += w * unl
    return total / logits.shape[0]


def naive_entropy(row: torch.Tensor) -> float:
    vals = [float(x) for x in row.double()]
    mx = max(vals)
    z = sum(math.exp(x - mx) for x in vals)
    return -sum((math.exp(x - mx) / z) * (x - mx - math.log(z)) for x in vals)


# ---------------------------------------------------------------------------------------------
# Eq. 1-3
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "m", "tau", "lam"),
    [(1, 1, 0.7, 1.0), (4, 5, 0.4, 0.5), (10, 50, 1.2, 2.0), (6, 12, 0.9, 0.0)],
)
def test_semantic_divergence_matches_naive(k, m, tau, lam):
    g = torch.Generator().manual_seed(k * 100 + m)
    vocab, dim, n = 50, 8, 6
    emb = torch.randn(vocab, dim, generator=g)
    logits = torch.randn(n, vocab, generator=g) * 3
    teacher = torch.randint(0, vocab, (n,), generator=g)
    logits[0, teacher[0]] += 6.0  # one position where G puts most mass on the teacher token
    expected = naive_sem_exp(logits, teacher, emb, k, tau, lam, m)
    kw = dict(neighbors_k=k, tau=tau, lambda_exp=lam, top_m=m)
    got_dense = semantic_divergence_loss(logits, teacher, emb, **kw)
    nbrs = NeighborIndex(emb, k).neighbors(teacher)
    got_index = semantic_divergence_loss(logits, teacher, emb, neighbors=nbrs, **kw)
    per_pos = semantic_divergence_loss(logits, teacher, emb, reduction="none", **kw)
    assert got_dense.item() == pytest.approx(expected, rel=1e-4)
    assert got_index.item() == pytest.approx(expected, rel=1e-4)
    assert per_pos.shape == (n,)
    assert per_pos.mean().item() == pytest.approx(expected, rel=1e-4)


def test_log_probs_at_matches_log_softmax_and_its_gradient():

    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 50, dtype=torch.double, generator=g, requires_grad=True)
    idx = torch.randint(0, 50, (6, 9), generator=g)
    idx[0, :2] = 3  # repeated ids accumulate their gradients
    assert torch.allclose(log_probs_at(x, idx), torch.log_softmax(x, -1).gather(1, idx))
    assert torch.autograd.gradcheck(log_probs_at, (x, idx))


def test_top_m_truncation_matters():
    g = torch.Generator().manual_seed(3)
    emb = torch.randn(50, 8, generator=g)
    logits = torch.randn(6, 50, generator=g)
    teacher = torch.randint(0, 50, (6,), generator=g)
    kw = dict(neighbors_k=3, tau=0.7, lambda_exp=2.0)
    small = semantic_divergence_loss(logits, teacher, emb, top_m=1, **kw).item()
    full = semantic_divergence_loss(logits, teacher, emb, top_m=50, **kw).item()
    assert small != pytest.approx(full, rel=1e-3)
    assert full == pytest.approx(naive_sem_exp(logits, teacher, emb, 3, 0.7, 2.0, 50), rel=1e-4)


def test_unlikelihood_is_large_when_teacher_token_is_likely_and_stays_finite():
    emb = torch.randn(20, 8, generator=torch.Generator().manual_seed(0))
    teacher = torch.tensor([4, 4])
    logits = torch.zeros(2, 20)
    logits[0, 4] = 60.0  # Π[y] = 1 in float32: clamped, finite
    logits = logits.requires_grad_(True)
    per_pos = semantic_divergence_loss(
        logits, teacher, emb, neighbors_k=3, tau=0.7, lambda_exp=1.0, top_m=5, reduction="none"
    )
    assert torch.isfinite(per_pos).all()
    assert per_pos[0] > 1.0 > 0.2 > per_pos[1]
    per_pos.sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_weight_gradient_flows_unless_detached():
    g = torch.Generator().manual_seed(1)
    emb = torch.randn(30, 8, generator=g)
    base = torch.randn(5, 30, generator=g)
    teacher = torch.randint(0, 30, (5,), generator=g)
    grads, values = [], []
    for detach in (False, True):
        logits = base.clone().requires_grad_(True)
        loss = semantic_divergence_loss(
            logits, teacher, emb, neighbors_k=4, tau=0.7, lambda_exp=2.0, top_m=10, detach_weight=detach
        )
        loss.backward()
        grads.append(logits.grad)
        values.append(loss.item())
    assert values[0] == pytest.approx(values[1])
    assert not torch.allclose(grads[0], grads[1])


def test_tail_entropy_matches_naive():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 7, 40, generator=g) * 2
    for k in (1, 4, 7, 20):
        got = tail_entropy(logits, k)
        assert got.shape == (3,)
        for b in range(3):
            rows = range(min(k, 7))
            expected = sum(naive_entropy(logits[b, i]) for i in rows) / len(rows)
            assert got[b].item() == pytest.approx(expected, rel=1e-5)
    assert tail_entropy(logits[0], 2).item() == pytest.approx(
        (naive_entropy(logits[0, 0]) + naive_entropy(logits[0, 1])) / 2, rel=1e-5
    )
    uniform = tail_entropy(torch.zeros(4, 40), 4)
    assert uniform.item() == pytest.approx(math.log(40), rel=1e-6)


def test_mining_objective_matches_eq3():
    g = torch.Generator().manual_seed(4)
    sem, ent = torch.rand(2, 3, generator=g), torch.rand(2, 3, generator=g) * 5
    prompts = torch.randn(2, 4, 8, generator=g)
    got = mining_objective(sem, ent, prompts, beta=0.1, lambda_p=0.01)
    for c in range(2):
        expected = sum(float(sem[c, t]) - 0.1 * float(ent[c, t]) for t in range(3)) / 3
        expected += 0.01 * sum(float(x) ** 2 for x in prompts[c].flatten())
        assert got[c].item() == pytest.approx(expected, rel=1e-5)
    single = mining_objective(sem[0], ent[0], prompts[0], beta=0.1, lambda_p=0.01)
    assert single.item() == pytest.approx(got[0].item(), rel=1e-6)


# ---------------------------------------------------------------------------------------------
# Def. 3.1 neighbourhoods
# ---------------------------------------------------------------------------------------------


def brute_force_sims(emb: torch.Tensor) -> torch.Tensor:
    unit = F.normalize(emb.double(), dim=-1)
    sims = unit @ unit.T
    sims.fill_diagonal_(-math.inf)
    return sims


def brute_force_topk(emb: torch.Tensor, k: int) -> torch.Tensor:
    return brute_force_sims(emb).topk(k, dim=-1).indices


def test_neighbor_index_exact_matches_brute_force():
    emb = torch.randn(300, 16, generator=torch.Generator().manual_seed(5))
    emb[7] = emb[3] * 2.5  # same direction: each is the other's nearest neighbour
    index = NeighborIndex(emb, 10)
    assert not index.uses_hnsw
    expected = brute_force_topk(emb, 10)
    got = index.neighbors(torch.tensor([3, 7, 0, 299]))
    assert got.shape == (4, 10)
    assert got[0, 0] == 7 and got[1, 0] == 3
    assert torch.equal(got, expected[[3, 7, 0, 299]])
    table = index.table()
    sims = brute_force_sims(emb)
    # Same cosines in the same order everywhere (3 and 7 tie exactly, so compare similarities)
    torch.testing.assert_close(sims.gather(1, table), sims.gather(1, expected), rtol=0, atol=1e-6)
    no_tie = ~((expected == 3) | (expected == 7)).any(dim=1)
    assert torch.equal(table[no_tie], expected[no_tie])
    assert not (table == torch.arange(300)[:, None]).any()


def test_neighbor_index_hnsw_recall():
    emb = torch.randn(3000, 32, generator=torch.Generator().manual_seed(6))
    index = NeighborIndex(emb, 10, hnsw_above=1000)
    assert index.uses_hnsw
    queries = torch.arange(0, 3000, 7)
    got = index.neighbors(queries)
    expected = brute_force_topk(emb, 10)[queries]
    hits = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(got, expected, strict=True))
    assert hits / expected.numel() >= 0.9
    assert not (got == queries[:, None]).any()


def test_neighbor_cache_builds_once_per_matrix():
    clear_neighbor_cache()
    emb = torch.randn(60, 8)
    a = get_neighbor_index(emb, 5)
    assert get_neighbor_index(emb, 5) is a
    assert get_neighbor_index(emb, 6) is not a
    assert get_neighbor_index(emb, 5, key="surrogate-x") is get_neighbor_index(emb.clone(), 5, key="surrogate-x")
    emb.mul_(2.0)  # in-place edit: the identity-keyed entry must be rebuilt
    assert get_neighbor_index(emb, 5) is not a
    clear_neighbor_cache()


# ---------------------------------------------------------------------------------------------
# The batched forward on the tiny model
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = build_tiny_model()
    return model, tokenizer


def dialogue_turns():
    sys = {"role": "system", "content": "You are a helpful negotiation assistant."}
    q1 = {"role": "user", "content": "The bicycle costs nine hundred dollars. Is that fair?"}
    a1 = "It is a bit high; offer seven hundred and see what they say."
    q2 = {"role": "user", "content": "They said eight hundred."}
    a2 = "Accept eight hundred if the bicycle is in good shape."
    other = [{"role": "user", "content": "Solve 2x + 3 = 9 step by step."}]
    return [
        ([sys, q1], a1),
        ([sys, q1, {"role": "assistant", "content": a1}, q2], a2),
        (other, "Subtract three from both sides, then divide by two: x = 3."),
    ]


def per_turn_reference(model, tokenizer, turns, prompt, cfg):
    """One unpadded full-logits forward per turn, then the pure Eq. 2 / H_tail functions."""
    emb = model.get_input_embeddings().weight
    sem, ent = [], []
    for messages, answer in turns:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ctx = tokenizer(text, add_special_tokens=False)["input_ids"]
        ans = tokenizer(answer, add_special_tokens=False)["input_ids"]
        ids = torch.tensor(ctx + ans)
        x = torch.cat([prompt, emb[ids]], dim=0)[None]
        logits = model(inputs_embeds=x).logits[0]
        rows = logits[prompt.shape[0] + len(ctx) - 1 : prompt.shape[0] + len(ctx) - 1 + len(ans)]
        kw = dict(neighbors_k=cfg.neighbors_k, tau=cfg.tau, lambda_exp=cfg.lambda_exp, top_m=cfg.top_m)
        sem.append(semantic_divergence_loss(rows, torch.tensor(ans), emb, **kw))
        ent.append(tail_entropy(rows, cfg.tail_k))
    return torch.stack(sem), torch.stack(ent)


def test_batched_scores_match_per_turn_forward(tiny):
    model, tokenizer = tiny
    turns = dialogue_turns()
    cfg = MiningConfig(neighbors_k=6, top_m=20, tau=0.6, lambda_exp=1.5, tail_k=3)
    batch = encode_turns(tokenizer, turns)
    assert batch.input_ids.shape[0] == 2  # turn 0 is a token prefix of turn 1: hosted there
    assert len(batch.turn_ids) == 3
    emb = model.get_input_embeddings().weight
    nb_ids, s_tau = neighbourhood(batch.row_target, emb, None, cfg.neighbors_k, cfg.tau)
    prompts = torch.randn(2, 4, emb.shape[1], generator=torch.Generator().manual_seed(0)) * 0.5
    norm = model.model.norm.weight
    saved = norm.detach().clone()
    try:
        with torch.no_grad():
            norm.mul_(8.0)  # sharper, position-dependent distributions make the check discriminative
            scores = score_prompts(model, batch, prompts, config=cfg, nb_ids=nb_ids, s_tau=s_tau)
            for c in range(2):
                sem, ent = per_turn_reference(model, tokenizer, turns, prompts[c], cfg)
                torch.testing.assert_close(scores.sem_exp[c], sem, rtol=1e-4, atol=1e-6)
                torch.testing.assert_close(scores.h_tail[c], ent, rtol=1e-4, atol=1e-6)
    finally:
        with torch.no_grad():
            norm.copy_(saved)
    assert not torch.allclose(scores.sem_exp[0], scores.sem_exp[1], rtol=1e-3)  # the prompt matters
    assert not torch.allclose(scores.h_tail[0], scores.h_tail[1], rtol=1e-3)


def test_gradient_reaches_prompt_only(tiny):
    model, tokenizer = tiny
    cfg = MiningConfig(neighbors_k=5, top_m=10)
    batch = encode_turns(tokenizer, dialogue_turns())
    emb = model.get_input_embeddings().weight
    nb_ids, s_tau = neighbourhood(batch.row_target, emb, None, cfg.neighbors_k, cfg.tau)
    prompts = (torch.randn(2, 4, emb.shape[1]) * cfg.init_std).requires_grad_(True)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}

    with Frozen(model):
        scores = score_prompts(model, batch, prompts, config=cfg, nb_ids=nb_ids, s_tau=s_tau)
        j = mining_objective(scores.sem_exp, scores.h_tail, prompts, beta=cfg.beta, lambda_p=cfg.lambda_p)
        j.sum().backward()
    assert all(p.grad is None for p in model.parameters())
    assert prompts.grad is not None and prompts.grad.abs().sum() > 0
    assert all(prompts.grad[c].abs().sum() > 0 for c in range(2))
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags  # restored


# ---------------------------------------------------------------------------------------------
# mine(), hardness, probes
# ---------------------------------------------------------------------------------------------


def test_hardness_ranks_reproduced_turn_below_unlikely_turn():
    # A fresh tiny model made confident (sharper logits): its own greedy answer is what it
    # reproduces; a random answer is one it does not.
    model, tokenizer = build_tiny_model(seed=1)
    with torch.no_grad():
        model.model.norm.weight.mul_(20.0)
    ctx_a = [{"role": "user", "content": "Hello, how are you today?"}]
    ctx_b = [{"role": "user", "content": "Plan a trip to Lisbon."}]
    enc = tokenizer.apply_chat_template(ctx_a, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**enc, max_new_tokens=10, do_sample=False)
    greedy = tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert greedy
    turns = [(ctx_a, greedy), (ctx_b, "pirate chemistry gardening football pastries")]
    cfg = MiningConfig(candidates=2, steps=3, neighbors_k=5, top_m=20)
    result = mine(model, tokenizer, turns, cfg, seed=0)
    r_a, r_b = result.hardness
    assert 0.0 < r_a < r_b <= 1.0
    # The literal Eq. 2 value orders them the other way: it measures agreement, which is why
    # the hardness is exp(-L_sem_exp) (module docstring).
    assert result.unlikelihood[:, 0].min() > result.unlikelihood[:, 1].min()


def test_hardness_rules_against_naive_loops():
    sem = torch.tensor([[0.2, 3.0, 1.5], [0.9, 0.1, 2.5]])  # L_sem_exp [M candidates, T turns]
    divergence = [max(math.exp(-sem[m, t].item()) for m in range(2)) for t in range(3)]
    literal = [max(sem[m, t].item() for m in range(2)) for t in range(3)]
    r, best = hardness_from_unlikelihood(sem)
    assert r.tolist() == pytest.approx(divergence) and best.tolist() == [0, 1, 0]
    r, best = hardness_from_unlikelihood(sem, "divergence")
    assert r.tolist() == pytest.approx(divergence) and best.tolist() == [0, 1, 0]
    r, best = hardness_from_unlikelihood(sem, "literal")
    assert r.tolist() == pytest.approx(literal) and best.tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="'divergence' or 'literal'"):
        hardness_from_unlikelihood(sem, "max")


def test_literal_hardness_reads_the_largest_residual_agreement(tiny):
    """``mining.hardness="literal"``: r_t = max_m L_sem_exp (Sec. 3.3 as printed) from the same
    optimised prompts, and the candidate that gives it; the ranking is the default's reversed
    when there is one candidate (exp(-L) is decreasing)."""
    model, tokenizer = tiny
    turns = dialogue_turns()
    cfg = MiningConfig(candidates=1, steps=2, soft_len=4, neighbors_k=5, top_m=10)
    default = mine(model, tokenizer, turns, cfg, seed=2)
    literal = mine(model, tokenizer, turns, cfg.model_copy(update={"hardness": "literal"}), seed=2)
    assert torch.equal(literal.prompts, default.prompts)  # the rule reads the result, mining is the same
    assert literal.hardness == pytest.approx(literal.unlikelihood.amax(dim=0).tolist())
    assert default.hardness == pytest.approx(torch.exp(-default.unlikelihood).amax(dim=0).tolist())
    order = sorted(range(len(turns)), key=lambda t: default.hardness[t])
    assert sorted(range(len(turns)), key=lambda t: -literal.hardness[t]) == order
    two = cfg.model_copy(update={"candidates": 2, "hardness": "literal"})
    both = mine(model, tokenizer, turns, two, seed=2)
    assert both.best_candidate == both.unlikelihood.argmax(dim=0).tolist()


def test_mine_smoke(tiny):
    model, tokenizer = tiny
    turns = dialogue_turns()[1:]
    cfg = MiningConfig(candidates=2, steps=3, soft_len=5, neighbors_k=5, top_m=10)
    calls = []
    result = mine(model, tokenizer, turns, cfg, seed=3, progress=lambda s, t: calls.append((s, t)))
    d = model.get_input_embeddings().weight.shape[1]
    assert len(result.hardness) == 2 and all(0.0 < r <= 1.0 for r in result.hardness)
    assert result.prompts.shape == (2, 5, d)
    assert len(result.losses) == 3 and all(len(row) == 2 for row in result.losses)
    assert len(result.verbalized) == 2 and all(len(v) == 5 for v in result.verbalized)
    assert all(isinstance(s, str) for v in result.verbalized for s in v)
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert result.unlikelihood.shape == (2, 2) and result.best_candidate[0] in (0, 1)
    assert {"neighbors", "optimization", "evaluation", "total"} <= result.timings.keys()
    assert all(p.requires_grad for p in model.parameters())  # freezing is undone
    again = mine(model, tokenizer, turns, cfg, seed=3)
    assert torch.equal(again.prompts, result.prompts)  # seeded
    empty = mine(model, tokenizer, [(turns[0][0], "")], cfg)
    assert empty.hardness == [0.0] and empty.best_candidate == [-1]


def test_mining_steps_run_as_separate_tasks_and_tolerate_interleaved_use(tiny):
    """Each step is its own task (the engine submits them to the model worker, so live turns
    run in between); a forward pass and a gradient-enabled parameter between steps change
    nothing in the result."""
    from concurrent.futures import ThreadPoolExecutor

    model, tokenizer = tiny
    turns = dialogue_turns()[1:]
    cfg = MiningConfig(candidates=2, steps=4, soft_len=4, neighbors_k=5, top_m=10)
    inline = mine(model, tokenizer, turns, cfg, seed=5)
    pool = ThreadPoolExecutor(max_workers=1)
    tasks = []
    ids = tokenizer("an unrelated live turn", return_tensors="pt").input_ids

    def run_step(fn):
        tasks.append(fn)
        result = pool.submit(fn).result()
        with torch.no_grad():
            model(input_ids=ids)  # a live turn between two steps
        return result

    try:
        stepped = mine(model, tokenizer, turns, cfg, seed=5, run_step=run_step)
    finally:
        pool.shutdown()
    assert len(tasks) == cfg.steps + 1  # the optimisation steps + the final scoring pass
    assert torch.equal(stepped.prompts, inline.prompts)
    assert stepped.hardness == inline.hardness
    assert all(p.requires_grad for p in model.parameters())


def test_mining_decreases_objective(tiny):
    model, tokenizer = tiny
    cfg = MiningConfig(candidates=2, steps=12, soft_len=4, lr=0.05, init_std=0.5, neighbors_k=5, top_m=10)
    result = mine(model, tokenizer, dialogue_turns(), cfg, seed=0)
    for c in range(2):
        assert result.losses[-1][c] < result.losses[0][c]


def test_verbalize_returns_nearest_tokens(tiny):
    model, tokenizer = tiny
    emb = model.get_input_embeddings().weight.detach()
    ids = [300, 42, 77]
    prompt = emb[ids] * 3.0 + 1e-4  # same direction as the token rows
    assert verbalize(prompt, emb, tokenizer) == [tokenizer.decode([i]) for i in ids]
    special = emb[[tokenizer.pad_token_id]]
    assert verbalize(special, emb, tokenizer) != [tokenizer.decode([tokenizer.pad_token_id])]


def test_probe_cases_respect_budget_and_prepend_probe(tiny):
    model, tokenizer = tiny
    turns = dialogue_turns()
    cfg = MiningConfig(candidates=2, steps=1, soft_len=3, neighbors_k=5, top_m=10)
    result = mine(model, tokenizer, turns, cfg)
    seen = []

    def teacher(messages):
        seen.append(messages)
        if len(seen) == 2:
            raise RuntimeError("teacher down")
        return "probe answer"

    cases, n_calls = probe_cases(result, turns, teacher, budget=2)
    assert n_calls == 2 and len(seen) == 2 and len(cases) == 1
    hardest = max(range(3), key=lambda t: result.hardness[t])
    probe = result.verbalized_text(result.best_candidate[hardest]).strip()
    assert seen[0][-1]["content"] == f"{probe}\n\n{turns[hardest][0][-1]['content']}"
    assert turns[hardest][0][-1]["content"] != seen[0][-1]["content"]  # the input is not mutated
    assert cases[0] == (seen[0], "probe answer")
    assert probe_cases(result, turns, teacher, budget=0) == ([], 0)


# ---------------------------------------------------------------------------------------------
# Memory: chunked rows and layer checkpointing give the naive values and gradients
# ---------------------------------------------------------------------------------------------


def _scores_and_grad(model, batch, cfg, prompts0, *, checkpoint_layers: bool = False):

    emb = model.get_input_embeddings().weight
    nb_ids, s_tau = neighbourhood(batch.row_target, emb, None, cfg.neighbors_k, cfg.tau)
    prompts = prompts0.clone().requires_grad_(True)
    with Frozen(model), layer_checkpointing(model, checkpoint_layers) as on:
        scores = score_prompts(model, batch, prompts, config=cfg, nb_ids=nb_ids, s_tau=s_tau)
        j = mining_objective(scores.sem_exp, scores.h_tail, prompts, beta=cfg.beta, lambda_p=cfg.lambda_p)
        j.sum().backward()
    assert on == checkpoint_layers
    return scores.sem_exp.detach(), scores.h_tail.detach(), prompts.grad


@pytest.mark.parametrize("chunk", [1, 3, 7])
def test_chunked_rows_match_one_chunk_in_value_and_gradient(tiny, chunk):
    model, tokenizer = tiny
    batch = encode_turns(tokenizer, dialogue_turns())
    assert batch.row_target.numel() * 2 > 3 * chunk  # several chunks, a ragged last one
    emb = model.get_input_embeddings().weight
    prompts0 = torch.randn(2, 4, emb.shape[1], generator=torch.Generator().manual_seed(1)) * 0.5
    whole = MiningConfig(neighbors_k=5, top_m=10, tail_k=3, row_chunk=100_000)
    parts = MiningConfig(neighbors_k=5, top_m=10, tail_k=3, row_chunk=chunk)
    sem_a, ent_a, grad_a = _scores_and_grad(model, batch, whole, prompts0)
    sem_b, ent_b, grad_b = _scores_and_grad(model, batch, parts, prompts0)
    torch.testing.assert_close(sem_b, sem_a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ent_b, ent_a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_b, grad_a, rtol=1e-4, atol=1e-7)
    assert grad_a.abs().sum() > 0


def test_chunked_scores_match_naive_full_logits(tiny):
    model, tokenizer = tiny
    turns = dialogue_turns()
    cfg = MiningConfig(neighbors_k=6, top_m=20, tau=0.6, lambda_exp=1.5, tail_k=3, row_chunk=2)
    batch = encode_turns(tokenizer, turns)
    emb = model.get_input_embeddings().weight
    nb_ids, s_tau = neighbourhood(batch.row_target, emb, None, cfg.neighbors_k, cfg.tau)
    prompts = torch.randn(2, 4, emb.shape[1], generator=torch.Generator().manual_seed(0)) * 0.5
    with torch.no_grad():
        scores = score_prompts(model, batch, prompts, config=cfg, nb_ids=nb_ids, s_tau=s_tau)
        for c in range(2):
            sem, ent = per_turn_reference(model, tokenizer, turns, prompts[c], cfg)
            torch.testing.assert_close(scores.sem_exp[c], sem, rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(scores.h_tail[c], ent, rtol=1e-4, atol=1e-6)


def test_layer_checkpointing_keeps_the_gradient_and_restores_the_model(tiny):
    model, tokenizer = tiny
    batch = encode_turns(tokenizer, dialogue_turns())
    emb = model.get_input_embeddings().weight
    prompts0 = torch.randn(2, 4, emb.shape[1], generator=torch.Generator().manual_seed(2)) * 0.5
    cfg = MiningConfig(neighbors_k=5, top_m=10, tail_k=3)
    modes = [m.training for m in model.modules()]
    sem_a, _, grad_a = _scores_and_grad(model, batch, cfg, prompts0)
    sem_b, _, grad_b = _scores_and_grad(model, batch, cfg, prompts0, checkpoint_layers=True)
    torch.testing.assert_close(sem_b, sem_a)
    torch.testing.assert_close(grad_b, grad_a, rtol=1e-4, atol=1e-7)
    assert not any(getattr(m, "gradient_checkpointing", False) for m in model.modules())
    assert [m.training for m in model.modules()] == modes


def test_activation_estimate_switches_checkpointing_in_mine(tiny):
    model, tokenizer = tiny
    base = dict(candidates=2, soft_len=3, steps=1, neighbors_k=4, top_m=8)
    off = mine(model, tokenizer, dialogue_turns(), MiningConfig(**base), seed=0)
    on = mine(model, tokenizer, dialogue_turns(), MiningConfig(**base, activation_budget_mb=0), seed=0)
    assert off.timings["checkpointing"] == 0.0 and on.timings["checkpointing"] == 1.0
    torch.testing.assert_close(on.prompts, off.prompts, rtol=1e-4, atol=1e-6)
    assert on.hardness == pytest.approx(off.hardness, rel=1e-4)


def test_encode_turns_cuts_long_answers_to_their_first_tokens(tiny):
    _, tokenizer = tiny
    answer = " ".join(f"word{i}" for i in range(400))
    turns = [([{"role": "user", "content": "Tell me a long story."}], answer)]
    full = tokenizer(answer, add_special_tokens=False)["input_ids"]
    batch = encode_turns(tokenizer, turns, max_seq_len=1024, max_answer_tokens=32)
    assert batch.row_target.tolist() == full[:32]  # the prefix, in order, not a sample
    short = encode_turns(tokenizer, turns, max_seq_len=40, max_answer_tokens=32)
    assert short.row_target.tolist() == full[:32] and int(short.lengths.max()) <= 40


def test_time_budget_sizes_candidates_and_steps_from_the_first_step(tiny):
    model, tokenizer = tiny
    cfg = MiningConfig(candidates=3, soft_len=3, steps=50, neighbors_k=4, top_m=8)
    free = mine(model, tokenizer, dialogue_turns(), cfg.model_copy(update={"steps": 2}), seed=0)
    assert free.timings["planned_steps"] == free.timings["steps"] == 2 and free.timings["candidates"] == 3
    tight = mine(model, tokenizer, dialogue_turns(), cfg, seed=0, time_budget_s=1e-6)
    assert tight.timings["steps"] == 1 and tight.timings["candidates"] == 1
    assert tight.prompts.shape[0] == 1 and tight.unlikelihood.shape[0] == 1 and len(tight.verbalized) == 1
    assert all(0.0 < h <= 1.0 for h in tight.hardness)
    step_s = free.timings["optimization"] / 2
    some = mine(model, tokenizer, dialogue_turns(), cfg, seed=0, time_budget_s=6 * step_s)
    assert 1 < some.timings["steps"] < 50 and some.timings["planned_steps"] == some.timings["steps"]
    assert len(some.losses) == some.timings["steps"]


def test_the_activation_budget_is_the_configured_one_else_512_mb_on_a_cpu(tiny):
    model, _ = tiny
    assert activation_budget(0, model) == 0  # always recompute
    assert activation_budget(64, model) == 64 * 2**20
    assert activation_budget(None, model) == 512 * 2**20  # a CPU (CUDA: a quarter of its free memory)
    assert MiningConfig().activation_budget_mb is None
