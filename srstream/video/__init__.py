"""The video front door: files, image sequences and RTSP streams through the engine with PyAV (FFmpeg)."""
from srstream.video.pipeline import Stats, iter_upscaled, upscale_video
from srstream.video.sink import EncodeOptions

__all__ = ["EncodeOptions", "Stats", "iter_upscaled", "upscale_video"]
