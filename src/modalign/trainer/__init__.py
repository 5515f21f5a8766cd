"""Layer 6: the one trainer. `run_recipe(recipe, out_dir, resume=...)` runs every stage of a recipe.

Modules, one concept each: `freeze` (freeze plans, LoRA), `optim` (AdamW groups, schedules), `sampler` (resumable,
sharded index stream), `stage_data` (datasets, up-front checks, micro-batches), `step` (exact accumulation),
`distributed` (torchrun/DDP), `checkpoint` (atomic safetensors + JSON), `resume` (what a resume may change, where it
starts), `integrity` (which checkpoint a resume trusts), `guard` (non-finite steps skipped, diverged runs stopped),
`lock` (one writer per output folder), `logs` (JSONL, TensorBoard, tqdm), `runner` (stages and resume).
"""

from .runner import run_recipe

__all__ = ["run_recipe"]
