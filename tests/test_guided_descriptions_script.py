"""scripts/guided_descriptions.py: guided decoding of a stub describer that writes a same-coloured object's shape
twice, the budgets against the scenes, and the command line (the guide's parts: test_eval_pair_guide.py)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from test_eval_pair_guide import VOCAB, _Tokenizer
from test_rerank_descriptions_script import _Describer, _scores

from modalign.data.shapes import ShapesWorld
from modalign.eval import pair_guide

from script_loader import load_script

GUIDE = load_script("guided_descriptions")
RERANK = load_script("rerank_descriptions")


class _Repeater(_Describer):
    """Token by token, sentence k names object k's colour; its shape is the shape of the first earlier object of
    that colour, when there is one (a same-coloured shape written twice), with the object's own shape second."""

    def __init__(self, world, side):
        super().__init__(world, side)
        self.tokenizer = _Tokenizer()

    def generate(self, images, prompts, max_new_tokens=128, logits_processor=None):
        out = []
        for r, sc in enumerate(self._scenes(images)):
            plan = [("there", None), ("are", None), ("some", None), ("objects", None), (".", None)]
            for k, o in enumerate(sc["objects"]):
                first = next((p["shape"] for p in sc["objects"][:k] if p["color"] == o["color"]), o["shape"])
                plan += [("a", None), (o["color"], None), (first, o["shape"]), ("is", None), ("here", None),
                         (".", None)]
            row = []
            for top, second in plan:
                logits = torch.zeros(1, len(VOCAB))
                logits[0, VOCAB.index(top)] = 10.0
                if second is not None and second != top:
                    logits[0, VOCAB.index(second)] = 5.0
                if logits_processor is not None:
                    batch = torch.zeros(len(images), len(row), dtype=torch.long)
                    batch[r] = torch.tensor(row, dtype=torch.long)
                    big = logits.repeat(len(images), 1)
                    logits = logits_processor(batch, big)[r:r + 1]
                row.append(int(logits.argmax()))
            out.append(self.tokenizer.decode(row))
        return out


def _subjects(text):
    return Counter(RERANK.subjects(text)[1])


@pytest.mark.parametrize("budget", ["tokens", "one"])
def test_guide_names_the_same_coloured_objects_a_repeating_describer_skips(budget):
    n = 96
    world = ShapesWorld(task="chair", split="heldout", n=n)
    model = _Repeater(world, side=16)
    plain, guided, overruled = GUIDE.guide(model, world, budget=budget, batch_size=8, progress=False)
    truth = [world[i] for i in range(n)]
    objects, phrases = [r["objects"] for r in truth], [r["phrases"] for r in truth]
    scenes = [[(o["color"], o["shape"]) for o in world.scene(i)["objects"]] for i in range(n)]
    # per scene, the objects whose sentence the describer would give an earlier object's shape of their colour
    repeated = [sum(next(p for p in objs[:k + 1] if p[0] == o[0]) != o for k, o in enumerate(objs))
                for objs in scenes]
    repeats = [i for i in range(n) if repeated[i]]
    assert repeats and RERANK.misses(phrases, plain) == repeats
    m = RERANK.report(objects, phrases, {"greedy": plain, "guided": guided})
    assert m["guided"]["phrases_all_named"] == 1.0 and m["greedy"]["phrases_all_named"] < 1.0
    # a pair the scene holds twice (and no repeat): written twice only where the budget allows it
    twins = {i: p for i, objs in enumerate(scenes) for p, k in Counter(objs).items() if k > 1 and not repeated[i]}
    model, kinds = _Repeater(world, side=16), set()
    for i, pair in twins.items():
        shape, colour, background = _scores(model.image_embeddings(torch.tensor([i]))[0])
        apart = pair_guide.pair_budget(shape, colour, pair_guide.foreground_from_tokens(shape, background), 16)[pair] == 2
        assert _subjects(plain[i])[pair] == 2
        assert _subjects(guided[i])[pair] == (2 if apart and budget == "tokens" else 1)
        kinds.add(apart)
    assert kinds == {True, False}  # twins apart (two groups of cells) and touching (one) both met
    budgets = []
    GUIDE.guide(_Repeater(world, side=16), world, budget=budget, batch_size=8, progress=False, budgets_out=budgets)
    assert len(budgets) == n and GUIDE.budget_errors(budgets, [world.scene(i) for i in range(n)]) == (
        (0, 0) if budget == "tokens" else (0, sum(len(set(objs)) for objs in scenes)))
    cut = [i for i, p in twins.items() if _subjects(guided[i])[p] == 1]
    changed = [i for i in range(n) if plain[i] != guided[i]]
    assert changed == sorted(set(repeats) | set(cut))
    if not any(Counter(scenes[i])[p] > 1 for i in repeats for p in scenes[i]):
        assert overruled == sum(repeated) + len(cut)


def test_guide_refuses_an_unknown_budget():
    world = ShapesWorld(task="chair", split="heldout", n=2)
    with pytest.raises(ValueError, match="budget"):
        GUIDE.guide(_Repeater(world, 4), world, budget="cells", progress=False)
    with pytest.raises(ValueError, match="repair"):
        GUIDE.guide(_Repeater(world, 4), world, repair="cells", progress=False)


