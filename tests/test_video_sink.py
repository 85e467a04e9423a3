"""srstream/video/sink.py: the output plan (pixel format, size, an encoder that opens here), decided once."""

import pytest

from srstream.video.colour import Colour
from srstream.video.settings import EncodeOptions
from srstream.video.sink import plan_output


def test_output_plan_rounds_for_the_pixel_format_and_keeps_10_bit():
    eight, ten = Colour(1, 1, 8), Colour(1, 1, 10)
    plan = plan_output(EncodeOptions(), eight, (401, 225))
    assert plan.pix_fmt == "yuv420p" and plan.size == (402, 226)
    assert plan_output(EncodeOptions(), ten, (640, 360)).pix_fmt == "yuv420p10le"
    assert plan_output(EncodeOptions(pix_fmt="yuv422p"), eight, (401, 225)).size == (402, 225)


def test_output_plan_falls_back_where_nvenc_cannot_open():
    plan = plan_output(EncodeOptions(codec="h264_nvenc", preset="p4"), Colour(1, 1, 8), (640, 360))
    if plan.options.codec == "h264_nvenc":
        pytest.skip("this machine has NVENC")
    assert plan.options.codec == "libx264" and plan.options.preset == "medium" and plan.pix_fmt == "yuv420p"
