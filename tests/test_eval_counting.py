"""Evaluation never merges or double-counts: pictures are grouped by content, not id; a bad record is left out and
counted, never replaced by its neighbour; a recipe's eval: section fails before its training."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from fakes import KeyedDualEncoder, ListDataset, ScriptedVLM, color_image, image_key

from modalign.api import run_recipe
from modalign.config import RecipeConfig
from modalign.data import DATASETS
from modalign.data.records import BadRecord
from modalign.eval.suites import SUITES
from modalign.registry import ConfigError

sys.path.insert(0, str(Path(__file__).parent / "dist_scripts"))
from train_toys import dual_recipe

N = 20
E = np.eye(N)


def test_distinct_pictures_sharing_an_id_are_not_merged():
    # text i is closest to picture i+1: a correct retrieval scores R@1 = 0; merged into one "image" it scored 1.0
    model = KeyedDualEncoder({k: E[k] for k in range(N)}, lambda t: E[(int(t[1:]) + 1) % N])
    rows = [{"id": "same", "image": color_image(k), "text": f"t{k}"} for k in range(N)]
    r = SUITES["retrieval"](model, ListDataset(rows), progress=False)
    assert r["settings"]["n_images"] == N and r["metrics"]["t2i_R@1"] == 0.0 and r["metrics"]["i2t_R@1"] == 0.0
    vlm = ScriptedVLM(answer=lambda key, prompt: f"picture {key}")
    c = SUITES["caption"](vlm, ListDataset(rows), progress=False)
    assert vlm.generated == N and [s["answer"] for s in c["samples"]][:3] == ["picture 0", "picture 1", "picture 2"]


def test_one_picture_under_several_captions_is_still_one_image():
    model = KeyedDualEncoder({0: E[0], 1: E[1]}, lambda t: E[int(t[-1])])
    rows = [{"id": f"r{i}", "image": color_image(i % 2), "text": f"cap{i % 2}"} for i in range(6)]
    r = SUITES["retrieval"](model, ListDataset(rows), progress=False)
    assert (r["settings"]["n_images"], r["settings"]["n_texts"]) == (2, 6) and r["metrics"]["i2t_R@1"] == 1.0


@pytest.fixture
def captions(tmp_path):
    """5 records: index 2's file is corrupt (found only when decoded), and a 6th line is bad at read time."""
    for k in range(5):
        if k == 2:
            (tmp_path / f"{k}.png").write_bytes(b"not a png")
        else:
            color_image(10 * k).save(tmp_path / f"{k}.png")
    lines = [{"image": f"{k}.png", "text": f"t{k}"} for k in range(5)] + [{"image": "missing.png", "text": "x"}]
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_a_bad_record_is_skipped_and_counted_not_replaced(captions):
    seen = []
    model = KeyedDualEncoder({10 * k: E[k] for k in range(5)}, lambda t: E[int(t[1:])])
    model.embed_images = (lambda f: lambda ims: (seen.extend(image_key(i) for i in ims), f(ims))[1])(model.embed_images)
    with pytest.warns(UserWarning, match="skipped bad record"):
        ds = DATASETS["image-captions"](path=str(captions), skip_bad=True)
        r = SUITES["retrieval"](model, ds, progress=False)
    assert sorted(seen) == [0, 10, 30, 40]  # record 3 is not read in record 2's place (and counted twice)
    s = r["settings"]
    assert (s["n_evaluated"], s["skipped"], s["n_texts"]) == (4, 2, 4)
    assert s["skipped_records"][0]["index"] == 2 and "c.jsonl:3" in s["skipped_records"][0]["error"]
    assert r["metrics"]["t2i_R@1"] == 1.0


def test_without_skip_bad_the_bad_record_is_an_error(captions):
    strict = captions.with_name("strict.jsonl")  # the five records whose paths exist; record 2 decodes badly
    strict.write_text("\n".join(captions.read_text().splitlines()[:5]) + "\n")
    model = KeyedDualEncoder({10 * k: E[k] for k in range(5)}, lambda t: E[int(t[1:])])
    with pytest.raises(BadRecord, match=r"strict\.jsonl:3: image cannot be decoded"):
        SUITES["retrieval"](model, DATASETS["image-captions"](path=str(strict)), progress=False)


EVAL_MISTAKES = {
    "unknown suite": ({"suite": "retrieve", "data": {"name": "shapes", "n": 4}}, "unknown eval suite 'retrieve'"),
    "parameter of another suite": (
        {"suite": "retrieval", "data": {"name": "shapes", "n": 4}, "max_new_tokens": 3},
        "does not take max_new_tokens",
    ),
    "boolean for a number": ({"suite": "retrieval", "data": {"name": "shapes", "n": 4}, "batch_size": True}, "boolean"),
    "missing data path": ({"suite": "retrieval", "data": {"name": "image-captions", "path": "/nope.csv"}}, "nope.csv"),
    "unknown dataset option": ({"suite": "retrieval", "data": {"name": "shapes", "colour": 3}}, "does not take colour"),
}


@pytest.mark.parametrize("kind", list(EVAL_MISTAKES))
def test_a_mistake_in_eval_fails_before_any_training(tmp_path, kind):
    entry, message = EVAL_MISTAKES[kind]
    recipe = RecipeConfig.model_validate({**dual_recipe().model_dump(), "eval": [entry]})
    with pytest.raises(ConfigError, match=message):
        run_recipe(recipe, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoints").exists() and not (tmp_path / "run" / "log.jsonl").exists()


def test_the_suite_names_the_records_it_could_not_use_in_results_json(tmp_path, captions):
    from modalign.eval.runner import run_suites

    model = KeyedDualEncoder({10 * k: E[k] for k in range(5)}, lambda t: E[int(t[1:])])
    spec = {"suite": "retrieval", "data": {"name": "image-captions", "path": str(captions), "skip_bad": True}}
    with pytest.warns(UserWarning):
        run_suites(model, [spec], tmp_path / "eval", DATASETS, progress=False, report=False)
    saved = json.loads((tmp_path / "eval" / "results.json").read_text())["suites"]["retrieval"]["settings"]
    assert saved["skipped"] == 2 and saved["n_evaluated"] == 4
