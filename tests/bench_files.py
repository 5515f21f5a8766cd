"""Tiny benchmark files in their published layouts, written by the tests (no downloads).

Each writer puts its files under a folder and returns their paths. Images are `fakes.color_image(key)` saved as PNG
bytes (also under .jpg names: PIL reads the content), so a scripted model can tell them apart by key.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

from fakes import color_image


def write_image(path: Path, key: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    color_image(key).save(path, format="PNG")
    return path


def png_base64(key: int) -> str:
    buf = io.BytesIO()
    color_image(key).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_json(path: Path, doc) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))
    return path


def coco_name(image_id: int, subtype: str = "val2014") -> str:
    return f"COCO_{subtype}_{image_id:012d}.jpg"


def vqav2(root: Path) -> dict:
    """Two images (ids 1 and 2, keys 1 and 2), three questions; ten answers each."""
    for i in (1, 2):
        write_image(root / "val2014" / coco_name(i), i)
    questions = {
        "data_subtype": "val2014",
        "questions": [
            {"image_id": 1, "question": "What color is it?", "question_id": 1000},
            {"image_id": 1, "question": "How many dogs?", "question_id": 1001},
            {"image_id": 2, "question": "Is it red?", "question_id": 2000},
        ],
    }

    def ann(qid, image_id, qtype, atype, answers):
        return {
            "question_id": qid,
            "image_id": image_id,
            "question_type": qtype,
            "answer_type": atype,
            "multiple_choice_answer": answers[0],
            "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1} for k, a in enumerate(answers)],
        }

    annotations = {
        "annotations": [
            ann(1000, 1, "what color is", "other", ["red"] * 2 + ["dark red"] * 8),
            ann(1001, 1, "how many", "number", ["2"] * 10),
            ann(2000, 2, "is the", "yes/no", ["yes"] * 10),
        ]
    }
    return {
        "questions": write_json(root / "questions.json", questions),
        "annotations": write_json(root / "annotations.json", annotations),
        "images": root / "val2014",
    }


def pope(root: Path) -> dict:
    """Image keys 1 (a dog) and 2 (a cat); two files: random and adversarial."""
    for i in (1, 2):
        write_image(root / "images" / coco_name(i), i)

    def q(qid, image_id, obj, label):
        return {
            "question_id": qid,
            "image": coco_name(image_id),
            "text": f"Is there a {obj} in the image?",
            "label": label,
        }

    random = [q(1, 1, "dog", "yes"), q(2, 1, "car", "no"), q(3, 2, "cat", "yes"), q(4, 2, "dog", "no")]
    adversarial = [q(1, 1, "dog", "yes"), q(2, 1, "cat", "no")]
    return {
        "random": write_jsonl(root / "coco_pope_random.json", random),
        "adversarial": write_jsonl(root / "coco_pope_adversarial.json", adversarial),
        "images": root / "images",
    }


def coco_captions(root: Path) -> dict:
    for i in (1, 2):
        write_image(root / "val2014" / coco_name(i), i)
    doc = {
        "info": {"description": "tiny"},
        "images": [{"id": 1, "file_name": coco_name(1)}, {"id": 2, "file_name": coco_name(2)}],
        "annotations": [
            {"image_id": 2, "id": 10, "caption": "A green square."},
            {"image_id": 1, "id": 11, "caption": "A red circle."},
            {"image_id": 1, "id": 12, "caption": "A circle that is red. "},
        ],
    }
    return {"annotations": write_json(root / "captions_val2014.json", doc), "images": root / "val2014"}


def karpathy(root: Path) -> dict:
    for i in (1, 2, 3):
        write_image(root / "val2014" / coco_name(i), i)

    def image(i, split, sentences):
        return {
            "filepath": "val2014",
            "filename": coco_name(i),
            "imgid": i - 1,
            "cocoid": i,
            "split": split,
            "sentences": [{"raw": s, "tokens": s.lower().strip(".").split()} for s in sentences],
        }

    doc = {
        "dataset": "coco",
        "images": [
            image(1, "test", ["A red circle.", "A circle."]),
            image(2, "train", ["A green square."]),
            image(3, "restval", ["Blue."]),
        ],
    }
    return {"path": write_json(root / "dataset_coco.json", doc), "images": root}


def coco_chair(root: Path) -> dict:
    for i in (1, 2):
        write_image(root / "val2014" / coco_name(i), i)
    doc = {
        "images": [{"id": 1, "file_name": coco_name(1)}, {"id": 2, "file_name": coco_name(2)}],
        "annotations": [
            {"image_id": 1, "category_id": 18, "id": 1},
            {"image_id": 1, "category_id": 1, "id": 2},
            {"image_id": 2, "category_id": 67, "id": 3},
        ],
        "categories": [
            {"id": 1, "name": "person", "supercategory": "person"},
            {"id": 18, "name": "dog", "supercategory": "animal"},
            {"id": 67, "name": "dining table", "supercategory": "furniture"},
        ],
    }
    synonyms = "person, man, woman, people\ndog, puppy\n\ndining table, table, desk\n"
    root.mkdir(parents=True, exist_ok=True)
    (root / "synonyms.txt").write_text(synonyms)
    return {
        "instances": write_json(root / "instances_val2014.json", doc),
        "images": root / "val2014",
        "synonyms": root / "synonyms.txt",
    }


def sugarcrepe(root: Path) -> dict:
    for i in (1, 2):
        write_image(root / "val2017" / f"{i:012d}.jpg", i)
    write_json(
        root / "data" / "replace_att.json",
        {
            "0": {"filename": f"{1:012d}.jpg", "caption": "a red circle", "negative_caption": "a blue circle"},
            "1": {"filename": f"{2:012d}.jpg", "caption": "a green square", "negative_caption": "a red square"},
        },
    )
    write_json(
        root / "data" / "swap_obj.json",
        {
            "0": {
                "filename": f"{1:012d}.jpg",
                "caption": "a circle on a square",
                "negative_caption": "a square on a circle",
            }
        },
    )
    return {"path": root / "data", "images": root / "val2017"}


def aro(root: Path) -> dict:
    write_image(root / "images" / "10.jpg", 1)
    relation = [
        {
            "image_id": "10",
            "relation_name": "on",
            "bbox_x": 0,
            "bbox_y": 0,
            "bbox_w": 8,
            "bbox_h": 8,
            "true_caption": "the cup is on the table",
            "false_caption": "the table is on the cup",
            "image_path": "10.jpg",
        },
        {
            "image_id": "10",
            "relation_name": "holding",
            "bbox_x": 2,
            "bbox_y": 2,
            "bbox_w": 10,
            "bbox_h": 6,
            "true_caption": "the man is holding the cup",
            "false_caption": "the cup is holding the man",
            "image_path": "10.jpg",
        },
    ]
    attribution = [
        {
            "image_id": "10",
            "attributes": ["white", "wooden"],
            "bbox_x": 0,
            "bbox_y": 0,
            "bbox_w": 16,
            "bbox_h": 16,
            "true_caption": "the white bowl and the wooden table",
            "false_caption": "the wooden bowl and the white table",
            "image_path": "10.jpg",
        }
    ]
    return {
        "relation": write_json(root / "visual_genome_relation.json", relation),
        "attribution": write_json(root / "visual_genome_attribution.json", attribution),
        "images": root / "images",
    }


def winoground(root: Path) -> dict:
    for k, key in enumerate((1, 2, 3, 4)):
        write_image(root / "images" / f"ex_{k // 2}_img_{k % 2}.png", key)

    def ex(i, c0, c1, tag, collapsed, secondary=""):
        return {
            "id": i,
            "caption_0": c0,
            "caption_1": c1,
            "tag": tag,
            "secondary_tag": secondary,
            "num_main_preds": 1,
            "collapsed_tag": collapsed,
            "image_0": f"ex_{i}_img_0",
            "image_1": f"ex_{i}_img_1",
        }

    rows = [
        ex(0, "an old person kisses a young person", "a young person kisses an old person", "Noun", "Object"),
        ex(1, "the dog bites the man", "the man bites the dog", "Verb", "Relation", "Symbolic"),
    ]
    return {"path": write_jsonl(root / "examples.jsonl", rows), "images": root / "images"}


MMBENCH_HEADER = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image"]


def mmbench(root: Path, circular_copies: bool = False) -> Path:
    """Three questions (image keys 1, 2, 1); row 2 points at row 0's picture; row 1 has three options."""
    rows = [
        [0, "What shape is it?", "", "circle", "square", "star", "ring", "A", "shape", png_base64(1)],
        [1, "What colour is it?", "Look closely.", "red", "green", "blue", "nan", "B", "colour", png_base64(2)],
        [2, "How many shapes?", "nan", "one", "two", "three", "four", "A", "count", "0"],
    ]
    if circular_copies:  # VLMEvalKit's layout: question i's rotations as rows i + k * 1e6
        a, b, c, d = rows[0][3:7]
        rows += [
            [1_000_000, "What shape is it?", "", b, c, d, a, "D", "shape", "0"],
            [2_000_000, "What shape is it?", "", c, d, a, b, "C", "shape", "0"],
            [3_000_000, "What shape is it?", "", d, a, b, c, "B", "shape", "0"],
        ]
    root.mkdir(parents=True, exist_ok=True)
    path = root / "MMBench_DEV_EN.tsv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(MMBENCH_HEADER)
        w.writerows(rows)
    return path
