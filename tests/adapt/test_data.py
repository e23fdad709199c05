"""IDX files, MNIST loading, task definitions and seeded splits."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from cogflex.adapt import BUILTIN_TASKS, ImageData, load_idx_dataset, make_task, read_idx, split_dataset
from cogflex.errors import ConfigError, DataError

MNIST_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"


def idx_bytes(array: np.ndarray, code: int, big_endian_type: str | None = None) -> bytes:
    """An IDX file by hand: magic 0x00 0x00 <type code> <ndim>, then big-endian int32 dims, then the data."""
    header = bytes([0x00, 0x00, code, array.ndim]) + b"".join(struct.pack(">i", d) for d in array.shape)
    body = array.astype(big_endian_type).tobytes() if big_endian_type else array.tobytes()
    return header + body


def write_idx(path: Path, array: np.ndarray, *, gz: bool = False, code: int = 0x08) -> Path:
    data = idx_bytes(array, code)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def random_images(n=5, h=4, w=3, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w), dtype=np.uint8)


def write_split(directory: Path, images: np.ndarray, labels: np.ndarray, *, split="t10k", gz=True) -> None:
    suffix = ".gz" if gz else ""
    write_idx(directory / f"{split}-images-idx3-ubyte{suffix}", images, gz=gz)
    write_idx(directory / f"{split}-labels-idx1-ubyte{suffix}", labels, gz=gz)


# --------------------------------------------------------------------------------------------------- read_idx


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip_uint8(tmp_path, gz):
    """uint8 3-d images and 1-d labels come back with their values, dtype and shape (plain and gzipped)."""
    images = random_images(6, 5, 4)
    labels = np.array([3, 1, 4, 1, 5, 9], dtype=np.uint8)
    a = read_idx(write_idx(tmp_path / "img", images, gz=gz))
    b = read_idx(write_idx(tmp_path / "lab", labels, gz=gz))
    assert a.dtype == np.uint8 and a.shape == (6, 5, 4)
    np.testing.assert_array_equal(a, images)
    assert b.shape == (6,)
    np.testing.assert_array_equal(b, labels)


def test_read_idx_big_endian_int16(tmp_path):
    """Type code 0x0B is read as big-endian int16 (negative values survive)."""
    values = np.array([[-300, 2, 1000], [7, -1, 0]], dtype=np.int16)
    path = tmp_path / "x.idx"
    path.write_bytes(idx_bytes(values, 0x0B, ">i2"))
    out = read_idx(path)
    assert out.shape == (2, 3)
    np.testing.assert_array_equal(out.astype(np.int64), values.astype(np.int64))


def test_read_idx_header_is_spec_layout(tmp_path):
    """A hand-written header with a multi-byte dimension (300 = 0x0000012C) is decoded big-endian."""
    path = tmp_path / "long"
    path.write_bytes(b"\x00\x00\x08\x01" + b"\x00\x00\x01\x2c" + bytes(range(256)) + bytes(range(44)))
    out = read_idx(path)
    assert out.shape == (300,)
    assert out[255] == 255 and out[299] == 43


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_file_raises(tmp_path, gz):
    """A file missing its last bytes (or a cut gzip stream) is a DataError naming the file."""
    data = idx_bytes(random_images(), 0x08)
    path = tmp_path / "cut"
    path.write_bytes(gzip.compress(data)[:-10] if gz else data[:-1])
    with pytest.raises(DataError) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_header_raises(tmp_path):
    """A header declaring 3 dimensions but holding one is a DataError naming the file."""
    path = tmp_path / "hdr"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05")
    with pytest.raises(DataError, match="hdr"):
        read_idx(path)


def test_extra_bytes_raise(tmp_path):
    """More data than the header declares is a DataError."""
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(random_images(), 0x08) + b"\x00")
    with pytest.raises(DataError, match="long"):
        read_idx(path)


@pytest.mark.parametrize("magic", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"PK\x03\x04", b"\x00\x00"])
def test_bad_magic_raises(tmp_path, magic):
    """A wrong magic number (nonzero lead bytes, unknown type code, too short) is a DataError naming the file."""
    path = tmp_path / "bad-magic"
    path.write_bytes(magic + (b"\x00\x00\x00\x02\x01\x02" if len(magic) == 4 else b""))
    with pytest.raises(DataError, match="magic") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_missing_file_raises(tmp_path):
    """A missing file is a DataError naming it."""
    with pytest.raises(DataError, match="nope"):
        read_idx(tmp_path / "nope")


# ------------------------------------------------------------------------------------------- load_idx_dataset


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("split", ["t10k", "train"])
def test_load_from_directory(tmp_path, gz, split):
    """Files directly in DIR: images float32 (N,1,H,W) = pixel/255 in [0,1], labels int64."""
    images = random_images(5, 4, 3)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    labels = np.array([0, 9, 3, 3, 7], dtype=np.uint8)
    write_split(tmp_path, images, labels, split=split, gz=gz)
    data = load_idx_dataset(tmp_path, split=split)
    assert isinstance(data, ImageData) and len(data) == 5
    assert data.images.dtype == torch.float32 and data.images.shape == (5, 1, 4, 3)
    assert float(data.images.min()) == 0.0 and float(data.images.max()) == 1.0
    np.testing.assert_allclose(data.images[:, 0].numpy(), images / 255.0, rtol=1e-6)
    assert data.labels.dtype == torch.int64
    assert data.labels.tolist() == [0, 9, 3, 3, 7]


@pytest.mark.parametrize("dataset, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_load_from_torchvision_layout(tmp_path, dataset, folder):
    """Files under DIR/MNIST/raw/ or DIR/FashionMNIST/raw/ are found from DIR."""
    images, labels = random_images(3, 2, 2, seed=1), np.array([1, 2, 3], dtype=np.uint8)
    write_split(tmp_path / folder / "raw", images, labels)
    data = load_idx_dataset(tmp_path, dataset=dataset)
    assert data.labels.tolist() == [1, 2, 3]
    np.testing.assert_allclose(data.images[:, 0].numpy(), images / 255.0, rtol=1e-6)
    assert folder in data.source


def test_mnist_does_not_read_fashion_folder(tmp_path):
    """dataset='mnist' does not pick up FashionMNIST/raw/ files (DataError instead)."""
    write_split(tmp_path / "FashionMNIST" / "raw", random_images(2), np.array([0, 1], dtype=np.uint8))
    with pytest.raises(DataError):
        load_idx_dataset(tmp_path, dataset="mnist")


def test_missing_directory_raises(tmp_path):
    """A directory that does not exist is a DataError naming it."""
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_idx_dataset(missing)
    assert str(missing) in str(info.value)


def test_missing_labels_file_raises(tmp_path):
    """Images without their labels file: DataError mentioning the labels file."""
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", random_images(), gz=True)
    with pytest.raises(DataError, match="labels") as info:
        load_idx_dataset(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_label_count_and_range_checked(tmp_path):
    """Fewer labels than images, or a label above 9, are DataErrors."""
    a, b = tmp_path / "a", tmp_path / "b"
    write_split(a, random_images(4), np.array([1, 2, 3], dtype=np.uint8))
    write_split(b, random_images(3), np.array([1, 12, 3], dtype=np.uint8))
    with pytest.raises(DataError, match="3 labels for 4 images"):
        load_idx_dataset(a)
    with pytest.raises(DataError, match="0-9"):
        load_idx_dataset(b)


@pytest.mark.parametrize("field, kwargs", [("dataset", dict(dataset="cifar10")), ("split", dict(split="test"))])
def test_unknown_dataset_or_split(tmp_path, field, kwargs):
    """An unknown dataset or split is a ConfigError naming the field."""
    with pytest.raises(ConfigError) as info:
        load_idx_dataset(tmp_path, **kwargs)
    assert info.value.field == field


# ------------------------------------------------------------------------------------------- real MNIST test set


@pytest.fixture(scope="module")
def mnist_test():
    if not MNIST_DIR.is_dir():
        pytest.skip(f"no MNIST files at {MNIST_DIR}")
    return load_idx_dataset(MNIST_DIR)


def test_real_mnist_test_set(mnist_test):
    """The MNIST test set: 10,000 28x28 images in [0,1], every digit 0-9 present, labels start 7, 2, 1, 0, 4."""
    assert len(mnist_test) == 10_000
    assert mnist_test.images.shape == (10_000, 1, 28, 28) and mnist_test.images.dtype == torch.float32
    assert float(mnist_test.images.min()) == 0.0 and float(mnist_test.images.max()) == 1.0
    assert sorted(mnist_test.labels.unique().tolist()) == list(range(10))
    assert mnist_test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    counts = torch.bincount(mnist_test.labels, minlength=10)
    assert counts.sum() == 10_000 and counts.min() > 800


# ----------------------------------------------------------------------------------------------------- tasks


def test_remapped_task_formula():
    """'remapped' sends y to y//2 + 5*(y%2): evens to 0-4, odds to 5-9, a permutation of 0-9."""
    task = make_task("remapped")
    labels = torch.arange(10)
    targets = task.targets(labels).tolist()
    assert targets == [y // 2 + 5 * (y % 2) for y in range(10)]
    assert [targets[y] for y in (0, 2, 4, 6, 8)] == [0, 1, 2, 3, 4]
    assert [targets[y] for y in (1, 3, 5, 7, 9)] == [5, 6, 7, 8, 9]
    assert sorted(targets) == list(range(10)) and task.n_classes == 10


def test_digit_and_parity_tasks():
    """'digit' is the identity; 'parity' is y % 2 with two classes."""
    labels = torch.tensor([3, 0, 9, 9, 4])
    assert make_task("digit").targets(labels).tolist() == [3, 0, 9, 9, 4]
    assert make_task("digit").n_classes == 10
    parity = make_task("parity")
    assert parity.targets(labels).tolist() == [1, 0, 1, 1, 0] and parity.n_classes == 2
    assert set(BUILTIN_TASKS) >= {"digit", "remapped", "parity"}


def test_user_mapping_task():
    """mapping=[...]: target of label y is mapping[y]; n_classes is max + 1."""
    task = make_task("reverse", mapping=[9 - y for y in range(10)])
    assert task.targets(torch.arange(10)).tolist() == list(range(9, -1, -1)) and task.n_classes == 10
    small = make_task("low-high", mapping=[0, 0, 0, 0, 0, 1, 1, 1, 1, 2])
    assert small.n_classes == 3
    assert small.targets(torch.tensor([4, 5, 9])).tolist() == [0, 1, 2]


def test_user_groups_task():
    """groups=[[...], ...]: target is the index of the label's group; n_classes is the number of groups."""
    task = make_task("thirds", groups=[[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]])
    assert task.n_classes == 3
    assert task.targets(torch.arange(10)).tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    primes = make_task("prime", groups=[[0, 1, 4, 6, 8, 9], [2, 3, 5, 7]])
    assert primes.n_classes == 2 and primes.targets(torch.tensor([7, 8])).tolist() == [1, 0]


def test_unknown_task_lists_builtins():
    """An unknown task name is a ConfigError listing the built-in tasks."""
    with pytest.raises(ConfigError) as info:
        make_task("letters")
    for name in ("digit", "remapped", "parity"):
        assert name in str(info.value)
    assert "letters" in str(info.value)


@pytest.mark.parametrize("kwargs, match", [
    (dict(groups=[[0, 1, 2, 3, 4], [4, 5, 6, 7, 8, 9]]), "two groups"),
    (dict(groups=[[0, 1, 2, 3], [5, 6, 7, 8, 9]]), r"\[4\]"),
    (dict(groups=[[0, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10]]), "10"),
    (dict(mapping=list(range(9))), "10 values"),
    (dict(mapping=list(range(11))), "10 values"),
    (dict(mapping=[0] * 9 + [-1]), "non-negative"),
    (dict(mapping=list(range(10)), groups=[list(range(10))]), "not both"),
])
def test_bad_user_tasks(kwargs, match):
    """Repeated or missing labels in groups, wrong-length or negative mappings: ConfigError naming tasks.<name>."""
    with pytest.raises(ConfigError, match=match) as info:
        make_task("mine", **kwargs)
    assert info.value.field.startswith("tasks.mine")


# ---------------------------------------------------------------------------------------------- split_dataset


def numbered(n=50) -> ImageData:
    """Images whose pixels equal their index, labels = index: each item identifiable."""
    ids = torch.arange(n)
    return ImageData(ids.float().reshape(n, 1, 1, 1).expand(n, 1, 2, 2).clone(), ids)


def test_split_sizes_disjoint_covering():
    """fraction 0.3 of 50: 15 + 35 items, disjoint, together all of them, images still with their labels."""
    first, second = split_dataset(numbered(50), 0.3, seed=1)
    assert len(first) == 15 and len(second) == 35
    a, b = set(first.labels.tolist()), set(second.labels.tolist())
    assert not a & b and a | b == set(range(50))
    for part in (first, second):
        torch.testing.assert_close(part.images[:, 0, 0, 0], part.labels.float())


def test_split_is_seeded():
    """The same seed gives the same split, another seed a different one."""
    data = numbered(50)
    one, _ = split_dataset(data, 0.5, seed=3)
    same, _ = split_dataset(data, 0.5, seed=3)
    other, _ = split_dataset(data, 0.5, seed=4)
    assert one.labels.tolist() == same.labels.tolist()
    assert set(one.labels.tolist()) != set(other.labels.tolist())
    assert one.labels.tolist() != list(range(25))  # shuffled, not the first half


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5, float("nan")])
def test_split_bad_fraction(fraction):
    """A fraction outside (0, 1) is a ConfigError naming 'fraction'."""
    with pytest.raises(ConfigError) as info:
        split_dataset(numbered(10), fraction)
    assert info.value.field == "fraction"
