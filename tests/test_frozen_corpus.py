"""The default text corpus is frozen: CPython 3.11.7's pydoc_data.topics shipped with
binedu, so text_data() gives the same examples on every Python version (the installed
pydoc_data has 2,078 paragraphs on 3.11, 2,192 on 3.12, 2,257 on 3.13)."""

import gzip
import hashlib
import sys

import numpy as np
import pytest

from binedu.data import DataError, text_data
from binedu.data.text import PYDOC_SNAPSHOT, pydoc_paragraphs

SHIPPED_JSON_SHA256 = "4717ccc51e2e7bd1eed2feddb0bcb5a7da19a1a923fd2f258cf81e4285e31683"


def examples_hash(data) -> str:
    """One hash of every id and every example boundary of both splits."""
    h = hashlib.sha256()
    for split in (data.train, data.val):
        h.update(np.asarray(split.ids, dtype=np.int64).tobytes())
        h.update(np.asarray(split.offsets, dtype=np.int64).tobytes())
    return h.hexdigest()


@pytest.fixture
def other_python(monkeypatch):
    """This Python's pydoc_data replaced by a different version's (a topic added and one
    changed), as a newer CPython has."""
    import pydoc_data.topics as module

    topics = dict(module.topics)
    topics["zz-new"] = "A paragraph that only a newer Python has.\n\nAnd a second one."
    first = sorted(topics)[0]
    topics[first] = topics[first].replace("the", "THE")
    monkeypatch.setattr(module, "topics", topics)
    return topics


def test_the_shipped_text_is_the_frozen_snapshot():
    raw = gzip.decompress(PYDOC_SNAPSHOT.read_bytes())
    assert hashlib.sha256(raw).hexdigest() == SHIPPED_JSON_SHA256
    paragraphs = pydoc_paragraphs()
    assert (len(paragraphs), sum(map(len, paragraphs))) == (2078, 369_061)


def test_default_examples_do_not_depend_on_the_installed_python(other_python):
    frozen = examples_hash(text_data(limit=300))
    installed = examples_hash(text_data("pydoc-installed", limit=300))
    assert len(pydoc_paragraphs(installed=True)) == 2078 + 2 and len(pydoc_paragraphs()) == 2078
    assert installed != frozen  # the installed corpus moved with the "other Python" ...
    other_python.clear()  # ... and even without any pydoc_data text at all
    assert examples_hash(text_data(limit=300)) == frozen


def test_default_works_without_pydoc_data(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydoc_data.topics", None)  # a trimmed Python
    assert len(pydoc_paragraphs()) == 2078
    with pytest.raises(DataError, match="pydoc_data module"):
        text_data("pydoc-installed")


def test_a_damaged_snapshot_is_refused(monkeypatch, tmp_path):
    bad = tmp_path / "topics.json.gz"
    bad.write_bytes(gzip.compress(b'{"if": "changed"}'))
    monkeypatch.setattr("binedu.data.text.PYDOC_SNAPSHOT", bad)
    with pytest.raises(DataError, match="damaged"):
        pydoc_paragraphs()
