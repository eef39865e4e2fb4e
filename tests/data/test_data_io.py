"""Image files to tensors and back; folder listing and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from refsr_blocks.data import DataError, DataNotFoundError, list_images, load_image, load_image_folder, save_image


def test_roundtrip_is_exact_on_8bit_levels(tmp_path):
    img = torch.randint(0, 256, (3, 9, 11)).float() / 255
    save_image(img, tmp_path / "a.png")
    back = load_image(tmp_path / "a.png")
    assert back.shape == (3, 9, 11) and back.dtype == torch.float32
    torch.testing.assert_close(back, img)


def test_grey_alpha_and_16bit_images_become_rgb(tmp_path):
    Image.fromarray(np.full((4, 5), 128, np.uint8)).save(tmp_path / "grey.png")
    Image.fromarray(np.full((4, 5, 4), 200, np.uint8), "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.full((4, 5), 65535 // 2, np.uint16)).save(tmp_path / "deep.png")
    for name, value in (("grey", 128 / 255), ("rgba", 200 / 255), ("deep", (65535 // 2) / 65535)):
        img = load_image(tmp_path / f"{name}.png")
        assert img.shape == (3, 4, 5), name
        torch.testing.assert_close(img, torch.full((3, 4, 5), value), atol=1e-6, rtol=0)


def test_list_images_and_folder_loading(tmp_path):
    for name in ("b.png", "a.jpg", "c.txt"):
        (tmp_path / name).touch() if name.endswith(".txt") else save_image(torch.rand(3, 4, 4), tmp_path / name)
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.png"]
    imgs = load_image_folder(tmp_path)
    assert len(imgs) == 2 and all(i.shape == (3, 4, 4) for i in imgs)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        list_images(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        load_image_folder(tmp_path / "nope")
    with pytest.raises(DataNotFoundError, match="no images"):
        load_image_folder(tmp_path)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_image(tmp_path / "x.png")


def test_save_image_rejects_bad_tensors(tmp_path):
    with pytest.raises(DataError, match="1 or 3 channels"):
        save_image(torch.rand(2, 4, 4), tmp_path / "x.png")
    with pytest.raises(DataError, match="C×H×W"):
        save_image(torch.rand(1, 3, 4, 4), tmp_path / "x.png")
