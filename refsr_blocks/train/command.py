"""``python -m refsr_blocks.train CONFIG [--resume] [--max-steps N] [--out DIR]``.

The options are added by :func:`add_train_arguments` and carried out by :func:`run_train`, so
``refsr-blocks train`` embeds the same command as a sub-parser.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..core.errors import CheckpointError, RefSRError

__all__ = ["DESCRIPTION", "add_train_arguments", "run_train", "train_main"]

#: Exit codes of :func:`train_main`.
EXIT_OK, EXIT_ERROR, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 2, 3, 130
#: What the command does, for its ``--help``.
DESCRIPTION = (
    "Train a RefSR model from a configuration file. Exit status: 0 done (or stopped by --max-steps or "
    "a time limit: resumable), 2 invalid configuration or run directory, 3 the loss diverged, 130 "
    "interrupted (a checkpoint of the last step was written)."
)


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the training options to ``parser`` (for embedding in another command line)."""
    parser.add_argument("config", type=Path, help="training configuration (.yaml, .yml or .json)")
    parser.add_argument(
        "--out", type=Path, default=None, help="run directory (default: runs/<config file name without suffix>)"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    parser.add_argument(
        "--force", action="store_true", help="start over even if --out holds a run (its files are moved aside)"
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        metavar="N",
        help="stop after N steps in total (the schedule stays that of schedule.steps; --resume continues)",
    )
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a configuration value, e.g. --set schedule.steps=100 --set reference=blank (repeatable)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def run_train(args: argparse.Namespace) -> int:
    """Train as the options of :func:`add_train_arguments` say; returns the exit status.

    A diverged loss is reported here (exit status 3); every other mistake (configuration, run
    directory, data) is raised as a :class:`~refsr_blocks.core.errors.RefSRError` for the caller to report.
    """
    from .config import load_config
    from .trainer import TrainingDivergedError, train

    out = args.out if args.out is not None else Path("runs") / args.config.stem
    config = load_config(args.config, args.assignments)
    try:
        result = train(
            config,
            out,
            resume=args.resume,
            force=args.force,
            max_steps=args.max_steps,
            progress=False if args.no_progress else None,
        )
    except TrainingDivergedError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    except RefSRError:  # RunExistsError and RunLockedError are OSErrors too
        raise
    except OSError as err:  # one line, not a traceback
        raise _io_error(err, out) from None
    if result.rank != 0:
        return EXIT_INTERRUPTED if result.interrupted else EXIT_OK
    state = "finished" if result.finished else "stopped (continue with --resume)"
    timing = f", {result.seconds_per_step:.3f} s/step" if result.seconds_per_step else ""
    val = f", validation PSNR {result.val_psnr:.3f} dB" if result.val_psnr is not None else ""
    print(f"{state} at step {result.step}{timing}{val}; weights: {result.final_model}")
    return EXIT_INTERRUPTED if result.interrupted else EXIT_OK


def _io_error(err: OSError, out: Path) -> RefSRError:
    """An ``OSError`` mid-run as one line: an input that cannot be read, or the run that cannot be written."""
    from ..data.errors import DataError  # imported late: the command line's parser stays light

    name = err.filename
    if name is not None and not Path(name).resolve().is_relative_to(out.resolve()):
        return DataError(
            f"{str(name)!r} cannot be read: {err.strerror or err}; training stopped, the last checkpoint is "
            "intact (fix or remove the file, then continue with --resume)"
        )
    where = f" {str(name)!r}" if name else ""
    return CheckpointError(
        f"cannot write the run in {str(out)!r}{where}: {err.strerror or err}; the last checkpoint is intact "
        "(continue with --resume once the disk is fixed)"
    )


def train_main(argv: Sequence[str] | None = None) -> int:
    """Run the training command line; returns the exit status.

    Exit status: 0 done (or stopped by ``--max-steps``/time limit, resumable), 2 invalid
    configuration or run directory, 3 the loss diverged, 130 interrupted (a checkpoint of
    the last step was written).
    """
    parser = add_train_arguments(argparse.ArgumentParser(prog="python -m refsr_blocks.train", description=DESCRIPTION))
    args = parser.parse_args(argv)
    try:
        return run_train(args)
    except RefSRError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
