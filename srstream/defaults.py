"""Which shipped model runs when `-m` is not given. Images keep the model judged on Set5/Set14; video gets the one
that serves compressed camera footage best in `benchmarks/compressed_video.py` (x4 area downscale, libx264 at CRF
18-35), which is also cheap enough for a CPU: the same choice on every machine, so no hardware probe is needed."""
from __future__ import annotations

from training.weights import shipped_models

IMAGE_MODEL = "srresnet-x4"
VIDEO_MODEL = "camera-fast-x4"
VIDEO_FALLBACK = "fast-x4"  # the best bicubic-trained model on compressed footage, for a tree without the above


def video_model() -> str:
    """The video default: camera-fast-x4 where it is shipped, else fast-x4."""
    return VIDEO_MODEL if VIDEO_MODEL in shipped_models() else VIDEO_FALLBACK


def why(model: str) -> str:
    """The log line's note on a default model."""
    if model == IMAGE_MODEL:
        return "the image default"
    return "the video default: best on compressed footage"
