"""Training under torchrun (2 CPU processes, gloo): the same result as one process with
the same global batch, bit-identical resume after a crash, one writer; the sampler's and
the validation shards' laws; bf16 autocast leaves the bits alone.

Run as a script (``torchrun ... tests/test_distributed.py MODE SPEC``) this file is the
worker that the tests launch.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file
from train_fixtures import Crashing, counting_sequences, image_model, image_set, language_model

from binedu.distributed import EpochBatches, Group, shard_range
from binedu.normalize import normalize
from binedu.quantize import quantize
from binedu.train import _epoch_order, binary_bits, fit

ROOT = Path(__file__).resolve().parent.parent
COMMON = dict(lr=5e-3, warmup_steps=2, record_every=2, progress=False)
MODELS = {
    "image": (image_model, lambda n: image_set(n), {}),
    "language": (language_model, lambda n: counting_sequences(n), dict(optimizer="adamw", weight_decay=0.01)),
    "float-image": (lambda: image_model(binary=False), lambda n: image_set(n), {}),  # has dropout
}


# ---------------------------------------------------------------- launching


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(args: list[str], nproc: int = 2, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run`` on this machine only (rendezvous on 127.0.0.1)."""
    command = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--nnodes=1",
        "--master_addr=127.0.0.1", f"--master_port={free_port()}", *args,
    ]  # fmt: skip
    # this checkout's binedu first (not an installed one), then the test helpers
    full_env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"} | (env or {})
    return subprocess.run(command, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=300)


def run_worker(*specs: dict, nproc: int = 2) -> subprocess.CompletedProcess:
    return torchrun([__file__, json.dumps(specs)], nproc)


def flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


# ---------------------------------------------------------------- the worker



def worker(specs: list[dict]) -> None:
    """One rank of test runs (one after the other, sharing a launch): ``fit`` on a tiny
    model; rank 0 saves each result and whether every rank ended with the same latent
    weights."""
    from binedu import distributed

    torch.set_num_threads(1)
    for spec in specs:
        train_one(spec)
    distributed.shutdown()


def train_one(spec: dict) -> None:
    import torch.distributed as dist

    from binedu import distributed

    make, data, kwargs = MODELS[spec["model"]]
    model = make()
    train = data(spec["n"])
    if spec.get("crash_after") is not None and int(os.environ["RANK"]) == 1:
        train = Crashing(train, spec["crash_after"])
    checkpoint = spec.get("checkpoint")
    if spec.get("private_folders"):  # a run folder that is not shared: each rank sees its own
        checkpoint = f"{checkpoint}.rank{os.environ['RANK']}"
    history = fit(
        model, train, data(spec["n_val"]), epochs=spec["epochs"], batch_size=spec["batch_size"], seed=spec["seed"],
        max_steps=spec.get("max_steps"), checkpoint=checkpoint, checkpoint_every=spec.get("checkpoint_every"),
        resume=spec.get("resume", False), precision=spec.get("precision", "fp32"), **COMMON | kwargs,
    )  # fmt: skip
    procs = distributed.current()
    mine = flat(model)
    every = [torch.empty_like(mine) for _ in range(procs.world_size)]
    dist.all_gather(every, mine)
    if procs.is_main:
        same = all(torch.equal(every[0], other) for other in every)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, spec["out"] + ".safetensors")
        result = {"history": history.to_dict(), "same_across_ranks": same, "world_size": procs.world_size}
        Path(spec["out"] + ".json").write_text(json.dumps(result))


def worker_result(out: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    return json.loads(Path(f"{out}.json").read_text()), load_file(f"{out}.safetensors")


# ---------------------------------------------------------------- 2 processes = 1 process


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory):
    """The image and language models trained by 2 processes with per-process batch 4,
    and the uninterrupted run of the resume test, in one torchrun launch."""
    folder = tmp_path_factory.mktemp("ddp")
    specs = [
        dict(model=name, n=n, n_val=13, epochs=2, batch_size=4, seed=3, out=str(folder / name))
        for name, n in (("image", 41), ("language", 30))
    ] + [RESUME_RUN | dict(out=str(folder / "uninterrupted"))]
    done = run_worker(*specs)
    assert done.returncode == 0, done.stderr[-3000:]
    return {spec["model"]: (spec, *worker_result(spec["out"])) for spec in specs}


