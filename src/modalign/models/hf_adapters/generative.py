"""A Hugging Face LLaVA / Idefics2 / Idefics3 / BLIP-2 checkpoint as a vision-language model: `generate`, `score`.

Everything model-specific comes from the checkpoint: AutoProcessor resizes the image and expands its placeholder
into the model's image tokens; the chat template (processor's, else tokenizer's) renders each prompt as one user
turn holding the image then the text, with the generation prompt after it. A template that takes typed content
parts ({"type": "image"}, {"type": "text"}) gets them; one that prints a plain string gets "<image>\\n" + prompt, as
LLaVA data writes it. BLIP-2 has no template: its prompt is the text as given (its processor puts the query tokens
first), e.g. --param "prompt=Question: {question} Answer:" as the BLIP-2 paper asks VQA questions.

Batches are left-padded for generation, right-padded for scoring, whatever the processor did (BLIP-2's puts the
query tokens before the padding), so a row computes what it would alone. Decoding stops at the generation config's
end tokens; `score` is log p(text | image, prompt) over the text's tokens, length-normalised by default, as
`VisionLanguageModel.score`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

_PROBE = "modalign-probe-text"


def _content_text(token) -> str:
    return getattr(token, "content", token)  # BLIP-2 keeps its image token as an AddedToken


class HFVisionLanguageModel(nn.Module):
    def __init__(self, model, processor, family: str, path: str | Path | None = None):
        super().__init__()
        self.model = model.eval()
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.family = family
        self.path = None if path is None else str(path)
        self.image_token = _content_text(getattr(processor, "image_token", "<image>"))
        self.chat_template = getattr(processor, "chat_template", None) or getattr(self.tokenizer, "chat_template", None)
        self.typed_content = self.chat_template is not None and self._template_takes_parts()
        self.bos = self.tokenizer.bos_token
        probe = self.tokenizer("a", add_special_tokens=True)["input_ids"]
        self._adds_bos = self.bos is not None and bool(probe) and probe[0] == self.tokenizer.bos_token_id
        ends = model.generation_config.eos_token_id
        ends = [] if ends is None else [ends] if isinstance(ends, int) else list(ends)
        self.stop_ids = {i for i in [*ends, self.tokenizer.eos_token_id] if i is not None}
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self.stop_ids)

    @classmethod
    def from_pretrained(cls, directory: str | Path, family: str) -> HFVisionLanguageModel:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        processor = AutoProcessor.from_pretrained(str(directory))
        model = AutoModelForImageTextToText.from_pretrained(str(directory), dtype=torch.float32)
        return cls(model, processor, family, directory)

    # -- prompts -------------------------------------------------------------------------------------------------
    def _apply(self, content) -> str:
        messages = [{"role": "user", "content": content}]
        return self.tokenizer.apply_chat_template(
            messages, chat_template=self.chat_template, tokenize=False, add_generation_prompt=True
        )

    def _template_takes_parts(self) -> bool:
        try:
            text = self._apply([{"type": "image"}, {"type": "text", "text": _PROBE}])
        except Exception:  # a template written for string content may index it as a string and fail
            return False
        return _PROBE in text and self.image_token in text and "'type'" not in text

    def render(self, prompt: str | None) -> str:
        """The full prompt string of one user turn about one image, ending where the answer begins."""
        text = prompt or ""
        if self.chat_template is None:
            rendered = text
        elif self.typed_content:
            rendered = self._apply([{"type": "image"}] + ([{"type": "text", "text": text}] if text else []))
        else:
            rendered = self._apply(f"{self.image_token}\n{text}")
        if self._adds_bos and not rendered.startswith(self.bos):
            rendered = self.bos + rendered  # the tokenizer's own BOS, added here so texts are encoded without extras
        return rendered

    def _prompts(self, n: int, prompts) -> list[str]:
        if prompts is None or isinstance(prompts, str):
            prompts = [prompts] * n
        if len(prompts) != n:
            raise ValueError(f"{n} images but {len(prompts)} prompts: give one prompt per image")
        return [self.render(p) for p in prompts]

    # -- inputs ----------------------------------------------------------------------------------------------------
    def _inputs(self, images: list, texts: list[str], side: str) -> dict:
        """Processor outputs for rows (image_i, text_i), padded on `side` only."""
        self.tokenizer.padding_side = side
        pictures = [[im] for im in images] if self.family.startswith("idefics") else list(images)
        batch = dict(
            self.processor(
                images=pictures, text=list(texts), padding=True, add_special_tokens=False, return_tensors="pt"
            )
        )
        mask = batch["attention_mask"]
        # stable sort of each row by its mask: padding first (left) or last (right), the tokens' order kept
        order = torch.argsort(mask if side == "left" else 1 - mask, dim=1, stable=True)
        for k, v in batch.items():
            if isinstance(v, torch.Tensor) and v.shape == mask.shape:
                batch[k] = v.gather(1, order)
        return batch

    def _detok(self, row: list[int]) -> str:
        cut = next((i for i, t in enumerate(row) if t in self.stop_ids), len(row))
        return self.tokenizer.decode(row[:cut], skip_special_tokens=True).strip()

    # -- the interface -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        images,
        prompts=None,
        max_new_tokens: int = 32,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int | None = None,
        repetition_penalty: float = 1.0,
        num_beams: int = 1,
        length_penalty: float = 1.0,
        early_stopping: bool | str = False,
    ) -> list[str]:
        """One answer per image, with transformers' own `generate` (greedy unless `do_sample`)."""
        batch = self._inputs(list(images), self._prompts(len(images), prompts), "left")
        kw = {"max_new_tokens": max_new_tokens, "do_sample": do_sample, "pad_token_id": self.pad_id}
        if num_beams != 1:
            kw.update(num_beams=num_beams, length_penalty=length_penalty, early_stopping=early_stopping)
        if repetition_penalty != 1.0:
            kw["repetition_penalty"] = repetition_penalty
        if do_sample:
            kw.update(temperature=temperature, top_k=top_k)
        out = self.model.generate(**batch, **kw)
        return [self._detok(row) for row in out[:, batch["input_ids"].shape[1] :].tolist()]

    @torch.no_grad()
    def score(self, images, texts: list[str], prompts=None, normalize: bool = True) -> torch.Tensor:
        """log p(text | image, prompt) summed over the text's tokens, divided by their count when `normalize`."""
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts: score pairs one to one")
        prefixes = self._prompts(len(texts), prompts)
        full = [p + t for p, t in zip(prefixes, texts)]
        n_text = []
        for p, f in zip(prefixes, full):  # the text's tokens are the last ones of its row
            offsets = self.tokenizer(f, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
            n_text.append(sum(start >= len(p) for start, _ in offsets))
        batch = self._inputs(list(images), full, "right")
        logp = self.model(**batch).logits[:, :-1].float().log_softmax(-1)  # [B, T-1, V]
        target = batch["input_ids"][:, 1:]  # [B, T-1]
        length = batch["attention_mask"].sum(1)  # [B]
        pos = torch.arange(target.shape[1])[None]  # [1, T-1]: position t predicts token t + 1
        n = torch.tensor(n_text)
        keep = (pos >= (length - n - 1)[:, None]) & (pos < (length - 1)[:, None])  # [B, T-1]
        total = (logp.gather(-1, target.unsqueeze(-1)).squeeze(-1) * keep).sum(-1)
        return total / keep.sum(-1).clamp(min=1) if normalize else total
