"""The training loop: CrossNet's protocol, resumable, single-process or under torchrun.

:func:`train` runs a :class:`~refsr_blocks.train.config.TrainConfig` into a run directory
(see :mod:`refsr_blocks.train.state`). A seeded run is reproducible on CPU, and a run
resumed from a checkpoint reaches bit-for-bit the weights of an uninterrupted one: the
checkpoint holds the model, optimizer, scheduler, gradient scaler, step, epoch, sampler
position and every RNG state, and each training item is a pure function of
(seed, epoch, index).

Under ``torchrun --nproc_per_node=N`` each replica trains on ``batch_size / N`` items of
every global batch (a :class:`~refsr_blocks.train.sampler.ResumableDistributedSampler`
shards the data) and DistributedDataParallel averages the gradients, so a step equals a
single-process step on the whole batch. Rank 0 writes files, validates and shows progress.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..core.build import build_model
from ..core.checkpoint import atomic_write
from ..core.errors import RefSRError
from ..data.entries import VAL_SEED, build_dataset
from ..evaluation.metrics import psnr
from ..evaluation.references import REFERENCE_METADATA_KEY, prepare_reference
from ..inference.tiling import super_resolve
from . import distributed as D
from .config import ConfigError, TrainConfig, load_config, read_config_file
from .journal import MetricsLog
from .objective import Objective
from .parts import ForwardOutputs, initialise_from, parameter_groups
from .rng import capture_rng_state, restore_rng_state, seed_everything
from .sampler import ResumableDistributedSampler
from .state import RunDirectory, RunLock

__all__ = ["STATE_FORMAT", "TrainResult", "Trainer", "TrainingDivergedError", "train"]

#: Version of the training-state dict.
STATE_FORMAT = 1
#: Configuration keys that must not change when a run is resumed.
FROZEN_ON_RESUME = ("seed", "model", "reference", "init", "data.train", "schedule.batch_size", "schedule.part")
_EMA = 0.1


class TrainingDivergedError(RefSRError, RuntimeError):
    """The loss (or the weights) became NaN or infinite; the last good checkpoint is kept."""


@dataclass(frozen=True)
class TrainResult:
    """What a call to :func:`train` achieved.

    Attributes:
        step: optimizer steps taken in total (including those before a resume).
        run_dir: the run directory.
        final_model: ``OUT/model.safetensors`` (the weights at ``step``).
        checkpoint: the newest checkpoint folder.
        finished: ``step`` reached ``schedule.steps`` (False after ``--max-steps``, a time
            limit or a signal: resume to continue).
        interrupted: stopped by SIGINT/SIGTERM.
        val_psnr: the last validation PSNR (dB), if there is a validation set.
        seconds_per_step: mean wall time of a training step in this call.
        rank: the distributed rank of this process (0 without torchrun).
    """

    step: int
    run_dir: Path
    final_model: Path
    checkpoint: Path | None
    finished: bool
    interrupted: bool
    val_psnr: float | None
    seconds_per_step: float | None
    rank: int = 0


def _get(d: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        d = d.get(part) if isinstance(d, dict) else None  # type: ignore[assignment]
    return d


def _loss_line(entry: dict[str, Any], total: int) -> str:
    """The console line of one ``metrics.jsonl`` train event (means over the logged interval)."""
    return (
        f"step {entry['step']}/{total}: loss {entry['loss']:.4f}, PSNR {entry['psnr']:.2f} dB, "
        f"lr {entry['lr']:.1e}, {entry['seconds_per_step']:.3f} s/step"
    )


def _fingerprint(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer, in state_dict order."""
    h = hashlib.sha256()
    for name, value in model.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _to_channels_last(model: nn.Module) -> None:
    """Put 4-D parameters in channels-last memory format (buffers stay contiguous: DDP
    broadcasts buffers and rejects channels-last ones of size 1×C×1×1)."""
    model.to(memory_format=torch.channels_last)
    for module in model.modules():
        for name, buffer in module.named_buffers(recurse=False):
            if buffer is not None:
                module._buffers[name] = buffer.clone(memory_format=torch.contiguous_format)