@pytest.mark.parametrize("name", ["image", "language"])
def test_two_processes_train_like_one_with_the_same_global_batch(two_process_runs, name):
    spec, result, state = two_process_runs[name]
    make, data, kwargs = MODELS[name]
    model = make()
    # one process, global batch 2 x 4; 41 images end on a global batch of 1 (rank 1 gets none)
    history = fit(
        model, data(spec["n"]), data(spec["n_val"]), epochs=2, batch_size=8, seed=3, **COMMON | kwargs
    ).to_dict()
    assert result["world_size"] == 2 and result["same_across_ranks"]
    one = model.state_dict()
    assert state.keys() == one.keys()
    for key in one:
        torch.testing.assert_close(state[key], one[key], rtol=1e-4, atol=1e-5, msg=f"latent {key}")
    two = result["history"]
    assert two["steps"] == history["steps"]
    torch.testing.assert_close(torch.tensor(two["loss"]), torch.tensor(history["loss"]), rtol=1e-4, atol=1e-5)
    assert len(two["epochs"]) == len(history["epochs"]) == 2
    for a, b in zip(two["epochs"], history["epochs"], strict=True):
        assert a.keys() == b.keys() and "val_loss" in a
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), key
    # the bits of Eq. 1 are exactly those of the one-process run
    model.load_state_dict(state)
    reference = make()
    reference.load_state_dict(one)
    assert all(torch.equal(a, b) for a, b in zip(binary_bits(model).values(), binary_bits(reference).values(), strict=True))


# float image model with dropout: each rank's random numbers must resume too
RESUME_RUN = dict(model="float-image", n=40, n_val=8, epochs=3, batch_size=4, seed=5, max_steps=12)


def test_resume_after_a_crash_is_bit_identical_under_two_processes(tmp_path, two_process_runs):
    base = RESUME_RUN
    checkpoint = str(tmp_path / "run.safetensors")
    # rank 1 dies reading its 25th image: in step 7 (5 steps per epoch), after the
    # checkpoint of step 6; torchrun then stops rank 0 too
    crashed = run_worker(base | dict(out=str(tmp_path / "crashed"), checkpoint=checkpoint, checkpoint_every=2, crash_after=24))
    assert crashed.returncode != 0 and "killed" in crashed.stderr
    assert not Path(tmp_path / "crashed.json").exists()
    from binedu.train_checkpoint import read_training_checkpoint

    saved = read_training_checkpoint(checkpoint)
    assert saved.state["step"] == 6 and saved.meta["world_size"] == 2
    assert "rank1/rng/cpu" in saved.tensors and not torch.equal(saved.tensors["rank1/rng/cpu"], saved.tensors["rng/cpu"])

    resumed = run_worker(base | dict(out=str(tmp_path / "resumed"), checkpoint=checkpoint, resume=True))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _, a, state_a = two_process_runs["float-image"]
    b, state_b = worker_result(tmp_path / "resumed")
    assert state_a.keys() == state_b.keys() and all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert a["history"] == b["history"]


def test_a_run_folder_that_the_ranks_do_not_share_is_refused_by_every_rank(tmp_path):
    """Rank 0 resumed, rank 1 started fresh, and their collectives waited for 3 hours."""
    spec = RESUME_RUN | dict(checkpoint=str(tmp_path / "run.safetensors"), private_folders=True, max_steps=4)
    first = run_worker(spec | dict(out=str(tmp_path / "first")))  # only rank 0 writes: rank 1's folder stays empty
    assert first.returncode == 0, first.stderr[-3000:]
    assert (tmp_path / "run.safetensors.rank0").is_file() and not (tmp_path / "run.safetensors.rank1").exists()
    resumed = run_worker(spec | dict(out=str(tmp_path / "resumed"), resume=True, max_steps=8))  # timeout: 300 s
    assert resumed.returncode != 0 and not (tmp_path / "resumed.json").exists()
    refusals = [line for line in resumed.stderr.splitlines() if "do not see the same checkpoint" in line]
    assert len(refusals) >= 2, resumed.stderr[-3000:]  # both ranks stop, neither waits for the other
    assert any("rank 0 sees the checkpoint of step 4" in line and "rank 1 sees no checkpoint" in line for line in refusals)


