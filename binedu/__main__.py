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
``--resume`` continues from the checkpoint there. Progress and one final ``key=value``
metrics line go to stdout; bad arguments or data end with exit status 2 or 1 and a
one-line message on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .config import IMAGE_CONFIGS, LANGUAGE_CONFIGS
from .history import History
from .io import atomic_write_bytes
from .metrics import evaluate, task_of
from .train import fit, format_record, recipe, resolve_device
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


class CommandError(ValueError):
    """A request the command line cannot carry out; its message is shown as is."""


# ---------------------------------------------------------------- arguments


def build_parser() -> argparse.ArgumentParser:
    """The ``binedu`` argument parser (all subcommands)."""
    parser = argparse.ArgumentParser(
        prog="binedu", description="Binary normalized neural networks (1-bit parameters): train, evaluate, pack."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train an image or language model", description="Train a model.")
    train.add_argument("--model", choices=("image", "language"), default="image", help="which paper model (default image)")
    train.add_argument("--config", default="tiny", help="tiny | paper-3x3 | paper-5x5 | paper-3x3-as-printed | paper-5x5-as-printed (image), tiny | paper-small | paper-large (language)")
    train.add_argument("--float", dest="float_model", action="store_true", help="the float32 counterpart instead of the binary model")
    train.add_argument("--no-normalize", action="store_true", help="remove the normalization (the ablation that fails)")
    train.add_argument("--data", help="digits | food101 | folder | pydoc | wikitext-2 | wikitext-103 (default: digits/pydoc, food101/wikitext-103 for paper configs)")
    train.add_argument("--data-root", help="folder of the data set (food101, folder, wikitext)")
    train.add_argument("--tokenizer", help="char | wordpiece | path to vocab.txt / tokenizer .json (language; default char, wordpiece for paper configs)")
    train.add_argument("--vocab-size", type=int, help="tokenizer size (wordpiece: number of pieces)")
    train.add_argument("--image-size", type=int, help="image side in pixels (default: the config's)")
    train.add_argument("--max-len", type=int, help="sequence length (default: the config's)")
    train.add_argument("--limit", type=int, help="use at most this many examples per split")
    train.add_argument("--val-fraction", type=float, help="validation share where the data set has no official split")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float, help="peak learning rate")
    train.add_argument("--optimizer", choices=("adam", "adamw"))
    train.add_argument("--weight-decay", type=float)
    train.add_argument("--warmup-steps", type=int)
    train.add_argument("--decay-steps", type=int, help="cosine decay length (0: none; default: the recipe's, else the rest of the run)")
    train.add_argument("--min-lr-ratio", type=float, help="learning rate after the decay, as a fraction of --lr")
    train.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    train.add_argument("--record-every", type=int, default=10, help="steps between bit-flip and gradient-norm records")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (auto: a GPU when present)")
    train.add_argument("--num-workers", type=int, help="data-loading processes (default 0 on CPU, 8 on GPU)")
    train.add_argument("--out", help="run folder (default runs/<model>-<config>-<variant>)")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    train.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints within an epoch (default 1000)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    ev = sub.add_parser("evaluate", help="loss, accuracy (and perplexity) on the validation set")
    ev.add_argument("path", help="run folder, training checkpoint or packed file")
    ev.add_argument("--data", help="data set (default: the one the run trained on)")
    ev.add_argument("--data-root")
    ev.add_argument("--limit", type=int)
    ev.add_argument("--batch-size", type=int, default=64)
    ev.add_argument("--device", default="auto")

    pack = sub.add_parser("pack", help="training checkpoint -> 1-bit packed file")
    pack.add_argument("path", help="run folder or training checkpoint")
    pack.add_argument("-o", "--output", help=f"packed file (default: {PACKED} next to the checkpoint)")

    report = sub.add_parser("report", help="memory report of a configuration or a saved model")
    report.add_argument("path", nargs="?", help="run folder, training checkpoint or packed file")
    report.add_argument("--model", choices=("image", "language"), default="image")
    report.add_argument("--config", default="tiny")
    report.add_argument("--float", dest="float_model", action="store_true")

    gen = sub.add_parser("generate", help="text from a trained language model")
    gen.add_argument("path", help="run folder, training checkpoint or packed file")
    gen.add_argument("--prompt", required=True)
    gen.add_argument("--tokenizer", help=f"tokenizer file (default: {TOKENIZER} of the run)")
    gen.add_argument("--max-new-tokens", type=int, default=100)
    gen.add_argument("--temperature", type=float, default=0.8)
    gen.add_argument("--top-k", type=int)
    gen.add_argument("--seed", type=int)
    gen.add_argument("--device", default="cpu")
    return parser


