"""mkdocs hook: generate, at every build, the parts of the site that must follow the code.

- ``reference/spec.md``, from the registry and the presets (``refsr_docgen.spec_reference``);
- ``reference/api/<module>.md``, one mkdocstrings page per public module, added to the nav
  under the entry that points at ``reference/api/index.md``;
- ``assets/generated/*.png``, the pictures (``refsr_docgen.write_pictures``); set
  ``REFSR_DOCS_CHECKPOINT=path.safetensors`` to draw the model pictures with those weights
  (by default the shipped weights);
- each ``<!-- refsr:NAME ARGS -->`` marker in a page, replaced by ``refsr_markers.MARKERS[NAME](ARGS)``
  (``<!-- refsr:pictures-weights -->``: the weights the pictures were drawn with).

The site documents the library itself: entry-point plugins are not loaded during the build
(``REFSR_BLOCKS_DISABLE_PLUGINS=1`` unless set otherwise). Nothing is written into ``docs/``:
generated files live only in the build, so they cannot go stale and ``mkdocs serve`` does not
loop on its own output.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

os.environ.setdefault("REFSR_BLOCKS_DISABLE_PLUGINS", "1")

# This folder is on sys.path while mkdocs loads the hook; both import refsr_blocks, so after the switch above.
import refsr_docgen as gen
from refsr_markers import MARKERS

log = logging.getLogger("mkdocs.hooks.refsr_docs")

API_DIR = "reference/api"
API_INDEX = f"{API_DIR}/index.md"
SPEC_PAGE = "reference/spec.md"
PICTURE_DIR = "assets/generated"
MARKER = re.compile(r"<!-- refsr:([\w-]+) ?(.*?) -->")

_pictures_cache: dict[tuple[str, float], tuple[dict[str, bytes], str]] = {}
_state: dict[str, Any] = {}


def _expand_api_entry(items: list[Any], modules: list[str]) -> list[Any]:
    """The nav ``items`` with the entry pointing at the API index expanded into one page per module."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            ((title, value),) = item.items()
            if value == API_INDEX:
                item = {title: [API_INDEX, *({m: f"{API_DIR}/{m}.md"} for m in modules)]}
            elif isinstance(value, list):
                item = {title: _expand_api_entry(value, modules)}
        out.append(item)
    return out


def on_config(config: Any) -> Any:
    # Snippets (--8<-- "examples/...") are paths from the repository root, wherever mkdocs runs.
    snippets = config["mdx_configs"].get("pymdownx.snippets")
    if snippets is not None:
        snippets["base_path"] = [str(gen.ROOT)]
    _state["modules"] = gen.public_modules()
    if config["nav"]:
        config["nav"] = _expand_api_entry(config["nav"], list(_state["modules"]))
    return config


def _pictures() -> tuple[dict[str, bytes], str]:
    """The pictures as PNG bytes and the weights in words (cached per weights file, for ``mkdocs serve``)."""
    checkpoint = gen.picture_checkpoint(os.environ.get("REFSR_DOCS_CHECKPOINT"))
    key = (str(checkpoint), checkpoint.stat().st_mtime if checkpoint else 0.0)
    if key not in _pictures_cache:
        with tempfile.TemporaryDirectory() as tmp:
            paths, weights = gen.write_pictures(tmp, checkpoint)
            _pictures_cache.clear()
            _pictures_cache[key] = ({name: Path(p).read_bytes() for name, p in paths.items()}, weights)
    return _pictures_cache[key]


def on_files(files: Files, config: Any) -> Files:
    modules = _state.get("modules") or gen.public_modules()
    pictures, _state["weights"] = _pictures()
    generated = {
        SPEC_PAGE: gen.spec_reference(),
        API_INDEX: gen.api_index(modules),
        **{f"{API_DIR}/{module}.md": gen.api_page(module) for module in modules},
        **{f"{PICTURE_DIR}/{name}.png": data for name, data in pictures.items()},
    }
    for uri, content in generated.items():
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, uri, content=content))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    def replace(marker: re.Match[str]) -> str:
        name, args = marker.group(1), marker.group(2)
        if name == "pictures-weights":
            return _state.get("weights", "(unknown weights)")
        if name not in MARKERS:
            log.warning("refsr_docs: %s has an unknown marker %s", page.file.src_uri, marker.group(0))
            return marker.group(0)
        return MARKERS[name](args)

    return MARKER.sub(replace, markdown)
