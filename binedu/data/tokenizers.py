"""Tokenizers for the language model (Alg. 8): characters, the offline default, and
WordPiece, the paper's (30,522 tokens, BERT-style).

Both reserve id 0 for padding (``pad_id == 0``): the data sets pad with it and the
trainer ignores targets equal to it, so padding never counts in loss, accuracy or
perplexity. Both save to JSON (or WordPiece to a BERT ``vocab.txt``) atomically, never
pickled; :func:`load_tokenizer` reads either back.
"""

from __future__ import annotations

import json
import re
import unicodedata
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..io import atomic_write
from ..tensor_file import parse_json
from .errors import DataError
from .merges import learn_merges

__all__ = [
    "Tokenizer",
    "CharTokenizer",
    "WordPieceTokenizer",
    "load_tokenizer",
    "tokenizer_from_dict",
    "pre_tokenize",
    "unknown_chars",
]

UNKNOWN_CHAR = "\ufffd"  # what CharTokenizer.decode shows for the unknown id


class Tokenizer(ABC):
    """What the data sets and the trainer need from a tokenizer."""

    pad_id: int = 0
    unk_id: int
    bos_id: int
    eos_id: int

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids; every id lies in ``[0, vocab_size)``."""

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Ids of ``text``, without special tokens."""

    @abstractmethod
    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; padding, BOS and EOS are left out."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON description that :func:`load_tokenizer` reads back."""

    def save(self, path: str | Path) -> Path:
        """Write the tokenizer as JSON to ``path``, atomically. Characters are written as
        themselves (readable UTF-8), unless one cannot be: a lone surrogate (``"\\ud800"``,
        e.g. from a file name decoded with ``surrogateescape``) has no UTF-8 form, so then
        the whole file is written with JSON's ``\\uXXXX`` escapes, which load back exactly."""
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=1)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            data = json.dumps(self.to_dict(), ensure_ascii=True, indent=1).encode("ascii")
        return atomic_write(path, lambda tmp: tmp.write_bytes(data))

    def __len__(self) -> int:
        return self.vocab_size

    def _check_ids(self, ids: Iterable[int]) -> list[int]:
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"token ids out of range [0, {self.vocab_size}): {bad[:5]}")
        return ids


class CharTokenizer(Tokenizer):
    """One id per character. Ids 0-3 are padding, unknown, begin and end of sequence;
    the characters follow, in the order given (``fit`` sorts them by code point)."""

    SPECIALS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")
    unk_id, bos_id, eos_id = 1, 2, 3

    def __init__(self, chars: Sequence[str]) -> None:
        chars = list(chars)
        bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise ValueError(f"CharTokenizer needs single characters, got {bad[:5]!r}")
        if len(set(chars)) != len(chars):
            dup = [c for c, n in Counter(chars).items() if n > 1]
            raise ValueError(f"CharTokenizer characters repeat: {dup[:5]!r}")
        self.chars = chars
        self._ids = {c: i + len(self.SPECIALS) for i, c in enumerate(chars)}

    @classmethod
    def fit(cls, texts: Iterable[str], max_size: int | None = None) -> CharTokenizer:
        """The characters of ``texts``; with ``max_size``, only the most frequent ones so
        that ``vocab_size <= max_size`` (the rest encode to ``unk_id``)."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(text)
        chars = sorted(counts, key=lambda c: (-counts[c], c))
        if max_size is not None:
            if max_size <= len(cls.SPECIALS):
                raise ValueError(f"max_size must exceed the {len(cls.SPECIALS)} special ids, got {max_size}")
            chars = chars[: max_size - len(cls.SPECIALS)]
        return cls(sorted(chars))

    @property
    def vocab_size(self) -> int:
        return len(self.SPECIALS) + len(self.chars)

    def encode(self, text: str) -> list[int]:
        unk = self.unk_id
        return [self._ids.get(c, unk) for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        out = []
        n = len(self.SPECIALS)
        for i in self._check_ids(ids):
            if i >= n:
                out.append(self.chars[i - n])
            elif i == self.unk_id:
                out.append(UNKNOWN_CHAR)
        return "".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "char", "chars": self.chars}

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


# BERT's basic tokenization: runs of letters/digits are words, every other non-space
# character (punctuation, symbols, "_") is a word of its own.
_WORDS = re.compile(r"[^\W_]+|[^\w\s]|_")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")
_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]}])")
_SPACE_AFTER = re.compile(r"([(\[{$]) ")


def _strip_accents(text: str) -> str:
    """``"café" -> "cafe"``: NFD then drop combining marks, as BERT uncased does."""
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def pre_tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Split ``text`` into the words WordPiece works on, like BERT's uncased basic
    tokenizer: drop control characters, lowercase and strip accents (when
    ``lowercase``), split on white space, and make each punctuation mark a word."""
    text = _CONTROL.sub("", text)
    if lowercase:
        text = _strip_accents(text.lower())
    return _WORDS.findall(text)


