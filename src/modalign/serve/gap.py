"""The Gap tab: image and text embeddings of the indexed folder in 2-D (PCA of both together), and the modality gap
between them, both from eval/metrics/geometry.py (`modality_gap`, `pca_2d`), as the `geometry` suite reports them.

Each image is paired with a text: its caption (the folder's captions.jsonl), or the label, among the ones typed,
that the model ranks first for it. The gap is ||mean(normalised images) - mean(normalised texts)|| over all pairs.
"""

from __future__ import annotations

import io

import gradio as gr
import numpy as np
import torch
from PIL import Image

from ..eval.metrics.geometry import l2_normalize, modality_gap, pca_2d
from .index import FolderIndex
from .runs import ServedModel
from .safety import Refused, parse_labels, shown_in_page

MAX_POINTS = 600  # a fixed subsample keeps the figure legible; the gap uses every pair
SOURCES = ("captions", "labels")


def pair_texts(model, index, source: str, captions: dict[str, str], labels: list[str] | None):
    """(image rows, their texts, the text embeddings [n, E]) pairing each image with its caption or best label."""
    if source == "captions":
        rows = [i for i, n in enumerate(index.names) if n in captions]
        if not rows:
            raise Refused(
                'The image folder has no captions.jsonl naming its images (lines of {"image", "text"}): '
                "choose labels instead"
            )
        texts = [captions[index.names[i]] for i in rows]
        with torch.no_grad():
            y = model.embed_texts(texts).float().numpy()
        return rows, texts, y
    if not labels:
        raise Refused("Type the labels to pair the images with")
    with torch.no_grad():
        emb = model.embed_texts(labels).float().numpy()  # [L, E]
    best = (index.vectors @ emb.T).argmax(1)  # [N]
    return list(range(len(index.names))), [labels[j] for j in best], emb[best]


def gap_figure(px: np.ndarray, py: np.ndarray, gap: float, explained: list[float]) -> Image.Image:
    """Scatter of the two modalities on the top-2 principal axes, pairs joined, the two means marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for a, b in list(zip(px, py))[:150]:
        ax.plot([a[0], b[0]], [a[1], b[1]], color="0.85", lw=0.6, zorder=1)
    ax.scatter(px[:, 0], px[:, 1], s=14, c="tab:blue", label="images", zorder=2)
    ax.scatter(py[:, 0], py[:, 1], s=18, c="tab:orange", marker="^", label="texts", zorder=2)
    mx, my = px.mean(0), py.mean(0)
    ax.annotate("", xy=mx, xytext=my, arrowprops=dict(arrowstyle="->", color="black", lw=1.5), zorder=3)
    ax.scatter(*mx, s=120, c="tab:blue", marker="X", edgecolors="black", zorder=4)
    ax.scatter(*my, s=120, c="tab:orange", marker="X", edgecolors="black", zorder=4)
    ax.set_xlabel(f"PC1 ({100 * explained[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC2 ({100 * explained[1]:.0f}% of variance)")
    ax.set_title(f"modality gap {gap:.3f}")
    ax.legend(loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def gap_view(model, index, source: str, captions: dict[str, str], labels: list[str] | None):
    """(figure, markdown with the gap number) for the indexed folder."""
    if len(index.names) < 2:
        raise Refused("The gap needs at least two readable images in the folder")
    rows, texts, y = pair_texts(model, index, source, captions, labels)
    x = index.vectors[rows]  # [n, E]
    _, gap = modality_gap(x, y)
    keep = np.random.default_rng(0).permutation(len(rows))[:MAX_POINTS]
    px, py, explained = pca_2d(x[keep], y[keep])
    cos = float((l2_normalize(x) * l2_normalize(y)).sum(1).mean())
    text = (
        f"**Modality gap: {gap:.3f}** (the distance between the mean image and the mean text embedding, "
        f"normalised rows) over {len(rows)} image-text pairs ({source}, {len(set(texts))} distinct texts); "
        f"mean cosine of a pair {cos:.3f}. The plot shows {len(keep)} pairs."
    )
    return gap_figure(px, py, gap, explained), text


def build_gap_tab(duals: list[ServedModel], folder: FolderIndex) -> None:
    by_label = {s.label: s for s in duals}
    gr.Markdown(
        "Where images and texts sit in the shared space: each point an embedding, projected on the two principal "
        "axes of both together. Contrastive training leaves the two modalities apart; the gap measures how far."
    )
    with gr.Row():
        model_dd = gr.Dropdown(
            list(by_label), value=duals[0].label if duals else None, label="Dual encoder", elem_id="gap-model",
            interactive=len(duals) > 1,
        )  # fmt: skip
        source = gr.Radio(list(SOURCES), value="captions", label="Pair each image with", elem_id="gap-source")
    labels = gr.Textbox(label="Labels (when pairing with labels)", elem_id="gap-labels", lines=2)
    run = gr.Button("Show the gap", variant="primary", elem_id="gap-run", interactive=folder.root is not None)
    with gr.Row():
        figure = gr.Image(label="PCA of the embeddings", interactive=False, elem_id="gap-plot", height=480, scale=3)
        number = gr.Markdown("", elem_id="gap-number")

    @shown_in_page
    def on_run(label, source_, text, progress=gr.Progress()):  # noqa: B008 (gradio's way to ask for a bar)
        s = by_label.get(label)
        if s is None:
            raise Refused("No dual encoder is being served (give one on the command line)")
        if source_ not in SOURCES:
            raise Refused("Choose what to pair the images with")
        names = parse_labels(text) if source_ == "labels" else None
        index = folder.get(s, lambda done, total: progress((done, total), desc="Indexing images", unit="images"))
        return gap_view(s.model, index, source_, folder.captions(), names)

    run.click(
        on_run, [model_dd, source, labels], [figure, number], concurrency_id="dual", concurrency_limit=1,
        api_visibility="private",
    )  # fmt: skip
