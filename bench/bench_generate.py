"""Generation speed: packed (numba, plain PyTorch) vs float32 vs int8 dynamic, with the KV cache.

paper-small (Table 3), batch 1, a 16-token prompt, 64 new tokens, greedy, at 1 and 2
torch threads. Every figure comes from ``--processes`` fresh Python processes per model
(each loads its model from a file, so construction does not count; the median and the
worst process are shown) and uses the same :class:`binedu.kv_cache.KVCache`
(``generate(..., use_cache=True)``). Contenders:

- packed (numba): the binary model after :func:`binedu.pack_model` (1 bit per weight),
  with the compiled kernel of :mod:`binedu.lut_kernel_numba`;
- packed (PyTorch): the same packed model on the plain-PyTorch reference kernel
  (``BINEDU_NUMBA=0``: what runs where numba is missing);
- float32: the float32 counterpart of the same configuration (``binary=False``);
- int8 dynamic: that float32 model with every dense layer replaced by PyTorch's dynamic
  int8 quantization (``torch.ao.quantization.quantize_dynamic``: int8 weights, inputs
  quantized on the fly), the usual "make it smaller and faster" baseline.

Reported per model: time to first token (the prefill of the prompt, first token
included), decode tokens/s over the remaining new tokens (best of ``--repeats`` runs in a
process), and the peak resident memory while generating (model included), above the
process's baseline after a warm-up on tiny models (Linux ``VmHWM``; other systems print
"n/a"; measured in a last run with glibc's mmap threshold fixed, see
:func:`fixed_mmap_threshold`). Then a ``torch.profiler`` table of packed decoding steps
(what runs outside the kernel), and the machine's load (``uptime``).

Goals (issue 20): packed (numba) / float32 decode tokens/s >= 3.0x and packed / int8
dynamic >= 1.5x at 1 and at 2 threads (judged on the worst packed process against the
median of the other); float32 / packed peak memory while generating >= 17x.

Usage::

    python bench/bench_generate.py            # paper-small at 1 and 2 threads: 15-30 minutes
    python bench/bench_generate.py --quick    # the tiny config only: a smoke run
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_memory  # noqa: E402
from timing import format_table, int8_linear, kernel_name, load_line, verdict  # noqa: E402

from binedu import BinaryLinear, LanguageModel, pack_model  # noqa: E402
from binedu.generate import generate  # noqa: E402

KINDS = ("packed (numba)", "packed (PyTorch)", "float32", "int8 dynamic")
FILES = {"packed (numba)": "packed", "packed (PyTorch)": "packed", "float32": "float32", "int8 dynamic": "float32"}
"""Which model file each contender loads (see ``bench_memory.write_files``)."""
GOALS = {"speed": 3.0, "int8": 1.5, "memory": 17.0}
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
        self.linear = int8_linear(linear)
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
    if kind == "packed (PyTorch)":
        os.environ["BINEDU_NUMBA"] = "0"  # read at the first packed call: the reference kernel
    torch.set_num_threads(threads)
    memory = what == "memory" and peak_supported()
    if memory:
        fixed_mmap_threshold()
    warm_up()
    bench_memory.settle()
    baseline = bench_memory.rss_bytes() if memory else 0
    model = bench_memory.load(FILES[kind], path, config)
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
    if what == "profile":
        return {"table": profile_decode(model, prompt, new_tokens), "kernel": kernel_name()}
    run(2)  # warm-up
    first = min(run(1) for _ in range(repeats))
    total = min(run(new_tokens) for _ in range(repeats))
    return {"ttft": first, "tokens_per_s": (new_tokens - 1) / (total - first), "kernel": kernel_name()}


def profile_decode(model: nn.Module, prompt: torch.Tensor, steps: int) -> str:
    """``torch.profiler`` table of ``steps`` decoding steps after the prefill (the
    operators that run outside the compiled kernel; the kernel's own calls are not
    PyTorch operators), with the operator count per step."""
    from torch.profiler import ProfilerActivity, profile

    from binedu.kv_cache import KVCache

    cache = KVCache()
    with torch.no_grad():
        logits = model(prompt.view(1, -1), cache=cache, last_only=True)
        token = logits[0, -1].argmax().view(1, 1)
        model(token, cache=cache, last_only=True)  # warm
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                logits = model(token, cache=cache, last_only=True)
                token = logits[0, -1].argmax().view(1, 1)
    events = prof.key_averages()
    count = sum(e.count for e in events)
    table = events.table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=40)
    return f"{count / steps:.0f} PyTorch operator calls per decoding step\n{table}"


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


def config_rows(
    config: str, threads_list: list[int], prompt_len: int, new_tokens: int, repeats: int, processes: int
) -> tuple[list, dict, str]:
    """Table rows for one configuration, the results by (threads, kind) (each a list of
    per-process figures) and a profile of packed decoding: speed in ``processes`` fresh
    processes per model and thread count, peak memory once per model (1 thread, its own
    process)."""
    results: dict[tuple[int, str], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = bench_memory.write_files(Path(tmp), config)
        peaks = {}
        for kind in KINDS:
            path = files[FILES[kind]]
            peaks[kind] = measure(kind, path, config, 1, prompt_len, new_tokens, 1, "memory")["peak"]
        for threads in threads_list:
            for kind in KINDS:
                runs = []
                for i in range(processes):
                    print(f"  {config}, {threads} thread(s), {kind}, process {i + 1} ...", file=sys.stderr, flush=True)
                    path = files[FILES[kind]]
                    runs.append(measure(kind, path, config, threads, prompt_len, new_tokens, repeats, "speed"))
                results[threads, kind] = {
                    "ttft": [r["ttft"] for r in runs],
                    "tokens_per_s": [r["tokens_per_s"] for r in runs],
                    "kernel": runs[0]["kernel"],
                    "peak": peaks[kind],
                }
        profiled = measure(KINDS[0], files["packed"], config, 1, prompt_len, 8, 1, "profile")
    profile = f"profile of packed decoding ({config}, 1 thread, kernel: {profiled['kernel']}):\n{profiled['table']}"
    rows = []
    for threads in threads_list:
        f32 = statistics.median(results[threads, "float32"]["tokens_per_s"])
        for kind in KINDS:
            r = results[threads, kind]
            peak = "n/a" if r["peak"] is None else f"{r['peak'] / MiB:.1f}"
            f32_peak = results[threads, "float32"]["peak"]
            mem = "n/a" if r["peak"] is None or f32_peak is None else f"{f32_peak / max(r['peak'], 1):.1f}x"
            speeds = r["tokens_per_s"]
            rows.append(
                [
                    f"{config}, {threads} thread{'s' * (threads > 1)}, {kind}",
                    f"{statistics.median(r['ttft']) * 1e3:.0f}",
                    f"{statistics.median(speeds):.1f}",
                    f"{min(speeds):.1f}",
                    f"{statistics.median(speeds) / f32:.2f}x",
                    f"{min(speeds) / f32:.2f}x",
                    peak,
                    mem,
                ]
            )
    return rows, results, profile


def goal_lines(results: dict, threads_list: list[int]) -> list[str]:
    """Each goal with its measured value: the worst packed (numba) process against the
    median float32 and int8 processes; memory from the one memory run per model."""
    lines = []
    for threads in threads_list:
        packed = min(results[threads, KINDS[0]]["tokens_per_s"])
        f32 = statistics.median(results[threads, "float32"]["tokens_per_s"])
        int8 = statistics.median(results[threads, "int8 dynamic"]["tokens_per_s"])
        speed, vs_int8 = packed / f32, packed / int8
        lines.append(
            f"goal, {threads} thread(s): packed (numba, worst process) / float32 tokens/s >= {GOALS['speed']}x: "
            f"{speed:.2f}x {verdict(speed, GOALS['speed'], at_least=True)}; / int8 dynamic >= {GOALS['int8']}x: "
            f"{vs_int8:.2f}x {verdict(vs_int8, GOALS['int8'], at_least=True)}"
        )
        peak, f32_peak = results[threads, KINDS[0]]["peak"], results[threads, "float32"]["peak"]
        if peak is not None and f32_peak is not None:
            memory = f32_peak / max(peak, 1)
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
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per process (default 2, quick 1)")
    parser.add_argument("--processes", type=int, default=None, help="fresh processes per figure (default 5, quick 1)")
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
    config = "tiny" if args.quick else "paper-small"
    processes = args.processes or (1 if args.quick else 5)
    before = load_line()
    rows, results, profile = config_rows(config, threads_list, args.prompt, new_tokens, repeats, processes)
    table = format_table(
        [
            "model",
            "first token ms",
            "decode tok/s (median)",
            "(worst)",
            "vs float32 (median)",
            "(worst)",
            "peak MiB (1 thread)",
            "float32 / this peak",
        ],
        rows,
    )
    header = (
        f"bench_generate: {config}, batch 1, {args.prompt}-token prompt, {new_tokens} new tokens, greedy, KV cache; "
        f"{processes} fresh process(es) per figure, best of {repeats} runs each; {os.cpu_count()} CPU(s); "
        f"packed kernels: {results[threads_list[0], KINDS[0]]['kernel']} / {results[threads_list[0], KINDS[1]]['kernel']}"
        f"\nload before: {before}\nload after:  {load_line()}"
    )
    text = "\n".join([header, table, f"goals ({config}):", *goal_lines(results, threads_list), "", profile])
    print(text)
    return text


if __name__ == "__main__":
    main()
