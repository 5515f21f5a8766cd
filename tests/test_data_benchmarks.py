"""Every benchmark reader on tiny files in its published layout: items, bad records named or skipped, paths kept
inside the image root, source files listed."""

import json

import bench_files as bf
import pytest
from fakes import image_key

from modalign.data import DATASETS
from modalign.data.benchmarks import read_synonyms
from modalign.data.records import BadRecord


def test_vqav2_items_carry_ten_answers_and_types(tmp_path):
    f = bf.vqav2(tmp_path)
    ds = DATASETS["vqav2"](questions=f["questions"], annotations=f["annotations"], images=f["images"])
    assert len(ds) == 3 and ds.split == "val2014" and ds.source_files == [f["questions"], f["annotations"]]
    item = ds[0]
    assert item["id"] == "1" and item["qid"] == "1000" and image_key(item["image"]) == 1
    assert item["question"] == "What color is it?" and item["answer"] == ["red"] * 2 + ["dark red"] * 8
    assert item["qtype"] == "other" and item["question_type"] == "what color is"
    assert ds[1]["image"] is item["image"]  # one decoded picture for the questions of one image
    assert "{question}" in ds.prompt


def test_vqav2_missing_annotation_is_named_or_skipped(tmp_path):
    f = bf.vqav2(tmp_path)
    doc = json.loads(f["annotations"].read_text())
    doc["annotations"] = doc["annotations"][:2]
    f["annotations"].write_text(json.dumps(doc))
    with pytest.raises(BadRecord, match=r"questions\.json\[questions\]\[2\].*question_id 2000"):
        DATASETS["vqav2"](questions=f["questions"], annotations=f["annotations"], images=f["images"])
    with pytest.warns(UserWarning, match="2000"):
        ds = DATASETS["vqav2"](
            questions=f["questions"], annotations=f["annotations"], images=f["images"], skip_bad=True
        )
    assert len(ds) == 2 and ds.skipped == 1


def test_qa_jsonl_and_csv(tmp_path):
    bf.write_image(tmp_path / "a.png", 3)
    bf.write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {"image": "a.png", "question": "Colour?", "answers": ["red", "Red"], "question_type": "color"},
            {"image": "a.png", "question": "Shape?", "answer": "circle"},
        ],
    )
    ds = DATASETS["qa"](path=tmp_path / "qa.jsonl")
    assert ds[0]["answer"] == ["red", "Red"] and ds[0]["qtype"] == "color" and ds[1]["qtype"] == "all"
    (tmp_path / "qa.csv").write_text("image,question,answers,type\na.png,Colour?,red|crimson,color\n")
    assert DATASETS["qa"](path=tmp_path / "qa.csv")[0]["answer"] == ["red", "crimson"]
    (tmp_path / "bad.csv").write_text("image,question,answer\na.png,Colour?,red\n../a.png,Shape?,circle\n")
    with pytest.raises(BadRecord, match=r"bad\.csv:3: image path '\.\./a\.png' escapes the data root"):
        DATASETS["qa"](path=tmp_path / "bad.csv")


def test_llava_json_items_expose_their_first_question_and_answer(tmp_path):
    bf.write_image(tmp_path / "a.png", 1)
    convo = [{"from": "human", "value": "<image>\nWhat colour?"}, {"from": "gpt", "value": "red"}]
    (tmp_path / "t.json").write_text(json.dumps([{"id": "x", "image": "a.png", "conversations": convo}]))
    item = DATASETS["llava-json"](path=tmp_path / "t.json")[0]
    assert item["question"] == "What colour?" and item["answer"] == "red"


