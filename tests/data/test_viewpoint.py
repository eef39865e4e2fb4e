"""Viewpoint pairs: kinds, exact flow, fixed sets, held-out images, parameter errors."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import kornia
import pytest
import torch
from torch import Tensor
from torch.utils.data import default_collate

from refsr_blocks.core.errors import SpecError
from refsr_blocks.data import (
    DataError,
    SyntheticParallaxDataset,
    ViewpointPairsDataset,
    make_viewpoint_pair,
    procedural_image,
    save_image,
)
from refsr_blocks.data.entries import build_dataset, check_dataset_entry
from refsr_blocks.data.real_photos import HELD_OUT
from refsr_blocks.data.view_degrade import ReferenceDegradation
from refsr_blocks.data.view_kinds import FREE_SIZE_KINDS, GEOMETRIC_KINDS
from refsr_blocks.data.viewpoint import KINDS
from refsr_blocks.evaluation.references import oracle_reference
from refsr_blocks.ops.warp import pixel_grid, sample
from refsr_blocks.train.config import read_config_file

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "viewpoint"
SIZE = (32, 48)


@cache
def _photo(seed: int, h: int = 96, w: int = 128) -> Tensor:
    """A natural-looking photo stand-in: a procedural image, lightly blurred."""
    img = procedural_image(h, w, seed=seed)
    return kornia.filters.gaussian_blur2d(img[None], (7, 7), (1.0, 1.0))[0]


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny collection laid out as scripts/fetch_real_data.sh gathers it."""
    root = tmp_path_factory.mktemp("real")
    for split, seeds in (("train", (1, 2, 3)), ("val", (4, 5)), ("test", (6, 7))):
        for s in seeds:
            save_image(_photo(s), root / "photos" / split / f"{split}_photo{s}.png")
        scene = root / "stereo" / split / f"{split}_pair"
        save_image(_photo(10 + len(split), 48, 64), scene / "target.png")
        save_image(_photo(20 + len(split), 48, 64), scene / "ref.png")
    return root


def _warp_back(ref: Tensor, flow: Tensor) -> Tensor:
    """``ref`` read at ``p + flow[p]`` (bicubic) for every target pixel: the target's grid."""
    h, w = flow.shape[-2:]
    points = (pixel_grid(h, w)[0] + flow).reshape(1, 2, -1)
    return sample(ref[None], points, mode="bicubic")[0].reshape(ref.shape[0], h, w)


@pytest.mark.parametrize("kind", GEOMETRIC_KINDS)
def test_each_kind_has_the_documented_shapes_and_ranges(kind: str) -> None:
    free = kind in FREE_SIZE_KINDS
    pair = make_viewpoint_pair(_photo(1), kind, SIZE, torch.Generator().manual_seed(3), free_size=free)
    assert pair.kind == kind
    assert pair.hr.shape == (3, *SIZE) and pair.flow.shape == (2, *SIZE) and pair.valid.shape == (1, *SIZE)
    assert pair.ref.shape[0] == 3 and (free or pair.ref.shape[-2:] == SIZE)
    assert pair.ref.shape[-2] % 8 == 0 and pair.ref.shape[-1] % 8 == 0
    for t in (pair.hr, pair.ref, pair.flow, pair.valid):
        assert t.dtype == torch.float32 and bool(torch.isfinite(t).all())
    assert float(pair.hr.min()) >= 0 and float(pair.hr.max()) <= 1
    assert float(pair.ref.min()) >= 0 and float(pair.ref.max()) <= 1
    assert set(pair.valid.unique().tolist()) <= {0.0, 1.0}
    assert 0.2 < float(pair.valid.mean()) <= 1.0
    # Valid positions lie inside the reference's own pixel grid.
    q = pixel_grid(*SIZE)[0] + pair.flow
    keep = pair.valid[0].bool()
    assert float(q[0][keep].min()) >= 0 and float(q[0][keep].max()) <= pair.ref.shape[-1] - 1
    assert float(q[1][keep].min()) >= 0 and float(q[1][keep].max()) <= pair.ref.shape[-2] - 1


