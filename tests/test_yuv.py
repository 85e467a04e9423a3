"""YUV planes <-> RGB in torch (what runs on the engine's device) against swscale's accurate conversion, on real
8-bit and 10-bit frames; plane packing round trips; NVENC asked for where there is none."""
import shutil
import subprocess
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from srstream.images import read_image
from srstream.video.colour import Colour, colour_of
from srstream.video.yuv import layout_of, planes_to_rgb, read_planes, rgb_to_planes, write_frame

from assets import CLIP, DATA, EXAMPLES, SAMPLE

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg CLI makes the 10-bit clip")


def swscale(frame: av.VideoFrame, pix_fmt: str, args: str) -> av.VideoFrame:
    """swscale's accurate path (as `ffmpeg -sws_flags accurate_rnd+full_chroma_int`), through a PyAV filter graph."""
    graph = av.filter.Graph()
    src = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                           time_base=Fraction(1, 25))
    scale = graph.add("scale", f"{args}:flags=bicubic+accurate_rnd+full_chroma_int")
    fmt, sink = graph.add("format", pix_fmt), graph.add("buffersink")
    src.link_to(scale)
    scale.link_to(fmt)
    fmt.link_to(sink)
    graph.configure()
    frame.pts = 0
    graph.push(frame)
    return graph.pull()


def decoded(path, count=3):
    with av.open(str(path)) as c:
        return [f for _, f in zip(range(count), c.decode(video=0))]


def _to_rgb8(frame: av.VideoFrame) -> np.ndarray:
    colour = colour_of(frame)
    layout = layout_of(frame.format.name, frame.width, frame.height)
    planes = [torch.from_numpy(p.astype(np.int32))[None] for p in read_planes(frame, layout)]
    return (planes_to_rgb(planes, layout, colour)[0].permute(1, 2, 0).numpy() * 255).round().astype(int)


@pytest.fixture(scope="module")
def ten_bit_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("yuv") / "ten.mkv"
    if shutil.which("ffmpeg"):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(SAMPLE), "-t", "0.2", "-pix_fmt", "yuv420p10le",
                        "-c:v", "libx264", "-crf", "12", str(path)], check=True, timeout=120)
    return path


def test_real_8_bit_frames_to_rgb_within_one_level_of_swscale():
    for frame in decoded(SAMPLE):
        colour = colour_of(frame)
        assert (colour.colorspace, colour.color_range, colour.bits) == (1, 1, 8)  # BT.709, limited
        ref = swscale(frame, "rgb24", "in_color_matrix=bt709:in_range=tv:out_range=pc").to_ndarray().astype(int)
        diff = np.abs(_to_rgb8(frame) - ref)
        assert diff.max() <= 1 and diff.mean() < 0.05


@needs_ffmpeg
def test_real_10_bit_frames_to_rgb_within_one_level_of_swscale(ten_bit_clip):
    for frame in decoded(ten_bit_clip):
        assert frame.format.name == "yuv420p10le" and colour_of(frame).bits == 10
        ref = swscale(frame, "rgb24", "in_color_matrix=bt709:in_range=tv:out_range=pc").to_ndarray().astype(int)
        diff = np.abs(_to_rgb8(frame) - ref)
        assert diff.max() <= 1 and diff.mean() < 0.05


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv420p10le", "nv12", "yuv422p", "yuv444p"])
def test_rgb_to_planes_against_swscale_on_a_real_image(pix_fmt):
    image = read_image(EXAMPLES / "foreman.png")  # full-resolution colour: chroma subsampling really filters
    layout = layout_of(pix_fmt, image.shape[1], image.shape[0])
    colour = Colour(1, 1, layout.bits)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    ours = write_frame(tuple(p[0].numpy() for p in rgb_to_planes(x, layout, colour)), layout)
    ref = swscale(av.VideoFrame.from_ndarray(image, format="rgb24"), pix_fmt,
                  "out_color_matrix=bt709:out_range=tv:in_range=pc")
    one_level = 1 << (layout.bits - 8)  # one 8-bit level, in this format's code values
    luma, *chroma = [np.abs(a.astype(int) - b.astype(int)) for a, b in zip(read_planes(ours, layout),
                                                                         read_planes(ref, layout))]
    assert luma.max() <= 1
    for c in chroma:  # swscale filters chroma with bicubic, we take the block's mean: they part at sharp edges
        assert np.percentile(c, 99) <= one_level and c.mean() < 0.5 * one_level


def test_planes_round_trip_through_frames_exactly():
    frame = decoded(SAMPLE, 1)[0]
    layout = layout_of(frame.format.name, frame.width, frame.height)
    planes = read_planes(frame, layout)
    assert [p.shape for p in planes] == [(180, 320), (90, 160), (90, 160)]
    again = read_planes(write_frame(planes, layout), layout)
    assert all(np.array_equal(a, b) for a, b in zip(planes, again))
    assert layout_of("yuv420p", 321, 180) is None and layout_of("rgb24") is None and layout_of("p010le") is None
    assert layout_of("nv12").interleaved and layout_of("yuv422p10le").bits == 10


def test_rgb_survives_a_round_trip_through_444_within_one_level():
    image = read_image(DATA / "set5" / "bird.png")
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    layout, colour = layout_of("yuv444p10le"), Colour(9, 2, 10)  # BT.2020, full range
    back = planes_to_rgb(rgb_to_planes(x, layout, colour), layout, colour)
    assert (back - x).abs().max() * 255 <= 1


def test_nvenc_where_there_is_none_falls_back_to_x264_with_a_log_line(fast_x4, tmp_path, caplog):
    from srstream.video import EncodeOptions, Settings, upscale_video

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: NVENC may really open")
    out = tmp_path / "nvenc.mp4"
    stats = upscale_video(str(CLIP), out, fast_x4,
                          Settings(options=EncodeOptions(codec="h264_nvenc"), duration=0.2), progress=False)
    assert stats.frames_out == 5 and "h264_nvenc cannot open here" in caplog.text
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
