"""The Search tab of a dual encoder: zero-shot classification of an upload over typed labels, and text-to-image
search over the `--images` folder (indexed once, with a progress bar; see index.py).

Scores are the model's own: cosine x logit scale (+ bias), then a softmax over the labels for a CLIP-trained
model, or one sigmoid per label for a SigLIP-trained one (which has a logit bias), as each was trained to compare.
"""

from __future__ import annotations

import gradio as gr
import numpy as np
import torch

from .index import FolderIndex
from .runs import ServedModel
from .safety import UPLOAD_KINDS, Refused, clean_text, decode_upload, open_untrusted_image, parse_labels, shown_in_page

MAX_RESULTS = 24
THUMBNAIL = 256


def label_probabilities(model, image, labels: list[str]) -> dict[str, float]:
    """{label: probability} for one image: softmax over the labels (CLIP) or a sigmoid each (SigLIP)."""
    with torch.no_grad():
        img = model.embed_images([image]).float()  # [1, E]
        txt = model.embed_texts(labels).float()  # [L, E]
        logits = model.logit_scale.float() * (img @ txt.T)[0]  # [L]
        bias = model.logit_bias
        probs = torch.sigmoid(logits + bias.float()) if bias is not None else logits.softmax(-1)
    return {lab: float(p) for lab, p in zip(labels, probs.tolist())}


def search(model, index, query: str, k: int) -> list[tuple[int, float]]:
    """(index row, cosine) of the k images nearest to the query text, best first."""
    if len(index.names) == 0:
        raise Refused(f"No readable images were found under {index.root}")
    with torch.no_grad():
        q = model.embed_texts([query]).float().numpy()[0]  # [E]
    sims = index.vectors @ q  # [N]
    order = np.argsort(-sims, kind="stable")[: max(1, min(k, MAX_RESULTS))]
    return [(int(i), float(sims[i])) for i in order]


def thumbnail(path):
    image = open_untrusted_image(path)
    image.thumbnail((THUMBNAIL, THUMBNAIL))
    return image


def index_summary(index) -> str:
    text = f"{len(index.names)} images indexed in `{index.root.name}/` ({index.embedded} embedded now, the rest cached)"
    if index.skipped:
        names = ", ".join(f"`{n}`" for n, _ in index.skipped[:5])
        text += f"; {len(index.skipped)} skipped as unreadable or too large: {names}"
    return text + "."


def build_search_tab(duals: list[ServedModel], folder: FolderIndex) -> None:
    by_label = {s.label: s for s in duals}
    first = duals[0] if duals else None
    model_dd = gr.Dropdown(
        [s.label for s in duals], value=first.label if first else None, label="Dual encoder",
        elem_id="dual-model", interactive=len(duals) > 1,
    )  # fmt: skip
    with gr.Accordion("About this model", open=False):
        card = gr.Markdown(first.card if first else "No dual encoder was given.", elem_id="dual-card")
    with gr.Row():
        with gr.Column():
            gr.Markdown("### Classify an image\nZero-shot: the image is compared with each label's text embedding.")
            upload = gr.File(
                label="Image", file_types=list(UPLOAD_KINDS["image"].suffixes), type="filepath",
                elem_id="classify-upload",
            )  # fmt: skip
            labels = gr.Textbox(label="Labels (comma-separated or one per line)", elem_id="labels", lines=2)
            classify_btn = gr.Button("Classify", variant="primary", elem_id="classify")
            result = gr.Label(label="Scores", num_top_classes=5, elem_id="classify-result")
        with gr.Column():
            gr.Markdown("### Search the image folder\n" + _folder_line(folder))
            query = gr.Textbox(label="Describe what to find", elem_id="query")
            k = gr.Slider(1, MAX_RESULTS, value=8, step=1, label="Results", elem_id="results-k")
            search_btn = gr.Button("Search", variant="primary", elem_id="search", interactive=folder.root is not None)
            status = gr.Markdown("", elem_id="index-status")
    gallery = gr.Gallery(label="Nearest images", elem_id="results", columns=6, height="auto", interactive=False)

    def served(label):
        s = by_label.get(label)
        if s is None:
            raise Refused("No dual encoder is being served (give one on the command line)")
        return s

    @shown_in_page
    def on_classify(label, path, text):
        model = served(label).model
        names = parse_labels(text)
        image = decode_upload("image", path)
        return label_probabilities(model, image, names)

    @shown_in_page
    def on_search(label, text, k_, progress=gr.Progress()):  # noqa: B008 (gradio's way to ask for a bar)
        s = served(label)
        text = clean_text(text, "a description to search for")
        index = folder.get(s, lambda done, total: progress((done, total), desc="Indexing images", unit="images"))
        hits = search(s.model, index, text, int(k_))
        items = [(thumbnail(index.path(i)), f"{score:.3f} · {index.names[i]}") for i, score in hits]
        return items, index_summary(index)

    classify_btn.click(
        on_classify, [model_dd, upload, labels], [result], concurrency_id="dual", concurrency_limit=1,
        api_visibility="private",
    )  # fmt: skip
    for trigger in (search_btn.click, query.submit):
        trigger(
            on_search, [model_dd, query, k], [gallery, status], concurrency_id="dual", concurrency_limit=1,
            api_visibility="private",
        )  # fmt: skip
    model_dd.change(
        lambda lab: by_label[lab].card if lab in by_label else "", [model_dd], [card], api_visibility="private"
    )


def _folder_line(folder: FolderIndex) -> str:
    if folder.root is None:
        return "No folder was given: start the demo with `--images DIR` to search one."
    return f"Text-to-image search over `{folder.root.name}/` (indexed on the first search, then cached on disk)."