@pytest.mark.parametrize("kind", GEOMETRIC_KINDS)
def test_flow_warps_the_reference_onto_the_target(kind: str, warp: Callable[..., Tensor]) -> None:
    free = kind in FREE_SIZE_KINDS
    pair = make_viewpoint_pair(_photo(2), kind, (48, 64), torch.Generator().manual_seed(5), free_size=free)
    # The library's bicubic read, and the test's own bilinear grid_sample where sizes agree.
    back = _warp_back(pair.ref, pair.flow)
    keep = pair.valid.bool().expand(3, -1, -1)
    err = float((back - pair.hr).abs()[keep].mean())
    wrong = float((_warp_back(pair.ref, pair.flow + 2.0) - pair.hr).abs()[keep].mean())
    assert err < 0.01, (kind, err)
    assert wrong > 3 * err, (kind, err, wrong)  # the check can fail: a 2-px error is seen
    if pair.ref.shape == pair.hr.shape:
        assert float((warp(pair.ref, pair.flow) - pair.hr).abs()[keep].mean()) < 0.015


def test_occluded_and_outside_pixels_are_invalid() -> None:
    pair = make_viewpoint_pair(_photo(3), "layers", (48, 64), torch.Generator().manual_seed(1))
    back = _warp_back(pair.ref, pair.flow)
    err = (back - pair.hr).abs().mean(0, keepdim=True)
    # Where the layers' flow is wrong (occluded, out of frame) the error is far larger.
    assert float(err[pair.valid == 1].mean()) * 3 < float(err[pair.valid == 0].mean())
    assert 0 < float(pair.valid.mean()) < 1


def test_oracle_reference_reads_a_reference_of_another_size() -> None:
    pair = make_viewpoint_pair(_photo(4), "partial_overlap", (48, 64), torch.Generator().manual_seed(2), free_size=True)
    assert pair.ref.shape[-2:] != pair.hr.shape[-2:]
    oracle = oracle_reference({"ref": pair.ref[None], "flow": pair.flow[None]})[0]
    keep = pair.valid.bool().expand(3, -1, -1)
    assert oracle.shape == pair.hr.shape
    assert float((oracle - pair.hr).abs()[keep].mean()) < 0.015


def test_reference_degradation() -> None:
    ref = _photo(5, 32, 32)
    assert torch.equal(ReferenceDegradation(0, 0, 0, 0)(ref, torch.Generator().manual_seed(0)), ref)
    every = ReferenceDegradation(1, 1, 1, 1)
    out = every(ref, torch.Generator().manual_seed(0))
    assert out.shape == ref.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    assert float((out - ref).abs().mean()) > 0.005
    assert torch.equal(out, every(ref, torch.Generator().manual_seed(0)))
    with pytest.raises(DataError, match="p_jpeg must be a probability"):
        ReferenceDegradation(p_jpeg=1.5)


def test_training_items_are_random_per_epoch_and_batch(collection: Path) -> None:
    ds = ViewpointPairsDataset(collection, "train", 4, crop=SIZE, length=10, seed=0)
    assert not ds.fixed and len(ds) == 10
    items = [ds[i] for i in range(10)]
    kinds = {i["name"].split("/")[0] for i in items}
    assert kinds <= set(KINDS) and len(kinds) >= 4
    batch = default_collate(items[:4])
    assert batch["lr"].shape == (4, 3, 8, 12) and batch["ref"].shape == (4, 3, *SIZE)
    assert batch["flow"].shape == (4, 2, *SIZE) and batch["valid"].shape == (4, 1, *SIZE)
    synthetic = SyntheticParallaxDataset([_photo(1)], 4, crop=SIZE, seed=0)[0]
    assert default_collate([items[0], synthetic])["ref"].shape == (2, 3, *SIZE)  # they mix
    assert torch.equal(ds[3]["hr"], items[3]["hr"])  # reproducible per (seed, epoch, index)
    ds.set_epoch(1)
    assert not torch.equal(ds[3]["ref"], items[3]["ref"]) or ds[3]["name"] != items[3]["name"]
    stereo = ViewpointPairsDataset(collection, "train", 4, kinds=["stereo"], crop=SIZE, length=2, seed=0)[0]
    assert stereo["name"].startswith("stereo/") and not stereo["valid"].any() and stereo["ref"].shape == (3, *SIZE)


