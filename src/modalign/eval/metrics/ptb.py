"""coco-caption's tokenisation in Python: Stanford's PTBTokenizer, then the evaluation's punctuation filter.

pycocoevalcap runs `java edu.stanford.nlp.process.PTBTokenizer -preserveLines -lowerCase` (CoreNLP 3.4.1) and drops
the tokens in its PUNCTUATIONS list. What that does to captions, reproduced here:
- lower case; punctuation split off and dropped ("dog." -> "dog"), "..." and "--" too;
- clitics split and kept: "don't" -> "do n't", "can't" -> "ca n't", "won't" -> "wo n't", "it's" -> "it 's",
  "they're" -> "they 're", "cannot" -> "can not", "gonna" -> "gon na"; a plural possessive's "'" is dropped;
- hyphenated words, slashes, numbers with "," or "." and abbreviations stay whole: "black-and-white", "and/or",
  "1,000", "2.5", "st.", "u.s.", "etc.";
- "%" and "&" are tokens of their own, and kept ("50%" -> "50 %"), as are "!!" and "?!";
- brackets become -lrb- / -rrb- (and -lsb-, -rsb-, -lcb-, -rcb-) and are KEPT: the filter lists "-LRB-" in upper
  case, which the lower-cased output never matches.
tests/test_metrics_ptb.py checks this against the CoreNLP jar pycocoevalcap ships, where Java is installed.
"""

from __future__ import annotations

import re

PUNCTUATIONS = {
    "''",
    "'",
    "``",
    "`",
    "-LRB-",
    "-RRB-",
    "-LCB-",
    "-RCB-",
    ".",
    "?",
    "!",
    ",",
    ":",
    "-",
    "--",
    "...",
    ";",
}
_MAPPED = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-", '"': "''"}
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "etc", "vs", "inc", "ltd", "co", "corp", "mt", "ave", "prof", "gen",
    "sgt", "lt", "col", "capt", "gov", "sen", "rep", "rev", "bros",
}  # fmt: skip
_SPLIT_WORDS = {"cannot": ("can", "not"), "gonna": ("gon", "na"), "wanna": ("wan", "na"), "gotta": ("got", "ta")}
_CLITIC = re.compile(r"^(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$")
_TOKEN = re.compile(
    r"[^\s@]+@[^\s@]+\.[^\W\d_]+"  # e-mail addresses
    r"|\d+(?:[.,:]\d+)+"  # 1,000  2.5  10:30
    r"|\.\.\.|--|[!?]{2,}"  # "!!" and "?!" are tokens the filter does not list: kept
    r"|'n'|'\d+s"  # rock 'n' roll, the '90s
    r"|[^\W\d_](?:\.[^\W\d_])+\.?"  # u.s.  u.s.a  e.g.  p.m.
    r"|[^\W_]+(?:[-/&][^\W_]+|'[^\W\d_]+)*'?"  # words, black-and-white, and/or, don't, o'neil, kids'
    r"|\S"
)


def _word(token: str) -> list[str]:
    if token in _SPLIT_WORDS:
        return list(_SPLIT_WORDS[token])
    if token.endswith("'") and len(token) > 1 and token != "'n'":  # kids' -> kids '
        return [token[:-1], "'"]
    m = _CLITIC.match(token)
    return [m.group(1), m.group(2)] if m else [token]


def ptb_tokenize(text: str) -> str:
    """Space-joined tokens as coco-caption compares them (see the module docstring)."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    out: list[str] = []
    chunks = text.split()
    for c, chunk in enumerate(chunks):
        before_number = c + 1 < len(chunks) and chunks[c + 1][:1].isdigit()
        for m in _TOKEN.finditer(chunk):
            tok = m.group(0)
            period = chunk[m.end() : m.end() + 1] == "." and chunk[m.end() : m.end() + 2] != ".."
            if period and (tok in _ABBREVIATIONS or (tok == "no" and before_number)):
                tok += "."  # "st." and "no. 5" keep their period (it also comes as a token of its own: dropped)
            out.extend(_word(_MAPPED.get(tok, tok)))
    return " ".join(t for t in out if t not in PUNCTUATIONS)
