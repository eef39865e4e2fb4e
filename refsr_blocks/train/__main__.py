"""``python -m refsr_blocks.train CONFIG [--out DIR] [--resume] [--max-steps N]``; also under torchrun."""

from __future__ import annotations

import sys

from .command import train_main

__all__ = ["train_main"]

if __name__ == "__main__":
    sys.exit(train_main())
