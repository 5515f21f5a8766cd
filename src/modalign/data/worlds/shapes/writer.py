"""Write a shapes-world split to disk: PNG images, JSONL manifests per task, LLaVA JSON, tar shards.

Layout of `out/` (all paths in manifests are relative to `out/`):
    images/<id>.png            one per scene (winoground pairs: <id>-0.png, <id>-1.png)
    scenes.jsonl               {"id", "image", "scene"}
    captions.jsonl             {"id", "image", "text" (short), "detailed"}   <- DATASETS["image-captions"] reads it
    conversations.json         LLaVA format [{"id", "image", "conversations"}] <- DATASETS["llava-json"]
    vqa.jsonl pope.jsonl probes.jsonl grounding.jsonl chair.jsonl winoground.jsonl
    shards/shard-*.tar         <id>.png + <id>.json (caption, detailed, conversations, scene) <- DATASETS["shards"]
    vocabulary.json  cooccurrence.json  info.json
The same arguments give byte-identical files (PNG has no timestamps; tar headers are fixed; JSON keys keep order).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from tqdm import tqdm

from ...shards import ShardWriter
from .render import render
from .vocab import vocabulary
from .world import ShapesWorld

MANIFEST_TASKS = ("vqa", "pope", "probes", "grounding", "chair")


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _dump(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


def write_split(out, n: int, split: str, seed: int = 0, shard_size: int = 1000, progress: bool = True, **world) -> dict:
    """Write one split; `world` goes to ShapesWorld (image_size, max_objects, background, ...). Returns a summary."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    common = dict(n=n, split=split, seed=seed, min_objects=world.pop("min_objects", 1), **world)
    short = ShapesWorld(task="caption", caption="short", **common)
    detailed = ShapesWorld(task="caption", caption="detailed", **common)
    instruct = ShapesWorld(task="instruct", **common)
    counts = {}
    conversations = []
    with (
        open(out / "scenes.jsonl", "w") as f_sc,
        open(out / "captions.jsonl", "w") as f_cap,
        ShardWriter(out / "shards", shard_size) as shards,
    ):
        for i in tqdm(range(n), desc=f"shapes {split}", disable=not progress, unit="scene"):
            iid, rel = short.image_id(i), f"images/{short.image_id(i)}.png"
            scene = short.scene(i)
            png = _png(render(scene))
            (out / rel).write_bytes(png)
            text, det = short.record(i)["text"], detailed.record(i)["text"]
            convo = instruct.record(i)["conversations"]
            f_sc.write(_dump({"id": iid, "image": rel, "scene": scene}) + "\n")
            f_cap.write(_dump({"id": iid, "image": rel, "text": text, "detailed": det}) + "\n")
            conversations.append({"id": iid, "image": rel, "conversations": convo})
            shards.write(iid, png, {"id": iid, "text": text, "detailed": det, "conversations": convo, "scene": scene})
    (out / "conversations.json").write_text(json.dumps(conversations, ensure_ascii=False, indent=1))
    counts.update(scenes=n, captions=n, conversations=n, shards=len(shards.paths))
    for task in MANIFEST_TASKS:
        ds = ShapesWorld(task=task, **common)
        with open(out / f"{task}.jsonl", "w") as fh:
            for idx in range(len(ds)):
                rec = ds.record(idx)
                i = rec.pop("scene_index")
                fh.write(_dump({**rec, "image": f"images/{ds.image_id(i)}.png"}) + "\n")
        counts[task] = len(ds)
    wino = ShapesWorld(task="winoground", **common)
    with open(out / "winoground.jsonl", "w") as fh:
        for i in range(n):
            rec = wino.record(i)
            rec.pop("scene_index")
            paths = []
            for iid, scene in zip(rec["image_ids"], rec.pop("scenes")):
                paths.append(f"images/{iid}.png")
                (out / paths[-1]).write_bytes(_png(render(scene)))
            fh.write(_dump({**rec, "images": paths}) + "\n")
    counts["winoground"] = n
    (out / "vocabulary.json").write_text(json.dumps(vocabulary(), indent=1))
    (out / "cooccurrence.json").write_text(json.dumps(short.cooccurrence(), indent=1))
    info = {
        "split": split,
        "seed": seed,
        "n": n,
        "world": {k: v for k, v in common.items() if k != "n"},
        "heldout_pairs": sorted(map(list, short.rule.heldout_pairs)),
        "counts": counts,
    }
    (out / "info.json").write_text(json.dumps(info, indent=1, default=list))
    return info


def write_shapes(out, n: int, split: str, seed: int = 0, **kw) -> dict:
    """CLI front: split "confounded" writes `confounded-train/` and `confounded-test/` side by side under out."""
    if split == "confounded":
        return {s: write_split(Path(out) / s, n, s, seed, **kw) for s in ("confounded-train", "confounded-test")}
    return write_split(out, n, split, seed, **kw)
