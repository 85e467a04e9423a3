"""The video front door: files, image sequences and RTSP streams through the engine with PyAV (FFmpeg)."""

from srstream.video.pipeline import (
    Settings,
    Stats,
    iter_upscaled,
    output_name,
    upscale_many,
    upscale_video,
)
from srstream.video.sink import EncodeOptions

__all__ = ["EncodeOptions", "Settings", "Stats", "iter_upscaled", "output_name", "upscale_many", "upscale_video"]
