"""srstream/video/source.py: which kind of input a name is, how it is opened, and a new kind as one class."""

import av
import pytest

from srstream.video import source
from srstream.video.source import InputKind, VideoInputError, classify, is_live, is_video_input, open_input

from assets import CLIP


def test_input_kinds_by_name():
    assert classify("rtsp://cam/1").kind == "stream" and is_live("rtsp://cam/1")
    assert classify("frames/f_%04d.png").kind == "sequence" and not is_live("frames/f_%04d.png")
    assert classify("clip.mp4").kind == "file" and is_video_input("clip.mp4") and not is_video_input("photo.png")
    with pytest.raises(VideoInputError, match="no such file"):
        open_input("/nonexistent/clip.mp4")


def test_a_new_input_kind_is_one_class(monkeypatch):
    class Dash(InputKind):  # stands in for `-` (a pipe): here it reads the real clip
        kind = "pipe"

        @staticmethod
        def matches(name: str) -> bool:
            return name == "-"

        def open(self, timeout_s: float) -> av.container.InputContainer:
            return av.open(str(CLIP))

    monkeypatch.setattr(source, "INPUT_KINDS", (Dash, *source.INPUT_KINDS))
    assert classify("-").kind == "pipe" and is_video_input("-") and not is_live("-")
    with open_input("-") as container:
        assert container.streams.video[0].codec_context.width == 320
