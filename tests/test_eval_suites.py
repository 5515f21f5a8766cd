"""Every suite on tiny fake models whose outputs are known, so the expected numbers are computed by hand."""

import json
import math

import numpy as np
import pytest
from fakes import KeyedDualEncoder, ListDataset, ScriptedVLM, color_image

from modalign.eval.suites import SUITES
from modalign.registry import ConfigError

E = np.eye(4)


def cap(i, key, text, **kw):
    return {"id": f"img{key}", "image": color_image(key), "text": text, "meta": {}, **kw}


def test_retrieval_hand_case():
    model = KeyedDualEncoder(
        {0: E[0], 1: E[1], 2: E[2]}, {"zero": E[0], "zero-bad": E[1], "one": E[1], "two": E[1] + 0.1 * E[2]}
    )
    data = ListDataset([cap(0, 0, "zero"), cap(1, 0, "zero-bad"), cap(2, 1, "one"), cap(3, 2, "two")])
    r = SUITES["retrieval"](model, data, progress=False)
    m = r["metrics"]
    # t2i: "zero" ok, "zero-bad" ranks last (ties against it), "one" ok, "two" second behind img1
    assert m["t2i_R@1"] == pytest.approx(2 / 4) and m["t2i_R@5"] == 1.0
    # i2t: img0 ok; img1 ties with "zero-bad" (counted ahead); img2's only caption tops its row
    assert m["i2t_R@1"] == pytest.approx(2 / 3)
    assert r["settings"]["n_images"] == 3 and len(r["settings"]["model_hash"]) == 16


def test_zeroshot_prompt_ensemble_and_per_class_recall():
    def text_vec(t):
        v = E[0] if "red" in t else E[1]
        return v + (0.3 * E[2] if "shape" in t else 0)  # template-specific direction, averaged out by the ensemble

    model = KeyedDualEncoder({0: E[0], 1: E[1], 2: E[0] + 0.1 * E[1]}, text_vec)
    rows = [cap(0, 0, "", label=0), cap(1, 0, "", label=0), cap(2, 1, "", label=1), cap(3, 2, "", label=1)]
    data = ListDataset(rows, classnames=["red", "green"], templates=["a {} shape", "the {}"])
    r = SUITES["zeroshot"](model, data, progress=False)
    assert r["metrics"]["top1"] == pytest.approx(3 / 4)
    assert r["metrics"]["mean_per_class_recall"] == pytest.approx((1.0 + 0.5) / 2)
    assert r["figures"]["confusion"]["matrix"] == [[2, 0], [1, 1]]
    r2 = SUITES["zeroshot"](model, data, descriptions=[["red"], ["green", "green shape"]], progress=False)
    assert r2["settings"]["prompts"] == "per-class descriptions"
    data.descriptions = {"red": ["green"], "green": ["red"]}  # swapped: only image key 2 (label 1) lands right
    r3 = SUITES["zeroshot"](model, data, prompts="descriptions", progress=False)
    assert r3["metrics"]["top1"] == pytest.approx(1 / 4)
    assert SUITES["zeroshot"](model, data, progress=False)["metrics"]["top1"] == pytest.approx(3 / 4)
    with pytest.raises(ConfigError, match="class names"):
        SUITES["zeroshot"](model, ListDataset(rows), progress=False)


def test_geometry_gap_and_scale():
    model = KeyedDualEncoder({0: E[0], 1: E[1], 2: E[2]}, lambda t: E[3])
    data = ListDataset([cap(i, i, f"t{i}") for i in range(3)])
    r = SUITES["geometry"](model, data, k=10, progress=False)
    m = r["metrics"]
    assert m["gap_norm"] == pytest.approx(math.sqrt(1 / 3 + 1))  # mean x = (1/3,1/3,1/3,0), mean y = e3
    assert m["alignment"] == pytest.approx(2.0)
    assert r["settings"]["logit_scale"] == pytest.approx(10.0) and r["settings"]["k"] == 2
    # every text is identical: loss = log(3) whatever the scale
    assert m["contrastive_loss"] == pytest.approx(math.log(3))
    assert len(r["figures"]["pca"]["image"]) == 3 and 0.0 in r["figures"]["gap_curve"]["lambdas"]


