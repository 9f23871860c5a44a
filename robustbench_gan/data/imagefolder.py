"""Image files in class folders, as torchvision's ImageFolder reads them: train/, test/."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..bounds import Count
from ..contract.data import DataSplit, check_limit, resolve_root, stratified_order
from ..errors import UserError
from ..registry import DATASETS
from .split import images_to_tensor, labels_to_tensor, official_test_split

IMAGE_EXTENSIONS = (
    ".bmp",
    ".gif",
    ".jpeg",
    ".jpg",
    ".pgm",
    ".png",
    ".ppm",
    ".tif",
    ".tiff",
    ".webp",
)
# the decoders Pillow may pick by content: never EPS (Ghostscript) or another plugin, whatever
# the file's name says
PILLOW_FORMATS = ("BMP", "GIF", "JPEG", "PNG", "PPM", "TIFF", "WEBP")
LAYOUT = "<folder>/train/<class>/*.jpg and <folder>/test/<class>/*.jpg (torchvision's ImageFolder)"
MODES = {1: "L", 3: "RGB"}


def resolve_folder(path: str | Path | None, root: str | Path | None) -> Path:
    """``path`` if absolute, else ``path`` under the data folder; it must be a folder."""
    if path is None or str(path) == "":
        raise UserError(
            'imagefolder: no folder given; set path = "..." in the suite\'s [dataset] section '
            f"(absolute, or relative to --data-dir / RBG_DATA_DIR) to a folder holding {LAYOUT}"
        )
    folder = Path(path).expanduser()
    if not folder.is_absolute():
        base = resolve_root(root)
        if base is None:
            raise UserError(
                f"imagefolder: path {str(path)!r} is relative to the data folder but no data "
                "folder was given; pass --data-dir or set RBG_DATA_DIR, or give an absolute path"
            )
        folder = base / folder
    if not folder.is_dir():
        raise UserError(f"imagefolder: folder {folder} not found; want {LAYOUT}")
    return folder


def image_size(resize: object) -> tuple[int, int] | None:
    """``resize`` as (height, width): an int is a square side, a pair is [height, width]."""

    def positive(v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    if resize is None:
        return None
    if positive(resize):
        return (int(resize), int(resize))  # type: ignore[call-overload]
    if isinstance(resize, Sequence) and not isinstance(resize, str) and len(resize) == 2:
        if all(positive(v) for v in resize):
            return (int(resize[0]), int(resize[1]))
    raise UserError(
        f"imagefolder: resize must be a positive integer or [height, width], got {resize!r}"
    )


def color_mode(channels: object) -> str:
    """The PIL mode images are converted to: "RGB" for 3 channels, "L" for 1."""
    if isinstance(channels, bool) or not isinstance(channels, int) or channels not in MODES:
        raise UserError(f"imagefolder: channels must be 3 (RGB) or 1 (grayscale), got {channels!r}")
    return MODES[channels]


def followed(entry: os.DirEntry[str], kind: str) -> bool:
    """Whether ``entry`` is a folder (``kind`` "dir") or a file ("file"), following symbolic
    links. A link that cannot be followed to the end (one that loops, ELOOP) is refused in
    one line naming it; a link to nothing is neither and is passed over, as before."""
    try:
        return entry.is_dir() if kind == "dir" else entry.is_file()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(f"imagefolder: cannot follow {entry.path}: {reason}") from None


def class_folders(split_dir: Path) -> list[str]:
    """Sorted names of the (non-hidden) sub-folders of ``split_dir``."""
    with os.scandir(split_dir) as entries:
        names = sorted(e.name for e in entries if not e.name.startswith(".") and followed(e, "dir"))
    if not names:
        raise UserError(f"imagefolder: no class folders in {split_dir}; want {LAYOUT}")
    return names


def check_same_classes(train_dir: Path, test_dir: Path, train: list[str], test: list[str]) -> None:
    """Raise UserError naming the classes that only one split has."""
    gaps = [
        f"{', '.join(sorted(set(a) - set(b)))} in {a_dir} but not in {b_dir}"
        for a, b, a_dir, b_dir in (
            (train, test, train_dir, test_dir),
            (test, train, test_dir, train_dir),
        )
        if set(a) - set(b)
    ]
    if gaps:
        raise UserError(
            f"imagefolder: both splits must have the same class folders: class {'; '.join(gaps)}"
        )


def list_split(split_dir: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    """Image files of every class folder (sorted by file name) and their labels, in file order."""
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        class_dir = split_dir / name
        with os.scandir(class_dir) as entries:
            found = sorted(
                e.name
                for e in entries
                if not e.name.startswith(".")
                and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
                and followed(e, "file")
            )
        if not found:
            raise UserError(
                f"imagefolder: no image files ({', '.join(IMAGE_EXTENSIONS)}) in {class_dir}"
            )
        files += [class_dir / f for f in found]
        labels += [label] * len(found)
    return files, labels


class ImageReader:
    """Decodes image files to one uint8 NCHW array; every image must come out the same size."""

    def __init__(self, mode: str, size: tuple[int, int] | None) -> None:
        self.mode = mode
        self.size = size
        self.first: tuple[Path, tuple[int, ...]] | None = None  # file and shape all must match

    def decode(self, path: Path) -> np.ndarray:
        try:
            with Image.open(path, formats=PILLOW_FORMATS) as image:
                image = image.convert(self.mode)
                if self.size is not None:
                    height, width = self.size
                    image = image.resize((width, height), Image.Resampling.BILINEAR)
                array = np.asarray(image, dtype=np.uint8)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            reason = " ".join(str(exc).split())
            raise UserError(f"imagefolder: cannot read image {path}: {reason}") from exc
        array = array[:, :, None] if array.ndim == 2 else array
        if self.first is None:
            self.first = (path, array.shape)
        elif array.shape != self.first[1]:
            (h, w, _), (h0, w0, _) = array.shape, self.first[1]
            raise UserError(
                f"imagefolder: {path} is {h}x{w} (height x width) but {self.first[0]} is "
                f"{h0}x{w0}; set resize = {h0} (or [height, width]) in the suite's [dataset] "
                "section to resize every image to one size"
            )
        return array

    def read(self, files: list[Path]) -> np.ndarray:
        """The images of ``files``, in that order, as (N, C, H, W) uint8."""
        first = self.decode(files[0])
        out = np.empty((len(files), *first.shape), dtype=np.uint8)
        out[0] = first
        for i, path in enumerate(files[1:], start=1):
            out[i] = self.decode(path)
        return out.transpose(0, 3, 1, 2)


def content_id(split_dir: Path, files: list[Path]) -> str:
    """``imagefolder-`` and 12 hex digits of the sha256 of every file's path (relative to
    ``split_dir``, which names its class) and bytes: two folders of other images never share
    it, and where the folder lies does not enter it."""
    digest = hashlib.sha256()
    for path in files:
        name = path.relative_to(split_dir).as_posix().encode()
        data = path.read_bytes()
        digest.update(b"%d:%s%d:" % (len(name), name, len(data)))
        digest.update(data)
    return f"imagefolder-{digest.hexdigest()[:12]}"


def pick(files: list[Path], labels: list[int], index: np.ndarray) -> tuple[list[Path], list[int]]:
    return [files[i] for i in index], [labels[i] for i in index]


@DATASETS.register("imagefolder")
def imagefolder(
    *,
    path: str | Path | None = None,
    root: str | Path | None = None,
    seed: int = 0,
    download: bool = False,
    max_train: Count | None = None,
    max_test: Count | None = None,
    test_only: bool = False,
    channels: int = 3,
    resize: int | Sequence[int] | None = None,
) -> DataSplit:
    """Images from ``path/train/<class>/*`` and ``path/test/<class>/*`` as (N, C, H, W) in [0, 1].

    ``path`` is used as it is when absolute, else it is taken under the data folder (``root``,
    i.e. --data-dir or $RBG_DATA_DIR). Classes are the class folders in sorted order (both
    splits must have the same ones); ``class_names`` are the folder names. Image files (by
    extension: jpg, jpeg, png, bmp, gif, webp, tif, ppm, pgm) are read in sorted file-name
    order within each class, converted to RGB (``channels = 3``) or grayscale
    (``channels = 1``), and resized with bilinear filtering when ``resize`` is set (an int for
    a square, or [height, width]); without ``resize`` all images must have one size.

    The samples come in a seeded order with the classes interleaved in proportion (``seed``
    for train, ``seed + 1`` for test), so that the first n test images an evaluation takes are
    class-balanced; ``max_train`` and ``max_test`` keep a prefix of that order (the same
    images DataSplit.limited would keep), and only those files are decoded.

    ``test_only = true`` reads only ``path/test`` (train/ may be absent) and returns its images
    in file order (class by class; the first ``max_test`` of them, ``max_train`` is ignored) as
    the test part, the train part being the same tensors: for evaluating a pretrained model.
    ``download`` is accepted for a uniform signature and ignored: nothing is downloaded.

    Symbolic links are followed, as torchvision's ImageFolder follows them: ``path`` itself
    may be any folder (absolute paths are taken), so a link out of it reads nothing that
    ``path`` could not name. A link that loops (a class folder or a file linking to itself)
    is refused in one line naming it.

    The split's ``source`` (the leaderboard's dataset) is ``imagefolder-`` and a hash of the
    test/ folder's files, names and bytes: runs on other images never rank together.
    """
    folder = resolve_folder(path, root)
    reader = ImageReader(color_mode(channels), image_size(resize))
    train_dir, test_dir = folder / "train", folder / "test"
    if not test_dir.is_dir():
        raise UserError(f"imagefolder: no test/ folder in {folder}; want {LAYOUT}")
    classes = class_folders(test_dir)
    if train_dir.is_dir():
        check_same_classes(train_dir, test_dir, class_folders(train_dir), classes)
    elif not test_only:
        raise UserError(
            f"imagefolder: {folder} has a test/ folder but no train/ folder; set test_only = true "
            "in the suite's [dataset] section to evaluate pretrained models on test/ alone"
        )
    if len(classes) < 2:  # before any image is read: nothing to tell apart
        raise UserError(
            f"imagefolder: {test_dir} holds one class folder ({classes[0]}); a classifier "
            "needs at least 2 classes, one folder each"
        )
    names = tuple(classes)
    test_files, test_labels = list_split(test_dir, classes)
    source = content_id(test_dir, test_files)  # all of test/, whatever part is read
    if test_only:
        if max_test is not None:
            check_limit(max_test)
            test_files, test_labels = test_files[:max_test], test_labels[:max_test]
        x = images_to_tensor(reader.read(test_files), scale=255.0)
        return official_test_split(
            "imagefolder", x, labels_to_tensor(test_labels), names, max_test=None, source=source
        )
    train_files, train_labels = list_split(train_dir, classes)
    parts = []
    for files, labels, limit, part_seed in (
        (train_files, train_labels, max_train, seed),
        (test_files, test_labels, max_test, seed + 1),
    ):
        if limit is not None:
            check_limit(limit)
        order = stratified_order(labels_to_tensor(labels), seed=part_seed).numpy()[:limit]
        files, labels = pick(files, labels, order)
        parts += [images_to_tensor(reader.read(files), scale=255.0), labels_to_tensor(labels)]
    return DataSplit("imagefolder", *parts, len(names), names, source)
