"""Every reader on small files written here, and every user mistake failing in one line."""

from __future__ import annotations

import bz2
import gzip
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
from PIL import Image
from torchvision import datasets

from xlvision.data.errors import DataError
from xlvision.data.normalize import normalize_digits
from xlvision.data.readers import (
    read_csv_digits,
    read_idx,
    read_idx_digits,
    read_image_folder,
    read_npy_digits,
    read_npz_digits,
    read_torchvision,
)

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
LABELS = np.array([0, 1, 2, 7, 8, 9], dtype=np.int64)


def write_idx(path: Path, array: np.ndarray, *, code: int = 0x08, compress: bool = False) -> Path:
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + b"".join(
        struct.pack(">I", n) for n in array.shape
    )
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def expect_failure(call, *fragments: str) -> str:
    """Run `call`, expecting a one-line DataError containing every fragment."""
    with pytest.raises(DataError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize("compress", [False, True])
def test_idx_pair_reads_back_exactly(tmp_path: Path, compress: bool) -> None:
    images = write_idx(tmp_path / "x-idx3-ubyte", IMAGES, compress=compress)
    labels = write_idx(tmp_path / "y-idx1-ubyte", LABELS.astype(np.uint8), compress=compress)
    raw = read_idx_digits(images, labels)
    np.testing.assert_array_equal(raw.images, IMAGES)
    np.testing.assert_array_equal(raw.labels, LABELS)
    assert raw.labels.dtype == np.int64 and raw.groups is None


def test_idx_big_endian_types_are_decoded(tmp_path: Path) -> None:
    values = np.array([[1.5, -2.0], [3.25, 100.0]], dtype=np.float32)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "f", values, code=0x0D)), values)
    ints = np.array([70000, -3], dtype=np.int32)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "i", ints, code=0x0C)), ints)


