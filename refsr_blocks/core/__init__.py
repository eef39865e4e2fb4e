"""The core: what turns names and specs into models (the registry, specs, the builder, plugins,
checkpoints, settings validation and the library's errors); :mod:`refsr_blocks` re-exports the public names."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("refsr-blocks")  # recorded in model files, shown by --version
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"
