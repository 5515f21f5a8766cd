"""The KV cache argument of a transformers causal LM, under the name its version uses.

transformers 5.x renamed `past_key_values` to `cache` (the old name warns and goes away in 5.40); older versions
only know `past_key_values`. Every cached forward in modalign goes through these two helpers.
"""

from __future__ import annotations

import inspect
from functools import cache as _memo


@_memo
def _takes_cache(forward_cls) -> bool:
    return "cache" in inspect.signature(forward_cls.forward).parameters


def cache_kw(lm, cache) -> dict:
    """{"cache": cache} or {"past_key_values": cache} for `lm` (a peft wrapper is looked through)."""
    base = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
    return {"cache": cache} if _takes_cache(type(base)) else {"past_key_values": cache}


def cache_of(out):
    """The KV cache an LM forward returned."""
    return out["cache"] if "cache" in out else out["past_key_values"]
