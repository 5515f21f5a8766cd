"""The eval suites on the benchmark readers' datasets, with scripted models whose numbers are computed by hand."""

import hashlib
import json

import bench_files as bf
import numpy as np
import pytest
from fakes import KeyedDualEncoder, ScriptedVLM

from modalign.data import DATASETS
from modalign.eval.metrics import caption_metrics
from modalign.eval.suites import SUITES
from modalign.registry import ConfigError

E = np.eye(4)


def test_vqa_on_vqav2_files_ten_answers_per_answer_type_and_file_hashes(tmp_path):
    f = bf.vqav2(tmp_path)
    ds = DATASETS["vqav2"](questions=f["questions"], annotations=f["annotations"], images=f["images"])
    answers = {"What color": "Red", "How many": "Two", "Is it": "no"}
    model = ScriptedVLM(answer=lambda key, p: next(a for q, a in answers.items() if q in p))
    r = SUITES["vqa"](model, ds, progress=False)
    # "red" by 2 of 10 annotators: leaving out a "red" one leaves 1 match (1/3), leaving out a "dark red" one 2 (2/3)
    acc_other = (2 * (1 / 3) + 8 * (2 / 3)) / 10
    assert r["metrics"] == pytest.approx(
        {"accuracy": (acc_other + 1 + 0) / 3, "acc_number": 1.0, "acc_other": acc_other, "acc_yes/no": 0.0}
    )
    assert r["figures"]["per_question_type"]["how many"] == 1.0
    settings = r["settings"]
    assert settings["prompt"] == ds.prompt and settings["split"] == "val2014" and settings["decoding"] == "greedy"
    assert [x["sha256"] for x in settings["files"]] == [
        hashlib.sha256(p.read_bytes()).hexdigest() for p in (f["questions"], f["annotations"])
    ]


def test_vqa_rule_any_takes_a_qa_files_answers_as_alternatives(tmp_path):
    bf.write_image(tmp_path / "a.png", 1)
    path = bf.write_jsonl(
        tmp_path / "qa.jsonl", [{"image": "a.png", "question": "Colour?", "answers": ["red", "crimson"]}]
    )
    model = ScriptedVLM(answer=lambda key, p: "Crimson")
    assert SUITES["vqa"](model, DATASETS["qa"](path=path), rule="any", progress=False)["metrics"]["accuracy"] == 1.0
    assert SUITES["vqa"](model, DATASETS["qa"](path=path), progress=False)["metrics"]["accuracy"] == pytest.approx(
        1 / 6
    )
    with pytest.raises(ConfigError, match="vqa rule must be one of vqa, any"):
        SUITES["vqa"](model, DATASETS["qa"](path=path), rule="some", progress=False)


