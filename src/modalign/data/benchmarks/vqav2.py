"""VQAv2 (Goyal et al. 2017) from its official files: the questions JSON and the annotations JSON.

questions (`v2_OpenEnded_mscoco_val2014_questions.json`):
    {"data_subtype": "val2014", "questions": [{"image_id": 262148, "question": "...", "question_id": 262148000}]}
annotations (`v2_mscoco_val2014_annotations.json`):
    {"annotations": [{"question_id": 262148000, "image_id": 262148, "question_type": "what is",
                      "answer_type": "other", "multiple_choice_answer": "net",
                      "answers": [{"answer": "net", "answer_confidence": "yes", "answer_id": 1}, ... 10]}]}
images: `COCO_<data_subtype>_<image_id:012d>.jpg` under `images` (the COCO folder, e.g. val2014/).

Items: {"id": image id, "qid", "image", "question", "answer": the 10 annotator answers, "qtype": answer type
(yes/no, number, other: the breakdown VQAv2 reports), "question_type", "multiple_choice_answer"}.
"""

from __future__ import annotations

from ..records import BadRecord, check_text
from .base import BenchmarkDataset, existing_file, load_json, require

# LLaVA-1.5's VQAv2 instruction: the prompt most published VQAv2 numbers of instruction-tuned models used.
VQA_PROMPT = "{question}\nAnswer the question using a single word or phrase."


class VQAv2(BenchmarkDataset):
    """One item per question of `questions`, with its annotators' answers from `annotations`.

    image_pattern: file name of an image from its id, default "COCO_{data_subtype}_{image_id:012d}.jpg".
    """

    prompt = VQA_PROMPT

    def __init__(self, questions, annotations, images, image_pattern: str | None = None, skip_bad: bool = False):
        qpath = existing_file(questions, "VQAv2 questions file")
        apath = existing_file(annotations, "VQAv2 annotations file")
        super().__init__(images, skip_bad, [qpath, apath])
        qdoc, adoc = load_json(qpath), load_json(apath)
        if not isinstance(qdoc, dict) or not isinstance(qdoc.get("questions"), list):
            raise BadRecord(f"{qpath}: expected the VQAv2 questions layout {{'questions': [...]}}")
        if not isinstance(adoc, dict) or not isinstance(adoc.get("annotations"), list):
            raise BadRecord(f"{apath}: expected the VQAv2 annotations layout {{'annotations': [...]}}")
        self.split = qdoc.get("data_subtype")
        self.image_pattern = image_pattern or "COCO_{data_subtype}_{image_id:012d}.jpg"
        answers = {}
        for k, ann in enumerate(adoc["annotations"]):
            where = f"{apath}[annotations][{k}]"
            try:
                answers[self._answer_key(ann, where)] = (ann, where)
            except BadRecord as err:
                self._policy.handle(err)
        for k, q in enumerate(qdoc["questions"]):
            self.add(self._record, q, answers, f"{qpath}[questions][{k}]")

    @staticmethod
    def _answer_key(ann, where: str):
        require(ann, ("question_id", "answers"), where)
        if not isinstance(ann["answers"], list) or not ann["answers"]:
            raise BadRecord(f"{where}: 'answers' must be a non-empty list of {{'answer': str}}")
        for a in ann["answers"]:
            if not isinstance(a, dict) or not isinstance(a.get("answer"), str):
                raise BadRecord(f"{where}: every answer must be {{'answer': str, ...}}, got {a!r}")
        return ann["question_id"]

    def _record(self, q, answers: dict, where: str) -> dict:
        require(q, ("image_id", "question", "question_id"), where)
        if q["question_id"] not in answers:
            raise BadRecord(f"{where}: question_id {q['question_id']} has no entry in the annotations file")
        ann, awhere = answers[q["question_id"]]
        if ann.get("image_id", q["image_id"]) != q["image_id"]:
            raise BadRecord(f"{where}: image_id {q['image_id']} differs from the annotation's ({awhere})")
        try:
            name = self.image_pattern.format(data_subtype=self.split, image_id=q["image_id"])
        except (KeyError, ValueError, TypeError) as err:
            raise BadRecord(f"{where}: image_pattern {self.image_pattern!r} does not fit this record ({err})") from err
        return {
            "id": str(q["image_id"]),
            "qid": str(q["question_id"]),
            "path": self.image_path(name, where),
            "question": check_text(q["question"], where, "question"),
            "answer": [a["answer"] for a in ann["answers"]],
            "qtype": ann.get("answer_type", "all"),
            "question_type": ann.get("question_type"),
            "multiple_choice_answer": ann.get("multiple_choice_answer"),
            "where": where,
        }

    def texts(self):
        for r in self.records:
            yield r["question"]
            yield from r["answer"]
