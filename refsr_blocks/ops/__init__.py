"""Small functional operations shared by components: padding, flow resizing, warping."""

from .flow import crop_to, end_point_error, flow_pyramid, flow_to_color, level_size, pad_to_multiple, resize_flow
from .warp import backward_warp, pixel_grid

__all__ = [
    "backward_warp",
    "crop_to",
    "end_point_error",
    "flow_pyramid",
    "flow_to_color",
    "level_size",
    "pad_to_multiple",
    "pixel_grid",
    "resize_flow",
]
