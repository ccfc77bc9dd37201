"""Command line: ``python -m binedu`` (or ``binedu``) train | evaluate | pack | report | generate.

Examples::

    python -m binedu train --model image --config tiny --data digits --epochs 5 --out runs/digits
    python -m binedu train --model language --config tiny --data pydoc --max-steps 200 --out runs/pydoc
    python -m binedu evaluate runs/digits
    python -m binedu pack runs/digits
    python -m binedu report --model language --config paper-small
    python -m binedu generate runs/pydoc --prompt "The list" --temperature 0.8 --top-k 20

    # the paper's runs, one command each (a GPU is used when present)
    python -m binedu train --model image --config paper-3x3 --data food101 --data-root ~/data/food-101
    python -m binedu train --model language --config paper-small --data wikitext-103 --data-root ~/data/wikitext-103-raw

A run folder (``--out``) holds ``checkpoint.safetensors`` (training checkpoint: latent
floats, optimizer, progress), ``history.json``, ``run.json`` (model configuration,
training settings, data set) and, for language models, ``tokenizer.json``. Training with
``--resume`` continues from the checkpoint there, after checking that the model, the
data order and the optimizer are the checkpoint's. Progress and one final
``key=value`` metrics line go to stdout. Nothing is written before every argument has
been checked, and files are written atomically.

Exit status: 0 done, 1 bad data or state (a corrupt file, a refused resume, a full
disk, a diverged run), 2 bad arguments; either way one line on stderr names the
problem and the option or file, without a traceback. ``binedu --version`` prints the
version.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import signal
import stat
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from . import __version__, distributed
from .config import IMAGE_CONFIGS, LANGUAGE_CONFIGS
from .data.image_sets import MAX_IMAGE_SIZE
from .history import History
from .io import atomic_write_bytes
from .metrics import evaluate, task_of
from .precision import PRECISIONS
from .tensor_file import file_kind, parse_json
from .train import check_hyperparameters, fit, format_record, recipe, resolve_device
from .train_checkpoint import is_training_checkpoint, load_trained_model

__all__ = ["main", "build_parser", "plan_train"]

CHECKPOINT = "checkpoint.safetensors"
HISTORY = "history.json"
RUN = "run.json"
TOKENIZER = "tokenizer.json"
PACKED = "packed.safetensors"
IMAGE_DATA = ("digits", "food101", "folder")
TEXT_DATA = ("pydoc", "pydoc-installed", "wikitext-2", "wikitext-103")
DEFAULT_DATA = {"image": "digits", "language": "pydoc"}
PAPER_DATA = {"image": "food101", "language": "wikitext-103"}
DEFAULT_TOKEN_CACHE = "~/.cache/binedu/tokens"


EXAMPLES = """examples:
  binedu train --model image --config tiny --data digits --epochs 5 --out runs/digits
  binedu train --model language --config tiny --data pydoc --max-steps 200 --out runs/pydoc
  binedu train --out runs/digits --resume            # continue a run (same settings)
  binedu evaluate runs/digits
  binedu pack runs/digits                            # 1-bit file: runs/digits/packed.safetensors
  binedu report --model language --config paper-small
  binedu generate runs/pydoc --prompt "The list" --temperature 0.8 --top-k 20

  # the paper's runs, one command each (a GPU is used when present)
  binedu train --model image --config paper-3x3 --data food101 --data-root ~/data/food-101
  binedu train --model language --config paper-small --data wikitext-103 --data-root ~/data/wikitext-103-raw

