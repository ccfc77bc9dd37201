"""Opt-in download of the paper's data sets, for users with a network.

Nothing in binedu calls this on its own (the tests never do): the offline defaults need
no download. ``download(name, root)`` fetches the official archive into ``root``,
checks its size and checksum, and extracts it into a temporary folder that is renamed
into place only when complete, so an interrupted run never leaves a half-extracted data
set that looks usable. It returns the folder to pass as ``root=`` to
:func:`binedu.data.image_data` or :func:`binedu.data.text_data`.

Writing is careful about what is already in ``root``: the partial file is created anew
(``O_EXCL | O_NOFOLLOW``, after removing any earlier one), so a symbolic link planted at
``<archive>.part`` is replaced, never followed; no more than the expected number of
bytes is read from the server; and a kept archive whose checksum does not match is
downloaded again instead of failing the same way forever.

(The module is ``binedu.data.fetch``; ``binedu.data.download`` is the function.)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError

__all__ = ["Source", "SOURCES", "source", "download", "verify", "install"]


@dataclass(frozen=True)
class Source:
    """Where an archive comes from, what it must hash to, and the folder it holds."""

    url: str
    filename: str
    folder: str  # the top folder inside the archive, i.e. the root for the loaders
    size: int
    sha256: str | None = None
    md5: str | None = None


SOURCES: dict[str, Source] = {
    # ETH Zurich, Bossard et al. 2014: 101 classes, 101,000 images, about 5 GB.
    "food101": Source(
        url="https://data.vision.ee.ethz.ch/cvl/food-101.tar.gz",
        filename="food-101.tar.gz",
        folder="food-101",
        size=4_996_278_331,
        md5="85eeb15f3717b99a5da872d97d918f87",
    ),
    # Merity et al. 2016, raw (untokenized) versions; Stephen Merity's mirror of the
    # original research.metamind.io files.
    "wikitext-2": Source(
        url="https://wikitext.smerity.com/wikitext-2-raw-v1.zip",
        filename="wikitext-2-raw-v1.zip",
        folder="wikitext-2-raw",
        size=4_721_645,
        sha256="ef7edb566e3e2b2d31b29c1fdb0c89a4cc683597484c3dc2517919c615435a11",
    ),
    "wikitext-103": Source(
        url="https://wikitext.smerity.com/wikitext-103-raw-v1.zip",
        filename="wikitext-103-raw-v1.zip",
        folder="wikitext-103-raw",
        size=191_984_949,
        sha256="91c00ae287f0d699e18605c84afc9e45c192bc6b7797ff8837e5474655a33794",
    ),
}


def source(name: str) -> Source:
    """The archive of data set ``name``, or a ``DataError`` listing the known names."""
    if name not in SOURCES:
        raise DataError(f"no download for {name!r}; known: {sorted(SOURCES)}")
    return SOURCES[name]


def verify(path: Path, src: Source) -> None:
    """Raise a ``DataError`` unless ``path`` has the size and checksum of ``src``."""
    size = path.stat().st_size
    if size != src.size:
        raise DataError(f"{path} has {size:,} bytes, expected {src.size:,}: incomplete or wrong download")
    for algo, expected in (("sha256", src.sha256), ("md5", src.md5)):
        if expected is None:
            continue
        digest = hashlib.new(algo)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != expected:
            raise DataError(f"{path}: {algo} {digest.hexdigest()} does not match the expected {expected}")


def _extract(archive: Path, into: Path) -> None:
    """Extract a .zip or .tar.gz, refusing members that would land outside ``into``."""
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            _check_members(names, into)
            zf.extractall(into)
        return
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        _check_members([m.name for m in members], into)
        if any(m.issym() or m.islnk() or m.isdev() for m in members):
            raise DataError(f"{archive} holds links or devices; refusing to extract it")
        if hasattr(tarfile, "data_filter"):  # Python 3.10.12, 3.11.4 and later
            tf.extractall(into, filter="data")
        else:
            tf.extractall(into)


def _check_members(names: list[str], into: Path) -> None:
    base = into.resolve()
    for name in names:
        target = (base / name).resolve()
        if target != base and base not in target.parents:
            raise DataError(f"archive member {name!r} would be written outside {into}; refusing to extract")


def install(archive: str | Path, src: Source, root: str | Path) -> Path:
    """Check ``archive`` against ``src`` and extract it into ``root`` atomically;
    return ``root / src.folder``."""
    archive, root = Path(archive), Path(root)
    verify(archive, src)
    target = root / src.folder
    tmp = Path(tempfile.mkdtemp(prefix=f".{src.folder}.", dir=root))
    try:
        _extract(archive, tmp)
        if not (tmp / src.folder).is_dir():
            raise DataError(f"{archive} does not hold the expected folder {src.folder}/")
        os.replace(tmp / src.folder, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _open_new(path: Path):
    """``path`` created for writing; whatever was there (a file, a symbolic link) is
    removed first, and a link planted in between makes the open fail, not follow it."""
    path.unlink(missing_ok=True)  # removes a link itself, never its target
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    return os.fdopen(os.open(path, flags, 0o644), "wb")


def _fetch(url: str, path: Path, size: int) -> None:
    """Download ``url`` to ``path`` through a ``.part`` file, with a progress bar,
    reading at most ``size`` bytes (a longer answer is refused)."""
    from tqdm.auto import tqdm

    part = path.with_name(path.name + ".part")
    request = urllib.request.Request(url, headers={"User-Agent": "binedu (python urllib)"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response, _open_new(part) as out:
            with tqdm(total=size, unit="B", unit_scale=True, desc=path.name) as bar:
                written = 0
                while block := response.read(min(1 << 20, size + 1 - written)):
                    written += len(block)
                    if written > size:
                        raise DataError(f"{url} sent more than the expected {size:,} bytes; refusing it")
                    out.write(block)
                    bar.update(len(block))
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def download(name: str, root: str | Path = "data") -> Path:
    """Download and extract data set ``name`` ("food101", "wikitext-2", "wikitext-103")
    into ``root``, unless ``root/<folder>`` is already there; return that folder.

    The archive is kept in ``root`` (delete it to save space) and reused if a later call
    finds it with the right size and checksum; one that does not match is downloaded
    again.
    """
    src = source(name)
    root = Path(root).expanduser()
    target = root / src.folder
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    archive = root / src.filename
    try:
        verify(archive, src)
    except (DataError, OSError):  # missing, incomplete or corrupt: fetch it (again)
        _fetch(src.url, archive, src.size)
    return install(archive, src, root)
