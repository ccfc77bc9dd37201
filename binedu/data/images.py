"""Image data for the BCVNN (Alg. 7): the UCI digits shipped with binedu (offline), Food-101 and any
folder of class-named image folders.

Every image becomes a float32 ``(C, H, W)`` tensor: read with Pillow, converted to RGB
(or grey ``L`` for digits), resized to ``image_size x image_size`` (bilinear, the aspect
ratio is not kept, as the paper feeds 256x256x3), scaled to [0, 1], then standardized per
channel, ``(x - mean[c]) / std[c]``, with the mean and standard deviation of the
training split (exact for digits, estimated from a seeded sample of up to 256 training
images for image files). They are stored in ``ImageData.mean``/``ImageData.std`` so that a
new image can be prepared the same way. Image files are read lazily, one per item:
Food-101 (5 GB) is never held in memory.

Bad data is found when the data is built, before any training step: an empty training
or validation split raises :class:`DataError` (``val_fraction=0``, one image per class),
a data set of one class gets a warning, and every image file's header is opened and
verified up front (:func:`verify_images`: Pillow reads the format and size without
decoding the pixels, a few seconds for Food-101's 101,000 files). An unreadable file
(not an image, empty, a header that claims more than :data:`MAX_PIXELS` pixels) is not
skipped: the
``DataError`` counts them and names the first, so the data set can be repaired rather
than silently shrunk. A file whose header is fine but whose pixels are cut short is
found only when it is read, and its ``DataError`` names it too.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..metrics import dataset_len
from .digits import load_digits
from .errors import DataError, require_dir, require_file
from .hard_digits import digit_splits
from .image_sets import MAX_IMAGE_SIZE, ImageData, TensorImageDataset, _channel_stats
from .split import balanced_subset, check_fraction, check_limit, check_splits, stratified_split

__all__ = ["ImageData", "TensorImageDataset", "ImageFileDataset", "image_data", "load_image", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
MAX_PIXELS = 25_000_000
"""The most pixels an image file may declare (25 Mpx, a 24-megapixel camera's photo; a
Food-101 image has at most 512x512). Decoding costs about 3 bytes a pixel and the
float conversion 12 more: a 420 KB PNG that declares 144 Mpx would cost 1.2 GB per
read. Pillow's own limit (89 Mpx, an error only above twice that) is far looser."""
STATS_SAMPLE = 256  # training images read to estimate the per-channel mean and std
FOOD101_HINT = (
    "Expected the official Food-101 layout: food-101/images/<class>/<id>.jpg and "
    "food-101/meta/classes.txt, train.txt, test.txt. Get it with "
    "binedu.data.download('food101', DIR) or from https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/."
)
FOLDER_HINT = "Expected root/<class_name>/*.jpg|*.jpeg|*.png, one folder per class."


def load_image(path: str | Path, image_size: int, mode: str = "RGB") -> torch.Tensor:
    """One image file as a float32 ``(C, H, W)`` tensor in [0, 1], resized to
    ``image_size x image_size``; ``mode`` is ``"RGB"`` (3 channels) or ``"L"`` (1)."""
    try:
        with _open_image(path) as img:
            img.draft(mode, (image_size, image_size))  # JPEG: decode at a reduced scale, much faster
            img = img.convert(mode).resize((image_size, image_size), Image.Resampling.BILINEAR)
            pixels = np.asarray(img, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as err:
        raise DataError(f"cannot read image {path}: {err}") from err
    if pixels.ndim == 2:
        return torch.from_numpy(pixels)[None]
    return torch.from_numpy(rearrange(pixels, "h w c -> c h w").copy())


def _open_image(path: str | Path) -> Image.Image:
    """``Image.open(path)`` (the header only: nothing is decoded), refused with
    ``DecompressionBombError`` when it declares more than :data:`MAX_PIXELS` pixels.
    Pillow's own warning for 89-179 Mpx is silenced: binedu's limit is stricter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = Image.open(path)
    width, height = img.size
    if width * height > MAX_PIXELS:
        img.close()
        raise Image.DecompressionBombError(
            f"it declares {width}x{height} = {width * height:,} pixels, more than binedu's limit of {MAX_PIXELS:,}"
        )
    return img


def verify_images(paths: Sequence[Path], what: str) -> None:
    """Open every file's header with Pillow and ``verify()`` it (no pixel is decoded);
    raise one :class:`DataError` that counts the unreadable files of ``what`` and names
    the first ones, instead of failing mid-epoch on the first of them."""
    bad = []
    for path in paths:
        try:
            with _open_image(path) as img:
                img.verify()
        except Exception as err:  # noqa: BLE001 (Pillow raises many types for a broken file)
            bad.append(f"{path} ({type(err).__name__}: {err})")
    if bad:
        raise DataError(
            f"{len(bad)} of {len(paths)} image files of {what} cannot be read: {'; '.join(bad[:3])}"
            + (" ..." if len(bad) > 3 else "")
            + ". Remove or replace them."
        )


class ImageFileDataset(Dataset):
    """Images read from disk on each access, resized and standardized."""

    def __init__(
        self,
        paths: Sequence[Path],
        labels: Sequence[int],
        image_size: int,
        mode: str = "RGB",
        mean: Sequence[float] = (0.0,),
        std: Sequence[float] = (1.0,),
    ) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} image paths but {len(labels)} labels")
        self.paths, self.labels = list(paths), [int(c) for c in labels]
        self.image_size, self.mode = image_size, mode
        self.set_stats(mean, std)

    def set_stats(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Standardize with these per-channel statistics from now on."""
        self.mean = torch.tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).reshape(-1, 1, 1)

    def raw(self, i: int) -> torch.Tensor:
        """Image ``i`` in [0, 1], before standardization."""
        return load_image(self.paths[i], self.image_size, self.mode)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.raw(i) - self.mean) / self.std, torch.tensor(self.labels[i], dtype=torch.int64)


