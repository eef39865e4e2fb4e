"""How well ``match_flow``'s coarse correspondence finds a reference under viewpoint change.

Real photos (scikit-image's bundled colour photos, ``SKIMAGE_PHOTOS``; the Middlebury
motorcycle pair is held out and never used) give a target crop and a reference rendered
from the whole photo by a known transform: a homography, a 0.7× and a 1.4× zoom, a 10°
rotation, a 40 px 2-D shift, a partial overlap. The target is the ×4 bicubic-reduced crop,
bicubic-upsampled again. For each case it prints the end-point error (EPE, pixels) of the
flow against the known one and the PSNR of the warped reference against the ground truth,
both on the valid region (target pixels the reference shows), for: identity (no flow),
phase correlation (the best global whole-pixel shift, ``refsr_blocks.components.prealigns``)
and the untrained aligner's coarse field (flow residual zero: the coarse stage alone).

    python benchmarks/match_flow_alignment.py                 # the table, 192×256 targets
    python benchmarks/match_flow_alignment.py --size 384 512  # larger targets
    python benchmarks/match_flow_alignment.py --timing        # one 480×640 alignment: time, peak memory,
                                                              # and the coarse stage per chunk_size
    python benchmarks/match_flow_alignment.py --export        # try torch.export and bf16 autocast
"""

from __future__ import annotations

import argparse
import math
import resource
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kornia.geometry.transform import get_perspective_transform, warp_perspective
from torch import Tensor, nn

from refsr_blocks.components.aligners import FlowWarpAligner, MatchFlowAligner
from refsr_blocks.components.prealigns import phase_correlation_shift
from refsr_blocks.data.sources import builtin_images
from refsr_blocks.ops.flow import crop_to, pad_to_multiple
from refsr_blocks.ops.sample import inside_of, warp_from
from refsr_blocks.ops.warp import pixel_grid

CASES = ("homography", "zoom_0.7", "zoom_1.4", "rotate_10", "shift_40", "partial")


@dataclass
class Case:
    """One target / reference pair with its known flow (``target[p] ≈ ref[p + flow[p]]``)."""

    name: str
    target: Tensor  # 1×3×H×W, the ×4 bicubic-upsampled LR
    truth: Tensor  # 1×3×H×W ground truth
    ref: Tensor  # 1×3×H_r×W_r
    flow: Tensor  # 1×2×H×W in reference pixels
    valid: Tensor  # 1×1×H×W: the reference shows this pixel (4 px from its edge)


def _about(centre: tuple[float, float], matrix: Tensor, out_centre: tuple[float, float]) -> Tensor:
    """``matrix`` (2×2) applied about ``centre`` of the photo, landing at ``out_centre`` of the reference."""
    g = torch.eye(3, dtype=torch.float64)
    g[:2, :2] = matrix
    g[:2, 2] = torch.tensor(out_centre, dtype=torch.float64) - matrix @ torch.tensor(centre, dtype=torch.float64)
    return g


def _transform(kind: str, centre: tuple[float, float], size: tuple[int, int], gen: torch.Generator) -> Tensor:
    """The 3×3 map from photo pixels to reference pixels for one kind of viewpoint change."""
    h, w = size
    mid = ((w - 1) / 2, (h - 1) / 2)
    eye = torch.eye(2, dtype=torch.float64)
    if kind.startswith("zoom_"):
        return _about(centre, eye * float(kind[5:]), mid)
    if kind == "rotate_10":
        a = math.radians(10)
        rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
        return _about(centre, rot, mid)
    if kind == "shift_40":
        return _about(centre, eye, (mid[0] - 32, mid[1] + 24))
    if kind == "partial":  # the reference shows the target's right half and what lies beyond it
        return _about(centre, eye, (mid[0] - w / 2, mid[1] - h / 8))
    if kind == "homography":
        cx, cy = centre
        src = torch.tensor(
            [[cx - w / 2, cy - h / 2], [cx + w / 2, cy - h / 2], [cx + w / 2, cy + h / 2], [cx - w / 2, cy + h / 2]],
            dtype=torch.float64,
        )
        dst = torch.tensor([[0, 0], [w, 0], [w, h], [0, h]], dtype=torch.float64)
        dst = dst + (torch.rand(4, 2, generator=gen, dtype=torch.float64) - 0.5) * 0.2 * torch.tensor([w, h])
        return get_perspective_transform(src[None], dst[None])[0]
    raise ValueError(f"unknown case {kind!r}; choose from {CASES}")


