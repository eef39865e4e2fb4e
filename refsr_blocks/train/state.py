"""The run directory: configuration, log, checkpoints and final weights.

Layout::

    OUT/config.yaml                       the resolved configuration of the run
    OUT/metrics.jsonl                     one JSON object per log line / validation
    OUT/checkpoints/step-00001000/        one complete checkpoint:
        model.safetensors                   weights + spec (``refsr_blocks.load_model`` reads it)
        training_state.pt                   optimizer, scheduler, step, RNG and sampler states
    OUT/checkpoints/latest                the name of the newest complete checkpoint
    OUT/model.safetensors                 the final weights
    OUT/.lock                             held (an OS lock) by the process running the run

A checkpoint is written into a temporary folder which is then renamed (an atomic operation),
and ``latest`` is replaced atomically afterwards, so a run killed at any moment leaves the
previous checkpoint intact and loadable. ``training_state.pt`` holds only tensors and plain
Python values and is read with ``torch.load(..., weights_only=True)``; its SHA-256 is stored in
the metadata of the checkpoint's ``model.safetensors`` (which carries the digest of its own
weights), so a damaged checkpoint is refused on ``--resume`` with its path.

One process at a time: :class:`RunLock` holds an OS-level lock on ``OUT/.lock`` for the life of
the run, so a second trainer on the same folder (a start, ``--resume`` or ``--force``) is
refused with the holder's pid, host and start time. Pruning renames a checkpoint folder to
``.deleting-…`` before deleting it, so a kill mid-prune leaves nothing that looks like a
checkpoint, and the leftovers are removed when the next run starts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.checkpoint import atomic_write, read_weights, save_model
from ..core.errors import CheckpointError, RefSRError
from ..data.io import file_sha256

__all__ = ["Checkpoint", "RunDirectory", "RunExistsError", "RunLock", "RunLockedError"]

MODEL_FILE = "model.safetensors"
STATE_FILE = "training_state.pt"
STEP_METADATA_KEY = "refsr_blocks.train.step"
#: SHA-256 (hex) of the checkpoint's training_state.pt, in its model.safetensors metadata.
STATE_DIGEST_KEY = "refsr_blocks.train.state_sha256"
LOCK_FILE = ".lock"
_STEP_DIR = re.compile(r"^step-(\d{8,})$")
_LEFTOVER_PREFIXES = (".partial-", ".deleting-")


class RunExistsError(RefSRError, FileExistsError):
    """The output folder already holds a run, and neither resuming nor forcing was asked."""


class RunLockedError(RefSRError, BlockingIOError):
    """Another process is running a training run in the folder (it holds ``OUT/.lock``)."""


class RunLock:
    """An exclusive OS-level lock on a run folder, held while a run uses it.

    ``fcntl.flock`` (POSIX) or ``msvcrt.locking`` (Windows) on ``OUT/.lock``: the operating
    system releases it when the process ends, however it ends, so a killed run never leaves
    the folder locked. The file records who holds it (pid, host, start time, command), which
    the refusal message quotes.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> with RunLock(folder):
        ...     try:
        ...         RunLock(folder).acquire()
        ...     except RunLockedError as err:
        ...         print("refused")
        refused
    """

    def __init__(self, root: str | Path) -> None:
        self.path = Path(root) / LOCK_FILE
        self._file: Any = None

    def acquire(self) -> RunLock:
        """Take the lock, or raise :class:`RunLockedError` naming its holder at once (no waiting).

        Raises:
            RunLockedError: another process (or another trainer in this one) holds it.
            CheckpointError: the folder cannot be created or written (a file in the way,
                read-only disk), naming it.
        """
        if self._file is not None:
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the run's life
        except OSError as err:
            raise CheckpointError(
                f"cannot use {str(self.path.parent)!r} as a run folder: {err.strerror or err}"
            ) from None
        try:
            _lock_file(f)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise RunLockedError(
                f"{str(self.path.parent)!r} is in use by another training run ({holder}); wait for it to end, "
                "stop it, or choose another --out folder"
            ) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        info["command"] = " ".join(sys.argv)[:300]
        f.seek(0)
        f.truncate()
        f.write(json.dumps(info) + "\n")
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        """Give the lock up (also done by the OS when the process ends)."""
        if self._file is not None:
            try:
                self._file.seek(0)
                self._file.truncate()
                _unlock_file(self._file)
            finally:
                self._file.close()
                self._file = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._file is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock_file(f: Any) -> None:
        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock_file(f: Any) -> None:
        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_file(f: Any) -> None:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock_file(f: Any) -> None:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


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
        """``(model state_dict, training state)``; checks both files belong to the same step.

        The weights' digest and the training state's SHA-256 (stored in the weights' metadata)
        are verified.

        Raises:
            CheckpointError: a file is unreadable, damaged (digest mismatch) or from another
                step, naming the file.
        """
        weights, metadata = read_weights(self.model_file, str(map_location))
        try:
            actual = file_sha256(self.state_file)
        except OSError as err:
            raise CheckpointError(f"cannot read {str(self.state_file)!r}: {err.strerror or err}") from None
        expected_state = metadata.get(STATE_DIGEST_KEY)
        if actual != expected_state:
            raise CheckpointError(
                f"{str(self.state_file)!r} is damaged or was altered (SHA-256 {actual[:16]}…, the checkpoint "
                f"says {str(expected_state)[:16]}…); resume from an earlier checkpoint by deleting this folder"
            )
        try:
            state = torch.load(self.state_file, map_location=map_location, weights_only=True)
        except Exception as err:
            raise CheckpointError(f"cannot read checkpoint {str(self.path)!r}: {err}") from None
        meta_step = metadata.get(STEP_METADATA_KEY)
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
        """Delete leftovers of a killed run: unfinished writes, interrupted prunes.

        Half-written files of the run (``.config.yaml.<random>.tmp``, from a kill inside
        :func:`~refsr_blocks.core.checkpoint.atomic_write`; no other file is touched),
        ``.partial-*`` (a checkpoint being written) and ``.deleting-*`` (one being pruned) go.
        """
        written = (self.config_file, self.metrics_file, self.final_model, self._latest_file)
        for target in written:  # atomic_write's temporary files: ".NAME.<random>.tmp"
            for tmp in target.parent.glob(f".{target.name}.*.tmp"):
                if tmp.is_file() and "." not in tmp.name[len(target.name) + 2 : -4]:
                    tmp.unlink(missing_ok=True)
        if not self.checkpoints.is_dir():
            return
        for child in self.checkpoints.iterdir():
            if child.is_dir() and child.name.startswith(_LEFTOVER_PREFIXES):
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
                try:
                    with open(partial / STATE_FILE, "wb") as f:
                        torch.save(dict(state), f)
                        f.flush()
                        os.fsync(f.fileno())
                except (OSError, RuntimeError) as err:  # a full disk shows as torch's RuntimeError
                    raise CheckpointError(
                        f"cannot write checkpoint {str(final)!r} (disk full or not writable?): "
                        f"{getattr(err, 'strerror', None) or str(err).strip().splitlines()[0]}; "
                        "the previous checkpoint is intact"
                    ) from None
                extra = {STEP_METADATA_KEY: str(step), STATE_DIGEST_KEY: file_sha256(partial / STATE_FILE)}
                save_model(model, partial / MODEL_FILE, metadata={**(metadata or {}), **extra})
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
                # Rename first (atomic): a kill during rmtree leaves a .deleting-* folder,
                # which nothing mistakes for a checkpoint and the next run removes.
                doomed = ckpt.path.with_name(f".deleting-{ckpt.path.name}-{os.getpid()}")
                try:
                    os.rename(ckpt.path, doomed)
                except OSError:
                    continue
                shutil.rmtree(doomed, ignore_errors=True)

    def save_final_model(self, model: nn.Module, metadata: Mapping[str, str]) -> Path:
        """Write ``OUT/model.safetensors`` (atomically)."""
        return save_model(model, self.final_model, metadata=dict(metadata))
