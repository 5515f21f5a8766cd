"""Shapes-world generation speed on one core: scenes/s at 64x64 with all derived text, against the 1,000/s goal.

Measures, side by side in one run: scene graph only; graph + render; graph + render + every derived text (short and
detailed captions, VQA, a conversation, POPE, probes, grounding). Run: `python benchmarks/shapes_speed.py`.
"""

import time

import numpy as np
import torch

from modalign.data.worlds.shapes.grounding import grounding_item
from modalign.data.worlds.shapes.language import detailed_caption, short_caption
from modalign.data.worlds.shapes.pope import PopeStats, pope_questions
from modalign.data.worlds.shapes.probes import probe
from modalign.data.worlds.shapes.render import render
from modalign.data.worlds.shapes.scenes import layout_scene
from modalign.data.worlds.shapes.splits import SplitRule
from modalign.data.worlds.shapes.vqa import conversation, vqa_items

GOAL = 1000.0  # scenes per second per core


def scenes(n, image_size, seed=0):
    rule = SplitRule("train")
    for i in range(n):
        rng = np.random.default_rng([seed, 0, i])
        yield rng, layout_scene(rng, rule.sample(rng, int(rng.integers(1, 5))), image_size)


def run(n, image_size, level, stats):
    t = time.process_time()  # CPU time of this process: per-core speed, robust to a busy machine
    for rng, scene in scenes(n, image_size):
        if level >= 1:
            render(scene)
        if level >= 2:
            short_caption(scene, rng)
            detailed_caption(scene, rng)
            vqa_items(scene, rng)
            conversation(scene, rng)
            if len(scene["objects"]) >= 2:
                probe(scene, rng)
            grounding_item(scene, rng)
            pope_questions(scene, rng, stats)
    return n / (time.process_time() - t)


def main():
    torch.set_num_threads(1)
    stats = PopeStats(s for _, s in scenes(500, 64, seed=1))
    n = 2000
    run(100, 64, 2, stats)  # warm-up
    graph = run(n, 64, 0, stats)
    rendered = run(n, 64, 1, stats)
    full = run(n, 64, 2, stats)
    full448 = run(200, 448, 2, stats)
    print(f"scene graph only          : {graph:8.0f} scenes/s")
    print(f"graph + render 64px       : {rendered:8.0f} scenes/s")
    print(f"graph + render + all text : {full:8.0f} scenes/s   ratio to the {GOAL:.0f}/s goal: {full / GOAL:.2f}x")
    print(f"same at 448px             : {full448:8.0f} scenes/s")


if __name__ == "__main__":
    main()
