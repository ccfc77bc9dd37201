"""Character and WordPiece tokenizers: ids, round trips, training, files."""

import json
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from binedu.data import CharTokenizer, DataError, WordPieceTokenizer, load_tokenizer
from binedu.data.text import pydoc_paragraphs
from binedu.data.tokenizers import UNKNOWN_CHAR, pre_tokenize

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A binary network stores every weight as a single bit, 0 or 1!",
    "Normalization keeps the layer's outputs at zero mean and unit variance; training is stable.",
    "Bits need no special hardware: an ordinary CPU suffices (really).",
] * 3
ALPHABET = "".join(sorted(set("".join(CORPUS))))


@pytest.fixture(scope="module")
def pydoc_wordpiece() -> WordPieceTokenizer:
    return WordPieceTokenizer.train(pydoc_paragraphs(), vocab_size=2000)


# ---------------------------------------------------------------- characters


def test_char_ids_reserve_padding_at_zero():
    tok = CharTokenizer.fit(["banana"])
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    assert tok.vocab_size == 4 + 3 == len(tok)
    assert tok.encode("abn") == [4, 5, 6]  # characters sorted by code point after the specials
    assert 0 not in tok.encode("banana")


@given(st.text(alphabet=ALPHABET, max_size=200))
def test_char_round_trip(text):
    tok = CharTokenizer.fit(CORPUS)
    assert tok.decode(tok.encode(text)) == text


def test_char_unknown_and_special_ids():
    tok = CharTokenizer.fit(["ab"])
    assert tok.encode("a?b") == [4, tok.unk_id, 5]
    assert tok.decode([tok.bos_id, 4, tok.unk_id, 5, tok.eos_id, 0, 0]) == f"a{UNKNOWN_CHAR}b"
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([tok.vocab_size])


def test_char_fit_max_size_keeps_most_frequent():
    tok = CharTokenizer.fit(["aaaa bbb cc d"], max_size=4 + 2)
    assert tok.chars == [" ", "a"]
    assert tok.encode("b") == [tok.unk_id]
    with pytest.raises(ValueError, match="max_size"):
        CharTokenizer.fit(["abc"], max_size=4)


@pytest.mark.parametrize("chars, problem", [(["ab"], "single characters"), (["a", "a"], "repeat")])
def test_char_rejects_bad_alphabets(chars, problem):
    with pytest.raises(ValueError, match=problem):
        CharTokenizer(chars)


def test_char_save_and_load(tmp_path):
    tok = CharTokenizer.fit(CORPUS + ["é\n"])
    path = tok.save(tmp_path / "sub" / "chars.json")
    back = load_tokenizer(path)
    assert isinstance(back, CharTokenizer)
    assert back.chars == tok.chars
    assert json.loads(path.read_text(encoding="utf-8"))["type"] == "char"
    assert list(tmp_path.glob("sub/.*tmp")) == []  # written atomically, no temporary left


# ---------------------------------------------------------------- WordPiece

BERT_STYLE = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "a", "##ff", "##a", "!", ","]


def test_pre_tokenize_like_bert_uncased():
    assert pre_tokenize("Héllo, WORLD!\x00 foo_bar") == ["hello", ",", "world", "!", "foo", "_", "bar"]
    assert pre_tokenize("Héllo", lowercase=False) == ["Héllo"]


def test_wordpiece_greedy_longest_match_first():
    tok = WordPieceTokenizer(BERT_STYLE)
    assert tok.tokens(tok.encode("unaffable")) == ["un", "##aff", "##able"]
    assert tok.tokens(tok.encode("Unaffable, a!")) == ["un", "##aff", "##able", ",", "a", "!"]
    assert tok.encode("xyz") == [tok.unk_id]  # no piece fits: the whole word is unknown
    assert tok.encode("un" + "a" * 200) == [tok.unk_id]  # longer than 100 characters


def test_wordpiece_decode_glues_pieces_and_punctuation():
    tok = WordPieceTokenizer(BERT_STYLE)
    ids = [tok.bos_id, *tok.encode("unaffable, a!"), tok.eos_id, 0, 0]
    assert tok.decode(ids) == "unaffable, a!"
    assert tok.decode([tok.unk_id]) == "[UNK]"


def test_wordpiece_train_covers_its_alphabet_and_is_deterministic():
    tok = WordPieceTokenizer.train(CORPUS, vocab_size=120, min_frequency=2)
    again = WordPieceTokenizer.train(CORPUS, vocab_size=120, min_frequency=2)
    assert tok.vocab == again.vocab
    assert tok.pad_id == 0 and tok.vocab[:5] == list(WordPieceTokenizer.SPECIALS)
    assert tok.vocab_size <= 120
    for text in CORPUS:
        assert tok.unk_id not in tok.encode(text)
    assert "the" in tok.vocab  # a frequent word became one piece
    assert tok.decode(tok.encode(CORPUS[0])) == CORPUS[0].lower()