def test_vqa_scores_a_llava_format_test_file(tmp_path):
    bf.write_image(tmp_path / "a.png", 1)
    rows = [
        {"id": "1", "image": "a.png", "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}
        for q, a in [("<image>\nWhat colour?", "red"), ("Which shape?", "circle")]
    ]
    (tmp_path / "test.json").write_text(json.dumps(rows))
    model = ScriptedVLM(answer=lambda key, p: "red")
    r = SUITES["vqa"](model, DATASETS["llava-json"](path=tmp_path / "test.json"), progress=False)
    assert r["metrics"] == {"accuracy": 0.5, "acc_all": 0.5}


def test_pope_files_per_sampler_with_the_predictions_yes_ratio(tmp_path):
    f = bf.pope(tmp_path)
    ds = DATASETS["pope"](questions=[f["random"], f["adversarial"]], images=f["images"])
    model = ScriptedVLM(answer=lambda key, p: "Yes, there is." if key == 1 else "No.")
    m = SUITES["pope"](model, ds, progress=False)["metrics"]
    # preds y y n n | y y against labels y n y n | y n: TP 2, FP 2, FN 1, TN 1
    assert m["accuracy"] == 0.5 and m["precision"] == 0.5 and m["recall"] == pytest.approx(2 / 3)
    assert m["yes_ratio"] == pytest.approx(4 / 6) and m["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert m["random_yes_ratio"] == 0.5 and m["adversarial_yes_ratio"] == 1.0 and m["adversarial_accuracy"] == 0.5


def _mc_model():
    def answer(key, prompt):
        if "What shape" in prompt:
            return "circle"  # the option's text: right under every rotation
        if "What colour" in prompt:
            return "B"  # a fixed letter: right only where B is green
        return "The answer is one"

    return ScriptedVLM(answer=answer)


def test_multiple_choice_plain_circular_and_per_category(tmp_path):
    ds = DATASETS["mmbench"](path=bf.mmbench(tmp_path))
    plain = SUITES["multiple_choice"](_mc_model(), ds, progress=False)
    assert plain["metrics"] == {"accuracy": 1.0, "acc_colour": 1.0, "acc_count": 1.0, "acc_shape": 1.0, "unparsed": 0.0}
    assert "Look closely.\nWhat colour is it?\nA. red\nB. green\nC. blue\n" in plain["samples"][1]["prompt"]
    circ = SUITES["multiple_choice"](_mc_model(), ds, circular=True, progress=False)
    assert circ["metrics"]["accuracy"] == pytest.approx(2 / 3) and circ["metrics"]["acc_colour"] == 0.0
    assert circ["metrics"]["plain_accuracy"] == 1.0 and circ["settings"]["trials"] == 4 + 3 + 4
    assert circ["settings"]["circular"] == "every rotation of the options"


def test_multiple_choice_uses_the_files_circular_copies_and_likelihoods(tmp_path):
    ds = DATASETS["mmbench"](path=bf.mmbench(tmp_path, circular_copies=True))
    r = SUITES["multiple_choice"](_mc_model(), ds, circular=True, progress=False)
    assert r["metrics"]["accuracy"] == 1.0 and r["settings"]["trials"] == 6
    assert r["settings"]["circular"] == "the file's rotated copies"
    assert SUITES["multiple_choice"](_mc_model(), ds, progress=False)["settings"]["trials"] == 3  # originals only
    always_a = ScriptedVLM(score=lambda key, text, prompt: 1.0 if text == "A" else 0.0)
    r = SUITES["multiple_choice"](
        always_a, DATASETS["mmbench"](path=bf.mmbench(tmp_path / "l")), mode="likelihood", progress=False
    )
    assert r["metrics"]["accuracy"] == pytest.approx(2 / 3) and r["metrics"]["acc_colour"] == 0.0
    with pytest.raises(ConfigError, match="needs {question} and {options}"):
        SUITES["multiple_choice"](always_a, ds, prompt="{question}?", progress=False)


def test_compositional_on_sugarcrepe_per_type(tmp_path):
    f = bf.sugarcrepe(tmp_path)
    texts = {
        "a red circle": E[0],
        "a blue circle": E[1],  # right
        "a green square": E[1],
        "a red square": E[1],  # a tie: wrong
        "a circle on a square": E[0],
        "a square on a circle": E[2],  # right
    }
    model = KeyedDualEncoder({1: E[0], 2: E[1]}, texts)
    r = SUITES["compositional"](model, DATASETS["sugarcrepe"](path=f["path"], images=f["images"]), progress=False)
    assert r["metrics"] == {"macro": 0.75, "overall": pytest.approx(2 / 3), "acc_replace-att": 0.5, "acc_swap-obj": 1.0}


def test_aro_attribution_macro_needs_enough_cases_per_type(tmp_path):
    f = bf.aro(tmp_path)
    ds = DATASETS["aro"](path=f["attribution"], images=f["images"])
    model = KeyedDualEncoder({1: E[0]}, lambda t: E[0] if t.startswith("the white") else E[1])
    with pytest.raises(ConfigError, match="min_type_count=1"):
        SUITES["compositional"](model, ds, progress=False)
    r = SUITES["compositional"](model, ds, min_type_count=1, progress=False)
    assert r["metrics"]["macro"] == 1.0 and r["settings"]["min_type_count"] == 1


def test_winoground_breaks_scores_down_by_tag(tmp_path):
    f = bf.winoground(tmp_path)
    right = {"an old person kisses a young person": E[0], "a young person kisses an old person": E[1]}
    model = KeyedDualEncoder({1: E[0], 2: E[1], 3: E[2], 4: E[3]}, lambda t: right.get(t, E[2]))
    r = SUITES["winoground"](model, DATASETS["winoground"](path=f["path"]), progress=False)
    m = r["metrics"]
    assert m["text"] == 0.5 and m["Object_group"] == 1.0 and m["Relation_group"] == 0.0
    assert r["figures"]["per_tag"]["secondary_tag"]["Symbolic"]["group"] == 0.0


def test_chair_on_coco_instances_with_synonyms(tmp_path):
    f = bf.coco_chair(tmp_path)
    ds = DATASETS["coco-chair"](instances=f["instances"], images=f["images"], synonyms=f["synonyms"])
    model = ScriptedVLM(answer=lambda key, p: "A man with a puppy at a table." if key == 1 else "A desk.")
    m = SUITES["chair"](model, ds, progress=False)["metrics"]
    # image 1: person, dog named, the table hallucinated; image 2: the desk is its dining table
    assert m == {"CHAIR_i": 0.25, "CHAIR_s": 0.5, "recall": 1.0, "all_named": 1.0}


def test_caption_on_karpathy_test_split(tmp_path):
    f = bf.karpathy(tmp_path)
    model = ScriptedVLM(answer=lambda key, p: "A red circle.")
    r = SUITES["caption"](model, DATASETS["karpathy"](path=f["path"], images=f["images"]), progress=False)
    assert model.generated == 1
    assert r["metrics"] == caption_metrics(["A red circle."], [["A red circle.", "A circle."]])
    assert r["settings"]["split"] == "test"
