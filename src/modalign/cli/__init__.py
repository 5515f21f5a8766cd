"""The `modalign` command: train, eval, compare, data, quickstart, export, expand, chat, ask, tool-traces, explain,
serve.

Each subcommand's arguments live in a module of this package next to what serves it (data.py, eval.py, explain.py,
chat.py, serve.py); this module only assembles the parser and turns configuration mistakes and bad inputs into one
clear line and exit status 2, and a training run that diverged (trainer/guard.py) into one and exit status 3.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _train_main(args) -> int:
    from ..api import run_recipe
    from ..config import load_recipe

    recipe = load_recipe(args.recipe, args.set)
    out = args.out or os.path.join("runs", recipe.name)
    result = run_recipe(recipe, out, resume=args.resume, run_eval=not args.no_eval)
    print(f"done: {out}  ({result['train']['global_step']} steps)")
    return 0


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="run a recipe's stages (works under torchrun for DDP)")
    p.add_argument("recipe", help="a built-in recipe name (modalign list recipes) or a YAML path, e.g. llava-shapes")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field, e.g. --set stages.0.steps=100 (repeatable)",
    )
    p.add_argument("--out", help="output folder (default runs/<recipe name>)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--no-eval", action="store_true", help="skip the recipe's eval suites")
    p.set_defaults(func=_train_main)


def _quickstart_main(args) -> int:
    from ..quickstart import run_quickstart

    run_quickstart(args.out, fast=args.fast, parts=args.parts.split(",") if args.parts else None, workers=args.workers)
    return 0


def _add_quickstart(sub) -> None:
    p = sub.add_parser("quickstart", help="the main job: train and evaluate the built-in recipes, write a report")
    p.add_argument("--out", default="runs/quickstart")
    p.add_argument("--fast", action="store_true", help="tiny step counts (a smoke run, numbers not meaningful)")
    p.add_argument("--parts", help="comma-separated subset of: lit, siglip, llava")
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="2 (default): LiT and the shapes parts run side by side in two processes; 1: one after another",
    )
    p.set_defaults(func=_quickstart_main)


def _export_main(args) -> int:
    from ..models import load_model
    from ..models.export_llava import export_llava_hf

    if args.to != "llava-hf":
        raise SystemExit(f"unknown export format {args.to!r}; supported: llava-hf")
    export_llava_hf(load_model(args.checkpoint), args.out)
    print(f"exported to {args.out}")
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export a trained model to another library's format")
    p.add_argument("checkpoint")
    p.add_argument("--to", default="llava-hf", help="llava-hf: a directory transformers' LLaVA class loads")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_export_main)


def _expand_main(args) -> int:
    from pathlib import Path

    from ..models import load_model
    from ..models.lm_expand import expand_lm_depth, probe_logit_change

    out = Path(args.out)
    if (out / "model.safetensors").exists():
        raise SystemExit(f"{out} already holds a model: give a new --out directory")
    model = load_model(args.checkpoint)
    if not hasattr(model, "base_lm"):
        raise SystemExit(f"{args.checkpoint} is not a vision-language model (expand deepens a `kind: vlm` LM)")
    expanded = expand_lm_depth(model, args.add_lm_layers)  # refuses LMs it cannot deepen, with the reason
    before = expanded.base_lm().config.num_hidden_layers - args.add_lm_layers
    change = probe_logit_change(model, expanded)
    expanded.save_pretrained(out)
    print(
        f"LM {before} -> {before + args.add_lm_layers} layers; logits on a probe image and prompt change by at most "
        f"{change:.2g}; saved to {out}. Continue training with `init_from: {out}` and "
        f"`lm: {{num_layers: {before + args.add_lm_layers}}}` in the recipe's model."
    )
    return 0


def _add_expand(sub) -> None:
    p = sub.add_parser(
        "expand",
        help="give a trained vision-language model's LM more layers that change nothing "
        "yet (LLaMA Pro block expansion), to train on",
    )
    p.add_argument("checkpoint")
    p.add_argument(
        "--add-lm-layers",
        type=int,
        required=True,
        help="new decoder blocks, one after each of this many equal groups of layers",
    )
    p.add_argument("--out", required=True)
    p.set_defaults(func=_expand_main)


def _chat_main(args) -> int:
    from .chat import chat_main

    # chat_main returns the conversation (for tests and logs), not an exit status
    chat_main(
        args.checkpoint, args.image, max_new_tokens=args.max_new_tokens, repetition_penalty=args.repetition_penalty
    )
    return 0


def _add_chat(sub) -> None:
    p = sub.add_parser("chat", help="talk with a vision-language model about an image in the terminal")
    p.add_argument("checkpoint")
    p.add_argument("--image", required=True)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument(
        "--repetition-penalty",
        type=float,
        default=1.0,
        help="> 1 discourages tokens already in the conversation (transformers' meaning; 1.0 = none)",
    )
    p.set_defaults(func=_chat_main)


def _list_main(args) -> int:
    from ..catalog import FAMILIES, catalog, format_catalog

    if args.family == "recipes":
        from ..config import load_recipe
        from ..recipes import available

        for name in available():
            desc = " ".join(load_recipe(name).description.split())
            print(f"{name}\n      {desc[:150]}")
        return 0
    if args.family is not None and args.family not in FAMILIES:
        raise SystemExit(f"unknown family {args.family!r}; choose one of: {', '.join((*FAMILIES, 'recipes'))}")
    print(format_catalog(catalog(args.family)), end="")
    return 0


def _add_list(sub) -> None:
    p = sub.add_parser(
        "list",
        help="every registered component (towers, connectors, LMs, datasets, suites ...) "
        "with its parameters and defaults; or the built-in recipes",
    )
    p.add_argument(
        "family",
        nargs="?",
        help="one of: vision, text, audio, video, connectors, lms, datasets, suites, objectives, aux_losses, "
        "transforms, tools, recipes",
    )
    p.set_defaults(func=_list_main)


def build_parser() -> argparse.ArgumentParser:
    from .ask import add_ask_parser, add_traces_parser
    from .data import add_data_parser
    from .eval import add_compare_parser, add_eval_parser
    from .explain import add_explain_parser
    from .serve import add_serve_parser

    parser = argparse.ArgumentParser(prog="modalign", description="Align other modalities with language.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_quickstart(sub)
    _add_list(sub)
    _add_train(sub)
    add_eval_parser(sub)
    add_compare_parser(sub)
    add_data_parser(sub)
    _add_export(sub)
    _add_expand(sub)
    _add_chat(sub)
    add_ask_parser(sub)
    add_traces_parser(sub)
    add_explain_parser(sub)
    add_serve_parser(sub)
    return parser


def _exit_status(err: Exception) -> int | None:
    """2 for a setting, file or record to fix (the message names it), 3 for a run that stopped rather than save
    non-finite weights, None for anything else (a bug: the traceback is shown). Imported here, only when needed,
    so that a command's start stays light."""
    from ..data.records import BadRecord
    from ..registry import ConfigError
    from ..trainer.guard import TrainingDiverged

    if isinstance(err, (ConfigError, BadRecord)):
        print(f"modalign: {err}", file=sys.stderr)
        return 2
    if isinstance(err, TrainingDiverged):
        print(f"modalign: training stopped: {err}", file=sys.stderr)
        return 3
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Exception as err:
        status = _exit_status(err)
        if status is None:
            raise
        return status
