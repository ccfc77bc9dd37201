"""Checkpoint size: the packed file vs the float32 state, for the paper's models.

For each model, measured in this run:

- float32 state: ``safetensors.torch.save_file(model.state_dict())`` of the binary model,
  i.e. its float32 latent weights (what a library that saves the latents ships; the
  float32 counterpart's file has the same size within its few normalization scales);
- packed: :func:`binedu.save_packed` (the bits, their shapes and the structure).

Goal (issue 3): paper-small's packed file at least 31.9x smaller (32x is the limit: the
header and the padding of rows to whole bytes cost a little).

Usage::

    python bench/bench_checkpoint.py           # paper-small and the image models, ~1 min
    python bench/bench_checkpoint.py --only image   # the image models only, seconds
    python bench/bench_checkpoint.py --quick   # the tiny configs, seconds
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import format_table, verdict  # noqa: E402

from binedu import ImageClassifier, LanguageModel, load_packed, memory_report, pack_model, save_packed  # noqa: E402

GOAL = 31.9
MODELS = [
    (LanguageModel, "paper-small"),
    (ImageClassifier, "paper-3x3"),
    (ImageClassifier, "paper-5x5"),
    (ImageClassifier, "paper-3x3-as-printed"),
    (ImageClassifier, "paper-5x5-as-printed"),
]
QUICK_MODELS = [(LanguageModel, "tiny"), (ImageClassifier, "tiny")]


def sizes(cls: type, config: str, folder: Path) -> dict[str, float]:
    """File sizes (bytes) and save/load seconds of one model, float32 state vs packed."""
    torch.manual_seed(0)
    model = cls.from_config(config)
    float_path, packed_path = folder / f"{config}.float32.safetensors", folder / f"{config}.packed.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, float_path)
    start = time.perf_counter()
    packed = pack_model(model)
    save_packed(packed, packed_path)
    saved = time.perf_counter()
    load_packed(packed_path)
    loaded = time.perf_counter()
    result = {
        "params": model.num_parameters(),
        "float32": float_path.stat().st_size,
        "packed": packed_path.stat().st_size,
        "bits": memory_report(packed).packed_bytes,
        "pack_save_s": saved - start,
        "load_s": loaded - saved,
    }
    float_path.unlink()
    packed_path.unlink()
    return result


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the tiny configs (a smoke run)")
    parser.add_argument("--only", choices=("image", "language"), help="one kind of model only")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for cls, config in QUICK_MODELS if args.quick else MODELS:
            if args.only and cls.config_class.kind != args.only:
                continue
            r = sizes(cls, config, Path(tmp))
            ratio = r["float32"] / r["packed"]
            judged = config == "paper-small"
            rows.append(
                [
                    f"{cls.__name__} {config}",
                    f"{r['params']:,}",
                    f"{r['float32']:,}",
                    f"{r['packed']:,}",
                    f"{r['packed'] - r['bits']:,}",
                    f"{ratio:.2f}x",
                    f">= {GOAL}x" if judged else "",
                    verdict(ratio, GOAL, at_least=True) if judged else "",
                    f"{r['pack_save_s']:.1f}",
                    f"{r['load_s']:.2f}",
                ]
            )
    headers = ["model", "params", "float32 bytes", "packed bytes", "header bytes", "smaller", "goal", "met"]
    table = format_table([*headers, "pack+save s", "load s"], rows)
    text = f"bench_checkpoint: file sizes measured in this run\n{table}"
    print(text)
    return text


if __name__ == "__main__":
    main()