def test_fixed_sets_are_deterministic_and_per_kind(collection: Path) -> None:
    def make(**kw: object) -> ViewpointPairsDataset:
        return ViewpointPairsDataset(collection, "test", 8, crop=SIZE, items_per_kind=1, seed=11, ref_size="free", **kw)  # type: ignore[arg-type]

    first, second = make(), make()
    assert first.fixed and len(first) == len(GEOMETRIC_KINDS) + 1  # one stereo pair in the test split
    second.set_epoch(5)  # no effect on a fixed set
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # fixed items are made on one thread, whatever the caller's count
    try:
        second[0]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    for i in range(len(first)):
        a, b = first[i], second[i]
        assert a.keys() == b.keys() and a["name"] == b["name"]
        for key, value in a.items():
            assert not isinstance(value, Tensor) or torch.equal(value, b[key]), (i, key)
        assert torch.equal(a["hr"], (a["hr"] * 255).round() / 255)  # 8-bit, as files would be
    alone = make(kinds=["rotation"])
    for j, i in enumerate(first.kind_indices("rotation")):
        assert torch.equal(alone[j]["ref"], first[i]["ref"])  # a kind's items do not depend on the others
    stereo = first[first.kind_indices("stereo")[0]]
    assert "flow" not in stereo and stereo["hr"].shape == (3, 48, 64)


def test_fixed_sets_use_only_their_split_photos(collection: Path) -> None:
    train_names = {p.stem for p in (collection / "photos" / "train").iterdir()}
    for split in ("val", "test"):
        ds = ViewpointPairsDataset(collection, split, 4, kinds=["shift2d", "layers"], crop=SIZE, items_per_kind=2)
        used = {item["name"].split("/")[1].split("#")[0] for item in (ds[i] for i in range(len(ds)))}
        assert used == {p.stem for p in (collection / "photos" / split).iterdir()}
        assert not used & train_names
    with pytest.raises(DataError, match="fixed sets come from the 'val' and 'test' photos only"):
        ViewpointPairsDataset(collection, "train", 4, crop=SIZE, fixed=True)


def test_held_out_and_misplaced_photos_are_refused(tmp_path: Path) -> None:
    for held in ("motorcycle_left", "aloeL"):
        assert any(Path(h).stem == held for h in HELD_OUT)
        folder = tmp_path / held
        save_image(_photo(1), folder / "photos" / "val" / f"{held}.png")
        with pytest.raises(DataError, match="held-out Middlebury"):
            ViewpointPairsDataset(folder, "val", 4, kinds=["shift2d"], crop=SIZE)
    save_image(_photo(1), tmp_path / "wrong" / "photos" / "test" / "astronaut.png")  # a training photo
    with pytest.raises(DataError, match="'train' photo of the collection"):
        ViewpointPairsDataset(tmp_path / "wrong", "test", 4, kinds=["shift2d"], crop=SIZE)


