"""Which shipped model runs when `-m` is not given: the pick of the written rule (`srstream.default_rule`) over the
shipped models' measured rows, never a name written here.

Video: the conditions are the card rows `compressed_*` (`benchmarks/compressed_video.py`: each CRF and bitrate, mean
gain over bicubic and the worst clip's). The candidates are the shipped RGB models of the asked scale that take
video; on a CPU only those that cost at most `CPU_COST` times the cheapest (their benchmark fps), on a GPU all.
Images: the conditions are Set5 and Set14 (Y-PSNR) and the `jpeg_*` rows, the candidates every single-frame RGB
model of the scale.
"""
from __future__ import annotations

from srstream import backends
from srstream.default_rule import MARGIN_DB, Standing, Table, eligible, pick, shortfalls
from training.descriptor import ModelDescriptor, Restores
from training.weights import shipped_models

SCALE = 4  # the scale of the default models where the output size does not ask for another
CPU_COST = 1.3  # on a CPU, a default costs at most this many times the cheapest measured video model
FALLBACK = "fast-x4"  # a tree whose cards carry no benchmark rows
IMAGE_SETS = ("Set5", "Set14")
VIDEO_PREFIX, JPEG_PREFIX = "compressed_", "jpeg_"


def on_accelerator(backend: str = "auto", precision: str = "auto") -> bool:
    """Whether `backend` (resolved as the engine will resolve it) runs on a GPU; False where it cannot run here,
    so that the engine reports that itself."""
    try:
        return backends.backend_type(backends.resolve(backend, precision)).accelerator
    except backends.BackendUnavailable:
        return False


def _rgb(models: dict[str, ModelDescriptor], scale: int) -> dict[str, ModelDescriptor]:
    return {n: d for n, d in models.items() if d.scale == scale and d.channels == 3
            and d.restores in (Restores.IMAGE, Restores.FRAMES)}


def _fps(descriptor: ModelDescriptor) -> float | None:
    rows = [e.fps for e in descriptor.evaluations if e.name.startswith(VIDEO_PREFIX) and e.fps]
    return sum(rows) / len(rows) if rows else None


def affordable(fps: dict[str, float | None]) -> set[str]:
    """The models a CPU default may be: those within CPU_COST of the fastest measured (all where none is)."""
    fastest = max((f for f in fps.values() if f), default=None)
    return {n for n, f in fps.items() if fastest is None or (f is not None and f * CPU_COST >= fastest)}


def video_table(scale: int = SCALE, accelerator: bool = False,
                models: dict[str, ModelDescriptor] | None = None) -> Table:
    """The rule's table for video: each candidate's compressed-footage rows (mean and worst-clip gain)."""
    candidates = {n: d for n, d in _rgb(shipped_models() if models is None else models, scale).items()
                  if any(e.name.startswith(VIDEO_PREFIX) and e.gain_db is not None for e in d.evaluations)}
    if not accelerator:
        keep = affordable({n: _fps(d) for n, d in candidates.items()})
        candidates = {n: d for n, d in candidates.items() if n in keep}
    return {n: {e.name[len(VIDEO_PREFIX):]: Standing(e.gain_db, e.worst_gain_db) for e in d.evaluations
                if e.name.startswith(VIDEO_PREFIX) and e.gain_db is not None} for n, d in candidates.items()}


def image_table(scale: int = SCALE, models: dict[str, ModelDescriptor] | None = None) -> Table:
    """The rule's table for images: Set5/Set14 Y-PSNR (the same bicubic for every model, so PSNR ranks as gain
    does) and the JPEG'd-photo rows, for every single-frame RGB model of `scale`."""
    table: Table = {}
    for name, d in _rgb(shipped_models() if models is None else models, scale).items():
        if d.restores is not Restores.IMAGE:
            continue
        row = {e.name: Standing(e.psnr_y, e.worst_gain_db) for e in d.evaluations
               if e.name in IMAGE_SETS and e.psnr_y is not None}
        row.update({e.name: Standing(e.gain_db, e.worst_gain_db) for e in d.evaluations
                    if e.name.startswith(JPEG_PREFIX) and e.gain_db is not None})
        if row:
            table[name] = row
    return table


def video_model(backend: str = "auto", precision: str = "auto", scale: int = SCALE) -> str | None:
    """The video default at `scale` for the hardware `backend` runs on; None where no model of that scale is
    shipped with benchmark rows (at SCALE: FALLBACK)."""
    chosen = pick(video_table(scale, on_accelerator(backend, precision)))
    return chosen if chosen or scale != SCALE else FALLBACK


def image_model(scale: int = SCALE) -> str:
    """The image default at `scale` (at SCALE where none of that scale is shipped)."""
    return pick(image_table(scale)) or pick(image_table(SCALE)) or FALLBACK


def why(model: str, video: bool = True, accelerator: bool = False) -> str:
    """The log line's note on a default model: the rule that chose it, or why it is only the closest."""
    if not video:
        return "the image default: the rule's pick on Set5, Set14 and JPEG'd photos"
    where = "a GPU" if accelerator else "a CPU"
    table = video_table(accelerator=accelerator)
    if model not in table:
        return f"the video default on {where}: no shipped model has compressed-footage figures"
    if model in eligible(table):
        return (f"the video default on {where}: within {MARGIN_DB} dB of the best at every CRF on real compressed "
                "footage, and the best worst clip")
    return (f"the video default on {where}: no model is within {MARGIN_DB} dB of the best at every CRF; this one "
            f"trails least ({'; '.join(shortfalls(table, model))})")


def losses(table: Table, model: str) -> list[str]:
    """Where `model` loses under the rule in `table` (for its card and `srstream models`)."""
    return shortfalls(table, model) if model in table else []


def verdict_lines() -> list[str]:
    """The rule's verdicts as `srstream models` prints them: each default, then where each other model loses."""
    tables = {"video on a CPU": video_table(), "video on a GPU": video_table(accelerator=True),
              "images": image_table()}
    lines = [f"default for {what}: {pick(table) or FALLBACK}" for what, table in tables.items()]
    for what, table in tables.items():
        chosen = pick(table)
        for model in table:
            lost = shortfalls(table, model)
            if model != chosen and lost:
                lines.append(f"  {model} is not the default for {what}: {'; '.join(lost)}")
    return lines
