"""Small data trees in the official layouts (Food-101, class folders, WikiText raw),
built in a test's tmp_path: the data tests load them instead of real downloads."""

from pathlib import Path

from PIL import Image

COLORS = {"ramen": (230, 40, 40), "apple_pie": (40, 200, 60), "bibimbap": (50, 60, 220)}


def write_image(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (20, 14), fmt: str = "JPEG") -> None:
    """A solid-colour image file (not square, as Food-101's are not)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, fmt)


def make_food101(root: Path, train: int = 4, test: int = 2) -> Path:
    """A tiny tree in the official Food-101 layout; each class is one solid colour.
    classes.txt is deliberately not in alphabetical order."""
    food = root / "food-101"
    lines = {"train": [], "test": []}
    for cls, color in COLORS.items():
        for k in range(train + test):
            write_image(food / "images" / cls / f"{100 + k}.jpg", color)
            lines["train" if k < train else "test"].append(f"{cls}/{100 + k}")
    (food / "meta").mkdir()
    (food / "meta" / "classes.txt").write_text("\n".join(COLORS) + "\n")
    for split, rows in lines.items():
        (food / "meta" / f"{split}.txt").write_text("\n".join(rows) + "\n")
    return food


def make_folder(root: Path, per_class: int = 5) -> Path:
    """root/<class>/img<i>.jpg|.PNG|.jpeg plus a text file and a hidden folder to ignore."""
    for k, (cls, color) in enumerate(COLORS.items()):
        for i in range(per_class):
            ext, fmt = [(".jpg", "JPEG"), (".PNG", "PNG"), (".jpeg", "JPEG")][(i + k) % 3]
            write_image(root / cls / f"img{i}{ext}", color, fmt=fmt)
        (root / cls / "notes.txt").write_text("not an image")
    (root / ".cache").mkdir()
    return root


# The raw files' own format: headings and paragraphs start with a space, headings end with one.
WIKI_TRAIN = "\n".join(
    [
        " = Valkyria Chronicles III = ",
        "",
        " Senjō no Valkyria 3 is a tactical role @-@ playing game . It sold 1 @,@ 000 copies in 2011 . "
        "Critics praised it . ",
        "",
        " = = Gameplay = = ",
        "",
        " The game is played in turns . Each turn lasts 3 @.@ 5 minutes . ",
        "",
    ]
)
WIKI_VALID = " = Tower Building = \n\n The tower was built in 1890 . It is well @-@ known . \n"


def make_wikitext(root: Path, train: str = WIKI_TRAIN, valid: str = WIKI_VALID) -> Path:
    """wiki.train.raw, wiki.valid.raw and wiki.test.raw in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "wiki.train.raw").write_text(train, encoding="utf-8")
    (root / "wiki.valid.raw").write_text(valid, encoding="utf-8")
    (root / "wiki.test.raw").write_text(valid, encoding="utf-8")
    return root
