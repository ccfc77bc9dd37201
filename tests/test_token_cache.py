"""The tokenized WikiText cache: built once, atomically, memory-mapped, keyed by
everything the examples depend on."""

from __future__ import annotations

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
    data = cached_examples(cache, source, tok, 16, None, lambda: calls.append(1) or good)
    assert calls == [1, 1] and same_examples(data, good)


def test_dataloader_workers_read_the_mapped_examples(tmp_path):
    root, cache = make_wikitext(tmp_path / "wt"), tmp_path / "cache"
    text_data("wikitext-2", root=root, max_len=16, cache_dir=cache)
    data = text_data("wikitext-2", root=root, max_len=16, cache_dir=cache)
    loaded = torch.cat(list(DataLoader(data.train, batch_size=4, num_workers=2, persistent_workers=True)))
    assert torch.equal(loaded, torch.stack([data.train[i] for i in range(len(data.train))]))
