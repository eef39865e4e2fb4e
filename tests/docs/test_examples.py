"""Every script in ``examples/`` runs at a tiny size, each in its own process (as a user runs it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

#: script → (extra arguments, lines its output must contain, files it must write under --out-dir)
CASES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "quickstart.py": ([], ["-> sr (1, 3, 32, 48)", "level 3: flow (1, 2, 4, 6)", "same output = True"], []),
    "custom_component.py": (
        [],
        ["constant_border honours the warper contract", "'name': 'constant_border'", "Did you mean 'fill'?"],
        [],
    ),
    "small_training.py": (["--out-dir", "{out}"], ["step    3", "validation PSNR"], ["model.safetensors"]),
    "evaluation.py": (["--out-dir", "{out}"], ["bicubic: PSNR", "crossnet_lite: PSNR"], ["results.md", "summary.json"]),
    "visualisation.py": (
        ["--out-dir", "{out}"],
        ["flow-convention.png"],
        ["flow-convention.png", "flows.png", "warp.png", "comparison.png", "errors.png"],
    ),
}


def test_every_example_is_tested():
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts == set(CASES), f"examples without a test case, or cases without a script: {scripts ^ set(CASES)}"


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs_tiny(script, tmp_path):
    extra, expected_lines, expected_files = CASES[script]
    out_dir = tmp_path / "out"
    args = [a.replace("{out}", str(out_dir)) for a in extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--tiny", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
    for line in expected_lines:
        assert line in proc.stdout, f"{line!r} not in the output of {script}:\n{proc.stdout}"
    for name in expected_files:
        assert (out_dir / name).is_file(), f"{script} did not write {name}"
    assert list(tmp_path.iterdir()) == ([out_dir] if expected_files else []), "the example wrote outside --out-dir"


def test_training_config_example_is_valid():
    """``examples/configs/tiny_synthetic.yaml`` (shown on the Training page) loads and validates."""
    train = pytest.importorskip("refsr_blocks.train")
    config = train.load_config(EXAMPLES / "configs" / "tiny_synthetic.yaml")
    assert config.model["params"]["channels"] == 8
    assert config.data.val is not None