def test_pope_sampler_from_file_name_or_parameter(tmp_path):
    f = bf.pope(tmp_path)
    ds = DATASETS["pope"](questions=[f["random"], f["adversarial"]], images=f["images"])
    assert len(ds) == 6 and ds.samplers == ["adversarial", "random"]
    item = ds[0]
    assert item["sampler"] == "random" and item["object"] == "dog" and item["answer"] == "yes"
    assert item["question"] == "Is there a dog in the image?" and image_key(item["image"]) == 1
    assert len(DATASETS["pope"](questions=tmp_path, images=f["images"])) == 6  # a folder of files
    renamed = tmp_path / "mine.jsonl"
    renamed.write_text(f["random"].read_text())
    assert {r["sampler"] for r in DATASETS["pope"](questions=renamed, images=f["images"], sampler="popular")} == {
        "popular"
    }


def test_pope_bad_label_is_named_by_line(tmp_path):
    f = bf.pope(tmp_path)
    lines = f["random"].read_text().splitlines()
    lines[1] = lines[1].replace('"no"', '"maybe"')
    f["random"].write_text("\n".join(lines) + "\n")
    with pytest.raises(BadRecord, match=r"coco_pope_random\.json:2: label must be 'yes' or 'no'"):
        DATASETS["pope"](questions=f["random"], images=f["images"])
    with pytest.warns(UserWarning):
        assert DATASETS["pope"](questions=f["random"], images=f["images"], skip_bad=True).skipped == 1


def test_coco_captions_and_karpathy_group_references_by_image(tmp_path):
    f = bf.coco_captions(tmp_path / "coco")
    ds = DATASETS["coco-captions"](annotations=f["annotations"], images=f["images"])
    assert [(r["id"], r["text"]) for r in ds] == [
        ("1", "A red circle."),
        ("1", "A circle that is red."),
        ("2", "A green square."),
    ]
    assert ds.split == "val2014"
    k = bf.karpathy(tmp_path / "karpathy")
    test = DATASETS["karpathy"](path=k["path"], images=k["images"])
    assert [(r["id"], r["text"]) for r in test] == [("1", "A red circle."), ("1", "A circle.")]
    train = DATASETS["karpathy"](path=k["path"], images=k["images"], split="train+restval")
    assert [r["id"] for r in train] == ["2", "3"] and image_key(train[1]["image"]) == 3


def test_synonym_files_in_both_formats(tmp_path):
    (tmp_path / "s.txt").write_text("person, man, people\n# comment\nbicycle, bike, man\n")
    with pytest.warns(UserWarning, match="'man' \\(person, not bicycle\\)"):
        assert read_synonyms(tmp_path / "s.txt") == {"person": ["man", "people"], "bicycle": ["bike"]}
    (tmp_path / "s.json").write_text(json.dumps({"Dog": ["puppy"], "cat": []}))
    assert read_synonyms(tmp_path / "s.json") == {"dog": ["puppy"], "cat": []}
    (tmp_path / "dup.txt").write_text("dog, puppy\ncat\ndog, hound\n")
    with pytest.raises(BadRecord, match=r"dup\.txt:3: object 'dog' is listed twice"):
        read_synonyms(tmp_path / "dup.txt")


def test_coco_chair_maps_categories_through_the_synonym_list(tmp_path):
    f = bf.coco_chair(tmp_path)
    ds = DATASETS["coco-chair"](instances=f["instances"], images=f["images"], synonyms=f["synonyms"])
    assert [(r["id"], r["objects"]) for r in ds] == [("1", ["dog", "person"]), ("2", ["dining table"])]
    assert ds.vocabulary["dining table"] == ["table", "desk"] and ds.source_files[-1] == f["synonyms"]
    plain = DATASETS["coco-chair"](instances=f["instances"], images=f["images"], n=1, seed=0)
    assert len(plain) == 1 and plain.vocabulary == {"person": [], "dog": [], "dining table": []}
    (tmp_path / "short.txt").write_text("person\ndog\n")
    with pytest.raises(BadRecord, match=r"short\.txt: the COCO categories \['dining table'\]"):
        DATASETS["coco-chair"](instances=f["instances"], images=f["images"], synonyms=tmp_path / "short.txt")


