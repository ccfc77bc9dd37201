"""Model configurations: the paper's (Alg. 7, Table 3) and small ones for CPUs.

A configuration is a frozen dataclass that round-trips through plain JSON
(``to_dict``/``from_dict``), so checkpoints can store it without pickling. Every field
is checked when a configuration is made (from code or from a file): widths are
positive integers, flags are real booleans (the string ``"false"`` is not a flag: it
would read as true), rates are numbers in their range, so a configuration that could
not train, evaluate or pack is refused with one message instead of failing later.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

__all__ = ["ImageConfig", "LanguageConfig", "IMAGE_CONFIGS", "LANGUAGE_CONFIGS"]

C = TypeVar("C", bound="_Config")


def _tuples(value: Any) -> Any:
    """JSON lists back to (nested) tuples."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value


@dataclass(frozen=True)
class _Config:
    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        data = dict(data)
        kind = data.pop("kind", cls.kind)
        if kind != cls.kind:
            raise ValueError(f"configuration is for a {kind!r} model, not {cls.kind!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {unknown}")
        return cls(**{k: _tuples(v) for k, v in data.items()})

    def replace(self: C, **changes: Any) -> C:
        return self.from_dict({**self.to_dict(), **changes})


@dataclass(frozen=True)
class ImageConfig(_Config):
    """BCVNN (Alg. 7). The defaults are Alg. 7 as printed; the ``"paper-3x3"`` and
    ``"paper-5x5"`` presets are the wider model whose counts match the paper. ``widths`` lists the convolutions of each block; a 2x2 max-pool
    follows every block but the last, which ends in global average pooling; then the
    dense head ``dense_units`` and a ``num_classes`` output layer.

    ``affine`` (None: learnable normalization for float models, none for binary ones)
    gives the float32 baseline its literal reading with ``affine=False``: the paper
    states a learnable normalization only for its language baseline. ``normalize``
    (True; False: none, the ablation; ``"fixed"``: a fixed 1/sqrt(fan_in) scale) and
    ``weights`` (``"01"``, the paper; ``"pm1"``: -1/+1) are the ablation's controls."""

    kind: ClassVar[str] = "image"
    in_channels: int = 3
    num_classes: int = 101
    image_size: int = 256
    filter_size: int = 3
    widths: tuple[tuple[int, ...], ...] = ((32, 32), (64, 64), (64, 64), (128, 128), (256, 256))
    dense_units: tuple[int, ...] = (256, 256)
    binary: bool = True
    normalize: bool | str = True
    norm_mode: str = "channels"
    dropout: tuple[float, ...] = (0.4, 0.3)
    affine: bool | None = None
    weights: str = "01"

    def __post_init__(self) -> None:
        _freeze(self, "widths", "dense_units", "dropout")
        _positive(self, "in_channels", "num_classes", "image_size", "filter_size")
        _flags(self, "binary")
        if self.affine is not None:
            _flags(self, "affine")
        _widths(self, "dense_units", allow_empty=True)
        if not isinstance(self.widths, tuple) or not all(isinstance(block, tuple) for block in self.widths):
            raise ValueError(f"ImageConfig.widths must be a list of blocks (lists of widths), got {self.widths!r}")
        for block in self.widths:
            if not all(type(w) is int and w > 0 for w in block):
                raise ValueError(f"ImageConfig.widths must hold positive integers, got {self.widths!r}")
        if not isinstance(self.dropout, tuple) or not all(type(p) in (int, float) and 0 <= p < 1 for p in self.dropout):
            raise ValueError(f"ImageConfig.dropout must list rates in [0, 1), got {self.dropout!r}")
        if self.normalize not in (True, False, "fixed") or type(self.normalize) is int:
            raise ValueError(f"ImageConfig.normalize must be True, False or 'fixed', got {self.normalize!r}")
        if self.weights not in ("01", "pm1"):
            raise ValueError(f"ImageConfig.weights must be '01' or 'pm1', got {self.weights!r}")
        if self.norm_mode not in ("channels", "chw"):
            raise ValueError(f"ImageConfig.norm_mode must be 'channels' or 'chw', got {self.norm_mode!r}")
        if not self.widths or not all(self.widths):
            raise ValueError("widths must list at least one block of at least one convolution")
        if self.image_size < 2 ** (len(self.widths) - 1):
            raise ValueError(f"image_size={self.image_size} is too small for {len(self.widths) - 1} max-pools")


