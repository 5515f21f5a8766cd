"""The trainer on a real DualEncoder (toy-size ViT + transformer text tower, shapes world): LiT stage with the
vision features cached, a full stage, exact kill-and-resume, and 2-process DDP equal to 1 process for CLIP and
SigLIP (their losses all-gather features with gradient)."""

import re
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent / "dist_scripts"
sys.path.insert(0, str(HERE))
from test_train_dist import torchrun  # noqa: E402
from train_toys import DDP_LR, dual_recipe, final_state, log_series  # noqa: E402

from modalign.models import build_model, load_model  # noqa: E402
from modalign.trainer import run_recipe  # noqa: E402
from modalign.trainer.runner import _seed_all  # noqa: E402

KEY_BIAS = re.compile(r"(attention\.self\.key|k_proj)\.bias$")


@pytest.mark.slow
def test_dual_encoder_lit_then_full_and_exact_resume(tmp_path):
    whole = run_recipe(dual_recipe(), tmp_path / "whole", progress=False)
    lit, full = whole["stages"]
    assert lit["cache"] == {"hits": 4, "misses": 8} and full["cache"] is None  # 8 samples, 3 batches of 4
    assert lit["trainable"] < full["trainable"] and full["frozen"] == 0
    _seed_all(0)  # the runner seeds with recipe.seed, then builds the model
    init = build_model(dual_recipe().model).state_dict()
    after_lit = load_model(tmp_path / "whole" / "stages" / "lit").state_dict()
    final = load_model(tmp_path / "whole" / "final").state_dict()
    vision = [k for k in init if k.startswith("vision.") and init[k].is_floating_point()]
    text = [k for k in init if k.startswith("text.") and k.endswith("weight")]
    assert vision and all(torch.equal(init[k], after_lit[k]) for k in vision)  # LiT: locked
    assert any(not torch.equal(init[k], after_lit[k]) for k in text)
    assert any(not torch.equal(after_lit[k], final[k]) for k in vision)  # full stage: trains

    # killed mid-LiT (checkpoint at 2), then across the stage boundary (checkpoint at 3, the end of LiT)
    run_recipe(dual_recipe(), tmp_path / "killed", progress=False, stop_after_steps=2)
    run_recipe(dual_recipe(), tmp_path / "killed", resume=True, progress=False, stop_after_steps=4)
    resumed = run_recipe(dual_recipe(), tmp_path / "killed", resume=True, progress=False)
    assert resumed["resumed_from"].endswith("step-00000003")
    want, got = final_state(tmp_path / "whole"), final_state(tmp_path / "killed")
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)


@pytest.mark.dist
def test_dual_encoder_two_processes_equal_one(tmp_path):
    torchrun("train_ddp_dual.py", str(tmp_path / "ddp"), "clip,siglip")
    for loss in ("clip", "siglip"):
        run_recipe(dual_recipe(loss, lr=DDP_LR), tmp_path / loss, progress=False)
        _seed_all(0)
        init = build_model(dual_recipe(loss).model).state_dict()
        want, got = final_state(tmp_path / loss), final_state(tmp_path / "ddp" / loss)
        # Attention key biases are skipped: softmax is shift-invariant, so their true gradient is exactly zero and
        # what they get is float rounding noise, which Adam (m / sqrt(v)) turns into full +-lr steps of random sign.
        keys = [k for k in want if not KEY_BIAS.search(k) and want[k].is_floating_point()]
        diffs = torch.cat([(want[k] - got[k]).abs().flatten() for k in keys])
        moved = torch.cat([(want[k] - init[k]).abs().flatten() for k in keys])
        assert float(moved.max()) > 100 * float(diffs.max())
        # Adam's first steps are ~lr * sign(grad): an entry whose gradient is as small as eps (1e-8) moves by a
        # fraction of lr that float summation order can change, so single entries may differ by a few 1e-5 (of
        # steps of 2e-3); the bulk must agree to rounding.
        assert float(diffs.max()) < 5e-5 and float(diffs.mean()) < 1e-7, loss
        # Adam is blind to a constant gradient scale: the logged global loss and gradient norm check the scaling
        for key in ("loss", "grad_norm"):
            a, b = log_series(tmp_path / loss, key), log_series(tmp_path / "ddp" / loss, key)
            assert len(a) == 5 and all(abs(x - y) <= 1e-5 * max(1.0, abs(x)) for x, y in zip(a, b)), (key, a, b)
