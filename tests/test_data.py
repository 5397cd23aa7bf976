"""Data: shapes, image folders of awkward files, CIFAR, HDF5, the sampler and the loader."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import BatchStream, build_dataset, data_config, write_dataset
from ganforge.data import image_folder as image_folder_module
from ganforge.data.cifar import CifarDataset, write_cifar
from ganforge.data.hdf5 import HDF5Dataset, pack_hdf5
from ganforge.data.image_folder import ImageFolderDataset, build_index
from ganforge.data.images import DataError
from ganforge.data.sampler import InfiniteShardedSampler
from ganforge.data.shapes import NUM_CLASSES, ShapesDataset


def pixel(item, y=None, x=None):
    """uint8 RGB of the image's center pixel (or at y, x)."""
    img = ((item["image"] + 1) * 127.5).round().to(torch.uint8)
    h, w = img.shape[1:]
    return tuple(img[:, h // 2 if y is None else y, w // 2 if x is None else x].tolist())


# --------------------------------------------------------------------------------------------- shapes

def test_shapes_is_deterministic_and_in_range():
    a, b = ShapesDataset(length=10, image_size=32), ShapesDataset(length=10, image_size=32)
    x = a.get(3)["image"]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert torch.equal(x, b.get(3)["image"])
    assert not torch.equal(x, a.get(4)["image"])
    assert -1.0 <= x.min() and x.max() <= 1.0


def test_shapes_class_view_labels_match_the_scene():
    ds = ShapesDataset(length=200, image_size=32, view="class")
    labels = [int(ds.get(i)["label"]) for i in range(200)]
    assert ds.num_classes == NUM_CLASSES == 18
    assert set(labels) == set(range(18))  # 200 draws cover all classes
    scene = ds.scene(5)
    assert len(scene.objects) == 1 and labels[5] == scene.objects[0].class_id


def test_shapes_objects_have_their_color():
    ds = ShapesDataset(length=50, image_size=64, view="class")
    from ganforge.data.shapes import COLOR_NAMES, COLORS

    for i in range(10):
        obj = ds.scene(i).objects[0]
        center = pixel(ds.get(i), int(obj.y * 64), int(obj.x * 64))
        assert np.abs(np.array(center) - np.array(COLORS[COLOR_NAMES[obj.color]])).max() <= 2


# ------------------------------------------------------------------------------------- image folder

@pytest.fixture
def messy_folder(tmp_path):
    """One file of every kind a real folder holds; expected center colours per file."""
    root = tmp_path / "imgs"
    root.mkdir()
    Image.new("RGB", (100, 50), (10, 200, 30)).save(root / "wide.jpg", quality=100)
    Image.new("RGB", (40, 80), (250, 0, 0)).save(root / "tall.png")
    Image.new("L", (64, 64), 77).save(root / "gray.png")
    rgba = Image.new("RGBA", (64, 64), (0, 0, 255, 0))  # fully transparent blue -> white background
    rgba.save(root / "transparent.png")
    pal = Image.new("P", (64, 64), 1)
    pal.putpalette([0, 0, 0, 12, 34, 56] + [0] * 762)
    pal.save(root / "palette.png")
    deep = Image.fromarray(np.full((64, 64), 32896, dtype=np.uint16))  # 16-bit: 32896/65535*255 = 128
    deep.save(root / "deep16.png")
    Image.new("CMYK", (64, 64), (0, 255, 255, 0)).save(root / "cmyk.jpg", quality=100)
    (root / "empty.png").write_bytes(b"")
    (root / "notes.jpg").write_text("this is not an image")
    (root / "readme.txt").write_text("ignored: not an image extension")
    expected = {"wide.jpg": (10, 200, 30), "tall.png": (250, 0, 0), "gray.png": (77, 77, 77),
                "transparent.png": (255, 255, 255), "palette.png": (12, 34, 56), "deep16.png": (128, 128, 128),
                "cmyk.jpg": (255, 0, 0)}
    return root, expected


def test_image_folder_converts_every_mode_and_size(messy_folder):
    root, expected = messy_folder
    ds = ImageFolderDataset(root, image_size=32)
    assert sorted(ds.index.files) == sorted(expected)
    for i, rel in enumerate(ds.index.files):
        item = ds.get(i)
        assert item["image"].shape == (3, 32, 32), rel
        got = np.array(pixel(item))
        assert np.abs(got - np.array(expected[rel])).max() <= 3, (rel, got)


def test_image_folder_counts_unreadable_files(messy_folder):
    root, _ = messy_folder
    ds = ImageFolderDataset(root, image_size=32)
    assert set(ds.skipped) == {"empty.png", "notes.jpg"}
    assert "empty file" in ds.skipped["empty.png"]


def test_image_folder_strict_names_the_file(messy_folder):
    root, _ = messy_folder
    with pytest.raises(DataError, match=r"unreadable image '.*(empty\.png|notes\.jpg)'.*strict"):
        ImageFolderDataset(root, image_size=32, strict=True)


def test_grayscale_output_channel(messy_folder):
    root, _ = messy_folder
    ds = ImageFolderDataset(root, image_size=16, channels=1)
    assert ds.get(0)["image"].shape == (1, 16, 16)


def test_truncated_image_is_skipped_at_decode_time(tmp_path):
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "a_good.png")
    good = tmp_path / "b_broken.jpg"
    Image.effect_noise((256, 256), 50).convert("RGB").save(good, quality=95)
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 3])  # header intact, pixels cut off
    ds = ImageFolderDataset(tmp_path, image_size=32)
    assert len(ds) == 2  # the header check passes
    item = ds.get(1)  # decode fails -> the next good image instead, no crash
    assert pixel(item) == (1, 2, 3)
    assert "b_broken.jpg" in ds.skipped
    with pytest.raises(DataError, match="cannot decode image '.*b_broken.jpg'"):
        ImageFolderDataset(tmp_path, image_size=32, strict=True).get(1)