def _check_size(image_size: int | None, default: int) -> int:
    size = default if image_size is None else image_size
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_IMAGE_SIZE:
        raise ValueError(f"image_size must be a positive integer of at most {MAX_IMAGE_SIZE}, got {image_size!r}")
    return size


def _digits(image_size: int, val_fraction: float, seed: int, limit: int | None) -> ImageData:
    """The 1,797 UCI handwritten digits shipped with binedu (scikit-learn's copy), 8x8 grey,
    values 0..16."""
    raw_images, raw_labels = load_digits()
    images = rearrange(torch.tensor(raw_images, dtype=torch.float32) / 16.0, "n h w -> n 1 h w")
    if image_size != images.shape[-1]:
        images = torch.nn.functional.interpolate(
            images, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True
        ).clamp(0.0, 1.0)
    labels = torch.tensor(raw_labels, dtype=torch.int64)
    train, val = stratified_split(labels.numpy(), val_fraction, seed)
    train = balanced_subset(train, labels.numpy(), limit, seed)
    val = balanced_subset(val, labels.numpy(), limit, seed + 1)
    mean, std = _channel_stats(images[train])
    images = (images - torch.tensor(mean).reshape(-1, 1, 1).float()) / torch.tensor(std).reshape(-1, 1, 1).float()
    return ImageData(
        train=TensorImageDataset(images[train], labels[train]),
        val=TensorImageDataset(images[val], labels[val]),
        num_classes=10,
        in_channels=1,
        image_size=image_size,
        class_names=[str(d) for d in range(10)],
        name="digits",
        mean=mean,
        std=std,
    )


def _files(
    name: str,
    class_names: list[str],
    train: tuple[list[Path], list[int]],
    val: tuple[list[Path], list[int]],
    image_size: int,
    seed: int,
    limit: int | None,
    hint: str = "",
    where: str = "",
) -> ImageData:
    """ImageData over image files, standardized with statistics of a training sample;
    the splits and every file's header are checked first (module docstring)."""
    splits = []
    for k, (paths, labels) in enumerate((train, val)):
        keep = balanced_subset(np.arange(len(paths)), labels, limit, seed + k)
        splits.append(ImageFileDataset([paths[i] for i in keep], [labels[i] for i in keep], image_size))
    train_set, val_set = splits
    check_splits(where or name, len(train_set), len(val_set), len(class_names), hint)
    verify_images(train_set.paths + val_set.paths, where or name)
    sample = np.random.default_rng(seed).permutation(len(train_set))[:STATS_SAMPLE]
    mean, std = _channel_stats(torch.stack([train_set.raw(int(i)) for i in sample]))
    for dataset in splits:
        dataset.set_stats(mean, std)
    return ImageData(train_set, val_set, len(class_names), 3, image_size, class_names, name, mean, std)


def _read_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _food101_split(
    list_file: Path, images: Path, index: dict[str, int], listing: dict[str, set[str]]
) -> tuple[list[Path], list[int]]:
    """Paths and labels of one of meta/train.txt, meta/test.txt (lines ``class/id``)."""
    paths, labels, missing = [], [], []
    for number, line in enumerate(_read_lines(list_file), start=1):
        cls, sep, stem = line.partition("/")
        if not sep or not stem or "/" in stem:
            raise DataError(f"{list_file} line {number}: expected '<class>/<image id>', got {line!r}")
        if cls not in index:
            raise DataError(f"{list_file} line {number}: class {cls!r} is not in meta/classes.txt")
        if f"{stem}.jpg" not in listing[cls]:
            missing.append(images / cls / f"{stem}.jpg")
        paths.append(images / cls / f"{stem}.jpg")
        labels.append(index[cls])
    if missing:
        raise DataError(
            f"{len(missing)} image(s) listed in {list_file} do not exist, e.g. {missing[0]}"
            + (f" and {missing[1]}" if len(missing) > 1 else "")
        )
    if not paths:
        raise DataError(f"{list_file} lists no images. {FOOD101_HINT}")
    return paths, labels


