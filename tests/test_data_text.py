"""Text data: the offline pydoc corpus, WikiText raw files built in tmp_path, padding
that never counts, and every error a missing or malformed folder gives."""

import sys

import numpy as np
import pytest
import torch
from data_fixtures import make_wikitext
from hypothesis import given
from hypothesis import strategies as st

from binedu import LanguageModel
from binedu.data import CharTokenizer, DataError, WordPieceTokenizer, loader, text_data
from binedu.data.split import random_split
from binedu.data.text import (
    TokenDataset,
    _pack,
    build_examples,
    pydoc_paragraphs,
    split_sentences,
    wikitext_paragraphs,
)
from binedu.data.tokenizers import UNKNOWN_CHAR


def assert_padded(seq: torch.Tensor, length: int, pad_id: int = 0) -> None:
    """A LongTensor of ``length`` ids whose padding, if any, is only at the end."""
    assert seq.dtype == torch.int64 and seq.shape == (length,)
    real = seq != pad_id
    n = int(real.sum())
    assert bool(real[:n].all()) and not bool(real[n:].any())


# ---------------------------------------------------------------- pydoc (offline default)


@pytest.fixture(scope="module")
def pydoc():
    return text_data()


def test_pydoc_corpus_ships_with_python():
    paragraphs = pydoc_paragraphs()
    assert len(paragraphs) > 1000 and sum(map(len, paragraphs)) > 300_000
    assert len(set(paragraphs)) == len(paragraphs)


def test_pydoc_examples_are_padded_sequences(pydoc):
    assert (pydoc.name, pydoc.max_len) == ("pydoc", 64)
    assert pydoc.vocab_size == pydoc.tokenizer.vocab_size and pydoc.tokenizer.pad_id == 0
    assert len(pydoc.train) > 5000 and 100 < len(pydoc.val) < len(pydoc.train) / 10
    for dataset in (pydoc.train, pydoc.val):
        for i in range(0, len(dataset), 97):
            seq = dataset[i]
            assert_padded(seq, 65)
            assert int(seq[0]) == pydoc.tokenizer.bos_id
            assert int(seq.max()) < pydoc.vocab_size


def test_pydoc_examples_are_pieces_of_the_documentation(pydoc):
    text = "\n\n".join(pydoc_paragraphs())
    for i in range(0, len(pydoc.train), 301):
        assert pydoc.tokenizer.decode(pydoc.train[i]) in text


def test_pydoc_split_keeps_paragraphs_apart_and_is_seeded(pydoc):
    paragraphs = pydoc_paragraphs()
    train, val = random_split(len(paragraphs), 0.05, seed=0)
    assert len(val) == round(0.05 * len(paragraphs)) and not set(train) & set(val)
    again, other = text_data(seed=0), text_data(seed=1)
    assert all(torch.equal(again.val[i], pydoc.val[i]) for i in range(len(pydoc.val)))
    assert not all(torch.equal(other.val[i], pydoc.val[i]) for i in range(50))


def test_padding_never_becomes_a_target(pydoc):
    """The trainer's contract: x = seq[:-1], y = seq[1:], targets equal to pad_id are
    ignored; every real token but BOS is a target exactly once."""
    targets = 0
    for batch in loader(pydoc.val, batch_size=64):
        y = batch[:, 1:]
        targets += int((y != pydoc.tokenizer.pad_id).sum())
    assert targets == pydoc.val.num_tokens - len(pydoc.val)


def test_pydoc_feeds_the_tiny_language_model(pydoc):
    model = LanguageModel.from_config("tiny", vocab_size=pydoc.vocab_size)
    batch = next(iter(loader(pydoc.train, batch_size=4, shuffle=True, seed=0)))
    assert model(batch[:, :-1]).shape == (4, 64, pydoc.vocab_size)


def test_pydoc_wordpiece_and_limit():
    data = text_data(tokenizer="wordpiece", max_len=32, limit=300)
    assert isinstance(data.tokenizer, WordPieceTokenizer)
    assert len(data.train) == 300 and len(data.val) <= 300
    assert data.vocab_size <= 2000 and data.tokenizer.pad_id == 0
    assert_padded(data.train[0], 33)


def test_pydoc_missing_gives_a_data_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydoc_data.topics", None)
    with pytest.raises(DataError, match="pydoc_data"):
        text_data("pydoc-installed")  # the default, "pydoc", is the copy shipped with binedu


# ---------------------------------------------------------------- examples and sentences


@given(st.text(alphabet="ab .!?\nXY1", max_size=300))
def test_split_sentences_loses_nothing(paragraph):
    assert "".join(split_sentences(paragraph)) == paragraph


def test_split_sentences_cuts_at_sentence_ends():
    assert split_sentences("It sold 1,000 copies in 2011. Critics praised it! Why? e.g. this") == [
        "It sold 1,000 copies in 2011. ",
        "Critics praised it! ",
        "Why? e.g. this",
    ]


