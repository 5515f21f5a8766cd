"""Text side of a VisionLanguageModel: prompts, image placeholders, answer-only labels and padding.

Every training example and every inference prompt is first rendered to one string with one `<image>` marker per
image, and a list of character spans that carry the loss (the caption, or each assistant answer including its
end-of-turn marker). Tokenizing with offsets maps spans to tokens, so the same code serves our BPE tokenizer and any
HF tokenizer with its own chat template (as long as that template is prefix-stable). Only then is each image's
marker token repeated to the number of LM positions that image occupies (M for prefix fusion, 1 for cross-attention,
a per-image count for AnyRes tiling).
"""

from __future__ import annotations

import torch

from .chat_template import IMAGE_TOKEN, to_messages, user_turn

IGNORE_INDEX = -100  # label value F.cross_entropy skips: prompt, image and padding positions


class PromptBuilder:
    def __init__(self, tokenizer, tokens_per_image: int, max_length: int, system_prompt: str | None = None):
        self.tok = tokenizer
        # a conversation without a system turn gets this one (a chat template's own default, such as SmolLM2's
        # 20-token introduction, otherwise fills every prompt)
        self.system_prompt = system_prompt
        self.tokens_per_image = tokens_per_image
        self.max_length = max_length
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    # -- strings -------------------------------------------------------------------------------------------
    def render(self, messages: list[dict], add_generation_prompt: bool = False) -> str:
        if self.system_prompt is not None and messages and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": self.system_prompt}, *messages]
        return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    def caption_prefix(self, n_images: int = 1) -> str:
        """The prompt a caption follows: BOS then the image(s), no instruction (the caption objective's format)."""
        return (self.tok.bos_token or "") + IMAGE_TOKEN * n_images

    def chat_prefix(self, prompt: str, with_image: bool = True) -> str:
        """One user turn asking `prompt` about the image, ending where the assistant's answer begins."""
        return self.render(user_turn(prompt, with_image), add_generation_prompt=True)

    def caption_example(self, caption: str, n_images: int = 1) -> tuple[str, list[tuple[int, int]]]:
        if IMAGE_TOKEN in caption:
            raise ValueError(f"caption {caption!r} contains {IMAGE_TOKEN}: the caption objective places images itself")
        prefix = self.caption_prefix(n_images)
        text = prefix + caption + (self.tok.eos_token or "")
        return text, [(len(prefix), len(text))]

    def instruct_example(self, conversations: list[dict], n_images: int) -> tuple[str, list[tuple[int, int]]]:
        messages = to_messages(conversations)
        if any(m["role"] == "assistant" and IMAGE_TOKEN in m["content"] for m in messages):
            # the label span would cover the image's positions: the model would be taught to "write" an image
            raise ValueError(f"an answer (assistant turn) contains {IMAGE_TOKEN}; images go in user turns")
        n_markers = sum(m["content"].count(IMAGE_TOKEN) for m in messages)
        if n_markers == 0 and n_images == 1:
            # LLaVA data sometimes omits the marker for single-image samples: the image goes before the first turn.
            first_user = next(i for i, m in enumerate(messages) if m["role"] == "user")
            messages[first_user] = {"role": "user", "content": IMAGE_TOKEN + "\n" + messages[first_user]["content"]}
        elif n_markers != n_images:
            raise ValueError(
                f"conversation has {n_markers} {IMAGE_TOKEN} markers but the sample has {n_images} "
                f"image(s): give one marker per image (several images go in the sample's `images`)"
            )
        text = self.render(messages)
        spans = []
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            start = len(self.render(messages[:i], add_generation_prompt=True))
            end = len(self.render(messages[: i + 1]))
            if not text.startswith(self.render(messages[: i + 1])):
                raise ValueError("the tokenizer's chat template is not prefix-stable; answer labels cannot be located")
            spans.append((start, end))
        if not spans:
            raise ValueError("an instruct sample needs at least one assistant ('gpt') turn to learn from")
        return text, spans

    # -- tokens ------------------------------------------------------------------------------------------------
    def encode(
        self, text: str, spans: list[tuple[int, int]] = (), counts: list[int] | None = None
    ) -> tuple[list[int], list[int]]:
        """Token ids and labels (the id inside a span, IGNORE_INDEX outside) of one rendered string, with the k-th
        image marker repeated counts[k] times (default: tokens_per_image each)."""
        enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, labels, k = [], [], 0
        for tid, (start, _end) in zip(enc["input_ids"], enc["offset_mapping"]):
            if tid == self.image_token_id:
                n = self.tokens_per_image if counts is None else counts[k]
                k += 1
                ids += [tid] * n
                labels += [IGNORE_INDEX] * n
                continue
            ids.append(tid)
            labels.append(tid if any(s <= start < e for s, e in spans) else IGNORE_INDEX)
        if counts is not None and k != len(counts):
            raise ValueError(f"text has {k} {IMAGE_TOKEN} markers but {len(counts)} images were given")
        if len(ids) > self.max_length:
            n_img = ids.count(self.image_token_id)
            ids, labels = ids[: self.max_length], labels[: self.max_length]
            if ids.count(self.image_token_id) != n_img:
                raise ValueError(
                    f"a {len(enc['input_ids'])}-token example cut to the LM's {self.max_length} "
                    f"positions would split an image: raise lm.max_position_embeddings or shorten text"
                )
        return ids, labels

    def pad(self, rows: list[list[int]], labels: list[list[int]] | None = None, side: str = "right") -> dict:
        """Pad to the longest row: right for training and scoring, left for generation (answers start aligned)."""
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)  # [B, T]
        mask = torch.zeros(len(rows), width, dtype=torch.long)  # [B, T]
        lab = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)  # [B, T]
        for i, r in enumerate(rows):
            sl = slice(0, len(r)) if side == "right" else slice(width - len(r), width)
            ids[i, sl] = torch.tensor(r, dtype=torch.long)
            mask[i, sl] = 1
            if labels is not None:
                lab[i, sl] = torch.tensor(labels[i], dtype=torch.long)
        out = {"input_ids": ids, "attention_mask": mask}
        if labels is not None:
            out["labels"] = lab
        return out
