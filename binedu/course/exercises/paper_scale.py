"""Self-check exercises of notebook 08: paper scale.

Importing this module registers them (binedu.course.exercises imports every notebook's module)."""

from __future__ import annotations

from ...units import bytes_at_bits
from .core import COUNTING, Exercise, register


def bnfcl_parameters(n_x: int, n_units: int) -> int:
    """Parameters of a BNFCL (Alg. 1): an ``(n_x, n_units)`` kernel and ``n_units`` biases."""
    return n_x * n_units + n_units


def paper_packed_megabytes(name: str) -> float:
    """Megabytes (10**6 bytes) of a paper model stored at 1 bit per parameter, counted on
    the meta device (nothing allocated)."""
    from ..widgets import paper_model_parameters  # imported late: only this check needs ipywidgets

    return bytes_at_bits(paper_model_parameters(name), 1) / 1e6



register(
    Exercise(
        id="08.bnfcl_parameters",
        title="Parameters of a BNFCL with n_x inputs and n_units units (kernel and bias)",
        reference=bnfcl_parameters,
        cases=lambda: [(768, 4096), (4096, 2048), (2048, 30522), (256, 101), (1, 1)],
        forbidden=COUNTING,
        hint=(
            'count the kernel and the bias separately.',
            "the kernel has one parameter per (input, unit) pair and the bias one per unit; both are "
            "binarized, so both count.",
        ),
        rtol=0,
        atol=0,
    )
)


def mixed_precision_megabytes(name: str = "paper-large") -> float:
    """Megabytes (10**6 bytes) of a paper language model deployed the way many binary
    networks are (XNOR-Net, BitNet): its embedding (BEMBL) and its last layer (the BNFCL
    over the vocabulary) kept in float32, every other parameter at 1 bit."""
    from ...language_model import LanguageModel

    model = LanguageModel.on_meta(name)
    kept = sum(p.numel() for m in (model.embedding, model.head[-1]) for p in m.parameters())
    return (4 * kept + bytes_at_bits(model.num_parameters() - kept, 1)) / 1e6


register(
    Exercise(
        id="08.mixed_precision_mb",
        title="paper-large with its embedding and its last layer in float32, the rest at 1 bit: MB (10**6 bytes)",
        digest="17593d2960430945ec11",
        hint=(
            'split the parameters into those kept in float32 and the rest, and price each part.',
            "count the parameters of model.embedding and of model.head[-1] (on the meta device), 4 bytes each; "
            "every other parameter takes 1/8 byte. Add, divide by 10**6.",
        ),
        rtol=1e-3,
        atol=0,
    )
)


# ---------------------------------------------------------------- build: Alg. 8's parameter count


def blm_parameters(vocab_size: int, max_len: int, embed_dim: int, num_blocks: int, mlp_units: tuple[int, ...],
                   ff_dim: int | None = None) -> int:
    """Parameters of a BLM (Alg. 8) of that shape, counted on a model built on the meta
    device (``ff_dim=None``: binedu's default width of the feed-forward layer)."""
    from ...language_model import LanguageModel

    return LanguageModel.on_meta("tiny", vocab_size=vocab_size, max_len=max_len, embed_dim=embed_dim, num_heads=1,
                                 num_blocks=num_blocks, mlp_units=tuple(mlp_units), ff_dim=ff_dim).num_parameters()


register(
    Exercise(
        id="08.build_blm_parameters",
        title="Build: the parameter count of a whole BLM (Alg. 8), layer by layer, for any shape",
        reference=blm_parameters,
        cases=lambda: [(30522, 256, 768, 12, (4096, 2048)), (100, 16, 32, 2, (64,)), (50, 8, 24, 1, (), 40),
                       (1000, 64, 128, 3, (256, 128), 96)],
        forbidden=(*COUNTING, "binedu.language_model.LanguageModel", "binedu.embedding.BinaryEmbedding",
                   "binedu.transformer.BinaryTransformerBlock", "binedu.course.widgets.paper_model_parameters"),
        hint=(
            "write one small function per building block (BEMBL, attention, feed-forward, BNFCL) and add them up.",
            "the BEMBL has a token table and a position table, each with its own bias of embed_dim values; the "
            "attention has four BNFCLs (query, key, value, out) of embed_dim -> embed_dim.",
            "the feed-forward part is embed_dim -> ff_dim -> embed_dim (ff_dim=None means 2 * embed_dim); the head "
            "is a BNFCL per entry of mlp_units, then one to vocab_size. Normalize has no parameters.",
        ),
        rtol=0,
        atol=0,
    )
)