def test_linear_probe_on_separable_keys():
    model = KeyedDualEncoder({k: E[k % 2] + 0.01 * k * E[2] for k in range(20)}, {})
    data = ListDataset([cap(k, k, "", label=k % 2) for k in range(20)])
    r = SUITES["linear_probe"](model, data, seed=1, cs=(1.0, 10.0), progress=False)
    assert r["metrics"]["test_acc"] == 1.0 and r["settings"]["split_sizes"] == [12, 4, 4]


def test_caption_groups_references_by_image_and_writes_gallery(tmp_path):
    model = ScriptedVLM(answer=lambda key, p: {0: "a red circle", 1: "a blue square"}[key])
    data = ListDataset([cap(0, 0, "a red circle"), cap(1, 0, "red circle"), cap(2, 1, "a green triangle")])
    r = SUITES["caption"](model, data, out_dir=tmp_path, progress=False)
    from modalign.eval.metrics import caption_metrics

    assert model.generated == 2  # one generation per unique image
    assert r["metrics"] == caption_metrics(
        ["a red circle", "a blue square"], [["a red circle", "red circle"], ["a green triangle"]]
    )
    assert (tmp_path / r["samples"][0]["image"]).exists()


def test_caption_without_a_prompt_continues_the_caption_format():
    model = ScriptedVLM(answer=lambda key, p: "a red circle" if p is None else "I see a red circle.")
    data = ListDataset([cap(0, 0, "a red circle")])
    r = SUITES["caption"](model, data, prompt=None, progress=False)
    assert r["samples"][0]["answer"] == "a red circle" and r["settings"]["prompt"] is None
    assert SUITES["caption"](model, data, progress=False)["samples"][0]["answer"] == "I see a red circle."


def test_vqa_per_qtype():
    model = ScriptedVLM(answer=lambda key, p: "Two" if "How many" in p else "blue")
    rows = [
        {"id": "q0", "image": color_image(0), "question": "How many?", "answer": "2", "qtype": "count"},
        {"id": "q1", "image": color_image(0), "question": "What color?", "answer": "red", "qtype": "color"},
    ]
    r = SUITES["vqa"](model, ListDataset(rows), progress=False)
    assert r["metrics"] == {"accuracy": 0.5, "acc_color": 0.0, "acc_count": 1.0}


def test_vqa_likelihood_mode_picks_the_likeliest_choice_per_item():
    def score(key, text, prompt):  # the model prefers "yes" for image 0 and "no" for image 1
        return {0: {"yes": -0.2, "no": -2.0}, 1: {"yes": -1.5, "no": -0.4}}[key][text]

    rows = [
        {"id": f"q{k}", "image": color_image(k), "question": "Worn on the feet?", "answer": a, "qtype": "feet"}
        for k, a in [(0, "yes"), (1, "yes"), (1, "no")]
    ]
    with pytest.raises(ConfigError, match="choices"):
        SUITES["vqa"](ScriptedVLM(score=score), ListDataset(rows), mode="likelihood", progress=False)
    r = SUITES["vqa"](
        ScriptedVLM(score=score), ListDataset(rows), mode="likelihood", choices=["yes", "no"], progress=False
    )
    assert r["metrics"] == {"accuracy": pytest.approx(2 / 3), "acc_feet": pytest.approx(2 / 3)}
    assert r["settings"]["mode"] == "likelihood" and r["samples"][0]["answer"].startswith("yes (-0.200)")
    own = [{**row, "choices": ["yes", "no"]} for row in rows]  # or each item's own choices
    assert (
        SUITES["vqa"](ScriptedVLM(score=score), ListDataset(own), mode="likelihood", progress=False)["metrics"]
        == (r["metrics"])
    )


def pope_rows():
    present = {0: {"dog"}, 1: {"cat"}}
    rows = []
    for key, obj, sampler in [(0, "dog", "random"), (0, "cat", "random"), (1, "cat", "popular"), (1, "car", "popular")]:
        rows.append(
            {
                "id": f"{key}-{obj}",
                "image": color_image(key),
                "question": f"Is there a {obj} in the image?",
                "answer": "yes" if obj in present[key] else "no",
                "object": obj,
                "sampler": sampler,
            }
        )
    return rows


