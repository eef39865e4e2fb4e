"""Adversarial run for issue 17: generate hostile inputs, run each in isolation, print the table.

Usage::

    python scripts/adversarial.py                  # every area, a few minutes on 2 cores
    python scripts/adversarial.py --area plugins   # one area (see AREAS)
    python scripts/adversarial.py --verbose        # one line per case

Every case runs in a child process forked from this one (refsr_blocks and torch are imported
once, before forking, so a case costs milliseconds), with an address-space limit
(``resource.setrlimit(RLIMIT_AS)``, default 3 GiB above what the parent maps) and a wall-clock
time limit; a case that exceeds either, dies, or leaves the process by ``sys.exit`` counts as
a crash/hang. Concurrent-training cases fork two trainers at once. Files are generated in a
temporary folder, removed at the end.

Each case is classified as:

* handled well: the library's own error (a ``RefSRError``) with a message naming what is
  wrong (and the file, where there is one), one ``error:`` line for the command line; or
  the correct result where the input is acceptable (a cast, a warning);
* unclear error: the library refused, but the message misses what it should say;
* crash/hang/silent-wrong: a traceback from deep inside, a hang, running out of memory, the
  host program exiting, or a hostile input accepted without a word;
* data lost: a file the user had (a checkpoint, a finished run) changed or vanished.

Exit status: 0 when every case was handled well, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import resource
import signal
import struct
import sys
import tempfile
import textwrap
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # small.py: the tiny model specs of the test suite

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

import refsr_blocks  # noqa: E402
from refsr_blocks.core.checkpoint import DIGEST_KEY, SPEC_KEY, read_metadata, tensor_digest  # noqa: E402
from refsr_blocks.core.errors import RefSRError  # noqa: E402

HANDLED, UNCLEAR, CRASH, LOST = "handled well", "unclear error", "crash/hang/silent-wrong", "data lost"
OUTCOMES = (HANDLED, UNCLEAR, CRASH, LOST)
GiB = 1024**3

#: A CrossNet that trains a step in a fraction of a second (as in tests/train/conftest.py).
TINY_MODEL = {
    "preset": "crossnet_lite",
    "overrides": {
        "upscale": 2,
        "scales": 3,
        "channels": 8,
        "upsampler": {"params": {"num_blocks": 1, "channels": 8}},
        "flow.width": 0.125,
    },
}


def tiny_config(steps: int, **runtime: Any) -> dict[str, Any]:
    """A training configuration of the tiny model on procedural data."""
    return {
        "seed": 0,
        "model": TINY_MODEL,
        "data": {
            "train": {
                "kind": "synthetic",
                "images": {"builtin": "procedural", "count": 2, "size": [48, 48]},
                "crop": 16,
                "length": 8,
                "max_disparity": 3,
            }
        },
        "schedule": {"steps": steps, "batch_size": 2, "lr": 1e-3},
        "runtime": {"log_every": 1, "checkpoint_every": 1, "progress": False, "keep_checkpoints": 2, **runtime},
    }


# -- outcomes of one case ------------------------------------------------------------------
@dataclass
class Result:
    outcome: str
    note: str = ""


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


def expect_error(
    fn: Callable[[], Any], *contains: str, error: type[BaseException] = RefSRError, seconds: float | None = None
) -> Result:
    """``fn`` must raise ``error`` (a RefSRError by default) whose message holds ``contains``."""
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn()
    except error as err:
        elapsed = time.perf_counter() - start
        message = str(err)
        missing = [c for c in contains if c.lower() not in message.lower()]
        if seconds is not None and elapsed > seconds:
            return Result(CRASH, f"refused, but after {elapsed:.1f} s (limit {seconds} s): {_one_line(message)}")
        if missing:
            return Result(UNCLEAR, f"message lacks {missing}: {_one_line(message)}")
        return Result(HANDLED, _one_line(message))
    except RefSRError as err:
        return Result(UNCLEAR, f"{type(err).__name__} instead of {error.__name__}: {_one_line(str(err))}")
    except BaseException as err:
        return Result(CRASH, f"{type(err).__name__}: {_one_line(str(err))}")
    return Result(CRASH, "accepted silently")


def expect_cli_error(argv: list[str], *contains: str, main: Callable[[list[str]], int] | None = None) -> Result:
    """The command line must end with one ``error:`` line holding ``contains`` and status 2."""
    from refsr_blocks.tools.cli import main as cli_main

    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            status = (main or cli_main)(argv)
    except BaseException as exc:
        return Result(CRASH, f"traceback: {type(exc).__name__}: {_one_line(str(exc))}")
    text = err.getvalue()
    if status == 0:
        return Result(CRASH, f"accepted (status 0), printed {len(out.getvalue())} characters")
    lines = text.strip().splitlines()
    if status != 2 or len(lines) != 1 or not lines[0].startswith("error: "):
        return Result(UNCLEAR, f"status {status}, {len(lines)} stderr lines: {_one_line(text)}")
    missing = [c for c in contains if c.lower() not in text.lower()]
    if missing:
        return Result(UNCLEAR, f"message lacks {missing}: {_one_line(text)}")
    return Result(HANDLED, _one_line(text))


def check(condition: bool, good: str, bad: str, bad_outcome: str = CRASH) -> Result:
    return Result(HANDLED, good) if condition else Result(bad_outcome, bad)


# -- running a case in a forked child -------------------------------------------------------
def _vm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


class Child:
    """A forked child running ``fn`` with an address-space limit; :meth:`result` collects it."""

    def __init__(self, fn: Callable[[], Any], *, memory: int = 3 * GiB) -> None:
        read_end, write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(read_end)
            self._run_child(fn, memory, write_end)
        os.close(write_end)
        self._read_end = read_end

    @staticmethod
    def _run_child(fn: Callable[[], Any], memory: int, write_end: int) -> None:
        code = 0
        try:
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            limit = _vm_bytes() + memory
            if hard != resource.RLIM_INFINITY:
                limit = min(limit, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard if hard != resource.RLIM_INFINITY else limit))
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            payload = json.dumps(["ok", fn()])
        except SystemExit as exc:
            payload, code = json.dumps(["died", f"the process exited (SystemExit {exc.code!r})"]), 3
        except MemoryError:
            payload, code = json.dumps(["died", "out of memory (the address-space limit)"]), 4
        except BaseException as exc:
            tb = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{Path(tb.filename).name}:{tb.lineno}"
            payload, code = json.dumps(["died", f"{type(exc).__name__} at {where}: {_one_line(str(exc))}"]), 5
        with os.fdopen(write_end, "w") as pipe:
            pipe.write(payload)
        os._exit(code)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def result(self, timeout: float) -> tuple[str, Any]:
        """``("ok", value)`` or ``("died", why)``; kills the child after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        status = 0
        while True:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                self.kill()
                os.waitpid(self.pid, 0)
                os.close(self._read_end)
                return "died", f"hang: killed after {timeout:.0f} s"
            time.sleep(0.02)
        with os.fdopen(self._read_end) as pipe:
            text = pipe.read()
        if not text:
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            return "died", f"killed by signal {sig}" if sig else f"exited with status {os.WEXITSTATUS(status)}"
        kind, value = json.loads(text)
        return kind, value


def in_child(fn: Callable[[], Any], *, timeout: float, memory: int = 3 * GiB) -> tuple[str, Any]:
    """Run ``fn`` in a forked child with limits; ``("ok", value)`` or ``("died", why)``.

    ``value`` must be JSON-serialisable. The child's stdout/stderr are discarded.
    """
    return Child(fn, memory=memory).result(timeout)


@dataclass
class Case:
    area: str
    name: str
    run: Callable[[], Result]
    timeout: float = 60.0
    memory: int = 3 * GiB
    isolated: bool = True  # False: runs in this process (it forks children itself)


@dataclass
class Area:
    key: str
    title: str
    cases: list[Case] = field(default_factory=list)