def test_sugarcrepe_types_from_file_names(tmp_path):
    f = bf.sugarcrepe(tmp_path)
    ds = DATASETS["sugarcrepe"](path=f["path"], images=f["images"])
    assert ds.types == ["replace-att", "swap-obj"] and len(ds) == 3
    item = ds[0]
    assert item["id"] == "replace-att/0" and item["positive"] == "a red circle"
    assert item["negatives"] == [{"type": "replace-att", "text": "a blue circle"}]
    only = DATASETS["sugarcrepe"](path=f["path"], images=f["images"], types="swap-obj")
    assert [r["negatives"][0]["type"] for r in only] == ["swap-obj"]
    with pytest.raises(ValueError, match="unknown SugarCrepe type"):
        DATASETS["sugarcrepe"](path=f["path"], images=f["images"], types="swap-everything")


def test_aro_crops_to_the_box_and_types_by_relation_or_attributes(tmp_path):
    f = bf.aro(tmp_path)
    rel = DATASETS["aro"](path=f["relation"], images=f["images"])
    assert rel.task == "relation" and rel.min_type_count is None
    item = rel[1]
    assert item["image"].size == (10, 6) and item["negatives"][0] == {
        "type": "holding",
        "text": "the cup is holding the man",
    }
    att = DATASETS["aro"](path=f["attribution"], images=f["images"])
    assert att.min_type_count == 25 and att[0]["negatives"][0]["type"] == "white_wooden"
    assert DATASETS["aro"](path=f["relation"], images=f["images"], crop=False)[1]["image"].size == (16, 16)


def test_winoground_pairs_and_tags(tmp_path):
    f = bf.winoground(tmp_path)
    ds = DATASETS["winoground"](path=f["path"])  # images/ next to examples.jsonl by default
    item = ds[1]
    assert [image_key(im) for im in item["images"]] == [3, 4]
    assert item["captions"] == ["the dog bites the man", "the man bites the dog"]
    assert item["collapsed_tag"] == "Relation" and item["secondary_tag"] == "Symbolic" and item["num_main_preds"] == 1


def test_mmbench_tsv_base64_images_references_and_missing_options(tmp_path):
    ds = DATASETS["mmbench"](path=bf.mmbench(tmp_path))
    assert len(ds) == 3 and ds.categories == ["colour", "count", "shape"]
    assert ds[0]["options"] == {"A": "circle", "B": "square", "C": "star", "D": "ring"}
    assert ds[1]["options"] == {"A": "red", "B": "green", "C": "blue"} and ds[1]["hint"] == "Look closely."
    assert image_key(ds[2]["image"]) == 1 and ds[2]["hint"] is None  # "0": row 0's picture
    assert "group" not in ds[0]
    copies = DATASETS["mmbench"](path=bf.mmbench(tmp_path / "c", circular_copies=True))
    assert [r["group"] for r in copies] == ["0", "1", "2", "0", "0", "0"]


def test_multiple_choice_jsonl_and_bad_answers(tmp_path):
    bf.write_image(tmp_path / "a.png", 5)
    rows = [
        {"id": "q1", "image": "a.png", "question": "Shape?", "options": ["circle", "square"], "answer": "B"},
        {"id": "q2", "image": "a.png", "question": "Colour?", "A": "red", "B": "blue", "answer": "C"},
    ]
    path = bf.write_jsonl(tmp_path / "mc.jsonl", rows)
    with pytest.raises(BadRecord, match=r"mc\.jsonl:2: answer 'C' is not one of the option letters A, B"):
        DATASETS["multiple-choice"](path=path, images=tmp_path)
    with pytest.warns(UserWarning):
        ds = DATASETS["multiple-choice"](path=path, images=tmp_path, skip_bad=True)
    assert len(ds) == 1 and ds.skipped == 1 and ds[0]["options"] == {"A": "circle", "B": "square"}


def test_image_paths_outside_the_root_are_refused(tmp_path):
    f = bf.pope(tmp_path / "p")
    bf.write_image(tmp_path / "outside.png", 9)
    bf.write_jsonl(
        tmp_path / "p" / "evil_random.json", [{"image": "../../outside.png", "text": "Is it?", "label": "no"}]
    )
    with pytest.raises(BadRecord, match="escapes the data root"):
        DATASETS["pope"](questions=tmp_path / "p" / "evil_random.json", images=f["images"])


