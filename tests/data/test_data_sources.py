"""builtin_images: which source is used, the procedural fallback, the skimage path."""

from __future__ import annotations

import pytest
import torch

from refsr_blocks.data import (
    DataError,
    DataNotFoundError,
    builtin_image_source,
    builtin_images,
    procedural_image,
    save_image,
    sources,
)


def test_auto_picks_the_reported_source():
    source = builtin_image_source()
    assert source in ("skimage", "procedural")
    if source == "procedural":
        imgs = builtin_images(count=2, size=(64, 80))
        assert [i.shape for i in imgs] == [(3, 64, 80), (3, 64, 80)]


def test_procedural_images_are_deterministic_natural_and_detailed():
    imgs = builtin_images("procedural", count=3, size=(96, 128), seed=5)
    again = builtin_images("procedural", count=3, size=(96, 128), seed=5)
    assert len(imgs) == 3
    for img, same in zip(imgs, again):
        assert img.shape == (3, 96, 128) and img.dtype == torch.float32
        assert img.min() >= 0 and img.max() <= 1 and img.std() > 0.1
        assert torch.equal(img, same)
        assert not torch.equal(img[0], img[1])  # coloured, not grey
        # high-frequency detail: neighbouring pixels differ noticeably in many places
        grad = (img[:, :, 1:] - img[:, :, :-1]).abs()
        assert (grad > 0.1).float().mean() > 0.02
    assert not torch.equal(imgs[0], imgs[1])
    imgs[0].zero_()  # callers get copies, the cache is untouched
    assert torch.equal(builtin_images("procedural", count=3, size=(96, 128), seed=5)[0], again[0])
    assert torch.equal(procedural_image(96, 128, seed=6), again[1])


def test_skimage_path_reads_the_package_photos(tmp_path, monkeypatch):
    for name, size in (("astronaut.png", (32, 32)), ("coffee.png", (20, 30))):
        save_image(torch.rand(3, *size), tmp_path / name)
    monkeypatch.setattr(sources, "_skimage_data_dir", lambda: tmp_path)
    assert builtin_image_source() == "skimage"
    imgs = builtin_images()
    assert [tuple(i.shape) for i in imgs] == [(3, 32, 32), (3, 20, 30)]


def test_skimage_requested_but_missing(monkeypatch):
    monkeypatch.setattr(sources, "_skimage_data_dir", lambda: None)
    assert builtin_image_source() == "procedural"
    with pytest.raises(DataNotFoundError, match="pip install scikit-image"):
        builtin_images("skimage")


def test_bad_arguments():
    with pytest.raises(DataError, match="source must be"):
        builtin_images("imagenet")
    with pytest.raises(DataError, match="count must be"):
        builtin_images("procedural", count=0)
    with pytest.raises(DataError, match="at least 16×16"):
        procedural_image(8, 8)