@dataclass(frozen=True)
class LanguageConfig(_Config):
    """BLM (Alg. 8): BEMBL, ``num_blocks`` BTFBs and an MLP head, next-token logits at
    every position."""

    kind: ClassVar[str] = "language"
    vocab_size: int = 30522
    max_len: int = 256
    embed_dim: int = 768
    num_heads: int = 16
    num_blocks: int = 12
    mlp_units: tuple[int, ...] = (4096, 2048)
    ff_dim: int | None = None
    binary: bool = True
    normalize: bool = True
    leaky_mask: bool = False

    def __post_init__(self) -> None:
        _freeze(self, "mlp_units")
        _positive(self, "vocab_size", "max_len", "embed_dim", "num_heads", "num_blocks")
        _flags(self, "binary", "normalize", "leaky_mask")
        _widths(self, "mlp_units", allow_empty=True)
        if self.ff_dim is not None:
            _positive(self, "ff_dim")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}")


def _positive(cfg: Any, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if type(value) is not int or value <= 0:
            raise ValueError(f"{type(cfg).__name__}.{name} must be a positive integer, got {value!r}")


def _freeze(cfg: Any, *names: str) -> None:
    """Lists given for tuple fields (``widths=[[16, 16], [32]]``) become (nested) tuples."""
    for name in names:
        object.__setattr__(cfg, name, _tuples(getattr(cfg, name)))


def _flags(cfg: Any, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not isinstance(value, bool):
            raise ValueError(f"{type(cfg).__name__}.{name} must be true or false, got {value!r}")


def _widths(cfg: Any, name: str, allow_empty: bool = False) -> None:
    value = getattr(cfg, name)
    if not isinstance(value, tuple) or not (value or allow_empty) or not all(type(w) is int and w > 0 for w in value):
        raise ValueError(f"{type(cfg).__name__}.{name} must be a list of positive integers, got {value!r}")


# The model behind Table 2: every block doubles (32 .. 512) and the head is 512 -> 256.
# It gives exactly the stated 5,132,165 (3x3) and 13,505,925 (5x5) parameters, two
# independent exact matches, so the printed Alg. 7 is almost surely a typo.
PAPER_WIDTHS = ((32, 32), (64, 64), (128, 128), (256, 256), (512, 512))
PAPER_DENSE = (512, 256)

IMAGE_CONFIGS: dict[str, ImageConfig] = {
    "paper-3x3": ImageConfig(filter_size=3, widths=PAPER_WIDTHS, dense_units=PAPER_DENSE),  # 5,132,165
    "paper-5x5": ImageConfig(filter_size=5, widths=PAPER_WIDTHS, dense_units=PAPER_DENSE),  # 13,505,925
    # Alg. 7 exactly as printed (blocks 32/64/64/128/256, head 256 -> 256): 1,403,653 and 3,617,029.
    "paper-3x3-as-printed": ImageConfig(filter_size=3),
    "paper-5x5-as-printed": ImageConfig(filter_size=5),
    # 8x8 grey digits (scikit-learn's offline data set), trains in seconds on a CPU.
    "tiny": ImageConfig(
        in_channels=1,
        num_classes=10,
        image_size=8,
        widths=((16, 16), (32, 32), (64,)),
        dense_units=(64,),
        dropout=(0.2,),
    ),
    # The 28x28 "digits-hard" task (binedu.data.hard_digits explains both changes): two
    # more pooled blocks, so the last features see the whole (shifted, rescaled) digit
    # before the global average pool, and the conv normalization over C,H,W, which keeps
    # the strokes stronger than the noisy background (per-pixel channel normalization does not).
    "tiny-28": ImageConfig(
        in_channels=1,
        num_classes=10,
        image_size=28,
        widths=((16, 16), (32, 32), (64, 64), (64, 64), (64,)),
        dense_units=(64,),
        dropout=(0.2,),
        norm_mode="chw",
    ),
}

LANGUAGE_CONFIGS: dict[str, LanguageConfig] = {
    "paper-small": LanguageConfig(),  # Table 3: 154.4 M parameters
    "paper-large": LanguageConfig(embed_dim=1024, num_blocks=16, mlp_units=(8192, 4096)),  # 332.8 M
    "tiny": LanguageConfig(vocab_size=256, max_len=64, embed_dim=64, num_heads=4, num_blocks=2, mlp_units=(128,)),
}


def lookup(table: dict[str, C], name: str, what: str) -> C:
    """The named configuration, or a ValueError that lists the known names."""
    if name not in table:
        raise ValueError(f"unknown {what} config {name!r}; known configs: {sorted(table)}")
    return table[name]
