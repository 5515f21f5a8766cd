"""Suites on speech into a language model: spoken questions against the same questions as text, and transcription.

- `spoken_vqa`: items {"image", "question", "question_audio", "answer", "qtype"} (the `spoken` world's vqa task,
  or your own): every question asked twice of the same model, once written (`{question} <instruction>`) and once
  spoken (`<audio>` then the instruction); accuracy of each, per question type, and their ratio. With `blind: true`
  the written questions are also asked about a blank (mid-grey) picture of the same size: `accuracy_blind` is what
  the model answers from the question alone, and `ratio_above_blind` = (spoken - blind) / (written - blind) compares
  only what each way of asking gains from the image — a spoken/written ratio near 1 with both accuracies at the
  blind one says that neither reads the image, not that speech works as well as text.
- `transcription`: items {"audio", "text"}: the model writes what it hears (the caption format `<s><audio>`, which
  the caption objective trains on clips with transcripts, or a chat `prompt`); word error rate against the texts.
  `reference: whisper-tiny | whisper-base` also decodes the same clips with faster-whisper's own decoder (greedy) on
  the packaged weights, the reference point for the same encoder.
"""

from __future__ import annotations

from PIL import Image

from ...registry import ConfigError
from .. import metrics as M
from .common import generate, items, require, row_images, settings
from .generative import SHORT_ANSWER


def spoken_vqa(
    model,
    dataset,
    instruction: str = SHORT_ANSWER,
    max_new_tokens: int = 8,
    batch_size: int = 16,
    limit: int | None = None,
    blind: bool = False,
    progress: bool = True,
) -> dict:
    """VQA accuracy with the question written and with it spoken, on the same items and model; `ratio` is
    spoken / written; `blind` adds the written questions about a blank picture (see the module docstring)."""
    require(model, "generative", "spoken_vqa")
    rows = items(dataset, limit, "spoken_vqa", progress)
    if any("question_audio" not in r for r in rows):
        raise ConfigError("spoken_vqa needs items with `question_audio` (the question spoken), e.g. spoken:task=vqa")
    images, answers = row_images(rows), [r["answer"] for r in rows]
    qtypes = [r.get("qtype", "all") for r in rows]
    written = [f"{r['question']} {instruction}".strip() for r in rows]
    spoken = [f"<audio>\n{instruction}".strip()] * len(rows)
    preds_text = generate(model, images, written, batch_size, max_new_tokens, progress)
    preds_audio = generate(
        model, images, spoken, batch_size, max_new_tokens, progress, audio=[r["question_audio"] for r in rows]
    )
    text, audio = M.vqa_score(preds_text, answers, qtypes), M.vqa_score(preds_audio, answers, qtypes)
    metrics = {
        "accuracy_text": text["accuracy"],
        "accuracy_spoken": audio["accuracy"],
        "ratio": audio["accuracy"] / text["accuracy"] if text["accuracy"] else 0.0,
    }
    metrics.update({f"text_{t}": v for t, v in text["per_qtype"].items()})
    metrics.update({f"spoken_{t}": v for t, v in audio["per_qtype"].items()})
    if blind:
        if images is None:
            raise ConfigError("spoken_vqa blind: true needs items with an image (the blank picture takes its place)")
        blank = [_blank(im) for im in images]
        preds_blind = generate(model, blank, written, batch_size, max_new_tokens, progress)
        b = M.vqa_score(preds_blind, answers, qtypes)
        gain = text["accuracy"] - b["accuracy"]
        metrics["accuracy_blind"] = b["accuracy"]
        metrics["ratio_above_blind"] = (audio["accuracy"] - b["accuracy"]) / gain if gain > 0 else 0.0
        metrics.update({f"blind_{t}": v for t, v in b["per_qtype"].items()})
    samples = [
        {"id": r["id"], "question": r["question"], "truth": r["answer"], "written": a, "spoken": b}
        for r, a, b in list(zip(rows, preds_text, preds_audio))[:8]
    ]
    return {
        "suite": "spoken_vqa",
        "metrics": metrics,
        "settings": settings(
            model,
            dataset,
            written="{question} " + instruction,
            spoken="<audio>\n" + instruction,
            blind="the written question about a mid-grey picture of the same size" if blind else None,
            limit=limit,
        ),
        "samples": samples,
    }


def _blank(image):
    """A mid-grey picture the size of `image` (one per picture of a multi-image row)."""
    if isinstance(image, (list, tuple)):
        return [_blank(im) for im in image]
    return Image.new("RGB", image.size, (128, 128, 128))


def reference_transcripts(name: str, clips: list) -> list[str]:
    """faster-whisper's own greedy decoding of each clip (English), on the packaged weights of `name`."""
    from ...data.audio_io import as_waveform
    from ...encoders.whisper import transcriber

    whisper = transcriber(name)
    out = []
    for clip in clips:
        segments, _ = whisper.transcribe(as_waveform(clip), beam_size=1, language="en", vad_filter=False)
        out.append(" ".join(s.text.strip() for s in segments))  # a generator: decoding runs here
    return out


def transcription(
    model,
    dataset,
    prompt: str | None = None,
    max_new_tokens: int = 48,
    batch_size: int = 8,
    limit: int | None = None,
    reference: str | None = None,
    progress: bool = True,
) -> dict:
    """Word error rate of the model's transcripts (and of faster-whisper's, with `reference`) against the texts."""
    if reference not in (None, "whisper-tiny", "whisper-base"):
        raise ConfigError(f"reference must be whisper-tiny, whisper-base or None, got {reference!r}")
    rows = items(dataset, limit, "transcription", progress)
    if any("audio" not in r or "text" not in r for r in rows):
        raise ConfigError("transcription needs items with `audio` and `text` (the transcript)")
    refs, clips = [r["text"] for r in rows], [r["audio"] for r in rows]
    metrics, out_rows = {}, [{"id": r["id"], "truth": r["text"]} for r in rows]
    if model is not None:
        require(model, "generative", "transcription")
        prompts = [prompt] * len(rows) if prompt is not None else None
        hyps = _transcribe(model, clips, prompts, batch_size, max_new_tokens, progress)
        w = M.word_error_rate(refs, hyps)
        metrics.update(wer=w["wer"], ref_words=w["ref_words"])
        for row, h in zip(out_rows, hyps):
            row["model"] = h
    if reference is not None:
        ref_hyps = reference_transcripts(reference, clips)
        metrics["reference_wer"] = M.word_error_rate(refs, ref_hyps)["wer"]
        for row, h in zip(out_rows, ref_hyps):
            row[reference] = h
    return {
        "suite": "transcription",
        "metrics": metrics,
        "settings": {
            **(settings(model, dataset) if model is not None else {"dataset": type(dataset).__name__}),
            "prompt": prompt if prompt is not None else "<s><audio> (caption format)",
            "reference": reference,
            "normalisation": "modalign.eval.metrics.wer.normalize_transcript",
            "decoding": "greedy",
            "limit": limit,
        },
        "samples": out_rows[:8],
    }


def _transcribe(model, clips, prompts, batch_size, max_new_tokens, progress) -> list[str]:
    if prompts is not None:
        return generate(model, None, prompts, batch_size, max_new_tokens, progress, audio=clips)
    out = []
    for start in range(0, len(clips), batch_size):
        chunk = clips[start : start + batch_size]
        out += model.generate(None, None, max_new_tokens=max_new_tokens, audio=chunk)
    return out
