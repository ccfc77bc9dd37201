"""Generation speed: packed vs float32 vs int8 dynamic quantization, with the KV cache.

paper-small (Table 3), batch 1, a 16-token prompt, 64 new tokens, greedy, at 1 and 2
torch threads. Every model runs in a fresh Python process (loaded from a file, so its
construction does not count) and uses the same :class:`binedu.kv_cache.KVCache`
(``generate(..., use_cache=True)``). Contenders:

- packed: the binary model after :func:`binedu.pack_model` (1 bit per weight);
- float32: the float32 counterpart of the same configuration (``binary=False``);
- int8 dynamic: that float32 model with every dense layer replaced by PyTorch's dynamic
  int8 quantization (``torch.ao.quantization.quantize_dynamic``: int8 weights, inputs
  quantized on the fly), the usual "make it smaller and faster" baseline.

Reported per model: time to first token (the prefill of the prompt, first token
included), decode tokens/s over the remaining new tokens (best of ``--repeats`` runs),
and the peak resident memory while generating (model included), above the process's
baseline after a warm-up on tiny models (Linux ``VmHWM``; other systems print "n/a";
measured in a last run with glibc's mmap threshold fixed, see
:func:`fixed_mmap_threshold`). A tiny-model row runs in seconds.

Goals (issue 11): packed / float32 decode tokens/s >= 2.5x at 1 and at 2 threads;
packed >= int8 dynamic; float32 / packed peak memory while generating >= 16x.

Usage::

    python bench/bench_generate.py            # paper-small at 1 and 2 threads: a few minutes
    python bench/bench_generate.py --quick    # the tiny config only: seconds (a smoke run)
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_memory  # noqa: E402
from timing import format_table, verdict  # noqa: E402

from binedu import BinaryLinear, LanguageModel, pack_model  # noqa: E402
from binedu.generate import generate  # noqa: E402

KINDS = ("packed", "float32", "int8 dynamic")
GOALS = {"speed": 2.5, "memory": 16.0}
PROMPT, NEW = 16, 64
MiB = 2**20


class DynamicInt8Linear(nn.Module):
    """A float32 :class:`~binedu.BinaryLinear` (``binary=False``) whose ``W x + b`` runs
    through ``torch.ao``'s dynamically quantized int8 linear; normalization and activation
    stay float32."""

    def __init__(self, layer: BinaryLinear) -> None:
        super().__init__()
        linear = nn.Linear(layer.in_features, layer.out_features)
        linear.weight, linear.bias = layer.weight, layer.bias
        with warnings.catch_warnings():  # torch.ao.quantization announces its deprecation
            warnings.simplefilter("ignore")
            quantized = torch.ao.quantization.quantize_dynamic(nn.Sequential(linear), {nn.Linear}, dtype=torch.qint8)
        self.linear = quantized[0]
        self.norm, self._act = layer.norm, layer._act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._act(self.norm(self.linear(x)))


def int8_dynamic(model: nn.Module) -> nn.Module:
    """``model`` with every float dense layer replaced by :class:`DynamicInt8Linear` (in place)."""
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, BinaryLinear) and not child.binary:
                setattr(module, child_name, DynamicInt8Linear(child))
    return model


def fixed_mmap_threshold(nbytes: int = 1 << 16) -> None:
    """Make glibc serve every block above ``nbytes`` by ``mmap``, so that freeing it
    returns it to the OS at once. By default the threshold grows with the largest block
    freed (up to 32 MiB), and freed blocks below it stay in the heap and in RSS: the
    peak would then measure the allocator's history, not the memory generation needs.
    Set only before the memory run (``mmap`` per block costs time)."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, nbytes)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc
        pass


def peak_supported() -> bool:
    return Path("/proc/self/status").exists() and Path("/proc/self/clear_refs").exists()


def warm_up() -> None:
    """Run every kernel once on tiny models (float32, packed, int8), so that one-time library
    set-up (thread pools, BLAS buffers) is part of the baseline, not of a model's peak."""
    torch.manual_seed(0)
    tiny = LanguageModel.from_config("tiny", max_len=20)
    for model in (LanguageModel.from_config("tiny", binary=False, max_len=20), pack_model(tiny), int8_dynamic(
        LanguageModel.from_config("tiny", binary=False, max_len=20))):
        generate(model.eval(), list(range(1, PROMPT + 1)), max_new_tokens=3, temperature=0)


def child(
    kind: str, path: Path, config: str, threads: int, prompt_len: int, new_tokens: int, repeats: int, what: str
) -> dict:
    """Run in a fresh measuring process: load ``kind``, then either time generation
    (``what="speed"``: time to first token, decode tokens/s) or measure its peak memory
    (``what="memory"``, in a process of its own: timing runs would otherwise leave their
    heap behind)."""
    torch.set_num_threads(threads)
    memory = what == "memory" and peak_supported()
    if memory:
        fixed_mmap_threshold()
    warm_up()
    bench_memory.settle()
    baseline = bench_memory.rss_bytes() if memory else 0
    model = bench_memory.load("float32" if kind == "int8 dynamic" else kind, path, config)
    bench_memory.touch(model)
    if kind == "int8 dynamic":
        model = int8_dynamic(model)
    prompt = torch.randint(0, model.config.vocab_size, (prompt_len,), generator=torch.Generator().manual_seed(0))

    def run(count: int) -> float:
        start = time.perf_counter()
        generate(model, prompt, max_new_tokens=count, temperature=0)
        return time.perf_counter() - start

    if what == "memory":
        if not memory:
            return {"peak": None}
        bench_memory.settle()
        bench_memory.reset_peak()
        run(new_tokens)
        return {"peak": bench_memory.peak_bytes() - baseline}
    run(2)  # warm-up
    first = min(run(1) for _ in range(repeats))
    total = min(run(new_tokens) for _ in range(repeats))
    return {"ttft": first, "tokens_per_s": (new_tokens - 1) / (total - first)}


