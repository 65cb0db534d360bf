"""All M soft-prompt candidates × all warm turns in one padded forward pass (Sec. 3.2).

:func:`encode_turns` tokenises the warm turns once into a :class:`TurnBatch` (a turn whose tokens
are a prefix of a later turn's is read from that later sequence); :func:`score_prompts` prepends
the candidates at G's embedding layer and returns L_sem_exp (Eq. 2) and H_tail (Eq. 3) per
(candidate, turn) pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from soma_engine.config import MiningConfig

from .answer_rows import chunked_rows, row_hidden
from .context_fit import fit_prompt, kept_ends
from .mining_loss import entropy, semantic_terms

Turn = tuple[list[dict[str, Any]], str]

__all__ = ["PromptScores", "Turn", "TurnBatch", "encode_turns", "score_prompts"]


@dataclass
class TurnBatch:
    """Warm turns tokenised for one padded forward pass (every candidate reuses it).

    Turns whose full token sequence is a prefix of another turn's are read from that host's
    sequence (identical tokens give identical causal logits), so a dialogue's W turns usually
    cost one sequence. Rows: one per teacher token, over all kept turns.
    """

    input_ids: Tensor  # [S, n] right-padded host sequences (context ⊕ answer)
    lengths: Tensor  # [S]
    row_seq: Tensor  # [R] host sequence of the row
    row_pos: Tensor  # [R] position (without the prompt) whose logits predict the row's token
    row_target: Tensor  # [R] teacher token id
    row_turn: Tensor  # [R] index into ``turn_ids``
    row_offset: Tensor  # [R] index of the token inside its answer (0 = boundary)
    turn_ids: list[int]  # original indices of turns with at least one answer token
    num_turns: int  # number of turns given

    def to(self, device: torch.device) -> TurnBatch:
        moved = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in self.__dict__.items()}
        return TurnBatch(**moved)


def encode_turns(
    tokenizer: Any,
    turns: Sequence[Turn],
    *,
    max_seq_len: int | None = 1024,
    max_answer_tokens: int | None = 256,
) -> TurnBatch:
    """Tokenise ``(context_messages, teacher_answer)`` turns (Sec. 3.2) into a :class:`TurnBatch`.

    Context: ``apply_chat_template(messages, add_generation_prompt=True, tokenize=False)``,
    tokenised without extra special tokens (the template carries them). Answer: ``tok_G(a^F)``
    alone, without special tokens. Answers are cut to ``max_answer_tokens``; contexts are cut
    until context + answer fits ``max_seq_len`` as the distiller cuts them
    (``context_fit.fit_prompt``: the oldest tokens go, the system message and the newest
    message stay when they fit together). Turns with an empty answer are skipped (they keep
    hardness 0).
    """

    def render_ids(messages: list[Any]) -> list[int]:
        return list(
            tokenizer(tokenizer.apply_chat_template(messages, tokenize=False), add_special_tokens=False)["input_ids"]
        )

    seqs: list[list[int]] = []
    ctx_lens: list[int] = []
    ans_lens: list[int] = []
    turn_ids: list[int] = []
    for t, (messages, answer) in enumerate(turns):
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ctx = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        ans = list(tokenizer(answer or "", add_special_tokens=False)["input_ids"])
        if max_answer_tokens is not None:
            ans = ans[:max_answer_tokens]
        if not ans:
            continue
        if max_seq_len is not None and len(ctx) + len(ans) > max_seq_len:
            ctx = fit_prompt(ctx, *kept_ends(ctx, messages, render_ids), max_seq_len - len(ans))
        if not ctx:  # the first answer token needs a position that predicts it
            ctx, ans = ans[:1], ans[1:]
            if not ans:
                continue
        seqs.append(ctx + ans)
        ctx_lens.append(len(ctx))
        ans_lens.append(len(ans))
        turn_ids.append(t)

    hosts, host_of = _prefix_hosts(seqs)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    n = max((len(seqs[h]) for h in hosts), default=0)
    input_ids = torch.full((len(hosts), n), pad, dtype=torch.long)
    for slot, h in enumerate(hosts):
        input_ids[slot, : len(seqs[h])] = torch.tensor(seqs[h])
    lengths = torch.tensor([len(seqs[h]) for h in hosts], dtype=torch.long)

    row_seq, row_pos, row_target, row_turn, row_offset = [], [], [], [], []
    for j, seq in enumerate(seqs):
        c, a = ctx_lens[j], ans_lens[j]
        row_seq += [host_of[j]] * a
        row_pos += range(c - 1, c - 1 + a)
        row_target += seq[c:]
        row_turn += [j] * a
        row_offset += range(a)
    as_long = lambda xs: torch.tensor(xs, dtype=torch.long)  # noqa: E731
    return TurnBatch(
        input_ids=input_ids,
        lengths=lengths,
        row_seq=as_long(row_seq),
        row_pos=as_long(row_pos),
        row_target=as_long(row_target),
        row_turn=as_long(row_turn),
        row_offset=as_long(row_offset),
        turn_ids=turn_ids,
        num_turns=len(turns),
    )


def _prefix_hosts(seqs: list[list[int]]) -> tuple[list[int], list[int]]:
    """The sequences to run (``hosts``) and, per sequence, the slot of the host it is read from:
    the longest sequence it is a prefix of (ties: lowest index)."""
    order = sorted(range(len(seqs)), key=lambda i: (-len(seqs[i]), i))
    hosts: list[int] = []
    host_of = [0] * len(seqs)
    for i in order:
        for h_slot, h in enumerate(hosts):
            if seqs[h][: len(seqs[i])] == seqs[i]:
                host_of[i] = h_slot
                break
        else:
            host_of[i] = len(hosts)
            hosts.append(i)
    return hosts, host_of


@dataclass
class PromptScores:
    """Per-candidate, per-turn values from one batched forward (turns as in ``turn_ids``)."""

    sem_exp: Tensor  # [M, T'] L_sem_exp (Eq. 2)
    h_tail: Tensor  # [M, T'] H_tail (Eq. 3)


def _segment_mean(values: Tensor, segment: Tensor, num: int) -> Tensor:
    """Mean of ``values`` per segment id in ``[0, num)`` (0 for an empty segment)."""
    total = torch.zeros(num, dtype=values.dtype, device=values.device).index_add_(0, segment, values)
    count = torch.zeros(num, dtype=values.dtype, device=values.device).index_add_(0, segment, torch.ones_like(values))
    return total / count.clamp(min=1)


def score_prompts(
    model: Any,
    batch: TurnBatch,
    prompts: Tensor,
    *,
    config: MiningConfig,
    nb_ids: Tensor,
    s_tau: Tensor,
    detach_weight: bool = False,
) -> PromptScores:
    """L_sem_exp and H_tail for every (candidate, turn) pair in one padded forward pass.

    ``prompts [M, L, d]`` are prepended at G's embedding layer; the batch is
    ``M × S`` right-padded sequences (pads sit after every real token, so positions 0..n-1 are
    the natural ones and the causal mask already hides pads; the padding mask is passed too).
    ``nb_ids``/``s_tau`` (``[R, k+1]``) are the fixed neighbourhoods of the batch's teacher
    tokens. The LM head runs on the ``M × R`` answer rows only, ``config.row_chunk`` rows at a
    time (:func:`chunked_rows`: Eq. 2 needs of each row only the neighbourhood gather, the top-m
    and the logsumexp normaliser, so no ``M × R × |V|`` tensor is ever kept for the backward);
    H_tail reuses the first ``config.tail_k`` rows of each turn (see ``mining_loss.tail_entropy``).
    """
    emb_layer = model.get_input_embeddings()
    emb = emb_layer.weight
    m_count, length, _ = prompts.shape
    s_count = batch.input_ids.shape[0]
    n_turns = len(batch.turn_ids)

    tok_emb = emb_layer(batch.input_ids)  # [S, n, d]
    p = prompts.to(tok_emb.dtype)
    seq = torch.cat(
        [
            p[:, None].expand(m_count, s_count, length, p.shape[-1]),
            tok_emb[None].expand(m_count, *tok_emb.shape),
        ],
        dim=2,
    ).reshape(m_count * s_count, length + tok_emb.shape[1], -1)
    n = batch.input_ids.shape[1]
    valid = torch.arange(n, device=batch.lengths.device)[None, :] < batch.lengths[:, None]
    mask = torch.cat([torch.ones(s_count, length, dtype=torch.bool, device=valid.device), valid], dim=1)
    mask = mask.repeat(m_count, 1).long()

    cand = torch.arange(m_count, device=batch.row_seq.device)[:, None]
    b_idx = (cand * s_count + batch.row_seq[None]).reshape(-1)
    p_idx = (length + batch.row_pos).repeat(m_count)
    hidden, head = row_hidden(model, seq, mask, b_idx, p_idx)  # [M*R, d] (or [M*R, V] logits)
    target = batch.row_target.repeat(m_count)
    nb_all, s_all = nb_ids.repeat(m_count, 1), s_tau.repeat(m_count, 1)
    tail = (batch.row_offset < config.tail_k).repeat(m_count)

    def terms(rows: Tensor, sl: slice) -> tuple[Tensor, Tensor]:
        logits = head(rows) if head is not None else rows
        unl, w = semantic_terms(
            logits,
            target[sl],
            emb,
            nb_all[sl],
            s_all[sl],
            lambda_exp=config.lambda_exp,
            top_m=config.top_m,
            detach_weight=detach_weight,
        )
        return w * unl, entropy(logits[tail[sl]])

    weighted, ent = chunked_rows(terms, hidden, config.row_chunk)
    segment = (cand * n_turns + batch.row_turn[None]).reshape(-1)
    sem = _segment_mean(weighted, segment, m_count * n_turns).view(m_count, n_turns)
    h_tail = _segment_mean(ent, segment[tail], m_count * n_turns).view(m_count, n_turns)
    return PromptScores(sem_exp=sem, h_tail=h_tail)
