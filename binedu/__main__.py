"""Command line: ``python -m binedu`` (or ``binedu``) train | evaluate | pack | report | generate | course.

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
data (its order and identity), the precision and the optimizer are the checkpoint's, and
the whole checkpoint; with more ``--epochs`` it trains longer (the cosine restarts), with
its epochs done it says there is nothing left to do. One trainer at a time holds a run
folder (a lock); a second is refused. Progress and one final
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
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, NoReturn

import torch

from . import __version__, distributed
from .config import IMAGE_CONFIGS, LANGUAGE_CONFIGS
from .data.image_sets import MAX_IMAGE_SIZE
from .data_identity import data_id
from .history import History
from .io import atomic_write_bytes
from .metrics import evaluate, task_of
from .precision import PRECISIONS
from .run_lock import RunFolderLock
from .tensor_file import file_kind, parse_json
from .train import MAX_SEED, check_hyperparameters, fit, format_record, recipe, resolve_device
from .train_checkpoint import is_training_checkpoint, load_trained_model

__all__ = ["main", "build_parser", "plan_train"]

CHECKPOINT = "checkpoint.safetensors"
HISTORY = "history.json"
RUN = "run.json"
TOKENIZER = "tokenizer.json"
PACKED = "packed.safetensors"
IMAGE_DATA = ("digits", "digits-hard", "food101", "folder")
TEXT_DATA = ("pydoc", "pydoc-installed", "wikitext-2", "wikitext-103")
DEFAULT_DATA = {"image": "digits", "language": "pydoc"}
CONFIG_DATA = {"tiny-28": "digits-hard"}  # a config made for one offline data set trains on it by default
NATIVE_SIZE = {"digits": 8, "digits-hard": 28}  # pixels of the offline images (digits-hard: at least 20)
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
  binedu course ~/binedu-course                      # copy the course's notebooks there

  # the paper's runs, one command each (a GPU is used when present)
  binedu train --model image --config paper-3x3 --data food101 --data-root ~/data/food-101
  binedu train --model language --config paper-small --data wikitext-103 --data-root ~/data/wikitext-103-raw

exit status: 0 done, 1 bad data or state (one line on stderr), 2 bad arguments
"""
CONFIGS: dict[str, dict[str, Any]] = {"image": IMAGE_CONFIGS, "language": LANGUAGE_CONFIGS}


class CommandError(ValueError):
    """A request the command line cannot carry out (bad data or state, exit status 1);
    its message is shown as is."""


