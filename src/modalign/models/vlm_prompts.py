"""Text side of a VisionLanguageModel: prompts, image placeholders, answer-only labels and padding.

Every training example and every inference prompt is first rendered to one string with one `<image>` marker per
image, and a list of character spans that carry the loss (the caption, or each assistant answer including its
end-of-turn marker). Tokenizing with offsets maps spans to tokens, so the same code serves our BPE tokenizer and any
HF tokenizer with its own chat template (as long as that template is prefix-stable). Only then is each image's
marker token repeated to the number of LM positions that image occupies (M for prefix fusion, 1 for cross-attention,
a per-image count for AnyRes tiling). `<audio>` and `<video>` markers (models with those parts) are repeated the same
way, each clip or video to its own count (`media_counts`), and every marker count is checked against the sample's.
"""

from __future__ import annotations

import torch

from .chat_template import AUDIO_TOKEN, IMAGE_TOKEN, VIDEO_TOKEN, to_messages, user_turn

MEDIA_FIELDS = {AUDIO_TOKEN: "audio / audios", VIDEO_TOKEN: "video / videos"}

IGNORE_INDEX = -100  # label value F.cross_entropy skips: prompt, image and padding positions


class PromptBuilder:
    def __init__(
        self,
        tokenizer,
        tokens_per_image: int,
        max_length: int,
        system_prompt: str | None = None,
        media_tokens: tuple[str, ...] = (),
    ):
        self.tok = tokenizer
        # a conversation without a system turn gets this one (a chat template's own default, such as SmolLM2's
        # 20-token introduction, otherwise fills every prompt)
        self.system_prompt = system_prompt
        self.tokens_per_image = tokens_per_image
        self.max_length = max_length
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        self.media_tokens = tuple(media_tokens)  # <audio>, <video>: the markers of the model's other modalities
        self.media_ids = {tokenizer.convert_tokens_to_ids(t): t for t in self.media_tokens}
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    # -- strings -------------------------------------------------------------------------------------------
    def render(self, messages: list[dict], add_generation_prompt: bool = False) -> str:
        if self.system_prompt is not None and messages and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": self.system_prompt}, *messages]
        return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    def caption_prefix(self, n_images: int = 1, markers: str = "") -> str:
        """The prompt a caption follows: BOS then the image(s) and other media markers, no instruction (the caption
        objective's format; an audio clip's caption is its transcript or description)."""
        return (self.tok.bos_token or "") + IMAGE_TOKEN * n_images + markers

    def chat_prefix(self, prompt: str, with_image: bool = True, markers: tuple[str, ...] = ()) -> str:
        """One user turn asking `prompt` about the image (and the media `markers`), ending where the answer begins."""
        return self.render(user_turn(prompt, with_image, markers), add_generation_prompt=True)

    def caption_example(self, caption: str, n_images: int = 1, markers: str = "") -> tuple[str, list[tuple[int, int]]]:
        for token in (IMAGE_TOKEN, *self.media_tokens):
            if token in caption:
                raise ValueError(f"caption {caption!r} contains {token}: the caption objective places media itself")
        prefix = self.caption_prefix(n_images, markers)
        text = prefix + caption + (self.tok.eos_token or "")
        return text, [(len(prefix), len(text))]

    def instruct_example(
        self, conversations: list[dict], n_images: int, n_media: dict[str, int] | None = None
    ) -> tuple[str, list[tuple[int, int]]]:
        """The rendered conversation and its answer spans; `n_media` {"<audio>": k, ...}: the sample's clips and
        videos, which its markers must match one to one."""
        messages = to_messages(conversations)
        for token in (IMAGE_TOKEN, *MEDIA_FIELDS):
            if any(m["role"] == "assistant" and token in m["content"] for m in messages):
                # the label span would cover the media's positions: the model would be taught to "write" them
                kind = token.strip("<>")
                raise ValueError(f"an answer (assistant turn) contains {token}; {kind}s go in user turns")
        for token in MEDIA_FIELDS:
            if token not in self.media_tokens and any(token in m["content"] for m in messages):
                kind = token.strip("<>")
                raise ValueError(f"the conversation holds {token} but this model has no {kind} tower ({kind}=...)")
        for token in self.media_tokens:
            found = sum(m["content"].count(token) for m in messages)
            given = (n_media or {}).get(token, 0)
            if found != given:
                raise ValueError(
                    f"conversation has {found} {token} markers but the sample has {given} "
                    f"({MEDIA_FIELDS[token]}): give one marker per clip or video, in text order"
                )
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
        self,
        text: str,
        spans: list[tuple[int, int]] = (),
        counts: list[int] | None = None,
        media_counts: dict[int, list[int]] | None = None,
    ) -> tuple[list[int], list[int]]:
        """Token ids and labels (the id inside a span, IGNORE_INDEX outside) of one rendered string, with the k-th
        image marker repeated counts[k] times (default: tokens_per_image each) and the k-th marker of a media token
        id repeated media_counts[id][k] times."""
        enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True)
        media_counts = media_counts or {}
        ids, labels, k = [], [], 0
        seen = dict.fromkeys(self.media_ids, 0)
        for tid, (start, _end) in zip(enc["input_ids"], enc["offset_mapping"]):
            if tid == self.image_token_id:
                n = self.tokens_per_image if counts is None else counts[k]
                k += 1
            elif tid in self.media_ids:
                given = media_counts.get(tid, [])
                if seen[tid] >= len(given):
                    raise ValueError(
                        f"text has more {self.media_ids[tid]} markers than the {len(given)} "
                        f"{MEDIA_FIELDS[self.media_ids[tid]]} given"
                    )
                n = given[seen[tid]]
                seen[tid] += 1
            else:
                ids.append(tid)
                labels.append(tid if any(s <= start < e for s, e in spans) else IGNORE_INDEX)
                continue
            ids += [tid] * n
            labels += [IGNORE_INDEX] * n
        if counts is not None and k != len(counts):
            raise ValueError(f"text has {k} {IMAGE_TOKEN} markers but {len(counts)} images were given")
        for tid, n_seen in seen.items():
            if n_seen != len(media_counts.get(tid, [])):
                token = self.media_ids[tid]
                raise ValueError(f"text has {n_seen} {token} markers but {len(media_counts[tid])} were given")
        if len(ids) > self.max_length:
            placeholders = (self.image_token_id, *self.media_ids)
            n_media = sum(ids.count(p) for p in placeholders)
            ids, labels = ids[: self.max_length], labels[: self.max_length]
            if sum(ids.count(p) for p in placeholders) != n_media:
                raise ValueError(
                    f"a {len(enc['input_ids'])}-token example cut to the LM's {self.max_length} "
                    f"positions would split an image, clip or video: raise lm.max_position_embeddings or shorten text"
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
