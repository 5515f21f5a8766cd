"""Beam search over a KV-cached causal LM, with transformers' semantics so that the same weights give the same text.

Each row keeps `num_beams` running beams and up to `num_beams` finished hypotheses. At every step the 2K best
continuations over all beams are taken (more when there are several stop tokens, as transformers does); those that
end in a stop token (or reach `max_new_tokens`) and rank among the first K become finished hypotheses, scored by
their summed log-probability divided by (generated length) ** `length_penalty`; the best K others keep running.
A row stops taking hypotheses once its running best, at the current length, can no longer beat its worst finished
one (`early_stopping=False`, transformers' default), as soon as it holds K finished ones (`True`), or only when it
could not win even at the longest length (`"never"`). The result is each row's best finished hypothesis.

The caller gives the first step's logits (rows repeated K times: row b's beams are rows b*K .. b*K+K-1) and an
`advance(tokens, order)` that reorders its cache rows by `order`, feeds `tokens` and returns the next logits.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

NEG = -1.0e9  # transformers' "impossible" score: large enough to lose, small enough to add without overflow


def check_beam_args(num_beams, length_penalty, early_stopping) -> None:
    if not isinstance(num_beams, int) or isinstance(num_beams, bool) or num_beams < 1:
        raise ValueError(f"num_beams must be an integer >= 1 (1 = greedy), got {num_beams!r}")
    if not isinstance(length_penalty, (int, float)) or isinstance(length_penalty, bool):
        raise ValueError(f"length_penalty must be a number (1.0 = score per generated token), got {length_penalty!r}")
    if early_stopping not in (True, False, "never"):
        raise ValueError(f"early_stopping must be True, False or 'never', got {early_stopping!r}")


def _gather(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x [B, M, ...] picked along dim 1 by idx [B, N] -> [B, N, ...]."""
    return x.gather(1, idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand(*idx.shape, *x.shape[2:]))


@torch.no_grad()
def beam_search(
    logits: torch.Tensor,
    advance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    num_beams: int,
    max_new_tokens: int,
    stop_ids: list[int],
    pad_id: int,
    length_penalty: float = 1.0,
    early_stopping: bool | str = False,
    process: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Best hypothesis per row, tokens [B, S] (stop token included, padded with `pad_id`).

    logits: [B*K, V] for the first new token. `process(log_probs [B*K, V], sequences [B*K, t])` may reshape the
    log-probabilities (e.g. a repetition penalty), as transformers' logits processors do in beam search.
    """
    k = num_beams
    bk, v = logits.shape
    b = bk // k
    stop = torch.tensor(stop_ids, dtype=torch.long)
    keep = min(max(2, 1 + len(stop_ids)) * k, k * v)
    run_scores = torch.full((b, k), NEG)
    run_scores[:, 0] = 0.0  # the K copies of a row start as one beam
    run_seqs = torch.zeros(b, k, 0, dtype=torch.long)
    fin_seqs = torch.full((b, k, max_new_tokens), pad_id, dtype=torch.long)
    fin_scores = torch.full((b, k), NEG)
    fin_done = torch.zeros(b, k, dtype=torch.bool)
    fin_len = torch.zeros(b, k, dtype=torch.long)
    improvable = torch.ones(b, dtype=torch.bool)
    first_k = torch.arange(keep) < k
    for t in range(max_new_tokens):
        logp = logits.float().log_softmax(-1)
        if process is not None:
            logp = process(logp, run_seqs.reshape(bk, t))
        acc = (logp.view(b, k, v) + run_scores[:, :, None]).view(b, k * v)
        top_scores, top_idx = acc.topk(keep, dim=-1)  # [B, 2K]
        src, tok = top_idx // v, top_idx % v
        cand = torch.cat([_gather(run_seqs, src), tok[:, :, None]], dim=2)  # [B, 2K, t+1]
        hits = torch.isin(tok, stop) | (t + 1 == max_new_tokens)
        # the best K continuations that did not stop keep running
        live = top_scores + hits.float() * NEG
        nxt = live.topk(k, dim=-1).indices
        run_seqs, run_scores, beam_src = _gather(cand, nxt), _gather(live, nxt), _gather(src, nxt)
        # stopped ones among the first K become hypotheses when the row can still take them
        fin = top_scores / float(t + 1) ** length_penalty
        closed = ~improvable | (fin_done.all(-1) & (early_stopping is True))
        fin = fin + closed[:, None].float() * NEG + (~(hits & first_k)).float() * NEG
        padded = torch.full((b, keep, max_new_tokens), pad_id, dtype=torch.long)
        padded[:, :, : t + 1] = cand
        best = torch.cat([fin_scores, fin], 1).topk(k, dim=-1).indices
        fin_seqs = _gather(torch.cat([fin_seqs, padded], 1), best)
        fin_scores = _gather(torch.cat([fin_scores, fin], 1), best)
        fin_done = _gather(torch.cat([fin_done, hits & first_k], 1), best)
        fin_len = _gather(torch.cat([fin_len, torch.full((b, keep), t + 1)], 1), best)
        # can the running best still beat the worst hypothesis held?
        length = max_new_tokens if (early_stopping == "never" and length_penalty > 0) else t + 1
        best_running = run_scores[:, :1] / float(length) ** length_penalty
        worst = torch.where(fin_done, fin_scores.min(-1, keepdim=True).values, torch.full_like(fin_scores, NEG))
        improvable &= (best_running > worst).any(-1)
        if not improvable.any() or (early_stopping is True and fin_done.all()) or hits.all():
            break
        order = (beam_src + torch.arange(b)[:, None] * k).view(bk)
        logits = advance(run_seqs[:, :, -1].reshape(bk), order)
    return fin_seqs[:, 0, : int(fin_len[:, 0].max())]