def test_wordpiece_train_reaches_the_requested_size_on_pydoc(pydoc_wordpiece):
    tok = pydoc_wordpiece
    assert tok.vocab_size == 2000
    assert len(set(tok.vocab)) == 2000
    sample = pydoc_paragraphs()[0]
    assert len(tok.encode(sample)) < len(pre_tokenize(sample)) * 2  # most words are one or two pieces


PRINTABLE = string.ascii_letters + string.digits + " .,;:!?()'-"
PRINTABLE_WORDPIECE = WordPieceTokenizer.train(CORPUS + [" ".join(PRINTABLE)], vocab_size=300)


@given(st.text(alphabet=PRINTABLE, max_size=120))
def test_wordpiece_encode_decode_encode_is_stable(text):
    tok = PRINTABLE_WORDPIECE
    ids = tok.encode(text)
    assert tok.unk_id not in ids
    assert tok.encode(tok.decode(ids)) == ids


def test_wordpiece_train_rejects_too_small_vocab_and_empty_text():
    with pytest.raises(ValueError, match="smaller than"):
        WordPieceTokenizer.train(CORPUS, vocab_size=20)
    with pytest.raises(DataError, match="no words"):
        WordPieceTokenizer.train(["   ", ""], vocab_size=100)


def test_bert_vocab_file_keeps_its_ids(tmp_path):
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "##s"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = WordPieceTokenizer.from_vocab_file(path)
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 100, 101, 102)
    assert tok.encode("Hellos hello") == [104, 105, 104]
    assert tok.decode([101, 104, 105, 102, 0]) == "hellos"
    assert isinstance(load_tokenizer(path), WordPieceTokenizer)


@pytest.mark.parametrize(
    "lines, problem",
    [
        (["[UNK]", "[PAD]", "[CLS]", "[SEP]"], "start with \\[PAD\\]"),
        (["[PAD]", "[CLS]", "[SEP]", "a"], "\\[UNK\\]"),
        (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "a"], "repeat"),
    ],
)
def test_bad_vocab_files_name_the_problem(tmp_path, lines, problem):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match=problem) as info:
        WordPieceTokenizer.from_vocab_file(path)
    assert str(path) in str(info.value)


def test_wordpiece_save_as_txt_and_json(tmp_path):
    tok = WordPieceTokenizer.train(CORPUS, vocab_size=150)
    for name in ("vocab.txt", "tok.json"):
        back = load_tokenizer(tok.save(tmp_path / name))
        assert isinstance(back, WordPieceTokenizer)
        assert back.vocab == tok.vocab
        assert back.encode(CORPUS[1]) == tok.encode(CORPUS[1])
    assert (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines() == tok.vocab


def test_load_tokenizer_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_tokenizer(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="not a tokenizer JSON"):
        load_tokenizer(bad)
    bad.write_text(json.dumps({"type": "bpe"}), encoding="utf-8")
    with pytest.raises(DataError, match="unknown tokenizer type 'bpe'"):
        load_tokenizer(bad)
    bad.write_text(json.dumps({"type": "char"}), encoding="utf-8")
    with pytest.raises(DataError, match="malformed char"):
        load_tokenizer(bad)
    with pytest.raises(DataError, match="not found"):
        WordPieceTokenizer.from_vocab_file(tmp_path / "vocab.txt")


# ---------------------------------------------------------------- issue 13, item 11


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_unicode_line_breaks_inside_vocab_entries_keep_every_id(tmp_path, newline):
    """str.splitlines() cut at U+2028 and U+0085 too, shifting every id after them."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a\u2028b", "c\x85d", "e\x1cf", "hello"]
    path = tmp_path / "vocab.txt"
    path.write_bytes((newline.join(vocab) + newline).encode("utf-8"))
    tok = WordPieceTokenizer.from_vocab_file(path)
    assert tok.vocab == vocab
    assert tok.encode("hello") == [7]
    assert load_tokenizer(tok.save(tmp_path / "again.txt")).vocab == vocab


def test_a_vocab_file_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"[PAD]\n[UNK]\n[CLS]\n[SEP]\ncaf\xe9\n")
    with pytest.raises(DataError, match="is not UTF-8") as info:
        load_tokenizer(path)
    assert str(path) in str(info.value)


def test_a_lone_surrogate_saves_and_loads_back(tmp_path):
    """Saving a tokenizer with a lone surrogate (no UTF-8 form) used to raise."""
    chars = CharTokenizer(["a", "\ud800", "b"])
    back = load_tokenizer(chars.save(tmp_path / "chars.json"))
    assert back.chars == chars.chars
    readable = load_tokenizer(CharTokenizer(["é"]).save(tmp_path / "plain.json"))
    assert "é" in (tmp_path / "plain.json").read_text(encoding="utf-8") and readable.chars == ["é"]
    words = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "x\udcff"])
    assert load_tokenizer(words.save(tmp_path / "words.json")).vocab == words.vocab
    with pytest.raises(ValueError, match="lone surrogate.*save as .json"):
        words.save(tmp_path / "vocab.txt")
    with pytest.raises(ValueError, match="line break"):
        WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "x\ny"]).save(tmp_path / "vocab.txt")
    assert not (tmp_path / "vocab.txt").exists()
