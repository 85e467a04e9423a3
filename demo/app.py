"""The Gradio page: three tabs (image, video, volume) over the engine, `srstream.video` and `medical`.

Every handler only moves data between the page and those APIs; errors become one readable message on the page.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import gradio as gr
import numpy as np
from PIL import Image

from srstream.defaults import video_model
from srstream.engine import Upscaler
from training.weights import shipped_models

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass
class PageConfig:
    """How the page is served: the engine backend, the longest clip and largest upload taken, where outputs go."""

    backend: str = "auto"
    video_limit_s: float = 20.0
    max_file_size: str = "200mb"
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="srstream-demo-")))


class Engines:
    """One Upscaler per model, made on first use and kept (loading is the slow part)."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.cache: dict[str, Upscaler] = {}

    def get(self, name: str) -> Upscaler:
        if name not in self.cache:
            self.cache[name] = Upscaler(name, backend=self.backend, batch_size=4)
        return self.cache[name]


def _rgb_models() -> list[str]:
    return [name for name, descriptor in shipped_models().items() if descriptor.channels == 3]


def _default(models: list[str], preferred: str) -> str | None:
    return preferred if preferred in models else (models[0] if models else None)


def _fail(message: str) -> NoReturn:
    raise gr.Error(message, duration=None)


SIZE_HINT = "empty: the model's scale; a factor (3, 2.5) as --outscale; WxH (1920x-1) as --size"


def _resolved(asked, width: int, height: int, scale: int) -> tuple[int, int]:
    """The output size for one input, or the page's error when it works out to nothing."""
    from srstream.output_size import OutputSizeError

    try:
        return asked.resolve(width, height, scale)
    except OutputSizeError as exc:
        _fail(str(exc))


def _output_size(text: str | None):
    """The page's output-size box, read as the CLI reads --outscale or --size."""
    from srstream.output_size import OutputSizeError, from_options

    text = (text or "").strip()
    try:
        if not text:
            return from_options(None, None)
        return from_options(None, text) if any(c in text for c in "x:X") else from_options(text, None)
    except OutputSizeError as exc:
        _fail(str(exc).replace("--outscale ", "Output size ").replace("--size ", "Output size "))


# --- image -------------------------------------------------------------------------------------------------------
def _read_rgb(path: str) -> np.ndarray:
    """The upload as 8-bit RGB (16-bit scaled down, grey repeated), or the page's error."""
    from srstream.images import ImageError, read_image

    try:
        image = read_image(path)
    except ImageError as exc:
        _fail(f"Not an image we can read: {Path(str(exc).split(':')[0]).name}")
    if image.dtype != np.uint8:
        image = (image / 257).round().astype(np.uint8)
    return image[..., :3] if image.shape[-1] >= 3 else np.repeat(image, 3, axis=2)


def _metrics(
    reference: str,
    sr: np.ndarray,
    bicubic: np.ndarray,
    size: tuple[int, int],
    native: tuple[int, int],
    model: str,
    scale: int,
) -> str:
    """A Markdown table of PSNR/SSIM (Y) of bicubic and the model against the reference."""
    from srstream.images import ImageError, read_image
    from training.metrics import psnr_y, ssim_y

    try:
        ref = read_image(reference)[..., :3]
    except ImageError:
        _fail("The reference is not an image we can read.")
    if size != native:
        # Another size than the model's own: the reference area-resized to it, as the CLI's tests measure.
        ref = np.asarray(Image.fromarray(ref).resize(size, Image.Resampling.BOX))
    h, w = min(ref.shape[0], sr.shape[0]), min(ref.shape[1], sr.shape[1])
    ref, a, b = ref[:h, :w], sr[:h, :w], bicubic[:h, :w]
    return (
        f"| | PSNR (Y) | SSIM (Y) |\n|---|---|---|\n"
        f"| bicubic | {psnr_y(b, ref, scale):.2f} dB | {ssim_y(b, ref, scale):.4f} |\n"
        f"| {model} | {psnr_y(a, ref, scale):.2f} dB | {ssim_y(a, ref, scale):.4f} |"
    )


