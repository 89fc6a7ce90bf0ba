"""Datasets: random square crops, photo folders (skipping, caching), the FiveK layout, the demo set."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
import tifffile

from exposure_env.datasets import ImagePack, demo as demo_mod, fivek as fivek_mod, folder as folder_mod
from exposure_env.datasets.augment import crop_resize, random_square_crops, square_crop_boxes
from exposure_env.datasets.fivek import FiveKDataset, folds_dir, index_photos, read_split
from exposure_env.datasets.folder import FolderDataset, list_photos, pack_folder
from exposure_env.io import read_image, resize_area, write_image


def photo(h, w, seed):
    rng = np.random.default_rng(seed)
    return resize_area(rng.uniform(0.05, 0.95, size=(5, 7, 3)).astype(np.float32), h, w)


# --------------------------------------------------------------------------- augment
def test_random_square_crops(rng):
    img = photo(90, 150, 0)
    crops = random_square_crops(img, 6, 80, rng)
    assert crops.shape == (6, 80, 80, 3) and crops.dtype == np.float32
    assert crops.min() >= img.min() - 1e-6 and crops.max() <= img.max() + 1e-6
    boxes = square_crop_boxes(90, 150, 50, np.random.default_rng(0))
    side_px = boxes[:, 2] * 90
    np.testing.assert_allclose(side_px, 90)  # paper: the largest square
    np.testing.assert_allclose(boxes[:, 3] * 150, 90)
    assert (boxes[:, 1] * 150 + side_px <= 150 + 1e-9).all() and (boxes[:, 1] >= 0).all()
    small = square_crop_boxes(90, 150, 200, np.random.default_rng(0), scale=(0.3, 0.5))
    assert 0.3 * 90 - 1e-9 <= (small[:, 2] * 90).min() and (small[:, 2] * 90).max() <= 0.5 * 90 + 1e-9
    # same rng state -> same crops; paired photo at another resolution -> same places
    a = random_square_crops(img, 3, 40, np.random.default_rng(5), scale=(0.4, 0.8))
    b, b2 = random_square_crops(img, 3, 40, np.random.default_rng(5), scale=(0.4, 0.8), paired=np.repeat(np.repeat(img, 2, 0), 2, 1))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(b2, b, atol=1e-5)
    with pytest.raises(ValueError, match="scale"):
        square_crop_boxes(10, 10, 1, rng, scale=(0.0, 0.5))
    # a box covering the whole image is a plain area resize
    np.testing.assert_allclose(crop_resize(img[:, :90], np.array([[0, 0, 1, 1]]), 45)[0], resize_area(img[:, :90], 45, 45), atol=1e-6)


# --------------------------------------------------------------------------- folders
@pytest.fixture
def photo_folder(tmp_path):
    root = tmp_path / "inputs"
    (root / "sub").mkdir(parents=True)
    write_image(root / "a.tif", photo(60, 90, 1))
    write_image(root / "sub" / "b.png", photo(70, 50, 2))
    write_image(root / "c.jpg", photo(64, 64, 3))
    bad = write_image(root / "broken.tif", photo(60, 90, 4))
    bad.write_bytes(bad.read_bytes()[:300])
    tifffile.imwrite(root / "gray.tif", np.zeros((20, 20), np.uint16))
    (root / "notes.txt").write_text("not a photo; ignored")
    (root / ".hidden.png").write_bytes(b"")  # hidden files are not listed
    return root


def test_list_photos(photo_folder):
    names = [p.relative_to(photo_folder).as_posix() for p in list_photos(photo_folder)]
    assert names == ["a.tif", "broken.tif", "c.jpg", "gray.tif", "sub/b.png"]
    assert "sub/b.png" not in [p.name for p in list_photos(photo_folder, recursive=False)]
    with pytest.raises(ValueError, match="no such folder"):
        list_photos(photo_folder / "missing")


def test_folder_dataset_skips_bad_photos_and_reuses_cache(photo_folder, tmp_path, monkeypatch):
    calls = []
    real = folder_mod.read_image

    def counting(path, *a, **k):
        calls.append(path)
        return real(path, *a, **k)

    monkeypatch.setattr(folder_mod, "read_image", counting)
    cache = tmp_path / "cache"
    with pytest.warns(UserWarning, match="skipped 2 of 5") as rec:
        ds = FolderDataset(photo_folder, crops_per_photo=3, seed=7, cache_dir=cache)
    assert str(photo_folder / "broken.tif") in str(rec[0].message)
    assert len(ds.inputs) == 9 and ds.inputs.images.shape[1:] == (80, 80, 3)
    assert ds.targets is None
    skipped = dict(ds.skipped)
    assert set(skipped) == {str(photo_folder / "broken.tif"), str(photo_folder / "gray.tif")}
    assert "truncated" in skipped[str(photo_folder / "broken.tif")]
    assert "grayscale" in skipped[str(photo_folder / "gray.tif")]
    assert sorted({n.split("#")[0] for n in ds.inputs.names}) == ["a.tif", "c.jpg", "sub/b.png"]
    assert len(calls) == 5

    calls.clear()
    with pytest.warns(UserWarning, match="skipped 2 of 5"):
        again = FolderDataset(photo_folder, crops_per_photo=3, seed=7, cache_dir=cache)
    assert calls == []  # loaded from the cache: nothing decoded
    np.testing.assert_array_equal(again.inputs.images, ds.inputs.images)
    assert again.skipped == ds.skipped

    with pytest.warns(UserWarning):
        other_seed = FolderDataset(photo_folder, crops_per_photo=3, seed=8, cache_dir=cache)
    assert len(calls) == 5 and not np.array_equal(other_seed.inputs.images, ds.inputs.images)

    calls.clear()
    st = os.stat(photo_folder / "c.jpg")
    os.utime(photo_folder / "c.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a changed photo
    with pytest.warns(UserWarning):
        FolderDataset(photo_folder, crops_per_photo=3, seed=7, cache_dir=cache)
    assert len(calls) == 5


def test_crops_do_not_depend_on_other_files(photo_folder, tmp_path):
    with pytest.warns(UserWarning):
        full, _ = pack_folder(photo_folder, crops_per_photo=2, cache=False)
    (photo_folder / "c.jpg").unlink()
    with pytest.warns(UserWarning):
        fewer, _ = pack_folder(photo_folder, crops_per_photo=2, cache=False)
    idx = [i for i, n in enumerate(full.names) if n.startswith("a.tif")]
    np.testing.assert_array_equal(fewer.images[:2], full.images[idx])


def test_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: no photos found"):
        FolderDataset(tmp_path / "empty", cache=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_text("nope")
    with pytest.raises(ValueError, match=r"bad: none of the 1 photos could be used \(first: .*x.png"):
        pack_folder(bad, cache=False)
    with pytest.raises(ValueError, match="no such folder"):
        FolderDataset(tmp_path / "nowhere", cache=False)


def test_targets_are_display_referred_and_paired_folders(tmp_path):
    inputs, targets, expert = tmp_path / "in", tmp_path / "style", tmp_path / "gt"
    img = photo(50, 75, 9)
    write_image(inputs / "x.tif", img, space="linear")
    write_image(inputs / "lonely.tif", img, space="linear")
    write_image(expert / "x.png", 0.5 * img + 0.25, bits=16)  # affine: commutes with area resampling
    write_image(targets / "t.png", img, bits=16)
    with pytest.warns(UserWarning, match="lonely.tif: no paired photo"):
        ds = FolderDataset(inputs, targets, crops_per_photo=2, paired_dir=expert, cache_dir=tmp_path / "c")
    assert len(ds.inputs) == 2 and ds.inputs.paired is not None
    # same crop places; the expert PNG is taken as it is (display), the input stays linear
    np.testing.assert_allclose(ds.inputs.paired, 0.5 * ds.inputs.images + 0.25, atol=1e-4)
    t_only = random_square_crops(read_image(targets / "t.png", "display"), 2, 80, folder_mod._file_rng(0, "t.png"))
    np.testing.assert_allclose(ds.targets.images, t_only, atol=1e-6)


# --------------------------------------------------------------------------- FiveK
def test_shipped_split_lists():
    first, second = read_split(folds_dir() / "FiveK_train_first2k.txt"), read_split(folds_dir() / "FiveK_train_second2k.txt")
    test = read_split(folds_dir() / "FiveK_test.txt")
    assert (len(first), len(second), len(test)) == (2000, 2000, 1000)
    assert not set(first) & set(second) and not set(test) & (set(first) | set(second))
    assert min(first + second + test) >= 1 and max(first + second + test) <= 5000


def test_fivek_layout(tmp_path):
    first = read_split(folds_dir() / "FiveK_train_first2k.txt")[:2]
    second = read_split(folds_dir() / "FiveK_train_second2k.txt")[:2]
    test = read_split(folds_dir() / "FiveK_test.txt")[:2]
    root = tmp_path / "fivek"
    (root / "input").mkdir(parents=True)
    (root / "expertC").mkdir()
    for i in first + second + test:
        img = photo(40, 60, i)
        tifffile.imwrite(root / "input" / f"a{i:04d}-cam_{i}.tif", np.round(img * 65535).astype(np.uint16), photometric="rgb")
        v = np.round(img * 65535).astype(np.uint16)
        expert = 0.5 * (v / 65535.0) ** 1.8 + 0.25  # affine in the linearised input: commutes with resampling
        tifffile.imwrite(root / "expertC" / f"a{i:04d}-cam_{i}.tif", np.round(expert * 65535).astype(np.uint16), photometric="rgb")
    ds = FiveKDataset(root, limit=2, crops_per_photo=2, cache_dir=tmp_path / "cache")
    assert ds.split_ids("train_inputs") == first
    assert len(ds.train_inputs) == 4 and ds.train_inputs.paired is None
    assert sorted({n.split("#")[0] for n in ds.train_inputs.names}) == sorted(f"{i:04d}" for i in first)
    assert len(ds.train_targets) == 4
    assert sorted({n.split("#")[0] for n in ds.train_targets.names}) == sorted(f"{i:04d}" for i in second)
    t = ds.test
    assert len(t) == 4 and t.paired is not None
    # inputs: 16-bit TIFF -> ProPhoto linearisation (x ** 1.8); expert C: display values as stored
    np.testing.assert_allclose(t.paired, 0.5 * t.images + 0.25, atol=1e-4)
    assert ds.skipped == []

    with pytest.raises(ValueError, match="no usable photo for the FiveK train_inputs split"):
        _ = FiveKDataset(root, folds=_folds(tmp_path, [4999]), cache=False).train_inputs
    (root / "expertC").rename(root / "other")
    with pytest.raises(ValueError, match="no expert C folder"):
        FiveKDataset(root)
    with pytest.raises(ValueError, match="FiveK folder not found"):
        FiveKDataset(tmp_path / "missing")


def _folds(tmp_path, ids):
    d = tmp_path / "folds"
    d.mkdir(exist_ok=True)
    for name in ("FiveK_train_first2k.txt", "FiveK_train_second2k.txt", "FiveK_test.txt", "FiveK_test_AMT.txt"):
        (d / name).write_text("# ids\n" + "\n".join(map(str, ids)) + "\n")
    return d


def test_fivek_ids_from_listing_order(tmp_path, monkeypatch):
    monkeypatch.setattr(fivek_mod, "NUM_PHOTOS", 60)  # a 60-photo "FiveK": same rule, fewer files
    folder = tmp_path / "input"
    folder.mkdir()
    for k in range(60):
        (folder / f"img_{k:05d}.tif").touch()
    ids = index_photos(folder)
    assert ids[1].name == "img_00000.tif" and ids[60].name == "img_00059.tif" and len(ids) == 60
    (folder / "img_00000.tif").unlink()
    with pytest.raises(ValueError, match="cannot tell FiveK ids"):
        index_photos(folder)
    bad = tmp_path / "bad.txt"
    bad.write_text("12\n5001\n")
    with pytest.raises(ValueError, match="bad.txt:2"):
        read_split(bad)


# --------------------------------------------------------------------------- demo
@pytest.fixture(scope="module")
def demo0(tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("demo_cache")
    data = demo_mod.demo_packs(0, cache_dir)
    data.cache_dir = cache_dir
    return data


def test_demo_packs(demo0):
    assert isinstance(demo0.train_inputs, ImagePack)
    assert demo0.train_inputs.images.shape == (600, 80, 80, 3) and demo0.train_inputs.paired is None
    assert demo0.train_targets.images.shape == (600, 80, 80, 3)
    assert demo0.val.images.shape == (64, 80, 80, 3) and demo0.val.paired.shape == (64, 80, 80, 3)
    for pack in (demo0.train_inputs, demo0.train_targets, demo0.val):
        assert np.isfinite(pack.images).all() and pack.images.min() >= 0 and pack.images.max() <= 1
    # the expert style is a fixed function of the RAW-like input, made of the agent's own filters
    np.testing.assert_allclose(demo_mod.expert_style(demo0.val.images), demo0.val.paired, atol=1e-6)
    lum = lambda x: (0.27 * x[..., 0] + 0.67 * x[..., 1] + 0.06 * x[..., 2]).mean(axis=(1, 2))  # noqa: E731
    assert 0.35 < np.median(lum(demo0.train_targets.images)) < 0.6  # ~0.18 linear after gamma 1/2.2
    assert np.median(lum(demo0.train_inputs.images)) < 0.3  # inputs are dark, RAW-like
    assert lum(demo0.train_inputs.images).std() > 2 * lum(demo0.train_targets.images).std()


def test_demo_photos_are_disjoint(demo0):
    groups = [{n.split("#")[0] for n in p.names} for p in (demo0.train_inputs, demo0.train_targets, demo0.val)]
    assert groups == [set(demo_mod.INPUT_PHOTOS), set(demo_mod.TARGET_PHOTOS), set(demo_mod.VAL_PHOTOS)]
    digests = {name: hashlib.sha256(demo_mod.photo_path(name).read_bytes()).hexdigest() for name in demo_mod.PHOTO_FILES}
    inputs = {digests[n] for n in demo_mod.INPUT_PHOTOS}
    assert not inputs & {digests[n] for n in demo_mod.TARGET_PHOTOS}
    assert not inputs & {digests[n] for n in demo_mod.VAL_PHOTOS}


def test_demo_deterministic_and_cached(demo0, tmp_path, monkeypatch):
    small = {"train_inputs": 6, "train_targets": 6, "val": 3}
    a, b, c = demo_mod.build_demo(0, small), demo_mod.build_demo(0, small), demo_mod.build_demo(1, small)
    for f in ("train_inputs", "train_targets", "val"):
        assert len(getattr(a, f)) == 2 * small[f]
        np.testing.assert_array_equal(getattr(a, f).images, getattr(b, f).images)
        assert not np.array_equal(getattr(a, f).images, getattr(c, f).images)
    np.testing.assert_array_equal(a.val.paired, b.val.paired)

    monkeypatch.setattr(demo_mod, "build_demo", lambda seed: pytest.fail("cache not used"))
    cached = demo_mod.demo_packs(0, demo0.cache_dir)
    for f in ("train_inputs", "train_targets", "val"):
        np.testing.assert_array_equal(getattr(cached, f).images, getattr(demo0, f).images)
    monkeypatch.setenv("EXPOSURE_RL_CACHE", str(tmp_path / "env"))
    assert demo_mod.demo_cache_dir() == tmp_path / "env" / "demo"


def test_write_demo_folders(tmp_path):
    dirs = demo_mod.write_demo_folders(tmp_path / "demo", seed=0)
    stems = lambda d: sorted(p.stem for p in d.iterdir())  # noqa: E731
    assert stems(dirs.inputs) == stems(dirs.expert) == sorted(demo_mod.INPUT_PHOTOS + demo_mod.VAL_PHOTOS)
    assert stems(dirs.targets) == sorted(demo_mod.TARGET_PHOTOS)
    name = demo_mod.VAL_PHOTOS[0]
    raw_like = read_image(dirs.inputs / f"{name}.tif")  # recorded as linear: read back as is
    np.testing.assert_allclose(raw_like, read_image(dirs.inputs / f"{name}.tif", "linear"))
    assert raw_like.shape == demo_mod.load_photo(name).shape
    expert = read_image(dirs.expert / f"{name}.png", "display")
    np.testing.assert_allclose(expert, demo_mod.expert_style(raw_like[None])[0], atol=2.5 / 255)