exit status: 0 done, 1 bad data or state (one line on stderr), 2 bad arguments
"""
CONFIGS = {"image": IMAGE_CONFIGS, "language": LANGUAGE_CONFIGS}


class CommandError(ValueError):
    """A request the command line cannot carry out (bad data or state, exit status 1);
    its message is shown as is."""


class UsageError(CommandError):
    """Arguments that parse but cannot work together (exit status 2, like argparse's)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``binedu train: error: argument --epochs: ...``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Examples kept as written; each option's help ends with its default (options
    whose default depends on others say so in words)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def _number(kind: type, low: float | None = None, high: float | None = None, above: bool = False):
    """An argparse ``type`` for a finite int or float in a range; its error message is
    shown after the option's name (``argument --epochs: must be >= 1, got 0``)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if low is not None and (value <= low if above else value < low):
            raise argparse.ArgumentTypeError(f"must be {'>' if above else '>='} {low:g}, got {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high:g}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


POSITIVE = _number(int, 1)
COUNT = _number(int, 0)
SEED = _number(int, 0, 2**63 - 1)
MAX_WORKERS = 4 * (os.cpu_count() or 1)
"""Most ``--num-workers``: 4 per CPU core (more only fork processes that wait)."""
MIN_TEMPERATURE = 1e-3
"""Smallest positive ``--temperature``: logits / 1e-320 overflow to infinity (0 is greedy)."""


def _temperature(text: str) -> float:
    """``--temperature``: 0 (greedy) or a finite number from :data:`MIN_TEMPERATURE` up."""
    value = _number(float, 0)(text)
    if 0 < value < MIN_TEMPERATURE:
        raise argparse.ArgumentTypeError(f"must be 0 (greedy) or at least {MIN_TEMPERATURE:g}, got {text}")
    return value


_temperature.__name__ = "float"


# ---------------------------------------------------------------- arguments


def build_parser() -> argparse.ArgumentParser:
    """The ``binedu`` argument parser (all subcommands). Ranges are checked here, so a
    bad value exits with status 2 naming its option before anything is read or written."""
    parser = _Parser(
        prog="binedu", description="Binary normalized neural networks (1-bit parameters): train, evaluate, pack.",
        epilog=EXAMPLES, formatter_class=_Formatter,
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"binedu {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    image_configs, language_configs = " | ".join(IMAGE_CONFIGS), " | ".join(LANGUAGE_CONFIGS)
    config_help = f"image: {image_configs}; language: {language_configs}"

    def command(name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=description or help, formatter_class=_Formatter)

    train = command("train", "train an image or language model", "Train a model into a run folder (--out).")
    train.add_argument("--model", choices=("image", "language"), default="image", help="which paper model")
    train.add_argument("--config", default="tiny", choices=sorted({*IMAGE_CONFIGS, *LANGUAGE_CONFIGS}), metavar="CONFIG", help=config_help)
    train.add_argument("--float", dest="float_model", action="store_true", help="the float32 counterpart instead of the binary model")
    train.add_argument("--no-normalize", action="store_true", help="remove the normalization (the ablation that fails)")
    train.add_argument("--data", help="digits | food101 | folder | pydoc | wikitext-2 | wikitext-103 (default: digits/pydoc, food101/wikitext-103 for paper configs)")
    train.add_argument("--data-root", help="folder of the data set (food101, folder, wikitext; default: none)")
    train.add_argument("--tokenizer", help="char | wordpiece | path to vocab.txt / tokenizer .json (language; default char, wordpiece for paper configs)")
    train.add_argument("--vocab-size", type=_number(int, 2), help="tokenizer size (wordpiece: number of pieces; default: the tokenizer's)")
    train.add_argument("--image-size", type=_number(int, 1, MAX_IMAGE_SIZE), help=f"image side in pixels, at most {MAX_IMAGE_SIZE} (default: the config's)")
    train.add_argument("--max-len", type=_number(int, 2), help="sequence length, at most the config's (default: the config's)")
    train.add_argument("--limit", type=POSITIVE, help="use at most this many examples per split (default: all)")
    train.add_argument("--val-fraction", type=_number(float, 0, 1, above=True), help="validation share where the data set has no official split (default: the data set's)")
    train.add_argument("--epochs", type=POSITIVE, help="passes over the training set (default: the config's recipe)")
    train.add_argument("--batch-size", type=POSITIVE, help="examples per step (default: the config's recipe)")
    train.add_argument("--lr", type=_number(float, 0, 1e6, above=True), help="peak learning rate (default: the config's recipe)")
    train.add_argument("--optimizer", choices=("adam", "adamw"), help="default: the config's recipe")
    train.add_argument("--weight-decay", type=_number(float, 0), help="default: the config's recipe (0 if it has none)")
    train.add_argument("--warmup-steps", type=COUNT, help="linear warmup length (default: the config's recipe)")
    train.add_argument("--decay-steps", type=COUNT, help="cosine decay length (0: none; default: the recipe's, else the rest of the run)")
    train.add_argument("--min-lr-ratio", type=_number(float, 0, 1), help="learning rate after the decay, as a fraction of --lr (default: the recipe's, else 0)")
    train.add_argument("--max-steps", type=POSITIVE, help="stop after this many optimizer steps (default: no limit)")
    train.add_argument("--record-every", type=POSITIVE, default=10, help="steps between bit-flip and gradient-norm records")
    train.add_argument("--seed", type=SEED, default=0, help="data order, initialization and dropout")
    train.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (auto: a GPU when present)")
    train.add_argument("--num-workers", type=_number(int, 0, MAX_WORKERS), help=f"data-loading processes, at most {MAX_WORKERS} (4 per CPU core; default 0 on CPU, 8 on GPU)")
    train.add_argument("--precision", choices=PRECISIONS, default="fp32", help="bf16: float activations in bfloat16 (autocast), for GPUs; the latent weights stay float32")
    train.add_argument("--token-cache", help="folder of the tokenized WikiText cache, built once and memory-mapped (default ~/.cache/binedu/tokens; 'none': no cache)")
    train.add_argument("--out", help="run folder (default runs/<model>-<config>-<variant>)")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    train.add_argument("--checkpoint-every", type=COUNT, default=1000, help="steps between checkpoints within an epoch (0: only at epoch ends)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    ev = command("evaluate", "loss, accuracy (and perplexity) on the validation set")
    ev.add_argument("path", help="run folder, training checkpoint or packed file")
    ev.add_argument("--data", help="data set (default: the one the run trained on)")
    ev.add_argument("--data-root", help="folder of the data set (default: the run's)")
    ev.add_argument("--limit", type=POSITIVE, help="at most this many examples (default: all)")
    ev.add_argument("--batch-size", type=POSITIVE, default=64, help="examples per batch")
    ev.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")

    pack = command("pack", "training checkpoint -> 1-bit packed file")
    pack.add_argument("path", help="run folder or training checkpoint")
    pack.add_argument("-o", "--output", help=f"packed file (default: {PACKED} next to the checkpoint)")

    report = command("report", "memory report of a configuration or a saved model")
    report.add_argument("path", nargs="?", help="run folder, training checkpoint or packed file (default: --model/--config)")
    report.add_argument("--model", choices=("image", "language"), help="which paper model (default: the one the config names; image for tiny)")
    report.add_argument("--config", default="tiny", choices=sorted({*IMAGE_CONFIGS, *LANGUAGE_CONFIGS}), metavar="CONFIG", help=config_help)
    report.add_argument("--float", dest="float_model", action="store_true", help="the float32 counterpart")

    gen = command("generate", "text from a trained language model")
    gen.add_argument("path", help="run folder, training checkpoint or packed file")
    gen.add_argument("--prompt", required=True, help="text to continue")
    gen.add_argument("--tokenizer", help=f"tokenizer file (default: {TOKENIZER} of the run)")
    gen.add_argument("--max-new-tokens", type=COUNT, default=100, help="tokens to add")
    gen.add_argument("--temperature", type=_temperature, default=0.8, help=f"0: always the most likely token; else at least {MIN_TEMPERATURE:g}")
    gen.add_argument("--top-k", type=POSITIVE, help="draw from the k most likely tokens only (default: all)")
    gen.add_argument("--seed", type=SEED, help="seed of the draws (default: random)")
    gen.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    return parser


def check_args(args: argparse.Namespace) -> None:
    """What argparse cannot check alone (a config of the chosen model, a device this
    machine has, an --out that is a folder, ...): a :class:`UsageError` naming the option."""
    if args.command == "report" and args.model is None:  # the kind the config's name belongs to
        args.model = "language" if args.config in LANGUAGE_CONFIGS and args.config not in IMAGE_CONFIGS else "image"
    if args.command in ("train", "report") and args.config not in CONFIGS[args.model]:
        known = ", ".join(CONFIGS[args.model])
        raise UsageError(f"argument --config: {args.config!r} is not {_a(args.model)} config; choose from {known}")
    if getattr(args, "device", None) is not None:
        try:
            resolve_device(args.device)
        except ValueError as exc:
            raise UsageError(f"argument --device: {exc}") from None
    if args.command == "train":
        config = CONFIGS[args.model][args.config]
        if args.model == "language" and args.max_len is not None and args.max_len > config.max_len:
            # the position embedding has max_len rows and attention costs max_len^2 per head
            raise UsageError(
                f"argument --max-len: at most {config.max_len} (the {args.config} config's context), got {args.max_len}"
            )
        if args.model == "image" and args.image_size is not None:
            try:
                config.replace(image_size=args.image_size)
            except ValueError as exc:
                raise UsageError(f"argument --image-size: {exc}") from None
        if args.out is not None and Path(args.out).expanduser().exists() and not Path(args.out).expanduser().is_dir():
            raise UsageError(f"argument --out: {args.out} is a file, not a run folder")
        name = args.data
        allowed = IMAGE_DATA if args.model == "image" else TEXT_DATA
        if name is not None and name not in allowed:
            raise UsageError(f"argument --data: {name!r} does not fit {_a(args.model)} model; use one of {', '.join(allowed)}")
    if args.command == "pack" and args.output is not None:
        kind = _kind_of(Path(args.output).expanduser())
        if kind == "a folder":
            raise UsageError(f"argument -o/--output: {args.output} is a folder; give the packed file's name")
        if kind not in (None, "a file"):
            raise UsageError(f"argument -o/--output: {args.output} is {kind}, not a file: it will not be replaced")


# ---------------------------------------------------------------- helpers


def _a(word: str) -> str:
    """``"an image"``, ``"a language"``."""
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _say(line: str) -> None:
    print(line, flush=True)


def _metrics_line(prefix: str, metrics: dict[str, Any]) -> str:
    values = " ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items() if k != "partial"
    )
    return f"{prefix}: {values}"


def _kind_of(path: Path) -> str | None:
    """``"a file"``, ``"a folder"``, ``"a FIFO"``, ... (what ``path`` is, its link
    followed), or ``None`` when nothing is there."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    kinds = (
        (stat.S_ISREG, "a file"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
    )  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _run_folder(path: str | Path) -> tuple[Path, Path]:
    """(run folder, model file) for a run folder or a file inside one."""
    path = Path(path).expanduser()
    kind = _kind_of(path)
    if kind == "a folder":
        for name in (CHECKPOINT, PACKED):
            if _kind_of(path / name) == "a file":
                return path, path / name
        raise CommandError(f"{path} holds neither {CHECKPOINT} nor {PACKED}")
    if kind is None:
        raise CommandError(f"no such file or folder: {path}")
    if kind != "a file":
        raise CommandError(f"{path} is {kind}, not a run folder or a model file")
    return path.parent, path


def _load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, Path, Path]:
    """A trained model (training or packed) from a run folder or file."""
    folder, file = _run_folder(path)
    if is_training_checkpoint(file):
        return load_trained_model(file, device), folder, file
    from .checkpoint import load_packed

    return load_packed(file).to(device), folder, file


