"""Image datasets for adapter experiments: IDX files (MNIST, FashionMNIST) and task definitions.

MNIST-style datasets come as gzipped (or plain) IDX files: ``{split}-images-idx3-ubyte(.gz)`` and
``{split}-labels-idx1-ubyte(.gz)`` with split ``train`` or ``t10k``. :func:`load_idx_dataset` finds them in a
directory, or in torchvision's layout (``DIR/MNIST/raw/``, ``DIR/FashionMNIST/raw/``); nothing is downloaded.

A *task* maps the dataset's labels (0-9) to the labels the network must output: the digit itself, the
paper's remapping ``y // 2 + 5 * (y % 2)`` (evens to 0-4, odds to 5-9), or any user-defined table —
``mapping`` (one output per label) or ``groups`` (a list of label groups: output = index of the group).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cogflex.errors import ConfigError, DataError

__all__ = ["ImageData", "Task", "BUILTIN_TASKS", "read_idx", "load_idx_dataset", "split_dataset", "make_task"]

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped or plain) into an array of its declared type and shape."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise DataError(str(path), "no such file") from None
    except (OSError, EOFError) as exc:
        raise DataError(str(path), f"not a readable gzip file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(str(path), "not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(str(path), "truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(str(path), f"IDX data has {len(raw) - header} bytes, the header declares {expected} "
                                   f"(shape {shape}): truncated or damaged file")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


@dataclass(frozen=True)
class ImageData:
    """Images ``(N, 1, H, W)`` float32 in [0, 1] and integer labels ``(N,)``."""

    images: torch.Tensor
    labels: torch.Tensor
    source: str = ""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index) -> ImageData:
        """The images and labels at ``index``."""
        index = torch.as_tensor(index)
        return ImageData(self.images[index], self.labels[index], self.source)


def _find(directory: Path, dataset: str, split: str, kind: str) -> Path:
    stem = f"{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"
    candidates = [directory / stem, directory / f"{stem}.gz"]
    folder = _FOLDERS.get(dataset)
    if folder:
        candidates += [directory / folder / "raw" / stem, directory / folder / "raw" / f"{stem}.gz"]
    for c in candidates:
        if c.exists():
            return c
    raise DataError(str(directory), f"no {split} {kind} file ({stem}[.gz]) here or in {folder}/raw/ "
                                    f"(give the directory holding the {dataset} IDX files)")


def load_idx_dataset(directory: str | Path, *, dataset: str = "mnist", split: str = "t10k") -> ImageData:
    """Load one split (``train`` or ``t10k``) of MNIST or FashionMNIST from IDX files in ``directory``."""
    if dataset not in _FOLDERS:
        raise ConfigError("dataset", f"must be one of {', '.join(_FOLDERS)}, got {dataset!r}")
    if split not in ("train", "t10k"):
        raise ConfigError("split", f"must be 'train' or 't10k', got {split!r}")
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(str(directory), "no such directory")
    image_file = _find(directory, dataset, split, "images")
    label_file = _find(directory, dataset, split, "labels")
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.ndim != 3:
        raise DataError(str(image_file), f"expected images of shape (N, H, W), got {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(str(label_file), f"{len(labels)} labels for {len(images)} images")
    if len(labels) == 0:
        raise DataError(str(label_file), "the file holds no images")
    if labels.min() < 0 or labels.max() > 9:
        raise DataError(str(label_file), f"labels must be 0-9, found {labels.min()}..{labels.max()}")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return ImageData(x, torch.from_numpy(labels.astype(np.int64)), source=str(image_file))


def split_dataset(data: ImageData, fraction: float, *, seed: int = 0) -> tuple[ImageData, ImageData]:
    """A seeded random split: ``fraction`` of the images in the first part, the rest in the second."""
    if not 0 < fraction < 1:
        raise ConfigError("fraction", f"must be between 0 and 1, got {fraction}")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    cut = int(round(fraction * len(data)))
    if not 0 < cut < len(data):
        raise ConfigError("fraction", f"{fraction} of {len(data)} image(s) leaves {'no' if cut == 0 else 'all'} "
                                      "images in the first part: both parts need at least one image")
    return data.subset(order[:cut]), data.subset(order[cut:])


@dataclass(frozen=True)
class Task:
    """A labelling of the images: ``table[label]`` is the target class; ``n_classes`` outputs."""

    name: str
    table: tuple[int, ...]

    @property
    def n_classes(self) -> int:
        """Number of target classes."""
        return max(self.table) + 1

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        """Target classes of dataset ``labels``."""
        return torch.as_tensor(self.table, dtype=torch.long, device=labels.device)[labels]


BUILTIN_TASKS = {
    "digit": tuple(range(10)),
    "remapped": tuple(y // 2 + 5 * (y % 2) for y in range(10)),  # evens -> 0-4, odds -> 5-9 (the paper's task B)
    "parity": tuple(y % 2 for y in range(10)),
}


def make_task(name: str, *, mapping=None, groups=None) -> Task:
    """A built-in task by name, or a user-defined one from ``mapping`` (10 outputs) or ``groups``."""
    if mapping is not None and groups is not None:
        raise ConfigError(f"tasks.{name}", "give either mapping or groups, not both")
    if mapping is not None:
        table = tuple(int(v) for v in mapping)
        if len(table) != 10 or min(table) < 0:
            raise ConfigError(f"tasks.{name}.mapping", "needs one non-negative class per label 0-9 (10 values)")
        return Task(name, table)
    if groups is not None:
        table = [-1] * 10
        for g, members in enumerate(groups):
            for label in members:
                if not 0 <= int(label) <= 9:
                    raise ConfigError(f"tasks.{name}.groups", f"label {label} is not 0-9")
                if table[int(label)] != -1:
                    raise ConfigError(f"tasks.{name}.groups", f"label {label} is in two groups")
                table[int(label)] = g
        if -1 in table:
            raise ConfigError(f"tasks.{name}.groups", f"labels {[i for i, v in enumerate(table) if v == -1]} "
                                                      "are in no group")
        return Task(name, tuple(table))
    if name not in BUILTIN_TASKS:
        raise ConfigError("tasks", f"unknown task {name!r} (built in: {', '.join(BUILTIN_TASKS)}; or define it "
                                   "with mapping = [...] or groups = [[...], ...])")
    return Task(name, BUILTIN_TASKS[name])
