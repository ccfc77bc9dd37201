"""GPU smoke test of the paper-scale path: run it on a machine with one or more CUDA GPUs.

    .venv/bin/python bench/gpu_smoke.py            # a few hundred steps per run (minutes)
    .venv/bin/python bench/gpu_smoke.py --steps 50 # shorter
    .venv/bin/python bench/gpu_smoke.py --dry-run  # the same plumbing on the CPU, tiny models

It needs nothing but the checkout (and its installed environment): the data are
synthetic, shaped like the paper's.

1. ``paper-3x3`` (BCVNN) on Food-101-shaped images (3x256x256, 101 classes whose colour
   tint gives the class away, so the loss must fall), batch 64, float32 then bf16.
2. ``paper-small`` (BLM, 154 M parameters) on WikiText-shaped sequences (vocabulary
   30,522, 256 tokens + padding, a learnable next-token rule), batch 32, float32 then bf16.
   For each: steps/s, the ratio against float32 measured in the same run, peak GPU
   memory and the loss trend (mean of the first and last tenth of the steps).
3. ``python -m binedu train --device cuda`` and ``--resume`` from the command line.
4. CUDA random-number state in checkpoints: a float model with dropout (which draws on
   the GPU) stopped and resumed equals an uninterrupted run, bit for bit (deterministic
   kernels on for this check).
5. With two or more GPUs: ``torchrun --nproc_per_node=2`` (nccl) trains paper-3x3 in bf16
   with batch 32 per GPU (effective 64), checks that both GPUs end with the same latent
   weights, and reports the speed-up against one GPU with batch 64.

Exit status: 0 all checks passed, 1 a check failed, 2 no GPU (nothing was run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS for check 4

import torch  # noqa: E402
from torch.utils.data import Dataset, TensorDataset  # noqa: E402

from binedu import ImageClassifier, LanguageModel  # noqa: E402
from binedu.train import fit  # noqa: E402
from binedu.train_checkpoint import read_training_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NO_GPU = (
    "gpu_smoke: no CUDA GPU is visible (torch.cuda.is_available() is False), so nothing was run. "
    "This script checks binedu's GPU path; run it on a machine with a GPU, or pass --dry-run to "
    "exercise the same code on the CPU with tiny models."
)


# ---------------------------------------------------------------- synthetic data


def food101_like(n: int, size: int, classes: int, seed: int = 0) -> TensorDataset:
    """Noise images with a class-specific colour tint (learnable, so the loss falls)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    tints = torch.rand(classes, 3, 1, 1, generator=g) * 2 - 1
    images = torch.randn(n, 3, size, size, generator=g) * 0.5 + tints[labels]
    return TensorDataset(images, labels)