def make_case(photo: Tensor, kind: str, size: tuple[int, int], upscale: int = 4, seed: int = 0) -> Case:
    """A viewpoint-change case from ``photo`` (3×H×W): target crop at its centre of ``size``."""
    gen = torch.Generator().manual_seed(seed)
    h, w = size
    top, left = (photo.shape[1] - h) // 2, (photo.shape[2] - w) // 2
    truth = photo[None, :, top : top + h, left : left + w]
    g = _transform(kind, (left + (w - 1) / 2, top + (h - 1) / 2), size, gen)
    ref = warp_perspective(photo[None].double(), g[None], (h, w), align_corners=True).float().clamp(0, 1)
    lr = F.interpolate(truth, scale_factor=1 / upscale, mode="bicubic", antialias=True, align_corners=False)
    target = F.interpolate(lr, size=size, mode="bicubic", align_corners=False).clamp(0, 1)
    grid = pixel_grid(h, w, dtype=torch.float64) + torch.tensor([left, top], dtype=torch.float64).view(1, 2, 1, 1)
    pos = torch.einsum("ij,bjhw->bihw", g, torch.cat([grid, torch.ones(1, 1, h, w, dtype=torch.float64)], 1))
    flow = (pos[:, :2] / pos[:, 2:] - pixel_grid(h, w, dtype=torch.float64)).float()
    # Inside the reference, and from inside the photo (the rendered reference is black elsewhere).
    rendered = warp_perspective(torch.ones_like(photo[None, :1]).double(), g[None], (h, w), align_corners=True)
    valid = inside_of(flow, (h, w), margin=4) & (warp_from(rendered.float(), flow) > 0.999)
    return Case(kind, target, truth, ref, flow, valid)


def viewpoint_cases(size: tuple[int, int] = (192, 256), photos: int = 4, upscale: int = 4) -> list[Case]:
    """Every kind of :data:`CASES` on the first ``photos`` bundled photos (skimage, else procedural)."""
    images = builtin_images()[:photos]
    return [make_case(img, kind, size, upscale, seed=i) for i, img in enumerate(images) for kind in CASES]


def epe(flow: Tensor, case: Case) -> float:
    """Mean end-point error (pixels) on the valid region."""
    return float((flow - case.flow).norm(dim=1, keepdim=True)[case.valid].mean())


def warped_psnr(flow: Tensor, case: Case) -> float:
    """PSNR (dB) of the reference warped by ``flow`` against the ground truth, on the valid region."""
    err = (warp_from(case.ref, flow) - case.truth).square().mean(1, keepdim=True)[case.valid].mean()
    return min(60.0, float(-10 * torch.log10(err)))  # 60 dB: exact (a whole-pixel shift)


