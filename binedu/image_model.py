"""BCVNN, the paper's binary convolutional image classifier (Alg. 7)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .config import IMAGE_CONFIGS, ImageConfig
from .conv import BinaryConv2d
from .linear import BinaryLinear
from .model import ConfigModel

__all__ = ["ImageClassifier"]


class ImageClassifier(ConfigModel):
    """BCVNN (Alg. 7): blocks of BNCVL(relu) with 2x2 max-pooling between them, global
    average pooling, a BNFCL(relu) head and a BNFCL output; returns logits (the paper's
    softmax is folded into the cross-entropy loss).

    ``ImageClassifier.from_config("paper-3x3")`` is the model behind Table 2 (3 channels,
    101 classes, 256x256 inputs, blocks 32 .. 512, head 512 -> 256): exactly the 5,132,165
    parameters the paper states (13,505,925 for ``"paper-5x5"``). Alg. 7 as printed
    (blocks 32/64/64/128/256, head 256 -> 256) is ``"paper-3x3-as-printed"``: 1,403,653.
    With ``binary=False`` it is the float32 "standard" counterpart: float kernels,
    learnable normalization, and dropout (0.4, 0.3 in the paper) after the dense layers.
    Any field of :class:`~binedu.ImageConfig` can be passed as a keyword.
    """

    config_class = ImageConfig
    configs = IMAGE_CONFIGS
    config: ImageConfig

    def __init__(self, config: ImageConfig | dict | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        c = self.config
        kw: dict[str, Any] = dict(binary=c.binary, normalize=c.normalize, affine=c.affine, weights=c.weights)
        layers: list[nn.Module] = []
        channels = c.in_channels
        for i, block in enumerate(c.widths):
            for width in block:
                layers.append(BinaryConv2d(channels, width, c.filter_size, "relu", norm_mode=c.norm_mode, **kw))
                channels = width
            layers.append(nn.MaxPool2d(2) if i < len(c.widths) - 1 else nn.AdaptiveAvgPool2d(1))
        layers.append(nn.Flatten())
        for i, units in enumerate(c.dense_units):
            layers.append(BinaryLinear(channels, units, "relu", **kw))
            if not c.binary and i < len(c.dropout) and c.dropout[i] > 0:
                layers.append(nn.Dropout(c.dropout[i]))
            channels = units
        layers.append(BinaryLinear(channels, c.num_classes, **kw))
        self.layers = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        c = self.config
        expected = (c.in_channels, c.image_size, c.image_size)
        if not isinstance(images, torch.Tensor) or images.dtype != torch.float32:  # packed or not, the same rule
            raise ValueError(f"images must be a floating-point tensor of dtype float32, got {getattr(images, 'dtype', type(images))}")
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"images must have shape (batch, {', '.join(map(str, expected))}), got {tuple(images.shape)}")
        return self.layers(images)