DATA_KEYS = {
    "image": {"kind", "name", "root", "seed", "limit", "val_fraction", "image_size"},
    "language": {"kind", "name", "root", "seed", "limit", "val_fraction", "tokenizer", "max_len", "vocab_size"},
}


def _run_info(folder: Path) -> dict[str, Any]:
    """The run's ``run.json``, checked where the commands read it (its data spec)."""
    run = folder / RUN
    if not run.is_file():
        return {}
    try:
        info = parse_json(run.read_bytes())
    except ValueError as exc:
        raise CommandError(f"{run} is not valid JSON ({exc})") from None
    if not isinstance(info, dict):
        raise CommandError(f"{run} must hold a JSON object, not a {type(info).__name__}")
    spec = info.get("data")
    if spec is not None:
        if not isinstance(spec, dict) or spec.get("kind") not in DATA_KEYS or not isinstance(spec.get("name"), str):
            raise CommandError(f"{run}: 'data' must be an object with a 'kind' (image or language) and a 'name'")
        unknown = sorted(set(spec) - DATA_KEYS[spec["kind"]])
        if unknown:
            raise CommandError(f"{run}: unknown key(s) in 'data': {', '.join(map(repr, unknown))}")
    return info


def _load_data(spec: dict[str, Any]) -> Any:
    """Image or text data from a data spec dict (as stored in run.json)."""
    from .data import image_data, text_data

    spec = dict(spec)
    kind = spec.pop("kind")
    try:
        return image_data(**spec) if kind == "image" else text_data(**spec)
    except TypeError as exc:  # a hand-edited run.json with a value of the wrong type
        raise CommandError(f"bad data settings {spec} ({exc})") from exc