def test_a_killed_rank_gives_one_line_not_a_traceback(tmp_path):
    """Two processes joined as torchrun joins them (127.0.0.1, gloo); rank 1 is killed
    while training: rank 0 stops at its next collective with one line."""
    out = tmp_path / "run"
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "WORLD_SIZE": "2",
                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}  # fmt: skip
    argv = [sys.executable, "-m", "binedu", "train", "--limit", "200", "--epochs", "500", "--batch-size", "8",
            "--device", "cpu", "--no-progress", "--out", str(out)]  # fmt: skip
    ranks = [
        subprocess.Popen(argv, cwd=ROOT, env=env | {"RANK": str(r), "LOCAL_RANK": str(r)}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for r in (0, 1)
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not (out / "history.json").exists() and not (out / "checkpoint.safetensors").exists():
            assert all(p.poll() is None for p in ranks) and time.monotonic() < deadline, "the run did not start"
            time.sleep(0.2)
        ranks[1].kill()
        _, err = ranks[0].communicate(timeout=120)  # no hang
    finally:
        for p in ranks:
            p.kill()
            p.communicate()
    lines = [line for line in err.splitlines() if line.strip()]
    assert ranks[0].returncode == 1 and "Traceback" not in err, err[-3000:]
    assert [line for line in lines if line.startswith("binedu train: error:")] == lines[-1:], err[-3000:]
    assert "another process of this torchrun run stopped or cannot be reached" in lines[-1]


SITE_GUARD = """
import builtins, io, os, tempfile
_OUT = os.environ.get("GUARD_OUT")
if _OUT and os.environ.get("RANK", "0") != "0":
    def _inside(path):
        return os.path.abspath(os.fspath(path)).startswith(_OUT)
    def _guard(name, real, path_arg=0, write=lambda *a, **k: True):
        def check(*args, **kwargs):
            path = args[path_arg] if len(args) > path_arg else kwargs.get("dir")
            if path is not None and isinstance(path, (str, bytes, os.PathLike)) and _inside(path) and write(*args, **kwargs):
                raise RuntimeError(f"rank {os.environ['RANK']} wrote {path} ({name})")
            return real(*args, **kwargs)
        return check
    def _writes(*args, **kwargs):
        mode = args[1] if len(args) > 1 else kwargs.get("mode", "r")
        return any(c in mode for c in "wax+")
    tempfile.mkstemp = _guard("mkstemp", tempfile.mkstemp, path_arg=99)
    os.replace = _guard("replace", os.replace, path_arg=1)
    builtins.open = io.open = _guard("open", builtins.open, write=_writes)
"""


def test_only_rank_zero_writes_files_and_prints(tmp_path):
    """``torchrun -m binedu train`` with 2 processes; any write of rank 1 under the run
    folder raises (a guard loaded through sitecustomize), so the run would fail."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(SITE_GUARD))
    out = tmp_path / "run"
    env = {"PYTHONPATH": f"{site}{os.pathsep}{ROOT / 'tests'}", "GUARD_OUT": str(out)}
    args = ["-m", "binedu", "train", "--model", "language", "--config", "tiny", "--data", "pydoc", "--limit", "40",
            "--max-len", "16", "--batch-size", "4", "--epochs", "2", "--max-steps", "6", "--checkpoint-every", "2",
            "--precision", "bf16", "--no-progress", "--out", str(out)]  # fmt: skip
    done = torchrun(args, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("final:") == 1 and done.stdout.count("epoch 1 step") == 1, done.stdout
    assert "2 processes" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.safetensors", "history.json", "run.json", "tokenizer.json"]
    assert json.loads((out / "history.json").read_text())["meta"]["world_size"] == 2


def test_the_write_guard_catches_a_rank_that_writes(tmp_path):
    """The guard of the test above does fail a run where rank 1 writes."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(SITE_GUARD))
    out = tmp_path / "run"
    out.mkdir()
    script = tmp_path / "write.py"
    script.write_text(f"from binedu.io import atomic_write_bytes\natomic_write_bytes({str(out / 'x')!r}, b'x')\n")
    env = os.environ | {"PYTHONPATH": str(site), "GUARD_OUT": str(out), "RANK": "1"}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "rank 1 wrote" in done.stderr
    done = subprocess.run([sys.executable, str(script)], env=env | {"RANK": "0"}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and (out / "x").read_bytes() == b"x"


# ---------------------------------------------------------------- the sampler and the shards


@given(
    n=st.integers(1, 60),
    batch_size=st.integers(1, 9),
    world=st.integers(1, 4),
    epoch=st.integers(0, 3),
    start=st.integers(0, 8),
)
def test_ranks_split_each_global_batch_of_the_one_process_order(n, batch_size, world, epoch, start):
    samplers = [EpochBatches(n, batch_size, 7, _epoch_order, r, world) for r in range(world)]
    one = EpochBatches(n, batch_size * world, 7, _epoch_order)
    start = min(start, len(one))
    for s in [*samplers, one]:
        s.set_epoch(epoch, start)
    per_rank = [list(s) for s in samplers]
    expected = list(one)
    assert all(len(batches) == len(expected) == len(one) - start for batches in per_rank)
    for i, global_batch in enumerate(expected):
        borrowed = [s.borrowed(start + i) for s in samplers]
        pieces = [batches[i] for batches, b in zip(per_rank, borrowed, strict=True) if not b]
        assert sum(pieces, []) == global_batch  # in order, disjoint, complete
        assert max(map(len, pieces)) - min(map(len, pieces)) <= 1
        # a rank with nothing left steps along on a stand-in: the batch's first example
        assert all(batches[i] == global_batch[:1] for batches, b in zip(per_rank, borrowed, strict=True) if b)
        assert sum(borrowed) == max(world - len(global_batch), 0)
        if len(global_batch) == batch_size * world:
            assert all(len(p) == batch_size for p in pieces)
    if world == 1:
        order = _epoch_order(n, 7, epoch)
        assert expected == [order[i : i + batch_size] for i in range(start * batch_size, n, batch_size)]


@given(n=st.integers(0, 100), world=st.integers(1, 8))
def test_validation_shards_cover_every_example_once(n, world):
    shards = [list(shard_range(n, r, world)) for r in range(world)]
    assert sorted(sum(shards, [])) == list(range(n))


def test_one_process_group_is_a_no_op():
    procs = Group()
    model = image_model()
    assert procs.wrap(model, torch.device("cpu")) is model and procs.seed(9) == 9 and procs.is_main
    states = {"rng/cpu": torch.get_rng_state()}
    assert procs.gather_rng(states) is states and procs.own_rng(states) is states


# ---------------------------------------------------------------- bf16 autocast


@given(values=st.lists(st.floats(-4, 4, width=32), min_size=1, max_size=40), ties=st.integers(0, 5))
def test_quantize_under_autocast_gives_the_same_bits(values, ties):
    p = torch.tensor(values + [values[0]] * ties, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = quantize(p)
    assert inside.dtype == torch.float32 and torch.equal(inside, quantize(p))


def test_normalize_of_a_bf16_activation_takes_float32_statistics():
    z = torch.randn(4, 32, generator=torch.Generator().manual_seed(0)) * 50 + 1000
    low = z.bfloat16()
    out = normalize(low)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, normalize(low.float()), rtol=0, atol=0)
    # the bf16 arithmetic it replaces is visibly worse: its mean is off by whole units
    naive = (low - low.mean(-1, keepdim=True)).float()
    assert (naive - (low.float() - low.float().mean(-1, keepdim=True))).abs().max() > 0.5


@pytest.mark.parametrize("make", [image_model, language_model])
def test_bf16_training_keeps_float32_latents_and_the_bits_of_their_means(make):
    data = image_set(24) if make is image_model else counting_sequences(24)
    model = make()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = binary_bits(model)
    assert all(torch.equal(inside[k], v) for k, v in binary_bits(model).items())
    history = fit(model, data, data, epochs=1, batch_size=8, precision="bf16", **COMMON)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.isfinite(torch.tensor(history.loss)))
    logits = model(data[0][0][None] if make is image_model else data[0][None, :-1])
    assert logits.dtype == torch.float32  # outside autocast the model is float32 again


@pytest.mark.parametrize(("make", "unit"), [(image_model, "img/s="), (language_model, "tok/s=")])
def test_progress_bar_shows_the_throughput(capsys, make, unit):
    data = image_set(16) if make is image_model else counting_sequences(16)
    fit(make(), data, epochs=1, batch_size=8, progress=True, on_epoch=lambda record: None)
    bar = capsys.readouterr().err
    assert unit in bar and "loss=" in bar


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        fit(image_model(), image_set(8), epochs=1, batch_size=4, precision="fp16", progress=False)


# ---------------------------------------------------------------- the GPU smoke script


def test_gpu_smoke_without_a_gpu_says_so_and_runs_nothing():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: run bench/gpu_smoke.py itself")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_smoke.py")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no CUDA GPU is visible" in done.stderr and "nothing was run" in done.stderr
    assert done.stdout == ""


def test_gpu_smoke_workloads_train_on_the_cpu():
    """The smoke script's measuring code, on the CPU with its dry-run models."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import gpu_smoke
    finally:
        sys.path.remove(str(ROOT / "bench"))
    for kind in ("image", "language"):
        row = gpu_smoke.timed_run(kind, "bf16", 4, torch.device("cpu"), dry_run=True)
        assert row["steps_per_s"] > 0 and row["first"] > 0 and row["last"] > 0


if __name__ == "__main__":
    worker(json.loads(sys.argv[1]))