class _StopSignal:
    """Turns SIGINT/SIGTERM into a flag checked between steps (main thread only)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: signals stay as they are
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:  # a second signal: give up at once
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Trainer:
    """One training run; most users call :func:`train` instead.

    Args:
        config: the validated configuration.
        out_dir: the run directory.
        ctx: this process's distributed context (:func:`~refsr_blocks.train.distributed.init_distributed`).
        resume: continue from the newest checkpoint in ``out_dir`` (start afresh if none).
        force: start over even if ``out_dir`` holds a run (its files are moved aside).
        max_steps: stop once this many steps are done (the schedule stays that of
            ``schedule.steps``; resume later to continue).
        progress: override ``runtime.progress``.
    """

    def __init__(
        self,
        config: TrainConfig,
        out_dir: str | Path,
        ctx: D.DistContext,
        *,
        resume: bool = False,
        force: bool = False,
        max_steps: int | None = None,
        progress: bool | None = None,
    ) -> None:
        if max_steps is not None and max_steps < 0:
            raise ValueError(f"max_steps must be >= 0, got {max_steps}")
        self.config, self.ctx = config, ctx
        self.run = RunDirectory(out_dir)
        self.log = MetricsLog(self.run.metrics_file)
        self.total_steps = min(config.schedule.steps, max_steps) if max_steps is not None else config.schedule.steps
        self.show_progress = (config.runtime.progress if progress is None else progress) and ctx.is_main
        rt = config.runtime
        if rt.threads:
            torch.set_num_threads(rt.threads)
        self.scale: int = config.model["params"]["upscale"]
        self._build_data()  # data mistakes surface before the run directory is touched

        # One process per run folder, for the run's life (released by close(), or by the OS).
        self.lock = RunLock(self.run.root)
        if ctx.is_main:
            self.lock.acquire()
        try:
            # Refuse to clobber an earlier run: every replica checks before rank 0 moves anything.
            self.run.check_can_start(resume=resume, force=force)
            D.barrier(ctx)
            self.replaced: Path | None = None
            if ctx.is_main:
                self.replaced = self.run.prepare(resume=resume, force=force)
            D.barrier(ctx)
            self._build_model()

            self.step = 0
            self.epoch = 0
            self.position = 0  # indices of this epoch consumed by this replica
            self.loss_ema: float | None = None
            self.loss_parts: dict[str, float] = {}
            self.psnr_ema: float | None = None
            self.val_psnr: float | None = None
            resumed_from = self._resume() if resume else None
            if ctx.is_main:
                if resumed_from is None:
                    text = yaml.safe_dump(config.to_dict(), sort_keys=False)
                    atomic_write(self.run.config_file, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
                self.log.truncate_after(self.step)
                self.log.append(
                    {
                        "event": "start",
                        "step": self.step,
                        "resumed_from": None if resumed_from is None else str(resumed_from),
                        "world_size": ctx.world_size,
                        "device": str(ctx.device),
                        "replaced": None if self.replaced is None else str(self.replaced),
                    }
                )
            # The network called each step returns a dict of outputs; DDP wraps that call.
            self.network: nn.Module = self.forward_outputs
            if ctx.distributed:
                device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
                self.network = DistributedDataParallel(
                    self.forward_outputs, device_ids=device_ids, find_unused_parameters=config.schedule.part is not None
                )
        except BaseException:
            self.lock.release()
            raise

    def close(self) -> None:
        """Release the run folder's lock (:func:`train` does this when the run ends)."""
        self.lock.release()

    # -- set-up helpers ---------------------------------------------------------------------
    def _build_data(self) -> None:
        """Datasets, the resumable sampler and the training DataLoader."""
        config, ctx = self.config, self.ctx
        batch = config.schedule.batch_size
        if batch % ctx.world_size:
            raise ConfigError(
                "schedule.batch_size",
                f"{batch} is the global batch and must divide evenly over the {ctx.world_size} replicas",
            )
        self.per_replica_batch = batch // ctx.world_size
        self.train_set = build_dataset(config.data.train, scale=self.scale, default_seed=config.seed, path="data.train")
        self.val_set: Dataset | None = None  # type: ignore[type-arg]
        if config.data.val is not None:
            self.val_set = build_dataset(config.data.val, scale=self.scale, default_seed=VAL_SEED, path="data.val")
        self.sampler = ResumableDistributedSampler(self.train_set, ctx.world_size, ctx.rank, seed=config.seed)
        if self.sampler.num_samples < self.per_replica_batch:
            raise ConfigError(
                "data.train",
                f"{len(self.train_set)} items give each of the {ctx.world_size} replica(s) "  # type: ignore[arg-type]
                f"{self.sampler.num_samples} per epoch, fewer than its batch of {self.per_replica_batch}; "
                "raise the dataset's length or lower schedule.batch_size",
            )
        self.loader_generator = torch.Generator().manual_seed(config.seed)
        self.loader = DataLoader(
            self.train_set,
            batch_size=self.per_replica_batch,
            sampler=self.sampler,
            num_workers=config.data.num_workers,
            drop_last=True,
            pin_memory=ctx.device.type == "cuda",
            generator=self.loader_generator,
        )

    def _build_model(self) -> None:
        """The seeded model, optimizer, learning-rate schedule, loss and gradient scaler."""
        config, ctx, rt, s = self.config, self.ctx, self.config.runtime, self.config.schedule
        if rt.amp == "fp16" and ctx.device.type != "cuda":
            raise ConfigError("runtime.amp", f"fp16 autocast needs CUDA, the device is {ctx.device}; use 'bf16'")
        seed_everything(config.seed)
        self.model = build_model(config.model)
        for source in config.init or ():
            initialise_from(self.model, source["path"], source["parts"])
        self.model = self.model.to(ctx.device)
        if rt.channels_last:
            _to_channels_last(self.model)
        groups = parameter_groups(self.model, s.lr, freeze=s.freeze, lr_scale=s.lr_scale, part=s.part)
        self.optimizer = torch.optim.Adam(groups, lr=s.lr, betas=s.betas, eps=s.eps, weight_decay=s.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: s.lr_factor(step))
        self.objective = Objective(s.loss, s.aux_losses)
        self.forward_outputs = ForwardOutputs(self.model, part=s.part, intermediates=self.objective.needs_intermediates)
        self.amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[rt.amp]
        self.scaler = torch.amp.GradScaler(ctx.device.type, enabled=rt.amp == "fp16")

    def _check_resumable(self) -> None:
        """Refuse to resume a run whose recorded configuration is missing, unreadable or differs.

        Without ``config.yaml`` nothing says which seed, model and data the checkpoints came
        from, so resuming might silently continue another run.
        """
        path = self.run.config_file
        if not path.is_file():
            raise ConfigError(
                "",
                f"cannot resume {str(self.run.root)!r}: its configuration {str(path)!r} is missing, so the seed, "
                "model and data of its checkpoints are unknown; restore the file, or start over with --force",
            )
        saved = read_config_file(path)  # the library's one YAML reader: bounded, no aliases
        try:
            saved_dict = load_config(saved).to_dict()
        except ConfigError:
            saved_dict = saved
        now = self.config.to_dict()
        changed = [key for key in FROZEN_ON_RESUME if _get(saved_dict, key) != _get(now, key)]
        if changed:
            raise ConfigError(
                changed[0],
                f"differs from the run being resumed in {str(self.run.root)!r} (changed: {', '.join(changed)}); "
                "these settings cannot change mid-run: start a new run in another --out folder",
            )

    def _resume(self) -> Path | None:
        """Load the newest checkpoint, if any; returns its folder."""
        ckpt = self.run.latest_checkpoint()
        if ckpt is None:
            return None
        self._check_resumable()
        weights, state = ckpt.load(map_location="cpu")
        if state.get("format") != STATE_FORMAT:
            raise RefSRError(
                f"{str(ckpt.state_file)!r} has training-state format {state.get('format')!r}, expected {STATE_FORMAT}"
            )
        if "lr_lambdas" not in state["scheduler"]:  # a MultiStepLR state: written before the schedule was one lambda
            raise RefSRError(
                f"{str(ckpt.state_file)!r} holds a learning-rate schedule of an older refsr-blocks, which this "
                "version does not read; finish the run with the version that started it, or start it over with --force"
            )
        self.model.load_state_dict(weights, strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        sampler_state = dict(state["sampler"])
        if sampler_state["num_replicas"] != self.ctx.world_size:  # a different replica count: same data position
            sampler_state["start"] = sampler_state["start"] * sampler_state["num_replicas"] // self.ctx.world_size
        self.sampler.load_state_dict(sampler_state)
        self.position = self.sampler.start
        self.loss_ema, self.psnr_ema, self.val_psnr = state["loss_ema"], state["psnr_ema"], state["val_psnr"]
        restore_rng_state(state["rng"], {"loader": self.loader_generator})
        return ckpt.path

    # -- the loop ---------------------------------------------------------------------------
    def _batches(self) -> Iterator[dict[str, Any]]:
        """Training batches forever, epoch after epoch, tracking the sampler position."""
        while True:
            if hasattr(self.train_set, "set_epoch"):
                self.train_set.set_epoch(self.epoch)
            for batch in self.loader:
                self.position += self.per_replica_batch
                yield batch
            self.epoch += 1
            self.sampler.set_epoch(self.epoch)
            self.position = 0

    def _inputs(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The batch's tensors on the device (``ref`` as the run's reference mode prepares it)."""
        fmt = torch.channels_last if self.config.runtime.channels_last else torch.contiguous_format
        move = lambda t: t.to(self.ctx.device, non_blocking=True).contiguous(memory_format=fmt)  # noqa: E731
        moved = {k: move(v) for k, v in batch.items() if isinstance(v, Tensor) and v.is_floating_point()}
        moved["ref"] = move(prepare_reference(batch["ref"], self.config.reference))
        return moved

    def _train_step(self, batch: dict[str, Any], stop_requested: bool) -> tuple[float, float, bool]:
        """One optimizer step; returns (mean loss, mean PSNR, stop) agreed by every replica."""
        inputs = self._inputs(batch)
        hr = inputs["hr"]
        autocast = (
            torch.autocast(self.ctx.device.type, dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else contextlib.nullcontext()
        )
        with autocast:
            outputs = self.network(inputs["lr"], inputs["ref"])
        loss, self.loss_parts = self.objective(outputs, inputs)
        sr = outputs["sr"]
        with torch.no_grad():
            batch_psnr = psnr(sr.float(), hr.float()).clamp(max=100.0).mean()
        stats = torch.stack(
            [
                loss.detach().double().cpu(),
                batch_psnr.double().cpu(),
                torch.tensor(float(stop_requested), dtype=torch.float64),
            ]
        )
        stats = D.all_reduce_sum(self.ctx, stats)
        mean_loss = stats[0].item() / self.ctx.world_size
        if not math.isfinite(mean_loss):
            raise TrainingDivergedError(self._diverged_message(f"the loss is {mean_loss} at step {self.step + 1}"))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.schedule.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.schedule.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return mean_loss, stats[1].item() / self.ctx.world_size, stats[2].item() > 0

    def _diverged_message(self, what: str) -> str:
        latest = self.run.latest_checkpoint()
        keep = (
            f"the last good checkpoint is {str(latest.path)!r} (step {latest.step}); resume from it with --resume "
            "after lowering schedule.lr or setting schedule.grad_clip"
            if latest is not None
            else "no checkpoint had been written yet"
        )
        return f"training diverged: {what}; nothing was saved after it, {keep}"

    def _update_running(self, loss: float, batch_psnr: float) -> None:
        self.loss_ema = loss if self.loss_ema is None else (1 - _EMA) * self.loss_ema + _EMA * loss
        self.psnr_ema = batch_psnr if self.psnr_ema is None else (1 - _EMA) * self.psnr_ema + _EMA * batch_psnr

    def validate(self) -> float | None:
        """Mean PSNR (dB, RGB) of the model on the validation set; rank 0 only (others get None)."""
        if self.val_set is None or not self.ctx.is_main:
            return None
        loader = DataLoader(self.val_set, batch_size=1, shuffle=False)
        values = []
        part = self.config.schedule.part
        for item in loader:
            lr = item["lr"].to(self.ctx.device)
            if part is not None:  # a SISR stage: validate the part alone
                with torch.no_grad():
                    sr = getattr(self.model, part)(lr).clamp(0, 1)
            else:
                ref = prepare_reference(item["ref"], self.config.reference).to(self.ctx.device)
                sr = super_resolve(self.model, lr, ref, progress=False)
            values.append(psnr(sr, item["hr"].to(self.ctx.device)).clamp(max=100.0))
        return float(torch.cat(values).mean())

    def _state(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "step": self.step,
            "epoch": self.epoch,
            "sampler": {**self.sampler.state_dict(), "epoch": self.epoch, "start": self.position},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": capture_rng_state({"loader": self.loader_generator}),
            "loss_ema": self.loss_ema,
            "psnr_ema": self.psnr_ema,
            "val_psnr": self.val_psnr,
        }

    def _metadata(self) -> dict[str, str]:
        return {
            REFERENCE_METADATA_KEY: self.config.reference,
            "refsr_blocks.train.seed": str(self.config.seed),
            "refsr_blocks.train.config": yaml.safe_dump(self.config.to_dict(), sort_keys=False),
        }

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint of the current step (rank 0) and prune old ones."""
        path = None
        # Every replica checks (their weights are equal), so all stop together.
        bad = [name for name, p in self.model.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise TrainingDivergedError(
                self._diverged_message(f"parameter {bad[0]!r} holds NaN/inf at step {self.step}")
            )
        if self.ctx.is_main:
            path = self.run.save_checkpoint(self.step, self.model, self._state(), self._metadata()).path
            self.run.prune(self.config.runtime.keep_checkpoints)
        D.barrier(self.ctx)
        return path

    def _check_replicas(self) -> None:
        prints = D.all_gather_strings(self.ctx, _fingerprint(self.model))
        if self.ctx.is_main:
            self.log.append({"event": "replicas", "step": self.step, "fingerprints": prints})
        if len(set(prints)) != 1:
            raise RefSRError(f"the {len(prints)} replicas hold different weights at step {self.step}: {prints}")

    def fit(self) -> TrainResult:
        """Train until ``max_steps``/``schedule.steps``, a time limit or a signal."""
        rt = self.config.runtime
        limit = None if rt.time_limit_minutes is None else rt.time_limit_minutes * 60.0
        started = time.monotonic()
        step_time, timed_steps = 0.0, 0
        interval_loss, interval_psnr, interval_steps, interval_time = 0.0, 0.0, 0, 0.0
        checkpoint = None
        stopped_by_signal = False
        bar = tqdm(total=self.total_steps, initial=self.step, desc="train", unit="step", disable=not self.show_progress)
        batches = self._batches()
        with _StopSignal() as stop:
            while self.step < self.total_steps:
                t0 = time.perf_counter()
                batch = next(batches)
                over_time = limit is not None and time.monotonic() - started > limit
                loss, batch_psnr, stop_now = self._train_step(batch, stop.received is not None or over_time)
                dt = time.perf_counter() - t0
                step_time, timed_steps = step_time + dt, timed_steps + 1
                self._update_running(loss, batch_psnr)
                interval_loss, interval_psnr = interval_loss + loss, interval_psnr + batch_psnr
                interval_steps, interval_time = interval_steps + 1, interval_time + dt
                bar.update(1)
                bar.set_postfix(
                    loss=f"{self.loss_ema:.4f}",
                    psnr=f"{self.psnr_ema:.2f}",
                    lr=f"{self.scheduler.get_last_lr()[0]:.1e}",
                )
                at_end = self.step == self.total_steps
                last = at_end or stop_now
                if self.ctx.is_main and (self.step % rt.log_every == 0 or last):
                    entry = {
                        "event": "train",
                        "step": self.step,
                        "epoch": self.epoch,
                        "loss": interval_loss / interval_steps,
                        **(self.loss_parts if len(self.loss_parts) > 1 else {}),
                        "psnr": interval_psnr / interval_steps,
                        "lr": self.scheduler.get_last_lr()[0],
                        "seconds_per_step": interval_time / interval_steps,
                    }
                    self.log.append(entry)
                    if self.show_progress:  # a line that stays above the bar; none with --no-progress (CI)
                        bar.write(_loss_line(entry, self.total_steps))
                    interval_loss, interval_psnr, interval_steps, interval_time = 0.0, 0.0, 0, 0.0
                if self.val_set is not None and ((rt.val_every and self.step % rt.val_every == 0) or at_end):
                    value = self.validate()
                    if self.ctx.is_main and value is not None:
                        self.val_psnr = value
                        self.log.append({"event": "val", "step": self.step, "psnr": value})
                        bar.write(f"step {self.step}: validation PSNR {value:.3f} dB")
                    D.barrier(self.ctx)
                if self.step % rt.checkpoint_every == 0 or last:
                    checkpoint = self.save_checkpoint()
                if stop_now:
                    stopped_by_signal = stop.received is not None
                    break
        bar.close()
        if checkpoint is None:  # nothing trained in this call: point at what exists
            latest = self.run.latest_checkpoint()
            checkpoint = latest.path if latest is not None else self.save_checkpoint()
        self._check_replicas()
        if self.ctx.is_main:
            self.run.save_final_model(self.model, {**self._metadata(), "refsr_blocks.train.step": str(self.step)})
            self.log.append({"event": "end", "step": self.step, "finished": self.step >= self.config.schedule.steps})
        D.barrier(self.ctx)
        return TrainResult(
            step=self.step,
            run_dir=self.run.root,
            final_model=self.run.final_model,
            checkpoint=checkpoint,
            finished=self.step >= self.config.schedule.steps,
            interrupted=stopped_by_signal,
            val_psnr=self.val_psnr,
            seconds_per_step=step_time / timed_steps if timed_steps else None,
            rank=self.ctx.rank,
        )


def train(
    config: TrainConfig | str | Path,
    out_dir: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    max_steps: int | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """Train a model as ``config`` says, writing the run to ``out_dir``.

    Args:
        config: a :class:`TrainConfig` or a path to a YAML/JSON configuration.
        out_dir: the run directory (created if needed).
        resume: continue from the newest checkpoint in ``out_dir`` (afresh if there is none).
        force: start over even though ``out_dir`` holds a run (its files are moved to
            ``out_dir/replaced-<time>/``).
        max_steps: stop after this many steps in total; the learning-rate schedule is still
            that of ``schedule.steps``, so ``--resume`` later continues the same run.
        progress: show the progress bar (default: ``runtime.progress``).

    Returns:
        A :class:`TrainResult`.

    Raises:
        ConfigError: the configuration is invalid (before anything is built).
        RunExistsError: ``out_dir`` holds a run and neither ``resume`` nor ``force`` is set.
        RunLockedError: another process is training in ``out_dir`` (the message names it).
        TrainingDivergedError: the loss became NaN/inf (the last good checkpoint is kept).
    """
    if not isinstance(config, TrainConfig):
        config = load_config(config)
    ctx = D.init_distributed(config.runtime.device)
    trainer: Trainer | None = None
    try:
        trainer = Trainer(config, out_dir, ctx, resume=resume, force=force, max_steps=max_steps, progress=progress)
        return trainer.fit()
    finally:
        if trainer is not None:
            trainer.close()
        D.cleanup(ctx)