@given(
    st.lists(st.text(alphabet="abc .!?\n", min_size=1, max_size=80).filter(str.strip), min_size=1, max_size=5),
    st.integers(min_value=2, max_value=20),
)
def test_examples_rebuild_each_paragraph(paragraphs, max_len):
    tok = CharTokenizer.fit(["abc .!?\n"])
    data = build_examples(paragraphs, tok, max_len)
    text, ends = "", 0
    for i in range(len(data)):
        seq = data[i]
        assert_padded(seq, max_len + 1)
        assert int(seq[0]) == tok.bos_id
        ends += int((seq == tok.eos_id).sum())
        text += tok.decode(seq)
    assert text == "".join(paragraphs)
    assert ends == len(paragraphs)  # exactly one EOS per paragraph, on its last example


def test_sentences_are_packed_whole():
    tok = CharTokenizer.fit(["ABCDabcd. "])
    data = build_examples(["Aaaa. Bbbb. Cccc. Ddddddddddddddd."], tok, max_len=13)
    pieces = [tok.decode(data[i]) for i in range(len(data))]
    assert pieces == ["Aaaa. Bbbb. ", "Cccc. ", "Dddddddddddd", "ddd."]


def test_build_examples_limit_and_bad_max_len():
    tok = CharTokenizer.fit(["abc"])
    assert len(build_examples(["abc"] * 10, tok, max_len=8, limit=4)) == 4
    with pytest.raises(ValueError, match="max_len"):
        build_examples(["abc"], tok, max_len=1)
    with pytest.raises(ValueError, match="max_len"):
        text_data(max_len=1)
    with pytest.raises(IndexError):
        build_examples(["abc"], tok, max_len=8)[1]


def test_token_dataset_checks_its_offsets():
    with pytest.raises(ValueError, match="offsets"):
        TokenDataset(np.arange(5), np.array([0, 3]), length=8)
    with pytest.raises(ValueError, match="longer than"):
        TokenDataset(np.arange(5), np.array([0, 5]), length=4)


# ---------------------------------------------------------------- WikiText raw layout


def test_wikitext_paragraphs_drop_headings_and_markup(tmp_path):
    root = make_wikitext(tmp_path / "wikitext-2-raw")
    paragraphs = wikitext_paragraphs(root / "wiki.train.raw")
    assert paragraphs == [
        "Senjō no Valkyria 3 is a tactical role-playing game . It sold 1,000 copies in 2011 . Critics praised it .",
        "The game is played in turns . Each turn lasts 3.5 minutes .",
    ]
    assert wikitext_paragraphs(root / "wiki.train.raw", limit=1) == paragraphs[:1]


@pytest.mark.parametrize("name", ["wikitext-2", "wikitext-103"])
def test_wikitext_loads_official_splits(tmp_path, name):
    root = make_wikitext(tmp_path / f"{name}-raw")
    data = text_data(name, root=root, max_len=40)
    assert data.name == name
    tok = data.tokenizer
    assert paragraphs_of(data.train, tok) == wikitext_paragraphs(root / "wiki.train.raw")
    val = "The tower was built in 1890 . It is well-known ."
    unseen = "".join(c if c in tok.chars else UNKNOWN_CHAR for c in val)  # fitted on train only
    assert unseen.count(UNKNOWN_CHAR) == 7  # four "w", a "b", an "8" and a "9" never occur in train
    assert paragraphs_of(data.val, tok) == [unseen]
    for dataset in (data.train, data.val):
        for i in range(len(dataset)):
            assert_padded(dataset[i], 41)


def paragraphs_of(dataset: TokenDataset, tok) -> list[str]:
    """The paragraphs a data set was built from: its examples' text, cut after each EOS."""
    out, text = [], ""
    for i in range(len(dataset)):
        text += tok.decode(dataset[i])
        if tok.eos_id in dataset[i].tolist():
            out, text = [*out, text], ""
    return out


def test_wikitext_with_wordpiece_and_a_vocab_file(tmp_path):
    root = make_wikitext(tmp_path / "wt")
    data = text_data("wikitext-2", root=root, tokenizer="wordpiece", vocab_size=200, max_len=16)
    assert isinstance(data.tokenizer, WordPieceTokenizer) and data.vocab_size <= 200
    vocab = data.tokenizer.save(tmp_path / "vocab.txt")
    again = text_data("wikitext-2", root=root, tokenizer=vocab, max_len=16)
    assert again.tokenizer.vocab == data.tokenizer.vocab
    assert torch.equal(again.train[0], data.train[0])
    same = text_data("wikitext-2", root=root, tokenizer=data.tokenizer, max_len=16)
    assert torch.equal(same.val[0], data.val[0])
    with pytest.raises(DataError, match="vocab_size=7 but the given tokenizer has"):
        text_data("wikitext-2", root=root, tokenizer=vocab, vocab_size=7)


def test_wikitext_missing_root(tmp_path):
    with pytest.raises(DataError, match="needs root") as info:
        text_data("wikitext-103")
    assert "download('wikitext-103'" in str(info.value)
    with pytest.raises(DataError, match="folder not found") as info:
        text_data("wikitext-2", root=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)