def image_tab(engines: Engines, settings: PageConfig) -> None:
    """The image tab: one image upscaled, shown beside bicubic, with PSNR/SSIM against an optional reference."""
    from srstream.images import write_image
    from training.evaluate import bicubic_upscale

    def run(path: str | None, model: str, reference: str | None, size_text: str | None = None):
        if not path:
            _fail("Upload an image first.")
        asked = _output_size(size_text)
        rgb = _read_rgb(path)
        up = engines.get(model)
        size = _resolved(asked, rgb.shape[1], rgb.shape[0], up.scale)
        sr = up.upscale(rgb, size)
        bicubic = bicubic_upscale(rgb, up.scale)
        if bicubic.shape[:2] != sr.shape[:2]:
            bicubic = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))
        out = settings.workdir / f"{Path(path).stem}_{size[0]}x{size[1]}.png"
        write_image(out, sr)
        native = (rgb.shape[1] * up.scale, rgb.shape[0] * up.scale)
        metrics = _metrics(reference, sr, bicubic, size, native, model, up.scale) if reference else ""
        summary = f"{rgb.shape[1]}x{rgb.shape[0]} -> {sr.shape[1]}x{sr.shape[0]} ({model} on {up.label})"
        return (bicubic, sr), str(out), summary, metrics

    with gr.Tab("Image", id="image"):
        with gr.Row():
            with gr.Column():
                # A File, not an Image: Gradio's Image would fail on a bad upload before our clear message.
                source = gr.File(
                    label="Low-resolution image (PNG, JPEG, TIFF)", elem_id="image-in", file_types=["image"]
                )
                model = gr.Dropdown(
                    _rgb_models(), value=_default(_rgb_models(), "srresnet-x4"), label="Model", elem_id="image-model"
                )
                reference = gr.File(
                    label="High-resolution reference (optional, for PSNR/SSIM)",
                    elem_id="image-ref",
                    file_types=["image"],
                )
                size_box = gr.Textbox(label="Output size", placeholder=SIZE_HINT, elem_id="image-size-in")
                button = gr.Button("Upscale", variant="primary", elem_id="image-run")
            with gr.Column():
                slider = gr.ImageSlider(label="Bicubic | model", elem_id="image-slider", type="numpy")
                size = gr.Textbox(label="Size", elem_id="image-size")
                download = gr.File(label="Download", elem_id="image-download")
                metrics = gr.Markdown(elem_id="image-metrics")
        gr.Examples([[str(EXAMPLES / "foreman.png")]], inputs=[source])
        button.click(
            run, [source, model, reference, size_box], [slider, download, size, metrics], api_name="upscale_image"
        )