def run_case(case: Case) -> Result:
    if not case.isolated:
        try:
            return case.run()
        except BaseException as exc:
            return Result(CRASH, f"{type(exc).__name__}: {_one_line(str(exc))}")
    kind, value = in_child(lambda: vars(case.run()), timeout=case.timeout, memory=case.memory)
    if kind == "died":
        return Result(CRASH, value)
    return Result(**value)


# -- fixtures (written once, in a child: the parent computes nothing with torch) --------------
class Fixtures:
    """Files the cases read, in a temporary folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.model_file = root / "tiny.safetensors"
        self.config_file = root / "config.json"

    def make(self) -> None:
        def write() -> str:
            from small import TINY_CROSSNET

            torch.manual_seed(0)
            refsr_blocks.save_model(refsr_blocks.build_model(TINY_CROSSNET), self.model_file)
            self.config_file.write_text(json.dumps(tiny_config(4)))
            from PIL import Image

            Image.new("RGB", (8, 8), (90, 120, 200)).save(self.root / "lr.png")
            Image.new("RGB", (16, 16), (100, 110, 190)).save(self.root / "ref.png")
            return "ok"

        kind, value = in_child(write, timeout=120)
        if kind != "ok":
            raise SystemExit(f"could not make the fixtures: {value}")

    def path(self, name: str) -> Path:
        return self.root / name

    def write(self, name: str, text: str | bytes) -> Path:
        path = self.root / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        return path

    def forged(self, name: str, *, tensors: dict | None = None, metadata: dict | None = None) -> Path:
        src = self.model_file
        path = self.root / name
        save_file(
            tensors if tensors is not None else load_file(str(src)),
            str(path),
            metadata=metadata if metadata is not None else read_metadata(src),
        )
        return path


def _file_hashes(folder: Path) -> dict[str, str]:
    import hashlib

    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def _train(out: Path, config: dict, *, resume: bool = False, force: bool = False, **kw: Any) -> Any:
    from refsr_blocks.train import load_config, train

    torch.set_num_threads(1)
    return train(load_config(config), out, resume=resume, force=force, **kw)


# -- the areas --------------------------------------------------------------------------------
def area_resources(fx: Fixtures) -> Area:
    from small import TINY_CROSSNET

    from refsr_blocks import build_model, create_component, load_model
    from refsr_blocks.core.spec import load_spec

    area = Area("resources", "1 bounded resources")
    tiny_spec = read_metadata(fx.model_file)[SPEC_KEY]
    huge = json.loads(tiny_spec)
    huge["params"]["channels"] = 1024
    huge["components"]["upsampler"]["params"].update(num_blocks=256, channels=1024)
    bomb_file = fx.root / "bomb.safetensors"
    save_file({"w": torch.zeros(1)}, str(bomb_file), metadata={SPEC_KEY: json.dumps(huge)})
    area.cases.append(
        Case(
            area.key,
            "780-byte file naming a 1024-channel model",
            lambda: expect_error(lambda: load_model(bomb_file), "bomb.safetensors", "do not match", seconds=5),
            memory=1 * GiB,
        )
    )
    area.cases.append(
        Case(
            area.key,
            "num_blocks: 10**7 in a spec",
            lambda: expect_error(
                lambda: build_model(TINY_CROSSNET, upsampler={"name": "mdsr", "params": {"num_blocks": 10**7}}),
                "num_blocks",
                "out of range",
                seconds=2,
            ),
        )
    )
    area.cases.append(
        Case(
            area.key,
            "create_component(mdsr, num_blocks=10**6)",
            lambda: expect_error(
                lambda: create_component("upsampler", "mdsr", num_blocks=10**6), "num_blocks", seconds=2
            ),
        )
    )
    area.cases.append(
        Case(
            area.key,
            "flow width 1e6",
            lambda: expect_error(
                lambda: build_model(TINY_CROSSNET, **{"flow.width": 1e6}), "width", "out of range", seconds=2
            ),
        )
    )
    area.cases.append(
        Case(
            area.key,
            "encoder convs_per_level 10**6",
            lambda: expect_error(
                lambda: build_model(TINY_CROSSNET, lr_encoder={"params": {"convs_per_level": 10**6}}),
                "convs_per_level",
                seconds=2,
            ),
        )
    )
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i, name in enumerate("bcdefgh"):
        lines.append(f"{name}: &{name} [{', '.join(['*' + 'abcdefgh'[i]] * 10)}]")
    bomb = "\n".join(lines) + "\nmodel: crossnet\ncomponents: {upsampler: {name: mdsr, params: {extra_scales: *h}}}\n"
    bomb_yaml = fx.write("bomb.yaml", bomb)
    area.cases.append(
        Case(
            area.key,
            f"{len(bomb)}-byte YAML alias bomb (load_spec)",
            lambda: expect_error(lambda: load_spec(bomb_yaml), "bomb.yaml", "aliases", seconds=2),
            memory=1 * GiB,
        )
    )
    area.cases.append(
        Case(
            area.key,
            "alias bomb through `refsr-blocks spec`",
            lambda: expect_cli_error(["spec", str(bomb_yaml)], "aliases"),
            memory=1 * GiB,
        )
    )
    config_bomb = fx.write("config_bomb.yaml", bomb.replace("model: crossnet\ncomponents:", "unused:"))
    area.cases.append(
        Case(
            area.key,
            "alias bomb in a training config",
            lambda: expect_cli_error(["train", str(config_bomb), "--out", str(fx.root / "never")], "aliases"),
            memory=1 * GiB,
        )
    )
    cycle = fx.write("cycle.yaml", "model: &m [*m]\n")
    area.cases.append(
        Case(area.key, "recursive YAML alias", lambda: expect_error(lambda: load_spec(cycle), "cycle.yaml"))
    )
    long_list = fx.write("long.json", json.dumps({"model": "crossnet", "params": {"upscale": [4] * 300_000}}))
    area.cases.append(
        Case(
            area.key,
            "2 MB list in a JSON spec",
            lambda: expect_error(lambda: load_spec(long_list), "long.json", seconds=2),
        )
    )
    header_lie = fx.write("header_lie.safetensors", struct.pack("<Q", 2**40) + b"{}")
    area.cases.append(
        Case(
            area.key,
            "header length 2**40",
            lambda: expect_error(lambda: load_model(header_lie), "header_lie.safetensors", "header too large"),
        )
    )
    entry = b'{"w": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 40000000000]}}'
    offsets_lie = fx.write("offsets_lie.safetensors", struct.pack("<Q", len(entry)) + entry)
    area.cases.append(
        Case(
            area.key,
            "tensor claiming 40 GB past the end",
            lambda: expect_error(lambda: load_model(offsets_lie), "offsets_lie.safetensors", "truncated"),
            memory=1 * GiB,
        )
    )
    return area


def area_race(fx: Fixtures) -> Area:
    from refsr_blocks.core.registry import Registry

    area = Area("race", "2 plugin-loading race")

    def race(threads: int) -> Result:
        registry = Registry()
        registry.register_kind("thing")

        def slow_plugin() -> None:
            time.sleep(0.1)
            registry.register("thing", "from_plugin", torch.nn.Identity)

        registry.before_lookup = slow_plugin
        barrier = threading.Barrier(threads)
        results: list[str] = []

        def lookup() -> None:
            barrier.wait()
            try:
                results.append(registry.get("thing", "from_plugin").name)
            except Exception as exc:
                results.append(type(exc).__name__)

        pool = [threading.Thread(target=lookup) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(10)
        bad = [r for r in results if r != "from_plugin"]
        return check(not bad and len(results) == threads, f"{threads} threads all saw the plugin", f"failures: {bad}")

    for run in range(9):
        area.cases.append(Case(area.key, f"first lookups from {2 + run} threads", lambda n=2 + run: race(n)))
    return area


PLUGIN_MODULES = {
    "exit_import": "import sys\nsys.exit(1)\n",
    "exit_zero_import": "import sys\nsys.exit(0)\n",
    "argparse_import": "import argparse\nargparse.ArgumentParser().parse_args(['--nope'])\n",
    "exit_hook": textwrap.dedent(
        """
        import sys
        from refsr_blocks.core.hookspecs import hookimpl

        @hookimpl
        def register_components(registry):
            registry.register_kind("exit_kind")
            sys.exit("bye")
        """
    ),
    "hang_import": "import time\nfrom refsr_blocks import register_component\nimport torch\n"
    "register_component('flow', 'hang_flow', torch.nn.Identity)\ntime.sleep(3600)\n",
    "hang_hook": textwrap.dedent(
        """
        import time
        from refsr_blocks.core.hookspecs import hookimpl

        @hookimpl
        def register_components(registry):
            time.sleep(3600)
        """
    ),
    "raise_import": "raise RuntimeError('plugin bug')\n",
    "keyboard_import": "raise KeyboardInterrupt\n",
}


def _install_plugin(site: Path, name: str, text: str) -> None:
    module = f"adv_plugin_{name}"
    (site / f"{module}.py").write_text(text)
    info = site / f"adv_{name}-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: adv-{name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[refsr_blocks]\n{name} = {module}\n")


def area_plugins(fx: Fixtures) -> Area:
    area = Area("plugins", "3 plugins vs the host")

    def loading(name: str) -> Result:
        site = fx.root / f"site_{name}"
        site.mkdir(exist_ok=True)
        _install_plugin(site, name, PLUGIN_MODULES[name])
        sys.path.insert(0, str(site))
        os.environ["REFSR_BLOCKS_PLUGIN_TIMEOUT"] = "2"
        import importlib.metadata as metadata

        from refsr_blocks import list_components
        from refsr_blocks.core import plugins
        from refsr_blocks.core.plugins import RefSRPluginWarning, list_plugins
        from refsr_blocks.core.registry import REGISTRY

        # The parent loaded the installed plugins already; load this one the same way, lazily.
        group = metadata.entry_points(group="refsr_blocks")
        plugins._MANAGER = plugins.PluginManager(REGISTRY, discover=lambda: [ep for ep in group if ep.name == name])
        REGISTRY.before_lookup = plugins.load_plugins

        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                flows = list_components("flow")
            except KeyboardInterrupt:
                if name != "keyboard_import":
                    raise
                flows = list_components("flow")  # Ctrl-C propagates; the library still works after
                status = next(p.status for p in list_plugins() if p.entry_point == name)
                return check(
                    "flownets_plus" in flows and status.startswith("failed: interrupted"),
                    "Ctrl-C propagated, plugin undone, library works",
                    f"status {status!r}",
                )
        elapsed = time.perf_counter() - start
        ours = [w for w in caught if issubclass(w.category, RefSRPluginWarning)]
        status = next(p.status for p in list_plugins() if p.entry_point == name)
        if "flownets_plus" not in flows or "hang_flow" in flows:
            return Result(CRASH, f"registry left wrong: {flows}")
        if len(ours) != 1 or f"adv-{name}" not in str(ours[0].message):
            return Result(UNCLEAR, f"{len(ours)} warnings: {[str(w.message)[:80] for w in ours]}")
        if elapsed > 5:
            return Result(CRASH, f"the first lookup took {elapsed:.1f} s")
        return Result(HANDLED, f"{status[:100]} ({elapsed:.1f} s)")

    for name in PLUGIN_MODULES:
        area.cases.append(Case(area.key, f"plugin: {name}", lambda n=name: loading(n), timeout=30))
    return area


def _wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def area_lock(fx: Fixtures) -> Area:
    area = Area("lock", "4 one run per folder")

    def concurrent(second: str) -> Result:
        out = fx.root / f"locked_{second}"
        config = tiny_config(3000)
        if second != "start":  # a finished earlier run to resume or replace
            kind, value = in_child(lambda: _train(out, tiny_config(2)).step, timeout=300)
            if kind != "ok":
                return Result(CRASH, f"setup: {value}")
        metrics = out / "metrics.jsonl"
        starts_before = metrics.read_text().count('"start"') if metrics.is_file() else 0
        first = Child(lambda: _train(out, config, resume=second != "start").step)
        try:
            if not _wait_for(lambda: metrics.is_file() and metrics.read_text().count('"start"') > starts_before, 120):
                return Result(CRASH, f"the first trainer did not start: {first.result(1)}")
            kind, value = in_child(lambda: _refused(out, config, second), timeout=120)
        finally:
            first.kill()  # like a kill -9 of the first run
            first.result(30)
        if kind != "ok":
            return Result(CRASH, f"second trainer: {value}")
        from refsr_blocks.train import RunDirectory

        if list(out.glob("replaced-*")):
            return Result(LOST, "the running run's files were moved aside")
        latest = RunDirectory(out).latest_checkpoint()
        try:
            latest.load()
        except RefSRError as err:
            return Result(LOST, f"the newest checkpoint does not load: {_one_line(str(err))}")
        starts = metrics.read_text().count('"start"') - starts_before
        if starts != 1:
            return Result(CRASH, f"{starts} runs logged into metrics.jsonl")
        return Result(**value)

    for second in ("start", "resume", "force"):
        area.cases.append(
            Case(area.key, f"second trainer ({second}) while one runs", lambda s=second: concurrent(s), isolated=False)
        )
    return area


def _refused(out: Path, config: dict, mode: str) -> dict:
    from refsr_blocks.train.state import RunLockedError

    try:
        _train(out, config, resume=mode == "resume", force=mode == "force", max_steps=1)
    except RunLockedError as err:
        good = "pid" in str(err) and str(out) in str(err)
        return vars(Result(HANDLED if good else UNCLEAR, _one_line(str(err))))
    except BaseException as exc:
        return vars(Result(CRASH, f"{type(exc).__name__}: {_one_line(str(exc))}"))
    return vars(Result(CRASH, "both trainers ran in the same folder"))


def area_digests(fx: Fixtures) -> Area:
    from refsr_blocks import load_model

    area = Area("digests", "5 checksummed weights")
    data = fx.model_file.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    rng = random.Random(17)
    for i in range(20):
        offset = rng.randrange(8 + header_len, len(data))
        flipped = bytearray(data)
        flipped[offset] ^= 1 << rng.randrange(8)
        path = fx.write(f"flip{i}.safetensors", bytes(flipped))
        area.cases.append(
            Case(
                area.key,
                f"bit flip in tensor data at byte {offset}",
                lambda p=path: expect_error(lambda: load_model(p), p.name, "damaged"),
            )
        )
    meta = read_metadata(fx.model_file)
    tensors = load_file(str(fx.model_file))
    old = fx.forged("no_digest.safetensors", metadata={k: v for k, v in meta.items() if k != DIGEST_KEY})

    area.cases.append(
        Case(
            area.key,
            "file without a digest",
            lambda: expect_error(lambda: load_model(old), "no_digest.safetensors", "carries no weight digest"),
        )
    )
    name = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 1)
    nan = {**tensors, name: tensors[name].clone().fill_(float("nan"))}
    nan_file = fx.forged("nan.safetensors", tensors=nan, metadata={**meta, DIGEST_KEY: tensor_digest(nan)})
    area.cases.append(
        Case(
            area.key,
            "NaN weights with a matching digest",
            lambda: expect_error(lambda: load_model(nan_file), "nan.safetensors", "not finite"),
        )
    )
    ints = {k: (v * 100).to(torch.int32) if v.is_floating_point() else v for k, v in tensors.items()}
    int_file = fx.forged("int.safetensors", tensors=ints, metadata={**meta, DIGEST_KEY: tensor_digest(ints)})
    area.cases.append(
        Case(area.key, "integer weights", lambda: expect_error(lambda: load_model(int_file), "int.safetensors", "I32"))
    )

    import pickle

    class Boom:
        def __reduce__(self) -> tuple:
            return (os.system, ("touch " + str(fx.root / "PWNED"),))

    pickled = fx.write("pickle.safetensors", pickle.dumps({"w": Boom()}))

    def no_pickle() -> Result:
        result = expect_error(lambda: load_model(pickled), "pickle.safetensors")
        return Result(CRASH, "the pickle ran") if (fx.root / "PWNED").exists() else result

    area.cases.append(Case(area.key, "a pickle named .safetensors", no_pickle))

    def pickled_state() -> Result:
        run = fx.root / "pickle_run"
        kind, value = in_child(lambda: _train(run, tiny_config(2)).step, timeout=300)
        if kind != "ok":
            return Result(CRASH, f"setup: {value}")
        from refsr_blocks.train import RunDirectory

        ckpt = RunDirectory(run).latest_checkpoint()
        ckpt.state_file.write_bytes(pickle.dumps(Boom()))
        kind, value = in_child(
            lambda: vars(expect_error(lambda: _train(run, tiny_config(2), resume=True), "training_state.pt")),
            timeout=300,
        )
        if (fx.root / "PWNED").exists():
            return Result(CRASH, "the pickle in training_state.pt ran")
        return Result(**value) if kind == "ok" else Result(CRASH, value)

    area.cases.append(Case(area.key, "a malicious pickle as training_state.pt", pickled_state, isolated=False))

    def training_flips() -> Result:
        run = fx.root / "digest_run"
        kind, value = in_child(lambda: _train(run, tiny_config(2)).step, timeout=300)
        if kind != "ok":
            return Result(CRASH, f"setup: {value}")
        from refsr_blocks.train import RunDirectory

        ckpt = RunDirectory(run).latest_checkpoint()
        caught, total = 0, 0
        notes = []
        for target in (ckpt.state_file, ckpt.model_file):
            original = target.read_bytes()
            for _ in range(6):
                offset = rng.randrange(len(original) // 2, len(original) - 8)
                flipped = bytearray(original)
                flipped[offset] ^= 1 << rng.randrange(8)
                target.write_bytes(bytes(flipped))
                res = in_child(
                    lambda t=target: vars(expect_error(lambda: _train(run, tiny_config(2), resume=True), t.name)),
                    timeout=120,
                )
                total += 1
                if res[0] == "ok" and res[1]["outcome"] == HANDLED:
                    caught += 1
                else:
                    notes.append(str(res[1])[:100])
                target.write_bytes(original)
        return check(
            caught == total,
            f"{caught}/{total} flips in checkpoints refused on --resume",
            f"{caught}/{total} caught: {notes[:2]}",
        )

    area.cases.append(
        Case(area.key, "12 bit flips in training checkpoints", training_flips, timeout=600, isolated=False)
    )
    return area


def area_owners(fx: Fixtures) -> Area:
    from refsr_blocks import build_model, load_model, register_component, save_model
    from refsr_blocks.core.errors import RefSROwnerWarning
    from refsr_blocks.core.registry import recording
    from refsr_blocks.core.spec import resolve_spec

    area = Area("owners", "6 overrides of built-ins")

    def override() -> Result:
        from small import TINY_CROSSNET

        from refsr_blocks.components.flows.flownets import FlowNetSPlus

        class Impostor(FlowNetSPlus):
            pass

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with recording("evil-plugin"):
                register_component("flow", "flownets_plus", Impostor, override=True)
        warned = [w for w in caught if issubclass(w.category, RefSROwnerWarning)]
        model = build_model(TINY_CROSSNET)
        path = fx.root / "owned.safetensors"
        save_model(model, path)
        recorded = json.loads(read_metadata(path)[SPEC_KEY])["components"]["flow"].get("owner")
        if not warned:
            return Result(CRASH, "replaced flownets_plus without a warning")
        return check(
            recorded == "evil-plugin",
            f"warned; checkpoint records owner {recorded!r}",
            f"owner recorded: {recorded!r}",
            UNCLEAR,
        )

    def foreign_checkpoint() -> Result:
        spec = json.loads(read_metadata(fx.model_file)[SPEC_KEY])
        spec["components"]["flow"]["owner"] = "evil-plugin"
        meta = {**read_metadata(fx.model_file), SPEC_KEY: json.dumps(spec)}
        path = fx.forged("foreign.safetensors", metadata=meta)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load_model(path)
        warned = [w for w in caught if issubclass(w.category, RefSROwnerWarning)]
        return check(
            bool(warned) and "evil-plugin" in str(warned[0].message),
            "loading a checkpoint made with another owner's class warns",
            "no warning",
        )

    def old_spec() -> Result:
        spec = json.loads(read_metadata(fx.model_file)[SPEC_KEY])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return check(resolve_spec(spec) == spec, "old spec (no owner) resolves unchanged", "changed")

    area.cases += [
        Case(area.key, "plugin overrides flownets_plus", override),
        Case(area.key, "checkpoint names another owner", foreign_checkpoint),
        Case(area.key, "spec without owners (older)", old_spec),
    ]
    return area


def area_inputs(fx: Fixtures) -> Area:
    from small import TINY_CROSSNET

    from refsr_blocks.inference import super_resolve
    from refsr_blocks.ops.inputs import check_pair, prepare_pair

    area = Area("inputs", "7 input and dtype edges")

    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        torch.set_num_threads(1)
        return refsr_blocks.build_model(TINY_CROSSNET).eval()

    def cast_ok(dtype: torch.dtype, how: str) -> Result:
        m = model()
        lr, ref = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 16, 16)
        with torch.no_grad():
            expected = m(lr, ref)
            try:
                if how == "super_resolve":
                    out = super_resolve(m, lr.to(dtype), ref.to(dtype))
                elif how == "prepare_pair":
                    out = m(*prepare_pair(m, lr.to(dtype), ref.to(dtype), 2))
                else:
                    out = m(lr.to(dtype), ref.to(dtype))
            except RefSRError as err:
                return Result(UNCLEAR, f"refused: {_one_line(str(err))}")
        err = float((out.float() - expected).abs().max())
        return check(err < 0.05, f"{dtype} works (max diff {err:.1e})", f"max diff {err}")

    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        for how in ("model", "super_resolve"):
            area.cases.append(Case(area.key, f"{str(dtype)[6:]} input via {how}", lambda d=dtype, h=how: cast_ok(d, h)))
    bad = {
        "empty": lambda: (torch.rand(1, 3, 0, 8), torch.rand(1, 3, 0, 16)),
        "meta": lambda: (torch.rand(1, 3, 8, 8, device="meta"), torch.rand(1, 3, 16, 16, device="meta")),
        "sparse": lambda: (torch.rand(1, 3, 8, 8).to_sparse(), torch.rand(1, 3, 16, 16).to_sparse()),
    }
    for name, make in bad.items():
        area.cases.append(
            Case(
                area.key,
                f"{name} tensors to model()",
                lambda mk=make: expect_error(lambda: model()(*mk()), error=refsr_blocks.InputError),
            )
        )
        area.cases.append(
            Case(
                area.key,
                f"{name} tensors to check_pair",
                lambda mk=make: expect_error(lambda: check_pair(*mk(), 2), error=refsr_blocks.InputError),
            )
        )
        area.cases.append(
            Case(
                area.key,
                f"{name} tensors to fuse()",
                lambda mk=make: expect_error(lambda: model().fuse(mk()[1], mk()[1]), error=refsr_blocks.InputError),
            )
        )
    big = lambda: (torch.rand(1, 3, 8, 8) * 255, torch.rand(1, 3, 16, 16) * 255)  # noqa: E731
    area.cases.append(
        Case(
            area.key,
            "0-255 floats at the boundary (prepare_pair)",
            lambda: expect_error(lambda: prepare_pair(model(), *big(), 2), "255", error=refsr_blocks.InputError),
        )
    )
    area.cases.append(
        Case(
            area.key,
            "0-255 floats to super_resolve",
            lambda: expect_error(lambda: super_resolve(model(), *big()), "255", error=refsr_blocks.InputError),
        )
    )
    area.cases.append(
        Case(
            area.key,
            "fuse() with mismatched shapes",
            lambda: expect_error(lambda: model().fuse(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 8)), "same shape"),
        )
    )
    return area


CLI_SPECS = {
    "int_key.yaml": "model: crossnet\n4: x\n",
    "yes_key.yaml": "model: crossnet\nyes: 1\n",
    "null_channels.yaml": "model: crossnet\nparams: {channels: ~}\n",
    "inf_width.yaml": "model: crossnet\ncomponents: {flow: {name: flownets_plus, params: {width: .inf}}}\n",
    "deep500.yaml": "model: crossnet\nparams: {channels: " + "[" * 500 + "]" * 500 + "}\n",
    "deep500.json": '{"model": "crossnet", "params": {"channels": ' + "[" * 500 + "]" * 500 + "}}",
    "deep100k.json": '{"model": "crossnet", "params": {"channels": ' + "[" * 100000 + "]" * 100000 + "}}",
    "python_tag.yaml": "model: !!python/object/apply:os.system ['echo pwned']\n",
    "not_mapping.yaml": "- crossnet\n",
    "empty.yaml": "",
    "binary.json": "\x00\x01\x02",
}


def area_cli(fx: Fixtures) -> Area:
    area = Area("cli", "8 one error line")
    for name, text in CLI_SPECS.items():
        path = fx.write(name, text)
        area.cases.append(Case(area.key, f"spec {name}", lambda p=path: expect_cli_error(["spec", str(p)], p.name)))
        area.cases.append(
            Case(area.key, f"summary {name}", lambda p=path: expect_cli_error(["summary", str(p)], p.name))
        )
    latin = fx.write("latin1.yaml", "model: crossnet # caf\xe9\n".encode("latin-1"))
    area.cases.append(Case(area.key, "non-UTF-8 spec", lambda: expect_cli_error(["spec", str(latin)], "latin1.yaml")))
    deep_meta = fx.root / "deep_meta.safetensors"
    save_file({"w": torch.zeros(1)}, str(deep_meta), metadata={SPEC_KEY: "[" * 200000 + "]" * 200000})
    sr = ["sr", "--lr", str(fx.path("lr.png")), "--ref", str(fx.path("ref.png")), "--out", str(fx.root / "o.png")]
    area.cases.append(
        Case(
            area.key,
            "sr with deeply nested checkpoint metadata",
            lambda: expect_cli_error([*sr, "--checkpoint", str(deep_meta)], "deep_meta.safetensors"),
        )
    )
    area.cases.append(
        Case(
            area.key,
            "sr with a bit-flipped checkpoint",
            lambda: expect_cli_error([*sr, "--checkpoint", str(fx.path("flip0.safetensors"))], "flip0.safetensors"),
        )
    )
    a_file = fx.write("a_file", "mine")
    for label, out in (
        ("--out is a file", a_file),
        ("--out under a file", a_file / "run"),
        ("--out where mkdir is refused (/sys)", Path("/sys/refsr_run")),
    ):
        area.cases.append(
            Case(
                area.key,
                f"train {label}",
                lambda o=out: expect_cli_error(["train", str(fx.config_file), "--out", str(o)], str(o)),
            )
        )

    def disk_full() -> Result:
        out = fx.root / "full_run"
        kind, value = in_child(lambda: _train(out, tiny_config(2)).step, timeout=300)
        if kind != "ok":
            return Result(CRASH, f"setup: {value}")
        before = _file_hashes(out / "checkpoints")

        def limited() -> dict:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
            size = max(p.stat().st_size for p in out.rglob("*") if p.is_file())
            resource.setrlimit(resource.RLIMIT_FSIZE, (size // 3, size // 3))
            return vars(expect_cli_error(["train", str(fx.config_file), "--out", str(out), "--resume"], "cannot write"))

        kind, value = in_child(limited, timeout=300)
        if kind != "ok":
            return Result(CRASH, value)
        after = _file_hashes(out / "checkpoints")
        if any(after.get(k) != v for k, v in before.items() if "latest" not in k and k in after) or not after:
            return Result(LOST, "checkpoints changed")
        return Result(**value)

    area.cases.append(Case(area.key, "train on a full disk (RLIMIT_FSIZE)", disk_full, timeout=600, isolated=False))
    return area


def _png_declaring(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims ``width``×``height`` pixels (an 8×8 image, IHDR rewritten)."""
    import zlib

    from PIL import Image

    Image.new("L", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def area_files(fx: Fixtures) -> Area:
    """Issue 25: outputs never replace inputs or (without --force) existing files; the one image reader."""
    from PIL import Image

    from refsr_blocks.data import load_image

    area = Area("files", "25 outputs and image files")
    ckpt = ["--checkpoint", str(fx.model_file), "--device", "cpu"]

    def folder(name: str) -> Path:
        """A fresh copy of the fixture pair: ``name/lr.png`` and ``name/ref.png``."""
        d = fx.root / name
        d.mkdir(exist_ok=True)
        for f in ("lr.png", "ref.png"):
            (d / f).write_bytes(fx.path(f).read_bytes())
        return d

    def sr_kept(name: str, out: str, *extra: str, contains: str = "") -> Result:
        """``sr`` onto ``out`` (relative to a fresh pair folder): one error line, and no input changed."""
        d = folder(name)
        if out == "link.png":
            (d / "link.png").symlink_to(d / "lr.png")
        before = _file_hashes(d)
        argv = ["sr", *ckpt, "--lr", str(d / ("" if out == "." else "lr.png")), "--ref", str(d / "ref.png")]
        result = expect_cli_error([*argv, "--out", str(d / out), *extra], contains)
        return Result(LOST, f"an input changed; {result.note}") if _file_hashes(d) != before else result

    for label, out in (("the LR image", "lr.png"), ("the reference", "ref.png"), ("a symlink to the LR", "link.png")):
        for force in ((), ("--force",)):
            name = f"{out[:-4]}{len(force)}"  # a folder of its own per case
            area.cases.append(
                Case(
                    area.key,
                    f"sr --out = {label}{' --force' if force else ''}",
                    lambda o=out, f=force, n=name: sr_kept(n, o, *f, contains="your input"),
                )
            )
    area.cases.append(
        Case(area.key, "sr --out = the LR folder", lambda: sr_kept("lrdir", ".", "--force", contains="input folder"))
    )

    def python_over_input() -> Result:
        d = folder("python")
        before = _file_hashes(d)
        args = (str(d / "lr.png"), str(d / "ref.png"), str(d / "lr.png"))
        result = expect_error(lambda: refsr_blocks.super_resolve_images(*args, model=str(fx.model_file)), "your input")
        return Result(LOST, "the LR image changed") if _file_hashes(d) != before else result

    area.cases.append(Case(area.key, 'super_resolve_images("lr.png", ref, "lr.png")', python_over_input))

    def existing_output() -> Result:
        d = folder("existing")
        (d / "sr.png").write_bytes(b"mine")
        argv = ["sr", *ckpt, "--lr", str(d / "lr.png"), "--ref", str(d / "ref.png"), "--out", str(d / "sr.png")]
        result = expect_cli_error(argv, "sr.png", "--force")
        return Result(LOST, "sr.png replaced") if (d / "sr.png").read_bytes() != b"mine" else result

    area.cases.append(Case(area.key, "sr onto an existing file without --force", existing_output))
    xyz = ["sr", *ckpt, "--lr", str(fx.path("lr.png")), "--ref", str(fx.path("ref.png")), "--out"]
    area.cases.append(
        Case(area.key, "sr --out o.xyz", lambda: expect_cli_error([*xyz, str(fx.root / "o.xyz")], "o.xyz", ".png"))
    )

    bomb = _png_declaring(fx.root / "bomb.png", 50000, 50000)
    junk = fx.write("junk.png", bytes(random.Random(0).getrandbits(8) for _ in range(4000)))
    whole = fx.path("ref.png").read_bytes()
    cut = fx.write("cut.png", whole[: len(whole) // 2])
    (fx.root / "dir.png").mkdir()
    os.mkfifo(fx.root / "fifo.png")
    for label, path, says in (
        ("PNG declaring 50000×50000", bomb, "50000×50000"),
        ("junk bytes as a PNG", junk, "not an image"),
        ("truncated PNG", cut, "truncated"),
        ("a folder as the LR image", fx.root / "dir.png", "folder"),
        ("a FIFO as the LR image", fx.root / "fifo.png", "named pipe"),
    ):
        argv = ["sr", *ckpt, "--lr", str(path), "--ref", str(fx.path("ref.png")), "--out", str(fx.root / "never.png")]
        area.cases.append(Case(area.key, f"sr: {label}", lambda a=argv, p=path, w=says: expect_cli_error(a, p.name, w)))
        area.cases.append(
            Case(
                area.key, f"load_image: {label}", lambda p=path, w=says: expect_error(lambda: load_image(p), p.name, w)
            )
        )

    stems = fx.root / "stems"
    stems.mkdir()
    for name in ("a.png", "a.jpg", "b.png"):
        Image.new("RGB", (16, 16)).save(stems / name)
    lrs = fx.root / "stem_lr"
    lrs.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (8, 8)).save(lrs / name)
    stem_argv = ["sr", *ckpt, "--lr", str(lrs), "--ref", str(stems), "--out", str(fx.root / "stem_out")]
    area.cases.append(
        Case(
            area.key, "reference folder with a.png and a.jpg", lambda: expect_cli_error(stem_argv, "a.jpg", "ambiguous")
        )
    )

    def float_tiff() -> Result:
        import numpy as np

        path = fx.root / "float.tif"
        Image.fromarray(np.full((8, 8), 0.5, np.float32), "F").save(path)
        value = float(load_image(path).mean())
        return check(abs(value - 0.5) < 1e-6, f"float32 TIFF read as {value:.3f}", f"read as {value} (black?)")

    def mode_i_rule() -> Result:
        import numpy as np

        from refsr_blocks.inference.predictor import to_image_tensor

        image = Image.fromarray(np.full((8, 8), 200, np.int32), "I")
        image.save(fx.root / "int.tif")
        a, b = float(to_image_tensor(image)[0].mean()), float(load_image(fx.root / "int.tif").mean())
        return check(a == b, f"mode I: Predictor {a:.3f} = load_image {b:.3f}", f"Predictor {a} vs load_image {b}")

    def exif() -> Result:
        exif = Image.Exif()
        exif[0x0112] = 6  # stored landscape, shown rotated 90° clockwise
        Image.new("RGB", (16, 8)).save(fx.root / "phone.jpg", exif=exif)
        shape = tuple(load_image(fx.root / "phone.jpg").shape)
        return check(shape == (3, 16, 8), "EXIF orientation applied (16 high, 8 wide)", f"sideways: {shape}")

    area.cases += [
        Case(area.key, "float32 TIFF (mode F)", float_tiff),
        Case(area.key, "mode I: Predictor and load_image agree", mode_i_rule),
        Case(area.key, "EXIF orientation of a phone JPEG", exif),
    ]
    return area


def _forged_digest(header: dict[str, Any], data: bytes) -> str:
    """The weight digest a forger writes: each name, dtype and shape, and the bytes its range points at."""
    import hashlib

    h = hashlib.sha256()
    for key in sorted(k for k in header if k != "__metadata__"):
        entry = header[key]
        h.update(json.dumps([key, entry["dtype"], entry["shape"]]).encode() + b"\0")
        h.update(data[entry["data_offsets"][0] : entry["data_offsets"][1]])
    return h.hexdigest()


def area_loading(fx: Fixtures) -> Area:
    """Issue 25: checkpoints, training, specs and plugins bounded by what they hold; one error line each."""
    from PIL import Image

    from refsr_blocks import load_model, save_model
    from refsr_blocks.core.spec import load_spec

    area = Area("loading", "25 checkpoints, training, specs, plugins, eval")
    add = lambda name, fn, **kw: area.cases.append(Case(area.key, name, fn, **kw))  # noqa: E731
    bomb = "\n".join(
        ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
        + [f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]" for p, n in zip("abcdefgh", "bcdefghi")]
    )

    def forged_ranges(name: str, offsets: Callable[[int], list[int]]) -> Result:
        """A header listing MDSR 256 blocks × 1024 channels whose byte ranges cannot hold them."""
        spec = json.loads(read_metadata(fx.model_file)[SPEC_KEY])
        spec["components"]["upsampler"]["params"].update(num_blocks=256, channels=1024)
        with torch.device("meta"):
            state = refsr_blocks.build_model(spec).state_dict()
        dtypes = {torch.float32: "F32", torch.int64: "I64"}
        header: dict[str, Any] = {"__metadata__": {SPEC_KEY: json.dumps(spec), "format": "pt"}}
        for i, (key, t) in enumerate(sorted(state.items())):
            header[key] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": offsets(i)}
        header["__metadata__"][DIGEST_KEY] = _forged_digest(header, b"\0" * 8)
        raw = json.dumps(header).encode()
        path = fx.write(name, struct.pack("<Q", len(raw)) + raw + b"\0" * 8)
        return expect_error(lambda: load_model(path), name, seconds=10)

    add("forged byte ranges [0, 0] (18.6 GiB model)", lambda: forged_ranges("zero.safetensors", lambda i: [0, 0]))
    add("forged: every tensor on the same 8 bytes", lambda: forged_ranges("same.safetensors", lambda i: [0, 8]))

    def pretrained() -> Result:
        import timm.models._builder
        from small import TINY_CROSSNET

        def hub(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionRefusedError("the test's network: a model hub was contacted")

        timm.models._builder.load_pretrained = hub
        torch.hub.load_state_dict_from_url = hub
        spec = json.loads(json.dumps(TINY_CROSSNET))
        spec["components"]["lr_encoder"] = {"name": "timm", "params": {}}
        path = save_model(refsr_blocks.build_model(spec), fx.root / "timm.safetensors")
        hostile = json.loads(read_metadata(path)[SPEC_KEY])
        hostile["components"]["lr_encoder"]["params"]["pretrained"] = True
        forged = fx.root / "pretrained.safetensors"
        save_file(load_file(str(path)), str(forged), metadata={**read_metadata(path), SPEC_KEY: json.dumps(hostile)})
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                load_model(forged)
        except ConnectionRefusedError:
            return Result(CRASH, "load_model contacted a model hub for pretrained weights")
        said = [str(w.message) for w in caught if "pretrained" in str(w.message)]
        return check(bool(said), f"loaded offline, warned: {_one_line(said[0]) if said else ''}", "silent", UNCLEAR)

    add("loaded spec asks timm for pretrained weights", pretrained, timeout=120)
    add(
        "300-byte YAML alias bomb in a spec",
        lambda: expect_error(lambda: load_spec(fx.write("bomb.yaml", bomb)), "bomb.yaml", "alias", seconds=2),
        timeout=30,
    )

    def run_folder(name: str, steps: int = 2) -> tuple[Path, Path]:
        """A finished tiny run in ``name`` and its configuration file."""
        out, config = fx.root / name, fx.root / f"{name}.json"
        config.write_text(json.dumps(tiny_config(steps)))
        _train(out, tiny_config(steps))
        return out, config

    def resume(name: str, damage: Callable[[Path], None], *contains: str) -> Result:
        out, config = run_folder(name)
        damage(out)
        return expect_cli_error(["train", str(config), "--out", str(out), "--resume", "--no-progress"], *contains)

    add(
        "--resume: alias bomb in config.yaml",
        lambda: resume("rbomb", lambda o: (o / "config.yaml").write_text(bomb), "config.yaml", "alias"),
        timeout=60,
    )
    add(
        "--resume: garbage config.yaml",
        lambda: resume("rgarbage", lambda o: (o / "config.yaml").write_text("{{{ [: not yaml"), "config.yaml"),
        timeout=60,
    )
    add(
        "--resume: config.yaml missing",
        lambda: resume("rmissing", lambda o: (o / "config.yaml").unlink(), "config.yaml", "missing"),
        timeout=60,
    )

    def null_step(out: Path) -> None:
        lines = (out / "metrics.jsonl").read_text().splitlines()
        (out / "metrics.jsonl").write_text("\n".join([*lines[:-1], json.dumps({"event": "end", "step": None})]) + "\n")

    add("--resume: null step in metrics.jsonl", lambda: resume("rnull", null_step, "metrics.jsonl"), timeout=60)

    def set_bomb() -> Result:
        config = fx.write("setbomb.json", json.dumps(tiny_config(2)))
        value = "[&a [1,1,1,1,1,1,1,1,1,1], " + ", ".join(["*a"] * 5) + "]"
        for _ in range(7):
            value = f"[&b{_} {value}, " + ", ".join([f"*b{_}"] * 9) + "]"
        argv = ["train", str(config), "--out", str(fx.root / "setbomb"), "--set", f"seed={value}"]
        return expect_cli_error(argv, "alias")

    add("train --set: alias bomb", set_bomb, timeout=30)

    def half_files() -> Result:
        out, _ = run_folder("tmps")
        ours = [
            out / ".config.yaml.k3_x9qa1.tmp",
            out / ".model.safetensors.ab1.tmp",
            out / "checkpoints/.latest.q.tmp",
        ]
        theirs = [out / "notes.tmp", out / ".my.yaml.ab1.tmp"]
        for path in ours + theirs:
            path.write_bytes(b"half")
        _train(out, tiny_config(2), resume=True)
        left = [p.name for p in ours if p.exists()]
        lost = [p.name for p in theirs if not p.exists()]
        if lost:
            return Result(LOST, f"removed the user's {lost}")
        return check(not left, "the run's half-written .tmp files were removed, others kept", f"left: {left}", UNCLEAR)

    add(".tmp half-files of a killed run", half_files, timeout=60)

    def unreadable_image() -> Result:
        import refsr_blocks.data.synthetic as synthetic

        folder = fx.root / "photos"
        folder.mkdir(exist_ok=True)
        for i in range(2):
            Image.new("RGB", (48, 48), (40 * i, 90, 120)).save(folder / f"{i}.png")
        config = tiny_config(2)
        config["data"]["train"]["images"] = str(folder)
        path = fx.write("photos.json", json.dumps(config))

        def denied(p: Any, *args: Any, **kwargs: Any) -> Any:
            raise PermissionError(13, "Permission denied", str(p))

        synthetic.load_image = denied
        return expect_cli_error(["train", str(path), "--out", str(fx.root / "photos_run")], "photos/", "read")

    add("training image unreadable mid-run", unreadable_image, timeout=60)

    def full_disk() -> Result:
        from small import TINY_CROSSNET

        path = fx.root / "full" / "m.safetensors"
        model = refsr_blocks.build_model(TINY_CROSSNET)
        save_model(model, path)
        before = path.read_bytes()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) // 2, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        result = expect_error(lambda: save_model(model, path), "m.safetensors")
        kept = path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == ["m.safetensors"]
        return result if kept else Result(LOST, f"the previous file changed or a half-file stayed; {result.note}")

    add("save_model on a full disk", full_disk)

    def plugin_disabled() -> Result:
        import subprocess

        from small import TINY_CROSSNET

        if "pwcnet" not in refsr_blocks.list_components("flow"):
            return Result(UNCLEAR, "the refsr-pwcnet plugin is not installed: nothing to check")
        spec = json.loads(json.dumps(TINY_CROSSNET))
        spec["components"]["flow"] = {"name": "pwcnet", "params": {"width": 8, "base_channels": 8}}
        path = save_model(refsr_blocks.build_model(spec), fx.root / "pwc.safetensors")
        code = "import sys, refsr_blocks\ntry:\n refsr_blocks.load_model(sys.argv[1])\nexcept Exception as e: print(e)"
        env = {**os.environ, "REFSR_BLOCKS_DISABLE_PLUGINS": "1"}
        done = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True)
        text = done.stdout.strip()
        hint = "REFSR_BLOCKS_DISABLE_PLUGINS" in text and "pwcnet" in text
        return check(hint, _one_line(text), f"no hint: {_one_line(text or done.stderr[-200:])}", UNCLEAR)

    add("plugins disabled, checkpoint needs pwcnet", plugin_disabled, timeout=120, isolated=False)

    def thread_override() -> Result:
        from small import TINY_CROSSNET

        from refsr_blocks.components.flows.flownets import FlowNetSPlus
        from refsr_blocks.core.errors import RefSROwnerWarning

        class Impostor(FlowNetSPlus):
            pass

        caught: list[Any] = []

        def later() -> None:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                refsr_blocks.register_component("flow", "flownets_plus", Impostor, override=True)
            caught.extend(seen)

        thread = threading.Thread(target=later)
        thread.start()
        thread.join()
        warned = any(issubclass(w.category, RefSROwnerWarning) for w in caught)
        owner = refsr_blocks.build_model(TINY_CROSSNET).spec["components"]["flow"].get("owner")
        return check(warned and owner is not None, f"warned, spec records {owner!r}", f"warned {warned}, owner {owner}")

    add("override of a built-in from a plugin's thread", thread_override)

    def contract_kit() -> Result:
        from refsr_blocks.ops.flow import level_size
        from refsr_blocks.testing import check_component

        class ZeroFlow(torch.nn.Module):
            def __init__(self, scales: int = 3) -> None:
                super().__init__()
                self.scales = scales

            def forward(self, a: torch.Tensor, b: torch.Tensor) -> list[torch.Tensor]:
                h, w = a.shape[-2:]
                return [a.new_zeros(a.shape[0], 2, *level_size(h, w, k)) for k in range(self.scales)]

        refsr_blocks.register_component("flow", "zero_flow_baseline", ZeroFlow)
        return expect_error(
            lambda: check_component("flow", "zero_flow_baseline"), "[test_gradient", error=AssertionError
        )

    add("conformance kit on a parameter-free flow", contract_kit, timeout=120)

    def loss_line() -> Result:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            _train(fx.root / "console", {**tiny_config(2), "runtime": {**tiny_config(2)["runtime"], "progress": True}})
        shown = [x for x in out.getvalue().replace("\r", "\n").splitlines() if "loss" in x and x.startswith("step")]
        return check(bool(shown), f"console: {shown[-1] if shown else ''}", "no loss line on the console", UNCLEAR)

    add("training shows the loss on the console", loss_line, timeout=60)

    def pairs(name: str, size: tuple[int, int] = (40, 32)) -> str:
        for scene in ("s1", "s2"):
            for f in ("target", "ref"):
                (fx.root / name / scene).mkdir(parents=True, exist_ok=True)
                Image.new("RGB", size, (30 + 60 * len(f), 90, 150)).save(fx.root / name / scene / f"{f}.png")
        return f"pairs:{fx.root / name}"

    def evaluate(
        name: str, *extra: str, checkpoint: str = "", data: str = "", contains: tuple[str, ...] = ()
    ) -> Result:
        argv = ["eval", "--checkpoint", checkpoint or str(fx.model_file), "--data", data or pairs("evalpairs")]
        return expect_cli_error(
            [*argv, "--out", str(fx.root / name), "--no-progress", "--device", "cpu", *extra], *contains
        )

    def shipped(argv: list[str]) -> Result:
        result = expect_cli_error(argv)
        accepted = result.outcome == CRASH and result.note.startswith("accepted")
        return Result(HANDLED, "accepted, exit 0") if accepted else Result(UNCLEAR, f"refused: {result.note}")

    name = "crossnet_small_x4"
    ev = ["eval", "--checkpoint", name, "--data", "", "--out", str(fx.root / "ev_shipped"), "--limit", "1"]
    add(
        f"eval --checkpoint {name}",
        lambda: shipped([*ev[:4], pairs("evalpairs"), *ev[5:], "--no-progress"]),
        timeout=300,
    )
    add(
        f"viz --checkpoint {name}",
        lambda: shipped(["viz", "--checkpoint", name, "--out-dir", str(fx.root / "viz")]),
        timeout=300,
    )
    add("eval --limit 0", lambda: evaluate("e1", "--limit", "0", contains=("--limit",)))
    add("eval --limit -1", lambda: evaluate("e2", "--limit", "-1", contains=("--limit",)))
    add("eval --window 7", lambda: evaluate("e3", "--window", "7", contains=("--window",)))

    def damaged(name: str, cut: Callable[[bytes], bytes]) -> Result:
        data = pairs(name)
        target = fx.root / name / "s2" / "target.png"
        target.write_bytes(cut(target.read_bytes()))
        return evaluate(f"{name}_out", data=data, contains=(str(target),))

    add("eval: junk PNG", lambda: damaged("junkpng", lambda b: b"junk"))
    add("eval: truncated PNG", lambda: damaged("truncpng", lambda b: b[: len(b) // 2]))
    add(
        "eval: images smaller than the protocol's crop",
        lambda: evaluate("e4", "--protocol", "crossnet-eccv2018", contains=("s1", "--protocol")),
    )
    add("eval --border 1000", lambda: evaluate("e5", "--border", "1000", contains=("--border",)))
    add("eval: 3×3 images", lambda: evaluate("e6", data=pairs("p3", (3, 3)), contains=("s1",)))

    def out_file() -> Result:
        mine = fx.write("results_mine.md", "mine")
        result = expect_cli_error(
            ["eval", "--checkpoint", str(fx.model_file), "--data", pairs("evalpairs"), "--out", str(mine), "--force"],
            "--out",
            str(mine),
        )
        return result if mine.read_text() == "mine" else Result(LOST, "the file was replaced")

    add("eval --out an existing file", out_file)
    return area


def area_leftovers(fx: Fixtures) -> Area:
    from refsr_blocks.core.spec import resolve_spec

    area = Area("leftovers", "9 leftovers and leniency")
    lenient = {
        "params: 0": {"model": "crossnet", "params": 0},
        "params: false": {"model": "crossnet", "params": False},
        "params: []": {"model": "crossnet", "params": []},
        "residual: null": {"model": "crossnet", "params": {"residual": None}},
        "version: true": {"model": "crossnet", "version": True},
        "extra_scales: [2.5]": {
            "model": "crossnet",
            "components": {"upsampler": {"name": "mdsr", "params": {"extra_scales": [2.5]}}},
        },
    }
    for label, spec in lenient.items():
        area.cases.append(Case(area.key, label, lambda s=spec: expect_error(lambda: resolve_spec(s))))
    dup = fx.write("dup.yaml", "model: crossnet\nmodel: crossnet_lite\n")
    area.cases.append(Case(area.key, "duplicate YAML key", lambda: expect_cli_error(["spec", str(dup)], "duplicate")))

    def kill_in_prune(seed: int) -> Result:
        config = tiny_config(20, keep_checkpoints=1)
        out = fx.root / f"prune_{seed}"
        latest = out / "checkpoints" / "latest"

        def step_now() -> int:
            try:
                return int(latest.read_text().strip().split("-")[1])
            except (OSError, IndexError, ValueError):
                return 0

        rng = random.Random(seed)
        kills = 0
        for attempt in range(3):  # SIGKILL right after a checkpoint: inside the next write or the prune
            target = 3 + 5 * attempt + rng.randrange(4)
            child = Child(lambda: _train(out, config, resume=True).step)
            reached = _wait_for(lambda t=target: step_now() >= t, 300)
            time.sleep(rng.random() * 0.05)
            child.kill()
            kind, _ = child.result(30)
            kills += reached and kind == "died"
        from refsr_blocks.train import RunDirectory

        kind, value = in_child(lambda: _train(out, config, resume=True).step, timeout=600)
        if kind != "ok":
            return Result(CRASH, f"resume after {kills} kills: {value}")
        names = [p.name for p in (out / "checkpoints").iterdir()]
        complete = [c.path.name for c in RunDirectory(out).list_checkpoints()]
        stray = [n for n in names if n.startswith(".") or (n.startswith("step-") and n not in complete)]
        return check(
            not stray and value == 20 and kills > 0,
            f"SIGKILLed {kills} times mid-run, resumed to step 20, no leftovers",
            f"kills {kills}, leftovers {stray}, step {value}",
        )

    for seed in range(3):
        area.cases.append(
            Case(
                area.key,
                f"SIGKILL during training/pruning (run {seed})",
                lambda s=seed: kill_in_prune(s),
                timeout=600,
                isolated=False,
            )
        )

    def threads_claim() -> Result:
        # A fresh interpreter per thread count: OpenMP thread pools do not survive fork().
        script = fx.write(
            "threads.py",
            textwrap.dedent(
                """
                import sys, torch
                from refsr_blocks import build_model
                from refsr_blocks.components.losses import CharbonnierLoss
                torch.set_num_threads(int(sys.argv[1]))
                torch.manual_seed(0)
                m = build_model("crossnet_lite", upscale=2)
                opt = torch.optim.Adam(m.parameters(), lr=1e-3)
                g = torch.Generator().manual_seed(1)
                for _ in range(3):
                    lr, ref, hr = (torch.rand(2, 3, s, s, generator=g) for s in (24, 48, 48))
                    loss = CharbonnierLoss()(m(lr, ref), hr)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                torch.save(torch.cat([p.detach().reshape(-1) for p in m.parameters()]), sys.argv[2])
                """
            ),
        )
        import subprocess

        env = {**os.environ, "OMP_NUM_THREADS": "2", "REFSR_BLOCKS_DISABLE_PLUGINS": "1"}
        outputs = []
        for threads in (1, 2):
            out = fx.root / f"threads{threads}.pt"
            done = subprocess.run(
                [sys.executable, str(script), str(threads), str(out)], env=env, timeout=600, capture_output=True
            )
            if done.returncode:
                return Result(CRASH, f"{threads} threads: {_one_line(done.stderr.decode()[-300:])}")
            outputs.append(torch.load(out))
        diff = float((outputs[0] - outputs[1]).abs().max())
        docs = (REPO / "docs" / "determinism.md").read_text()
        says_differ = "1 and 2 threads do **not** agree" in docs
        return check(
            (diff != 0) == says_differ,
            f"1 vs 2 threads after 3 Adam steps: max diff {diff:.1e}; the docs say "
            f"{'they differ' if says_differ else 'they agree'}",
            f"docs wrong: measured {diff:.1e}",
        )

    area.cases.append(Case(area.key, "docs' thread claim vs a measurement", threads_claim, timeout=900, isolated=False))
    return area


AREAS = {
    "resources": area_resources,
    "race": area_race,
    "plugins": area_plugins,
    "lock": area_lock,
    "digests": area_digests,
    "owners": area_owners,
    "inputs": area_inputs,
    "cli": area_cli,
    "files": area_files,
    "loading": area_loading,
    "leftovers": area_leftovers,
}
# the thread measurement alone, for docs/determinism.md
ALIASES = {"threads": "leftovers"}


def format_table(rows: list[tuple[str, dict[str, int]]]) -> str:
    header = ("area", "cases", *OUTCOMES)
    body = [(title, str(sum(c.values())), *(str(c[o]) for o in OUTCOMES)) for title, c in rows]
    totals = {o: sum(c[o] for _, c in rows) for o in OUTCOMES}
    body.append(("total", str(sum(totals.values())), *(str(totals[o]) for o in OUTCOMES)))
    widths = [max(len(r[i]) for r in (header, *body)) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--area", action="append", choices=[*AREAS, *ALIASES], help="run only these areas")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every case")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    refsr_blocks.list_components()  # load the installed plugins before forking
    only = {ALIASES.get(a, a) for a in args.area} if args.area else set(AREAS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="refsr-adversarial-") as tmp:
        fx = Fixtures(Path(tmp))
        fx.make()
        for key, build in AREAS.items():
            if key not in only:
                continue
            area = build(fx)
            if args.area and "threads" in args.area and key == "leftovers":
                area.cases = [c for c in area.cases if "thread" in c.name]
            counts = dict.fromkeys(OUTCOMES, 0)
            started = time.monotonic()
            for case in area.cases:
                result = run_case(case)
                counts[result.outcome] += 1
                if args.verbose or result.outcome != HANDLED:
                    print(f"  [{area.key}] {case.name}: {result.outcome} - {result.note}", flush=True)
            print(f"{area.title}: {sum(counts.values())} cases in {time.monotonic() - started:.0f} s", flush=True)
            rows.append((area.title, counts))
    print()
    print(format_table(rows))
    return 0 if all(c[HANDLED] == sum(c.values()) for _, c in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
