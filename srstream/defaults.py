"""Which shipped model runs when `-m` is not given: the pick of the written rule (`srstream.default_rule`) over the
shipped models' measured rows, never a name written here.

Video: the conditions are the card rows `compressed_*` (x4) and `compressed_x2_*` (x2) of
`benchmarks/compressed_video.py`: each CRF and bitrate, mean gain over bicubic and the worst clip's. The candidates
are the shipped RGB models measured at that scale (an x4 model at x2 has its output resampled, as --outscale 2
does); on a CPU only those that cost at most `CPU_COST` times the cheapest (their benchmark fps), on a GPU all.
Images: the conditions are the gains over bicubic on Set5, Set14 and their LR as JPEG (`benchmarks/images.py`), the
candidates every single-frame RGB model of the scale.
"""

from __future__ import annotations

from srstream import backends
from srstream.default_rule import MARGIN_DB, Standing, Table, eligible, pick, shortfalls
from training.descriptor import Evaluation, ModelDescriptor, Restores
from training.weights import shipped_models

SCALE = 4  # the scale of the default models where the output size does not ask for another
CPU_COST = 1.3  # on a CPU, a default costs at most this many times the cheapest measured video model
FALLBACK = "fast-x4"  # a tree whose cards carry no benchmark rows
IMAGE_SETS = ("Set5", "Set14")
IMAGE_GAINS = ("Set5_gain", "Set14_gain")
VIDEO_PREFIX, JPEG_PREFIX = "compressed_", "jpeg_"


def on_accelerator(backend: str = "auto", precision: str = "auto") -> bool:
    """Whether `backend` (resolved as the engine will resolve it) runs on a GPU; False where it cannot run here,
    so that the engine reports that itself."""
    try:
        return backends.backend_type(backends.resolve(backend, precision)).accelerator
    except backends.BackendUnavailable:
        return False


def _rgb(models: dict[str, ModelDescriptor], scale: int) -> dict[str, ModelDescriptor]:
    return {
        n: d
        for n, d in models.items()
        if d.scale == scale and d.channels == 3 and d.restores in (Restores.IMAGE, Restores.FRAMES)
    }


def _prefix(scale: int) -> str:
    return VIDEO_PREFIX if scale == SCALE else f"{VIDEO_PREFIX}x{scale}_"


def _video_rows(descriptor: ModelDescriptor, scale: int) -> dict[str, Evaluation]:
    """A model's compressed-footage rows at `scale` (its output resampled where its own scale is another), by
    condition ('crf28', 'kbps256')."""
    prefix = _prefix(scale)
    return {
        e.name[len(prefix) :]: e
        for e in descriptor.evaluations
        if e.name.startswith(prefix)
        and e.gain_db is not None
        and (scale != SCALE or not e.name.startswith(f"{VIDEO_PREFIX}x"))
    }


def affordable(fps: dict[str, float | None]) -> set[str]:
    """The models a CPU default may be: those within CPU_COST of the fastest measured (all where none is)."""
    fastest = max((f for f in fps.values() if f), default=None)
    return {n for n, f in fps.items() if fastest is None or (f is not None and f * CPU_COST >= fastest)}


def video_table(
    scale: int = SCALE, accelerator: bool = False, models: dict[str, ModelDescriptor] | None = None
) -> Table:
    """The rule's table for video at `scale`: each candidate's compressed-footage rows (mean and worst-clip gain)."""
    shipped = shipped_models() if models is None else models
    rows = {
        n: _video_rows(d, scale)
        for n, d in shipped.items()
        if d.channels == 3 and d.restores in (Restores.IMAGE, Restores.FRAMES)
    }
    rows = {n: r for n, r in rows.items() if r}
    if not accelerator:
        speeds = {n: [e.fps for e in r.values() if e.fps] for n, r in rows.items()}
        keep = affordable({n: sum(s) / len(s) if s else None for n, s in speeds.items()})
        rows = {n: r for n, r in rows.items() if n in keep}
    return {
        n: {c: Standing(e.gain_db, e.worst_gain_db, e.flicker_ratio) for c, e in r.items() if e.gain_db is not None}
        for n, r in rows.items()
    }


