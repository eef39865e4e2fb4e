"""mkdocs hook: generate, at every build, the parts of the site that must follow the code.

- ``reference/spec.md``: every preset, architecture and component with its parameters and
  defaults, from the registry (:func:`refsr_blocks.docs_gen.spec_reference`);
- ``reference/api/<module>.md``: one mkdocstrings page per public module, found by walking
  the package (:func:`refsr_blocks.docs_gen.public_modules`), added to the nav under the
  entry that points at ``reference/api/index.md``;
- ``assets/generated/*.png``: the pictures, drawn by code (:func:`refsr_blocks.docs_gen.write_pictures`);
  set ``REFSR_DOCS_CHECKPOINT=path.safetensors`` to draw the model pictures with those
  weights (the shipped weights are used when installed);
- markers in pages, replaced by generated text: ``<!-- refsr:contracts-table -->``,
  ``<!-- refsr:spec-errors -->`` (spec mistakes run, with their real messages),
  ``<!-- refsr:cli ARGS -->`` (``refsr-blocks ARGS`` run, with its output),
  ``<!-- refsr:config-reference -->``, ``<!-- refsr:pictures-weights -->``,
  ``<!-- refsr:benchmark-table -->``.

The site documents the library itself: entry-point plugins are not loaded during the build
(``REFSR_BLOCKS_DISABLE_PLUGINS=1`` unless set otherwise), so the pages do not depend on
what else is installed.

Nothing is written into ``docs/``: generated files live only in the build, so they cannot go
stale and ``mkdocs serve`` does not loop on its own output.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

os.environ.setdefault("REFSR_BLOCKS_DISABLE_PLUGINS", "1")

from refsr_blocks import docs_gen  # imported after the plugin switch above

log = logging.getLogger("mkdocs.hooks.refsr_docs")

API_DIR = "reference/api"
API_INDEX = f"{API_DIR}/index.md"
SPEC_PAGE = "reference/spec.md"
PICTURE_DIR = "assets/generated"
CLI_MARKER = re.compile(r"<!-- refsr:cli (.+?) -->")

_pictures_cache: dict[tuple[str, float], tuple[dict[str, bytes], str]] = {}
_state: dict[str, Any] = {}


def _repo_root(config: Any) -> Path:
    return Path(config["config_file_path"]).resolve().parent


def _api_nav(modules: list[str]) -> list[Any]:
    return [API_INDEX, *({module: f"{API_DIR}/{module}.md"} for module in modules)]


def _rewrite_nav(items: list[Any], modules: list[str]) -> list[Any]:
    """``items`` with the entry pointing at the API index expanded into one page per module."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            ((title, value),) = item.items()
            if value == API_INDEX:
                out.append({title: _api_nav(modules)})
            elif isinstance(value, list):
                out.append({title: _rewrite_nav(value, modules)})
            else:
                out.append(item)
        else:
            out.append(item)
    return out


def on_config(config: Any) -> Any:
    # Snippets (--8<-- "examples/...") are paths from the repository root, wherever mkdocs runs.
    snippets = config["mdx_configs"].get("pymdownx.snippets")
    if snippets is not None:
        snippets["base_path"] = [str(_repo_root(config))]
    modules = docs_gen.public_modules()
    _state["modules"] = modules
    if config["nav"]:
        config["nav"] = _rewrite_nav(config["nav"], modules)
    return config


def _pictures() -> tuple[dict[str, bytes], str]:
    """The pictures as PNG bytes (cached per checkpoint for ``mkdocs serve``)."""
    checkpoint = os.environ.get("REFSR_DOCS_CHECKPOINT") or None
    if checkpoint is None:
        from refsr_blocks.cli import shipped_weights

        if shipped_weights().is_file():
            checkpoint = str(shipped_weights())
    key = (checkpoint or "", Path(checkpoint).stat().st_mtime if checkpoint else 0.0)
    if key not in _pictures_cache:
        with tempfile.TemporaryDirectory() as tmp:
            drawn = docs_gen.write_pictures(tmp, checkpoint)
            _pictures_cache.clear()
            _pictures_cache[key] = ({name: path.read_bytes() for name, path in drawn.paths.items()}, drawn.weights)
    return _pictures_cache[key]


def on_files(files: Files, config: Any) -> Files:
    modules = _state.get("modules") or docs_gen.public_modules()
    generated = {
        SPEC_PAGE: docs_gen.spec_reference(),
        API_INDEX: docs_gen.api_index(modules),
        **{f"{API_DIR}/{module}.md": docs_gen.api_page(module) for module in modules},
    }
    pictures, weights = _pictures()
    _state["weights"] = weights
    for name, data in pictures.items():
        generated[f"{PICTURE_DIR}/{name}.png"] = data
    for uri, content in generated.items():
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, uri, content=content))
    return files


def _transcript(args: str, root: Path) -> str:
    """``refsr-blocks ARGS`` run from the repository root (paths in pages are relative to it)."""
    previous = os.getcwd()
    os.chdir(root)
    try:
        return docs_gen.cli_transcript(shlex.split(args))
    finally:
        os.chdir(previous)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if "<!-- refsr:" not in markdown:
        return markdown
    markdown = CLI_MARKER.sub(lambda m: _transcript(m.group(1), _repo_root(config)), markdown)
    replacements = {
        "<!-- refsr:contracts-table -->": lambda: docs_gen.contracts_table(),
        "<!-- refsr:spec-errors -->": lambda: docs_gen.spec_error_examples(),
        "<!-- refsr:config-reference -->": lambda: docs_gen.config_reference(),
        "<!-- refsr:pictures-weights -->": lambda: _state.get("weights", "(unknown weights)"),
        "<!-- refsr:benchmark-table -->": lambda: docs_gen.benchmark_table(
            _repo_root(config) / "benchmarks" / "results.json"
        ),
    }
    for marker, make in replacements.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    for leftover in re.findall(r"<!-- refsr:[^>]*-->", markdown):
        log.warning("refsr_docs: %s has an unknown marker %s", page.file.src_uri, leftover)
    return markdown