def test_the_gathered_collection_holds_no_held_out_image() -> None:
    root = Path(__file__).resolve().parents[2] / "data" / "real" / "photos"
    if not root.is_dir():
        pytest.skip("data/real is not gathered (scripts/fetch_real_data.sh)")
    stems = {p.stem.lower() for p in root.rglob("*") if p.is_file()}
    assert stems and not stems & {Path(h).stem.lower() for h in HELD_OUT}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"kinds": ["homograpy"]}, "unknown kinds"),
        ({"kinds": []}, "non-empty list"),
        ({"kinds": ["scale", "scale"]}, "twice"),
        ({"crop": (30, 48)}, "multiples of scale 4"),
        ({"crop": (400, 48)}, "smaller than the crop"),
        ({"ref_size": "big"}, "ref_size must be one of"),
        ({"items_per_kind": 0}, "items_per_kind must be an int >= 1"),
        ({"max_shift": -1.0}, "max_shift must be a number >= 0"),
        ({"p_blur": 2.0}, "p_blur must be a probability"),
        ({"photometric": {"gama": 0.1}}, "unknown amount 'gama'"),
        ({"ref_size": "free", "transform": lambda s: s}, "use ref_size='same'"),
    ],
)
def test_bad_parameters_are_data_errors(collection: Path, params: dict[str, object], message: str) -> None:
    with pytest.raises(DataError, match=message):
        ViewpointPairsDataset(collection, "val", 4, **{"crop": SIZE, **params})  # type: ignore[arg-type]


def test_bad_entries_are_spec_errors_naming_the_key(collection: Path) -> None:
    entry = {"kind": "viewpoint_pairs", "root": str(collection), "split": "val", "crop": list(SIZE)}
    with pytest.raises(SpecError, match=r"data\.p_jpeg.*out of range"):
        check_dataset_entry({**entry, "p_jpeg": 1.5}, "data")
    with pytest.raises(SpecError, match=r"data\.kindz"):
        check_dataset_entry({**entry, "kindz": ["scale"]}, "data")
    with pytest.raises(SpecError, match="unknown kinds"):
        build_dataset({**entry, "kinds": ["zoom"]}, scale=4, default_seed=0)
    ds = build_dataset({**entry, "kinds": ["scale"], "items_per_kind": 1}, scale=8, default_seed=0)
    assert tuple(ds[0]["lr"].shape) == (3, 4, 6)


def test_every_config_is_a_valid_entry_for_its_kind_and_split() -> None:
    paths = sorted(CONFIGS.glob("eval_*.yaml"))
    sets = (*KINDS, "all", "near_aligned")
    assert {p.stem for p in paths} == {f"eval_{k}_{s}" for k in sets for s in ("val", "test")}
    for path in paths:
        entry = read_config_file(str(path))
        check_dataset_entry(entry, path.name)
        name, split = path.stem.removeprefix("eval_").rsplit("_", 1)
        assert entry["kind"] == "viewpoint_pairs" and entry["split"] == split
        kinds = {"all": list(KINDS), "near_aligned": ["shift2d"]}.get(name, [name])
        assert entry.get("kinds", list(KINDS)) == kinds
        if name == "near_aligned":  # a few pixels of motion, like a later video frame
            assert entry["max_shift"] <= 4 and entry["max_parallax"] <= 8


def test_every_bounded_parameter_is_refused_before_building(monkeypatch: pytest.MonkeyPatch) -> None:
    from refsr_blocks.core.build import create_component
    from refsr_blocks.core.registry import REGISTRY
    from refsr_blocks.core.spec import param_bounds

    component = REGISTRY.get("dataset", "viewpoint_pairs")
    bounds = param_bounds(component.factory)
    ints = [k for k, v in component.defaults.items() if isinstance(v, int) and not isinstance(v, bool)]
    assert set(ints) | {"crop"} <= set(bounds)

    def explode(*args: object, **kwargs: object) -> None:
        raise AssertionError("constructed before its parameters were checked")

    monkeypatch.setattr(component.factory, "__init__", explode)
    for param, (low, high) in bounds.items():
        value = [8, 10**12] if param == "crop" else 10**12
        with pytest.raises(SpecError) as err:
            create_component("dataset", "viewpoint_pairs", **{param: value})
        assert err.value.path == f"dataset.viewpoint_pairs.{param}" and f"[{low}, {high}]" in str(err.value)