def _check_vocabulary(model: torch.nn.Module, vocab_size: int, tokenizer: object, model_file: Path) -> None:
    """A tokenizer must not produce ids the model has no embedding row for."""
    size = model.config.vocab_size
    if vocab_size > size:
        raise CommandError(
            f"tokenizer {tokenizer} has {vocab_size:,} tokens but the model {model_file} knows {size:,} "
            f"(vocab_size={size}): use the tokenizer the model was trained with"
        )


def _check_classes(model: torch.nn.Module, data: Any, model_file: Path) -> None:
    """Image data must fit the model: its classes are model outputs, its channels inputs."""
    config = getattr(model, "config", None)
    classes, channels = getattr(config, "num_classes", None), getattr(config, "in_channels", None)
    if classes is not None and data.num_classes > classes:
        raise CommandError(
            f"{data.name} data has {data.num_classes} classes but the model {model_file} has {classes} outputs: "
            "evaluate it on data of the classes it was trained on"
        )
    if channels is not None and data.in_channels != channels:
        raise CommandError(
            f"{data.name} images have {data.in_channels} channel(s) but the model {model_file} reads {channels}"
        )


def _data_spec(args: argparse.Namespace, kind: str, config: Any) -> dict[str, Any]:
    paper = args.config.startswith("paper")
    name = args.data or (PAPER_DATA if paper else DEFAULT_DATA)[kind]
    allowed = IMAGE_DATA if kind == "image" else TEXT_DATA
    if name not in allowed:
        raise UsageError(f"argument --data: {name!r} does not fit {_a(kind)} model; use one of {', '.join(allowed)}")
    spec: dict[str, Any] = {"kind": kind, "name": name, "root": args.data_root, "seed": args.seed, "limit": args.limit}
    if args.val_fraction is not None:
        spec["val_fraction"] = args.val_fraction
    if kind == "image":
        spec["image_size"] = args.image_size if args.image_size is not None else config.image_size
    else:
        spec["tokenizer"] = args.tokenizer or ("wordpiece" if paper else "char")
        spec["max_len"] = args.max_len if args.max_len is not None else config.max_len
        spec["vocab_size"] = args.vocab_size
        if name.startswith("wikitext") and args.token_cache != "none":
            spec["cache_dir"] = str(Path(args.token_cache or DEFAULT_TOKEN_CACHE).expanduser())
    return spec