def _png_header_only(path, width, height):
    """A PNG that claims ``width`` x ``height`` pixels in a few bytes (a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_hostile_files_and_names_are_skipped_or_read(tmp_path):
    import os

    Image.new("RGB", (40, 40), (200, 10, 10)).save(tmp_path / "ok.png")
    _png_header_only(tmp_path / "bomb.png", 30000, 30000)  # 900 M pixels: refused before decoding
    latin1 = os.fsencode(str(tmp_path)) + b"/caf\xe9.png"  # not UTF-8: a Latin-1 name from an old disk
    Image.new("RGB", (40, 40), (10, 200, 10)).save(os.fsdecode(latin1))
    Image.new("RGB", (40, 40), (10, 10, 200)).save(tmp_path / ("x" * 240 + ".png"))  # near the 255-byte limit
    ds = ImageFolderDataset(tmp_path, image_size=16)
    assert len(ds) == 3 and set(ds.skipped) == {"bomb.png"}
    assert "DecompressionBombError" in ds.skipped["bomb.png"]
    colors = sorted(pixel(ds.get(i)) for i in range(len(ds)))
    assert colors == [(10, 10, 200), (10, 200, 10), (200, 10, 10)]
    again = ImageFolderDataset(tmp_path, image_size=16)  # the cached index round-trips the odd names
    assert sorted(again.index.files) == sorted(ds.index.files)


def test_exif_orientation_is_applied(tmp_path):
    stored = Image.new("RGB", (40, 20), (0, 0, 0))
    stored.paste((255, 255, 255), (0, 0, 20, 20))  # white left half as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=100)
    ds = ImageFolderDataset(tmp_path, image_size=20, crop="center")
    img = ds.get(0)["image"]  # displayed upright: 20 wide, 40 tall, white on top
    top, bottom = img[:, :4].mean().item(), img[:, -4:].mean().item()
    assert top > 0.8 and bottom < -0.8


def test_empty_class_folder_is_an_error_naming_it(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "dog").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "cat" / "a.png")
    (tmp_path / "dog" / "broken.jpg").write_text("not an image")
    with pytest.raises(DataError, match=r"class folder '.*dog' has no readable images"):
        build_index(tmp_path, classes=True)


def test_empty_and_missing_folders_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match=f"no readable images under '{tmp_path}'"):
        build_index(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        build_index(tmp_path / "nope")
    (tmp_path / "f.png").write_bytes(b"")
    with pytest.raises(DataError, match="1 unreadable file"):
        build_index(tmp_path)
    with pytest.raises(DataError, match="data.path is required"):
        build_dataset(data_config("image_folder"))


def test_class_subfolders_become_labels(tmp_path):
    for cls, color in (("cat", (255, 0, 0)), ("dog", (0, 255, 0))):
        (tmp_path / cls / "nested").mkdir(parents=True)
        for k in range(2):
            Image.new("RGB", (20, 20), color).save(tmp_path / cls / "nested" / f"{k}.png")
    ds = ImageFolderDataset(tmp_path, image_size=16, classes=True)
    assert ds.index.class_names == ["cat", "dog"] and ds.num_classes == 2
    for i in range(4):
        item = ds.get(i)
        assert int(item["label"]) == (0 if pixel(item)[0] == 255 else 1)
    Image.new("RGB", (20, 20)).save(tmp_path / "loose.png")
    with pytest.raises(DataError, match="'loose.png' lies at the top level"):
        ImageFolderDataset(tmp_path, image_size=16, classes=True)


def test_index_is_cached_and_refreshed_per_file(tmp_path, monkeypatch):
    for k in range(3):
        Image.new("RGB", (8, 8)).save(tmp_path / f"{k}.png")
    build_index(tmp_path)
    calls = []
    real = image_folder_module.check_header
    monkeypatch.setattr(image_folder_module, "check_header", lambda p: calls.append(p.name) or real(p))
    assert len(build_index(tmp_path).files) == 3
    assert calls == []  # everything came from the cache
    Image.new("RGB", (8, 8)).save(tmp_path / "new.png")
    assert len(build_index(tmp_path).files) == 4
    assert calls == ["new.png"]  # only the new file was opened


def test_in_memory_and_random_crop_are_deterministic(tmp_path):
    arr = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "x.png")
    ds = ImageFolderDataset(tmp_path, image_size=32, crop="random", flip=True, in_memory=True)
    a = ds.get(0, np.random.default_rng(5))["image"]
    b = ds.get(0, np.random.default_rng(5))["image"]
    c = [ds.get(0, np.random.default_rng(s))["image"] for s in range(8)]
    assert torch.equal(a, b)
    assert any(not torch.equal(a, x) for x in c)  # other seeds crop elsewhere


# -------------------------------------------------------------------------------------- cifar, hdf5

def test_cifar10_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (25, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 25)
    write_cifar(tmp_path / "cifar-10-batches-py", images, labels)
    ds = CifarDataset(tmp_path, split="train")  # the parent folder works too
    assert len(ds) == 25 and ds.num_classes == int(labels.max()) + 1
    for i in (0, 7, 24):
        item = ds.get(i)
        back = ((item["image"].permute(1, 2, 0) + 1) * 127.5).round().to(torch.uint8).numpy()
        assert np.array_equal(back, images[i]) and int(item["label"]) == labels[i]


def test_cifar100_format(tmp_path):
    images = np.zeros((4, 3 * 32 * 32), dtype=np.uint8)
    for name in ("train", "meta"):
        with open(tmp_path / name, "wb") as fh:
            pickle.dump({b"data": images, b"fine_labels": [0, 99, 5, 3], b"coarse_labels": [0] * 4}, fh, protocol=2)
    ds = CifarDataset(tmp_path, split="train")
    assert len(ds) == 4 and ds.num_classes == 100


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_cifar_pickle_that_runs_code_is_refused(tmp_path):
    for i in range(1, 6):
        with open(tmp_path / f"data_batch_{i}", "wb") as fh:
            pickle.dump({b"data": _Evil(), b"labels": []}, fh)
    with pytest.raises(DataError, match="refusing to load 'builtins.print'"):
        CifarDataset(tmp_path)
    with pytest.raises(DataError, match="no CIFAR-10"):
        CifarDataset(tmp_path / "missing")


def test_hdf5_pack_and_read(tmp_path):
    src = ShapesDataset(length=12, image_size=32, view="class")
    pack_hdf5(src, tmp_path / "s.h5", progress=False)
    ds = HDF5Dataset(tmp_path / "s.h5")
    assert len(ds) == 12 and ds.num_classes == 18
    for i in (0, 11):
        assert torch.allclose(ds.get(i)["image"], src.get(i)["image"], atol=1 / 127.5 + 1e-6)
        assert int(ds.get(i)["label"]) == int(src.get(i)["label"])
    small = HDF5Dataset(tmp_path / "s.h5", image_size=16)
    assert small.get(0)["image"].shape == (3, 16, 16)
    with pytest.raises(DataError, match="holds 32px images; data.image_size=64 is larger"):
        HDF5Dataset(tmp_path / "s.h5", image_size=64)
    (tmp_path / "bad.h5").write_text("nope")
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        HDF5Dataset(tmp_path / "bad.h5")


@pytest.mark.parametrize("fmt", ["image_folder", "cifar", "hdf5"])
def test_shapes_written_in_each_format_reads_back(tmp_path, fmt):
    src = ShapesDataset(length=10, image_size=32, view="class")
    out = tmp_path / ("s.h5" if fmt == "hdf5" else "s")
    write_dataset(src, fmt, out, progress=False)
    labels = {"hdf5": {}}.get(fmt, {"classes": True})  # hdf5 packs keep their labels
    ds = build_dataset(data_config(fmt, path=str(out), image_size=32, **labels))
    assert len(ds) == 10 and ds.num_classes >= 1
    labels = sorted(int(ds.get(i)["label"]) for i in range(10))
    if fmt != "image_folder":  # image_folder renumbers the present classes
        assert labels == sorted(int(src.get(i)["label"]) for i in range(10))


# ----------------------------------------------------------------------------------- sampler/loader

def test_sampler_shards_union_to_the_single_process_batch():
    single = InfiniteShardedSampler(10, global_batch=4, seed=3)
    ranks = [InfiniteShardedSampler(10, global_batch=4, rank=r, world_size=2, seed=3) for r in range(2)]
    it, its = iter(single), [iter(s) for s in ranks]
    for _ in range(7):  # crosses epoch boundaries (10 is not a multiple of 4)
        batch = [next(it) for _ in range(4)]
        sharded = [next(its[0]) for _ in range(2)] + [next(its[1]) for _ in range(2)]
        assert batch == sharded


def test_sampler_resumes_at_a_position():
    full = iter(InfiniteShardedSampler(7, global_batch=3, seed=1))
    seq = [next(full) for _ in range(30)]
    resumed = iter(InfiniteShardedSampler(7, global_batch=3, seed=1, start=12))
    assert [next(resumed) for _ in range(18)] == seq[12:]


def test_every_epoch_visits_every_index_once():
    it = iter(InfiniteShardedSampler(9, global_batch=3, seed=0))
    epoch = [next(it)[0] for _ in range(9)]
    assert sorted(epoch) == list(range(9))


@pytest.mark.parametrize("workers", [0, 1])
def test_dataset_smaller_than_a_batch_never_crashes(workers):
    ds = ShapesDataset(length=3, image_size=16)
    stream = BatchStream(ds, local_batch=8, world_size=1, rank=0, seed=0, num_workers=workers, pin_memory=False)
    for _ in range(3):
        assert next(stream)["image"].shape == (8, 3, 16, 16)
    assert stream.position == 24
    stream.close()


# ------------------------------------------------------------------------------ real shared data

from gfhelpers import SHARED_DATA  # noqa: E402

AFHQ = SHARED_DATA / "stargan_v2_representative" / "afhq" / "src"
CLEVR = SHARED_DATA / "clevr_sv" / "images"


@pytest.mark.skipif(not AFHQ.is_dir(), reason=f"real AFHQ samples not found at {AFHQ}")
def test_real_afhq_domains_as_class_folders():
    ds = ImageFolderDataset(AFHQ, image_size=64, classes=True)
    assert ds.index.class_names == ["cat", "dog", "wild"]
    assert not ds.skipped
    labels = {int(ds.get(i)["label"]) for i in range(len(ds))}
    assert labels == {0, 1, 2}
    x = ds.get(0)["image"]
    assert x.shape == (3, 64, 64) and x.std() > 0.1  # a real photo, not a flat image


@pytest.mark.skipif(not CLEVR.is_dir(), reason=f"real CLEVR-SV samples not found at {CLEVR}")
def test_real_clevr_rgba_frames_are_converted_and_cropped():
    ds = ImageFolderDataset(CLEVR, image_size=64)
    assert len(ds) >= 4 * 90 and not ds.skipped
    with Image.open(CLEVR / ds.index.files[0]) as raw:
        assert raw.mode == "RGBA" and raw.size == (320, 240)  # the case under test
    x = ds.get(0)["image"]
    assert x.shape == (3, 64, 64) and -1 <= x.min() and x.max() <= 1
