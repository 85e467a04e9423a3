"""What the codec says about each frame: the quantiser of each block and the picture type.

The decoder exports them as side data (FFmpeg's VIDEO_ENC_PARAMS, asked for with the decoder option
`export_side_data=venc_params`): H.264 gives a QP per 16x16 macroblock, MPEG-2 and MPEG-4 part 2 a quantiser scale
per macroblock, VP9 a frame's quantiser index; HEVC and AV1 (dav1d) export nothing (README, "Compression facts").
Everything is brought to H.264's QP scale (0-51), where one step is about 12 % more quantiser step size. Where the
decoder says nothing (images, image sequences, other codecs, damaged side data), `estimated` guesses each block's QP
from the pixels (`training.qp_estimator`; `benchmarks/qp_estimate.py` measures it against the true QP of encodes).
A model that takes the QP sees it as one plane beside the frame: QP / 51, each block's value over its pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

QP_MAX = 51.0
BLOCK = 16  # side of the blocks a QP map is given on (H.264's macroblocks)
DECODER_OPTIONS = {"export_side_data": "venc_params"}  # set on a decoder's codec context before it decodes
DECODER = "decoder"
ESTIMATE = "estimate"
ASSUMED = "assumed"  # no decoder facts and no estimator: taken as clean
QP_WINDOW = 16  # frames a stream's QP maps are averaged over (QpAverage)


@dataclass(frozen=True)
class Compression:
    """One frame's compression: QP per 16x16 block on H.264's scale, its picture type, and where that came from
    ('decoder' or 'estimate')."""

    qp: np.ndarray  # (ceil(H/16), ceil(W/16)) float32
    picture: str = "?"  # 'I', 'P', 'B' or '?'
    source: str = DECODER

    @property
    def mean_qp(self) -> float:
        """The frame's mean QP."""
        return float(self.qp.mean())

    def plane(self, height: int, width: int) -> np.ndarray:
        """The model's input plane (height, width) float32 in [0, 1]: each block's QP / 51 over its pixels (the
        block grid scaled to the frame where the frame was resized after decoding)."""
        return qp_plane(self.qp, height, width)


