"""VQA accuracy with the VQAv2 answer normalisation and the 10-annotator leave-one-out rule.

acc(a) = mean over leave-one-annotator-out subsets of min(1, #matches in the subset / 3). With a single ground-truth
answer there is no subset to leave one out of, so it reduces to exact match after normalisation.
Normalisation follows the official vqaEval.py (punctuation, number words -> digits, articles, contractions); its
period regex has a typo (`(?!<=\\d)`), here the intended look-behind is used so "2.5" keeps its period.
"""

from __future__ import annotations

import re

_NUMBERS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
_ARTICLES = {"a", "an", "the"}
# Apostrophe-less forms -> the canonical spelling (the official table, minus its rare archaic entries).
_CONTRACTIONS = {
    "aint": "ain't",
    "arent": "aren't",
    "cant": "can't",
    "couldve": "could've",
    "couldnt": "couldn't",
    "couldntve": "couldn't've",
    "didnt": "didn't",
    "doesnt": "doesn't",
    "dont": "don't",
    "hadnt": "hadn't",
    "hasnt": "hasn't",
    "havent": "haven't",
    "hed": "he'd",
    "hes": "he's",
    "howd": "how'd",
    "howll": "how'll",
    "hows": "how's",
    "im": "i'm",
    "ive": "i've",
    "isnt": "isn't",
    "itd": "it'd",
    "itll": "it'll",
    "maam": "ma'am",
    "mightnt": "mightn't",
    "mightve": "might've",
    "mustnt": "mustn't",
    "mustve": "must've",
    "neednt": "needn't",
    "oclock": "o'clock",
    "oughtnt": "oughtn't",
    "shant": "shan't",
    "shouldve": "should've",
    "shouldnt": "shouldn't",
    "somebodys": "somebody's",
    "someones": "someone's",
    "thats": "that's",
    "theres": "there's",
    "theyd": "they'd",
    "theyll": "they'll",
    "theyre": "they're",
    "theyve": "they've",
    "wasnt": "wasn't",
    "weve": "we've",
    "werent": "weren't",
    "whatll": "what'll",
    "whatre": "what're",
    "whats": "what's",
    "whens": "when's",
    "whered": "where'd",
    "wheres": "where's",
    "whod": "who'd",
    "wholl": "who'll",
    "whos": "who's",
    "whove": "who've",
    "whyll": "why'll",
    "whyre": "why're",
    "whys": "why's",
    "wont": "won't",
    "wouldve": "would've",
    "wouldnt": "wouldn't",
    "yall": "y'all",
    "youd": "you'd",
    "youll": "you'll",
    "youre": "you're",
    "youve": "you've",
}
_PUNCT = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
_PERIOD = re.compile(r"(?<!\d)(\.)(?!\d)")
_COMMA_NUM = re.compile(r"(\d)(,)(\d)")


def _punctuation(text: str) -> str:
    out = text
    for p in _PUNCT:
        # A mark next to a space (or a thousands comma anywhere) is deleted; one inside a word splits it.
        if f"{p} " in text or f" {p}" in text or _COMMA_NUM.search(text):
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD.sub("", out)


def normalize_answer(text: str) -> str:
    text = text.replace("\n", " ").replace("\t", " ").strip()
    words = []
    for w in _punctuation(text).lower().split():
        w = _NUMBERS.get(w, w)
        if w not in _ARTICLES:
            words.append(_CONTRACTIONS.get(w, w))
    return " ".join(words)


def vqa_accuracy(prediction: str, answers: list[str]) -> float:
    """VQAv2 accuracy of one prediction against its annotators' answers."""
    if not answers:
        raise ValueError("vqa_accuracy needs at least one ground-truth answer")
    pred = normalize_answer(prediction)
    gts = [normalize_answer(a) for a in answers]
    if len(gts) == 1:
        return float(pred == gts[0])
    accs = []
    for i in range(len(gts)):
        matches = sum(1 for j, g in enumerate(gts) if j != i and g == pred)
        accs.append(min(1.0, matches / 3.0))
    return sum(accs) / len(accs)


def any_match_accuracy(prediction: str, answers: list[str]) -> float:
    """1.0 if the prediction equals any of the accepted answers after VQAv2 normalisation, else 0.0."""
    if not answers:
        raise ValueError("any_match_accuracy needs at least one accepted answer")
    return float(normalize_answer(prediction) in {normalize_answer(a) for a in answers})


RULES = {"vqa": vqa_accuracy, "any": any_match_accuracy}


def vqa_score(
    predictions: list[str], answers: list[list[str] | str], qtypes: list[str] | None = None, rule: str = "vqa"
) -> dict:
    """Mean accuracy overall and per question type; `answers` items may be one string or a list.

    rule "vqa": a list holds annotators' answers (VQAv2's leave-one-out rule); "any": a list holds alternatives,
    any of which is right (exact match after normalisation)."""
    if rule not in RULES:
        raise ValueError(f"unknown VQA scoring rule {rule!r}; choose one of {', '.join(RULES)}")
    if len(predictions) != len(answers) or not predictions:
        raise ValueError(f"need one answer set per prediction, got {len(predictions)} and {len(answers)}")
    score = RULES[rule]
    accs = [score(p, [a] if isinstance(a, str) else list(a)) for p, a in zip(predictions, answers)]
    out = {"accuracy": sum(accs) / len(accs), "per_item": accs}
    if qtypes is not None:
        by: dict[str, list[float]] = {}
        for t, a in zip(qtypes, accs):
            by.setdefault(t, []).append(a)
        out["per_qtype"] = {t: sum(v) / len(v) for t, v in sorted(by.items())}
    return out
