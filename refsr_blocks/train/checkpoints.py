"""The run directory: configuration, log, checkpoints and final weights.

Layout::

    OUT/config.yaml                       the resolved configuration of the run
    OUT/metrics.jsonl                     one JSON object per log line / validation
    OUT/checkpoints/step-00001000/        one complete checkpoint:
        model.safetensors                   weights + spec (``refsr_blocks.load_model`` reads it)
        training_state.pt                   optimizer, scheduler, step, RNG and sampler states
    OUT/checkpoints/latest                the name of the newest complete checkpoint
    OUT/model.safetensors                 the final weights

A checkpoint is written into a temporary folder which is then renamed (an atomic operation),
and ``latest`` is replaced atomically afterwards, so a run killed at any moment leaves the
previous checkpoint intact and loadable. ``training_state.pt`` holds only tensors and plain
Python values and is read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from ..core.checkpoint import atomic_write, read_metadata, save_model
from ..core.errors import CheckpointError, RefSRError

__all__ = ["Checkpoint", "RunDirectory", "RunExistsError"]

MODEL_FILE = "model.safetensors"
STATE_FILE = "training_state.pt"
STEP_METADATA_KEY = "refsr_blocks.train.step"
_STEP_DIR = re.compile(r"^step-(\d{8,})$")


class RunExistsError(RefSRError, FileExistsError):
    """The output folder already holds a run, and neither resuming nor forcing was asked."""


@dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint on disk.

    Attributes:
        path: its folder.
        step: the optimizer steps taken when it was written.
    """

    path: Path
    step: int

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    def load(self, map_location: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """``(model state_dict, training state)``; checks both files belong to the same step."""
        try:
            weights = load_file(str(self.model_file), device=str(map_location))
            state = torch.load(self.state_file, map_location=map_location, weights_only=True)
        except Exception as err:
            raise CheckpointError(f"cannot read checkpoint {str(self.path)!r}: {err}") from None
        meta_step = read_metadata(self.model_file).get(STEP_METADATA_KEY)
        if not isinstance(state, dict) or state.get("step") != self.step or meta_step != str(self.step):
            raise CheckpointError(
                f"checkpoint {str(self.path)!r} is inconsistent: folder step {self.step}, "
                f"training state step {state.get('step') if isinstance(state, dict) else '?'}, weights step {meta_step}"
            )
        return weights, state


class RunDirectory:
    """The files of one training run (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.config_file = self.root / "config.yaml"
        self.metrics_file = self.root / "metrics.jsonl"
        self.checkpoints = self.root / "checkpoints"
        self.final_model = self.root / MODEL_FILE
        self._latest_file = self.checkpoints / "latest"

    # -- what is there --------------------------------------------------------------------
    def list_checkpoints(self) -> list[Checkpoint]:
        """Complete checkpoints, oldest first."""
        if not self.checkpoints.is_dir():
            return []
        found = []
        for child in self.checkpoints.iterdir():
            match = _STEP_DIR.match(child.name)
            if match and (child / MODEL_FILE).is_file() and (child / STATE_FILE).is_file():
                found.append(Checkpoint(child, int(match.group(1))))
        return sorted(found, key=lambda c: c.step)

    def latest_checkpoint(self) -> Checkpoint | None:
        """The checkpoint ``latest`` names, else the complete one with the highest step."""
        found = self.list_checkpoints()
        if self._latest_file.is_file():
            name = self._latest_file.read_text(encoding="utf-8").strip()
            for ckpt in found:
                if ckpt.path.name == name:
                    return ckpt
        return found[-1] if found else None

    def user_files(self) -> list[Path]:
        """Files of an earlier run that starting afresh would overwrite."""
        candidates = [self.config_file, self.metrics_file, self.final_model, self.checkpoints]
        return [p for p in candidates if p.exists()]

    # -- starting -------------------------------------------------------------------------
    def check_can_start(self, *, resume: bool, force: bool) -> None:
        """Raise :class:`RunExistsError` if starting would overwrite an earlier run."""
        existing = self.user_files()
        if existing and not (resume or force):
            names = ", ".join(p.name for p in existing)
            raise RunExistsError(
                f"{str(self.root)!r} already holds a run ({names}). Pass --resume to continue it, "
                "--force to start over (the old files are moved to a 'replaced-<time>' folder), "
                "or choose another --out folder."
            )

    def prepare(self, *, resume: bool, force: bool) -> Path | None:
        """Make the folder ready for a run; never loses earlier results.

        Without ``resume`` or ``force``, a folder holding an earlier run raises
        :class:`RunExistsError`. With ``force`` the earlier run's files move into
        ``OUT/replaced-<time>/`` (returned). Leftover partial checkpoints are removed.
        """
        self.check_can_start(resume=resume, force=force)
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_partials()
        existing = self.user_files()
        if not existing or resume:
            return None
        backup = self.root / time.strftime("replaced-%Y%m%d-%H%M%S")
        suffix = 1
        while backup.exists():
            backup = self.root / f"{backup.name.split('.')[0]}.{suffix}"
            suffix += 1
        backup.mkdir()
        for path in existing:
            os.replace(path, backup / path.name)
        return backup

    def _remove_partials(self) -> None:
        if self.checkpoints.is_dir():
            for child in self.checkpoints.iterdir():
                if child.name.startswith(".partial-") and child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)

    # -- writing --------------------------------------------------------------------------
    def save_checkpoint(
        self, step: int, model: nn.Module, state: Mapping[str, Any], metadata: Mapping[str, str] | None = None
    ) -> Checkpoint:
        """Write a complete checkpoint for ``step`` atomically and point ``latest`` at it.

        ``state`` must hold ``"step": step``. An existing checkpoint of the same step is
        kept as it is (it holds the same state).
        """
        if state.get("step") != step:
            raise ValueError(f"state['step'] is {state.get('step')!r}, expected {step}")
        final = self.checkpoints / f"step-{step:08d}"
        if not ((final / MODEL_FILE).is_file() and (final / STATE_FILE).is_file()):
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            partial = self.checkpoints / f".partial-step-{step:08d}-{os.getpid()}"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir()
            try:
                save_model(model, partial / MODEL_FILE, metadata={**(metadata or {}), STEP_METADATA_KEY: str(step)})
                with open(partial / STATE_FILE, "wb") as f:
                    torch.save(dict(state), f)
                    f.flush()
                    os.fsync(f.fileno())
                if final.exists():  # an incomplete folder of that name: replace it
                    shutil.rmtree(final)
                os.rename(partial, final)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
        atomic_write(self._latest_file, lambda tmp: Path(tmp).write_text(final.name + "\n", encoding="utf-8"))
        return Checkpoint(final, step)

    def prune(self, keep: int) -> None:
        """Delete all but the ``keep`` newest complete checkpoints (the latest is always kept)."""
        found = self.list_checkpoints()
        latest = self.latest_checkpoint()
        for ckpt in found[: max(0, len(found) - keep)]:
            if latest is None or ckpt.path != latest.path:
                shutil.rmtree(ckpt.path, ignore_errors=True)

    def save_final_model(self, model: nn.Module, metadata: Mapping[str, str]) -> Path:
        """Write ``OUT/model.safetensors`` (atomically)."""
        return save_model(model, self.final_model, metadata=dict(metadata))
