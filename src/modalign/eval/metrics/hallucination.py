"""Object hallucination: POPE (yes/no probing) and CHAIR (objects mentioned in free captions).

POPE (Li et al. 2023): parse the first sentence; "no" or "not" as a word anywhere in it -> no, else yes. Metrics with
yes as the positive class, and the yes-ratio of the PREDICTIONS (lmms-eval uses the ground truth, always 0.5).
CHAIR (Rohrbach et al. 2018): object mentions (singularised, synonyms -> canonical); CHAIR_i = hallucinated mentions /
all mentions; CHAIR_s = captions with >= 1 hallucinated object / captions; recall = |truth ∩ mentioned| / |truth|;
all_named = captions that mention every one of their truth objects / captions (recall counts objects, this counts
captions: "does the caption name every object?"). `phrase_coverage` does the same for attribute phrases.
"""

from __future__ import annotations

import re

import numpy as np

_WORD = re.compile(r"[a-z]+")


def parse_yes_no(text: str) -> str:
    """POPE's parser: first sentence, commas dropped, "no"/"not" as a word -> "no", otherwise "yes"."""
    first = text.split(".")[0].replace(",", " ").lower()
    words = set(first.split())
    return "no" if ("no" in words or "not" in words) else "yes"


def pope_metrics(preds: list[str], labels: list[str]) -> dict[str, float]:
    """accuracy, precision, recall, F1 (yes positive) and yes_ratio = predicted yes / N."""
    if len(preds) != len(labels) or not preds:
        raise ValueError(f"need one prediction per label (non-empty), got {len(preds)} and {len(labels)}")
    bad = {v for v in list(preds) + list(labels) if v not in ("yes", "no")}
    if bad:
        raise ValueError(f"POPE predictions/labels must be 'yes' or 'no' (parse text with parse_yes_no), got {bad}")
    p = np.array([v == "yes" for v in preds])
    t = np.array([v == "yes" for v in labels])
    tp, fp, fn = int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": float((p == t).mean()),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "yes_ratio": float(p.mean()),
        "n": len(preds),
    }


def pope_from_likelihood(logp_yes, logp_no) -> list[str]:
    """Likelihood variant: answer yes iff log P(yes) > log P(no)."""
    y, n = np.asarray(logp_yes, dtype=np.float64), np.asarray(logp_no, dtype=np.float64)
    return ["yes" if a > b else "no" for a, b in zip(y, n)]


def singularize(word: str) -> str:
    """Rule-based English singular for object nouns (enough for captions; irregulars listed)."""
    irregular = {
        "people": "person",
        "men": "man",
        "women": "woman",
        "children": "child",
        "mice": "mouse",
        "geese": "goose",
        "feet": "foot",
        "teeth": "tooth",
        "knives": "knife",
        "leaves": "leaf",
        "shelves": "shelf",
        "wolves": "wolf",
        "halves": "half",
        "buses": "bus",
        "glasses": "glass",
    }
    if word in irregular:
        return irregular[word]
    if len(word) <= 3 or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "zes", "oes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def extract_objects(caption: str, vocabulary: dict[str, list[str]]) -> list[str]:
    """Canonical object mentions in order (repeats kept), longest synonym phrase first, singularised words."""
    words = [singularize(w) for w in _WORD.findall(caption.lower())]
    phrases: dict[tuple[str, ...], str] = {}
    for canon, syns in vocabulary.items():
        for s in [canon, *syns]:
            phrases[tuple(singularize(w) for w in _WORD.findall(s.lower()))] = canon
    max_len = max((len(p) for p in phrases), default=1)
    found, i = [], 0
    while i < len(words):
        for n in range(min(max_len, len(words) - i), 0, -1):
            canon = phrases.get(tuple(words[i : i + n]))
            if canon is not None:
                found.append(canon)
                i += n
                break
        else:
            i += 1
    return found


def chair(captions: list[str], truths: list[list[str]], vocabulary: dict[str, list[str]]) -> dict:
    """CHAIR_i, CHAIR_s, recall, and per caption the mentioned and hallucinated objects (for the gallery)."""
    if len(captions) != len(truths) or not captions:
        raise ValueError(f"need one truth list per caption (non-empty), got {len(captions)} and {len(truths)}")
    unknown = {o for t in truths for o in t if o not in vocabulary}
    if unknown:
        raise ValueError(f"ground-truth objects {sorted(unknown)} are not canonical names of the vocabulary")
    mentions = hallucinated = bad_caps = complete = 0
    covered = total_truth = 0
    per = []
    for cap, truth in zip(captions, truths):
        objs = extract_objects(cap, vocabulary)
        truth_set, named = set(truth), set(objs)
        hall = [o for o in objs if o not in truth_set]
        mentions += len(objs)
        hallucinated += len(hall)
        bad_caps += bool(hall)
        covered += len(truth_set & named)
        total_truth += len(truth_set)
        complete += truth_set <= named
        per.append({"mentioned": objs, "hallucinated": sorted(set(hall))})
    return {
        "CHAIR_i": hallucinated / mentions if mentions else 0.0,
        "CHAIR_s": bad_caps / len(captions),
        "recall": covered / total_truth if total_truth else 0.0,
        "all_named": complete / len(captions),
        "mentions": mentions,
        "per_caption": per,
    }


def phrase_coverage(captions: list[str], phrases: list[list[str]]) -> dict[str, float]:
    """How many of each image's attribute phrases ("red circle") occur in its caption, as whole words.

    phrase_recall = phrases found / phrases; phrases_all_named = captions containing all of theirs / captions.
    Matching is on lower-cased word sequences, so "a large red circle" contains "red circle" and "bored circle" does
    not; synonyms are not mapped (use chair for that).
    """
    if len(captions) != len(phrases) or not captions:
        raise ValueError(f"need one phrase list per caption (non-empty), got {len(captions)} and {len(phrases)}")

    def padded_words(text: str) -> str:  # " a large red circle ": substring tests then match whole words only
        return " " + " ".join(_WORD.findall(text.lower())) + " "

    found = total = complete = 0
    for cap, wanted in zip(captions, phrases):
        text = padded_words(cap)
        hits = [padded_words(p) in text for p in wanted]
        found += sum(hits)
        total += len(hits)
        complete += all(hits)
    return {"phrase_recall": found / total if total else 0.0, "phrases_all_named": complete / len(captions)}
