import json

import pytest
import yaml

from modalign.cli import build_parser, main

TINY_RECIPE = {
    "name": "tiny-cli",
    "seed": 0,
    "model": {
        "kind": "dual",
        "vision": {
            "name": "vit",
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 32,
            "num_layers": 1,
            "num_heads": 2,
        },
        "text": {"name": "transformer", "hidden_size": 32, "num_layers": 1, "num_heads": 2},
        "embed_dim": 16,
        "loss": "siglip",
    },
    "stages": [
        {
            "name": "align",
            "objective": "contrastive",
            "data": {"name": "shapes", "n": 32, "image_size": 32},
            "steps": 4,
            "batch_size": 8,
            "lr": 0.001,
            "train": ["vision", "text", "head"],
            "log_every": 1,
        }
    ],
    "eval": [{"suite": "retrieval", "data": {"name": "shapes", "n": 16, "split": "heldout", "image_size": 32}}],
}


def test_every_subcommand_is_wired():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"quickstart", "train", "eval", "compare", "data", "export", "expand", "chat", "explain"} <= set(sub.choices)


def test_bad_recipe_exits_2_with_the_field_named(tmp_path, capsys):
    bad = dict(TINY_RECIPE, stages=[dict(TINY_RECIPE["stages"][0], train=["tower"])])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "stages.0.train" in err and "tower" in err


def test_override_that_does_not_fit_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(TINY_RECIPE))
    assert main(["train", str(path), "--set", "stages.3.steps=1"]) == 2
    assert "not an index" in capsys.readouterr().err


@pytest.mark.slow
def test_train_then_eval_then_compare_through_the_cli(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(TINY_RECIPE))
    out = tmp_path / "run"
    assert main(["train", str(path), "--out", str(out)]) == 0
    assert f"done: {out}  (4 steps)" in capsys.readouterr().out
    assert (out / "final" / "model.safetensors").exists()
    results = json.loads((out / "eval" / "results.json").read_text())
    assert "t2i_R@1" in results["suites"]["retrieval"]["metrics"]
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert sum("loss" in r and "event" not in r for r in logged) == 4
    assert (
        main(
            [
                "eval",
                str(out / "final"),
                "--suite",
                "geometry",
                "--data",
                "shapes:n=16,image_size=32",
                "--out",
                str(tmp_path / "ev2"),
            ]
        )
        == 0
    )
    assert main(["compare", str(out / "eval"), str(tmp_path / "ev2")]) == 0
    assert "t2i_R@1" in capsys.readouterr().out


def test_quickstart_long_part_takes_the_free_core_once_the_other_worker_is_done(tmp_path, capsys):
    import torch

    from modalign.quickstart import FREE_CORE, _grow_threads_when_free

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        on_step = _grow_threads_when_free(tmp_path, 2)
        on_step(None, 1, 1, {})
        assert torch.get_num_threads() == 1  # the other worker is still busy
        (tmp_path / FREE_CORE).touch()
        on_step(None, 2, 2, {})
        assert torch.get_num_threads() == 2
        assert "training on 2 threads from step 2" in capsys.readouterr().out
    finally:
        torch.set_num_threads(before)
