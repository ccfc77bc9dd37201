"""The tokenized WikiText cache: built once, atomically, memory-mapped, keyed by
everything the examples depend on."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from data_fixtures import WIKI_TRAIN, WIKI_VALID, make_wikitext
from torch.utils.data import DataLoader

import binedu.data.text as text
from binedu.data import CharTokenizer, text_data
from binedu.data.token_cache import cache_key, cached_examples


@pytest.fixture
def builds(monkeypatch):
    """Counts the calls of build_examples (the tokenization the cache saves)."""
    calls = []
    real = text.build_examples

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(text, "build_examples", counting)
    return calls


def same_examples(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(a[i], b[i]) for i in range(len(a)))


def test_second_load_reads_the_cache_memory_mapped(tmp_path, builds):
    root, cache = make_wikitext(tmp_path / "wt"), tmp_path / "cache"
    plain = text_data("wikitext-2", root=root, max_len=16)
    assert len(builds) == 2
    first = text_data("wikitext-2", root=root, max_len=16, cache_dir=cache)
    assert len(builds) == 4 and len(list(cache.glob("*.npy"))) == 4  # ids + offsets per split
    again = text_data("wikitext-2", root=root, max_len=16, cache_dir=cache)
    assert len(builds) == 4  # nothing tokenized
    assert isinstance(again.train.ids, np.memmap) and isinstance(again.val.offsets, np.memmap)
    for split in ("train", "val"):
        assert same_examples(getattr(plain, split), getattr(again, split))
        assert same_examples(getattr(first, split), getattr(again, split))
    assert not list(cache.glob("*.tmp"))


def test_the_key_follows_the_text_the_tokenizer_and_the_length(tmp_path):
    root = make_wikitext(tmp_path / "wt")
    source = [root / "wiki.train.raw"]
    tok = CharTokenizer.fit([WIKI_TRAIN])
    key = cache_key(source, tok, 16, None)
    assert cache_key(source, tok, 16, None) == key
    assert cache_key(source, tok, 17, None) != key
    assert cache_key(source, tok, 16, 5) != key
    assert cache_key(source, CharTokenizer.fit([WIKI_TRAIN + "Z"]), 16, None) != key
    (root / "wiki.train.raw").write_text(WIKI_TRAIN + "One more line .\n", encoding="utf-8")
    assert cache_key(source, tok, 16, None) != key
    make_wikitext(tmp_path / "copy")  # same bytes under another name: the same entry
    assert cache_key([tmp_path / "copy" / "wiki.train.raw"], tok, 16, None) == key


def test_a_changed_source_is_tokenized_again(tmp_path, builds):
    root, cache = make_wikitext(tmp_path / "wt"), tmp_path / "cache"
    text_data("wikitext-2", root=root, max_len=16, cache_dir=cache)
    make_wikitext(root, valid=WIKI_VALID + "A new paragraph with new words .\n")
    data = text_data("wikitext-2", root=root, max_len=16, cache_dir=cache)
    assert len(builds) == 3  # train from the cache, the new validation text tokenized
    assert same_examples(data.val, text_data("wikitext-2", root=root, max_len=16).val)


def test_a_failed_build_leaves_no_entry_and_a_partial_one_is_rebuilt(tmp_path):
    root, cache = make_wikitext(tmp_path / "wt"), tmp_path / "cache"
    source = [root / "wiki.train.raw"]
    tok = CharTokenizer.fit([WIKI_TRAIN])
    good = text.build_examples(text.wikitext_paragraphs(source[0]), tok, 16)

    def crash():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_examples(cache, source, tok, 16, None, crash)
    assert not cache.exists() or not list(cache.iterdir())
    # ids written, killed before the offsets: the entry is not complete, so it is rebuilt
    key = cache_key(source, tok, 16, None)
    cache.mkdir(exist_ok=True)
    np.save(cache / f"{key}.ids.npy", good.ids[:3])
    calls = []
    data = cached_examples(cache, source, tok, 16, None, lambda: calls.append(1) or good)
    assert calls == [1] and same_examples(data, good)
    # a corrupt offsets file is rebuilt too, not trusted
    (cache / f"{key}.offsets.npy").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="rebuilding the invalid token cache entry"):
        data = cached_examples(cache, source, tok, 16, None, lambda: calls.append(1) or good)
    assert calls == [1, 1] and same_examples(data, good)


def test_dataloader_workers_read_the_mapped_examples(tmp_path):
    root, cache = make_wikitext(tmp_path / "wt"), tmp_path / "cache"
    text_data("wikitext-2", root=root, max_len=16, cache_dir=cache)
    data = text_data("wikitext-2", root=root, max_len=16, cache_dir=cache)
    loaded = torch.cat(list(DataLoader(data.train, batch_size=4, num_workers=2, persistent_workers=True)))
    assert torch.equal(loaded, torch.stack([data.train[i] for i in range(len(data.train))]))


# ---------------------------------------------------------------- issue 22: a trusted cache


def test_a_file_replaced_after_it_was_read_does_not_poison_the_cache(tmp_path, monkeypatch):
    """The key hashed the file after the tokenizer was trained: text replaced in that
    window stored the old text's examples under the new text's key, reused forever."""
    root, cache = make_wikitext(tmp_path / "wt"), tmp_path / "cache"
    real = text._tokenizer
    new_train = "A different text entirely . It has other words .\n" * 3

    def replace_while_training(*args, **kwargs):
        make_wikitext(root, train=new_train)  # the file changes after it was read
        return real(*args, **kwargs)

    tok = CharTokenizer.fit([WIKI_TRAIN + new_train])  # the same tokenizer for both texts (a given file)
    monkeypatch.setattr(text, "_tokenizer", replace_while_training)
    text_data("wikitext-2", root=root, max_len=16, cache_dir=cache, tokenizer=tok)
    monkeypatch.setattr(text, "_tokenizer", real)
    later = text_data("wikitext-2", root=root, max_len=16, cache_dir=cache, tokenizer=tok)
    assert same_examples(later.train, text_data("wikitext-2", root=root, max_len=16, tokenizer=tok).train)


def entry(cache, root, data) -> tuple:
    key = cache_key([root / "wiki.train.raw"], data.tokenizer, 16, None)  # the whole file was read
    return cache / f"{key}.ids.npy", cache / f"{key}.offsets.npy"


@pytest.mark.parametrize(
    "ids, offsets",
    [
        (lambda ids: ids.astype(np.int64) + 10_000, None),  # ids outside the vocabulary
        (None, lambda offsets: offsets.astype(np.float64)),  # float offsets (a traceback before)
        (None, lambda offsets: np.concatenate([[0, 5, 3], offsets[3:]])),  # decreasing
        (lambda ids: ids.reshape(1, -1), None),  # not flat
        (lambda ids: ids.astype(np.float32), None),
    ],
    ids=["out of vocabulary", "float offsets", "decreasing offsets", "2-D ids", "float ids"],
)
def test_an_invalid_entry_is_rebuilt_not_trusted(tmp_path, ids, offsets):
    root, cache = make_wikitext(tmp_path / "wt"), tmp_path / "cache"
    plain = text_data("wikitext-2", root=root, max_len=16)
    data = text_data("wikitext-2", root=root, max_len=16, cache_dir=cache)
    ids_path, offsets_path = entry(cache, root, data)
    for path, edit in ((ids_path, ids), (offsets_path, offsets)):
        if edit is not None:
            np.save(path, edit(np.load(path)))
    with pytest.warns(UserWarning, match="rebuilding the invalid token cache entry"):
        again = text_data("wikitext-2", root=root, max_len=16, cache_dir=cache)
    assert same_examples(again.train, plain.train)
    assert text_data("wikitext-2", root=root, max_len=16, cache_dir=cache).train.ids.dtype == plain.train.ids.dtype


@pytest.mark.parametrize("which", [0, 1], ids=["ids", "offsets"])
def test_a_fifo_at_an_entry_path_is_refused_without_blocking(tmp_path, which):
    from file_probes import no_hang

    from binedu.data import DataError

    root, cache = make_wikitext(tmp_path / "wt"), tmp_path / "cache"
    data = text_data("wikitext-2", root=root, max_len=16, cache_dir=cache)
    path = entry(cache, root, data)[which]
    path.unlink()
    os.mkfifo(path)
    with no_hang(20), pytest.raises(DataError, match="is a FIFO, not a cache file"):
        text_data("wikitext-2", root=root, max_len=16, cache_dir=cache)
    assert path.is_fifo()  # refused, not replaced


def test_token_datasets_refuse_bad_arrays():
    from binedu.data.token_dataset import TokenDataset

    with pytest.raises(ValueError, match="integers"):
        TokenDataset(np.arange(5), np.array([0.0, 5.0]), length=8)
    with pytest.raises(ValueError, match="never decrease"):
        TokenDataset(np.arange(5), np.array([0, 4, 2, 5]), length=8)
    with pytest.raises(ValueError, match="vocabulary"):
        TokenDataset(np.arange(5), np.array([0, 5]), length=8, vocab_size=4)
    assert len(TokenDataset(np.arange(5), np.array([0, 2, 5]), length=8, vocab_size=5)) == 2
