"""Streaming `refsr-blocks sr`: wall time and peak memory of a very large result.

Usage::

    python benchmarks/streaming.py                       # a 6000×6000 LR at ×4: a 24000×24000 result
    python benchmarks/streaming.py --lr-size 1500        # a quicker 6000×6000 result
    python benchmarks/streaming.py --keep /tmp/big       # keep the input and output files there
    python benchmarks/streaming.py --rss-log rss.csv     # also the child's resident memory every second

It makes a test pair from the shipped demo photo (``refsr_blocks/assets/demo/hr.png``) brought
to ``4 × lr-size`` pixels a side (bicubic: a smooth but real-looking picture), the LR image by
×4 bicubic downsampling and the reference as the same picture shifted by (13, −9) pixels, writes
them as PNGs (in a child process of its own), then runs ``refsr-blocks sr`` with the default
weights in another and prints its wall time and peak resident memory, which includes the PNG
decoding of both inputs: the ``VmHWM`` the ``sr`` process reports as it exits. (Not
``ru_maxrss`` of this script's children: it is the largest of any child, the one that made the
inputs included, and on Linux a child's also counts the memory of the process it was forked
from.) The CPU model is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchtools import cpu_name  # benchmarks/benchtools.py, next to this script
from PIL import Image

DEMO_HR = Path(__file__).resolve().parent.parent / "refsr_blocks" / "assets" / "demo" / "hr.png"
SCALE = 4
#: The child that runs ``refsr-blocks sr`` and prints its own peak resident memory as it exits.
#: It also writes the figure (KiB) to the file named by ``$SR_PEAK_FILE``.
SR_CHILD = """
import atexit, os, sys
from refsr_blocks.tools.cli import main
def peak():
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    print(f"sr process peak: {kib / 2**20:.2f} GiB (VmHWM)", file=sys.stderr)
    if os.environ.get("SR_PEAK_FILE"):
        with open(os.environ["SR_PEAK_FILE"], "w") as f:
            f.write(str(kib))
atexit.register(peak)
sys.exit(main())
"""


def make_pair(folder: Path, lr_side: int) -> tuple[Path, Path]:
    """``lr.png`` (lr_side²) and ``ref.png`` ((4·lr_side)², shifted) in ``folder``."""
    Image.MAX_IMAGE_PIXELS = None  # our own, known-size pictures
    side = SCALE * lr_side
    with Image.open(DEMO_HR) as demo:
        hr = demo.convert("RGB").resize((side, side), Image.Resampling.BICUBIC)
    hr.resize((lr_side, lr_side), Image.Resampling.BICUBIC).save(folder / "lr.png", compress_level=1)
    ref = Image.new("RGB", hr.size)
    ref.paste(hr, (13, -9))
    del hr
    ref.save(folder / "ref.png", compress_level=1)
    return folder / "lr.png", folder / "ref.png"


def resident_gib(pid: int) -> float | None:
    """The resident set size of process ``pid`` in GiB (``VmRSS``), ``None`` once it has gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def run_logging_memory(command: list[str], log: Path | None, env: dict[str, str] | None = None) -> int:
    """Run ``command``; with ``log``, write its resident memory every second there (CSV: seconds,
    GiB), so that where the peak happens can be seen, not only how high it is."""
    child = subprocess.Popen(command, env=env)
    if log is None:
        return child.wait()
    started = time.perf_counter()
    with log.open("w") as f:
        f.write("seconds,rss_gib\n")
        while child.poll() is None:
            rss = resident_gib(child.pid)
            if rss is not None:
                f.write(f"{time.perf_counter() - started:.0f},{rss:.3f}\n")
                f.flush()
            time.sleep(1.0)
    return child.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lr-size", type=int, default=6000, help="LR side in pixels (default 6000)")
    parser.add_argument("--keep", type=Path, default=None, help="folder for the files (default: a temporary one)")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--rss-log", type=Path, default=None, help="CSV of the child's resident memory every second")
    parser.add_argument("--make-pair", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.make_pair:  # the child that makes the inputs, so that this process stays small
        make_pair(args.make_pair, args.lr_size)
        return 0
    folder = args.keep or Path(tempfile.mkdtemp(prefix="refsr_stream_"))
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    make = [sys.executable, __file__, "--make-pair", str(folder), "--lr-size", str(args.lr_size)]
    subprocess.run(make, check=True)
    lr, ref = folder / "lr.png", folder / "ref.png"
    print(f"inputs: {lr} ({args.lr_size}²), {ref} ({SCALE * args.lr_size}²) in {time.perf_counter() - started:.0f} s")
    out = folder / "sr.png"
    out.unlink(missing_ok=True)
    command = [sys.executable, "-c", SR_CHILD, "sr", "--lr", str(lr), "--ref", str(ref)]
    command += ["--out", str(out), "--precision", args.precision]
    peak_file = folder / "sr_peak_kib.txt"
    peak_file.unlink(missing_ok=True)
    started = time.perf_counter()
    returncode = run_logging_memory(command, args.rss_log, env={**os.environ, "SR_PEAK_FILE": str(peak_file)})
    seconds = time.perf_counter() - started
    # The sr process's own VmHWM: RUSAGE_CHILDREN would also count the child that made the inputs.
    peak_gib = int(peak_file.read_text()) / 2**20 if peak_file.exists() else float("nan")
    print(
        f"sr ×{SCALE}: {args.lr_size}×{args.lr_size} → {SCALE * args.lr_size}×{SCALE * args.lr_size}, exit {returncode}, "
        f"{seconds:.0f} s wall, peak RSS {peak_gib:.2f} GiB, output {out.stat().st_size / 2**20:.0f} MiB "
        f"({cpu_name()}, {platform.machine()})"
        if out.exists()
        else f"sr failed: exit {returncode} after {seconds:.0f} s, peak RSS {peak_gib:.2f} GiB"
    )
    return returncode


if __name__ == "__main__":
    raise SystemExit(main())