class WikiTextLike(Dataset):
    """``(max_len + 1,)`` id sequences padded with 0: each token follows from the one
    before by ``t' = (a t + b) mod (V - 3) + 3`` (ids 1-2 stand for BOS/EOS), lengths vary."""

    def __init__(self, n: int, max_len: int, vocab: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.seqs = torch.zeros(n, max_len + 1, dtype=torch.int64)
        starts = torch.randint(3, vocab, (n,), generator=g)
        lengths = torch.randint(max_len // 2, max_len + 2, (n,), generator=g)
        for i in range(n):
            t, seq = int(starts[i]), [1]
            while len(seq) < int(lengths[i]):
                seq.append(t)
                t = (7 * t + 11) % (vocab - 3) + 3
            self.seqs[i, : len(seq)] = torch.tensor(seq)

    def __len__(self) -> int:
        return len(self.seqs)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.seqs[i]


def workload(kind: str, dry_run: bool) -> tuple:
    """(model factory, train set, batch size, fit settings) of one smoke run."""
    if kind == "image":
        config, size, classes, batch = ("tiny", 8, 10, 16) if dry_run else ("paper-3x3", 256, 101, 64)
        data = food101_like(256 if dry_run else 2048, size, classes)
        make = lambda: ImageClassifier.from_config(config, in_channels=3, num_classes=classes, image_size=size)  # noqa: E731
        return make, data, batch, dict(optimizer="adam", lr=3e-3 if dry_run else 1e-4, warmup_steps=10)
    config, vocab, max_len, batch = ("tiny", 256, 32, 8) if dry_run else ("paper-small", 30522, 256, 32)
    data = WikiTextLike(256 if dry_run else 2048, max_len, vocab)
    make = lambda: LanguageModel.from_config(config, vocab_size=vocab, max_len=max_len)  # noqa: E731
    return make, data, batch, dict(optimizer="adamw", lr=3e-3 if dry_run else 1e-4, warmup_steps=10, weight_decay=0.01)


# ---------------------------------------------------------------- measurements


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_run(kind: str, precision: str, steps: int, device: torch.device, dry_run: bool) -> dict:
    """Train ``steps`` steps (after 5 warm-up steps that are not timed)."""
    make, data, batch, settings = workload(kind, dry_run)
    torch.manual_seed(0)
    model = make()
    common = dict(batch_size=batch, epochs=1000, decay_steps=0, progress=False, device=device, precision=precision,
                  num_workers=0 if dry_run else 4, record_every=10**9) | settings  # fmt: skip
    fit(model, data, None, max_steps=5, **common)  # warm-up: kernels, allocator
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)
    model = make()
    sync(device)
    start = time.perf_counter()
    history = fit(model, data, None, max_steps=steps, **common)
    sync(device)
    seconds = time.perf_counter() - start
    tenth = max(len(history.loss) // 10, 1)
    first, last = statistics.fmean(history.loss[:tenth]), statistics.fmean(history.loss[-tenth:])
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return dict(kind=kind, precision=precision, steps_per_s=steps / seconds, peak_gib=peak, first=first, last=last)


def check_cli(device: torch.device, folder: Path) -> str:
    """``binedu train --device <device>``, then ``--resume``: both exit 0 and the
    checkpoint holds the GPU's random-number state."""
    out = folder / "cli"
    base = [sys.executable, "-m", "binedu", "train", "--model", "image", "--config", "tiny", "--data", "digits",
            "--device", str(device), "--no-progress", "--out", str(out)]  # fmt: skip
    for extra in (["--max-steps", "20"], ["--max-steps", "40", "--resume"]):
        done = subprocess.run(base + extra, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            return f"FAIL binedu train {' '.join(extra)} exited {done.returncode}: {done.stderr.strip()[-300:]}"
    saved = read_training_checkpoint(out / "checkpoint.safetensors")
    if saved.state.get("step") != 40:
        return f"FAIL the resumed CLI run stopped at step {saved.state.get('step')}, not 40"
    if device.type == "cuda" and "rng/cuda/0" not in saved.tensors:
        return "FAIL the checkpoint holds no CUDA random-number state (rng/cuda/0)"
    return f"PASS binedu train --device {device}, then --resume: step 40, checkpoint keys {sorted(k for k in saved.tensors if k.startswith('rng'))}"


def check_rng_resume(device: torch.device, folder: Path) -> str:
    """A float image model with dropout stopped at step 7 and resumed equals an
    uninterrupted run of 15 steps, bit for bit."""
    # warn_only: AdaptiveAvgPool2d's CUDA backward is flagged, though with a 1x1 output
    # every input gets exactly one gradient (nothing is accumulated out of order)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        data = food101_like(96, 8, 10)
        common = dict(epochs=3, batch_size=16, lr=1e-3, seed=4, progress=False, device=device, max_steps=15)

        def make() -> ImageClassifier:
            torch.manual_seed(1)
            return ImageClassifier.from_config("tiny", in_channels=3, binary=False, dropout=(0.5,))

        full = make()
        fit(full, data, **common)
        path = folder / "rng.safetensors"
        fit(make(), data, checkpoint=path, **common | dict(max_steps=7))
        torch.manual_seed(999)  # the global state in between must not matter
        if device.type == "cuda":
            torch.cuda.manual_seed_all(999)
        resumed = make()
        fit(resumed, data, checkpoint=path, resume=True, **common)
    finally:
        torch.use_deterministic_algorithms(False)
    pairs = list(zip(full.state_dict().values(), resumed.state_dict().values(), strict=True))
    same = all(torch.equal(a, b) for a, b in pairs)
    gap = max(float((a - b).abs().max()) for a, b in pairs)
    keys = sorted(k for k in read_training_checkpoint(path).tensors if k.startswith("rng"))
    verdict = "PASS" if same else "FAIL"
    found = "bit-identical" if same else f"DIFFERENT, largest gap {gap:.2e} (tiny: a nondeterministic kernel; large: the dropout masks, i.e. the RNG state)"
    return f"{verdict} stop at step 7 + resume == 15 uninterrupted steps with dropout ({found}); RNG keys {keys}"


def check_torchrun(steps: int, device: torch.device, dry_run: bool, one_process_rate: float) -> str:
    """Two processes (one per GPU, nccl; gloo in a dry run) with half the batch each."""
    nproc = 2
    if device.type == "cuda" and torch.cuda.device_count() < nproc:
        return f"SKIP torchrun: {torch.cuda.device_count()} GPU visible, needs {nproc} (not a pass)"
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "ddp.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                   __file__, "--worker", str(result), "--steps", str(steps), "--device", device.type]  # fmt: skip
        done = subprocess.run(command + (["--dry-run"] if dry_run else []), cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            return f"FAIL torchrun exited {done.returncode}: {done.stderr.strip()[-500:]}"
        report = json.loads(result.read_text())
    verdict = "PASS" if report["same_latents"] and report["last"] < report["first"] else "FAIL"
    return (
        f"{verdict} torchrun {nproc} processes x batch {report['batch']} (effective {nproc * report['batch']}), "
        f"bf16: {report['steps_per_s']:.2f} steps/s = {report['steps_per_s'] / one_process_rate:.2f}x one process "
        f"with the same global batch; latents equal on all ranks: {report['same_latents']}; "
        f"loss {report['first']:.3f} -> {report['last']:.3f}"
    )


def worker(result: Path, steps: int, device_type: str, dry_run: bool) -> None:
    """One rank of check 5: paper-3x3 in bf16, half the global batch."""
    import torch.distributed as dist

    from binedu import distributed

    device = torch.device(device_type)
    make, data, batch, settings = workload("image", dry_run)
    per_process = batch // 2
    torch.manual_seed(0)
    model = make()
    common = dict(batch_size=per_process, epochs=1000, decay_steps=0, progress=False, device=device, precision="bf16",
                  record_every=10**9) | settings  # fmt: skip
    fit(model, data, None, max_steps=5, **common)
    procs = distributed.current()
    sync(torch.device("cuda", procs.local_rank) if device.type == "cuda" else device)
    start = time.perf_counter()
    history = fit(model, data, None, max_steps=steps, **common)
    procs.barrier()
    seconds = time.perf_counter() - start
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    every = [torch.empty_like(flat) for _ in range(procs.world_size)]
    dist.all_gather(every, flat)
    if procs.is_main:
        tenth = max(len(history.loss) // 10, 1)
        result.write_text(json.dumps(dict(
            steps_per_s=steps / seconds, batch=per_process, same_latents=all(torch.equal(every[0], e) for e in every),
            first=statistics.fmean(history.loss[:tenth]), last=statistics.fmean(history.loss[-tenth:]),
        )))  # fmt: skip
    distributed.shutdown()


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="timed steps per run (default 300)")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny models, few steps: checks the plumbing only")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker), args.steps, args.device, args.dry_run)
        return 0
    if not args.dry_run and not torch.cuda.is_available():
        print(NO_GPU, file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.dry_run else "cuda")
    steps = min(args.steps, 60) if args.dry_run else args.steps
    if args.dry_run:
        torch.set_num_threads(1)  # like torchrun's processes: the CPU comparison stays fair
    name = "CPU (dry run, tiny models)" if args.dry_run else torch.cuda.get_device_name(device)
    print(f"gpu_smoke on {name}, torch {torch.__version__}, {steps} timed steps per run")

    rows = []
    for kind in ("image", "language"):
        base = timed_run(kind, "fp32", steps, device, args.dry_run)
        bf16 = timed_run(kind, "bf16", steps, device, args.dry_run)
        for r in (base, bf16):
            r["ratio"] = r["steps_per_s"] / base["steps_per_s"]
            rows.append(r)
    model_name = {"image": "tiny" if args.dry_run else "paper-3x3", "language": "tiny" if args.dry_run else "paper-small"}
    print(f"\n{'model':<12} {'precision':<9} {'steps/s':>8} {'vs fp32':>8} {'peak GiB':>9} {'loss first -> last':>20}")
    for r in rows:
        print(f"{model_name[r['kind']]:<12} {r['precision']:<9} {r['steps_per_s']:>8.2f} {r['ratio']:>7.2f}x "
              f"{r['peak_gib']:>9.2f} {r['first']:>9.3f} -> {r['last']:<8.3f}")  # fmt: skip

    checks = [
        f"{'PASS' if r['last'] < r['first'] else 'FAIL'} {model_name[r['kind']]} {r['precision']}: the loss falls"
        for r in rows
    ]
    with tempfile.TemporaryDirectory() as tmp:
        checks.append(check_cli(device, Path(tmp)))
        checks.append(check_rng_resume(device, Path(tmp)))
    image_bf16_one = next(r for r in rows if r["kind"] == "image" and r["precision"] == "bf16")["steps_per_s"]
    checks.append(check_torchrun(steps, device, args.dry_run, image_bf16_one))
    print()
    for line in checks:
        print(line)
    failed = [c for c in checks if c.startswith("FAIL")]
    print(f"\n{len(checks) - len(failed)} of {len(checks)} checks passed or skipped; {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
