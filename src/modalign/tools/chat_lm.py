"""The text-only chat model the tool routes drive: a causal LM and its chat template, greedy and batched.

`ChatLM.from_spec("smollm2-135m")` is a registered LM (models/lm.py); a directory is a saved modalign
vision-language model whose LM (with its LoRA merged in, e.g. one taught to call tools) is taken out of it, or a
plain Hugging Face causal-LM folder. `reply(conversations)` renders each conversation with the tokenizer's chat
template, pads on the left and decodes greedily until the end-of-turn token, every conversation in one batch.
"""

from __future__ import annotations

from pathlib import Path

import torch


class ChatLM:
    def __init__(self, model, tokenizer, name: str = "lm"):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        self.name = name
        # the end of an assistant turn: ChatML's <|im_end|> (SmolLM2), modalign's own <|end|>, or plain EOS
        stops = {tokenizer.eos_token_id, *(tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|end|>"))}
        self.stop_ids = sorted(i for i in stops if i is not None and i != tokenizer.unk_token_id)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.stop_ids[0]

    @classmethod
    def from_spec(cls, spec: str) -> ChatLM:
        """A registered LM name, a saved modalign VLM directory, or a Hugging Face causal-LM directory."""
        from ..models.lm import LANGUAGE_MODELS, build_lm

        if spec in LANGUAGE_MODELS:
            model, tok = build_lm(spec, {})
            return cls(model, tok, spec)
        path = Path(spec)
        config = path / "config.json"
        if config.is_file() and (path / "model.safetensors").is_file() and '"kind": "vlm"' in config.read_text():
            from ..models import load_model

            vlm = load_model(path)
            if vlm.lora_enabled:
                vlm.merge_lora()
            return cls(vlm.base_lm(), vlm.tokenizer, str(path))
        model, tok = build_lm("hf", {"path": spec})
        return cls(model, tok, spec)

    def render(self, messages: list[dict]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    @torch.no_grad()
    def reply(self, conversations: list[list[dict]], max_new_tokens: int = 48, batch_size: int = 8) -> list[str]:
        """The assistant's next turn for each conversation ([{"role", "content"}, ...])."""
        out: list[str] = []
        for lo in range(0, len(conversations), batch_size):
            texts = [self.render(c) for c in conversations[lo : lo + batch_size]]
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            gen = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=self.stop_ids,
                pad_token_id=self.pad_id,
            )
            for row in gen[:, enc["input_ids"].shape[1] :].tolist():
                cut = next((i for i, t in enumerate(row) if t in self.stop_ids), len(row))
                out.append(self.tokenizer.decode(row[:cut], skip_special_tokens=True).strip())
        return out
