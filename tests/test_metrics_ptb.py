"""coco-caption's tokenisation in Python: hand cases, and the same tokens as the Stanford PTBTokenizer jar that
pycocoevalcap ships (run with Java where it is installed) followed by coco-caption's punctuation filter."""

import shutil
import subprocess
from pathlib import Path

import pytest

from modalign.eval.metrics import caption_metrics
from modalign.eval.metrics.ptb import PUNCTUATIONS, ptb_tokenize

CAPTIONS = [
    "A man's dog doesn't like the black-and-white cat.",
    'Two people (a man and a woman) are "walking" down the street; it\'s sunny!',
    "The bus is at 5th St. near the 7-Eleven, and/or the cafe & bar -- maybe.",
    "There are 1,000 birds, 50% of them flying at 2.5 m/s... wow",
    "I can't believe it's not butter: cannot, won't, gonna, I'm, they're, we've, you'll, he'd.",
    "The kids' toys are on the table ... a cat's toy? Yes.",
    "A U.S. flag and a Mr. Smith sign over the door, etc.",
    "No. 5 is the bus number and the answer is no.",
    "A café with crème brûlée, naïve art.",
    "Someone's phone's on the table at 3 p.m. with e.g. pens.",
    "He said \"hello\" and 'bye' to the dog.",
    "[A dog] {on a bed}.",
    "It's 10:30 and the score is 3-2.",
    "An old-fashioned 1950's car with U.S.A plates.",
    "A 3-year-old boy in a T-shirt eats 1/2 of a pizza.",
    "O'Neil's pub sign says rock 'n' roll since the '90s.",
    "A sign reads 'STOP'. Hello!! What?!",
    "The 2nd dog is 5'6\" tall and 50-50 brown.",
    "Washington D.C. at 7 a.m. near St. Louis.",
    "Two dogs' leashes are tied to a pole.",
    "A bathroom with a toilet , sink , and shower",
    "The dog is wearing a hat...and sunglasses",
    "There's a 100% chance they're going to win.",
    "a kitchen with stainless steel appliances and granite counter tops",
]


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("A man's dog doesn't like the black-and-white cat.", "a man 's dog does n't like the black-and-white cat"),
        ("I can't; cannot; won't.", "i ca n't can not wo n't"),
        ("A bowl (of fruit) at 5th St.", "a bowl -lrb- of fruit -rrb- at 5th st."),  # coco-caption keeps -lrb-
        ("50% of 1,000 kids' toys.", "50 % of 1,000 kids toys"),
    ],
)
def test_ptb_tokenize_by_hand(text, tokens):
    assert ptb_tokenize(text) == tokens


def test_caption_metrics_take_the_tokenizer():
    hyp, ref = ["a dog doesn't run"], [["a dog does n't run"]]
    assert caption_metrics(hyp, ref, ptb_tokenize)["BLEU-4"] == pytest.approx(1.0)
    assert caption_metrics(hyp, ref)["BLEU-1"] < 1.0  # simple: "doesn't" is one token, "does n't" two


JAR_DIR = None
try:
    import pycocoevalcap.tokenizer.ptbtokenizer as _ptb

    JAR_DIR = Path(_ptb.__file__).parent
except ImportError:
    pass


@pytest.mark.skipif(
    shutil.which("java") is None or JAR_DIR is None or not (JAR_DIR / "stanford-corenlp-3.4.1.jar").exists(),
    reason="needs Java and pycocoevalcap's CoreNLP jar",
)
def test_same_tokens_as_the_stanford_ptb_tokenizer(tmp_path):
    path = tmp_path / "captions.txt"
    path.write_text("\n".join(CAPTIONS) + "\n")
    cmd = ["java", "-cp", "stanford-corenlp-3.4.1.jar", "edu.stanford.nlp.process.PTBTokenizer"]
    out = subprocess.run([*cmd, "-preserveLines", "-lowerCase", str(path)], cwd=JAR_DIR, capture_output=True, text=True)
    lines = out.stdout.split("\n")[: len(CAPTIONS)]
    theirs = [" ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATIONS) for line in lines]
    assert [ptb_tokenize(c) for c in CAPTIONS] == theirs
