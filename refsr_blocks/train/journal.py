"""``metrics.jsonl``: one JSON object per line, each with an ``"event"`` and a ``"step"``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..core.checkpoint import atomic_write
from ..core.errors import CheckpointError

__all__ = ["MetricsLog"]


class MetricsLog:
    """Append-only log of training events.

    Example:
        >>> import tempfile, pathlib
        >>> log = MetricsLog(pathlib.Path(tempfile.mkdtemp()) / "metrics.jsonl")
        >>> log.append({"event": "train", "step": 1, "loss": 0.5})
        >>> log.append({"event": "train", "step": 2, "loss": 0.4})
        >>> log.truncate_after(1)
        >>> [e["step"] for e in log.read()]
        [1]
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, entry: dict[str, Any]) -> None:
        """Add one event (a JSON-serialisable dict)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")

    def read(self) -> Iterator[dict[str, Any]]:
        """Every event, oldest first (a torn last line, from a killed run, is skipped).

        Raises:
            CheckpointError: a complete line that is not an event with an integer step (the
                file was edited or damaged), naming the file and the line.
        """
        if not self.path.is_file():
            return
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            step = entry.get("step") if isinstance(entry, dict) else None
            if not isinstance(step, int) or isinstance(step, bool):
                raise CheckpointError(
                    f"{str(self.path)!r} line {number} is damaged: {line[:80]!r} has no integer 'step'; "
                    "fix or delete that line, then resume"
                )
            yield entry

    def truncate_after(self, step: int) -> None:
        """Drop events logged after ``step`` (a resumed run repeats those steps)."""
        if not self.path.is_file():
            return
        kept = [e for e in self.read() if e["step"] <= step]
        text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in kept)
        atomic_write(self.path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
