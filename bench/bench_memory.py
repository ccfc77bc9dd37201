"""Resident memory: the packed paper-small language model vs float32, in separate processes.

Each model is loaded in a fresh Python process. That process first imports torch and
binedu and runs a tiny forward pass (so one-time library set-up is part of the
baseline), then measures its resident set size (RSS, from ``/proc/self/status``):

- resident: RSS after loading the model, minus the baseline;
- peak: the highest RSS during a forward pass on 64 tokens (the peak is reset just
  before it, through ``/proc/self/clear_refs``; the highest of 3 passes), minus the
  baseline.

Every tensor is read once after loading, so memory-mapped data counts as resident.

Contenders: the packed model (:func:`binedu.load_packed`), the float32 counterpart of the
same configuration (``binary=False``, loaded from a safetensors state dict onto a
``meta``-device skeleton, so nothing is allocated twice) and, for reference, the binary
model with its float32 latent weights (what a library that saves the latents ships).

Goals (issue 3): at least 16x less resident and 8x less at peak than float32.

Usage::

    python bench/bench_memory.py            # paper-small: about a minute, ~2 GB of RAM
    python bench/bench_memory.py --quick    # the tiny config, seconds; numbers not meaningful

Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import format_table, verdict  # noqa: E402

from binedu import LanguageModel, load_packed, pack_model, save_packed  # noqa: E402

GOALS = {"resident": 16.0, "peak": 8.0}
TOKENS = 64
MiB = 2**20


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {field}")
    return int(match.group(1))


def rss_bytes() -> int:
    """Resident set size of this process now."""
    return _status_kib("VmRSS") * 1024


def peak_bytes() -> int:
    """Highest resident set size since the last :func:`reset_peak`."""
    return _status_kib("VmHWM") * 1024


def reset_peak() -> None:
    """Start measuring the peak from the current RSS (Linux ``clear_refs``, value 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def settle() -> None:
    """Collect garbage and give freed heap pages back to the OS, so RSS is what is held."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc
        pass


def load(kind: str, path: Path, config: str) -> torch.nn.Module:
    """Load one contender from its file."""
    if kind == "packed":
        return load_packed(path)
    from safetensors.torch import load_file

    with torch.device("meta"):  # a skeleton without memory, filled by the file's tensors
        model = LanguageModel.from_config(config, binary=kind == "binary latents")
    model.load_state_dict(load_file(path), assign=True)
    return model.eval()


def touch(model: torch.nn.Module) -> None:
    """Read every tensor of ``model`` once: memory-mapped file data becomes resident, as it
    is after the first forward pass."""
    with torch.inference_mode():
        for t in model.state_dict().values():
            t.view(-1)[:: max(1, 4096 // t.element_size())].sum()  # one read per memory page


def child(kind: str, path: Path, config: str, passes: int = 3) -> dict[str, int]:
    """Run in the measuring process: baseline, load, forward passes; bytes above the
    baseline (the peak is the highest of ``passes`` forward passes)."""
    with torch.inference_mode():  # warm up the libraries with a tiny model: part of the baseline
        LanguageModel.from_config("tiny").eval()(torch.zeros(1, 8, dtype=torch.long))
    settle()
    baseline = rss_bytes()
    model = load(kind, path, config)
    touch(model)
    settle()
    resident = rss_bytes() - baseline
    tokens = torch.randint(0, model.config.vocab_size, (1, TOKENS), generator=torch.Generator().manual_seed(0))
    peak = 0
    for _ in range(passes):
        settle()
        reset_peak()
        with torch.inference_mode():
            model(tokens)
        peak = max(peak, peak_bytes() - baseline)
    return {"baseline": baseline, "resident": resident, "peak": peak}


def measure(kind: str, path: Path, config: str) -> dict[str, int]:
    """Run :func:`child` in a fresh interpreter and return its numbers."""
    cmd = [sys.executable, __file__, "--child", kind, str(path), "--config", config]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def write_files(folder: Path, config: str) -> dict[str, Path]:
    """The three contenders' files: packed bits, float32 state, binary latents."""
    torch.manual_seed(0)
    binary = LanguageModel.from_config(config)
    files = {"packed": folder / "packed.safetensors", "float32": folder / "float32.safetensors"}
    save_packed(pack_model(binary), files["packed"])
    from safetensors.torch import save_file

    files["binary latents"] = folder / "latents.safetensors"
    save_file({k: v.contiguous() for k, v in binary.state_dict().items()}, files["binary latents"])
    del binary
    float_model = LanguageModel.from_config(config, binary=False)
    save_file({k: v.contiguous() for k, v in float_model.state_dict().items()}, files["float32"])
    return files


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the tiny config (a smoke run)")
    parser.add_argument("--config", default=None, help="language config (default paper-small, quick: tiny)")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    config = args.config or ("tiny" if args.quick else "paper-small")
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), config)))
        return ""
    with tempfile.TemporaryDirectory() as tmp:
        files = write_files(Path(tmp), config)
        results = {kind: measure(kind, path, config) for kind, path in files.items()}
    packed = results["packed"]
    rows = []
    for kind in ("float32", "binary latents", "packed"):
        r = results[kind]
        rows.append(
            [
                kind,
                f"{r['resident'] / MiB:.1f}",
                f"{r['peak'] / MiB:.1f}",
                f"{r['resident'] / packed['resident']:.1f}x",
                f"{r['peak'] / packed['peak']:.1f}x",
            ]
        )
    f32 = results["float32"]
    res_ratio, peak_ratio = f32["resident"] / packed["resident"], f32["peak"] / packed["peak"]
    table = format_table(
        ["model", "resident MiB", f"peak MiB ({TOKENS} tokens)", "resident / packed", "peak / packed"], rows
    )
    lines = [
        f"bench_memory: LanguageModel {config!r}, each model in its own process, MiB above a baseline of "
        f"{packed['baseline'] / MiB:.0f} MiB (python + torch + binedu)",
        table,
        f"goal: float32 resident / packed >= {GOALS['resident']:.0f}x: {res_ratio:.1f}x "
        f"{verdict(res_ratio, GOALS['resident'], at_least=True)}; "
        f"peak >= {GOALS['peak']:.0f}x: {peak_ratio:.1f}x {verdict(peak_ratio, GOALS['peak'], at_least=True)}",
    ]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