def test_pope_generate_always_yes():
    model = ScriptedVLM(answer=lambda key, p: "Yes, there is.")
    r = SUITES["pope"](model, ListDataset(pope_rows()), progress=False)
    m = r["metrics"]
    assert m["yes_ratio"] == 1.0 and m["accuracy"] == 0.5 and m["random_yes_ratio"] == 1.0
    assert m["f1"] == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert set(r["figures"]["pope_samplers"]) == {"random", "popular"}


def test_pope_likelihood_mode():
    def score(key, text, prompt):  # P(yes) high only for the dog question
        return (-0.1 if "dog" in prompt else -3.0) if text == "yes" else -1.0

    r = SUITES["pope"](ScriptedVLM(score=score), ListDataset(pope_rows()), mode="likelihood", progress=False)
    # predictions: yes, no, no, no against labels yes, no, yes, no
    assert r["metrics"]["accuracy"] == 0.75 and r["metrics"]["yes_ratio"] == 0.25
    assert r["metrics"]["popular_accuracy"] == 0.5


def test_chair_suite_highlights_hallucinations(tmp_path):
    model = ScriptedVLM(answer=lambda key, p: "A dog and two cats.")
    rows = [{"id": "c0", "image": color_image(0), "objects": ["dog"]}]
    r = SUITES["chair"](
        model, ListDataset(rows, vocabulary={"dog": [], "cat": ["kitten"]}), out_dir=tmp_path, progress=False
    )
    assert r["metrics"] == {"CHAIR_i": 0.5, "CHAIR_s": 1.0, "recall": 1.0, "all_named": 1.0}
    assert r["samples"][0]["hallucinated"] == ["cat"] and r["samples"][0]["highlight"] == ["cats"]


def test_chair_vocabulary_is_a_mapping_a_json_file_of_one_or_the_datasets_own(tmp_path):
    model = ScriptedVLM(answer=lambda key, p: "A puppy and a kitten.")
    rows = [{"id": "c0", "image": color_image(0), "objects": ["dog"]}]
    table = {"dog": ["puppy"], "cat": ["kitten"]}
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps(table))
    want = {"CHAIR_i": 0.5, "CHAIR_s": 1.0, "recall": 1.0, "all_named": 1.0}
    for vocabulary in (table, str(path), path):
        r = SUITES["chair"](model, ListDataset(rows), vocabulary=vocabulary, progress=False)
        assert r["metrics"] == want and r["samples"][0]["hallucinated"] == ["cat"]
    own = SUITES["chair"](model, ListDataset(rows, vocabulary=table), progress=False)
    assert own["metrics"] == want
    given = SUITES["chair"](model, ListDataset(rows, vocabulary={"dog": []}), vocabulary=table, progress=False)
    assert given["metrics"] == want  # a given table wins over the dataset's
    bare = SUITES["chair"](model, ListDataset(rows), progress=False)  # only "dog", no synonyms: nothing named
    assert bare["metrics"]["recall"] == 0.0 and bare["metrics"]["CHAIR_i"] == 0.0


def test_chair_vocabulary_errors_name_the_file_or_the_source(tmp_path):
    model = ScriptedVLM(answer=lambda key, p: "A dog.")
    data = ListDataset([{"id": "c0", "image": color_image(0), "objects": ["dog"]}])
    with pytest.raises(ConfigError, match=r"chair vocabulary file 'shapes' does not exist"):
        SUITES["chair"](model, data, vocabulary="shapes", progress=False)
    broken = tmp_path / "broken.json"
    broken.write_text("{dog: ")
    with pytest.raises(ConfigError, match=r"chair vocabulary file '.*broken.json' is not readable JSON"):
        SUITES["chair"](model, data, vocabulary=broken, progress=False)
    for bad, problem in (
        (["dog"], "got list"),
        ({}, "got dict"),
        ({"dog": "puppy"}, "'dog' maps to 'puppy', not a list of strings"),
        ({"dog": [1]}, r"'dog' maps to \[1\], not a list of strings"),
    ):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bad))
        with pytest.raises(ConfigError, match=rf"chair vocabulary file '.*bad.json' must be .*; {problem}"):
            SUITES["chair"](model, data, vocabulary=path, progress=False)
    with pytest.raises(ConfigError, match=r"the chair suite's vocabulary must be"):
        SUITES["chair"](model, data, vocabulary={"dog": None}, progress=False)
    with pytest.raises(ConfigError, match=r"the dataset's vocabulary \(ListDataset.vocabulary\) must be"):
        SUITES["chair"](model, ListDataset(data.rows, vocabulary=["dog"]), progress=False)