def test_idx_truncated_file_fails(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x-idx3-ubyte", IMAGES)
    path.write_bytes(path.read_bytes()[:-100])
    expect_failure(lambda: read_idx(path), str(path), "truncated", "needs 4704 bytes, found 4604")


def test_idx_overlong_file_fails(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x-idx3-ubyte", IMAGES)
    path.write_bytes(path.read_bytes() + b"\x00")
    expect_failure(lambda: read_idx(path), str(path), "longer than its header says")


def test_idx_truncated_gzip_fails(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x-idx3-ubyte.gz", IMAGES, compress=True)
    path.write_bytes(path.read_bytes()[:-40])
    expect_failure(lambda: read_idx(path), str(path), "corrupt or truncated gzip")


def test_idx_bad_magic_and_dtype_code_fail(tmp_path: Path) -> None:
    path = tmp_path / "photo.idx"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    expect_failure(lambda: read_idx(path), str(path), "not an IDX file", "89504e47")
    path.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 3) + bytes(3))
    expect_failure(lambda: read_idx(path), str(path), "unknown IDX dtype code 0x07")


def test_idx_mismatched_counts_and_bad_labels_fail(tmp_path: Path) -> None:
    images = write_idx(tmp_path / "x", IMAGES)
    short = write_idx(tmp_path / "short", LABELS[:4].astype(np.uint8))
    expect_failure(lambda: read_idx_digits(images, short), str(short), "4 labels for 6 images")
    bad = write_idx(tmp_path / "bad", np.array([0, 1, 2, 10, 11, 3], dtype=np.uint8))
    expect_failure(
        lambda: read_idx_digits(images, bad), str(bad), "0–9", "found 10, 11 (2 of 6 labels)"
    )
    flat = write_idx(tmp_path / "flat", IMAGES.reshape(6, -1))
    expect_failure(lambda: read_idx_digits(flat, short), str(flat), "N×H×W", "(6, 784)")
    missing = tmp_path / "absent.gz"
    expect_failure(lambda: read_idx_digits(missing, short), str(missing), "file not found")


def test_npz_split_arrays_with_groups(tmp_path: Path) -> None:
    path = tmp_path / "digits.npz"
    groups = np.array([5, 5, 6, 6, 7, 7])
    np.savez_compressed(path, x_train=IMAGES, y_train=LABELS, writer_ids=groups)
    raw = read_npz_digits(path, {"images": "x_train", "labels": "y_train", "groups": "writer_ids"})
    np.testing.assert_array_equal(raw.images, IMAGES)
    np.testing.assert_array_equal(raw.groups, groups)


def test_npz_unknown_array_lists_the_names(tmp_path: Path) -> None:
    path = tmp_path / "digits.npz"
    np.savez(path, x_train=IMAGES, y_train=LABELS)
    expect_failure(
        lambda: read_npz_digits(path, {"images": "images", "labels": "y_train"}),
        str(path),
        "no array 'images'",
        "the file has: x_train, y_train",
    )


def test_npz_wrong_shapes_and_corrupt_archive_fail(tmp_path: Path) -> None:
    path = tmp_path / "flat.npz"
    np.savez(path, x=IMAGES.reshape(6, -1), y=LABELS)
    expect_failure(
        lambda: read_npz_digits(path, {"images": "x", "labels": "y"}), f"{path}[x]", "(6, 784)"
    )
    np.savez(path, x=IMAGES, y=LABELS.reshape(2, 3))
    expect_failure(
        lambda: read_npz_digits(path, {"images": "x", "labels": "y"}), f"{path}[y]", "shape [N]"
    )
    broken = tmp_path / "broken.npz"
    np.savez(broken, x=IMAGES, y=LABELS)
    broken.write_bytes(broken.read_bytes()[:300])
    expect_failure(lambda: read_npz_digits(broken, {"images": "x", "labels": "y"}), str(broken))


def test_npy_files_and_channels_first_images(tmp_path: Path) -> None:
    colour = RNG.integers(0, 256, size=(6, 3, 20, 24), dtype=np.uint8)
    np.save(tmp_path / "x.npy", colour)
    np.save(tmp_path / "y.npy", LABELS.astype(np.float64))
    np.save(tmp_path / "g.npy", np.arange(6) // 2)
    raw = read_npy_digits(tmp_path / "x.npy", tmp_path / "y.npy", tmp_path / "g.npy")
    assert raw.images.shape == (6, 20, 24, 3)
    np.testing.assert_array_equal(raw.images[..., 1], colour[:, 1])
    assert raw.labels.dtype == np.int64 and raw.labels.tolist() == LABELS.tolist()
    assert raw.groups.tolist() == [0, 0, 1, 1, 2, 2]


def test_npy_truncated_and_fractional_labels_fail(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", IMAGES)
    np.save(tmp_path / "y.npy", LABELS + 0.5)
    x, y = tmp_path / "x.npy", tmp_path / "y.npy"
    expect_failure(lambda: read_npy_digits(x, y), str(y), "whole numbers")
    x.write_bytes(x.read_bytes()[:-10])
    expect_failure(lambda: read_npy_digits(x, y), str(x), "not a readable .npy file")


def _csv_rows(images: np.ndarray, labels: np.ndarray, writers: list[str] | None = None) -> str:
    rows = []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        fields = [str(label), *map(str, image.ravel().tolist())]
        if writers is not None:
            fields.append(writers[i])
        rows.append(",".join(fields))
    return "\n".join(rows) + "\n"


def test_csv_with_header_label_by_name_and_groups(tmp_path: Path) -> None:
    small = IMAGES[:, :4, :4]
    header = ",".join(["label", *(f"pixel{i}" for i in range(16)), "writer"])
    path = tmp_path / "train.csv"
    path.write_text(
        header + "\n" + _csv_rows(small, LABELS, ["ann", "bo", "ann", "cy", "bo", "cy"])
    )
    raw = read_csv_digits(path, label_column="label", group_column="writer")
    np.testing.assert_array_equal(raw.images, small)
    assert raw.labels.tolist() == LABELS.tolist()
    assert raw.groups.tolist() == [0, 1, 0, 2, 1, 2]


@pytest.mark.parametrize("compress", [False, True])
def test_csv_without_header_label_by_index(tmp_path: Path, compress: bool) -> None:
    text = _csv_rows(IMAGES, LABELS)
    path = tmp_path / ("digits.csv.gz" if compress else "digits.csv")
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())
    raw = read_csv_digits(path)
    assert raw.images.shape == (6, 28, 28)
    np.testing.assert_array_equal(raw.images, IMAGES)
    moved = tmp_path / "label_last.csv"
    moved.write_text(
        "\n".join(",".join([*row.split(",")[1:], row.split(",")[0]]) for row in text.split())
    )
    np.testing.assert_array_equal(read_csv_digits(moved, label_column=-1).labels, LABELS)


def test_csv_mistakes_fail(tmp_path: Path) -> None:
    path = tmp_path / "digits.csv"
    path.write_text(_csv_rows(IMAGES[:, :3, :5], LABELS))
    expect_failure(
        lambda: read_csv_digits(path), str(path), "15 pixel columns do not make a square"
    )
    expect_failure(lambda: read_csv_digits(path, label_column="label"), str(path), "no header row")
    path.write_text("lbl,p0,p1,p2,p3\n1,0,0,0,0\n")
    expect_failure(
        lambda: read_csv_digits(path, label_column="label"), "no column 'label'", "lbl, p0"
    )
    path.write_text("3,0,0,0,0\n12,0,0,0,0\n")
    expect_failure(lambda: read_csv_digits(path), str(path), "0–9", "found 12")
    path.write_text("3,0,0,0,0\n4,0,x,0,0\n")
    expect_failure(lambda: read_csv_digits(path), str(path), "malformed CSV")
    path.write_text("label,a,b,c,d\n")
    expect_failure(lambda: read_csv_digits(path), str(path), "no data rows")


def _save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _ring(size: int, ink: int, paper: int, dtype: type = np.uint8) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    radius = np.hypot(yy - size / 2, xx - size / 3)
    return np.where(np.abs(radius - size / 4) < size / 12, ink, paper).astype(dtype)


def test_folder_with_mixed_formats_sizes_and_modes(tmp_path: Path) -> None:
    root = tmp_path / "digits"
    _save(Image.fromarray(_ring(40, 0, 255)), root / "0" / "a.png")
    _save(Image.fromarray(_ring(33, 20, 230)).convert("RGB"), root / "0" / "b.JPG")
    _save(Image.fromarray(_ring(28, 255, 0)), root / "3" / "c.bmp")
    _save(Image.fromarray(_ring(50, 0, 60000, np.uint16)), root / "3" / "d.tif")
    rgba = np.zeros((36, 36, 4), dtype=np.uint8)
    rgba[..., 3] = _ring(36, 255, 0)
    _save(Image.fromarray(rgba, "RGBA"), root / "7" / "e.png")
    _save(Image.fromarray(_ring(30, 0, 255)).convert("P"), root / "7" / "f.png")
    (root / "7" / "notes.txt").write_text("not an image")
    raw = read_image_folder(root)
    assert raw.labels.tolist() == [0, 0, 3, 3, 7, 7]
    assert [image.shape for image in raw.images] == [
        (40, 40),
        (33, 33),
        (28, 28),
        (50, 50),
        (36, 36),
        (30, 30),
    ]
    assert raw.images[3].dtype == np.float32 and raw.images[3].max() == 60000
    out = normalize_digits(raw.images, polarity="per_image")
    assert out.shape == (6, 28, 28)
    reference = out[2].astype(np.float32)
    for image in out:
        assert np.corrcoef(image.astype(np.float32).ravel(), reference.ravel())[0, 1] > 0.8


def test_folder_mistakes_fail(tmp_path: Path) -> None:
    root = tmp_path / "digits"
    root.mkdir()
    expect_failure(lambda: read_image_folder(root), str(root), "empty folder")
    (root / "4").mkdir()
    expect_failure(lambda: read_image_folder(root), str(root / "4"), "empty class folder")
    (root / "four").mkdir()
    expect_failure(lambda: read_image_folder(root), str(root), "named 0–9", "four")
    (root / "four").rmdir()
    (root / "4" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    expect_failure(
        lambda: read_image_folder(root), str(root / "4" / "broken.png"), "not a readable image"
    )
    expect_failure(lambda: read_image_folder(tmp_path / "absent"), "not a folder")


def test_torchvision_missing_offline_names_the_files_and_folder(tmp_path: Path) -> None:
    expect_failure(
        lambda: read_torchvision("MNIST", tmp_path),
        f"torchvision MNIST not found in {tmp_path / 'MNIST' / 'raw'}",
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte",
        "download: true",
    )
    expect_failure(
        lambda: read_torchvision("EMNIST", tmp_path), "emnist-digits-test-labels-idx1-ubyte"
    )
    expect_failure(lambda: read_torchvision("SVHN", tmp_path), f"in {tmp_path}:", "train_32x32.mat")
    expect_failure(lambda: read_torchvision("USPS", tmp_path), "usps.bz2, usps.t.bz2")
    expect_failure(lambda: read_torchvision("FashionMNIST", tmp_path), "unknown torchvision set")


def test_torchvision_failed_download_is_one_line(tmp_path: Path, monkeypatch) -> None:
    def offline(self) -> None:
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(datasets.MNIST, "download", offline)
    expect_failure(
        lambda: read_torchvision("MNIST", tmp_path, download=True),
        "downloading torchvision MNIST failed",
        "name resolution",
        "put train-images-idx3-ubyte",
    )


def test_torchvision_mnist_and_usps_from_local_files(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, count in (("train", 6), ("t10k", 4)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", IMAGES[:count])
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", LABELS[:count].astype(np.uint8))
    parts = read_torchvision("MNIST", tmp_path)
    assert {k: len(v) for k, v in parts.items()} == {"train": 6, "test": 4}
    np.testing.assert_array_equal(parts["test"].images, IMAGES[:4])

    lines = [
        f"{label + 1} "
        + " ".join(f"{i + 1}:{v:.4f}" for i, v in enumerate(np.linspace(-1, 1, 256)))
        for label in (0, 9, 4)
    ]
    for name in ("usps.bz2", "usps.t.bz2"):
        (tmp_path / name).write_bytes(bz2.compress("\n".join(lines).encode()))
    usps = read_torchvision("USPS", tmp_path)
    assert usps["train"].labels.tolist() == [0, 9, 4]
    assert usps["train"].images.shape == (3, 16, 16)
    assert usps["train"].images[0, 0, 0] == 0 and usps["train"].images[0, -1, -1] == 255


def test_readme_csv_example_takes_the_run_language(tmp_path: Path) -> None:
    # `xlv-train data=csv language=bn data.source.path=…`: the file is the run's script.
    from xlvision.config.compose import compose_config
    from xlvision.data.datamodule import load_splits
    from xlvision.languages import load_language

    rng = np.random.default_rng(0)
    images = (rng.random((60, 28, 28)) * 255).astype(np.uint8)
    labels = np.arange(60) % 10
    path = tmp_path / "bengali.csv"
    path.write_text(_csv_rows(images, labels))
    cfg = compose_config(
        ["data=csv", "language=bn", f"data.source.path={path}", f"paths.output_dir={tmp_path}"]
    )
    splits = load_splits(cfg.data, load_language("bn"), 0, tmp_path)
    assert sum(len(s) for s in splits.values()) == 60
