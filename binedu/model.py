"""What both paper models share: construction from a named configuration and counting."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from .config import _Config, lookup

__all__ = ["ConfigModel", "count_parameters"]


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (weights and biases, embeddings included) of ``model``."""
    return sum(p.numel() for p in model.parameters())


class ConfigModel(nn.Module):
    """A model built from a configuration dataclass, readable as ``model.config``."""

    config_class: ClassVar[type[_Config]]
    configs: ClassVar[dict[str, Any]]

    config: _Config

    def __init__(self, config: _Config | dict | None = None, **overrides: Any) -> None:
        super().__init__()
        if config is None:
            config = self.config_class()
        elif isinstance(config, dict):
            config = self.config_class.from_dict(config)
        elif not isinstance(config, self.config_class):
            raise ValueError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        if overrides:
            config = config.from_dict({**config.to_dict(), **overrides})
        self.config = config

    @classmethod
    def from_config(cls, name: str | _Config | dict, **overrides: Any):
        """Build from a named configuration (``"paper-..."``, ``"tiny"``), a config
        object or its dict, with any field overridden (``binary=False``, ...)."""
        config = lookup(cls.configs, name, cls.config_class.kind) if isinstance(name, str) else name
        return cls(config, **overrides)

    @classmethod
    def on_meta(cls, name: str | _Config | dict, **overrides: Any):
        """The model's structure without its weights, built on PyTorch's ``meta`` device:
        counting and memory reports of paper-size models allocate nothing."""
        with torch.device("meta"):
            return cls.from_config(name, **overrides)

    def num_parameters(self) -> int:
        """Number of parameters of this model (see :func:`count_parameters`)."""
        return count_parameters(self)

    def __getattr__(self, name: str) -> Any:
        # configuration fields read as attributes: model.vocab_size, model.image_size, ...
        try:
            return super().__getattr__(name)
        except AttributeError:
            config = self.__dict__.get("config")
            if config is not None and hasattr(config, name):
                return getattr(config, name)
            raise
