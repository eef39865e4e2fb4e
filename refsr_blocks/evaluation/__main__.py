"""``python -m refsr_blocks.evaluation --checkpoint X --data ... --out DIR``."""

from __future__ import annotations

import sys

from .command import eval_main

__all__ = ["eval_main"]

if __name__ == "__main__":
    sys.exit(eval_main())