def test_main_runs_on_a_saved_tiny_describer_and_refuses_what_it_cannot_guide(tmp_path, capsys):
    from test_vlm_tiny_parts import CORPUS, tiny_cfg

    from modalign.models.vlm import VisionLanguageModel

    torch.manual_seed(0)
    VisionLanguageModel.from_config(tiny_cfg().model_copy(update={"region_words": 0.5}),
                                    text_corpus=CORPUS).save_pretrained(tmp_path / "rw")
    args = ["--scenes", "3", "--budget", "tokens", "--steer", "all", "--show", "3"]
    assert GUIDE.main([str(tmp_path / "rw")] + args) == 0
    out = capsys.readouterr().out
    assert "3 scenes, budget tokens, steer all, repair lm" in out and "the tokens' budgets hold" in out
    assert out.count("\ngreedy ") == out.count("\nguided ") == 1
    VisionLanguageModel.from_config(tiny_cfg(), text_corpus=CORPUS).save_pretrained(tmp_path / "plain")
    assert GUIDE.main([str(tmp_path / "plain"), "--scenes", "2"]) == 0  # budget one: no region words needed
    assert "budget one, steer none, repair lm" in capsys.readouterr().out
    for bad, says in ((["--budget", "tokens"], "region words"), (["--repair", "tokens"], "region words"),
                      (["--steer", "shapes"], "needs budget 'tokens'")):
        with pytest.raises(SystemExit):
            GUIDE.main([str(tmp_path / "plain")] + bad)
        assert says in capsys.readouterr().err


def test_steering_a_describer_that_gets_colours_right_names_what_the_budget_alone_does():
    n = 48
    world = ShapesWorld(task="chair", split="heldout", n=n)
    _, alone, _ = GUIDE.guide(_Repeater(world, side=16), world, budget="tokens", batch_size=8, progress=False)
    twins = {i for i in range(n) if len(set(world[i]["phrases"])) < len(world.scene(i)["objects"])}
    assert twins
    for steer in ("shapes", "all"):
        _, steered, _ = GUIDE.guide(_Repeater(world, side=16), world, budget="tokens", steer=steer, batch_size=8,
                                    progress=False)
        assert all(alone[i] == steered[i] for i in range(n) if i not in twins)


def test_budget_errors_by_hand():
    scenes = [{"objects": [{"color": "red", "shape": "star"}, {"color": "blue", "shape": "cross"}]},
              {"objects": [{"color": "red", "shape": "star"}]}]
    budgets = [Counter({("red", "star"): 2, ("green", "circle"): 1}), Counter({("red", "star"): 0})]
    assert GUIDE.budget_errors(budgets, scenes) == (1, 2)  # green circle extra; blue cross and the 0-budget star missed


class _GuidableRepeater(_Repeater):
    """_Repeater as the chair suite calls it (greedy, do_sample=False), a prefix-fusion model with region words."""

    fusion, region_words, tiler = "prefix", 0.3, None

    def stop_token_ids(self):
        return [VOCAB.index("<end>")]

    def generate(self, images, prompts, max_new_tokens=128, do_sample=False, logits_processor=None):
        assert not do_sample
        return super().generate(images, prompts, max_new_tokens, logits_processor)

    def score(self, images, texts):  # what makes a model generative to the suites; the chair suite never calls it
        raise AssertionError("not scored")


@pytest.mark.parametrize("steer", ["strict", "complete"])
def test_chair_suite_with_a_guide_decodes_as_the_script_and_names_what_the_describer_skips(steer):
    from modalign.eval.suites import SUITES
    from modalign.registry import ConfigError

    n = 24
    world = ShapesWorld(task="chair", split="heldout", n=n)
    _, guided, _ = GUIDE.guide(_GuidableRepeater(world, side=16), world, budget="tokens", steer=steer, batch_size=8,
                               progress=False)
    model = _GuidableRepeater(world, side=16)
    run = dict(vocabulary="shapes", batch_size=8, n_gallery=n, progress=False)
    plain = SUITES["chair"](model, world, **run)
    steered = SUITES["chair"](model, world, guide="tokens", steer=steer, **run)
    assert [s["answer"] for s in steered["samples"]] == guided
    assert plain["metrics"]["phrases_all_named"] < 1.0 and steered["metrics"]["phrases_all_named"] == 1.0
    assert steered["metrics"]["all_named"] == 1.0
    assert steered["settings"]["guide"] == {"budget": "tokens", "steer": steer, "repair": "lm"}
    assert plain["settings"]["guide"] is None
    for bad, says in ((dict(steer="all"), "set guide"), (dict(guide="tokens", num_beams=2), "num_beams: 1"),
                      (dict(guide="cells"), "budget must be one of"),
                      (dict(guide="one", steer="all"), "needs budget 'tokens'")):
        with pytest.raises(ConfigError, match=says):
            SUITES["chair"](model, world, **(run | bad))
    model.region_words = 0
    with pytest.raises(ConfigError, match="not trained with region words"):
        SUITES["chair"](model, world, guide="tokens", **run)
