"""Text-only upper bound of the knowledge-transfer experiment: the LM is told the item's true class in words, no
image ("This is a photo of a sneaker. Is this worn on the feet? ..."), and answers yes or no by likelihood, as the
`vqa` suite's likelihood mode answers with an image. Same questions (fashion-mnist, task knowledge, test split).

  OMP_NUM_THREADS=1 python research/knowledge-transfer/text_only.py --lm smollm2-135m --n 400
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

import modalign as ma
from modalign.data.worlds.shapes.vqa import SHORT_ANSWER
from modalign.eval import metrics as M


def r_is(row: dict, choice: str) -> bool:
    return row["answer"].lower() == choice.lower()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lm", default="smollm2-135m")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--system-prompt", default="You are a helpful assistant.")
    ap.add_argument("--choices", default="yes,no")
    ap.add_argument(
        "--content-free",
        help="calibrate (Zhao et al. 2021, 'Calibrate Before Use'): subtract each question's yes-no margin when the "
        "item is this content-free phrase (e.g. 'an item') instead of the class",
    )
    ap.add_argument("--out", help="also write the result here (JSON), for table.py")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = ma.VisionLanguageModel(lm=args.lm, system_prompt=args.system_prompt).eval()
    ds = ma.dataset("fashion-mnist", split="test", task="knowledge", n=args.n)
    rows = [ds[i] for i in range(len(ds))]
    prompts = [f"This is a photo of a {r['meta']['class']}. {r['question']} {SHORT_ANSWER}" for r in rows]
    choices = args.choices.split(",")
    scores = []
    for c in choices:
        col = []
        for lo in range(0, len(rows), 16):
            col.append(model.score(None, [c] * len(prompts[lo : lo + 16]), prompts[lo : lo + 16]).numpy())
        scores.append(np.concatenate(col))
    if args.content_free:
        free = [f"This is a photo of {args.content_free}. {r['question']} {SHORT_ANSWER}" for r in rows]
        for k, c in enumerate(choices):
            col = [
                model.score(None, [c] * len(free[lo : lo + 16]), free[lo : lo + 16]).numpy()
                for lo in range(0, len(rows), 16)
            ]
            scores[k] = scores[k] - np.concatenate(col)
    pred = [["yes", "no"][k] for k in np.stack(scores, 1).argmax(1)]
    s = M.vqa_score(pred, [r["answer"] for r in rows], [r["qtype"] for r in rows])
    result = {"lm": args.lm, "choices": choices, "n": len(rows), "content_free": args.content_free}
    result.update({"accuracy": s["accuracy"], **s["per_qtype"]})
    # does the margin log p(first) - log p(second) separate the answers at all, whatever its offset? (ROC AUC)
    margin = scores[0] - scores[1]
    for kind in sorted({r["qtype"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["qtype"] == kind]
        pos = [margin[i] for i in idx if r_is(rows[i], choices[0])]
        neg = [margin[i] for i in idx if not r_is(rows[i], choices[0])]
        result[f"auc_{kind}"] = float(np.mean([a > b for a in pos for b in neg])) if pos and neg else None
    print(json.dumps(result))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh)


if __name__ == "__main__":
    main()
