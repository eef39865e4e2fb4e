"""Training configuration: one YAML or JSON file, validated before anything is built.

A configuration holds the model (a preset plus overrides, or a full spec), the data, the
schedule and the runtime options. Every section and key has a default except
``data.train``; defaults follow CrossNet's protocol (Adam β = (0.9, 0.999), lr 1e-4 ×0.1 at
75 % of the steps, i.e. 150K of 200K, Charbonnier loss, 320×512 crops)::

    seed: 0
    model:
      preset: crossnet_lite            # or: spec: {model: crossnet, ...}, or a spec file path
      overrides: {channels: 16, flow.width: 0.125}
    reference: real                    # "blank": feed a grey reference (the SISR ablation)
    data:
      train: {kind: synthetic, images: {builtin: procedural, count: 8}, crop: [128, 128]}
      val: {kind: synthetic, images: {builtin: procedural, count: 2, seed: 100}, seed: 1}
      test: {kind: lightfield, root: data/flowers, split: test}
      num_workers: 0
    schedule:
      steps: 200000
      batch_size: 4                    # global: split across distributed replicas
      lr: 1.0e-4
      milestones: [150000]             # ints are steps; floats in (0, 1) are fractions
      gamma: 0.1
      loss: charbonnier
    runtime:
      amp: none                        # none | bf16 | fp16 (fp16 on CUDA only)
      checkpoint_every: 1000

Errors are :class:`ConfigError` naming the key (``schedule.milestones[1]``), what was wrong
and what is accepted.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import RefSRError, SpecError
from ..registry import closest
from ..spec import read_mapping_file

__all__ = [
    "AMP_MODES",
    "REFERENCE_MODES",
    "ConfigError",
    "DataConfig",
    "RuntimeConfig",
    "ScheduleConfig",
    "TrainConfig",
    "apply_assignments",
    "load_config",
    "read_config_file",
]

AMP_MODES = ("none", "bf16", "fp16")
REFERENCE_MODES = ("real", "blank")


class ConfigError(RefSRError, ValueError):
    """A training or evaluation configuration is malformed.

    Attributes:
        path: dotted location of the mistake, e.g. ``schedule.milestones[1]``.
        message: what was wrong and what is accepted.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


# -- sections -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScheduleConfig:
    """Optimisation schedule (defaults: the CrossNet paper).

    Attributes:
        steps: optimizer steps in the whole run.
        batch_size: the global batch; each of N distributed replicas takes batch_size / N.
        lr: Adam's initial learning rate.
        betas, eps, weight_decay: Adam's other parameters.
        milestones: steps at which the learning rate is multiplied by ``gamma``; ints are
            absolute steps, floats in (0, 1) fractions of ``steps``.
        gamma: the decay factor.
        loss: a registered loss: its name, or ``{"name": ..., "params": {...}}``.
        aux_losses: extra weighted terms that may read intermediates (flows, the upsampled
            image): ``[{name: flow_epe|warp|<loss>, weight: 1.0, on: sr|upsampled|warped_image,
            params: {}}]``, see :mod:`refsr_blocks.train.objective`.
        grad_clip: clip the global gradient norm to this value (None: no clipping).
        part: train only this sub-module of the model as single-image SR (``"upsampler"``:
            the SISR pre-training stage); the loss then compares its output with ``hr``.
        freeze: top-level sub-modules (``upsampler``, ``flow``, …) whose weights stay fixed.
        lr_scale: per-sub-module learning-rate factors, e.g. ``{upsampler: 0.1}``.
    """

    steps: int = 200_000
    batch_size: int = 4
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    milestones: tuple[float, ...] = (0.75,)
    gamma: float = 0.1
    loss: dict[str, Any] | str = field(default_factory=lambda: {"name": "charbonnier", "params": {}})
    grad_clip: float | None = None
    aux_losses: tuple[dict[str, Any], ...] = ()
    part: str | None = None
    freeze: tuple[str, ...] = ()
    lr_scale: dict[str, Any] = field(default_factory=dict)

    def milestone_steps(self) -> list[int]:
        """The milestones as absolute step numbers."""
        return [int(m) if isinstance(m, int) else round(m * self.steps) for m in self.milestones]


