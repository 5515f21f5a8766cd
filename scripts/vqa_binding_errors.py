"""Are a VLM's wrong attribute answers binding errors? Colour, shape and position questions on the shapes world.

`What color is the star?` answered with a colour that belongs to *another object in the scene* is a binding error
(the model read an object, the wrong one); a colour that no object has is a perception error. The same for
`What shape is the red object?` and `Where is the red star?`. Prints, per question type, how many answers are right,
wrong with another object's attribute, and wrong with an attribute absent from the scene; then accuracy by the number
of objects in the scene: right in one-object scenes but near 1/k with k objects means the attribute is read from the
image but from an object picked without regard to the question. `--context description` asks each question after a
first turn holding the scene's true description (which states every object's colour, shape and place): a model that
copies answers from text in context scores higher there than on the question alone. Relation questions (`Is the red
star left of the blue circle?`, yes or no) are tallied by truth and answer: right while saying "yes" to everything
is a bias, not a comparison.

    OMP_NUM_THREADS=1 python scripts/vqa_binding_errors.py runs/llava-shapes-long/final --split heldout --scenes 150
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
import torch

from modalign.data.language import detailed_caption
from modalign.data.render import render
from modalign.data.vqa import SHORT_ANSWER
from modalign.eval.metrics.vqa import normalize_answer

ATTRIBUTES = ("color", "shape", "position")  # question types named for the object attribute they ask for
YES_NO = ("relation",)  # yes/no question types, tallied by truth and answer
CONTEXTS = ("none", "description")


def after_description(model, scene: dict, question: str) -> str:
    """The rendered prompt: "Describe the image." answered with the scene's true description, then `question`."""
    from modalign.models.chat_template import to_messages

    text = detailed_caption(scene, np.random.default_rng(0))
    turns = [{"from": "human", "value": "<image>\nDescribe the image."}, {"from": "gpt", "value": text},
             {"from": "human", "value": f"{question} {SHORT_ANSWER}"}]
    return model.prompts.render(to_messages(turns), add_generation_prompt=True)


def classify(prediction: str, truth: str, objects: list[dict], qtype: str) -> str:
    """Attributes: "right", "binding" (another object's attribute) or "absent" (no object in the scene has it).
    Yes/no types: "right-yes", "right-no", "false-yes", "false-no" or "other" (neither word)."""
    pred, truth = normalize_answer(prediction), normalize_answer(truth)
    if qtype in YES_NO:
        if pred not in ("yes", "no"):
            return "other"
        return f"{'right' if pred == truth else 'false'}-{pred}"
    if pred == truth:
        return "right"
    return "binding" if any(pred == o[qtype] for o in objects) else "absent"


def tally(model, world, qtypes, batch_size: int = 16, context: str = "none"
          ) -> tuple[dict[str, Counter], dict[str, dict[int, Counter]]]:
    """(kinds of answer per question type, {qtype: {objects in the scene: Counter(right=, asked=)}})."""
    if context not in CONTEXTS:
        raise ValueError(f"context is one of {list(CONTEXTS)}; got {context!r}")
    unknown = [q for q in qtypes if q not in ATTRIBUTES + YES_NO]
    if unknown:
        raise ValueError(f"question types {unknown} are not tallied here; choose from {list(ATTRIBUTES + YES_NO)}")
    rows = []
    for i in range(len(world)):
        rec = world.record(i)  # no pixels yet: images are rendered a chunk at a time
        if rec["qtype"] in qtypes:
            rows.append((rec, world.scene(rec["scene_index"])))
    out = {q: Counter() for q in qtypes}
    by_objects = {q: {} for q in qtypes}
    with torch.no_grad():
        for lo in range(0, len(rows), batch_size):
            chunk = rows[lo: lo + batch_size]
            images = [render(scene) for _, scene in chunk]
            if context == "description":
                preds = model.complete(images, [after_description(model, scene, rec["question"]) for rec, scene in chunk],
                                       max_new_tokens=8)
            else:
                preds = model.generate(images, [f"{rec['question']} {SHORT_ANSWER}" for rec, _ in chunk],
                                       max_new_tokens=8)
            for (rec, scene), pred in zip(chunk, preds):
                kind = classify(pred, rec["answer"], scene["objects"], rec["qtype"])
                out[rec["qtype"]][kind] += 1
                n = by_objects[rec["qtype"]].setdefault(len(scene["objects"]), Counter())
                n["asked"] += 1
                n["right"] += kind.startswith("right")
    return out, by_objects


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--split", default="heldout")
    ap.add_argument("--scenes", type=int, default=150)
    ap.add_argument("--qtypes", default="color,shape,position,relation")
    ap.add_argument("--context", default="none", choices=CONTEXTS)
    args = ap.parse_args(argv)
    from modalign.data.shapes import ShapesWorld
    from modalign.models import load_model

    torch.set_num_threads(1)
    model = load_model(args.checkpoint).eval()
    world = ShapesWorld(task="vqa", n=args.scenes, split=args.split)
    kinds, by_objects = tally(model, world, args.qtypes.split(","), context=args.context)
    for qtype, c in kinds.items():
        n = sum(c.values())
        if qtype in YES_NO:
            said_yes = c["right-yes"] + c["false-yes"]
            print(f"{qtype}: {n} questions, right {c['right-yes'] + c['right-no']}, answered yes {said_yes} "
                  f"({said_yes / max(n, 1):.2f}); truth yes: right {c['right-yes']}, said no {c['false-no']}; "
                  f"truth no: right {c['right-no']}, said yes {c['false-yes']}; neither word {c['other']}")
        else:
            print(f"{qtype}: {n} questions, right {c['right']}, wrong with another object's {qtype} {c['binding']}, "
                  f"wrong with one no object has {c['absent']}")
        print("  right by objects in the scene: " + ", ".join(
            f"{k}: {v['right']}/{v['asked']} ({v['right'] / v['asked']:.2f})" for k, v in sorted(by_objects[qtype].items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