def test_chair_reads_the_shapes_worlds_own_vocabulary():
    from modalign.data.worlds.shapes import ShapesWorld
    from modalign.eval.metrics import chair

    world = ShapesWorld(task="chair", n=6, seed=1, image_size=32)
    said = "A disc, a box and a plus sign."  # synonyms only: circle, square, cross
    r = SUITES["chair"](ScriptedVLM(answer=lambda key, p: said), world, progress=False)
    truths = [world.record(i)["objects"] for i in range(len(world))]
    want = chair([said] * len(truths), truths, world.vocabulary)
    assert want["mentions"] == 3 * len(truths)  # every synonym read as its shape
    keys = ("CHAIR_i", "CHAIR_s", "recall", "all_named")
    assert {k: r["metrics"][k] for k in keys} == {k: want[k] for k in keys}
    assert r["settings"]["vocabulary_size"] == len(world.vocabulary)


def _one_described_image():
    """(dataset, model) for the description suites: one image of a dog, a scripted VLM that says so."""
    rows = [{"id": "c0", "image": color_image(0), "objects": ["dog"], "text": "A dog."}]
    return ListDataset(rows, vocabulary={"dog": []}), ScriptedVLM(answer=lambda key, p: "A dog.")


@pytest.mark.parametrize("suite", ["chair", "caption"])
def test_description_suites_pass_a_repetition_penalty_on_and_refuse_bad_ones(suite):
    data, model = _one_described_image()
    r = SUITES[suite](model, data, repetition_penalty=1.2, batch_size=1, progress=False)
    default = SUITES[suite](model, data, batch_size=1, progress=False)
    assert model.repetition_penalties == [1.2, 1.0]
    assert r["settings"]["repetition_penalty"] == 1.2 and default["settings"]["repetition_penalty"] == 1.0
    for bad in (0, -2, "high"):
        with pytest.raises(ConfigError, match="repetition_penalty must be a number > 0"):
            SUITES[suite](model, data, repetition_penalty=bad, progress=False)


@pytest.mark.parametrize("suite", ["chair", "caption"])
def test_description_suites_pass_beams_on_record_the_decoding_and_refuse_bad_ones(suite):
    data, model = _one_described_image()
    r = SUITES[suite](model, data, num_beams=4, batch_size=1, progress=False)
    default = SUITES[suite](model, data, batch_size=1, progress=False)
    assert model.num_beams == [4, 1]
    assert r["settings"]["decoding"] == "beam search (4 beams)" and default["settings"]["decoding"] == "greedy"
    for bad in (0, 1.5, "4"):
        with pytest.raises(ConfigError, match="num_beams must be an integer >= 1"):
            SUITES[suite](model, data, num_beams=bad, progress=False)


def test_compositional_strict_per_type_with_dual_encoder():
    model = KeyedDualEncoder({0: E[0]}, {"pos": E[0], "swapped": E[0], "replaced": E[1]})
    rows = [
        {
            "id": "p0",
            "image": color_image(0),
            "positive": "pos",
            "negatives": [{"type": "swap", "text": "swapped"}, {"type": "replace", "text": "replaced"}],
        }
    ]
    r = SUITES["compositional"](model, ListDataset(rows), progress=False)
    assert r["metrics"]["acc_swap"] == 0.0 and r["metrics"]["acc_replace"] == 1.0 and r["metrics"]["macro"] == 0.5


