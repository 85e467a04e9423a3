"""The video front door: files, image sequences and RTSP streams through the engine with PyAV (FFmpeg)."""

from srstream.video.pipeline import (
    Stats,
    iter_upscaled,
    output_name,
    upscale_many,
    upscale_video,
)
from srstream.video.settings import EncodeOptions, Settings

__all__ = ["EncodeOptions", "Settings", "Stats", "iter_upscaled", "output_name", "upscale_many", "upscale_video"]