# ---------------------------------------------------------------- helpers


def _say(line: str) -> None:
    print(line, flush=True)


def _metrics_line(prefix: str, metrics: dict[str, Any]) -> str:
    values = " ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items() if k != "partial"
    )
    return f"{prefix}: {values}"


def _run_folder(path: str | Path) -> tuple[Path, Path]:
    """(run folder, model file) for a run folder or a file inside one."""
    path = Path(path).expanduser()
    if path.is_dir():
        for name in (CHECKPOINT, PACKED):
            if (path / name).is_file():
                return path, path / name
        raise CommandError(f"{path} holds neither {CHECKPOINT} nor {PACKED}")
    if not path.is_file():
        raise CommandError(f"no such file or folder: {path}")
    return path.parent, path


def _load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, Path, Path]:
    """A trained model (training or packed) from a run folder or file."""
    folder, file = _run_folder(path)
    if is_training_checkpoint(file):
        return load_trained_model(file, device), folder, file
    from .checkpoint import load_packed

    return load_packed(file).to(device), folder, file


def _run_info(folder: Path) -> dict[str, Any]:
    run = folder / RUN
    if not run.is_file():
        return {}
    try:
        return json.loads(run.read_text())
    except json.JSONDecodeError as exc:
        raise CommandError(f"{run} is not valid JSON ({exc})") from exc


def _load_data(spec: dict[str, Any]) -> Any:
    """Image or text data from a data spec dict (as stored in run.json)."""
    from .data import image_data, text_data

    spec = dict(spec)
    kind = spec.pop("kind")
    return image_data(**spec) if kind == "image" else text_data(**spec)


def _data_spec(args: argparse.Namespace, kind: str, config: Any) -> dict[str, Any]:
    paper = args.config.startswith("paper")
    name = args.data or (PAPER_DATA if paper else DEFAULT_DATA)[kind]
    allowed = IMAGE_DATA if kind == "image" else TEXT_DATA
    if name not in allowed:
        raise CommandError(f"--data {name!r} does not fit a {kind} model; use one of {', '.join(allowed)}")
    spec: dict[str, Any] = {"kind": kind, "name": name, "root": args.data_root, "seed": args.seed, "limit": args.limit}
    if args.val_fraction is not None:
        spec["val_fraction"] = args.val_fraction
    if kind == "image":
        spec["image_size"] = args.image_size or config.image_size
    else:
        spec["tokenizer"] = args.tokenizer or ("wordpiece" if paper else "char")
        spec["max_len"] = args.max_len or config.max_len
        spec["vocab_size"] = args.vocab_size
    return spec


def _variant(args: argparse.Namespace) -> str:
    return ("float" if args.float_model else "binary") + ("-nonorm" if args.no_normalize else "")


# ---------------------------------------------------------------- commands


