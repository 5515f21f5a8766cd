"""Any VQA-format dataset as LLaVA-format training conversations: consecutive questions about one image become turns.

`{name: vqa-conversations, source: {name: shapes, task: vqa, split: train, n: 2000}, max_turns: 3}` reads the
source's items `{"id", "image", "question", "answer"}` in order; conversation i holds the items i*max_turns ..
(i+1)*max_turns - 1 that share the first one's image id (so a conversation never mixes two pictures), each
question followed by the short-answer instruction `suffix` and answered by its bare answer. Why: instruction data with
only short answers keeps sequences short (a tenth of the tokens of a conversation with a paragraph description), which
is what a CPU can train a 135M-parameter LM on in minutes. Items are built lazily, one source item per turn.
"""

from __future__ import annotations

from torch.utils.data import Dataset

SHORT_ANSWER = "Answer with a single word or phrase."


class VQAConversations(Dataset):
    def __init__(self, source: dict, max_turns: int = 3, suffix: str = SHORT_ANSWER):
        from ..registry import build
        from . import DATASETS

        if not isinstance(source, dict) or "name" not in source:
            raise ValueError("source must be a dataset spec with a name, e.g. {name: shapes, task: vqa, split: train}")
        if max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {max_turns}")
        params = {k: v for k, v in source.items() if k != "name"}
        self.source = build(DATASETS, "dataset", source["name"], **params)
        self.max_turns, self.suffix = max_turns, suffix
        self.split = getattr(self.source, "split", None)

    def __len__(self) -> int:
        return -(-len(self.source) // self.max_turns)

    def __getitem__(self, i: int) -> dict:
        lo = i * self.max_turns
        first = self.source[lo]
        rows = [first]
        for j in range(lo + 1, min(lo + self.max_turns, len(self.source))):
            r = self.source[j]
            if r["id"] != first["id"]:
                break
            rows.append(r)
        conv = []
        for k, r in enumerate(rows):
            answer = r["answer"] if isinstance(r["answer"], str) else r["answer"][0]
            prefix = "<image>\n" if k == 0 else ""
            conv.append({"from": "human", "value": f"{prefix}{r['question']} {self.suffix}".strip()})
            conv.append({"from": "gpt", "value": answer})
        return {"id": first["id"], "image": first["image"], "conversations": conv}

    def texts(self):
        texts = getattr(self.source, "texts", None)
        if texts is not None:
            yield from texts()
        yield self.suffix
