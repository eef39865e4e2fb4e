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

The sections are pydantic dataclasses: pydantic checks the types (strictly: ``"4"`` is not an
integer, ``true`` is not a number), the ranges and the keys; validators add what types cannot
say (milestones increase, the loss is registered, a dataset entry fits its dataset). Every
error becomes a :class:`ConfigError` (the library's :class:`~refsr_blocks.core.errors.SpecError`)
naming the key (``schedule.milestones[1]``), what was wrong and what is accepted.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import re
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import dataclasses as pydantic_dataclasses
from pydantic import field_validator, model_validator, with_config
from typing_extensions import NotRequired, TypedDict

from ..core.errors import SpecError, UnknownComponentError, did_you_mean
from ..core.overrides import parse_override
from ..core.spec import read_mapping_file
from ..core.validation import (
    SECTION_CONFIG,
    Beta,
    Bool,
    Float,
    Int,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Str,
    join_path,
    validate,
)
from .objective import AUX_TERMS, IMAGE_OUTPUTS, aux_term_parameters

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

#: A malformed training or evaluation configuration: the library's one path-carrying error,
#: :class:`~refsr_blocks.core.errors.SpecError` (``.path`` such as ``schedule.milestones[1]``,
#: ``.message``), under the name the training code has always raised and caught.
ConfigError = SpecError

AmpMode = Literal["none", "bf16", "fp16"]
ReferenceMode = Literal["real", "blank"]
AMP_MODES: tuple[str, ...] = typing.get_args(AmpMode)
REFERENCE_MODES: tuple[str, ...] = typing.get_args(ReferenceMode)

_section = pydantic_dataclasses.dataclass(frozen=True, config=SECTION_CONFIG)


# -- mapping-valued settings (kept as plain dicts) ----------------------------------------------------
@with_config(SECTION_CONFIG)
class LossSetting(TypedDict):
    """``{name: <registered loss>, params: {...}}``."""

    name: Str
    params: NotRequired[dict[str, Any]]


@with_config(SECTION_CONFIG)
class AuxTermSetting(TypedDict):
    """``{name: flow_epe|warp|<registered loss>, weight: 1.0, on: sr, params: {...}}``."""

    name: Str
    weight: NotRequired[NonNegativeFloat]
    on: NotRequired[Literal[IMAGE_OUTPUTS]]  # type: ignore[valid-type]  # a tuple of names
    params: NotRequired[dict[str, Any]]


@with_config(SECTION_CONFIG)
class InitSetting(TypedDict):
    """``{path: MODEL_FILE, parts: [upsampler, ...]}``."""

    path: Str
    parts: NotRequired[list[Str] | None]


def _normalise_loss(loss: Mapping[str, Any] | str) -> dict[str, Any]:
    """``{"name", "params"}`` of a registered loss; the params checked against its signature.

    Raises:
        ConfigError: with a path relative to the loss setting (``name``, ``params.eps``).
    """
    from ..core.registry import get_component
    from ..core.spec import check_params

    if isinstance(loss, str):
        loss = {"name": loss}
    try:
        component = get_component("loss", loss["name"])
    except UnknownComponentError as err:
        raise ConfigError("name", str(err)) from None
    params = dict(loss.get("params") or {})
    check_params(component, params, "params")
    return {"name": loss["name"], "params": params}


def _normalise_aux(term: Mapping[str, Any]) -> dict[str, Any]:
    """An auxiliary term with its defaults (weight 1, ``on: sr`` for image losses).

    Raises:
        ConfigError: with a path relative to the term (``on``, ``params.sigma``).
    """
    name, weight, params = term["name"], float(term.get("weight", 1.0)), dict(term.get("params") or {})
    if name in AUX_TERMS:
        if "on" in term:
            raise ConfigError("on", f"{name!r} reads the flows; 'on' applies to image losses only")
        accepted = aux_term_parameters(name)
        for key in params:
            if key not in accepted:
                raise ConfigError(
                    f"params.{key}",
                    f"unknown parameter of {name!r}.{did_you_mean(key, accepted)} Accepted: {', '.join(accepted)}.",
                )
        return {"name": name, "weight": weight, "params": params}
    try:
        loss = _normalise_loss({"name": name, "params": params})
    except ConfigError as err:
        raise ConfigError(err.path, f"{err.message} (or one of {', '.join(AUX_TERMS)})") from None
    return {**loss, "weight": weight, "on": term.get("on", "sr")}


# -- sections -------------------------------------------------------------------------------
@_section
class ScheduleConfig:
    """Optimisation schedule (defaults: the CrossNet paper).

    Attributes:
        steps: optimizer steps in the whole run.
        batch_size: the global batch; each of N distributed replicas takes batch_size / N.
        lr: Adam's initial learning rate.
        betas, eps, weight_decay: Adam's other parameters.
        milestones: steps at which the learning rate is multiplied by ``gamma``; ints are
            absolute steps, floats in (0, 1) fractions of ``steps``.
        gamma: the decay factor, or one factor per milestone (applied cumulatively: the
            paper's generalisation run, 7e-5 with ``gamma: [0.5, 0.2, 0.1]`` at 50K, 100K,
            150K, trains at 3.5e-5, then 7e-6, then 7e-7).
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

    steps: PositiveInt = 200_000
    batch_size: PositiveInt = 4
    lr: PositiveFloat = 1e-4
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    eps: PositiveFloat = 1e-8
    weight_decay: NonNegativeFloat = 0.0
    milestones: tuple[Int | Float, ...] = (0.75,)
    gamma: PositiveFloat | tuple[PositiveFloat, ...] = 0.1
    loss: LossSetting | Str = dataclasses.field(default_factory=lambda: {"name": "charbonnier", "params": {}})
    grad_clip: PositiveFloat | None = None
    aux_losses: tuple[AuxTermSetting, ...] = ()
    part: Str | None = None
    freeze: tuple[Str, ...] = ()
    lr_scale: dict[Str, NonNegativeFloat] = dataclasses.field(default_factory=dict)

    @field_validator("loss")
    @classmethod
    def _registered_loss(cls, loss: Mapping[str, Any] | str) -> dict[str, Any]:
        return _normalise_loss(loss)

    @field_validator("aux_losses")
    @classmethod
    def _known_terms(cls, terms: tuple[Mapping[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        out = []
        for i, term in enumerate(terms):
            try:
                out.append(_normalise_aux(term))
            except ConfigError as err:
                raise ConfigError(join_path(f"[{i}]", err.path), err.message) from None
        return tuple(out)

    @model_validator(mode="after")
    def _milestones_increase(self) -> ScheduleConfig:
        if len({isinstance(m, int) for m in self.milestones}) > 1:
            raise ConfigError(
                "milestones", "use either step numbers (ints) or fractions of steps (floats in (0, 1)), not both"
            )
        for i, m in enumerate(self.milestones):
            if isinstance(m, int) and m <= 0:
                raise ConfigError(f"milestones[{i}]", f"a step milestone must be > 0, got {m!r}")
            if isinstance(m, float) and not 0 < m < 1:
                raise ConfigError(
                    f"milestones[{i}]", f"a fractional milestone must be in (0, 1), got {m!r}; write steps as ints"
                )
        if any(b <= a for a, b in itertools.pairwise(self.milestone_steps())):
            raise ConfigError("milestones", f"must increase strictly, got {list(self.milestones)!r}")
        if isinstance(self.gamma, tuple) and len(self.gamma) != len(self.milestones):
            raise ConfigError(
                "gamma",
                f"give one factor per milestone ({len(self.milestones)}), or one number for all; got {list(self.gamma)!r}",
            )
        return self

    def lr_factor(self, step: int) -> float:
        """The learning rate at ``step`` divided by ``lr``: the product of the factors passed."""
        factors = self.gamma if isinstance(self.gamma, tuple) else (self.gamma,) * len(self.milestones)
        return math.prod(g for m, g in zip(self.milestone_steps(), factors, strict=True) if m <= step)

    def milestone_steps(self) -> list[int]:
        """The milestones as absolute step numbers."""
        return [int(m) if isinstance(m, int) else round(m * self.steps) for m in self.milestones]


@_section
class DataConfig:
    """Datasets: one entry each (``{"kind": ..., <dataset parameters>}``, see
    :mod:`refsr_blocks.data.entries`).

    Attributes:
        train: the training set (required).
        val: the validation set, evaluated every ``runtime.val_every`` steps (optional).
        test: the held-out test set, used by ``refsr_blocks.evaluation --data CONFIG``.
        num_workers: DataLoader worker processes for the training set.
    """

    train: dict[Str, Any]
    val: dict[Str, Any] | None = None
    test: dict[Str, Any] | None = None
    num_workers: NonNegativeInt = 0

    @model_validator(mode="after")
    def _dataset_entries(self) -> DataConfig:
        from ..data.entries import check_dataset_entry

        for name in ("train", "val", "test"):
            entry = getattr(self, name)
            if entry is not None:
                check_dataset_entry(entry, name)
        return self


@_section
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

    device: Str = "auto"
    amp: AmpMode = "none"
    channels_last: Bool = True
    threads: PositiveInt | None = None
    log_every: PositiveInt = 50
    val_every: PositiveInt | None = 1000
    checkpoint_every: PositiveInt = 1000
    keep_checkpoints: PositiveInt = 2
    time_limit_minutes: PositiveFloat | None = None
    progress: Bool = True

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
            raise ValueError(f"must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
        return device

    @model_validator(mode="after")
    def _fp16_needs_cuda(self) -> RuntimeConfig:
        if self.amp == "fp16" and self.device == "cpu":
            raise ConfigError("amp", "fp16 autocast needs CUDA; on CPU use 'bf16' or 'none'")
        return self


@_section
class TrainConfig:
    """A whole training configuration; build it with :func:`load_config`.

    Attributes:
        model: the fully resolved model spec (``build_model(config.model)`` builds it).
        data, schedule, runtime: the sections.
        seed: seeds model initialisation, data sampling and synthetic pairs.
        reference: ``"real"``, or ``"blank"`` to replace every reference by a grey image
            (the network then only sees the LR input: the ablation that shows what the
            reference contributes).
        init: start from other runs' weights: ``{path: MODEL_FILE, parts: [upsampler, ...]}``
            (``parts`` omitted: every tensor whose name and shape match), or a list of such
            sources copied in order, so a later one overrides an earlier one (the RefSR
            stage's fusion from one run, a larger SISR upsampler from another). Used to chain
            stages (SISR pre-training, then RefSR).
    """

    model: dict[str, Any]
    data: DataConfig
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)
    seed: Int = 0
    reference: ReferenceMode = "real"
    init: list[InitSetting] | None = None

    @field_validator("model", mode="before")
    @classmethod
    def _resolved_spec(cls, model: Any) -> dict[str, Any]:
        return _resolve_model(model)

    @field_validator("init", mode="before")
    @classmethod
    def _one_source_is_a_list_of_one(cls, init: Any) -> Any:
        if init is not None and not isinstance(init, (Mapping, list)):
            raise ValueError(f"expected {{path: MODEL_FILE, parts: [...]}} or a list of them, got {init!r}")
        return [init] if isinstance(init, Mapping) else init

    @field_validator("init")
    @classmethod
    def _all_init_keys(cls, init: list[Mapping[str, Any]] | None) -> list[dict[str, Any]] | None:
        return None if init is None else [{"path": source["path"], "parts": source.get("parts")} for source in init]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON/YAML safe) that :func:`load_config` reads back to an equal config."""
        out = dataclasses.asdict(self)
        out["model"] = {"spec": copy.deepcopy(self.model)}
        return _plain(out)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _resolve_model(model: Any) -> dict[str, Any]:
    """The resolved spec for the ``model`` section (see the module docstring for its forms).

    Raises:
        ConfigError: with a path relative to the section (``preset``, ``overrides.upscal``).
    """
    from ..core.build import spec_from
    from ..core.spec import apply_overrides, resolve_spec

    overrides: Mapping[str, Any] = {}
    if isinstance(model, str):
        source: Any = model
        where = ""
    elif isinstance(model, Mapping) and ("preset" in model or "spec" in model):
        unknown = sorted(set(model) - {"preset", "spec", "overrides"})
        if unknown:
            accepted = ["preset", "spec", "overrides"]
            raise ConfigError(
                unknown[0], f"unknown key.{did_you_mean(unknown[0], accepted)} Accepted: preset, spec, overrides."
            )
        if ("preset" in model) == ("spec" in model):
            raise ConfigError("", "give either 'preset' (a name) or 'spec' (a spec dict or file), not both")
        where = "preset" if "preset" in model else "spec"
        source = model[where]
        if where == "preset" and not isinstance(source, str):
            raise ConfigError("preset", f"expected a preset name, got {type(source).__name__} {source!r}")
        overrides = model.get("overrides") or {}
        if not isinstance(overrides, Mapping):
            raise ConfigError("overrides", f"expected a mapping, got {type(overrides).__name__} {overrides!r}")
    elif isinstance(model, Mapping) and "model" in model:
        source, where = dict(model), ""
    else:
        raise ConfigError(
            "",
            "expected a preset name, a spec file path, {preset: NAME, overrides: {...}}, "
            f"{{spec: SPEC_OR_PATH, overrides: {{...}}}} or a spec dict; got {model!r}",
        )
    try:
        spec = spec_from(source)
    except SpecError as err:
        raise ConfigError(join_path(where, err.path), err.message) from None
    except KeyError as err:  # UnknownComponentError: an unknown preset
        raise ConfigError(where, str(err)) from None
    if overrides:
        try:
            spec = apply_overrides(spec, dict(overrides))
        except SpecError as err:
            raise ConfigError(join_path("overrides", err.path), err.message) from None
    return resolve_spec(spec)  # its SpecErrors name paths inside the spec, relative to ``model``


# -- loading ---------------------------------------------------------------------------------
def load_config(source: str | Path | Mapping[str, Any], assignments: Sequence[str] = ()) -> TrainConfig:
    """Read, override and validate a training configuration.

    Args:
        source: a ``.yaml``/``.yml``/``.json`` file or a dict of the same shape.
        assignments: ``"key.path=value"`` overrides applied before validation (values are
            read as YAML, :mod:`refsr_blocks.core.overrides`), e.g. ``["schedule.steps=100",
            "reference=blank"]``.

    Returns:
        The validated :class:`TrainConfig`, with the model spec fully resolved.

    Raises:
        ConfigError: naming the key at fault.
    """
    raw = read_config_file(source) if isinstance(source, (str, Path)) else copy.deepcopy(dict(source))
    return validate(TrainConfig, apply_assignments(raw, assignments))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a ``.yaml``, ``.yml`` or ``.json`` file (not validated)."""
    return read_mapping_file(path, "config file")


def apply_assignments(raw: Mapping[str, Any], assignments: Sequence[str]) -> dict[str, Any]:
    """Apply ``"a.b.c=value"`` assignments (:func:`~refsr_blocks.core.overrides.parse_override`) to a raw config.

    Example:
        >>> apply_assignments({"schedule": {"steps": 10}}, ["schedule.steps=5", "reference=blank"])
        {'schedule': {'steps': 5}, 'reference': 'blank'}
    """
    out = copy.deepcopy(dict(raw))
    for assignment in assignments:
        key, value = parse_override(assignment)
        node = out
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(
                    ".".join(parts[: depth + 1]),
                    f"is {type(child).__name__} {child!r}, not a mapping; cannot set {key}",
                )
            node = child
        node[parts[-1]] = value
    return out