def plan_train(args: argparse.Namespace) -> dict[str, Any]:
    """What ``binedu train`` will do, before any data is read: the data spec, the
    training settings (the config's recipe, then the command-line overrides) and the run
    folder."""
    kind = args.model
    table = IMAGE_CONFIGS if kind == "image" else LANGUAGE_CONFIGS
    if args.config not in table:
        raise CommandError(f"unknown {kind} config {args.config!r}; known: {', '.join(table)}")
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
    checkpoint = out / CHECKPOINT
    if checkpoint.exists() and not args.resume:
        raise CommandError(f"{checkpoint} exists: pass --resume to continue it, or choose another --out")
    if args.model == "language" and args.resume and (out / TOKENIZER).is_file():
        spec["tokenizer"] = str(out / TOKENIZER)  # continue with the vocabulary the run started with
    data = _load_data(spec)
    overrides: dict[str, Any] = {"binary": not args.float_model, "normalize": not args.no_normalize}
    if args.model == "image":
        overrides |= dict(in_channels=data.in_channels, num_classes=data.num_classes, image_size=data.image_size)
        cls: Any = ImageClassifier
    else:
        overrides |= dict(vocab_size=data.vocab_size, max_len=data.max_len)
        cls = LanguageModel
    torch.manual_seed(args.seed)
    model = cls.from_config(args.config, **overrides)

    out.mkdir(parents=True, exist_ok=True)
    if args.model == "language":
        data.tokenizer.save(out / TOKENIZER)
        spec["tokenizer"] = str((out / TOKENIZER).resolve())  # evaluation reuses the same vocabulary
    run = {"model": model.config.to_dict(), "config_name": args.config, "train": settings, "data": spec}
    atomic_write_bytes(out / RUN, json.dumps(run, indent=1).encode())

    _say(
        f"model: {cls.__name__} {args.config} ({_variant(args)}), {model.num_parameters():,} parameters; "
        f"data: {data.name} {len(data.train):,} train / {len(data.val):,} val; device: {device}"
    )
    _say("training: " + " ".join(f"{k}={v}" for k, v in settings.items()) + f" seed={args.seed} out={out}")
    num_workers = args.num_workers if args.num_workers is not None else (8 if device.type == "cuda" else 0)
    history = fit(
        model, data.train, data.val, **settings, seed=args.seed, max_steps=args.max_steps, pad_id=0,
        record_every=args.record_every, progress=not args.no_progress, checkpoint=checkpoint,
        checkpoint_every=args.checkpoint_every, resume=args.resume, device=device, num_workers=num_workers, on_epoch=lambda r: _say(format_record(r)),
    )  # fmt: skip
    history.save(out / HISTORY)
    _say(_final_line(history))
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
    if args.data is not None:
        kind = "language" if args.data in TEXT_DATA else "image"
        spec = {"kind": kind, "name": args.data, "root": args.data_root} | (
            {"tokenizer": str(folder / TOKENIZER), "max_len": model.config.max_len} if kind == "language" else {}
        )
    if spec is None:
        raise CommandError(f"{folder} has no {RUN} saying which data the model trained on: pass --data")
    if spec["kind"] != task_of(model):
        raise CommandError(f"a {task_of(model)} model cannot be evaluated on {spec['name']!r}")
    spec = spec | {k: v for k, v in (("root", args.data_root), ("limit", args.limit)) if v is not None}
    data = _load_data(spec)
    metrics = evaluate(model, data.val, batch_size=args.batch_size, pad_id=0, device=device)
    _say(f"evaluate: {file} on {data.name} validation ({len(data.val):,} examples)")
    _say(_metrics_line("final", metrics))
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    from .checkpoint import save_packed
    from .packed import pack_model

    folder, file = _run_folder(args.path)
    if not is_training_checkpoint(file):
        raise CommandError(f"{file} is not a training checkpoint (already packed?)")
    model = load_trained_model(file)
    if not getattr(model.config, "binary", False):
        raise CommandError("only binary models can be packed to 1 bit; this one was trained with --float")
    packed = pack_model(model)
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
    from .generate import generate

    model, folder, _ = _load_model(args.path, resolve_device(args.device))
    if task_of(model) != "language":
        raise CommandError("generate needs a language model; this one classifies images")
    tokenizer_file = Path(args.tokenizer).expanduser() if args.tokenizer else folder / TOKENIZER
    if not tokenizer_file.is_file():
        raise CommandError(f"no tokenizer at {tokenizer_file}: pass --tokenizer")
    tokenizer = load_tokenizer(tokenizer_file)
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
    except SystemExit as exc:  # argparse already printed usage and the message
        return int(exc.code or 0)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        print(f"binedu {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"binedu {args.command}: interrupted (a run continues with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
