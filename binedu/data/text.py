"""Text data for the language model (Alg. 8): Python's own documentation offline, and
WikiText-2/103 raw, the paper's corpus.

A corpus is a list of paragraphs. Each paragraph is cut into sentences and the sentences
of one paragraph are packed, whole, into examples of at most ``max_len - 1`` tokens (a
sentence longer than that is cut). An example is ``[BOS] tokens [EOS]`` (EOS only where
the paragraph ends), padded with ``pad_id`` (0) to ``max_len + 1`` ids: the model reads
``seq[:-1]`` and predicts ``seq[1:]``, and targets equal to ``pad_id`` are ignored, so
padding never counts in loss, accuracy or perplexity.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from .errors import DataError, require_dir, require_file
from .split import check_fraction, check_limit, check_splits, random_split
from .token_cache import cached_examples
from .token_dataset import TokenDataset
from .tokenizers import CharTokenizer, Tokenizer, WordPieceTokenizer, load_tokenizer

__all__ = [
    "TextData",
    "TokenDataset",
    "text_data",
    "build_examples",
    "split_sentences",
    "pydoc_paragraphs",
    "wikitext_paragraphs",
    "read_wikitext",
    "TEXT_DATASETS",
]

TEXT_DATASETS = ("pydoc", "pydoc-installed", "wikitext-2", "wikitext-103")
WORDPIECE_SIZE = {"pydoc": 2000, "pydoc-installed": 2000, "wikitext-2": 30522, "wikitext-103": 30522}
# The default corpus, frozen: CPython 3.11.7's pydoc_data.topics (PSF license, see
# files/README and files/PYTHON-LICENSE.txt) as JSON, so that every Python gives the same
# examples; the installed module differs between versions (2,078 paragraphs on 3.11, 2,192
# on 3.12, 2,257 on 3.13).
PYDOC_SNAPSHOT = Path(__file__).parent / "files" / "pydoc_topics_3.11.7.json.gz"
PYDOC_SNAPSHOT_SHA256 = "4717ccc51e2e7bd1eed2feddb0bcb5a7da19a1a923fd2f258cf81e4285e31683"  # of the JSON
WIKITEXT_HINT = (
    "Expected the raw WikiText files wiki.train.raw and wiki.valid.raw (from wikitext-2-raw-v1.zip or "
    "wikitext-103-raw-v1.zip). Get them with binedu.data.download('{name}', DIR)."
)

# A sentence ends at . ! or ? followed by white space and something that starts one.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_WIKI_MARKUP = re.compile(r" @(.)@ ")  # "1 @,@ 000" -> "1,000", "well @-@ known" -> "well-known"


@dataclass
class TextData:
    """Train and validation sets of one corpus with the tokenizer that encoded them."""

    train: Dataset
    val: Dataset
    tokenizer: Tokenizer
    max_len: int
    name: str
    vocab_size: int


def split_sentences(paragraph: str) -> list[str]:
    """``paragraph`` cut after each sentence end; each piece keeps the white space that
    follows it, so ``"".join(split_sentences(p)) == p``."""
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(paragraph):
        pieces.append(paragraph[start : match.end()])
        start = match.end()
    pieces.append(paragraph[start:])
    return [p for p in pieces if p]


def _pack(sentences: Iterable[Sequence[int]], budget: int) -> Iterator[list[int]]:
    """Consecutive sentences joined into pieces of at most ``budget`` ids; a sentence
    longer than ``budget`` is cut into ``budget``-id pieces, the rest starting the next.

    Linear time: every id is copied once (a long sentence is cut by moving a start
    index, never by re-slicing what is left of it, which made a 1.6M-character line take
    23 s instead of a fraction of one)."""
    current: list[int] = []
    for ids in sentences:
        if len(current) + len(ids) <= budget:
            current += ids
            continue
        if current:
            yield current
        start = 0
        while len(ids) - start > budget:
            yield list(ids[start : start + budget])
            start += budget
        current = list(ids[start:])
    if current:
        yield current


def build_examples(
    paragraphs: Iterable[str], tokenizer: Tokenizer, max_len: int, limit: int | None = None
) -> TokenDataset:
    """Encode ``paragraphs`` into at most ``limit`` examples of ``max_len + 1`` ids
    (see the module docstring for the layout)."""
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 2:
        raise ValueError(f"max_len must be an integer >= 2, got {max_len!r}")
    if tokenizer.pad_id != 0:
        raise ValueError(f"the tokenizer's pad_id must be 0, got {tokenizer.pad_id}")
    chunks: list[np.ndarray] = []
    lengths: list[int] = []
    dtype = np.uint16 if tokenizer.vocab_size <= 2**16 else np.int32
    for paragraph in paragraphs:
        pieces = list(_pack((tokenizer.encode(s) for s in split_sentences(paragraph)), max_len - 1))
        for k, piece in enumerate(pieces):
            seq = [tokenizer.bos_id, *piece] + ([tokenizer.eos_id] if k == len(pieces) - 1 else [])
            chunks.append(np.asarray(seq, dtype=dtype))
            lengths.append(len(seq))
            if limit is not None and len(lengths) >= limit:
                break
        if limit is not None and len(lengths) >= limit:
            break
    ids = np.concatenate(chunks) if chunks else np.zeros(0, dtype=dtype)
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    return TokenDataset(ids, offsets, max_len + 1, tokenizer.pad_id)


def _paragraphs_of(text: str) -> list[str]:
    """Blocks separated by blank lines, keeping the indentation of code lines."""
    return [p.strip("\n").rstrip() for p in re.split(r"\n[ \t]*\n", text) if p.strip()]


def pydoc_topics_snapshot() -> dict[str, str]:
    """CPython 3.11.7's ``pydoc_data.topics`` as shipped with binedu (checked against its hash)."""
    import gzip
    import hashlib
    import json

    raw = gzip.decompress(PYDOC_SNAPSHOT.read_bytes())
    if hashlib.sha256(raw).hexdigest() != PYDOC_SNAPSHOT_SHA256:
        raise DataError(f"{PYDOC_SNAPSHOT} is damaged (its hash is not the shipped one): reinstall binedu")
    return json.loads(raw.decode("utf-8"))


