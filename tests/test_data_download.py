"""The opt-in download helper, without a network: the URL table, checksums, and the
atomic extraction of local archives built in tmp_path."""

import hashlib
import importlib
import io
import re
import tarfile
import zipfile
from pathlib import Path

import pytest
from data_fixtures import make_food101, make_wikitext

import binedu.data
from binedu.data import DataError, download, image_data, text_data
from binedu.data import fetch as dl


def _source(archive: Path, folder: str) -> dl.Source:
    data = archive.read_bytes()
    return dl.Source("https://example.invalid/x", archive.name, folder, len(data), hashlib.sha256(data).hexdigest())


def _zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(dl, "_fetch", refuse)


def test_sources_table():
    assert set(dl.SOURCES) == {"food101", "wikitext-2", "wikitext-103"}
    for src in dl.SOURCES.values():
        assert src.url.startswith("https://") and src.url.endswith(src.filename)
        assert src.size > 0 and (src.sha256 or src.md5)
        assert src.sha256 is None or re.fullmatch("[0-9a-f]{64}", src.sha256)
        assert src.md5 is None or re.fullmatch("[0-9a-f]{32}", src.md5)
    assert dl.source("food101").folder == "food-101"
    assert dl.source("wikitext-103").folder == "wikitext-103-raw"


def test_unknown_name_is_refused(tmp_path, no_network):
    with pytest.raises(DataError, match="no download for 'imagenet'") as info:
        download("imagenet", tmp_path)
    assert "wikitext-2" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_is_not_downloaded_again(tmp_path, no_network):
    (tmp_path / "wikitext-2-raw").mkdir()
    assert download("wikitext-2", tmp_path) == tmp_path / "wikitext-2-raw"


def test_verify_checks_size_and_checksum(tmp_path):
    archive = _zip(tmp_path / "a.zip", {"a/x.txt": "hello"})
    src = _source(archive, "a")
    dl.verify(archive, src)
    with pytest.raises(DataError, match="bytes, expected"):
        dl.verify(archive, dl.Source(src.url, src.filename, "a", src.size + 1, src.sha256))
    with pytest.raises(DataError, match="sha256 .* does not match"):
        dl.verify(archive, dl.Source(src.url, src.filename, "a", src.size, "0" * 64))
    with pytest.raises(DataError, match="md5 .* does not match"):
        dl.verify(archive, dl.Source(src.url, src.filename, "a", src.size, md5="0" * 32))


def test_install_zip_gives_a_loadable_wikitext_folder(tmp_path):
    raw = make_wikitext(tmp_path / "made")
    files = {f"wikitext-2-raw/{p.name}": p.read_text(encoding="utf-8") for p in raw.iterdir()}
    archive = _zip(tmp_path / "wikitext-2-raw-v1.zip", files)
    root = tmp_path / "data"
    root.mkdir()
    folder = dl.install(archive, _source(archive, "wikitext-2-raw"), root)
    assert folder == root / "wikitext-2-raw"
    assert [p.name for p in root.iterdir()] == ["wikitext-2-raw"]  # no temporary folder left
    assert len(text_data("wikitext-2", root=folder).train) > 0


def test_download_uses_a_verified_local_archive(tmp_path, monkeypatch, no_network):
    made = make_food101(tmp_path / "made")
    root = tmp_path / "data"
    root.mkdir()
    archive = root / "food-101.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(made, arcname="food-101")
    monkeypatch.setitem(dl.SOURCES, "food101", _source(archive, "food-101"))
    folder = download("food101", root)
    assert folder == root / "food-101"
    assert image_data("food101", root=folder, image_size=8).num_classes == 3


def test_unsafe_or_wrong_archives_are_refused(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    evil = _zip(tmp_path / "evil.zip", {"food-101/ok.txt": "x", "../outside.txt": "x"})
    with pytest.raises(DataError, match="outside"):
        dl.install(evil, _source(evil, "food-101"), root)
    wrong = _zip(tmp_path / "wrong.zip", {"something-else/x.txt": "x"})
    with pytest.raises(DataError, match="expected folder food-101/"):
        dl.install(wrong, _source(wrong, "food-101"), root)
    assert list(root.iterdir()) == [] and not (tmp_path / "outside.txt").exists()


def test_the_module_and_the_function_have_different_names():
    """The module used to be binedu.data.download, hidden by the function of that name."""
    assert binedu.data.download is dl.download and callable(binedu.data.download)
    assert importlib.import_module("binedu.data.fetch") is dl


class FakeServer:
    """Stands in for urllib: answers every request with ``body``, counting bytes read."""

    def __init__(self, body: bytes) -> None:
        self.body, self.read_bytes, self.requests = body, 0, 0

    def urlopen(self, request, timeout=None):
        self.requests += 1
        server = self

        class Response(io.BytesIO):
            def read(self, n=-1):
                block = super().read(n)
                server.read_bytes += len(block)
                return block

        return Response(self.body)


@pytest.fixture
def wikitext_archive(tmp_path, monkeypatch):
    """A small wikitext-2 zip registered as the 'wikitext-2' source, and a fake server."""
    raw = make_wikitext(tmp_path / "made")
    files = {f"wikitext-2-raw/{p.name}": p.read_text(encoding="utf-8") for p in raw.iterdir()}
    archive = _zip(tmp_path / "served.zip", files)
    monkeypatch.setitem(dl.SOURCES, "wikitext-2", _source(archive, "wikitext-2-raw"))
    server = FakeServer(archive.read_bytes())
    monkeypatch.setattr(dl.urllib.request, "urlopen", server.urlopen)
    return archive, server


def test_a_symlink_at_the_part_file_is_replaced_not_followed(tmp_path, wikitext_archive):
    root = tmp_path / "data"
    root.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    src = dl.source("wikitext-2")
    (root / (src.filename + ".part")).symlink_to(victim)
    folder = download("wikitext-2", root)
    assert victim.read_text() == "precious"
    assert (folder / "wiki.train.raw").is_file()
    assert not (root / (src.filename + ".part")).exists()


def test_the_download_stops_at_the_expected_size(tmp_path, wikitext_archive, monkeypatch):
    archive, server = wikitext_archive
    server.body = archive.read_bytes() + b"x" * 20_000_000  # 20 MB more than expected
    root = tmp_path / "data"
    with pytest.raises(DataError, match="more than the expected"):
        download("wikitext-2", root)
    assert server.read_bytes <= archive.stat().st_size + 1
    assert sorted(p.name for p in root.iterdir()) == []  # no .part file left behind


def test_a_kept_archive_with_a_wrong_checksum_is_downloaded_again(tmp_path, wikitext_archive):
    archive, server = wikitext_archive
    root = tmp_path / "data"
    root.mkdir()
    kept = root / dl.source("wikitext-2").filename
    kept.write_bytes(b"\0" * archive.stat().st_size)  # right size, wrong bytes
    folder = download("wikitext-2", root)
    assert server.requests == 1 and kept.read_bytes() == archive.read_bytes()
    assert len(text_data("wikitext-2", root=folder).train) > 0


def test_a_good_kept_archive_is_not_downloaded_again(tmp_path, wikitext_archive):
    archive, server = wikitext_archive
    root = tmp_path / "data"
    root.mkdir()
    (root / dl.source("wikitext-2").filename).write_bytes(archive.read_bytes())
    download("wikitext-2", root)
    assert server.requests == 0