@dataclass(frozen=True)
class DataConfig:
    """Datasets: one entry each (``{"kind": ..., <dataset parameters>}``, see
    :mod:`refsr_blocks.train.datasets`).

    Attributes:
        train: the training set (required).
        val: the validation set, evaluated every ``runtime.val_every`` steps (optional).
        test: the held-out test set, used by ``refsr_blocks.evaluation --data CONFIG``.
        num_workers: DataLoader worker processes for the training set.
    """

    train: dict[str, Any]
    val: dict[str, Any] | None = None
    test: dict[str, Any] | None = None
    num_workers: int = 0


@dataclass(frozen=True)
class RuntimeConfig:
    """How the run executes; changing these on ``--resume`` is allowed.

    Attributes:
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``; under torchrun each
            replica takes ``cuda:LOCAL_RANK``.
        amp: ``"none"``, ``"bf16"`` (autocast; CPU or CUDA) or ``"fp16"`` (CUDA, with a GradScaler).
        channels_last: run convolutions in channels-last memory format (≈3× faster on CPU).
        threads: intra-op CPU threads (None: torch's default).
        log_every: steps between log lines in ``metrics.jsonl``.
        val_every: steps between validations (None: only at the end).
        checkpoint_every: steps between checkpoints (one is always written at the end).
        keep_checkpoints: how many recent checkpoints to keep (older ones are deleted).
        time_limit_minutes: stop cleanly (with a checkpoint) after this wall time; resumable.
        progress: show a tqdm progress bar.
    """

    device: str = "auto"
    amp: str = "none"
    channels_last: bool = True
    threads: int | None = None
    log_every: int = 50
    val_every: int | None = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    time_limit_minutes: float | None = None
    progress: bool = True