def test_mmstar_options_inside_the_question(tmp_path):
    bf.write_image(tmp_path / "a.png", 5)
    row = {
        "index": 7,
        "image": "a.png",
        "question": "Which is red?\nOptions: A: apple, B: pear",
        "answer": "A",
        "category": "coarse perception",
    }
    ds = DATASETS["mmbench"](path=bf.write_jsonl(tmp_path / "mmstar.jsonl", [row]), images=tmp_path)
    assert ds[0]["question"] == "Which is red?" and ds[0]["options"] == {"A": "apple", "B": "pear"}


def _break_json(path, edit):
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    "name, make, edit, params, where",
    [
        (
            "coco-captions",
            bf.coco_captions,
            lambda d: d["annotations"][1].pop("caption"),
            lambda f: dict(annotations=f["annotations"], images=f["images"]),
            r"captions_val2014\.json\[annotations\]\[1\]",
        ),
        (
            "karpathy",
            bf.karpathy,
            lambda d: d["images"][0]["sentences"][1].update(raw=""),
            lambda f: dict(path=f["path"], images=f["images"]),
            r"dataset_coco\.json\[images\]\[0\]\[sentences\]\[1\]",
        ),
        (
            "coco-chair",
            bf.coco_chair,
            lambda d: d["images"][1].pop("file_name"),
            lambda f: dict(instances=f["instances"], images=f["images"]),
            r"instances_val2014\.json\[images\]\[1\]",
        ),
        (
            "aro",
            bf.aro,
            lambda d: d[0].update(bbox_w=0),
            lambda f: dict(path=f["relation"], images=f["images"]),
            r"visual_genome_relation\.json\[0\]: the box has no area",
        ),
    ],
)
def test_bad_records_of_json_files_are_named_or_skipped(tmp_path, name, make, edit, params, where):
    f = make(tmp_path)
    _break_json(next(p for p in params(f).values() if str(p).endswith(".json")), edit)
    with pytest.raises(BadRecord, match=where):
        DATASETS[name](**params(f))
    with pytest.warns(UserWarning, match="skipped bad record"):
        ds = DATASETS[name](**params(f), skip_bad=True)
    assert ds.skipped == 1 and len(ds) >= 1


def test_bad_records_of_sugarcrepe_and_winoground_are_named_or_skipped(tmp_path):
    f = bf.sugarcrepe(tmp_path / "s")
    _break_json(f["path"] / "replace_att.json", lambda d: d["1"].update(negative_caption=d["1"]["caption"]))
    with pytest.raises(BadRecord, match=r"replace_att\.json\['1'\]: caption and negative_caption are the same"):
        DATASETS["sugarcrepe"](**f)
    with pytest.warns(UserWarning):
        assert DATASETS["sugarcrepe"](**f, skip_bad=True).skipped == 1
    w = bf.winoground(tmp_path / "w")
    lines = w["path"].read_text().splitlines()
    w["path"].write_text(lines[0] + "\n" + lines[1].replace("ex_1_img_1", "missing") + "\n")
    with pytest.raises(BadRecord, match=r"examples\.jsonl:2: image file .*missing\.png does not exist"):
        DATASETS["winoground"](path=w["path"])
    with pytest.warns(UserWarning):
        assert len(DATASETS["winoground"](path=w["path"], skip_bad=True)) == 1


def test_a_corrupt_picture_is_named_when_read(tmp_path):
    f = bf.vqav2(tmp_path)
    (f["images"] / bf.coco_name(2)).write_bytes(b"not a picture")
    ds = DATASETS["vqav2"](questions=f["questions"], annotations=f["annotations"], images=f["images"])
    with pytest.raises(BadRecord, match=r"questions\.json\[questions\]\[2\]: image cannot be decoded"):
        ds[2]
