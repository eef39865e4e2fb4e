"""Training at CrossNet's protocol: configuration, resumable trainer, distributed data parallel.

Example (the command line does the same: ``python -m refsr_blocks.train CONFIG --out DIR``)::

    from refsr_blocks.train import load_config, train
    result = train(load_config("configs/first_result.yaml"), "runs/first", max_steps=20)
    result.final_model  # runs/first/model.safetensors, loadable with refsr_blocks.load_model
"""

from __future__ import annotations

from .command import add_train_arguments, train_main
from .config import ConfigError, DataConfig, RuntimeConfig, ScheduleConfig, TrainConfig, load_config
from .state import Checkpoint, RunDirectory, RunExistsError, RunLockedError
from .trainer import Trainer, TrainingDivergedError, TrainResult, train

__all__ = [
    "Checkpoint",
    "ConfigError",
    "DataConfig",
    "RunDirectory",
    "RunExistsError",
    "RunLockedError",
    "RuntimeConfig",
    "ScheduleConfig",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDivergedError",
    "add_train_arguments",
    "load_config",
    "train",
    "train_main",
]