def test_winoground_with_generative_scores():
    table = {
        (0, "c0"): 2.0,
        (1, "c0"): 1.0,
        (0, "c1"): 1.0,
        (1, "c1"): 3.0,  # item 0: all right
        (2, "d0"): 2.0,
        (3, "d0"): 3.0,
        (2, "d1"): 1.0,
        (3, "d1"): 1.0,
    }  # item 1: neither
    model = ScriptedVLM(score=lambda key, text, p: table[(key, text)])
    rows = [
        {"id": "w0", "images": [color_image(0), color_image(1)], "captions": ["c0", "c1"]},
        {"id": "w1", "images": [color_image(2), color_image(3)], "captions": ["d0", "d1"]},
    ]
    r = SUITES["winoground"](model, ListDataset(rows), progress=False)
    assert r["metrics"] == {"text": 0.5, "image": 0.5, "group": 0.5}


def test_grounding_pixel_and_normalized():
    rows = [
        {"id": "g0", "image": color_image(0, size=20), "expression": "the square", "box": [0, 0, 10, 10]},
        {"id": "g1", "image": color_image(1, size=20), "expression": "the circle", "box": [0, 0, 5, 5]},
    ]
    model = ScriptedVLM(answer=lambda key, p: "[0, 0, 10, 10]" if key == 0 else "no idea")
    r = SUITES["grounding"](model, ListDataset(rows), progress=False)
    assert r["metrics"] == {"acc@0.5": 0.5, "mean_iou": 0.5, "unparsed": 0.5}
    model = ScriptedVLM(answer=lambda key, p: "[0, 0, 0.5, 0.5]")
    r = SUITES["grounding"](model, ListDataset(rows[:1]), coords="normalized", progress=False)
    assert r["metrics"]["acc@0.5"] == 1.0


def test_wrong_model_kind_is_explained_and_hash_tracks_weights():
    with pytest.raises(ConfigError, match="generative model"):
        SUITES["pope"](KeyedDualEncoder({0: E[0]}, {}), ListDataset(pope_rows()), progress=False)
    from modalign.eval.suites.common import model_fingerprint

    m = ScriptedVLM()
    h = model_fingerprint(m)
    with __import__("torch").no_grad():
        m.weight += 1
    assert model_fingerprint(m) != h


def test_linear_probe_trains_on_train_data_and_tests_on_the_whole_dataset(monkeypatch):
    from modalign.data import DATASETS

    model = KeyedDualEncoder({k: E[k % 2] + 0.01 * k * E[2] for k in range(30)}, {})
    train = [cap(k, k, "", label=k % 2) for k in range(20)]
    monkeypatch.setitem(DATASETS, "probe-train", lambda: ListDataset(train))
    test = ListDataset([cap(k, k, "", label=k % 2) for k in range(20, 30)])
    r = SUITES["linear_probe"](model, test, seed=1, cs=(1.0,), train_data={"name": "probe-train"}, progress=False)
    assert r["metrics"]["test_acc"] == 1.0 and r["settings"]["split_sizes"] == [16, 4, 10]


def test_linear_probe_tower_features_need_a_dual_encoder_with_tower_access():
    model = KeyedDualEncoder({k: E[k % 2] for k in range(10)}, {})
    data = ListDataset([cap(k, k, "", label=k % 2) for k in range(10)])
    with pytest.raises(ConfigError, match="embed_image_features"):
        SUITES["linear_probe"](model, data, features="tower", progress=False)


def test_pair_scores_embeds_each_distinct_image_and_text_once():
    from modalign.eval.suites.common import pair_scores

    model = KeyedDualEncoder({0: E[0], 1: E[1]}, {"a": E[0], "b": E[1]})
    seen = []
    original = model.embed_images
    model.embed_images = lambda ims: seen.append(len(ims)) or original(ims)
    im0, im1 = color_image(0), color_image(1)
    scores = pair_scores(model, [im0, im0, im0, im1], ["a", "b", "a", "b"], "", 16, progress=False)
    assert seen == [2] and np.allclose(scores, [1.0, 0.0, 1.0, 1.0])
