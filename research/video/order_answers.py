"""What a video-motion model answers to one question type of the test clips, and how often it names a shape the
question offers: `python research/video/order_answers.py RUN/final order`."""

import collections
import sys

import modalign as ma
from modalign.data.worlds.motion import SHORT_ANSWER, MotionWorld
from modalign.data.worlds.shapes.vocab import SHAPES


def main(run: str, qtype: str, n: int = 40) -> None:
    model = ma.load(run)
    model.eval()
    world = MotionWorld(task="vqa", n=200, split="test")
    rows = [world[i] for i in range(len(world)) if world.record(i)["qtype"] == qtype][:n]
    kinds, shown = collections.Counter(), []
    for r in rows:
        prompt = f"{r['question']} {SHORT_ANSWER}"
        answer = model.generate(None, [prompt], video=[r["video"]], max_new_tokens=6)[0].strip()
        offered = [s for s in SHAPES if s in r["question"]]
        kinds["right" if answer == r["answer"] else "other offered" if answer in offered else "not offered"] += 1
        shown.append((r["question"], answer, r["answer"]))
    print(dict(kinds))
    for row in shown[:12]:
        print(row)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
