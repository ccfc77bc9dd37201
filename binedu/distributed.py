"""Training on several processes with PyTorch's own engine: ``torchrun`` +
``DistributedDataParallel`` (DDP).

``torchrun --nproc_per_node=N -m binedu train ...`` starts N copies of the program and
sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`setup` joins them into one process group (``gloo`` on CPUs, ``nccl`` on GPUs).
Without those variables everything here is a no-op and :func:`~binedu.fit` runs as one
process, exactly as before.

How the pieces keep a run equal to one process with the same global batch:

- Data (:class:`EpochBatches`): every rank computes the same global example order of an
  epoch (``binedu.train._epoch_order``), cuts it into global batches of
  ``batch_size x world_size`` examples and takes its own contiguous slice of each.
  ``batch_size`` is the *per-process* batch, as in PyTorch's ``DistributedSampler``: the
  effective (global) batch is ``batch_size x world_size``. Resuming starts at a global
  batch index, so a resumed run continues at the exact step. (PyTorch's
  ``DistributedSampler`` is not used: it deals examples out by stride and pads the order
  with repeats, so its batches are not those of one process and some examples count
  twice.)
- Loss (:meth:`Group.loss`): each rank sums the cross-entropy of its real targets and
  divides by the all-reduced number of real targets of the global batch (times the world
  size, which DDP's gradient averaging divides out), so the gradient is the one of the
  global batch's mean loss, whatever the padding or an uneven last batch.
- Eq. 1 and the straight-through estimator need nothing: DDP starts every rank from rank
  0's parameters and averages the gradients, so every rank holds the same latent
  weights, and quantizes them to the same bits, at every step.
- Metrics: loss sums, correct counts and real-target counts are all-reduced. Validation
  is sharded without padding (rank ``r`` takes examples ``r, r + W, ...``), so no example
  is counted twice, and the numbers equal one process's.
- Only rank 0 writes files and shows progress; the random-number states of all ranks are
  gathered into its checkpoint so that each rank resumes its own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, Sampler, Subset

from .metrics import Tally, dataset_len, evaluate, evaluation_tally, token_loss

__all__ = ["Group", "setup", "current", "shutdown", "EpochBatches", "shard_range", "load_data", "torchrun_env"]

ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
TIMEOUT = timedelta(hours=3)  # how long a collective may wait for the slowest process


def torchrun_env() -> dict[str, str]:
    """The torchrun variables present in the environment (empty for a plain run)."""
    return {k: os.environ[k] for k in ENV if k in os.environ}


@dataclass(frozen=True)
class Group:
    """This process's place in the run: ``rank`` of ``world_size`` processes; one process
    (``world_size == 1``) makes every method a no-op."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and shows progress."""
        return self.rank == 0

    def _comm_device(self) -> torch.device:
        """Where collective tensors must live: the GPU for nccl, else the CPU."""
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def all_sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over the ranks (float64, exact for counts below 2**53)."""
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` (which first
        broadcasts rank 0's parameters), or ``model`` itself for one process."""
        if not self.active:
            return model
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def seed(self, seed: int) -> int:
        """The seed of this rank's random numbers (dropout): ``seed`` on rank 0, so one
        process draws what it always drew, a different stream on every other rank."""
        return seed + 1_000_003 * self.rank

    def has_targets(self, y: torch.Tensor, pad_id: int, borrowed: bool = False) -> bool:
        """Whether the global batch holds any target that is not padding (all ranks
        agree, so they skip an all-padding batch together)."""
        local = not borrowed and bool((y != pad_id).any())
        return local if not self.active else self.all_sum([float(local)])[0] > 0

    def loss(
        self, logits: torch.Tensor, y: torch.Tensor, pad_id: int | None, tally: Tally, borrowed: bool = False
    ) -> tuple[torch.Tensor, float]:
        """(loss to back-propagate, the global batch's mean loss); adds the global
        batch to ``tally``. A ``borrowed`` batch (see :class:`EpochBatches`) counts zero.

        One process: ``token_loss`` and ``Tally.add``, as always. Several: this rank's
        summed NLL scaled by ``world_size / global real targets``, so that DDP's
        averaged gradient is the gradient of the global batch's mean loss; the sums
        (NLL, correct, count) are all-reduced so every rank keeps the same tally.
        """
        if not self.active:
            loss = token_loss(logits, y, pad_id)
            tally.add(logits, y, pad_id)
            return loss, float(loss.detach())
        flat, targets = logits.reshape(-1, logits.shape[-1]), y.reshape(-1)
        ignore = -100 if pad_id is None else pad_id
        nll = F.cross_entropy(flat.float(), targets, ignore_index=ignore, reduction="sum")
        real = (targets != ignore) & (not borrowed)
        nll = nll * (not borrowed)
        correct = (flat.detach().argmax(-1) == targets) & real
        sums = torch.stack([nll.detach().double(), correct.sum().double(), real.sum().double()])
        sums = sums.to(self._comm_device())
        dist.all_reduce(sums)  # one collective (and one device sync) per step
        total_nll, total_correct, count = sums.tolist()
        tally.nll += total_nll
        tally.correct += int(total_correct)
        tally.count += int(count)
        return nll * (self.world_size / max(count, 1.0)), total_nll / max(count, 1.0)

    def evaluate(
        self, model: nn.Module, dataset: Dataset, batch_size: int, pad_id: int | None, device: torch.device
    ) -> dict[str, float]:
        """``binedu.evaluate`` on the whole of ``dataset``: each rank evaluates its shard
        (:func:`shard_range`, no example twice) and the sums are all-reduced."""
        if not self.active:
            return evaluate(model, dataset, batch_size, pad_id, device)
        shard = Subset(dataset, shard_range(dataset_len(dataset), self.rank, self.world_size))
        tally = evaluation_tally(model, shard, batch_size, pad_id, device) if len(shard) else Tally()
        nll, correct, count = self.all_sum([tally.nll, float(tally.correct), float(tally.count)])
        language = getattr(getattr(model, "config", None), "kind", None) == "language"
        return Tally(nll, int(correct), int(count)).metrics(language)

    def gather_rng(self, states: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every rank's random-number states for rank 0's checkpoint: rank 0's under
        their usual names (``rng/cpu``), rank ``r``'s under ``rank<r>/rng/cpu``. A
        collective: every rank must call it."""
        if not self.active:
            return states
        out = dict(states)
        device = self._comm_device()
        for name in sorted(states):
            local = states[name].to(device)
            parts = [torch.empty_like(local) for _ in range(self.world_size)]
            dist.all_gather(parts, local)
            out |= {f"rank{r}/{name}": parts[r].cpu() for r in range(1, self.world_size)}
        return out

    def own_rng(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """This rank's states out of a checkpoint written with :meth:`gather_rng`."""
        if self.rank == 0:
            return tensors
        prefix = f"rank{self.rank}/"
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    def broadcast_json(self, value: Any) -> Any:
        """Rank 0's JSON-able ``value`` on every rank (sent as UTF-8 bytes, never pickled)."""
        if not self.active:
            return value
        device = self._comm_device()
        data = json.dumps(value).encode() if self.is_main else b""
        size = torch.tensor([len(data)], dtype=torch.int64, device=device)
        dist.broadcast(size, src=0)
        buffer = torch.zeros(int(size), dtype=torch.uint8, device=device)
        if self.is_main:
            buffer.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        dist.broadcast(buffer, src=0)
        return value if self.is_main else json.loads(buffer.cpu().numpy().tobytes().decode())

    def disagreement(self, value: Any) -> Any:
        """``None`` when every rank holds the same JSON-able ``value``; else rank 0's
        value, on every rank (a collective: every rank must call it, so all of them learn
        of a difference and can stop together instead of waiting for each other)."""
        if not self.active:
            return None
        main = self.broadcast_json(value)
        differs = json.dumps(main, sort_keys=True) != json.dumps(value, sort_keys=True)
        return main if self.all_sum([float(differs)])[0] > 0 else None


def load_data(procs: Group, spec: dict[str, Any], load: Callable[[dict[str, Any]], Any]) -> Any:
    """``load(spec)`` on every rank, rank 0 first (it tokenizes and fills the token
    cache); for text (``spec["kind"] == "language"``) the other ranks take rank 0's
    tokenizer instead of fitting their own, so every rank has the same vocabulary and
    WordPiece is trained once."""
    if not procs.active:
        return load(spec)
    data = load(spec) if procs.is_main else None
    if spec.get("kind") != "language":
        procs.barrier()
        return data if procs.is_main else load(spec)
    vocabulary = procs.broadcast_json(data.tokenizer.to_dict() if data is not None else None)  # rank 0
    if procs.is_main:
        return data
    from .data.tokenizers import tokenizer_from_dict

    return load(spec | {"tokenizer": tokenizer_from_dict(vocabulary, "rank 0's tokenizer"), "vocab_size": None})


def shard_range(n: int, rank: int, world_size: int) -> range:
    """Rank ``rank``'s examples of ``n`` for evaluation: ``rank, rank + W, ...``; the
    shards are disjoint and cover ``range(n)`` exactly (no padding, no repeats)."""
    return range(rank, n, world_size)


class EpochBatches(Sampler[list[int]]):
    """This rank's batches of one epoch, for ``DataLoader(batch_sampler=...)``.

    The global order is ``order(epoch)`` (the same list on every rank), cut into global
    batches of ``batch_size * world_size`` examples; rank ``r`` gets the ``r``-th of
    ``world_size`` contiguous slices of each (sizes differing by at most one). A rank
    whose slice of a short last batch is empty gets the batch's first example instead,
    to step in lockstep with the others, and :meth:`borrowed` tells the trainer to count
    it zero. :meth:`set_epoch` chooses the epoch and the global
    batch to start at (a resumed run); one DataLoader with persistent workers serves
    every epoch.
    """

    def __init__(self, n: int, batch_size: int, seed: int, order: Any, rank: int = 0, world_size: int = 1) -> None:
        self.n, self.batch_size, self.seed, self.order = n, batch_size, seed, order
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def __len__(self) -> int:
        """Global batches in a whole epoch (this rank gets a slice of each)."""
        return -(-self.n // self.global_batch)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def _slice(self, size: int) -> tuple[int, int]:
        """(begin, length) of this rank's part of a global batch of ``size``."""
        each, extra = divmod(size, self.world_size)
        return self.rank * each + min(self.rank, extra), each + (self.rank < extra)

    def borrowed(self, index: int) -> bool:
        """Whether this rank's batch ``index`` of the epoch is a stand-in (its slice
        is empty): its loss and metrics must count zero."""
        size = min(self.global_batch, self.n - index * self.global_batch)
        return self._slice(size)[1] == 0

    def __iter__(self) -> Iterator[list[int]]:
        order = self.order(self.n, self.seed, self.epoch)
        for i in range(self.start * self.global_batch, self.n, self.global_batch):
            batch = order[i : i + self.global_batch]
            if self.world_size == 1:
                yield batch
                continue
            begin, length = self._slice(len(batch))
            yield batch[begin : begin + length] if length else batch[:1]


_GROUP = Group()


def setup(device: torch.device | None = None) -> Group:
    """Join the torchrun process group (once) and return this process's :class:`Group`;
    a one-process ``Group`` when torchrun did not start us.

    The backend is ``nccl`` when ``device`` is a GPU, else ``gloo``; each rank on a GPU
    uses ``cuda:LOCAL_RANK``.
    """
    global _GROUP
    env = torchrun_env()
    world = int(env.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _GROUP
    if not dist.is_initialized():
        missing = [k for k in ENV if k not in env]
        if missing:
            raise ValueError(f"WORLD_SIZE={world} but {', '.join(missing)} not set: start the run with torchrun")
        cuda = device is not None and device.type == "cuda"
        if cuda:
            torch.cuda.set_device(int(env["LOCAL_RANK"]))
        # long timeout: rank 0 may tokenize WikiText-103 (load_data) while the others wait
        dist.init_process_group(backend="nccl" if cuda else "gloo", timeout=TIMEOUT)
    _GROUP = Group(dist.get_rank(), dist.get_world_size(), int(env.get("LOCAL_RANK", "0")))
    return _GROUP


def current() -> Group:
    """The :class:`Group` of the last :func:`setup` (one process before any)."""
    return _GROUP


def local_device(device: torch.device, group: Group) -> torch.device:
    """``cuda`` becomes ``cuda:LOCAL_RANK`` under torchrun (one GPU per process)."""
    if group.active and device.type == "cuda":
        return torch.device("cuda", group.local_rank)
    return device


def shutdown() -> None:
    """Leave the process group (at the end of a torchrun program)."""
    global _GROUP
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _GROUP = Group()
