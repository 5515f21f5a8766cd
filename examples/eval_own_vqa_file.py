"""Evaluate a saved model on your own VQA file: a JSONL of {"image": path, "question": ..., "answer": ...} lines.

    python examples/eval_own_vqa_file.py runs/llava/final my_questions.jsonl --images my_images/ --out runs/my-eval

The questions are read by a ten-line torch Dataset of your own (any map-style Dataset whose items carry `image`
(PIL), `question` and `answer` works), scored with VQAv2's accuracy and normalisation, and written with their
settings and a gallery to --out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

import modalign as ma


class QuestionFile(Dataset):
    """One item per line: {"id", "image" (PIL RGB), "question", "answer"}; `id` names the image."""

    def __init__(self, path: str, image_root: str | None = None):
        self.root = Path(image_root) if image_root else Path(path).parent
        self.rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        row = self.rows[i]
        image = Image.open(self.root / row["image"]).convert("RGB")
        return {"id": row["image"], "image": image, "question": row["question"], "answer": row["answer"]}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a saved model directory, e.g. runs/llava/final")
    p.add_argument("questions", help="JSONL with image, question, answer")
    p.add_argument("--images", help="image root (default: the file's folder)")
    p.add_argument("--out", default=None, help="folder for the gallery thumbnails")
    args = p.parse_args(argv)

    model = ma.load(args.model)
    result = ma.evaluate(model, "vqa", QuestionFile(args.questions, args.images), out_dir=args.out)
    print(json.dumps(result["metrics"], indent=1))
    return result


if __name__ == "__main__":
    main()
