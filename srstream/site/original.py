"""The camera's own stream kept beside the upscaled one (`keep_original = true`): every video packet, as the camera
sent it, stream-copied into segments NAME_..._orig_000.mkv, so that each upscaled segment's evidence can be checked
against what the camera really recorded. It runs in the decode thread (a packet tap) and never fails the camera:
a write error stops the copy with one log line.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import av

from srstream.video.sink import CLUSTERED
from srstream.video.stream import segment_list_of

log = logging.getLogger("srstream.site")


class OriginalRecorder:
    """A decoder's packet tap writing segments of `segment_time` seconds, cut at the camera's key frames. Matroska
    takes any codec a camera sends (H.264, HEVC, MJPEG) and stays playable up to its last cluster if killed."""

    def __init__(self, stem: Path, segment_time: float) -> None:
        self.stem, self.segment_time = stem, segment_time
        self.container: av.container.OutputContainer | None = None
        self.source_stream: av.video.stream.VideoStream | None = None
        self.out_stream: av.video.stream.VideoStream | None = None
        self.packets = 0
        self.failed = False
        self.series: list[tuple[Path, datetime]] = []  # each opening's segment list and when it started
        self._runs = 0

    def __call__(self, packet: av.Packet) -> None:
        if self.failed or packet.dts is None or packet.pts is None:
            return
        try:
            if packet.stream is not self.source_stream:  # the first packet, or a reconnect's new stream
                if not packet.is_keyframe:
                    return
                self._open(packet.stream)
            if self.container is None:  # closed (the run is over) while the decoder still sent packets
                return
            packet.stream = self.out_stream
            self.container.mux(packet)
            self.packets += 1
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            self.failed = True
            log.warning("srstream: %s: the original's copy stopped (%s)", self.stem.name, exc)
            self.close()

    def _open(self, stream: av.video.stream.VideoStream) -> None:
        self.close()
        # a reconnect starts a new series (its own first number) so that no segment is overwritten
        series = f"{self.stem}_orig_{self._runs:02d}" if self._runs else f"{self.stem}_orig"
        self._runs += 1
        listing = segment_list_of(Path(f"{series}.mkv"))
        options = {
            "segment_time": str(self.segment_time),
            "reset_timestamps": "1",
            "segment_format": "matroska",
            "segment_format_options": ":".join(f"{k}={v}" for k, v in CLUSTERED.items()),
            "segment_list": str(listing),
            "segment_list_type": "csv",
        }
        self.series.append((listing, datetime.now(UTC)))
        pattern = f"{series}_%03d.mkv"
        self.container = av.open(pattern, mode="w", format="segment", options=options)
        self.out_stream = self.container.add_stream_from_template(stream)
        self.source_stream = stream

    @property
    def writing(self) -> bool:
        return self.container is not None

    def close(self) -> None:
        """Finish the segment being written."""
        if self.container is not None:
            try:
                self.container.close()
            except (av.error.FFmpegError, OSError):
                pass
            self.container = None