class ZeroFlow(nn.Module):
    """A flow estimator that returns zero flows: the aligner's coarse stage alone."""

    def __init__(self, scales: int = 3) -> None:
        super().__init__()
        self.scales = scales

    def forward(self, target: Tensor, ref: Tensor) -> list[Tensor]:
        h, w = target.shape[-2:]
        return [target.new_zeros(target.shape[0], 2, -(-h // 2**k), -(-w // 2**k)) for k in range(self.scales)]


def coarse_flow(aligner: MatchFlowAligner, case: Case) -> Tensor:
    """The aligner's level-0 flow with image pyramids as features (one level)."""
    with torch.no_grad():
        out = aligner([case.target], [[case.ref]], target=case.target, refs=[case.ref])
    return out["flows"][0]


def phase_flow(case: Case) -> Tensor:
    """Phase correlation's global whole-pixel shift (reference cropped or padded to the target)."""
    h, w = case.target.shape[-2:]
    ref, _ = pad_to_multiple(case.ref, max(h, w))
    shift = phase_correlation_shift(case.target, crop_to(ref, (h, w)), max_shift=max(h, w) / 2)
    return shift[:, :, None, None].expand(1, 2, h, w).clone()


def table(size: tuple[int, int], photos: int, **params: object) -> None:
    aligner = MatchFlowAligner(flow=ZeroFlow(1), scales=1, **params).eval()
    rows: dict[str, list[list[float]]] = {}
    for case in viewpoint_cases(size, photos):
        flows = [torch.zeros_like(case.flow), phase_flow(case), coarse_flow(aligner, case)]
        rows.setdefault(case.name, []).append([f(fl, case) for fl in flows for f in (epe, warped_psnr)])
    print(f"{photos} photos, target {size[0]}×{size[1]} (×4 bicubic LR, upsampled), match_level {aligner.match_level}")
    print(
        f"{'case':<12} {'EPE id':>8} {'EPE phase':>10} {'EPE match':>10}   {'dB id':>6} {'dB phase':>8} {'dB match':>8}"
    )
    for name, vals in rows.items():
        m = torch.tensor(vals).mean(0).tolist()
        print(f"{name:<12} {m[0]:8.2f} {m[2]:10.2f} {m[4]:10.2f}   {m[1]:6.2f} {m[3]:8.2f} {m[5]:8.2f}")


def timing() -> None:
    """One alignment of a 480×640 target with a 480×640 reference, FlowNetS+ refinement, 4 levels."""
    torch.manual_seed(0)
    aligner = MatchFlowAligner(scales=4).eval()
    target, ref = torch.rand(1, 3, 480, 640), torch.rand(1, 3, 480, 640)
    feats = [torch.rand(1, 32, 480 // 2**k, 640 // 2**k) for k in range(4)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.no_grad():
        aligner(feats, [feats], target=target, refs=[ref])  # warm-up
        start = time.perf_counter()
        aligner(feats, [feats], target=target, refs=[ref])
        elapsed = time.perf_counter() - start
        coarse = time.perf_counter()
        aligner.correspond(target, ref)
        coarse = time.perf_counter() - coarse
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    torch.manual_seed(0)
    flow_warp = FlowWarpAligner(scales=4).eval()  # the baseline: FlowNetS+ alone, same inputs
    with torch.no_grad():
        flow_warp(feats, [feats], target=target, refs=[target])
        baseline = time.perf_counter()
        flow_warp(feats, [feats], target=target, refs=[target])
        baseline = time.perf_counter() - baseline
    print(f"flow_warp (FlowNetS+ alone) on the same inputs: {baseline:.2f} s")
    print(
        f"480×640 target and reference, {torch.get_num_threads()} threads: {elapsed:.2f} s per alignment "
        f"(coarse stage {coarse:.2f} s at chunk_size {aligner.chunk_size}); "
        f"peak RSS {peak / 1024:.0f} MiB (+{(peak - before) / 1024:.0f} MiB)"
    )
    # The relevance blocks' size decides whether bmm and max work in cache (identical matches).
    for chunk in (4096, 2048, 1024, 512):
        aligner.chunk_size = chunk
        times = []
        with torch.no_grad():
            for _ in range(4):  # the first call warms the allocator for this block size
                start = time.perf_counter()
                aligner.correspond(target, ref)
                times.append(time.perf_counter() - start)
        seconds = min(times[1:])
        print(f"coarse stage at chunk_size {chunk}: {seconds:.2f} s (best of 3)")


def export_check() -> None:
    """bf16 autocast against fp32 on a viewpoint case, then ``torch.export`` of the aligner."""
    case = make_case(builtin_images()[0], "rotate_10", (288, 384))
    aligner = MatchFlowAligner(flow="flownets_plus", scales=3, flow_params={"width": 0.25}).eval()
    feats = [F.avg_pool2d(case.target, 2**k) for k in range(3)]
    refs = [F.avg_pool2d(case.ref, 2**k) for k in range(3)]
    with torch.no_grad():
        full = aligner(feats, [refs], target=case.target, refs=[case.ref])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = aligner(feats, [refs], target=case.target, refs=[case.ref])
    for name in ("flows", "aligned", "confidence"):
        diff = max(float((a.float() - b.float()).abs().max()) for a, b in zip(full[name], half[name]))
        mean = max(float((a.float() - b.float()).abs().mean()) for a, b in zip(full[name], half[name]))
        print(f"bf16 autocast vs fp32, {name}: max |diff| {diff:.3g}, mean {mean:.3g}")
    print(f"EPE fp32 {epe(full['flows'][0], case):.2f} px, bf16 {epe(half['flows'][0].float(), case):.2f} px")

    class Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.aligner = aligner

        def forward(self, target: Tensor, ref: Tensor) -> Tensor:
            return self.aligner([target], [[ref]], target=target, refs=[ref])["aligned"][0]

    try:
        torch.export.export(Wrapped(), (case.target, case.ref))
        print("torch.export: ok")
    except Exception as err:  # report, do not hide: the SUPPORT declaration rests on this
        print(f"torch.export: fails: {type(err).__name__}: {str(err).splitlines()[0][:300]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, nargs=2, default=(192, 256), metavar=("H", "W"))
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--match-level", type=int, default=None, help="the aligner's match_level (default: its own)")
    parser.add_argument("--timing", action="store_true")
    parser.add_argument("--export", action="store_true")
    args = parser.parse_args()
    if args.timing:
        timing()
    elif args.export:
        export_check()
    else:
        params = {} if args.match_level is None else {"match_level": args.match_level}
        table(tuple(args.size), args.photos, **params)


if __name__ == "__main__":
    main()