class UsageError(CommandError):
    """Arguments that parse but cannot work together (exit status 2, like argparse's)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``binedu train: error: argument --epochs: ...``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Examples kept as written; each option's help ends with its default (options
    whose default depends on others say so in words)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action) or ""


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
            raise argparse.ArgumentTypeError(f"must be <= {high if kind is int else format(high, 'g')}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


POSITIVE = _number(int, 1)
COUNT = _number(int, 0)
SEED = _number(int, 0, 2**63 - 1)
TRAIN_SEED = _number(int, 0, MAX_SEED)  # the data order's generator takes seed * 1_000_003 + epoch


def _recipe_default(key: str, unset: str = "0") -> str:
    """The recipe's values of one setting for every config, grouped:
    ``default: image: paper-* 1000, tiny/tiny-28 15; language: paper-* 100, tiny 1``."""
    parts = []
    names: dict[str, list[str]] = {"image": list(IMAGE_CONFIGS), "language": list(LANGUAGE_CONFIGS)}
    for kind, table in names.items():
        groups: dict[str, list[str]] = {}
        for name in table:
            value = recipe(kind, name).get(key)
            groups.setdefault(unset if value is None else f"{value:g}" if isinstance(value, float) else str(value), []).append(name)
        papers = [n for n in table if n.startswith("paper")]
        if len(groups) == 1:  # every config of the kind
            parts.append(f"{kind} {next(iter(groups))}")
            continue
        named = []
        for value, members in groups.items():
            if set(papers) <= set(members):
                members = ["paper-*"] + [n for n in members if n not in papers]
            named.append(f"{'/'.join(members)} {value}")
        parts.append(f"{kind}: " + ", ".join(named))
    return "default: " + "; ".join(parts)


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
    train.add_argument("--data", help="digits | digits-hard | food101 | folder | pydoc | wikitext-2 | wikitext-103 (default: digits/pydoc; digits-hard for tiny-28; food101/wikitext-103 for paper configs)")
    train.add_argument("--data-root", help="folder of the data set (food101, folder, wikitext; default: none)")
    train.add_argument("--tokenizer", help="char | wordpiece | path to vocab.txt / tokenizer .json (language; default char, wordpiece for paper configs)")
    train.add_argument("--vocab-size", type=_number(int, 2), help="tokenizer size (wordpiece: number of pieces; default: the tokenizer's)")
    train.add_argument("--image-size", type=_number(int, 1, MAX_IMAGE_SIZE), help=f"image side in pixels, at most {MAX_IMAGE_SIZE} (default: the config's)")
    train.add_argument("--max-len", type=_number(int, 2), help="sequence length, at most the config's (default: the config's)")
    train.add_argument("--limit", type=POSITIVE, help="use at most this many examples per split (default: all)")
    train.add_argument("--val-fraction", type=_number(float, 0, 1, above=True), help="validation share where the data set has no official split (default: the data set's)")
    train.add_argument("--epochs", type=POSITIVE, help=f"passes over the training set; more than a resumed run planned: train longer, the cosine restarts ({_recipe_default('epochs')})")
    train.add_argument("--batch-size", type=POSITIVE, help=f"examples per step ({_recipe_default('batch_size')})")
    train.add_argument("--lr", type=_number(float, 0, 1e6, above=True), help=f"peak learning rate ({_recipe_default('lr')})")
    train.add_argument("--optimizer", choices=("adam", "adamw"), help=_recipe_default("optimizer"))
    train.add_argument("--weight-decay", type=_number(float, 0), help=_recipe_default("weight_decay"))
    train.add_argument("--warmup-steps", type=COUNT, help=f"linear warmup length ({_recipe_default('warmup_steps')})")
    train.add_argument("--decay-steps", type=COUNT, help=f"cosine decay length, 0: none ({_recipe_default('decay_steps', 'the rest of the run')})")
    train.add_argument("--min-lr-ratio", type=_number(float, 0, 1), help=f"learning rate after the decay, as a fraction of --lr ({_recipe_default('min_lr_ratio')})")
    train.add_argument("--max-steps", type=POSITIVE, help="stop after this many optimizer steps (default: no limit)")
    train.add_argument("--record-every", type=POSITIVE, default=10, help="steps between bit-flip and gradient-norm records")
    train.add_argument("--seed", type=TRAIN_SEED, default=0, help=f"data order, initialization and dropout (0 to {MAX_SEED})")
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

    from .course.copy import add_arguments as add_course_arguments

    add_course_arguments(command(
        "course", "copy the course's notebooks into a folder",
        "Copy the course's notebooks into a folder and say how to open them.\n"
        "Notebooks there that differ from the course (your work) are never replaced without --force.",
    ))  # fmt: skip
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
        if args.model == "image":
            _check_pairing(args.config, name or CONFIG_DATA.get(args.config, DEFAULT_DATA["image"]), config.image_size, args.image_size)
    if args.command == "pack" and args.output is not None:
        kind = _kind_of(Path(args.output).expanduser())
        if kind == "a folder":
            raise UsageError(f"argument -o/--output: {args.output} is a folder; give the packed file's name")
        if kind not in (None, "a file"):
            raise UsageError(f"argument -o/--output: {args.output} is {kind}, not a file: it will not be replaced")


def _check_pairing(config: str, data: str, config_size: int, image_size: int | None) -> None:
    """An offline image data set and a config made for another image size do not train
    together silently (--config tiny-28 once trained on 8x8 digits scaled up to 28x28)."""
    if data not in NATIVE_SIZE or config.startswith("paper"):
        return
    size = config_size if image_size is None else image_size
    if data == "digits" and size != NATIVE_SIZE[data] and image_size is None:
        raise UsageError(
            f"argument --data: the digits are 8x8 images but --config {config} is made for {size}x{size}: "
            "use --data digits-hard (28x28), or pass --image-size to scale the digits up on purpose"
        )
    if data == "digits-hard" and size < 20:
        raise UsageError(
            f"argument --data: digits-hard images are 28x28 (at least 20 pixels) but --config {config} uses {size}x{size}: "
            "use --config tiny-28"
        )


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
    config: Any = model.config  # a language model's, training or packed
    size = config.vocab_size
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
    name = args.data or CONFIG_DATA.get(args.config) or (PAPER_DATA if paper else DEFAULT_DATA)[kind]
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
    """``binedu train``: every argument is checked, then the run folder is locked for the
    whole command (:mod:`binedu.run_lock`; under torchrun by rank 0) before anything is
    read or written."""
    plan = plan_train(args)
    settings = plan["train"]
    try:
        check_hyperparameters(
            settings["lr"], settings.get("weight_decay", 0.0), settings.get("min_lr_ratio", 0.0),
            settings["warmup_steps"], settings["decay_steps"], args.checkpoint_every,
        )  # fmt: skip
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    device = resolve_device(args.device)
    procs = distributed.setup(device)  # under torchrun: join the other processes
    with RunFolderLock(plan["out"]) if procs.is_main else nullcontext():
        return _train(args, plan, device, procs)


def _train(args: argparse.Namespace, plan: dict[str, Any], device: torch.device, procs: distributed.Group) -> int:
    from .image_model import ImageClassifier
    from .language_model import LanguageModel

    spec, settings, out = plan["data"], plan["train"], plan["out"]
    say = _say if procs.is_main else lambda line: None  # only rank 0 prints and writes
    checkpoint = out / CHECKPOINT
    if checkpoint.exists() and not args.resume:
        raise CommandError(f"{checkpoint} exists: pass --resume to continue it, or choose another --out")
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

    identity = data_id(data.train)
    started = []

    def write_run_folder() -> None:
        """Called by fit once the arguments and (with --resume) the checkpoint are checked."""
        started.append(True)
        say(
            f"model: {cls.__name__} {args.config} ({_variant(args)}), {model.num_parameters():,} parameters; "
            f"data: {data.name} {len(data.train):,} train / {len(data.val):,} val; device: {device}"
        )
        shown = {k: v for k, v in settings.items() if v is not None}  # decay_steps=None: the rest of the run
        say("training: " + " ".join(f"{k}={v}" for k, v in shown.items()) + f" seed={args.seed} out={out}")
        if procs.active:
            batch = settings["batch_size"]
            say(f"torchrun: {procs.world_size} processes x batch {batch} = effective batch {procs.world_size * batch}")
        out.mkdir(parents=True, exist_ok=True)
        if args.model == "language":
            data.tokenizer.save(out / TOKENIZER)
            spec["tokenizer"] = str((out / TOKENIZER).resolve())  # evaluation reuses the same vocabulary
        run = {"model": model.config.to_dict(), "config_name": args.config, "train": settings, "data": spec}
        run |= {"precision": args.precision, "data_id": identity}  # what the run trains on, compared on resume
        atomic_write_bytes(out / RUN, json.dumps(run, indent=1).encode())

    num_workers = args.num_workers if args.num_workers is not None else (8 if device.type == "cuda" else 0)
    history = fit(
        model, data.train, data.val, **settings, seed=args.seed, max_steps=args.max_steps, pad_id=0,
        record_every=args.record_every, progress=not args.no_progress, checkpoint=checkpoint,
        checkpoint_every=args.checkpoint_every, resume=args.resume, device=device, num_workers=num_workers, on_epoch=lambda r: _say(format_record(r)), on_start=write_run_folder,
        precision=args.precision, data_id=identity,
    )  # fmt: skip
    if not started:  # resumed a run whose epochs (or --max-steps) are done
        last = history.epochs[-1] if history.epochs else {"epoch": 0, "step": 0}
        say(
            f"nothing left to do: {checkpoint} is at epoch {last['epoch']}, step {last['step']}, the end of this "
            "plan; pass a larger --epochs (or --max-steps) to train longer"
        )
    else:
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
        config: Any = model.config
        spec = {"kind": task, "name": args.data, "root": args.data_root} | (
            {"tokenizer": str(folder / TOKENIZER), "max_len": config.max_len} if task == "language" else {}
        )
    if spec is None:
        raise CommandError(f"{folder} has no {RUN} saying which data the model trained on: pass --data")
    if spec["kind"] != task:
        raise CommandError(f"{folder / RUN} names {spec['kind']} data ({spec['name']!r}) but {file} holds {_a(task)} model")
    spec = spec | {k: v for k, v in (("root", args.data_root), ("limit", args.limit)) if v is not None}
    model_len = getattr(getattr(model, "config", None), "max_len", None)
    if task == "language" and not (isinstance(spec.get("max_len"), int) and spec["max_len"] <= model_len):
        raise CommandError(
            f"{folder / RUN} asks for max_len={spec.get('max_len')!r}; the model {file} reads at most "
            f"{model_len} tokens"
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
    if not isinstance(text, str):  # a text prompt gives text back
        raise TypeError(f"generate returned {type(text).__name__}, not text")
    _say(text)
    return 0


def cmd_course(args: argparse.Namespace) -> int:
    from .course.copy import run

    return run(args)


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "pack": cmd_pack,
    "report": cmd_report,
    "generate": cmd_generate,
    "course": cmd_course,
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
    text = " ".join(str(exc).split())
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or _allocator_failed(exc):
        return f"out of memory ({text[:200]}): use a smaller --batch-size or config"
    if isinstance(exc, RuntimeError) and _peer_lost(exc, text):
        return (
            f"another process of this torchrun run stopped or cannot be reached ({text[:160]}); "
            "the run continues from its last checkpoint with --resume"
        )
    return None


def _peer_lost(exc: RuntimeError, text: str) -> bool:
    """A collective that failed because another torchrun process died (gloo or nccl)."""
    import torch.distributed as dist

    lost = getattr(dist, "DistBackendError", ()), getattr(dist, "DistNetworkError", ())
    signs = ("Connection reset by peer", "Connection closed by peer", "Broken pipe", "NCCL communicator was aborted")
    return isinstance(exc, lost) or (distributed.current().active and any(s in text for s in signs))


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
