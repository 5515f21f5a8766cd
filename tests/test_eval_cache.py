from modalign.config import validate_recipe
from modalign.trainer.eval_cache import training_feature_cache

MODEL = {"kind": "dual", "vision": {"name": "vit"}, "text": {"name": "transformer"}}


def _recipe(*trains):
    stages = [
        {"name": f"s{i}", "objective": "contrastive", "data": {"name": "shapes"}, "steps": 1, "train": t}
        for i, t in enumerate(trains)
    ]
    return validate_recipe({"name": "r", "model": MODEL, "stages": stages})


def test_cache_reused_only_when_no_stage_trains_a_tower(tmp_path):
    (tmp_path / "cache" / "frozen").mkdir(parents=True)
    assert training_feature_cache(_recipe(["head"], ["head"]), tmp_path).directory == tmp_path / "cache" / "frozen"
    assert training_feature_cache(_recipe(["vision", "head"], ["head"]), tmp_path) is None  # stale features
    assert training_feature_cache(_recipe(["head"], ["text", "head"]), tmp_path) is None
    assert training_feature_cache(_recipe(["head"]), tmp_path / "elsewhere") is None  # nothing was cached


def test_trainer_shares_the_cache_until_a_tower_trains():
    from modalign.trainer.runner import _cache_name

    r = _recipe(["head"], ["head"], ["vision", "head"], ["head"])
    assert [_cache_name(r, s) for s in range(4)] == ["frozen", "frozen", "s2", "s3"]