def pydoc_paragraphs(installed: bool = False) -> list[str]:
    """The paragraphs of the documentation text of CPython (``pydoc_data.topics``, what
    ``help("if")`` shows), in topic order, each paragraph once.

    Default: the frozen snapshot of Python 3.11.7 that ships with binedu, 2,078
    paragraphs, 369,061 characters of English, the same on every Python version.
    ``installed=True`` reads this Python's own module instead (2,192 paragraphs on 3.12,
    2,257 on 3.13)."""
    if not installed:
        topics = pydoc_topics_snapshot()
    else:
        try:
            from pydoc_data.topics import topics
        except ImportError as err:  # part of CPython's standard library, but a trimmed build may leave it out
            raise DataError(
                "name='pydoc-installed' needs Python's pydoc_data module (pydoc_data/topics.py in the standard "
                "library), which this Python lacks; use name='pydoc', the copy shipped with binedu"
            ) from err
    seen: dict[str, None] = {}
    for key in sorted(topics):
        for paragraph in _paragraphs_of(topics[key]):
            seen.setdefault(paragraph, None)
    return list(seen)


def wikitext_paragraphs(path: str | Path, limit: int | None = None) -> list[str]:
    """The paragraphs (lines) of a raw WikiText file, at most ``limit``.

    Heading lines (``= Title =``, ``= = Section = =``) are markup, not sentences, and
    are left out; WikiText's number and hyphen markup (``1 @,@ 000``, ``well @-@
    known``) is undone.
    """
    return read_wikitext(path, limit)[0]


def read_wikitext(path: str | Path, limit: int | None = None) -> tuple[list[str], bytes]:
    """:func:`wikitext_paragraphs` and the SHA-256 digest of the bytes read to make them
    (the token cache's key: what was read, not what the file holds later)."""
    out: list[str] = []
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            digest.update(raw)
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as err:
                raise DataError(
                    f"{path} line {number} is not UTF-8 text ({err.reason} at byte {err.start} of the line); "
                    "WikiText raw files are UTF-8"
                ) from None
            if not line or (line.startswith("=") and line.endswith("=")):
                continue
            out.append(_WIKI_MARKUP.sub(r"\1", line))
            if limit is not None and len(out) >= limit:
                break
    return out, digest.digest()


def _wikitext_files(root: str | Path | None, name: str) -> tuple[Path, Path]:
    hint = WIKITEXT_HINT.format(name=name)
    root = require_dir(root, f"text_data({name!r})", hint)
    if not (root / "wiki.train.raw").exists():
        if (root / "wiki.train.tokens").exists():
            raise DataError(
                f"{root} holds the tokenized WikiText (wiki.train.tokens, with <unk>); binedu needs the raw "
                f"version: wiki.train.raw, wiki.valid.raw. {hint}"
            )
        inner = root / f"{name}-raw"
        if (inner / "wiki.train.raw").exists():
            raise DataError(f"{root} holds a {name}-raw/ folder: pass root={inner}")
    train, valid = (require_file(root / f"wiki.{s}.raw", f"WikiText ({name})", hint) for s in ("train", "valid"))
    return train, valid


