"""CPU time and peak memory of each RefSR family at the sizes of issue 23, beside its authors' memory.

For every family in :data:`FAMILIES`: a 160×160 LR (640×640 output) with one and with four
640×640 references, and with ``--large`` a 500×500 LR (2000×2000 output) with one. Each
setting runs in a fresh process: the model (random weights) is built, warmed on a small
input, the resident set size (RSS) read, one forward pass timed under ``torch.no_grad()``
(wall seconds, and the CPU seconds of all its threads, which a loaded machine inflates
less), and the peak RSS read again; the figure is the peak minus the RSS before the pass.

The authors' memory is computed from their code, not run: for the matching families, the
relevance of every LR patch with every reference patch (what one matching step would hold
whole) and the largest blocks their code holds at once; for CrossNet, which warps by flow,
its largest tensors at the output's size.

Usage::

    python benchmarks/families.py [--families c2_matching] [--large | --only-large] [--threads 2] [--json OUT.json]

A family is one entry of :data:`FAMILIES`: its preset, a function giving its authors'
memory for (LR size, reference sizes) as ``{label: GiB}``, and whether it takes several
references (CrossNet takes one, so its four-reference row is skipped).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import torch

GiB = 2**30


def c2_matching_authors_memory(lr: int, refs: list[int]) -> dict[str, float]:
    """C2-Matching's test code (yumingj/C2-Matching), for a square LR and square references.

    It takes one reference, zero-padded with the ×4 LR image to one size; its matching
    (``ref_map_util.feature_match_index``) compares every 3×3 patch of the padded reference's
    quarter-resolution features with every position of the LR's, in blocks of
    ``512·2^20 / (h·w)`` patches (a 2 GiB float32 block); the relevance of all of them is
    what a single block would be. Several references: the figures for one, times K (their
    code has no joint matching; they would have to be matched one after the other).
    """
    side = max(4 * lr, *refs) // 4  # both padded to one size, then the quarter-resolution grid
    patches = (side - 2) ** 2
    block = min(patches, int(1024.0**2 * 512 / side**2)) * patches * 4
    deform_columns = 64 * 9 * (4 * side) ** 2 * 4  # DCNv2's im2col buffer at relu1_1
    return {
        "relevance matrix": len(refs) * patches * patches * 4 / GiB,
        "largest matching block": block / GiB,
        "deformable columns (relu1_1)": deform_columns / GiB,
    }


def datsr_authors_memory(lr: int, refs: list[int]) -> dict[str, float]:
    """DATSR's test code (caojiezhang/DATSR), for a square LR and square references.

    Its padding and matching are C2-Matching's (the same data loader and
    ``feature_match_index``), and its deformable convolution is DCNv2's at ``relu1_1`` too, so
    those figures are C2-Matching's. Its restoration adds Swin window attention at the output's
    size (the padded pair's): the qkv projection of the 128-channel tokens, and the attention
    weights of every 8×8 window (4 heads, 64×64 each), which adding the shift mask copies once
    more before the softmax.
    """
    figures = c2_matching_authors_memory(lr, refs)
    tokens = max(4 * lr, *refs) ** 2
    figures["Swin qkv (output size)"] = tokens * 3 * 128 * 4 / GiB
    figures["Swin attention weights (output size)"] = tokens / 64 * 4 * 64 * 64 * 4 / GiB
    return figures


def masa_sr_authors_memory(lr: int, refs: list[int]) -> dict[str, float]:
    """MASA-SR's test code (dvlab-research/MASA-SR, ``MASA.forward``), for a square LR and square references.

    Their loader pads the LR to a multiple of 8 (the ground truth to 32) and the reference to
    16; several references are stacked into one, one above the other (their ``TestSet_multi``;
    its padding of each to 512×512 cannot hold a 640×640 one, so they are stacked as they
    are). On the reduced reference's features (64 channels, a quarter of its sides) the
    coarse search scores every position for each 8×8 block; the fine search scores, for each
    of a block's 64 pixels, the d_y×d_x patch centres of its window; the transfer to ×4
    unfolds each block's ×4 window into 12×12 patches at stride 4, the largest tensor of the
    pass. Every other tensor of their pass is smaller than that last one.
    """
    channels, side = 64, -(-lr // 8) * 8
    blocks = (side // 8) ** 2
    width = -(-max(refs) // 16) * 16 // 4
    height = width * len(refs)
    dx = 2 * int(width // (2 * (side // 8)) * 1.5) + 1
    dy = 2 * int(height // (2 * (side // 8)) * 1.5) + 1
    return {
        "coarse relevance": blocks * height * width * 4 / GiB,
        "fine relevance": blocks * 64 * dy * dx * 4 / GiB,
        "×4 transfer unfold": blocks * channels * 144 * dy * dx * 4 / GiB,
    }


def ttsr_authors_memory(lr: int, refs: list[int]) -> dict[str, float]:
    """TTSR's test code (researchmm/TTSR, ``SearchTransfer.forward``), for a square LR and square references.

    Their loader crops the reference to a multiple of 4 and feeds the ×4 bicubic LR↑ and the
    reference↓↑ to the texture extractor; at ``relu3_1`` (256 channels, a quarter of the
    sides) every 3×3 patch of the LR↑ is scored against every 3×3 patch of the reference↓↑ in
    one ``bmm``: the relevance matrix. The transfer unfolds the reference's ``relu3_1``,
    ``relu2_1`` and ``relu1_1`` maps into 3×3, 6×6 and 12×12 patches at every quarter-scale
    position (2304 + 4608 + 9216 values each), and gathers one such patch per LR position
    before folding. Several references: the relevance and the unfolded references of all K
    (their code takes one reference; they would be matched one after the other).
    """
    positions = lr**2  # relu3_1 of the ×4 LR↑: the LR's own grid
    ref_positions = sum((r // 4) ** 2 for r in refs)  # cropped to a multiple of 4, then a quarter
    patch_values = 256 * 9 + 128 * 36 + 64 * 144
    return {
        "relevance matrix": ref_positions * positions * 4 / GiB,
        "unfolded references (relu1_1–relu3_1)": ref_positions * patch_values * 4 / GiB,
        "gathered textures (unfolded, LR positions)": positions * patch_values * 4 / GiB,
    }


def crossnet_authors_memory(lr: int, refs: list[int]) -> dict[str, float]:
    """CrossNet's code (htzheng/ECCV2018_CrossNet_RefSR, ``MultiscaleWarpingNet.forward``), for a square LR.

    Flow-based: no relevance matrix. Its FlowNet concatenates the LR↑ and the reference along
    the channels, so both are at the output's size, and its six stride-2 levels, whose skips
    are concatenated on the way up, need a multiple of 64 (the sides are rounded up to one
    here). The largest tensors are at that size: ``Backward_warp`` gathers the four bilinear
    neighbours of the 64-channel ``conv1`` reference features at every output pixel (all four
    alive before their weighted sum), and the decoder's last concatenation holds 192 channels
    (the upsampled fusion, the LR↑ features and the warped reference features). Their network
    takes one reference; K of them would be K passes holding as much each, so the figures are
    those of one.
    """
    side = -(-max(4 * lr, *refs) // 64) * 64
    return {
        "warped conv1 (64 ch)": 64 * side**2 * 4 / GiB,
        "warp's gathered corners (4 × 64 ch)": 4 * 64 * side**2 * 4 / GiB,
        "decoder concatenation (192 ch)": 192 * side**2 * 4 / GiB,
    }


class Family(NamedTuple):
    """One benchmarked family: its preset, its authors' memory at a size, and how many references it takes."""

    preset: str
    authors: Callable[[int, list[int]], dict[str, float]]
    several_references: bool = True  # False: the rows with four references are skipped


#: Family name → its preset and its authors' memory at a size.
FAMILIES: dict[str, Family] = {
    "c2_matching": Family("c2_matching", c2_matching_authors_memory),
    "crossnet": Family("crossnet", crossnet_authors_memory, several_references=False),
    "datsr": Family("datsr", datsr_authors_memory),
    "masa_sr": Family("masa_sr", masa_sr_authors_memory),
    "ttsr": Family("ttsr_authors", ttsr_authors_memory),
}


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def child(preset: str, lr_size: int, ref_sizes: list[int], threads: int) -> None:
    from refsr_blocks import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(preset).eval()
    lr = torch.rand(1, 3, lr_size, lr_size)
    refs = [torch.rand(1, 3, s, s) for s in ref_sizes]
    with torch.no_grad():  # warm the weights and the allocator on a small input
        model(lr[..., :8, :8], [r[..., :32, :32] for r in refs])
    before = _rss_mib()
    start, start_cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        out = model(lr, refs)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        json.dumps(
            {"seconds": seconds, "cpu_seconds": cpu_seconds, "pass_mib": peak - before, "output": list(out.shape)}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated names of FAMILIES")
    parser.add_argument("--large", action="store_true", help="also a 500×500 LR with one 640×640 reference")
    parser.add_argument("--only-large", action="store_true", help="only the 500×500 LR row (implies --large)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run (default 2)")
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        preset, lr_size, refs = args.child
        child(preset, int(lr_size), [int(s) for s in refs.split(",")], args.threads)
        return
    settings = [] if args.only_large else [(160, [640]), (160, [640] * 4)]
    settings += [(500, [640])] if args.large or args.only_large else []
    rows = []
    print("| family | LR | references | seconds, wall (CPU) | peak MiB (pass) | authors' memory, computed (GiB) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.families.split(","):
        preset, authors, several = FAMILIES[name]
        for lr_size, ref_sizes in settings:
            if len(ref_sizes) > 1 and not several:
                continue
            refs = ",".join(map(str, ref_sizes))
            command = [sys.executable, __file__, "--threads", str(args.threads), "--child", preset, str(lr_size), refs]
            done = subprocess.run(command, check=False, capture_output=True, text=True)
            theirs = authors(lr_size, ref_sizes)
            if done.returncode != 0:  # e.g. killed by the kernel for memory: a row that says so
                ending = f"signal {-done.returncode}" if done.returncode < 0 else f"exit {done.returncode}"
                rows.append({"family": name, "lr": lr_size, "refs": ref_sizes, "failed": ending, "authors_gib": theirs})
                print(
                    f"| {name} | {lr_size}² | {len(ref_sizes)} × {ref_sizes[0]}² | failed: {ending} | — | |", flush=True
                )
                continue
            result = json.loads(done.stdout)
            row = {"family": name, "lr": lr_size, "refs": ref_sizes, **result, "authors_gib": theirs}
            rows.append(row)
            their_text = "; ".join(f"{k} {v:.2f}" for k, v in theirs.items())
            print(
                f"| {name} | {lr_size}² | {len(ref_sizes)} × {ref_sizes[0]}² | {result['seconds']:.1f} ({result['cpu_seconds']:.1f}) "
                f"| {result['pass_mib']:.0f} | {their_text} |",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
