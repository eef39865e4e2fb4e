"""Small functional operations shared by components: padding, flow resizing, warping."""

from . import flow, warp
from .flow import *  # noqa: F403 - the package re-exports each module's public names
from .warp import *  # noqa: F403

__all__ = [*flow.__all__, *warp.__all__]