def _tokenizer(spec: str | Path | Tokenizer, texts: Sequence[str], vocab_size: int | None, default: int) -> Tokenizer:
    """The tokenizer ``spec`` names: fitted on ``texts`` for "char" and "wordpiece"."""
    if isinstance(spec, Tokenizer):
        tok = spec
    elif spec == "char":
        return CharTokenizer.fit(texts, max_size=vocab_size)
    elif spec == "wordpiece":
        return WordPieceTokenizer.train(texts, vocab_size or default)
    elif isinstance(spec, str | Path) and Path(spec).is_file():
        tok = load_tokenizer(spec)
    else:
        raise DataError(
            f"unknown tokenizer {spec!r}: use 'char', 'wordpiece', the path of a vocab.txt or "
            "tokenizer .json file, or a Tokenizer object"
        )
    if vocab_size is not None and vocab_size != tok.vocab_size:
        raise DataError(f"vocab_size={vocab_size} but the given tokenizer has {tok.vocab_size} ids")
    return tok


def text_data(
    name: str = "pydoc",
    root: str | Path | None = None,
    tokenizer: str | Path | Tokenizer = "char",
    max_len: int = 64,
    val_fraction: float = 0.05,
    seed: int = 0,
    limit: int | None = None,
    vocab_size: int | None = None,
    cache_dir: str | Path | None = None,
) -> TextData:
    """Load a language-modeling corpus as padded examples of ``max_len + 1`` ids.

    - ``"pydoc"``: Python's documentation text, the frozen copy of CPython 3.11.7's that
      ships with binedu (the same examples on every Python); a seeded split of its
      paragraphs, ``val_fraction`` of them for validation. ``"pydoc-installed"``: the same
      from this Python's ``pydoc_data`` (it changes with the Python version).
    - ``"wikitext-2"``, ``"wikitext-103"``: ``root`` holds ``wiki.train.raw`` and
      ``wiki.valid.raw``; train from the first, validation from the second (the official
      split; ``val_fraction`` is not used). One example per paragraph, cut at sentence
      ends when longer than ``max_len - 1`` tokens.

    ``tokenizer``: ``"char"`` (default), ``"wordpiece"`` (trained on the training text,
    ``vocab_size`` pieces: 30,522 for WikiText as in the paper, 2,000 for pydoc), a path
    to a BERT ``vocab.txt`` or a saved tokenizer, or a Tokenizer. For ``"char"``,
    ``vocab_size`` caps the alphabet to the most frequent characters.
    ``limit`` keeps at most that many examples per split (and reads and fits the
    tokenizer on no more paragraphs than that). ``cache_dir`` (WikiText): keep the
    tokenized examples there, memory-mapped, so later runs do not tokenize again
    (:mod:`binedu.data.token_cache`).
    """
    check_fraction(val_fraction)
    check_limit(limit)
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 2:
        raise ValueError(f"max_len must be an integer >= 2, got {max_len!r}")
    if name in ("pydoc", "pydoc-installed"):
        paragraphs = pydoc_paragraphs(installed=name == "pydoc-installed")
        train_idx, val_idx = random_split(len(paragraphs), val_fraction, seed)
        check_splits(
            name, len(train_idx), len(val_idx), hint=f"val_fraction={val_fraction} leaves no paragraph for it."
        )
        rng = np.random.default_rng(seed)
        train_p = [paragraphs[i] for i in rng.permutation(train_idx)][:limit]
        val_p = [paragraphs[i] for i in rng.permutation(val_idx)][:limit]
    elif name in ("wikitext-2", "wikitext-103"):
        train_file, val_file = _wikitext_files(root, name)
        (train_p, train_read), (val_p, val_read) = read_wikitext(train_file, limit), read_wikitext(val_file, limit)
        for file, paragraphs in ((train_file, train_p), (val_file, val_p)):
            if not paragraphs:  # found now, not after the first epoch
                raise DataError(f"{file} holds no text paragraphs: its split would be empty")
    else:
        raise DataError(f"unknown text data set {name!r}; known: {list(TEXT_DATASETS)}")
    tok = _tokenizer(tokenizer, train_p, vocab_size, WORDPIECE_SIZE[name])
    if cache_dir is not None and name.startswith("wikitext"):
        train, val = (
            cached_examples(cache_dir, [read], tok, max_len, limit, partial(build_examples, p, tok, max_len, limit))
            for read, p in ((train_read, train_p), (val_read, val_p))
        )
    else:
        train = build_examples(train_p, tok, max_len, limit)
        val = build_examples(val_p, tok, max_len, limit)
    check_splits(name, len(train), len(val), hint=f"val_fraction={val_fraction} leaves no paragraph for it.")
    return TextData(train, val, tok, max_len, name, tok.vocab_size)