def _food101(root: str | Path | None, image_size: int, seed: int, limit: int | None) -> ImageData:
    """Food-101: train from meta/train.txt (75,750 images), validation from meta/test.txt
    (25,250), as in the paper; the class order is that of meta/classes.txt."""
    root = require_dir(root, "image_data('food101')", FOOD101_HINT)
    if not (root / "meta").is_dir() and (root / "food-101" / "meta").is_dir():
        raise DataError(f"{root} holds a food-101/ folder: pass root={root / 'food-101'}")
    meta, images = root / "meta", root / "images"
    for file in ("classes.txt", "train.txt", "test.txt"):
        require_file(meta / file, "Food-101", FOOD101_HINT)
    require_dir(images, "Food-101 images", FOOD101_HINT)
    classes = _read_lines(meta / "classes.txt")
    if not classes:
        raise DataError(f"{meta / 'classes.txt'} lists no classes")
    if len(set(classes)) != len(classes):
        raise DataError(f"{meta / 'classes.txt'} lists a class twice")
    listing = {}
    for cls in classes:
        folder = images / cls
        if not folder.is_dir():
            raise DataError(f"class {cls!r} is listed in {meta / 'classes.txt'} but its folder {folder} is missing")
        listing[cls] = {entry.name for entry in os.scandir(folder)}
    index = {cls: i for i, cls in enumerate(classes)}
    train = _food101_split(meta / "train.txt", images, index, listing)
    val = _food101_split(meta / "test.txt", images, index, listing)
    return _files("food101", classes, train, val, image_size, seed, limit, where=f"Food-101 at {root}")


def _folder(root: str | Path | None, image_size: int, val_fraction: float, seed: int, limit: int | None) -> ImageData:
    """Any folder of class folders; a seeded split, stratified by class."""
    root = require_dir(root, "image_data('folder')", FOLDER_HINT)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"no class folders in {root}. {FOLDER_HINT}")
    paths: list[Path] = []
    labels: list[int] = []
    for label, cls in enumerate(classes):
        files = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not files:
            raise DataError(f"class folder {root / cls} holds no {'/'.join(IMAGE_EXTENSIONS)} images. {FOLDER_HINT}")
        paths += files
        labels += [label] * len(files)
    train, val = stratified_split(labels, val_fraction, seed)
    return _files(
        "folder",
        classes,
        ([paths[i] for i in train], [labels[i] for i in train]),
        ([paths[i] for i in val], [labels[i] for i in val]),
        image_size,
        seed,
        limit,
        hint=f"With val_fraction={val_fraction}, a class gives round(n * val_fraction) of its n images to "
        "validation (at least one when it has two or more): use a larger val_fraction or more images per class.",
        where=f"image folder {root}",
    )


IMAGE_DATASETS = ("digits", "digits-hard", "food101", "folder")


def image_data(
    name: str = "digits",
    root: str | Path | None = None,
    image_size: int | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    limit: int | None = None,
) -> ImageData:
    """Load an image classification data set.

    - ``"digits"``: the 1,797 UCI handwritten digits (8x8 grey, 10 classes) shipped with
      binedu (:mod:`binedu.data.digits`), no network; ``image_size`` defaults to 8, matching the
      ``"tiny"`` ImageConfig.
    - ``"digits-hard"``: the same digits at 28x28, randomly rotated, scaled, shifted and
      noisy (:mod:`binedu.data.hard_digits`), with a ``test`` split too; ``val_fraction``
      of the digits for validation and 20% for test.
    - ``"food101"``: ``root`` is the extracted ``food-101/`` folder; train and validation
      are the official meta/train.txt and meta/test.txt (``val_fraction`` is not used);
      ``image_size`` defaults to the paper's 256.
    - ``"folder"``: ``root/<class_name>/*.jpg|*.jpeg|*.png``; a seeded split of
      ``val_fraction``, stratified by class; ``image_size`` defaults to 256.

    ``limit`` keeps at most that many examples per split, spread over the classes.
    A missing or malformed folder, an empty split or an unreadable image file raises
    :class:`DataError` naming what is wrong, before anything is trained (module
    docstring); a single class gets a warning.
    """
    check_fraction(val_fraction)
    check_limit(limit)
    if name in ("digits", "digits-hard"):
        if name == "digits":
            data = _digits(_check_size(image_size, 8), val_fraction, seed, limit)
        else:
            data = digit_splits(True, image_size, val_fraction, seed=seed, limit=limit)
        check_splits(name, dataset_len(data.train), dataset_len(data.val), data.num_classes, f"val_fraction={val_fraction}")
        return data
    if name == "food101":
        return _food101(root, _check_size(image_size, 256), seed, limit)
    if name == "folder":
        return _folder(root, _check_size(image_size, 256), val_fraction, seed, limit)
    raise DataError(f"unknown image data set {name!r}; known: {list(IMAGE_DATASETS)}")