def image_table(scale: int = SCALE, models: dict[str, ModelDescriptor] | None = None) -> Table:
    """The rule's table for images: each single-frame RGB model's gain over bicubic on Set5, Set14 and their LR as
    JPEG (`benchmarks/images.py`: mean and worst image); where a card has none of those rows, its Set5/Set14
    Y-PSNR (the same bicubic for every model, so PSNR ranks as gain does)."""
    table: Table = {}
    for name, d in _rgb(shipped_models() if models is None else models, scale).items():
        if d.restores is not Restores.IMAGE:
            continue
        row = {
            e.name: Standing(e.gain_db, e.worst_gain_db)
            for e in d.evaluations
            if (e.name in IMAGE_GAINS or e.name.startswith(JPEG_PREFIX)) and e.gain_db is not None
        }
        if not row:
            row = {e.name: Standing(e.psnr_y) for e in d.evaluations if e.name in IMAGE_SETS and e.psnr_y is not None}
        if row:
            table[name] = row
    return table


def video_model(backend: str = "auto", precision: str = "auto", scale: int = SCALE) -> str:
    """The video default at `scale` for the hardware `backend` runs on (at SCALE where no model of `scale` has
    the benchmark's rows; FALLBACK where none has)."""
    accelerator = on_accelerator(backend, precision)
    return pick(video_table(scale, accelerator)) or pick(video_table(SCALE, accelerator)) or FALLBACK


def image_model(scale: int = SCALE) -> str:
    """The image default at `scale` (at SCALE where none of that scale is shipped)."""
    return pick(image_table(scale)) or pick(image_table(SCALE)) or FALLBACK


def has_scale(scale: int) -> bool:
    """Whether a video default of `scale` can be picked (some shipped model has the rule's figures there)."""
    return bool(video_table(scale, accelerator=True))


def why(model: str, video: bool = True, accelerator: bool = False, scale: int = SCALE) -> str:
    """The log line's note on a default model: the rule that chose it, or why it is only the closest."""
    if not video:
        return "the image default: the rule's pick on Set5, Set14 and JPEG'd photos"
    what = ("the video default" if scale == SCALE else f"the x{scale} video default") + (
        " on a GPU" if accelerator else " on a CPU"
    )
    table = video_table(scale, accelerator=accelerator)
    if model not in table:
        return f"{what}: no shipped model has compressed-footage figures"
    if model in eligible(table):
        return (
            f"{what}: within {MARGIN_DB} dB of the best at every CRF and bitrate on real compressed footage, "
            "steady, and the best worst clip"
        )
    return (
        f"{what}: no model is within {MARGIN_DB} dB of the best everywhere; this one trails least "
        f"({'; '.join(shortfalls(table, model))})"
    )


def verdict_lines() -> list[str]:
    """The rule's verdicts as `srstream models` prints them: each default, then where each other model loses."""
    tables = {"video on a CPU": video_table(), "video on a GPU": video_table(accelerator=True), "images": image_table()}
    if has_scale(2):
        tables.update({"x2 video on a CPU": video_table(2), "x2 video on a GPU": video_table(2, accelerator=True)})
    lines = [f"default for {what}: {pick(table) or FALLBACK}" for what, table in tables.items()]
    for what, table in tables.items():
        chosen = pick(table)
        for model in table:
            lost = shortfalls(table, model)
            if model != chosen and lost:
                lines.append(f"  {model} is not the default for {what}: {'; '.join(lost)}")
    unmeasured = [n for n, d in _rgb(shipped_models(), SCALE).items() if n not in tables["video on a GPU"]]
    lines += [f"  {n} is not a video default: no figures on the compressed-footage benchmark" for n in unmeasured]
    return lines
