"""Which shipped model runs when `-m` is not given. Images keep the model judged on Set5/Set14. Video gets the model
that serves compressed camera footage best in `benchmarks/compressed_video.py` (x4 area downscale, libx264 at CRF
18-35) among those the hardware found runs in real time: on a GPU (the backend `auto` or `--backend` picks runs
on one) the default-size camera model, on a CPU the fast one (the larger model takes ~2.3 s a frame on a 2-core
AVX2 CPU, so README command 1 would take minutes instead of seconds)."""
from __future__ import annotations

from srstream import backends
from training.weights import shipped_models

IMAGE_MODEL = "srresnet-x4"
VIDEO_MODEL = "camera-fast-x4"  # on a CPU
VIDEO_MODEL_GPU = "camera-srresnet-x4"  # where the engine runs on a GPU
VIDEO_FALLBACK = "fast-x4"  # the best bicubic-trained model on compressed footage, for a tree without the above


def on_accelerator(backend: str = "auto", precision: str = "auto") -> bool:
    """Whether `backend` (resolved as the engine will resolve it) runs on a GPU; False where it cannot run here,
    so that the engine reports that itself."""
    try:
        return backends.backend_type(backends.resolve(backend, precision)).accelerator
    except backends.BackendUnavailable:
        return False


def video_model(backend: str = "auto", precision: str = "auto") -> str:
    """The video default for the hardware `backend` runs on: camera-srresnet-x4 on a GPU, camera-fast-x4 on a CPU
    (fast-x4 where the camera models are not shipped)."""
    shipped = shipped_models()
    if VIDEO_MODEL_GPU in shipped and on_accelerator(backend, precision):
        return VIDEO_MODEL_GPU
    return VIDEO_MODEL if VIDEO_MODEL in shipped else VIDEO_FALLBACK


def why(model: str) -> str:
    """The log line's note on a default model."""
    if model == IMAGE_MODEL:
        return "the image default"
    if model == VIDEO_MODEL_GPU:
        return "the video default on a GPU: best on compressed footage"
    return "the video default on a CPU: best on compressed footage at a CPU's speed"
