"""Where do a VLM's detailed descriptions of shapes-world scenes go wrong? Object by object, against the scene graph.

A description opens with the number of objects, then gives one sentence per object. Each sentence's subject is read
as its first colour word and first shape word (every template names the subject before the neighbour it relates to).
Per description this prints whether the stated count is right, and sorts the scene's objects into: named (a sentence
has its colour and shape), named with the wrong colour (its shape, but under a colour of an object of that shape
absent from the scene), and skipped; and sentences into repeats (a subject already named) and inventions (a subject
that no object in the scene has). Tallied by the number of objects in the scene, so that a model losing track in
crowded scenes shows; and objects named split by whether their colour-shape pair is one the split holds out of
training (every held-out scene has one), so that a model that will not write a pair it never read shows; and split by
whether another object of the scene has the same colour, so that a model binding a colour word to the wrong shape
shows.

    OMP_NUM_THREADS=1 python scripts/caption_errors.py runs/llava-shapes-more4/final --scenes 200 --show 10
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

import torch

from modalign.data.render import render
from modalign.data.vocab import COLOR_NAMES, NUMBER_WORDS, SHAPES, number_word

PROMPT = "Describe the image in detail."
_WORD = re.compile(r"[a-z]+")


def subjects(description: str) -> tuple[str | None, list[tuple[str | None, str]]]:
    """(the opening's number word or None, [(colour or None, shape) for each sentence naming a shape])."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", description.strip().lower()) if s]
    if not sentences:
        return None, []
    opening = _WORD.findall(sentences[0])
    count = next((w for w in opening if w in NUMBER_WORDS), None)
    out = []
    for s in sentences[1:]:
        words = _WORD.findall(s)
        shape = next((w for w in words if w in SHAPES), None)
        if shape is not None:
            out.append((next((w for w in words if w in COLOR_NAMES), None), shape))
    return count, out


def classify(description: str, objects: list[dict], heldout=frozenset()) -> Counter:
    """Counts for one description: count_right, named, wrong_color, skipped, repeated, invented, all_named;
    heldout_objects / heldout_named, the objects whose (colour, shape) is in `heldout` and how many of them are named;
    and shared_objects / shared_named, the objects whose colour another object of the scene also has (a colour word
    the description writes twice, for two shapes) and how many of them are named; shared_twice, how many of the
    shared-colour objects left out have another shape of their colour written more often than the scene has it.
    """
    count, said = subjects(description)
    c = Counter(count_right=int(count == number_word(len(objects))))
    truth = Counter((o["color"], o["shape"]) for o in objects)
    colors = Counter(o["color"] for o in objects)
    seen = Counter()
    for subject in said:
        seen[subject] += 1
        if subject not in truth:
            c["invented"] += 1
        elif seen[subject] > truth[subject]:
            c["repeated"] += 1
    for subject, k in truth.items():
        named = min(k, seen[subject])
        c["named"] += named
        if subject in heldout:
            c["heldout_objects"] += k
            c["heldout_named"] += named
        missing = k - named
        if colors[subject[0]] > 1:
            c["shared_objects"] += k
            c["shared_named"] += named
            if missing and any(col == subject[0] and shp != subject[1] and v > truth[(col, shp)]
                               for (col, shp), v in seen.items()):
                c["shared_twice"] += missing
        if missing:
            # the shape under a colour that is not one of the scene's objects of that shape: perceived, mis-coloured
            stray = sum(v for (col, shp), v in seen.items() if shp == subject[1] and (col, shp) not in truth)
            wrong = min(missing, stray)
            c["wrong_color"] += wrong
            c["skipped"] += missing - wrong
    c["all_named"] = int(c["named"] == len(objects))
    return c


def tally(model, world, batch_size: int = 16, max_new_tokens: int = 128,
          repetition_penalty: float = 1.0, misses: list | None = None) -> dict[int, Counter]:
    """{objects in the scene: summed classify() counts plus `descriptions` and `objects`}; held-out pairs are the
    world's (world.rule.heldout_pairs). `misses`, when given, receives (scene, description) for every description
    that does not name all of its scene's objects."""
    heldout = frozenset(world.rule.heldout_pairs)
    scenes = [world.scene(i) for i in range(len(world))]
    by_objects: dict[int, Counter] = {}
    with torch.no_grad():
        for lo in range(0, len(scenes), batch_size):
            chunk = scenes[lo: lo + batch_size]
            preds = model.generate([render(s) for s in chunk], [PROMPT] * len(chunk), max_new_tokens=max_new_tokens,
                                   repetition_penalty=repetition_penalty)
            for scene, pred in zip(chunk, preds):
                c = by_objects.setdefault(len(scene["objects"]), Counter())
                counts = classify(pred, scene["objects"], heldout)
                c.update(counts)
                if misses is not None and not counts["all_named"]:
                    misses.append((scene, pred))
                c["descriptions"] += 1
                c["objects"] += len(scene["objects"])
    return by_objects


def scene_line(scene: dict) -> str:
    """The scene's objects as "size colour shape (position)", in the order they were drawn."""
    return "; ".join(f"{o['size']} {o['color']} {o['shape']} ({o['position']})" for o in scene["objects"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--split", default="heldout")
    ap.add_argument("--scenes", type=int, default=200)
    ap.add_argument("--repetition-penalty", type=float, default=1.0,
                    help="> 1 discourages tokens already written (transformers' meaning; 1.0 = plain greedy)")
    ap.add_argument("--show", type=int, default=0, metavar="K",
                    help="also print the first K descriptions that leave an object out, under their scene's objects")
    args = ap.parse_args(argv)
    if args.show < 0:
        ap.error(f"--show must be >= 0, got {args.show}")
    from modalign.data.shapes import ShapesWorld
    from modalign.models import load_model

    torch.set_num_threads(1)
    model = load_model(args.checkpoint).eval()
    world = ShapesWorld(task="caption", caption="detailed", n=args.scenes, split=args.split)
    misses: list = []
    by_objects = tally(model, world, repetition_penalty=args.repetition_penalty, misses=misses)
    total = sum(by_objects.values(), Counter())
    print("objects  descriptions  all named  count right  | objects: named  wrong colour  skipped | "
          "repeats  inventions")
    for k, c in sorted(by_objects.items()) + [("all", total)]:
        d, o = c["descriptions"], c["objects"]
        print(f"{k!s:>7}  {d:>12}  {c['all_named'] / d:>9.2f}  {c['count_right'] / d:>11.2f}  | "
              f"{c['named'] / o:>13.2f}  {c['wrong_color'] / o:>12.2f}  {c['skipped'] / o:>7.2f} | "
              f"{c['repeated']:>7}  {c['invented']:>10}")
    held, held_named = total["heldout_objects"], total["heldout_named"]
    seen, seen_named = total["objects"] - held, total["named"] - held_named
    if held:
        print(f"objects named: held-out colour-shape pairs {held_named}/{held} ({held_named / held:.2f}), "
              f"pairs seen in training {seen_named}/{seen} ({seen_named / max(seen, 1):.2f})")
    shared, shared_named = total["shared_objects"], total["shared_named"]
    alone, alone_named = total["objects"] - shared, total["named"] - shared_named
    if shared:
        print(f"objects named: colour shared with another object of the scene {shared_named}/{shared} "
              f"({shared_named / shared:.2f}), colour of its own {alone_named}/{alone} "
              f"({alone_named / max(alone, 1):.2f}); of the {shared - shared_named} shared-colour objects left out, "
              f"{total['shared_twice']} have another shape of their colour written twice")
    for scene, description in misses[: args.show]:
        print(f"\nscene: {scene_line(scene)}\n  said: {description}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