# --- video -------------------------------------------------------------------------------------------------------
def video_tab(engines: Engines, settings: PageConfig) -> None:
    import av

    from srstream.video import upscale_video
    from srstream.video.settings import EncodeOptions, Settings
    from srstream.video.source import VideoInputError, open_input

    def run(path: str | None, model: str, size_text: str | None = None, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
        if not path:
            _fail("Upload a video first.")
        asked = _output_size(size_text)
        try:
            with open_input(path) as container:
                duration = container.duration / av.time_base if container.duration else None
        except VideoInputError:
            _fail(f"Not a video we can read: {Path(path).name}")
        if duration and duration > settings.video_limit_s:
            _fail(f"The clip is {duration:.1f} s long; this demo takes up to {settings.video_limit_s:.0f} s.")
        out = settings.workdir / f"{Path(path).stem}_{model}.mp4"
        try:
            run = Settings(options=EncodeOptions(preset="veryfast"), duration=settings.video_limit_s, output_size=asked)
            stats = upscale_video(path, out, engines.get(model), run, overwrite=True, progress=True)
        except (VideoInputError, ValueError) as exc:
            _fail(f"Could not upscale the video: {str(exc).split(': ', 1)[-1]}")
        summary = (
            f"{stats.frames_out} frames, {stats.size_in[0]}x{stats.size_in[1]} -> "
            f"{stats.size_out[0]}x{stats.size_out[1]}, {stats.fps:.2f} fps on {stats.backend} "
            f"{stats.precision}; "
            f"audio: {', '.join(stats.streams_copied + stats.streams_reencoded) or 'none'}"
        )
        return str(out), str(out), summary

    with gr.Tab("Video", id="video"):
        with gr.Row():
            with gr.Column():
                source = gr.Video(label=f"Short clip (up to {settings.video_limit_s:.0f} s)", elem_id="video-in")
                default = _default(_rgb_models(), video_model(settings.backend))
                model = gr.Dropdown(_rgb_models(), value=default, label="Model", elem_id="video-model")
                size_box = gr.Textbox(label="Output size", placeholder=SIZE_HINT, elem_id="video-size-in")
                button = gr.Button("Upscale", variant="primary", elem_id="video-run")
            with gr.Column():
                result = gr.Video(label="Upscaled", elem_id="video-out")
                download = gr.File(label="Download", elem_id="video-download")
                summary = gr.Textbox(label="Summary", elem_id="video-summary")
        gr.Examples([[str(EXAMPLES / "vtest_320x180.mp4")]], inputs=[source])
        button.click(run, [source, model, size_box], [result, download, summary], api_name="upscale_video")


# --- volumes -----------------------------------------------------------------------------------------------------
PLANES = {"axial": 2, "coronal": 1, "sagittal": 0}
AUTO = "auto (by the voxels, as srmed)"


def _slice(volume_data: np.ndarray, plane: str, position: float, window: tuple[float, float]) -> np.ndarray:
    axis = PLANES[plane]
    index = round(position * (volume_data.shape[axis] - 1))
    image = np.take(volume_data, index, axis=axis)
    lo, hi = window
    return np.rot90((np.clip((image - lo) / max(hi - lo, 1e-9), 0, 1) * 255).astype(np.uint8))


def _same_size(before: np.ndarray, after: np.ndarray, long_side: int = 384) -> tuple[np.ndarray, np.ndarray]:
    """Both slices on one display grid (nearest neighbour, so nothing is smoothed for show): the input's voxels
    appear at their true size beside the output's, and a small slice is not a thumbnail."""
    factor = max(1, long_side // max(after.shape))
    size = (after.shape[1] * factor, after.shape[0] * factor)
    return (
        np.asarray(Image.fromarray(before).resize(size, Image.Resampling.NEAREST)),
        np.asarray(Image.fromarray(after).resize(size, Image.Resampling.NEAREST)),
    )


def _volume_task(path: str, workdir: Path):
    """The input an upload holds, as srmed finds it: a file one of the formats reads, or a .zip of a DICOM series."""
    from medical import formats
    from medical.discover import discover

    if formats.claiming(Path(path)) is not None:
        return discover([path])[0]
    if zipfile.is_zipfile(path):
        folder = Path(tempfile.mkdtemp(dir=workdir))
        with zipfile.ZipFile(path) as archive:
            archive.extractall(folder)
        return discover([str(folder)])[0]
    _fail(f"{Path(path).name}: upload a .nii/.nii.gz volume or a .zip of one DICOM series")


def _upscale_volume(task, job, engines):
    """srmed's own run of one input (every volume of a time series): its report, and the first volume before and
    after, read back from what was written."""
    from medical import formats
    from medical.model_choice import Engines
    from medical.run import process

    report = process(task, job, Engines(job, engines))
    index = job.volume or 0
    before = task.open().read(index)
    written = formats.by_name(report["format"]).open(Path(report["output"]), None)
    return report, before, written.read(0 if job.volume is not None else index)


def _volume_index(text: str | float | None) -> int | None:
    """The volume box: empty for every volume, else a whole number from 0 (a one-line message otherwise)."""
    text = str(text).strip() if text is not None else ""
    if not text:
        return None
    if not text.isdigit():
        _fail(f"Volume {text!r}: give a whole number from 0, or leave it empty for every volume.")
    return int(text)


def _download(output: str) -> str:
    """The file to download: the NIfTI, or the derived DICOM series zipped."""
    return shutil.make_archive(output, "zip", output) if Path(output).is_dir() else output


def _volume_view(state, plane: str, position: float):
    if not state:
        return None, None
    return _same_size(
        _slice(state["before"], plane, position, state["window"]),
        _slice(state["after"], plane, position, state["window"]),
    )


def _volume_handler(engines: Engines, settings: PageConfig):
    """The volume tab's handler: an upload through srmed's own run, the first volume before and after."""

    def run(
        path: str | None,
        model: str,
        mode: str,
        axis="auto",
        spacing: float | None = None,
        volume: str | None = None,
        progress=gr.Progress(track_tqdm=True),  # noqa: B008 - Gradio's way to ask for a progress bar
    ):
        from medical.job import VolumeJob

        if not path:
            _fail("Upload a volume first.")
        try:
            task = _volume_task(path, settings.workdir)
            job = VolumeJob(
                output=Path(tempfile.mkdtemp(dir=settings.workdir)),
                mode=mode,
                model=None if model == AUTO else model,
                spacing=spacing or None,
                axis=None if axis == "auto" else int(axis),
                backend=settings.backend,
                batch=4,
                volume=_volume_index(volume),
                self_supervised="off",
                quiet=True,
            )
            report, before, after = _upscale_volume(task, job, engines.cache)
        except ValueError as exc:  # VolumeError included
            _fail(str(exc).split("/")[-1])
        state = {
            "before": before.data.astype(np.float32),
            "after": after.data.astype(np.float32),
            "window": report["intensity_window"],
        }
        series = f"{report['volumes']} volumes (showing {job.volume or 0}); " if report["volumes"] > 1 else ""
        geometry = (
            f"{series}shape {before.shape} -> {after.shape}; voxel "
            f"{' x '.join(f'{v:.3f}' for v in before.spacing)} mm -> "
            f"{' x '.join(f'{v:.3f}' for v in after.spacing)} mm; {report['mode']} with {report['model']} "
            f"on {report['backend']} ({report['mode_reason']})"
        )
        return state, _download(report["output"]), geometry, *_volume_view(state, "axial", 0.5)

    return run


def medical_tab(engines: Engines, settings: PageConfig) -> None:
    """The volume tab: a NIfTI file or a zipped DICOM series upscaled in-plane or through-plane, before and after."""

    run = _volume_handler(engines, settings)
    with gr.Tab("Volume", id="volume"):
        state = gr.State()
        with gr.Row():
            with gr.Column():
                source = gr.File(
                    label="NIfTI (.nii, .nii.gz) or a .zip of a DICOM series",
                    elem_id="med-in",
                    file_types=[".nii", ".gz", ".zip"],
                )
                model = gr.Dropdown([AUTO, *sorted(shipped_models())], value=AUTO, label="Model", elem_id="med-model")
                mode = gr.Radio(
                    ["auto", "in-plane", "through-plane"],
                    value="auto",
                    elem_id="med-mode",
                    label="Mode (auto: through-plane where the slices are thick, as srmed)",
                )
                axis = gr.Radio(
                    ["auto", 0, 1, 2],
                    value="auto",
                    label="Slice axis (voxel axis, as srmed --axis)",
                    elem_id="med-axis",
                )
                spacing = gr.Number(
                    label="Through-plane: target spacing in mm (as srmed --spacing; empty: about the in-plane spacing)",
                    value=None,
                    minimum=0,
                    elem_id="med-spacing",
                )
                volume = gr.Textbox(
                    label="Time series: only this volume (as srmed --volume; empty: all)",
                    value="",
                    placeholder="all",
                    elem_id="med-volume",
                )
                button = gr.Button("Upscale", variant="primary", elem_id="med-run")
                geometry = gr.Textbox(label="Geometry", elem_id="med-geometry")
                download = gr.File(label="Download", elem_id="med-download")
            with gr.Column():
                plane = gr.Radio(list(PLANES), value="axial", label="Plane", elem_id="med-plane")
                position = gr.Slider(0, 1, value=0.5, step=0.01, label="Slice", elem_id="med-slice")
                with gr.Row():
                    before = gr.Image(label="Before", elem_id="med-before", type="numpy")
                    after = gr.Image(label="After", elem_id="med-after", type="numpy")
        button.click(
            run,
            [source, model, mode, axis, spacing, volume],
            [state, download, geometry, before, after],
            api_name="upscale_volume",
        )
        plane.change(_volume_view, [state, plane, position], [before, after], api_visibility="private")
        position.change(_volume_view, [state, plane, position], [before, after], api_visibility="private")


def build(settings: PageConfig | None = None) -> gr.Blocks:
    """The whole page."""
    settings = settings or PageConfig()
    engines = Engines(settings.backend)
    with gr.Blocks(title="srstream") as app:
        gr.Markdown(
            f"# srstream\nSRGAN super-resolution for images, video and MRI/CT volumes (backend: {settings.backend})."
        )
        with gr.Tabs():
            image_tab(engines, settings)
            video_tab(engines, settings)
            medical_tab(engines, settings)
    app.queue(default_concurrency_limit=1, max_size=16)
    return app
