"""The paper's language-model metrics (Table 5), reproduced switch by switch.

In every row of Table 5 the reported perplexity is above exp(reported loss), and the
numbers are far better than models of that size reach on WikiText-103 (PAPER.md, Sec. 5).
Three choices of a Keras-style pipeline explain such numbers; each is a switch here, so
its effect can be measured on its own:

- ``count_padding``: padding targets count in loss and accuracy (a Keras model trained
  and evaluated without a mask). binedu's metrics (:mod:`binedu.metrics`) never count them.
- ``leaky_mask``: attention uses Alg. 6's fill value -1e-10, which does not hide the
  future (:data:`binedu.attention.PAPER_MASK_VALUE`); binedu masks with ``-inf``.
- ``per_batch``: loss, accuracy and perplexity are running means over batches, weighted by
  the batch's number of examples, as Keras' metric trackers average them, and perplexity
  is the mean of ``exp(batch loss)``. By Jensen's inequality that perplexity is never below
  ``exp(loss)``, which fits every row of Table 5. binedu's perplexity is
  ``exp(mean NLL over all real tokens of the data set)``.

Both ``count_padding`` and ``leaky_mask`` change what a model learns, not only how it is
scored: the paper's models were trained that way. :func:`paper_metrics_table` therefore
trains each row's model under its own switches and evaluates it under the same ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .attention import BinaryMultiheadAttention
from .metrics import Tally, evaluate, perplexity, split_batch, task_of

__all__ = ["paper_style_evaluate", "leaky_masks", "paper_metrics_table", "format_paper_metrics_table", "PAPER_ROWS"]


@contextmanager
def leaky_masks(model: nn.Module, leaky: bool = True) -> Iterator[nn.Module]:
    """Within the block, every attention layer of ``model`` masks with the paper's -1e-10
    (``leaky=True``) or with ``-inf`` (also for a model built with ``leaky_mask=True``);
    the previous settings come back afterwards. It toggles the layers' ``leaky_mask``
    attribute, which :class:`~binedu.BinaryMultiheadAttention` reads on every call."""
    layers = [m for m in model.modules() if isinstance(m, BinaryMultiheadAttention)]
    if leaky and not layers:
        raise ValueError(f"{type(model).__name__} has no attention layer whose mask could leak")
    before = [m.leaky_mask for m in layers]
    try:
        for m in layers:
            m.leaky_mask = leaky
        yield model
    finally:
        for m, value in zip(layers, before, strict=True):
            m.leaky_mask = value


@torch.no_grad()
def paper_style_evaluate(
    model: nn.Module,
    dataset: Dataset | DataLoader,
    *,
    count_padding: bool = False,
    leaky_mask: bool = False,
    per_batch: bool = False,
    batch_size: int = 32,
    pad_id: int = 0,
) -> dict[str, float]:
    """``{"loss", "acc", "ppl"}`` of a language model under the chosen paper-style switches
    (see the module docstring). With every switch off it equals
    :func:`binedu.metrics.evaluate` (attention masked with ``-inf`` even in a model built
    with ``leaky_mask=True``). The model runs in eval mode and is left as it was."""
    if task_of(model) != "language":
        raise ValueError("paper_style_evaluate scores language models; use binedu.evaluate for images")
    if not (count_padding or per_batch):
        with leaky_masks(model, leaky_mask):
            return evaluate(model, dataset, batch_size=batch_size, pad_id=pad_id)
    loader = dataset if isinstance(dataset, DataLoader) else DataLoader(dataset, batch_size=batch_size, shuffle=False)
    tensors = [*model.parameters(), *model.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    counted = None if count_padding else pad_id
    total, weighted = Tally(), {"loss": 0.0, "acc": 0.0, "ppl": 0.0}
    examples = 0
    was_training = model.training
    model.eval()
    try:
        with leaky_masks(model, leaky_mask):
            for batch in loader:
                x, y = split_batch(batch, "language")
                logits = model(x.to(device))
                tally = Tally()
                tally.add(logits, y.to(device), counted)
                total.add(logits, y.to(device), counted)
                if per_batch and tally.count:
                    m, n = tally.metrics(), len(x)
                    weighted["loss"] += n * m["loss"]
                    weighted["acc"] += n * m["acc"]
                    weighted["ppl"] += n * perplexity(m["loss"])
                    examples += n
    finally:
        model.train(was_training)
    if not per_batch:
        return total.metrics(language=True)
    if examples == 0:
        raise ValueError("no real targets to average over (empty data set, or only padding)")
    return {k: v / examples for k, v in weighted.items()}


@dataclass(frozen=True)
class PaperRow:
    """One row of the table: its name, the switches its model is trained under
    (``count_padding``, ``leaky_mask``) and those it is scored under."""

    name: str
    count_padding: bool = False
    leaky_mask: bool = False
    per_batch: bool = False


PAPER_ROWS = (
    PaperRow("ours (real tokens, -inf mask, data-set mean)"),
    PaperRow("+ padding counted", count_padding=True),
    PaperRow("+ leaky -1e-10 mask", leaky_mask=True),
    PaperRow("+ per-batch mean of exp(loss)", per_batch=True),
    PaperRow("all three (the paper's pipeline)", count_padding=True, leaky_mask=True, per_batch=True),
)


def paper_metrics_table(
    data=None,
    *,
    epochs: int = 1,
    limit: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    lr: float = 1e-2,
    config: str = "tiny",
    progress: bool = False,
) -> list[dict]:
    """Validation loss, accuracy and perplexity of the binary and float32 language models
    under each paper-style switch (rows :data:`PAPER_ROWS`), on ``data`` (default: the
    offline ``text_data()`` corpus, characters, ``max_len=64``).

    A row whose switches change training (padding counted, leaky mask) gets its own model,
    trained with them (``fit(pad_id=None)``, ``leaky_mask=True``) by the same recipe and
    seed as "ours"; the other rows score "ours" differently. ``limit`` keeps that many
    training and validation examples (a faster, noisier table). Returns one dict per
    (variant, row): ``variant``, ``row``, ``loss``, ``acc``, ``ppl``; see
    :func:`format_paper_metrics_table`.
    """
    from torch.utils.data import Subset

    from .data import text_data
    from .language_model import LanguageModel
    from .train import fit

    data = text_data() if data is None else data
    train, val = data.train, data.val
    if limit is not None:
        train, val = Subset(train, range(min(limit, len(train)))), Subset(val, range(min(limit, len(val))))
    pad_id = data.tokenizer.pad_id
    out = []
    for variant, binary in (("binary", True), ("float32", False)):
        models: dict[tuple[bool, bool], nn.Module] = {}
        for row in PAPER_ROWS:
            key = (row.count_padding, row.leaky_mask)
            if key not in models:
                torch.manual_seed(seed)
                model = LanguageModel.from_config(
                    config, vocab_size=data.vocab_size, binary=binary, leaky_mask=row.leaky_mask
                )
                fit(
                    model,
                    train,
                    epochs=epochs,
                    batch_size=batch_size,
                    lr=lr,
                    optimizer="adamw",
                    seed=seed,
                    pad_id=None if row.count_padding else pad_id,
                    progress=progress,
                )
                models[key] = model
            metrics = paper_style_evaluate(
                models[key],
                val,
                count_padding=row.count_padding,
                leaky_mask=row.leaky_mask,
                per_batch=row.per_batch,
                batch_size=batch_size,
                pad_id=pad_id,
            )
            out.append({"variant": variant, "row": row.name, **metrics})
    return out


def format_paper_metrics_table(rows: list[dict]) -> str:
    """A Markdown table of :func:`paper_metrics_table`'s rows, with ``exp(loss)`` next to
    the perplexity (Table 5 reports perplexities above it)."""
    lines = ["| model | metrics | val loss | val acc | val ppl | exp(val loss) |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['row']} | {r['loss']:.3f} | {r['acc']:.3f} | {r['ppl']:.2f} "
            f"| {perplexity(r['loss']):.2f} |"
        )
    return "\n".join(lines)



