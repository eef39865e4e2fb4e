"""The core: what turns names and specs into models.

- :mod:`~refsr_blocks.core.registry`: component kinds and components, by name;
- :mod:`~refsr_blocks.core.spec`: declarative specs (architectures, slots, presets, validation);
- :mod:`~refsr_blocks.core.build`: ``build_model``, ``create_component``, ``instantiate``;
- :mod:`~refsr_blocks.core.plugins` and :mod:`~refsr_blocks.core.hookspecs`: third-party packages;
- :mod:`~refsr_blocks.core.checkpoint`: ``save_model`` / ``load_model``;
- :mod:`~refsr_blocks.core.overrides`: the ``KEY=VALUE`` syntax of every command;
- :mod:`~refsr_blocks.core.errors`: the library's exceptions.

The public names are re-exported by :mod:`refsr_blocks`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("refsr-blocks")  # recorded in model files, shown by --version
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"