def _variant(args: argparse.Namespace) -> str:
    return ("float" if args.float_model else "binary") + ("-nonorm" if args.no_normalize else "")


# ---------------------------------------------------------------- commands


def plan_train(args: argparse.Namespace) -> dict[str, Any]:
    """What ``binedu train`` will do, before any data is read: the data spec, the
    training settings (the config's recipe, then the command-line overrides) and the run
    folder."""
    kind = args.model
    table = CONFIGS[kind]
    if args.config not in table:
        raise UsageError(f"argument --config: {args.config!r} is not {_a(kind)} config; choose from {', '.join(table)}")
    settings = recipe(kind, args.config)
    for key in ("epochs", "batch_size", "lr", "optimizer", "weight_decay", "warmup_steps", "decay_steps", "min_lr_ratio"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    out = Path(args.out or f"runs/{kind}-{args.config}-{_variant(args)}").expanduser()
    return {"data": _data_spec(args, kind, table[args.config]), "train": settings, "out": out}


def cmd_train(args: argparse.Namespace) -> int:
    from .image_model import ImageClassifier
    from .language_model import LanguageModel

    plan = plan_train(args)
    spec, settings, out = plan["data"], plan["train"], plan["out"]
    device = resolve_device(args.device)
    procs = distributed.setup(device)  # under torchrun: join the other processes
    say = _say if procs.is_main else lambda line: None  # only rank 0 prints and writes
    checkpoint = out / CHECKPOINT
    if checkpoint.exists() and not args.resume:
        raise CommandError(f"{checkpoint} exists: pass --resume to continue it, or choose another --out")
    try:
        check_hyperparameters(
            settings["lr"], settings.get("weight_decay", 0.0), settings.get("min_lr_ratio", 0.0),
            settings["warmup_steps"], settings["decay_steps"], args.checkpoint_every,
        )  # fmt: skip
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.model == "language" and args.resume and (out / TOKENIZER).is_file():
        spec["tokenizer"] = str(out / TOKENIZER)  # continue with the vocabulary the run started with
    data = distributed.load_data(procs, spec, _load_data)  # rank 0 first; its tokenizer for all
    overrides: dict[str, Any] = {"binary": not args.float_model, "normalize": not args.no_normalize}
    if args.model == "image":
        overrides |= dict(in_channels=data.in_channels, num_classes=data.num_classes, image_size=data.image_size)
        cls: Any = ImageClassifier
    else:
        overrides |= dict(vocab_size=data.vocab_size, max_len=data.max_len)
        cls = LanguageModel
    torch.manual_seed(args.seed)
    model = cls.from_config(args.config, **overrides)

    def write_run_folder() -> None:
        """Called by fit once the arguments and (with --resume) the checkpoint are checked."""
        out.mkdir(parents=True, exist_ok=True)
        if args.model == "language":
            data.tokenizer.save(out / TOKENIZER)
            spec["tokenizer"] = str((out / TOKENIZER).resolve())  # evaluation reuses the same vocabulary
        run = {"model": model.config.to_dict(), "config_name": args.config, "train": settings, "data": spec}
        atomic_write_bytes(out / RUN, json.dumps(run, indent=1).encode())

    say(
        f"model: {cls.__name__} {args.config} ({_variant(args)}), {model.num_parameters():,} parameters; "
        f"data: {data.name} {len(data.train):,} train / {len(data.val):,} val; device: {device}"
    )
    shown = {k: v for k, v in settings.items() if v is not None}  # decay_steps=None: the rest of the run
    say("training: " + " ".join(f"{k}={v}" for k, v in shown.items()) + f" seed={args.seed} out={out}")
    if procs.active:
        batch = settings["batch_size"]
        say(f"torchrun: {procs.world_size} processes x batch {batch} = effective batch {procs.world_size * batch}")
    num_workers = args.num_workers if args.num_workers is not None else (8 if device.type == "cuda" else 0)
    history = fit(
        model, data.train, data.val, **settings, seed=args.seed, max_steps=args.max_steps, pad_id=0,
        record_every=args.record_every, progress=not args.no_progress, checkpoint=checkpoint,
        checkpoint_every=args.checkpoint_every, resume=args.resume, device=device, num_workers=num_workers, on_epoch=lambda r: _say(format_record(r)), on_start=write_run_folder,
        precision=args.precision,
    )  # fmt: skip
    if procs.is_main:
        history.save(out / HISTORY)
    say(_final_line(history))
    distributed.shutdown()
    return 0


def _final_line(history: History) -> str:
    if not history.epochs:
        return "final: no epoch finished"
    last = history.epochs[-1]
    metrics: dict[str, Any] = {"epochs": last["epoch"], "steps": last["step"]}
    metrics |= {k: v for k, v in last.items() if k not in ("epoch", "step", "partial")}
    if "val_acc" in last:
        metrics["best_val_acc"] = history.best("val_acc")
    return _metrics_line("final", metrics)


def cmd_evaluate(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    model, folder, file = _load_model(args.path, device)
    spec = _run_info(folder).get("data")
    task = task_of(model)
    if args.data is not None:
        allowed = TEXT_DATA if task == "language" else IMAGE_DATA
        if args.data not in allowed:
            raise UsageError(f"argument --data: {args.data!r} does not fit {_a(task)} model ({file}); use one of {', '.join(allowed)}")
        spec = {"kind": task, "name": args.data, "root": args.data_root} | (
            {"tokenizer": str(folder / TOKENIZER), "max_len": model.config.max_len} if task == "language" else {}
        )
    if spec is None:
        raise CommandError(f"{folder} has no {RUN} saying which data the model trained on: pass --data")
    if spec["kind"] != task:
        raise CommandError(f"{folder / RUN} names {spec['kind']} data ({spec['name']!r}) but {file} holds {_a(task)} model")
    spec = spec | {k: v for k, v in (("root", args.data_root), ("limit", args.limit)) if v is not None}
    if task == "language" and not (isinstance(spec.get("max_len"), int) and spec["max_len"] <= model.config.max_len):
        raise CommandError(
            f"{folder / RUN} asks for max_len={spec.get('max_len')!r}; the model {file} reads at most "
            f"{model.config.max_len} tokens"
        )
    data = _load_data(spec)
    if task == "language":
        _check_vocabulary(model, data.vocab_size, spec.get("tokenizer"), file)
    else:
        _check_classes(model, data, file)
    metrics = evaluate(model, data.val, batch_size=args.batch_size, pad_id=0, device=device)
    _say(f"evaluate: {file} on {data.name} validation ({len(data.val):,} examples)")
    _say(_metrics_line("final", metrics))
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    from .checkpoint import save_packed
    from .packed import pack_model

    folder, file = _run_folder(args.path)
    if not is_training_checkpoint(file):
        with open(file, "rb") as f:
            kind = file_kind(f.read(16))
        if kind is not None:
            raise CommandError(f"{file} is {kind}, not a training checkpoint")
        raise CommandError(f"{file} is not a training checkpoint (already packed?)")
    model = load_trained_model(file)
    if not getattr(model.config, "binary", False):
        raise CommandError("only binary models can be packed to 1 bit; this one was trained with --float")
    packed = pack_model(model)  # refuses NaN or infinite latents
    output = Path(args.output).expanduser() if args.output else folder / PACKED
    save_packed(packed, output)
    before, after = file.stat().st_size, output.stat().st_size
    _say(f"packed: {output} ({after:,} bytes; training checkpoint {before:,} bytes, {before / after:.1f}x larger)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .memory import memory_report

    if args.path is not None:
        model, _, _ = _load_model(args.path)
    else:
        from .image_model import ImageClassifier
        from .language_model import LanguageModel

        cls: Any = ImageClassifier if args.model == "image" else LanguageModel
        table = IMAGE_CONFIGS if args.model == "image" else LANGUAGE_CONFIGS
        if args.config not in table:
            raise CommandError(f"unknown {args.model} config {args.config!r}; known: {', '.join(table)}")
        # shapes only: even paper-large (333 M parameters) allocates nothing
        model = cls.on_meta(args.config, binary=not args.float_model)
    _say(str(memory_report(model)))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from .data import load_tokenizer
    from .data.tokenizers import unknown_chars
    from .generate import generate

    model, folder, file = _load_model(args.path, resolve_device(args.device))
    if task_of(model) != "language":
        raise CommandError("generate needs a language model; this one classifies images")
    tokenizer_file = Path(args.tokenizer).expanduser() if args.tokenizer else folder / TOKENIZER
    if not tokenizer_file.is_file():
        raise CommandError(f"no tokenizer at {tokenizer_file}: pass --tokenizer")
    tokenizer = load_tokenizer(tokenizer_file)
    _check_vocabulary(model, tokenizer.vocab_size, tokenizer_file, file)
    unknown = unknown_chars(tokenizer, args.prompt)
    if unknown:  # said, not silently mangled; the model still continues the prompt
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        print(
            f"binedu generate: warning: the prompt holds {len(unknown)} character(s) the tokenizer {tokenizer_file} "
            f"does not know, read as the unknown token: {shown}",
            file=sys.stderr,
        )
    text = generate(
        model, args.prompt, tokenizer, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
        top_k=args.top_k, seed=args.seed,
    )  # fmt: skip
    _say(text)
    return 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "pack": cmd_pack,
    "report": cmd_report,
    "generate": cmd_generate,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 1 bad data or input, 2 bad arguments)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the message (or --help, --version)
        return int(exc.code or 0)
    try:
        check_args(args)
        with _terminate_as_interrupt():
            return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"binedu {args.command}: error: {exc} (see binedu {args.command} --help)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"binedu {args.command}: interrupted (a run continues with --resume)", file=sys.stderr)
        return 130
    except Exception as exc:
        message = _user_error(exc)
        if message is None:
            raise  # a bug in binedu: the traceback helps to fix it
        print(f"binedu {args.command}: error: {message}", file=sys.stderr)
        return 1


def _user_error(exc: Exception) -> str | None:
    """One line for an error caused by the data, the files or the machine (exit status
    1); ``None`` for anything else, a bug in binedu."""
    from PIL import Image
    from safetensors import SafetensorError

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"no space left to write {exc.filename or 'a file'} ({exc.strerror}): free some space or choose another --out"
    if isinstance(exc, OSError) and exc.errno == errno.EROFS:
        return f"cannot write {exc.filename or 'a file'}: read-only file system; choose another --out"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return " ".join(f"{where}{exc.strerror or exc}".split())
    if isinstance(exc, Image.DecompressionBombError):
        return f"an image is too large to decode safely ({exc})"
    if isinstance(exc, (SafetensorError, ValueError)):
        return " ".join(str(exc).split())  # one line, whatever the message
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or _allocator_failed(exc):
        return f"out of memory ({' '.join(str(exc).split())[:200]}): use a smaller --batch-size or config"
    return None


_ALLOCATOR_MESSAGES = ("DefaultCPUAllocator: not enough memory", "DefaultCPUAllocator: can't allocate memory")


def _allocator_failed(exc: Exception) -> bool:
    """A CPU out-of-memory: PyTorch raises a plain ``RuntimeError`` from its allocator
    (only CUDA has ``torch.OutOfMemoryError``)."""
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in _ALLOCATOR_MESSAGES)


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a job scheduler stopping the run) unwinds like Ctrl-C, so the atomic
    writes in progress remove their temporary files (:mod:`binedu.io`)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave the handler alone
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