def qp_plane(qp: np.ndarray, height: int, width: int) -> np.ndarray:
    """A per-block QP map as a (height, width) float32 plane in [0, 1]: each 16-px block's QP / 51 over its pixels
    where the map fits the frame's block grid, else the map stretched over the frame (a frame resized after
    decoding)."""
    if qp.shape == blocks_of(height, width):
        rows, cols = np.arange(height) // BLOCK, np.arange(width) // BLOCK
    else:
        rows = np.minimum((np.arange(height) * qp.shape[0]) // max(height, 1), qp.shape[0] - 1)
        cols = np.minimum((np.arange(width) * qp.shape[1]) // max(width, 1), qp.shape[1] - 1)
    return (np.clip(qp, 0, QP_MAX)[rows][:, cols] / QP_MAX).astype(np.float32)


def blocks_of(height: int, width: int) -> tuple[int, int]:
    """The QP map's shape for a frame of height x width."""
    return math.ceil(height / BLOCK), math.ceil(width / BLOCK)


def constant(qp: float, height: int, width: int, picture: str = "?", source: str = ESTIMATE) -> Compression:
    """A frame whose every block has QP `qp`."""
    return Compression(np.full(blocks_of(height, width), qp, np.float32), picture, source)


# --- from the decoder ---------------------------------------------------------------------------------------------


def _h264_scale(values: np.ndarray, codec_type: str) -> np.ndarray | None:
    """A quantiser map of `codec_type` on H.264's QP scale; None for a type not known."""
    values = values.astype(np.float32)
    if codec_type == "H264":
        return values
    if codec_type == "MPEG2":  # MPEG-1/2/4 part 2: a value proportional to the quantiser step (FFmpeg's export);
        return 6.0 + 6.0 * np.log2(np.maximum(values, 1.0))  # H.264's step doubles every 6 QP: 4 ~ QP 18, 16 ~ 30
    if codec_type == "VP9":  # quantiser index 0-255: libvpx's --crf 0-63 and its index run about 4:1 to QP
        return values / 4.0
    return None


def picture_type(frame) -> str:
    """'I', 'P', 'B' (or '?') for a decoded PyAV frame, across PyAV versions."""
    kind = frame.pict_type
    if isinstance(kind, int):  # PyAV 14+: the AVPictureType number
        return {1: "I", 2: "P", 3: "B"}.get(int(kind), "?")
    name = getattr(kind, "name", str(kind))
    return name[-1] if name and name[-1] in "IPB" else "?"


def enc_params(frame):
    """A decoded PyAV frame's VIDEO_ENC_PARAMS side data, or None. PyAV 18.1.1 made `frame.side_data` a mapping
    whose iteration gives the types, not the entries (18.1.0 and older gave the entries): both are read."""
    for item in frame.side_data:
        if str(getattr(item, "type", "")).endswith("VIDEO_ENC_PARAMS"):  # an entry
            return item
        if getattr(item, "name", None) == "VIDEO_ENC_PARAMS":  # a type: its entry is looked up
            return frame.side_data[item]
    return None


def from_decoder(frame) -> Compression | None:
    """The compression facts a decoded PyAV frame carries (None where it carries none, or they do not parse)."""
    try:
        params = enc_params(frame)
        if params is None:
            return None
        codec_type = getattr(params.codec_type, "name", str(params.codec_type))
        shape = blocks_of(frame.height, frame.width)
        try:
            raw = np.asarray(params.qp_map()) if params.nb_blocks else None
        except (RuntimeError, ValueError):  # blocks that do not tile the frame (VP9 segments): the frame's base QP
            raw = None
        if raw is None or raw.ndim != 2 or raw.size == 0:
            raw = np.full(shape, params.qp, np.float32)
        qp = _h264_scale(raw, codec_type)
        if qp is None or not np.isfinite(qp).all():
            return None
        if qp.shape != shape:  # another block size than 16 (MPEG-2 fields, say): brought onto the 16-px grid
            qp = qp_plane(qp, *shape) * QP_MAX
        return Compression(np.clip(qp, 0, QP_MAX).astype(np.float32), picture_type(frame), DECODER)
    except Exception:  # noqa: BLE001 - side data is the input's and may be anything: never fail a frame over it
        return None


class QpAverage:
    """A stream's QP maps averaged over its frames so far (a running mean, exponential once `window` frames are
    in), each frame's picture type kept. The QP jumps between I, P and B frames; a model given each frame's own
    QP changes its output with it and its error flickers. A file's first frames go through `seed` instead: they
    all get their mean, as a reader that looks `window` frames ahead gives them. A plain running mean is still
    settling there (the I frame's low QP first): on the x2 tune clips footage-qp-fast-x2's error flickered up to
    1.12x bicubic's with it, 0.93-0.99x given the clip's mean, at the same gains (README)."""

    def __init__(self, window: int = QP_WINDOW) -> None:
        self.window = window
        self.reset()

    def reset(self) -> None:
        """Forget the stream's past (a reconnect, a new frame size)."""
        self._mean: np.ndarray | None = None
        self._count = 0
        self.seeded = False

    def seed(self, facts: list[Compression | None]) -> list[Compression | None]:
        """A stream's first frames (up to `window`), each given their mean map, which the running mean then goes
        on from; None stays None. Frames of another size than the first go through the running mean instead."""
        self.seeded = True
        known = [f for f in facts if f is not None]
        if not known or any(f.qp.shape != known[0].qp.shape for f in known):
            return [self(f) for f in facts]
        self._mean = np.mean([f.qp for f in known], axis=0).astype(np.float32)
        self._count = min(len(known), self.window)
        return [None if f is None else replace(f, qp=self._mean) for f in facts]

    def __call__(self, fact: Compression | None) -> Compression | None:
        """This frame's facts with the QP map averaged with the earlier frames'; None (nothing known) stays None."""
        if fact is None:
            return None
        if self._mean is None or self._mean.shape != fact.qp.shape:
            self._mean, self._count = None, 0
        self._count = min(self._count + 1, self.window)
        mean = fact.qp if self._mean is None else self._mean + (fact.qp - self._mean) / self._count
        self._mean = mean
        return replace(fact, qp=mean.astype(np.float32, copy=False))


def averaged(facts: Iterable[Compression | None], window: int = QP_WINDOW) -> list[Compression | None]:
    """A clip's facts as the video front door gives a file's to a model that takes the QP: the first `window`
    frames their mean, the rest through the running mean that goes on from it."""
    facts = list(facts)
    average = QpAverage(window)
    return average.seed(facts[:window]) + [average(f) for f in facts[window:]]


# --- blind, from the pixels -----------------------------------------------------------------------------------------


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of (H, W, 3) RGB (uint8, or float in [0, 1]) as 0-255 uint8."""
    x = rgb.astype(np.float32)
    if rgb.dtype != np.uint8:
        x = x * 255.0
    return np.clip(x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114 + 0.5, 0, 255).astype(np.uint8)


def estimated(rgb: np.ndarray) -> Compression:
    """The blind estimate (training.qp_estimator: a QP for each block) as a frame's compression facts; where no
    estimator is shipped, the frame taken as clean (QP 0, source 'assumed'): a QP model then does what it does on
    clean input rather than smooth what it cannot see was compressed."""
    from training.qp_estimator import qp_map

    qp = qp_map(rgb)
    if qp is None:
        return constant(0.0, rgb.shape[0], rgb.shape[1], source=ASSUMED)
    return Compression(qp, "?", ESTIMATE)


def estimate_qp(rgb: np.ndarray) -> float:
    """A frame's mean QP on H.264's scale guessed from its pixels alone."""
    return estimated(rgb).mean_qp