@dataclass(frozen=True)
class TrainConfig:
    """A whole training configuration; build it with :func:`load_config`.

    Attributes:
        model: the fully resolved model spec (``build_model(config.model)`` builds it).
        data, schedule, runtime: the sections.
        seed: seeds model initialisation, data sampling and synthetic pairs.
        reference: ``"real"``, or ``"blank"`` to replace every reference by a grey image
            (the network then only sees the LR input: the ablation that shows what the
            reference contributes).
        init: start from another run's weights: ``{path: MODEL_FILE, parts: [upsampler, ...]}``
            (``parts`` omitted: every tensor whose name and shape match). Used to chain
            stages (SISR pre-training, then RefSR).
    """

    model: dict[str, Any]
    data: DataConfig
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    seed: int = 0
    reference: str = "real"
    init: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON/YAML safe) that :func:`load_config` reads back to an equal config."""
        out = dataclasses.asdict(self)
        out["model"] = {"spec": copy.deepcopy(self.model)}
        return _plain(out)


# -- generic checking ------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _check_type(value: Any, hint: Any, path: str) -> Any:
    """``value`` converted to ``hint`` (lists become tuples), or a :class:`ConfigError`."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for option in inner:
            try:
                return _check_type(value, option, path)
            except ConfigError as err:
                errors.append(err.message)
        raise ConfigError(path, " or ".join(errors) + ("; or null" if type(None) in args else ""))
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {_describe(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"expected an integer, got {_describe(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(path, f"expected a finite number, got {_describe(value)}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {_describe(value)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, f"expected a list, got {_describe(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_type(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(path, f"expected a list of {len(args)} values, got {len(value)}: {value!r}")
        return tuple(_check_type(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(path, f"expected a mapping, got {_describe(value)}")
        return dict(value)
    raise TypeError(f"unsupported config type {hint!r} at {path}")  # pragma: no cover - a bug here


def _section(cls: type, data: Any, path: str) -> Any:
    """Build the dataclass ``cls`` from a mapping, checking keys and types."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"expected a mapping of settings, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        key_path = f"{path}.{key}" if path else str(key)
        if key not in fields:
            hint = closest(str(key), list(fields))
            did_you_mean = f" Did you mean {' or '.join(map(repr, hint))}?" if hint else ""
            raise ConfigError(key_path, f"unknown setting.{did_you_mean} Accepted: {', '.join(fields)}.")
        kwargs[key] = _check_type(value, hints[key], key_path)
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{path}.{missing[0]}" if path else missing[0], "this setting is required")
    return cls(**kwargs)


def _positive(value: float | int | None, path: str, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(path, f"must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def _one_of(value: str, options: Sequence[str], path: str) -> None:
    if value not in options:
        hint = closest(value, list(options))
        did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(path, f"must be one of {', '.join(map(repr, options))}, got {value!r}.{did_you_mean}")


# -- sections with meaning -------------------------------------------------------------------
def _normalise_loss(loss: Any) -> dict[str, Any]:
    from ..errors import UnknownComponentError
    from ..registry import get_component

    if isinstance(loss, str):
        loss = {"name": loss, "params": {}}
    if not isinstance(loss, Mapping) or not isinstance(loss.get("name"), str):
        raise ConfigError("schedule.loss", f"expected a loss name or {{name: ..., params: {{...}}}}, got {loss!r}")
    unknown = set(loss) - {"name", "params"}
    if unknown:
        raise ConfigError(f"schedule.loss.{sorted(unknown)[0]}", "unknown key; accepted: name, params")
    params = loss.get("params") or {}
    if not isinstance(params, Mapping):
        raise ConfigError("schedule.loss.params", f"expected a mapping, got {_describe(params)}")
    try:
        component = get_component("loss", loss["name"])
    except UnknownComponentError as err:
        raise ConfigError("schedule.loss.name", str(err)) from None
    for key in params:
        if key not in component.defaults and not component.accepts_var_kwargs:
            accepted = ", ".join(component.defaults) or "(none)"
            raise ConfigError(
                f"schedule.loss.params.{key}", f"unknown parameter of loss {loss['name']!r}; accepted: {accepted}"
            )
    return {"name": loss["name"], "params": dict(params)}


def _check_schedule(schedule: ScheduleConfig) -> ScheduleConfig:
    for name in ("steps", "batch_size", "lr", "gamma", "eps"):
        _positive(getattr(schedule, name), f"schedule.{name}")
    _positive(schedule.weight_decay, "schedule.weight_decay", allow_zero=True)
    _positive(schedule.grad_clip, "schedule.grad_clip")
    for i, beta in enumerate(schedule.betas):
        if not 0 <= beta < 1:
            raise ConfigError(f"schedule.betas[{i}]", f"must be in [0, 1), got {beta!r}")
    kinds = {isinstance(m, int) for m in schedule.milestones}
    if len(kinds) > 1:
        raise ConfigError(
            "schedule.milestones", "use either step numbers (ints) or fractions of steps (floats in (0, 1)), not both"
        )
    for i, m in enumerate(schedule.milestones):
        if isinstance(m, int) and m <= 0:
            raise ConfigError(f"schedule.milestones[{i}]", f"a step milestone must be > 0, got {m!r}")
        if isinstance(m, float) and not 0 < m < 1:
            raise ConfigError(
                f"schedule.milestones[{i}]", f"a fractional milestone must be in (0, 1), got {m!r}; write steps as ints"
            )
    steps = schedule.milestone_steps()
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise ConfigError("schedule.milestones", f"must increase strictly, got {list(schedule.milestones)!r}")
    for name, factor in schedule.lr_scale.items():
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor >= 0:
            raise ConfigError(f"schedule.lr_scale.{name}", f"expected a number >= 0, got {factor!r}")
    aux = tuple(_normalise_aux(term, f"schedule.aux_losses[{i}]") for i, term in enumerate(schedule.aux_losses))
    return dataclasses.replace(schedule, loss=_normalise_loss(schedule.loss), aux_losses=aux)


def _normalise_aux(term: Mapping[str, Any], path: str) -> dict[str, Any]:
    from .objective import AUX_TERMS, IMAGE_OUTPUTS, aux_term_parameters

    unknown = set(term) - {"name", "weight", "on", "params"}
    if unknown:
        raise ConfigError(f"{path}.{sorted(unknown)[0]}", "unknown key; accepted: name, weight, on, params")
    name = term.get("name")
    weight = term.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
        raise ConfigError(f"{path}.weight", f"expected a number >= 0, got {weight!r}")
    params = term.get("params") or {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"{path}.params", f"expected a mapping, got {_describe(params)}")
    on = term.get("on", "sr")
    if name in AUX_TERMS:
        if "on" in term:
            raise ConfigError(f"{path}.on", f"{name!r} reads the flows; 'on' applies to image losses only")
        accepted = aux_term_parameters(name)
        for key in params:
            if key not in accepted:
                raise ConfigError(
                    f"{path}.params.{key}", f"unknown parameter of {name!r}; accepted: {', '.join(accepted)}"
                )
        return {"name": name, "weight": float(weight), "params": dict(params)}
    if not isinstance(name, str):
        raise ConfigError(f"{path}.name", f"expected {', '.join(AUX_TERMS)} or a registered loss, got {name!r}")
    _one_of(on, IMAGE_OUTPUTS, f"{path}.on")
    try:
        loss = _normalise_loss({"name": name, "params": dict(params)})
    except ConfigError as err:
        raise ConfigError(path, f"{err.message} (or one of {', '.join(AUX_TERMS)})") from None
    return {**loss, "weight": float(weight), "on": on}


def _check_init(init: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if init is None:
        return None
    unknown = set(init) - {"path", "parts"}
    if unknown:
        raise ConfigError(f"init.{sorted(unknown)[0]}", "unknown key; accepted: path, parts")
    path = init.get("path")
    if not isinstance(path, str):
        raise ConfigError("init.path", f"expected the path of a model file, got {path!r}")
    parts = init.get("parts")
    if parts is not None and not (isinstance(parts, list) and all(isinstance(p, str) for p in parts)):
        raise ConfigError("init.parts", f"expected a list of sub-module names, got {parts!r}")
    return {"path": path, "parts": parts}


def _check_runtime(runtime: RuntimeConfig) -> RuntimeConfig:
    _one_of(runtime.amp, AMP_MODES, "runtime.amp")
    device = runtime.device
    if not (device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ConfigError("runtime.device", f"must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if runtime.amp == "fp16" and device == "cpu":
        raise ConfigError("runtime.amp", "fp16 autocast needs CUDA; on CPU use 'bf16' or 'none'")
    for name in ("threads", "log_every", "val_every", "checkpoint_every", "keep_checkpoints", "time_limit_minutes"):
        _positive(getattr(runtime, name), f"runtime.{name}")
    return runtime


def _resolve_model(model: Any) -> dict[str, Any]:
    """The resolved spec for the ``model`` section (see the module docstring for its forms)."""
    from ..build import spec_from
    from ..spec import apply_overrides, resolve_spec

    overrides: Mapping[str, Any] = {}
    if isinstance(model, str):
        source: Any = model
        where = "model"
    elif isinstance(model, Mapping) and ("preset" in model or "spec" in model):
        unknown = set(model) - {"preset", "spec", "overrides"}
        if unknown:
            raise ConfigError(f"model.{sorted(unknown)[0]}", "unknown key; accepted: preset, spec, overrides")
        if ("preset" in model) == ("spec" in model):
            raise ConfigError("model", "give either 'preset' (a name) or 'spec' (a spec dict or file), not both")
        where = "model.preset" if "preset" in model else "model.spec"
        source = model.get("preset", model.get("spec"))
        if "preset" in model and not isinstance(source, str):
            raise ConfigError("model.preset", f"expected a preset name, got {_describe(source)}")
        overrides = model.get("overrides") or {}
        if not isinstance(overrides, Mapping):
            raise ConfigError("model.overrides", f"expected a mapping, got {_describe(overrides)}")
    elif isinstance(model, Mapping) and "model" in model:
        source, where = dict(model), "model"
    else:
        raise ConfigError(
            "model",
            "expected a preset name, a spec file path, {preset: NAME, overrides: {...}}, "
            f"{{spec: SPEC_OR_PATH, overrides: {{...}}}} or a spec dict; got {model!r}",
        )
    try:
        spec = spec_from(source)
    except SpecError as err:
        raise ConfigError(f"{where}.{err.path}" if err.path else where, err.message) from None
    except KeyError as err:  # UnknownComponentError: an unknown preset
        raise ConfigError(where, str(err)) from None
    if overrides:
        try:
            spec = apply_overrides(spec, dict(overrides))
        except SpecError as err:
            raise ConfigError(f"model.overrides.{err.path}" if err.path else "model.overrides", err.message) from None
    try:
        return resolve_spec(spec)
    except SpecError as err:
        raise ConfigError(f"model.{err.path}" if err.path else "model", err.message) from None


def _check_dataset_entries(data: DataConfig) -> None:
    from .datasets import check_dataset_entry

    for name in ("train", "val", "test"):
        entry = getattr(data, name)
        if entry is not None:
            check_dataset_entry(entry, f"data.{name}")
    _positive(data.num_workers, "data.num_workers", allow_zero=True)


TOP_LEVEL = ("seed", "model", "reference", "init", "data", "schedule", "runtime")


def load_config(source: str | Path | Mapping[str, Any], assignments: Sequence[str] = ()) -> TrainConfig:
    """Read, override and validate a training configuration.

    Args:
        source: a ``.yaml``/``.yml``/``.json`` file or a dict of the same shape.
        assignments: ``"key.path=value"`` overrides applied before validation (values are
            parsed as YAML), e.g. ``["schedule.steps=100", "reference=blank"]``.

    Returns:
        The validated :class:`TrainConfig`, with the model spec fully resolved.

    Raises:
        ConfigError: naming the key at fault.
    """
    raw = read_config_file(source) if isinstance(source, (str, Path)) else copy.deepcopy(dict(source))
    raw = apply_assignments(raw, assignments)
    for key in raw:
        if key not in TOP_LEVEL:
            hint = closest(str(key), list(TOP_LEVEL))
            did_you_mean = f" Did you mean {' or '.join(map(repr, hint))}?" if hint else ""
            raise ConfigError(str(key), f"unknown top-level key.{did_you_mean} Accepted: {', '.join(TOP_LEVEL)}.")
    if "model" not in raw:
        raise ConfigError("model", "this setting is required (a preset name such as 'crossnet_lite', or a spec)")
    if "data" not in raw:
        raise ConfigError("data", "this setting is required (at least data.train)")
    seed = _check_type(raw.get("seed", 0), int, "seed")
    reference = _check_type(raw.get("reference", "real"), str, "reference")
    _one_of(reference, REFERENCE_MODES, "reference")
    data = _section(DataConfig, raw["data"], "data")
    _check_dataset_entries(data)
    return TrainConfig(
        model=_resolve_model(raw["model"]),
        data=data,
        schedule=_check_schedule(_section(ScheduleConfig, raw.get("schedule"), "schedule")),
        runtime=_check_runtime(_section(RuntimeConfig, raw.get("runtime"), "runtime")),
        seed=seed,
        reference=reference,
        init=_check_init(_check_type(raw.get("init"), dict[str, Any] | None, "init")),
    )


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a ``.yaml``, ``.yml`` or ``.json`` file (not validated)."""
    return read_mapping_file(path, "config file", ConfigError)


def apply_assignments(raw: Mapping[str, Any], assignments: Sequence[str]) -> dict[str, Any]:
    """Apply ``"a.b.c=value"`` assignments (value parsed as YAML) to a raw config dict.

    Example:
        >>> apply_assignments({"schedule": {"steps": 10}}, ["schedule.steps=5", "reference=blank"])
        {'schedule': {'steps': 5}, 'reference': 'blank'}
    """
    out = copy.deepcopy(dict(raw))
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError("", f"--set expects KEY.PATH=VALUE, got {assignment!r}")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(key, f"cannot parse the value {text!r}: {err}") from None
        node = out
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(
                    ".".join(parts[: depth + 1]), f"is {_describe(child)}, not a mapping; cannot set {key}"
                )
            node = child
        node[parts[-1]] = value
    return out
