"""DistributedDataParallel on CPU: two replicas under torchrun (gloo, 127.0.0.1 only)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from refsr_blocks.train import load_config, train


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(config_file: Path, out: Path, nproc: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    if Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        "-m",
        "refsr_blocks.train",
        str(config_file),
        "--out",
        str(out),
        "--no-progress",
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_two_replicas_match_one_process_on_the_whole_batch(make_config, tmp_path) -> None:
    # 8 items, global batch 4 (2 per replica): 2 steps per epoch, so 4 steps cross an epoch,
    # and the milestone at step 2 halves the learning rate.
    raw = make_config({"data": {"val": None}, "schedule": {"batch_size": 4, "steps": 4, "milestones": [2]}})
    config = load_config(raw)
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config.to_dict()))

    proc = _torchrun(config_file, tmp_path / "ddp", nproc=2)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    events = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    start = next(e for e in events if e["event"] == "start")
    assert start["world_size"] == 2
    (replicas,) = [e for e in events if e["event"] == "replicas"]
    assert len(replicas["fingerprints"]) == 2 and len(set(replicas["fingerprints"])) == 1

    state = torch.load(tmp_path / "ddp" / "checkpoints" / "step-00000004" / "training_state.pt", weights_only=True)
    assert state["step"] == 4 and state["epoch"] == 1
    assert state["optimizer"]["param_groups"][0]["lr"] == config.schedule.lr * config.schedule.gamma
    assert all(int(s["step"]) == 4 for s in state["optimizer"]["state"].values())

    single = train(config, tmp_path / "single")
    ddp_weights = load_file(str(tmp_path / "ddp" / "model.safetensors"))
    one_weights = load_file(str(single.final_model))
    for key, value in one_weights.items():
        torch.testing.assert_close(ddp_weights[key], value, rtol=0, atol=2e-5, msg=key)
    # the training losses agree too (each replica's loss is the mean over its half-batch)
    ddp_losses = [e["loss"] for e in events if e["event"] == "train"]
    one_losses = [
        json.loads(line)["loss"]
        for line in (tmp_path / "single" / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["event"] == "train"
    ]
    assert ddp_losses == pytest.approx(one_losses, rel=1e-5)
