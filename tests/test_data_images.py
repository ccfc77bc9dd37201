"""Image data: the offline digits, Food-101 and class-folder layouts built in tmp_path,
and every error a missing or malformed folder gives."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import COLORS, make_folder, make_food101, write_image
from PIL import Image

from binedu import ImageClassifier
from binedu.data import DataError, image_data, load_image, loader
from binedu.data.split import balanced_subset, stratified_split


@pytest.fixture
def food(tmp_path) -> Path:
    return make_food101(tmp_path)


# ---------------------------------------------------------------- digits (offline default)


@pytest.fixture(scope="module")
def digits():
    return image_data("digits")


def test_digits_shapes_and_sizes(digits):
    assert len(digits.train) + len(digits.val) == 1797
    assert len(digits.val) == round(0.2 * 1797)
    assert (digits.num_classes, digits.in_channels, digits.image_size, digits.name) == (10, 1, 8, "digits")
    assert digits.class_names == [str(d) for d in range(10)]
    image, label = digits.train[0]
    assert image.shape == (1, 8, 8) and image.dtype == torch.float32
    assert label.dtype == torch.int64 and 0 <= int(label) < 10


def test_digits_are_standardized_with_training_statistics(digits):
    train = torch.stack([digits.train[i][0] for i in range(len(digits.train))])
    assert abs(float(train.mean())) < 1e-4
    assert float(train.std()) == pytest.approx(1.0, abs=1e-3)
    raw = train * digits.std[0] + digits.mean[0]  # undone: back in [0, 1]
    assert float(raw.min()) >= -1e-4 and float(raw.max()) <= 1 + 1e-4
    assert float(raw.max()) == pytest.approx(1.0, abs=1e-4)


def test_digits_split_is_stratified_and_seeded(digits):
    labels = torch.stack([digits.val[i][1] for i in range(len(digits.val))])
    counts = torch.bincount(labels, minlength=10)
    assert int(counts.min()) >= 34 and int(counts.max()) <= 38  # about 20 % of ~180 per class
    again = image_data("digits", seed=0)
    other = image_data("digits", seed=1)
    assert torch.equal(again.val[5][0], digits.val[5][0])
    assert not all(torch.equal(other.val[i][0], digits.val[i][0]) for i in range(20))


def test_digits_resize_and_limit():
    data = image_data("digits", image_size=16, limit=50, val_fraction=0.1)
    assert data.image_size == 16 and data.train[0][0].shape == (1, 16, 16)
    assert len(data.train) == 50 and len(data.val) == 50
    labels = [int(data.train[i][1]) for i in range(50)]
    assert np.bincount(labels, minlength=10).tolist() == [5] * 10  # spread over the classes


def test_digits_feed_the_tiny_image_model(digits):
    model = ImageClassifier.from_config("tiny")
    images, labels = next(iter(loader(digits.train, batch_size=16, shuffle=True, seed=0)))
    assert images.shape == (16, 1, 8, 8) and labels.shape == (16,)
    assert model(images).shape == (16, 10)


def test_loader_shuffles_reproducibly(digits):
    first = [labels for _, labels in loader(digits.train, batch_size=64, shuffle=True, seed=3)]
    again = [labels for _, labels in loader(digits.train, batch_size=64, shuffle=True, seed=3)]
    other = [labels for _, labels in loader(digits.train, batch_size=64, shuffle=True, seed=4)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
    with pytest.raises(ValueError, match="batch_size"):
        loader(digits.train, batch_size=0)


# ---------------------------------------------------------------- Food-101 layout


def test_food101_official_layout_loads(food):
    data = image_data("food101", root=food, image_size=16)
    assert data.class_names == list(COLORS)  # the order of meta/classes.txt
    assert (len(data.train), len(data.val)) == (12, 6)
    assert (data.num_classes, data.in_channels, data.image_size, data.name) == (3, 3, 16, "food101")
    for dataset in (data.train, data.val):
        for i in range(len(dataset)):
            image, label = dataset[i]
            assert image.shape == (3, 16, 16) and image.dtype == torch.float32
            color = torch.tensor(COLORS[data.class_names[int(label)]]) / 255
            assert torch.allclose(dataset.raw(i).mean(dim=(1, 2)), color, atol=0.02)  # the right label


def test_food101_is_standardized_per_channel(food):
    data = image_data("food101", root=food, image_size=8)
    train = torch.stack([data.train[i][0] for i in range(len(data.train))])
    assert torch.allclose(train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(train.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-2)
    assert len(data.mean) == len(data.std) == 3


def test_food101_default_size_is_the_papers(food):
    assert image_data("food101", root=food).image_size == 256
    assert image_data("food101", root=food).train[0][0].shape == (3, 256, 256)


def test_food101_limit_spreads_over_classes(food):
    data = image_data("food101", root=food, image_size=8, limit=3)
    assert len(data.train) == len(data.val) == 3
    assert sorted(int(data.train[i][1]) for i in range(3)) == [0, 1, 2]


def test_food101_missing_root(tmp_path):
    with pytest.raises(DataError, match="needs root"):
        image_data("food101")
    with pytest.raises(DataError, match="folder not found") as info:
        image_data("food101", root=tmp_path / "nowhere")
    assert "nowhere" in str(info.value)


def test_food101_parent_folder_gets_a_hint(food):
    with pytest.raises(DataError, match="pass root=") as info:
        image_data("food101", root=food.parent)
    assert str(food) in str(info.value)


@pytest.mark.parametrize("name", ["classes.txt", "train.txt", "test.txt"])
def test_food101_missing_meta_file(food, name):
    (food / "meta" / name).unlink()
    with pytest.raises(DataError, match="missing file") as info:
        image_data("food101", root=food)
    assert str(food / "meta" / name) in str(info.value)


def test_food101_missing_images_folder(food):
    (food / "images").rename(food / "pictures")
    with pytest.raises(DataError, match="folder not found") as info:
        image_data("food101", root=food)
    assert str(food / "images") in str(info.value)


def test_food101_class_without_folder(food):
    (food / "images" / "ramen").rename(food / "images" / "noodles")
    with pytest.raises(DataError, match="'ramen' is listed in") as info:
        image_data("food101", root=food)
    assert str(food / "images" / "ramen") in str(info.value)


def test_food101_listed_image_missing(food):
    (food / "images" / "bibimbap" / "104.jpg").unlink()
    with pytest.raises(DataError, match="1 image\\(s\\) listed in") as info:
        image_data("food101", root=food)
    assert str(food / "images" / "bibimbap" / "104.jpg") in str(info.value)
    assert "test.txt" in str(info.value)


@pytest.mark.parametrize(
    "line, problem", [("ramen", "expected '<class>/<image id>'"), ("sushi/1", "class 'sushi' is not in")]
)
def test_food101_malformed_list_line(food, line, problem):
    with open(food / "meta" / "train.txt", "a") as f:
        f.write(line + "\n")
    with pytest.raises(DataError, match=problem) as info:
        image_data("food101", root=food)
    assert "train.txt line 13" in str(info.value)


def test_food101_empty_lists(food):
    (food / "meta" / "classes.txt").write_text("\n")
    with pytest.raises(DataError, match="lists no classes"):
        image_data("food101", root=food)


def test_unreadable_images_are_found_when_the_data_is_built(food):
    """Every header is verified up front: a corrupt image outside the 256 sampled for the
    statistics used to abort training mid-epoch."""
    broken = [food / "images" / "ramen" / "100.jpg", food / "images" / "bibimbap" / "105.jpg"]
    broken[0].write_bytes(b"not a jpeg")
    broken[1].write_bytes(b"")
    with pytest.raises(DataError, match="2 of 18 image files of Food-101 at .* cannot be read") as info:
        image_data("food101", root=food, image_size=8)
    assert all(str(path) in str(info.value) for path in broken)


def test_an_image_cut_short_names_its_path_when_read(food):
    cut = food / "images" / "ramen" / "100.jpg"
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(cut, "JPEG")
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])  # header intact, pixels cut short
    with pytest.raises(DataError, match="cannot read image") as info:  # here: reading the statistics sample
        data = image_data("food101", root=food, image_size=8)
        for i in range(len(data.train)):
            data.train[i]
    assert str(cut) in str(info.value)


def bomb_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A PNG whose header claims width x height pixels (400 megapixels): Pillow's
    decompression-bomb guard refuses it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


def test_a_decompression_bomb_is_a_data_error_naming_the_file(tmp_path):
    root = make_folder(tmp_path / "photos")
    bomb = bomb_png(root / "red" / "huge.png")
    with pytest.raises(DataError, match="DecompressionBombError") as info:
        image_data("folder", root=root, image_size=8, val_fraction=0.4)
    assert str(bomb) in str(info.value)
    with pytest.raises(DataError) as info:
        load_image(bomb, 8)
    assert str(bomb) in str(info.value)


@pytest.mark.parametrize(
    "per_class, val_fraction, split",
    [(1, 0.2, "validation"), (5, 0.0, "validation"), (2, 0.5, None)],
)
def test_empty_splits_are_refused_when_the_data_is_built(tmp_path, per_class, val_fraction, split):
    """--val-fraction 0 and one image per class used to fail only after the first epoch."""
    root = make_folder(tmp_path / "photos", per_class=per_class)
    if split is None:
        data = image_data("folder", root=root, image_size=8, val_fraction=val_fraction)
        assert len(data.train) == len(data.val) == 3
        return
    with pytest.raises(DataError, match=f"the {split} split is empty. With val_fraction={val_fraction}"):
        image_data("folder", root=root, image_size=8, val_fraction=val_fraction)


def test_digits_without_validation_are_refused():
    with pytest.raises(DataError, match="digits: the validation split is empty"):
        image_data("digits", val_fraction=0.0)


def test_a_single_class_gets_a_warning(tmp_path):
    write_image(tmp_path / "only" / "cats" / "a.jpg", (0, 0, 0))
    write_image(tmp_path / "only" / "cats" / "b.jpg", (0, 0, 0))
    with pytest.warns(UserWarning, match="single class"):
        data = image_data("folder", root=tmp_path / "only", image_size=8, val_fraction=0.5)
    assert data.num_classes == 1


# ---------------------------------------------------------------- any folder of class folders


def test_folder_layout_loads_with_a_stratified_split(tmp_path):
    root = make_folder(tmp_path / "photos")
    data = image_data("folder", root=root, image_size=12, val_fraction=0.4)
    assert data.class_names == sorted(COLORS)
    assert (len(data.train), len(data.val)) == (9, 6)
    assert sorted(int(data.val[i][1]) for i in range(6)) == [0, 0, 1, 1, 2, 2]
    image, label = data.val[0]
    assert image.shape == (3, 12, 12) and label.dtype == torch.int64
    paths = {p for d in (data.train, data.val) for p in d.paths}
    assert len(paths) == 15  # no image in both halves, none left out, notes.txt ignored
    same = image_data("folder", root=root, image_size=12, val_fraction=0.4)
    assert same.val.paths == data.val.paths


def test_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no class folders in") as info:
        image_data("folder", root=empty)
    assert str(empty) in str(info.value)
    (empty / "cats").mkdir()
    (empty / "cats" / "readme.md").write_text("no images here")
    with pytest.raises(DataError, match="holds no .jpg") as info:
        image_data("folder", root=empty)
    assert str(empty / "cats") in str(info.value)
    file = tmp_path / "file.jpg"
    file.write_text("x")
    with pytest.raises(DataError, match="is a file"):
        image_data("folder", root=file)


def test_bad_arguments():
    with pytest.raises(DataError, match="unknown image data set 'mnist'"):
        image_data("mnist")
    with pytest.raises(ValueError, match="image_size"):
        image_data("digits", image_size=0)
    with pytest.raises(ValueError, match="val_fraction"):
        image_data("digits", val_fraction=1.0)
    with pytest.raises(ValueError, match="limit"):
        image_data("digits", limit=0)
    assert issubclass(DataError, ValueError)


def test_load_image_modes(tmp_path):
    write_image(tmp_path / "a.png", (255, 0, 0), fmt="PNG")
    rgb, grey = load_image(tmp_path / "a.png", 5), load_image(tmp_path / "a.png", 5, mode="L")
    assert rgb.shape == (3, 5, 5) and grey.shape == (1, 5, 5)
    assert torch.allclose(rgb[:, 2, 2], torch.tensor([1.0, 0.0, 0.0]))
    assert 0.0 <= float(grey.min()) <= float(grey.max()) <= 1.0


def test_split_helpers():
    labels = [0] * 10 + [1] * 5
    train, val = stratified_split(labels, 0.2, seed=0)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(15))
    assert [labels[i] for i in val].count(1) == 1 and [labels[i] for i in val].count(0) == 2
    subset = balanced_subset(np.arange(15), labels, 4, seed=0)
    assert sorted(labels[i] for i in subset) == [0, 0, 1, 1]


def test_a_png_declaring_144_megapixels_is_refused_by_the_header_check(tmp_path):
    """Under Pillow's error limit (2 x 89 Mpx) it passed verify() and cost 1.2 GB per read (issue 22)."""
    from binedu.data.images import MAX_PIXELS, verify_images

    big = bomb_png(tmp_path / "big.png", 12000, 12000)
    assert big.stat().st_size < 1000 and 12000 * 12000 > MAX_PIXELS
    with pytest.raises(DataError, match="144,000,000 pixels, more than binedu's limit"):
        verify_images([big], "a test folder")
    with pytest.raises(DataError, match="big.png"):
        load_image(big, 8)
    fine = bomb_png(tmp_path / "fine.png", 4000, 4000)  # 16 Mpx: declared size allowed (pixels cut short)
    verify_images([fine], "a test folder")
