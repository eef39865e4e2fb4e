"""Training in stages: SISR pre-training of one part, initialisation, freezing, auxiliary losses."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from refsr_blocks.data.entries import build_dataset
from refsr_blocks.ops import backward_warp, flow_pyramid
from refsr_blocks.train import ConfigError, load_config, train
from refsr_blocks.train.objective import Objective, flow_epe_loss, warping_loss
from refsr_blocks.train.parts import parameter_groups


def _by_part(path) -> dict[str, dict[str, torch.Tensor]]:
    out: dict[str, dict[str, torch.Tensor]] = {}
    for name, value in load_file(str(path)).items():
        out.setdefault(name.split(".", 1)[0], {})[name] = value
    return out


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sisr_stage_then_frozen_upsampler(make_config, tmp_path) -> None:
    stage1 = train(load_config(make_config({"schedule": {"part": "upsampler"}})), tmp_path / "s1")
    start = train(load_config(make_config({"schedule": {"steps": 1}})), tmp_path / "fresh", max_steps=0)
    fresh, sisr = _by_part(start.final_model), _by_part(stage1.final_model)
    assert not _same(fresh["upsampler"], sisr["upsampler"]), "the SISR stage must train the upsampler"
    for part in ("aligner", "decoder", "lr_encoder"):
        assert _same(fresh[part], sisr[part]), f"the SISR stage changed {part}"

    config = make_config(
        {"init": {"path": str(stage1.final_model), "parts": ["upsampler"]}, "schedule": {"freeze": ["upsampler"]}}
    )
    stage2 = _by_part(train(load_config(config), tmp_path / "s2").final_model)
    assert _same(stage2["upsampler"], sisr["upsampler"]), "the frozen upsampler must keep the stage-1 weights"
    assert not _same(stage2["decoder"], fresh["decoder"])


def test_init_sources_apply_in_order(make_config, tmp_path) -> None:
    refsr = train(load_config(make_config({"schedule": {"steps": 1}})), tmp_path / "refsr")
    sisr = train(load_config(make_config({"schedule": {"part": "upsampler"}})), tmp_path / "sisr")
    sources = [{"path": str(refsr.final_model)}, {"path": str(sisr.final_model), "parts": ["upsampler"]}]
    config = make_config({"init": sources, "schedule": {"steps": 1}})
    chained = _by_part(train(load_config(config), tmp_path / "chained", max_steps=0).final_model)
    first, second = _by_part(refsr.final_model), _by_part(sisr.final_model)
    assert _same(chained["upsampler"], second["upsampler"]), "the later source must override the earlier one"
    assert not _same(chained["upsampler"], first["upsampler"])
    for part in ("aligner", "decoder"):
        assert _same(chained[part], first[part]), f"{part} must come from the first source"


def test_init_names_a_bad_part_or_file(make_config, tmp_path) -> None:
    with pytest.raises(ConfigError, match="init.parts.*no sub-module 'upsamplr'"):
        train(load_config(make_config({"init": {"path": "x.safetensors", "parts": ["upsamplr"]}})), tmp_path / "a")
    with pytest.raises(ConfigError, match="init.path"):
        load_config(make_config({"init": {"path": 3}}))
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(Exception, match="cannot read"):
        train(load_config(make_config({"init": {"path": str(tmp_path / "bad.safetensors")}})), tmp_path / "b")


def test_parameter_groups_scale_and_freeze() -> None:
    from refsr_blocks import build_model

    model = build_model("crossnet_lite", channels=8, **{"flow.width": 0.125})
    groups = parameter_groups(model, 1e-3, freeze=["aligner.flow"], lr_scale={"upsampler": 0.1})
    lrs = sorted(g["lr"] for g in groups)
    assert lrs == pytest.approx([1e-4, 1e-3])
    assert not any(p.requires_grad for p in model.aligner.flow.parameters())
    in_groups = {id(p) for g in groups for p in g["params"]}
    assert not in_groups & {id(p) for p in model.aligner.flow.parameters()}
    with pytest.raises(ConfigError, match="every parameter is frozen"):
        parameter_groups(model, 1e-3, freeze=[n for n, _ in model.named_children()])


def test_flow_epe_is_zero_for_the_true_flow_and_ignores_invalid_pixels() -> None:
    gt = torch.randn(2, 2, 16, 20) * 3
    pyramid = flow_pyramid(gt, 3)  # the ground truth at each level, as the loss defines it
    valid = torch.ones(2, 1, 16, 20)
    assert flow_epe_loss(pyramid, gt, valid).item() == pytest.approx(0.0, abs=1e-5)
    wrong = [f + 1.0 for f in pyramid]  # EPE sqrt(2) at every level
    assert flow_epe_loss(wrong, gt, valid).item() == pytest.approx(2**0.5, rel=1e-5)
    assert flow_epe_loss(wrong, gt, torch.zeros_like(valid)).item() == 0.0


def test_warping_loss_is_minimal_at_the_true_flow() -> None:
    hr = torch.rand(1, 3, 24, 32)
    flow = torch.zeros(1, 2, 24, 32)
    flow[:, 0] = 3.0
    ref = torch.roll(hr, shifts=3, dims=3)  # hr[p] = ref[p + (3, 0)]
    assert torch.allclose(backward_warp(ref, flow)[..., :-3], hr[..., :-3])
    right = warping_loss(ref, flow, hr).item()
    assert right == pytest.approx(1e-3, abs=1e-4)  # Charbonnier's floor: eps
    assert warping_loss(ref, torch.zeros_like(flow), hr).item() > right + 0.05


def test_aux_losses_in_config_and_training(make_config, tmp_path) -> None:
    aux = [{"name": "flow_epe", "weight": 0.01}, {"name": "warp", "weight": 0.5}, {"name": "l1", "on": "upsampled"}]
    result = train(load_config(make_config({"schedule": {"aux_losses": aux}})), tmp_path / "run")
    records = [line for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if '"train"' in line]
    assert all(k in records[-1] for k in ("loss_flow_epe", "loss_warp", "loss_l1", "loss_main"))
    assert result.finished


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ({"name": "flow_epe", "on": "sr"}, "'on' applies to image losses only"),
        ({"name": "charbonier"}, "Did you mean 'charbonnier'"),
        ({"name": "l1", "on": "flows"}, "must be one of 'sr', 'upsampled', 'warped_image'"),
        ({"name": "warp", "weight": -1}, "expected a number >= 0"),
        ({"name": "warp", "params": {"sigma": 1}}, "unknown parameter of 'warp'"),
    ],
)
def test_bad_aux_losses_are_named(make_config, term, message) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_config(make_config({"schedule": {"aux_losses": [term]}}))
    assert info.value.path.startswith("schedule.aux_losses[0]")


def test_mixed_dataset_marks_real_pairs_without_flow_invalid(tmp_path) -> None:
    from refsr_blocks.data import save_image

    for name in ("a", "b"):
        save_image(torch.rand(3, 32, 32), tmp_path / "pairs" / name / "target.png")
        save_image(torch.rand(3, 32, 32), tmp_path / "pairs" / name / "ref.png")
    entry = {
        "kind": "mix",
        "repeats": [1, 3],
        "parts": [
            {
                "kind": "synthetic",
                "images": {"builtin": "procedural", "count": 1, "size": [48, 48]},
                "crop": 16,
                "length": 2,
            },
            {"kind": "pairs", "root": str(tmp_path / "pairs"), "crop": 16},
        ],
    }
    ds = build_dataset(entry, scale=2, default_seed=0)
    assert len(ds) == 2 + 3 * 2
    assert ds[0]["valid"].sum() > 0 and ds[2]["valid"].sum() == 0 and ds[2]["flow"].shape == (2, 16, 16)
    batch = torch.utils.data.default_collate([ds[0], ds[2]])
    assert batch["flow"].shape == (2, 2, 16, 16)
    with pytest.raises(ConfigError, match=r"data.parts\[1\].kind"):
        build_dataset({"kind": "mix", "parts": [entry["parts"][0], {"kind": "pair"}]}, scale=2, default_seed=0)


def test_objective_without_aux_reads_only_sr() -> None:
    objective = Objective({"name": "charbonnier", "params": {}})
    assert not objective.needs_intermediates
    x = torch.rand(1, 3, 8, 8)
    total, parts = objective({"sr": x}, {"hr": x})
    assert total.item() == pytest.approx(1e-3, rel=1e-3) and set(parts) == {"loss_main"}
