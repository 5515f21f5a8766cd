"""Caption metrics: BLEU-1..4, ROUGE-L, CIDEr-D on tokenised captions (COCO caption evaluation definitions).

- BLEU: corpus level (clipped n-gram counts summed over the corpus), brevity penalty with the reference length
  closest to each hypothesis (ties -> the shorter one).
- ROUGE-L: per caption F-measure (beta 1.2) of the max LCS precision and max LCS recall over references; mean.
- CIDEr-D: n = 1..4, TF-IDF vectors with IDF from the evaluation set's references, hypothesis weights clipped to the
  reference's, Gaussian length penalty (sigma 6), mean over n and references, x10.
Captions are compared as whitespace tokens; `tokenize` is a Java-free stand-in for the PTB tokenizer.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

_PUNCT = re.compile(r"[^\w\s']|_")


def tokenize(text: str) -> str:
    """Lowercase, drop punctuation (keep apostrophes inside words), collapse whitespace."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def _ngrams(words: list[str], n: int) -> Counter:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def _check(hyps, refs) -> None:
    if len(hyps) != len(refs) or not hyps:
        raise ValueError(f"need one hypothesis per reference list (non-empty), got {len(hyps)} and {len(refs)}")
    if any(len(r) == 0 for r in refs):
        raise ValueError("every hypothesis needs at least one reference caption")


def bleu(hyps: list[str], refs: list[list[str]], n: int = 4) -> list[float]:
    """Corpus BLEU-1..n; returns [BLEU-1, ..., BLEU-n]."""
    _check(hyps, refs)
    correct, guess = [0] * n, [0] * n
    hyp_len = ref_len = 0
    for hyp, rs in zip(hyps, refs):
        h = hyp.split()
        rws = [r.split() for r in rs]
        hyp_len += len(h)
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in rws)[1]  # closest, shorter on ties
        for k in range(1, n + 1):
            hc = _ngrams(h, k)
            maxref: Counter = Counter()
            for r in rws:
                maxref |= _ngrams(r, k)  # elementwise max over references
            correct[k - 1] += sum(min(c, maxref[g]) for g, c in hc.items())
            guess[k - 1] += max(0, len(h) - k + 1)
    bp = 1.0 if hyp_len >= ref_len else (math.exp(1 - ref_len / hyp_len) if hyp_len > 0 else 0.0)
    out, logsum = [], 0.0
    for k in range(n):
        if correct[k] == 0 or guess[k] == 0:
            logsum = -math.inf
        else:
            logsum += math.log(correct[k] / guess[k])
        out.append(bp * math.exp(logsum / (k + 1)) if logsum > -math.inf else 0.0)
    return out


def _lcs(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(hyps: list[str], refs: list[list[str]], beta: float = 1.2) -> tuple[float, list[float]]:
    """Mean ROUGE-L F (beta 1.2) and the per-caption scores."""
    _check(hyps, refs)
    scores = []
    for hyp, rs in zip(hyps, refs):
        h = hyp.split()
        prec, rec = [], []
        for r in rs:
            rw = r.split()
            lcs = _lcs(rw, h)
            prec.append(lcs / len(h) if h else 0.0)
            rec.append(lcs / len(rw) if rw else 0.0)
        p, r_ = max(prec), max(rec)
        scores.append((1 + beta**2) * p * r_ / (r_ + beta**2 * p) if p > 0 and r_ > 0 else 0.0)
    return float(np.mean(scores)), scores


def cider_d(hyps: list[str], refs: list[list[str]], n: int = 4, sigma: float = 6.0) -> tuple[float, list[float]]:
    """Mean CIDEr-D and the per-caption scores; IDF comes from these references (one document per image)."""
    _check(hyps, refs)
    ref_grams = [[{k: _ngrams(r.split(), k) for k in range(1, n + 1)} for r in rs] for rs in refs]
    df: Counter = Counter()
    for rg in ref_grams:
        df.update({g for per_ref in rg for k in per_ref for g in per_ref[k]})
    log_n = math.log(len(refs))

    def tfidf(grams: dict) -> tuple[list[dict], list[float]]:
        vec = [{g: c * (log_n - math.log(max(1.0, df[g]))) for g, c in grams[k].items()} for k in range(1, n + 1)]
        return vec, [math.sqrt(sum(v * v for v in d.values())) for d in vec]

    scores = []
    for hyp, rg in zip(hyps, ref_grams):
        hw = hyp.split()
        hvec, hnorm = tfidf({k: _ngrams(hw, k) for k in range(1, n + 1)})
        total = np.zeros(n)
        for r, rgrams in zip(refs[len(scores)], rg):
            rvec, rnorm = tfidf(rgrams)
            delta = len(hw) - len(r.split())
            penalty = math.exp(-(delta**2) / (2 * sigma**2))
            for k in range(n):
                dot = sum(min(v, rvec[k].get(g, 0.0)) * rvec[k].get(g, 0.0) for g, v in hvec[k].items())
                if hnorm[k] > 0 and rnorm[k] > 0:
                    dot /= hnorm[k] * rnorm[k]
                total[k] += dot * penalty
        scores.append(float(total.mean() / len(rg) * 10.0))
    return float(np.mean(scores)), scores


def caption_metrics(hyps: list[str], refs: list[list[str]], tokenizer=tokenize) -> dict[str, float]:
    """All three on tokenised text: BLEU-1..4, ROUGE-L, CIDEr-D (`tokenizer`: text -> space-joined tokens, e.g.
    `ptb.ptb_tokenize` for coco-caption's own tokenisation)."""
    th = [tokenizer(h) for h in hyps]
    tr = [[tokenizer(r) for r in rs] for rs in refs]
    b = bleu(th, tr)
    return {
        **{f"BLEU-{i + 1}": v for i, v in enumerate(b)},
        "ROUGE-L": rouge_l(th, tr)[0],
        "CIDEr-D": cider_d(th, tr)[0],
    }
