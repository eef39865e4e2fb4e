"""Peak memory of attention-based RefSR on CPU: a 160×160 LR (640×640 output) with one and
with four 640×640 references, chunked and unchunked matching.

Usage::

    python benchmarks/attention_memory.py [--spec configs/real_x4/ttsr_model.yaml] [--chunks 4096,1024]
        [--unchunked] [--json OUT.json]

Each setting runs in a fresh process: the model is built and its weights touched, the
resident set size (RSS) is read, one forward pass runs under ``torch.no_grad()``, and the
peak RSS (``ru_maxrss``) is read again. The figure reported is the peak minus the RSS before
the pass: what the pass itself needed. ``--unchunked`` adds the single-block setting
(``chunk_size`` larger than the images), whose relevance matrix alone is
(LR pixels × reference pixels per position on the matching grid) × 4 bytes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import torch
from benchtools import forward_memory  # benchmarks/benchtools.py, next to this script


def child(spec: str, chunk: int, refs: int, lr_size: int, ref_size: int) -> None:
    from refsr_blocks import build_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model(spec, **{"aligner.chunk_size": chunk}).eval()
    lr = torch.rand(1, 3, lr_size, lr_size)
    references = [torch.rand(1, 3, ref_size, ref_size) for _ in range(refs)]
    print(json.dumps(forward_memory(model, lr, references)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="configs/real_x4/ttsr_model.yaml")
    parser.add_argument("--chunks", default="4096,1024", help="chunk_size values (reference positions per block)")
    parser.add_argument("--unchunked", action="store_true", help="also one block for everything (needs GBs)")
    parser.add_argument("--lr-size", type=int, default=160)
    parser.add_argument("--ref-size", type=int, default=640)
    parser.add_argument("--json", default=None, help="write the rows to this file")
    parser.add_argument("--child", nargs=3, type=int, metavar=("CHUNK", "REFS", "_"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.spec, args.child[0], args.child[1], args.lr_size, args.ref_size)
        return
    chunks = [int(c) for c in args.chunks.split(",")]
    if args.unchunked:
        chunks.append(10**9)
    rows = []
    print(f"spec {args.spec}: LR {args.lr_size}×{args.lr_size}, references {args.ref_size}×{args.ref_size}, 1 thread")
    print("| chunk_size | references | pass peak (MiB) | process peak RSS (MiB) | time (s) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for chunk in chunks:
        for refs in (1, 4):
            if chunk == 10**9 and refs == 4:
                continue  # 4 × the single-reference matrix: beyond this machine's share
            cmd = [
                sys.executable,
                __file__,
                "--spec",
                args.spec,
                "--lr-size",
                str(args.lr_size),
                "--ref-size",
                str(args.ref_size),
                "--child",
                str(chunk),
                str(refs),
                "0",
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            row.update(chunk_size=chunk, references=refs)
            rows.append(row)
            label = "unchunked" if chunk == 10**9 else str(chunk)
            print(
                f"| {label} | {refs} | {row['pass_mib']:.0f} | {row['peak_rss_mib']:.0f} | {row['seconds']:.1f} |",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