class WordPieceTokenizer(Tokenizer):
    """WordPiece (BERT): words split greedily, longest vocabulary piece first; a piece
    that continues a word is written with a ``##`` prefix. A word that cannot be split
    into known pieces becomes ``[UNK]``.

    ``vocab[0]`` must be ``[PAD]`` (so ``pad_id == 0``, as in BERT's own vocab.txt);
    ``[UNK]``, ``[CLS]`` (used as begin of sequence) and ``[SEP]`` (end) must be present.
    """

    SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    max_word_chars = 100  # longer words are [UNK], as in BERT

    def __init__(self, vocab: Sequence[str], lowercase: bool = True) -> None:
        vocab = list(vocab)
        if not vocab or vocab[0] != "[PAD]":
            raise ValueError(f"WordPiece vocab must start with [PAD] (pad id 0), got {vocab[:1]!r}")
        ids: dict[str, int] = {}
        for i, tok in enumerate(vocab):
            if not tok or tok in ids:
                raise ValueError(f"WordPiece vocab entry {i} is {'empty' if not tok else f'a repeat of {tok!r}'}")
            ids[tok] = i
        missing = [t for t in ("[UNK]", "[CLS]", "[SEP]") if t not in ids]
        if missing:
            raise ValueError(f"WordPiece vocab lacks the special tokens {missing}")
        self.vocab, self.lowercase, self._ids = vocab, lowercase, ids
        self.unk_id, self.bos_id, self.eos_id = ids["[UNK]"], ids["[CLS]"], ids["[SEP]"]
        self._skip = {ids[t] for t in self.SPECIALS if t in ids} - {self.unk_id}
        self._longest = max(len(t) for t in vocab)
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 30522,
        *,
        lowercase: bool = True,
        min_frequency: int = 2,
        limit_alphabet: int = 1000,
    ) -> WordPieceTokenizer:
        """Learn a vocabulary of at most ``vocab_size`` pieces from ``texts``.

        The vocabulary starts with the special tokens, the ``limit_alphabet`` most frequent
        characters and their ``##`` forms, then grows by merging the most frequent pair of
        adjacent pieces in the word counts (BPE-style training with the ``##`` convention,
        as Hugging Face's WordPiece trainer does) until ``vocab_size`` pieces exist or no
        pair occurs ``min_frequency`` times. Deterministic: ties go to the smaller pair.
        """
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(pre_tokenize(text, lowercase))
        if not counts:
            raise DataError("WordPiece training text holds no words")
        chars: Counter[str] = Counter()
        for word, n in counts.items():
            for c in word:
                chars[c] += n
        alphabet = sorted(sorted(chars, key=lambda c: (-chars[c], c))[:limit_alphabet])
        base = [*cls.SPECIALS, *alphabet, *(f"##{c}" for c in alphabet)]
        if vocab_size < len(base):
            raise ValueError(
                f"vocab_size={vocab_size} is smaller than the {len(cls.SPECIALS)} special tokens plus "
                f"{len(alphabet)} characters in two forms ({len(base)}); raise vocab_size or lower limit_alphabet"
            )
        allowed = set(alphabet)
        words = {w: n for w, n in counts.items() if set(w) <= allowed and len(w) <= cls.max_word_chars}
        pieces = learn_merges(words, vocab_size - len(base), min_frequency, known=set(base))
        return cls(base + pieces, lowercase=lowercase)

    @classmethod
    def from_vocab_file(cls, path: str | Path, lowercase: bool = True) -> WordPieceTokenizer:
        """Load a BERT ``vocab.txt`` (one piece per line, line number = id), e.g. the
        30,522-piece ``bert-base-uncased`` vocabulary the paper uses.

        Lines end at ``"\\n"`` only (a trailing ``"\\r"`` of Windows line ends is dropped):
        ``str.splitlines`` would also cut at U+2028, U+0085 and other Unicode line breaks
        that may sit inside a piece, and shift the id of every piece after it."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"WordPiece vocab file not found: {path}")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None
        vocab = [line.removesuffix("\r") for line in text.split("\n")]
        while vocab and not vocab[-1]:
            vocab.pop()
        try:
            return cls(vocab, lowercase=lowercase)
        except ValueError as err:
            raise DataError(f"{path} is not a usable WordPiece vocab.txt: {err}") from err

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def _word_ids(self, word: str) -> list[int]:
        """Greedy longest-match-first split of one word (BERT's WordPiece)."""
        ids = self._cache.get(word)
        if ids is not None:
            return ids
        ids, start, n = [], 0, len(word)
        if n > self.max_word_chars:
            start, ids = n, [self.unk_id]
        while start < n:
            prefix = "##" if start else ""
            for end in range(min(n, start + self._longest), start, -1):
                found = self._ids.get(prefix + word[start:end])
                if found is not None:
                    ids.append(found)
                    start = end
                    break
            else:
                ids = [self.unk_id]
                break
        if len(self._cache) < 1_000_000:
            self._cache[word] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        out: list[int] = []
        for word in pre_tokenize(text, self.lowercase):
            out.extend(self._word_ids(word))
        return out

    def tokens(self, ids: Iterable[int]) -> list[str]:
        """The pieces of ``ids`` as strings, for display."""
        return [self.vocab[i] for i in self._check_ids(ids)]

    def decode(self, ids: Iterable[int]) -> str:
        words: list[str] = []
        for i in self._check_ids(ids):
            if i in self._skip:
                continue
            tok = self.vocab[i]
            if tok.startswith("##") and words:
                words[-1] += tok[2:]
            else:
                words.append(tok)
        text = " ".join(words)
        return _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", text))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "wordpiece", "lowercase": self.lowercase, "vocab": self.vocab}

    def save(self, path: str | Path) -> Path:
        """JSON, or a BERT ``vocab.txt`` (one piece per line) when ``path`` ends in ``.txt``."""
        if Path(path).suffix.lower() != ".txt":
            return super().save(path)
        for i, piece in enumerate(self.vocab):
            if "\n" in piece or piece.endswith("\r"):
                raise ValueError(
                    f"vocab entry {i} ({piece!r}) holds a line break: a vocab.txt cannot store it; save as .json"
                )
            try:
                piece.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(
                    f"vocab entry {i} ({piece!r}) holds a lone surrogate, which UTF-8 cannot store; save as .json"
                ) from None
        data = ("\n".join(self.vocab) + "\n").encode("utf-8")
        return atomic_write(path, lambda tmp: tmp.write_bytes(data))

    def __repr__(self) -> str:
        return f"WordPieceTokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase})"


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Read a tokenizer saved by ``save``: a ``.json`` file, or a WordPiece ``vocab.txt``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"tokenizer file not found: {path}")
    if path.suffix.lower() == ".txt":
        return WordPieceTokenizer.from_vocab_file(path)
    try:
        data = parse_json(path.read_bytes())
    except ValueError as err:  # malformed, or nested too deeply
        raise DataError(f"{path} is not a tokenizer JSON file: {err}") from None
    return tokenizer_from_dict(data, str(path))


def unknown_chars(tokenizer: Tokenizer, text: str) -> list[str]:
    """The distinct characters of ``text`` (white space aside) that ``tokenizer`` encodes
    as its unknown id, in order of appearance: what a prompt would lose silently."""
    seen = dict.fromkeys(c for c in text if not c.isspace())
    return [c for c in seen if tokenizer.unk_id in tokenizer.encode(c)]


def tokenizer_from_dict(data: Any, source: str = "tokenizer") -> Tokenizer:
    """The tokenizer a ``to_dict()`` describes (``source`` names it in errors)."""
    kind = data.get("type") if isinstance(data, dict) else None
    try:
        if kind == "char":
            return CharTokenizer(data["chars"])
        if kind == "wordpiece":
            return WordPieceTokenizer(data["vocab"], lowercase=bool(data.get("lowercase", True)))
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{source} is a malformed {kind} tokenizer file: {err}") from err
    raise DataError(f"{source}: unknown tokenizer type {kind!r}; expected 'char' or 'wordpiece'")