def measure(
    kind: str, path: Path, config: str, threads: int, prompt_len: int, new_tokens: int, repeats: int, what: str
) -> dict:
    """Run :func:`child` in a fresh interpreter."""
    cmd = [sys.executable, __file__, "--child", kind, str(path), "--config", config, "--threads", str(threads)]
    cmd += ["--prompt", str(prompt_len), "--new", str(new_tokens), "--repeats", str(repeats), "--what", what]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{kind} ({config}, {threads} threads, {what}) failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def config_rows(config: str, threads_list: list[int], prompt_len: int, new_tokens: int, repeats: int) -> tuple[list, dict]:
    """Table rows for one configuration, and the results by (threads, kind): speed at each
    thread count, peak memory once per model (1 thread, its own process)."""
    results: dict[tuple[int, str], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = bench_memory.write_files(Path(tmp), config)
        files["int8 dynamic"] = files["float32"]
        peaks = {}
        for kind in KINDS:
            peaks[kind] = measure(kind, files[kind], config, 1, prompt_len, new_tokens, 1, "memory")["peak"]
        for threads in threads_list:
            for kind in KINDS:
                print(f"  {config}, {threads} thread(s), {kind} ...", file=sys.stderr, flush=True)
                speed = measure(kind, files[kind], config, threads, prompt_len, new_tokens, repeats, "speed")
                results[threads, kind] = speed | {"peak": peaks[kind]}
    rows = []
    for threads in threads_list:
        f32 = results[threads, "float32"]
        for kind in KINDS:
            r = results[threads, kind]
            peak = "n/a" if r["peak"] is None else f"{r['peak'] / MiB:.1f}"
            mem = "n/a" if r["peak"] is None or f32["peak"] is None else f"{f32['peak'] / max(r['peak'], 1):.1f}x"
            rows.append(
                [
                    f"{config}, {threads} thread{'s' * (threads > 1)}, {kind}",
                    f"{r['ttft'] * 1e3:.0f}",
                    f"{r['tokens_per_s']:.1f}",
                    f"{r['tokens_per_s'] / f32['tokens_per_s']:.2f}x",
                    peak,
                    mem,
                ]
            )
    return rows, results


def goal_lines(results: dict, threads_list: list[int]) -> list[str]:
    lines = []
    for threads in threads_list:
        packed, f32, int8 = (results[threads, k] for k in KINDS)
        speed = packed["tokens_per_s"] / f32["tokens_per_s"]
        lines.append(
            f"goal, {threads} thread(s): packed / float32 tokens/s >= {GOALS['speed']}x: {speed:.2f}x "
            f"{verdict(speed, GOALS['speed'], at_least=True)}; packed >= int8 dynamic: "
            f"{packed['tokens_per_s']:.1f} vs {int8['tokens_per_s']:.1f} tok/s "
            f"{verdict(packed['tokens_per_s'], int8['tokens_per_s'], at_least=True)}"
        )
        if packed["peak"] is not None and f32["peak"] is not None:
            memory = f32["peak"] / max(packed["peak"], 1)
            lines.append(
                f"goal, {threads} thread(s): float32 / packed peak memory while generating >= "
                f"{GOALS['memory']:.0f}x: {memory:.1f}x {verdict(memory, GOALS['memory'], at_least=True)}"
            )
    return lines


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the tiny config only, few tokens (a smoke run)")
    parser.add_argument("--threads", type=int, nargs="+", default=None, help="thread counts (default 1 2)")
    parser.add_argument("--prompt", type=int, default=PROMPT, help="prompt tokens")
    parser.add_argument("--new", type=int, default=NEW, help="new tokens")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per model (default 2, quick 1)")
    parser.add_argument("--config", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--what", default="speed", help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 2)
    if args.child:
        kind, path = args.child
        threads = (args.threads or [1])[0]
        print(json.dumps(child(kind, Path(path), args.config, threads, args.prompt, args.new, repeats, args.what)))
        return ""
    threads_list = args.threads or [1, 2]
    new_tokens = min(args.new, 8) if args.quick else args.new
    configs = ["tiny"] if args.quick else ["tiny", "paper-small"]
    rows, results = [], {}
    for config in configs:
        config_rows_, results = config_rows(config, threads_list, args.prompt, new_tokens, repeats)
        rows += config_rows_
    table = format_table(
        ["model", "first token ms", "decode tok/s", "vs float32", "peak MiB (1 thread)", "float32 / this peak"], rows
    )
    header = (
        f"bench_generate: batch 1, {args.prompt}-token prompt, {new_tokens} new tokens, greedy, KV cache; "
        f"each model in a fresh process; {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f} at the end"
    )
    text = "\n".join([header, table, f"goals ({configs[-1]}):", *goal_lines(results, threads_list)])
    print(text)
    return text


if __name__ == "__main__":
    main()
