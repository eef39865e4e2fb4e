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


# -- the one reader: header-checked sizes, EXIF, float and 32-bit images, damaged files ----------------


def _png_declaring(path, width: int, height: int) -> None:
    """A tiny PNG whose header claims ``width``×``height`` (an 8×8 image with IHDR rewritten)."""
    import struct
    import zlib

    Image.new("L", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = 8 + 8  # PNG signature, then the IHDR chunk's length and type
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13])))
    path.write_bytes(bytes(data))


def test_a_huge_declared_size_is_refused_from_the_header(tmp_path):
    """A 50000×50000 header (a few hundred bytes) is refused before decoding, naming the file and the size,
    not with PIL's DecompressionBombError; PIL's own limit is left as it was."""
    from refsr_blocks.data.io import MAX_IMAGE_PIXELS, read_image_size

    bomb = tmp_path / "bomb.png"
    _png_declaring(bomb, 50000, 50000)
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(DataError, match=r"'.*bomb.png' is 50000×50000 pixels \(2500 Mpx\), over the limit of 1074 Mpx"):
        load_image(bomb)
    assert before == Image.MAX_IMAGE_PIXELS
    assert read_image_size(bomb) == (50000, 50000), "the size alone is read from the header"
    assert MAX_IMAGE_PIXELS >= 24000 * 24000, "a 24000×24000 reference (×4 of 6000×6000) is within the limit"


def test_the_size_limit_names_width_by_height(tmp_path):
    save_image(torch.rand(3, 12, 16), tmp_path / "wide.png")
    with pytest.raises(DataError, match=r"'.*wide.png' is 16×12 pixels .* over the limit .*\(100 pixels\)"):
        load_image(tmp_path / "wide.png", max_pixels=100)
    assert load_image(tmp_path / "wide.png", max_pixels=16 * 12).shape == (3, 12, 16)


def test_exif_orientation_is_applied(tmp_path):
    """A phone JPEG stored landscape with orientation 6 (rotate 90° clockwise) loads portrait, upright."""
    stored = np.zeros((4, 8, 3), np.uint8)
    stored[:, :4] = (255, 0, 0)  # left half red, right half blue
    stored[:, 4:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    img = load_image(tmp_path / "phone.jpg")
    assert img.shape == (3, 8, 4), "width and height swapped"
    # turning clockwise brings the left column to the top: red above, blue below
    red, blue = torch.tensor([1.0, 0, 0])[:, None, None], torch.tensor([0, 0, 1.0])[:, None, None]
    assert (img[:, 1:3] - red).abs().max() < 0.1 and (img[:, 5:7] - blue).abs().max() < 0.1


@pytest.mark.parametrize(
    ("values", "divisor"),
    [
        (np.array([[0.0, 0.25], [0.5, 1.0]]), 1.0),  # already in [0, 1]
        (np.array([[0.0, 64.0], [128.0, 255.0]]), 255.0),  # 0-255 floats
        (np.array([[0.0, 1000.0], [30000.0, 65535.0]]), 65535.0),  # 16-bit range
        (np.array([[0.0, 1e5], [2e5, 4e5]]), 4e5),  # HDR: normalised to the brightest pixel
    ],
)
@pytest.mark.parametrize("mode", ["F", "I"])
def test_float_and_32bit_images_are_scaled_by_their_range(tmp_path, values, divisor, mode):
    """A float32 TIFF (PIL mode "F") is not read as black, and mode "I" follows the same rule."""
    if mode == "I" and values.max() <= 1:
        values = values * 0 + np.array([[0, 0], [1, 1]])  # 0/1 integers: taken as they are
    path = tmp_path / f"{mode}.tif"
    Image.fromarray(values.astype(np.float32 if mode == "F" else np.int32), mode).save(path)
    img = load_image(path)
    assert img.shape == (3, 2, 2)
    expected = torch.from_numpy(values.astype(np.float32) / divisor).clamp(0, 1)
    torch.testing.assert_close(img, expected.expand(3, -1, -1), atol=1e-6, rtol=0)


def test_a_float_image_with_nan_is_an_error(tmp_path):
    Image.fromarray(np.array([[0.0, np.nan]], np.float32), "F").save(tmp_path / "nan.tif")
    with pytest.raises(DataError, match=r"'.*nan.tif'.*NaN or infinite"):
        load_image(tmp_path / "nan.tif")


def test_junk_and_truncated_files_are_one_clear_error(tmp_path):
    (tmp_path / "junk.png").write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(DataError, match=r"'.*junk.png' is not an image file that can be read"):
        load_image(tmp_path / "junk.png")
    save_image(torch.rand(3, 64, 64), tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"'.*cut.png' is truncated or damaged"):
        load_image(tmp_path / "cut.png")


def test_a_folder_or_fifo_is_named_for_what_it_is(tmp_path):
    import os

    (tmp_path / "dir.png").mkdir()
    with pytest.raises(DataError, match=r"'.*dir.png' is a folder, not an image file"):
        load_image(tmp_path / "dir.png")
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(DataError, match=r"'.*pipe.png' is a FIFO \(named pipe\), not an image file"):
        load_image(tmp_path / "pipe.png")  # never opened: opening would block


def test_same_stem_files_are_ambiguous(tmp_path):
    from refsr_blocks.data.io import images_by_stem

    for name in ("a.png", "a.jpg", "b.png"):
        save_image(torch.rand(3, 4, 4), tmp_path / name)
    with pytest.raises(DataError, match=r"'.*a.jpg' and '.*a.png' have the same name stem 'a'"):
        images_by_stem(list_images(tmp_path))
    assert set(images_by_stem([tmp_path / "a.png", tmp_path / "b.png"])) == {"a", "b"}
