"""Layer 9: the web demo (`modalign serve RUN [RUN ...]`), a Gradio page over saved models.

- app.py: the page's four tabs and the server (localhost, offline, bounded queue); `serve(runs, ...)`.
- chat.py: talk to a vision-language model about an upload, answers streamed token by token.
- look.py: where the model looked for a word of an answer (explain/).
- search.py: zero-shot classification of an upload and text-to-image search with a dual encoder.
- gap.py: PCA of the folder's image and text embeddings and the modality gap (eval/metrics/geometry.py).
- index.py: the `--images` folder embedded once per model, cached on disk by file content and model fingerprint.
- runs.py: RUN arguments -> loaded models with a name, a fingerprint and a description of their training.
- safety.py: what the page may send: uploads bounded in bytes and pixels and decoded here, short texts.
"""

import os

# Before gradio is first imported anywhere below: no analytics, hence no version check calling out at import.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
