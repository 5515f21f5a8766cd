"""Inference for VisionLanguageModel: KV-cached batched generation, streamed generation of one answer (`stream`, the
answer so far after each token, for a chat window), likelihood scoring, yes/no probabilities, and many questions
about one image with the image prefix encoded once and its KV cache shared.

Generation pads prompts on the left and passes explicit position ids (cumsum of the mask), so a padded row computes
exactly what it would alone. A prompt is a user turn of the chat template; `prompts=None` means the caption format
(`<s><image>` then the caption), which is what a caption-trained model continues. `repetition_penalty` is
transformers' (CTRL's): every token id already in the row (its prompt and what it has generated) has its logit
divided by the penalty when positive, multiplied when negative. `num_beams` > 1 decodes by beam search
(beam_search.py, transformers' semantics; the penalty then applies to log-probabilities, as there).
`logits_processor(generated [B, t], logits [B, V]) -> logits` reshapes each step's logits (after the penalty,
before the pick) from the tokens each row has generated so far, e.g. to constrain what may be written next; it is
given no prompt ids, since image positions have none.
`audio=` / `video=` (one clip or one list of frames per row) put the row's `<audio>` / `<video>` in front of its
prompt when the prompt does not place them itself.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
from transformers import DynamicCache

from .beam_search import beam_search, check_beam_args
from .chat_template import IMAGE_TOKEN
from .lm_cache import cache_kw, cache_of
from .vlm_media import PLACEHOLDERS


def check_repetition_penalty(penalty: float) -> None:
    if not isinstance(penalty, (int, float)) or isinstance(penalty, bool) or not penalty > 0:
        raise ValueError(
            f"repetition_penalty must be a number > 0 (1.0 = none, > 1 discourages repeats), got {penalty!r}"
        )


def penalize_repeats(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """logits [B, V] with the entries where `seen` [B, V] is true pushed down by `penalty` (> 1) as in CTRL:
    divided when positive, multiplied when negative, so a seen token always loses ground."""
    pushed = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, pushed, logits)


def _check_logits_processor(logits_processor) -> None:
    if logits_processor is not None and not callable(logits_processor):
        raise ValueError(
            f"logits_processor must be callable as f(generated [B, t], logits [B, V]), "
            f"got {type(logits_processor).__name__}"
        )


class InferenceMixin:
    # -- prompt building ---------------------------------------------------------------------------------------
    def _prompt_texts(self, n: int, prompts, with_image: bool, markers: tuple[str, ...] = ()) -> list[str]:
        if prompts is None:
            return [self.prompts.caption_prefix(int(with_image), "".join(markers))] * n
        if isinstance(prompts, str):
            prompts = [prompts] * n
        if len(prompts) != n:
            raise ValueError(f"{n} images but {len(prompts)} prompts: give one prompt per image")
        return [self.prompts.chat_prefix(p, with_image, markers) for p in prompts]

    @staticmethod
    def _rows(images, prompts, audio=None, video=None) -> int:
        for given in (images, audio, video, None if isinstance(prompts, str) else prompts):
            if given is not None:
                return len(given)
        raise ValueError("give images, audio, video or prompts: nothing says how many answers to write")

    @staticmethod
    def _markers(audio, video) -> tuple[str, ...]:
        return tuple(PLACEHOLDERS[m] for m, given in (("video", video), ("audio", audio)) if given is not None)

    def _media_inputs(self, n: int, audio=None, video=None) -> dict:
        """The collated audio / video parts of n rows with one clip / video each (or none)."""
        media = {}
        for modality, given in (("audio", audio), ("video", video)):
            if given is None:
                continue
            if len(given) != n:
                raise ValueError(f"{n} rows but {len(given)} {modality} items: give one per row")
            media[modality] = self.media_batch(modality, [[x] for x in given])
        return media

    def _pixels(self, images):
        """(pixel_values, images per row, LM positions per image, AnyRes layouts) for one image per row."""
        if images is None:
            return None, None, None, None
        pixel_values, token_counts, layouts = self.image_inputs(list(images))
        return pixel_values, [1] * len(token_counts), token_counts, layouts

    def _encode_rows(self, texts, token_counts, spans=None, media=None):
        """Encode one rendered prompt per row; row i's image markers take token_counts[i] positions, its audio and
        video markers what `media` (from `_media_inputs`) gives its clip and video."""
        out = []
        row_media = self._row_media_counts(media or {}, len(texts))
        for i, t in enumerate(texts):
            counts = None if token_counts is None or IMAGE_TOKEN not in t else [token_counts[i]]
            out.append(self.prompts.encode(t, spans[i] if spans else (), counts, row_media[i]))
        return [o[0] for o in out], [o[1] for o in out]

    def _never_written(self) -> torch.Tensor:
        """Token ids an answer never contains: the modality placeholders (their embeddings are overwritten by the
        connector, so a model must not emit them)."""
        ids = [self.image_token_id, *self.placeholder_ids().values()]
        return torch.tensor(ids, dtype=torch.long)

    def stop_token_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id, self.tokenizer.convert_tokens_to_ids("<|end|>")}
        unk = self.tokenizer.unk_token_id
        return sorted(i for i in ids if i is not None and i != unk)

    # -- generation --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        images,
        prompts=None,
        max_new_tokens: int = 32,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        return_logits: bool = False,
        repetition_penalty: float = 1.0,
        num_beams: int = 1,
        length_penalty: float = 1.0,
        early_stopping: bool | str = False,
        logits_processor=None,
        audio=None,
        video=None,
    ):
        """One answer per image (list[str]); with `return_logits` also the per-step logits [B, S, V] (as the model
        gave them, before any repetition penalty or `logits_processor`). `num_beams` > 1: beam search (greedy only),
        the best of the hypotheses scored by summed log-probability / length ** `length_penalty`. `audio` / `video`:
        one clip (float32 at 16 kHz, or a path) / one list of frames per row, e.g. a spoken question."""
        n = self._rows(images, prompts, audio, video)
        texts = self._prompt_texts(n, prompts, images is not None, self._markers(audio, video))
        return self.complete(
            images,
            texts,
            max_new_tokens,
            do_sample,
            temperature,
            top_k,
            generator,
            return_logits,
            repetition_penalty,
            num_beams,
            length_penalty,
            early_stopping,
            logits_processor,
            audio=audio,
            video=video,
        )

    @torch.no_grad()
    def complete(
        self,
        images,
        texts: list[str],
        max_new_tokens: int = 32,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        return_logits: bool = False,
        repetition_penalty: float = 1.0,
        num_beams: int = 1,
        length_penalty: float = 1.0,
        early_stopping: bool | str = False,
        logits_processor=None,
        audio=None,
        video=None,
    ):
        """Continue already rendered prompt strings (one `<image>` marker each, e.g. a multi-turn chat history);
        row i is about images[i] (and audio[i], video[i] when given, for its `<audio>`, `<video>` markers)."""
        check_repetition_penalty(repetition_penalty)
        check_beam_args(num_beams, length_penalty, early_stopping)
        _check_logits_processor(logits_processor)
        if num_beams > 1:
            if logits_processor is not None:
                raise ValueError("logits_processor applies to greedy and sampled decoding: use num_beams=1")
            if do_sample:
                raise ValueError("beam search is greedy here: use num_beams=1 to sample")
            if return_logits:
                raise ValueError(
                    "return_logits gives one row of logits per step, which beams do not have: use num_beams=1"
                )
            images = None if images is None else [im for im in images for _ in range(num_beams)]
            audio = None if audio is None else [a for a in audio for _ in range(num_beams)]
            video = None if video is None else [v for v in video for _ in range(num_beams)]
            texts = [t for t in texts for _ in range(num_beams)]  # row b's beams are rows b*K .. b*K+K-1
        try:
            out, mask, pos, seen = self._prefill(images, texts, repetition_penalty, audio, video)
            if num_beams > 1:
                tokens = self._beam_decode(
                    out, mask, pos, max_new_tokens, num_beams, length_penalty, early_stopping, repetition_penalty, seen
                )
                return self._detok(tokens)
            tokens, logits = self._decode(
                out,
                mask,
                pos,
                max_new_tokens,
                do_sample,
                temperature,
                top_k,
                generator,
                repetition_penalty,
                seen,
                logits_processor,
            )
        finally:
            self.clear_all_media()
        answers = self._detok(tokens)
        return (answers, logits) if return_logits else answers

    @torch.no_grad()
    def stream(
        self,
        image,
        text: str,
        max_new_tokens: int = 32,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        repetition_penalty: float = 1.0,
        logits_processor=None,
    ) -> Iterator[str]:
        """Continue one rendered prompt about `image` (as `complete` takes it) and yield the answer so far after
        every decoded token that changes it; the last value is `complete`'s answer for the same arguments.

        Whole answers rather than pieces, because detokenising more tokens may re-space text already shown (a
        tokenizer's clean-up joins " 's" to "'s"), which appended pieces could not undo."""
        check_repetition_penalty(repetition_penalty)
        _check_logits_processor(logits_processor)
        ids, shown = [], None
        try:
            out, mask, pos, seen = self._prefill(None if image is None else [image], [text], repetition_penalty)
            steps = self._decode_steps(
                out,
                mask,
                pos,
                max_new_tokens,
                do_sample,
                temperature,
                top_k,
                generator,
                repetition_penalty,
                seen,
                logits_processor,
            )
            for nxt, _ in steps:
                ids.append(int(nxt[0]))
                now = self._answer_text(ids)
                if now != shown and not now.endswith("\ufffd"):  # U+FFFD: half of a multi-byte character so far
                    shown = now
                    yield now
        finally:
            self.clear_all_media()
        final = self._answer_text(ids)
        if final != shown:
            yield final

    def _prefill(self, images, texts: list[str], repetition_penalty: float, audio=None, video=None):
        """Run the left-padded prompts through the LM once: (output with its KV cache, mask, positions, the [B, V]
        prompt tokens the repetition penalty needs or None). The caller clears the media (`clear_all_media`)."""
        pixel_values, counts, token_counts, layouts = self._pixels(images)
        media = self._media_inputs(len(texts), audio, video)
        rows, _ = self._encode_rows(texts, token_counts, media=media)
        batch = self.prompts.pad(rows, side="left")
        embeds = self.prepare_inputs(batch["input_ids"], pixel_values, counts, None, layouts, media)
        mask = batch["attention_mask"]
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.lm(
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=pos,
            **cache_kw(self.lm, DynamicCache()),
            use_cache=True,
        )
        seen = None
        if repetition_penalty != 1.0:
            seen = self._seen_tokens(batch["input_ids"], mask, out.logits.shape[-1])
        return out, mask, pos, seen

    @staticmethod
    def _seen_tokens(input_ids: torch.Tensor, mask: torch.Tensor, vocab_size: int) -> torch.Tensor:
        """[B, V] bool: which token ids each row's prompt holds (padding left out)."""
        counts = torch.zeros(input_ids.shape[0], vocab_size, dtype=torch.long)
        return counts.scatter_add_(1, input_ids, mask.long()) > 0

    def _decode(self, out, mask, pos, *args):
        """Continue from a prefilled cache to the end: tokens [B, S] and the per-step logits [B, S, V] (or None)."""
        tokens, step_logits = [], []
        for nxt, logits in self._decode_steps(out, mask, pos, *args):
            tokens.append(nxt)
            step_logits.append(logits)
        b = mask.shape[0]
        toks = torch.stack(tokens, dim=1) if tokens else torch.zeros(b, 0, dtype=torch.long)  # [B, S]
        return toks, torch.stack(step_logits, dim=1) if step_logits else None

    def _decode_steps(
        self,
        out,
        mask,
        pos,
        max_new_tokens,
        do_sample,
        temperature,
        top_k,
        generator,
        repetition_penalty: float = 1.0,
        seen: torch.Tensor | None = None,
        logits_processor=None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Pick, append, feed back one token at a time, yielding each step's tokens [B] (rows that stopped get the
        pad id) and the logits [B, V] the model gave for it; the next step is computed only when asked for."""
        stop = torch.tensor(self.stop_token_ids(), dtype=torch.long)
        b = mask.shape[0]
        done = torch.zeros(b, dtype=torch.bool)
        tokens = []
        logits = out.logits[:, -1]  # [B, V]
        for _ in range(max_new_tokens):
            raw = logits
            if seen is not None:
                logits = penalize_repeats(logits, seen, repetition_penalty)
            if logits_processor is not None:
                so_far = torch.stack(tokens, 1) if tokens else torch.zeros(b, 0, dtype=torch.long)
                logits = logits_processor(so_far, logits)
            logits = logits.index_fill(-1, self._never_written(), float("-inf"))
            nxt = self._pick(logits, do_sample, temperature, top_k, generator)  # [B]
            nxt = torch.where(done, torch.full_like(nxt, self.prompts.pad_id), nxt)
            tokens.append(nxt)
            if seen is not None:
                seen[torch.arange(b), nxt] = True
            done |= torch.isin(nxt, stop)
            yield nxt, raw
            if bool(done.all()):
                break
            mask = torch.cat([mask, torch.ones(b, 1, dtype=mask.dtype)], dim=1)
            pos = pos[:, -1:] + 1
            out = self.lm(
                input_ids=nxt[:, None],
                attention_mask=mask,
                position_ids=pos,
                **cache_kw(self.lm, cache_of(out)),
                use_cache=True,
            )
            logits = out.logits[:, -1]

    def _beam_decode(
        self,
        out,
        mask,
        pos,
        max_new_tokens,
        num_beams,
        length_penalty,
        early_stopping,
        repetition_penalty: float = 1.0,
        seen: torch.Tensor | None = None,
    ) -> torch.Tensor:
        state = {"out": out, "mask": mask, "pos": pos}

        def advance(tokens, order):
            cache_of(state["out"]).reorder_cache(order)
            state["mask"] = torch.cat([state["mask"], torch.ones(len(tokens), 1, dtype=state["mask"].dtype)], dim=1)
            state["pos"] = state["pos"][:, -1:] + 1  # a row's beams share its padding: `order` leaves these alone
            state["out"] = self.lm(
                input_ids=tokens[:, None],
                attention_mask=state["mask"],
                position_ids=state["pos"],
                **cache_kw(self.lm, cache_of(state["out"])),
                use_cache=True,
            )
            return state["out"].logits[:, -1]

        process = None
        if seen is not None:

            def process(logp, seqs):  # the prompt's tokens (same for a row's beams) and the beam's own
                now = seen.clone()
                if seqs.shape[1]:
                    now.scatter_(1, seqs, True)
                return penalize_repeats(logp, now, repetition_penalty)

        return beam_search(
            out.logits[:, -1],
            advance,
            num_beams,
            max_new_tokens,
            self.stop_token_ids(),
            self.prompts.pad_id,
            length_penalty,
            early_stopping,
            process,
        )

    @staticmethod
    def _pick(logits, do_sample, temperature, top_k, generator) -> torch.Tensor:
        if not do_sample:
            return logits.argmax(-1)
        if temperature <= 0:
            raise ValueError("temperature must be > 0 when sampling (use do_sample=False for greedy)")
        logits = logits.float() / temperature
        if top_k is not None:
            kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)

    def _detok(self, tokens: torch.Tensor) -> list[str]:
        return [self._answer_text(row) for row in tokens.tolist()]

    def _answer_text(self, row: list[int]) -> str:
        """One row of generated ids as text: cut at the first stop token, special tokens dropped."""
        stop = set(self.stop_token_ids())
        cut = next((i for i, t in enumerate(row) if t in stop), len(row))
        return self.tokenizer.decode(row[:cut], skip_special_tokens=True).strip()

    # -- likelihoods -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def score(
        self, images, texts: list[str], prompts=None, normalize: bool = True, audio=None, video=None
    ) -> torch.Tensor:
        """log p(text | image, prompt) summed over the text's tokens, divided by their count when `normalize`;
        `images=None` with `audio` / `video` scores texts given a clip / video per row, and with neither the texts
        after the prompts alone (the LM without any image)."""
        given = images is not None or audio is not None or video is not None
        n = self._rows(images, None, audio, video) if given else len(texts)
        if n != len(texts):
            raise ValueError(f"{n} images but {len(texts)} texts: score pairs one to one")
        prefixes = self._prompt_texts(len(texts), prompts, images is not None, self._markers(audio, video))
        if any(IMAGE_TOKEN in t for t in texts):
            raise ValueError(f"scored texts must not contain {IMAGE_TOKEN}")
        pixel_values, counts, token_counts, layouts = self._pixels(images)
        media = self._media_inputs(n, audio, video)
        rows, labels = self._encode_rows(
            [p + t for p, t in zip(prefixes, texts)],
            token_counts,
            [[(len(p), len(p) + len(t))] for p, t in zip(prefixes, texts)],
            media,
        )
        batch = self.prompts.pad(rows, labels, side="right")
        logits = self.forward_logits(
            batch["input_ids"], batch["attention_mask"], pixel_values, counts, None, layouts, media
        )
        logp = logits[:, :-1].float().log_softmax(-1)  # [B, T-1, V]
        target = batch["labels"][:, 1:]  # [B, T-1]
        keep = target != -100
        tok_logp = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1) * keep  # [B, T-1]
        total = tok_logp.sum(-1)
        return total / keep.sum(-1).clamp(min=1) if normalize else total

    def _answer_token_ids(self, words: list[str]) -> list[int]:
        ids = set()
        for w in words:
            enc = self.tokenizer(w, add_special_tokens=False)["input_ids"]
            if enc:
                ids.add(enc[0])
        return sorted(ids)

    @torch.no_grad()
    def yes_no_probs(self, images, questions: list[str]) -> torch.Tensor:
        """P(yes) / (P(yes) + P(no)) for the first answer token, per (image, question) -> [B]."""
        texts = self._prompt_texts(len(questions), questions, True)
        pixel_values, counts, token_counts, layouts = self._pixels(images)
        rows, _ = self._encode_rows(texts, token_counts)
        batch = self.prompts.pad(rows, side="left")  # left: the last position is the answer's
        probs = self.forward_logits(batch["input_ids"], batch["attention_mask"], pixel_values, counts, None, layouts)[
            :, -1
        ]
        probs = probs.float().softmax(-1)  # [B, V]
        p_yes = probs[:, self._answer_token_ids(["yes", "Yes", " yes", " Yes"])].sum(-1)
        p_no = probs[:, self._answer_token_ids(["no", "No", " no", " No"])].sum(-1)
        return p_yes / (p_yes + p_no).clamp(min=1e-12)

    # -- one image, many questions -----------------------------------------------------------------------------
    @torch.no_grad()
    def answer_many(
        self,
        image,
        questions: list[str],
        max_new_tokens: int = 32,
        batch_size: int = 32,
        return_logits: bool = False,
        repetition_penalty: float = 1.0,
    ):
        """Answers to every question about `image` (greedy). The shared prompt prefix (template + image tokens) is
        run once; its KV cache is copied over each batch of questions, so only the question tokens are computed."""
        check_repetition_penalty(repetition_penalty)
        pixel_values, counts, token_counts, layouts = self._pixels([image])
        texts = self._prompt_texts(len(questions), questions, True)
        rows, _ = self._encode_rows(texts, token_counts * len(texts))
        common = 0
        while all(len(r) > common + 1 and r[common] == rows[0][common] for r in rows):
            common += 1  # keep >= 1 token of every row out of the prefix: its logits start the answer
        if rows[0][:common].count(self.image_token_id) != rows[0].count(self.image_token_id):
            raise ValueError("answer_many needs the image at the start of every prompt (the shared prefix)")
        prefix = torch.tensor([rows[0][:common]])  # [1, L]
        embeds = self.prepare_inputs(prefix, pixel_values, counts, None, layouts)
        answers, all_logits = [], []
        try:
            pre_out = self.lm(
                inputs_embeds=embeds,
                attention_mask=torch.ones_like(prefix),
                position_ids=torch.arange(common)[None],
                **cache_kw(self.lm, DynamicCache()),
                use_cache=True,
            )
            for lo in range(0, len(rows), batch_size):
                chunk = [r[common:] for r in rows[lo : lo + batch_size]]
                b = len(chunk)
                if self.fusion == "xattn":  # media of one image, repeated for the batch
                    self.set_media(pixel_values.expand(b, *pixel_values.shape[1:]), [1] * b)
                cache = copy.deepcopy(cache_of(pre_out))
                cache.batch_repeat_interleave(b)
                suffix = self.prompts.pad(chunk, side="left")
                mask = torch.cat([torch.ones(b, common, dtype=torch.long), suffix["attention_mask"]], dim=1)
                pos = common + (suffix["attention_mask"].cumsum(-1) - 1).clamp(min=0)
                out = self.lm(
                    input_ids=suffix["input_ids"],
                    attention_mask=mask,
                    position_ids=pos,
                    **cache_kw(self.lm, cache),
                    use_cache=True,
                )
                seen = None
                if repetition_penalty != 1.0:
                    ids = torch.cat([prefix.expand(b, common), suffix["input_ids"]], dim=1)
                    seen = self._seen_tokens(ids, mask, out.logits.shape[-1])
                toks, logits = self._decode(
                    out, mask, pos, max_new_tokens, False, 1.0, None, None, repetition_penalty, seen
                )
                answers += self._detok(toks)
                all_logits += list(logits) if logits is not None else []
        finally:
            self.clear_all_media()
        return (answers, all_logits) if return_logits else answers