@pytest.mark.parametrize("missing", ["wiki.train.raw", "wiki.valid.raw"])
def test_wikitext_missing_file(tmp_path, missing):
    root = make_wikitext(tmp_path / "wt")
    (root / missing).unlink()
    with pytest.raises(DataError, match="missing file") as info:
        text_data("wikitext-2", root=root)
    assert str(root / missing) in str(info.value)


def test_wikitext_wrong_folders_get_hints(tmp_path):
    tokens = tmp_path / "wikitext-2"
    tokens.mkdir()
    (tokens / "wiki.train.tokens").write_text("x")
    with pytest.raises(DataError, match="tokenized WikiText"):
        text_data("wikitext-2", root=tokens)
    make_wikitext(tmp_path / "outer" / "wikitext-2-raw")
    with pytest.raises(DataError, match="pass root=") as info:
        text_data("wikitext-2", root=tmp_path / "outer")
    assert str(tmp_path / "outer" / "wikitext-2-raw") in str(info.value)


def test_wikitext_empty_train_file(tmp_path):
    root = make_wikitext(tmp_path / "wt", train=" = Only A Heading = \n\n")
    with pytest.raises(DataError, match="holds no text paragraphs") as info:
        text_data("wikitext-2", root=root)
    assert str(root / "wiki.train.raw") in str(info.value)


def test_unknown_names():
    with pytest.raises(DataError, match="unknown text data set 'ptb'"):
        text_data("ptb")
    with pytest.raises(DataError, match="unknown tokenizer 'bpe'"):
        text_data(tokenizer="bpe", limit=5)
    with pytest.raises(ValueError, match="val_fraction"):
        text_data(val_fraction=-0.1)


# ---------------------------------------------------------------- issue 13: items 9, 10, 11


def _pack_by_reslicing(sentences, budget):
    """The former _pack (quadratic on a long sentence): the reference for its results."""
    current = []
    for ids in sentences:
        if len(current) + len(ids) <= budget:
            current += ids
            continue
        if current:
            yield current
        while len(ids) > budget:
            yield ids[:budget]
            ids = ids[budget:]
        current = list(ids)
    if current:
        yield current


@given(st.lists(st.lists(st.integers(1, 9), max_size=40), max_size=12), st.integers(1, 12))
def test_pack_gives_the_former_pieces(sentences, budget):
    pieces = list(_pack(sentences, budget))
    assert pieces == list(_pack_by_reslicing(sentences, budget))
    assert all(0 < len(p) <= budget for p in pieces)
    assert [i for p in pieces for i in p] == [i for s in sentences for i in s]


class CopyCounting(list):
    """A list that counts the elements its slices copy."""

    copied = 0

    def __getitem__(self, index):
        item = super().__getitem__(index)
        if isinstance(index, slice):
            CopyCounting.copied += len(item)
            return CopyCounting(item)
        return item


@pytest.mark.parametrize("pack", [_pack, _pack_by_reslicing], ids=["_pack", "former"])
def test_pack_copies_each_id_a_bounded_number_of_times(pack):
    """A 1.6M-character line took 23 s (each cut re-sliced the rest of the line): count
    copied ids instead of timing. Doubling the line must double the copies, not quadruple them."""
    copies = []
    for n in (20_000, 40_000):
        CopyCounting.copied = 0
        pieces = list(pack([CopyCounting(range(n))], budget=63))
        assert sum(map(len, pieces)) == n
        copies.append(CopyCounting.copied)
    if pack is _pack_by_reslicing:  # the test can fail: the former version is quadratic
        assert copies[1] > 3.5 * copies[0]
    else:
        assert copies[0] <= 20_000 and copies[1] <= 2 * copies[0]


def test_invalid_utf8_in_wikitext_names_the_file_and_line(tmp_path):
    root = make_wikitext(tmp_path)
    raw = (root / "wiki.train.raw").read_bytes().split(b"\n")
    raw[3] = raw[3] + b" caf\xe9"
    (root / "wiki.train.raw").write_bytes(b"\n".join(raw))
    with pytest.raises(DataError, match="wiki.train.raw line 4 is not UTF-8") as info:
        text_data("wikitext-2", root=root)
    assert str(root / "wiki.train.raw") in str(info.value)


def test_an_empty_validation_file_is_refused_when_the_data_is_built(tmp_path):
    root = make_wikitext(tmp_path, valid=" = Only a heading = \n\n")
    with pytest.raises(DataError, match="wiki.valid.raw holds no text paragraphs"):
        text_data("wikitext-2", root=root)


def test_pydoc_without_validation_is_refused():
    with pytest.raises(DataError, match="pydoc: the validation split is empty. val_fraction=0.0"):
        text_data(val_fraction=0.0)


def test_unknown_chars_names_what_the_tokenizer_cannot_encode():
    """What a prompt would lose silently (issue 22): the CLI names these characters."""
    from binedu.data.tokenizers import unknown_chars

    tok = CharTokenizer.fit(["abc"])
    assert unknown_chars(tok, "a é b 🙂 é\n") == ["é", "🙂"]
    assert unknown_chars(tok, "cab ab") == []
