"""The video front door on real footage (vtest.avi, shrunk) and clips made from it with ffmpeg: frame counts,
timestamps, audio passthrough, colour, 10-bit, odd sizes, sequences and every kind of bad input."""
import json
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from srstream.cli import main
from srstream.engine import Upscaler
from srstream.images import read_image
from srstream.video.colour import Colour, from_rgb, to_rgb
from srstream.video.pipeline import iter_upscaled, upscale_video
from srstream.video.settings import EncodeOptions, Settings
from srstream.video.source import VideoInputError

from assets import CLIP, DATA, EXAMPLES
from conftest import LogWatch, free_port

FAST = Settings(options=EncodeOptions(preset="ultrafast", crf=23))
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg CLI makes the derived clips")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=120)


@pytest.fixture(scope="module")
def upscaler():
    return Upscaler("fast-x4", backend="cpu", batch_size=4)


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory):
    """1 s (25 frames) of the real clip, 160x90, with its real audio copied."""
    path = tmp_path_factory.mktemp("clips") / "short.mp4"
    if shutil.which("ffmpeg"):
        ffmpeg("-i", str(CLIP), "-t", "1", "-vf", "scale=160:90", "-c:v", "libx264", "-preset", "ultrafast",
               "-c:a", "copy", str(path))
    return path


def video_info(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        pts = [f.pts for f in c.decode(video=0)]
        tb = v.time_base
    with av.open(str(path)) as c:
        audio = [bytes(p) for p in c.demux(audio=0) if p.size] if c.streams.audio else []
        size = (c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height)
        pix = c.streams.video[0].codec_context.pix_fmt
    return {"pts": pts, "seconds": [float(p * tb) for p in pts], "audio": audio, "size": size, "pix_fmt": pix}


@needs_ffmpeg
def test_frames_timestamps_audio_and_size_survive(short_clip, upscaler, tmp_path):
    out = tmp_path / "out.mp4"
    stats = upscale_video(str(short_clip), out, upscaler, FAST, progress=False)
    src, dst = video_info(short_clip), video_info(out)
    assert stats.frames_in == stats.frames_out == len(src["pts"]) == 25
    assert dst["size"] == (640, 360)
    assert np.allclose(dst["seconds"], src["seconds"], atol=1e-3)
    assert dst["audio"] == src["audio"] and len(src["audio"]) > 10  # copied bit for bit
    assert stats.streams_copied == ["#1 audio aac"]
    assert not list(tmp_path.glob(".*partial*"))


@needs_ffmpeg
def test_variable_frame_rate_survives(upscaler, tmp_path):
    vfr = tmp_path / "vfr.mkv"
    # Real frames with irregular gaps: timestamps 0, 0.04, 0.12, 0.16, 0.28, ... (mkv keeps them as given).
    ffmpeg("-i", str(CLIP), "-t", "1", "-vf", "scale=96:54,select='not(eq(mod(n\\,3)\\,1))',setpts=N*0.04/TB+"
           "floor(N/2)*0.04/TB", "-fps_mode", "vfr", "-an", "-c:v", "libx264", "-preset", "ultrafast", str(vfr))
    out = tmp_path / "vfr_x4.mkv"
    upscale_video(str(vfr), out, upscaler, FAST, progress=False)
    src, dst = video_info(vfr), video_info(out)
    gaps = np.diff(src["seconds"])
    assert gaps.max() > gaps.min() * 1.5  # really variable
    assert np.allclose(dst["seconds"], src["seconds"], atol=1e-3)


@needs_ffmpeg
def test_ten_bit_input_stays_ten_bit(upscaler, tmp_path):
    deep = tmp_path / "deep.mkv"
    ffmpeg("-i", str(CLIP), "-t", "0.4", "-vf", "scale=64:36", "-pix_fmt", "yuv420p10le", "-c:v", "libx264",
           "-preset", "ultrafast", "-an", str(deep))
    out = tmp_path / "deep_x4.mkv"
    upscale_video(str(deep), out, upscaler, FAST, progress=False)
    assert video_info(out)["pix_fmt"] == "yuv420p10le"
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb48le")
    assert frame.dtype == np.uint16 and frame.max() > 255


@needs_ffmpeg
def test_odd_sizes_and_image_sequences(upscaler, tmp_path):
    odd = tmp_path / "odd.mkv"
    ffmpeg("-i", str(CLIP), "-t", "0.2", "-vf", "scale=61:35", "-pix_fmt", "yuv444p", "-c:v", "libx264", "-preset",
           "ultrafast", "-an", str(odd))
    out = tmp_path / "odd_x4.mkv"
    upscale_video(str(odd), out, upscaler, FAST, progress=False)
    assert video_info(out)["size"] == (244, 140)
    seq = tmp_path / "seq"
    seq.mkdir()
    ffmpeg("-i", str(CLIP), "-frames:v", "6", "-vf", "scale=64:36", str(seq / "frame_%03d.png"))
    frames = list(iter_upscaled(str(seq / "frame_%03d.png"), upscaler, Settings(batch=4)))
    assert len(frames) == 6 and frames[0].rgb.shape == (144, 256, 3)
    assert [f.pts for f in frames] == sorted(f.pts for f in frames)


@pytest.mark.parametrize("colorspace,color_range", [(5, 1), (1, 1), (1, 2), (6, 2)])
def test_colour_round_trip_on_a_real_frame(colorspace, color_range):
    rgb = read_image(EXAMPLES / "foreman.png")  # a colourful real frame (vtest.avi is grey, blind to the matrix)
    colour = Colour(colorspace, color_range, 8)
    yuv = from_rgb(rgb, "yuv444p", colour)
    assert int(yuv.colorspace) == colorspace and int(yuv.color_range) == color_range
    back = to_rgb(yuv, colour)
    assert np.abs(back.astype(int) - rgb.astype(int)).mean() < 1.0
    wrong = to_rgb(yuv, Colour(1 if colorspace != 1 else 5, color_range, 8))
    assert np.abs(wrong.astype(int) - rgb.astype(int)).mean() > np.abs(back.astype(int) - rgb.astype(int)).mean()


def test_bad_inputs_fail_in_one_line_and_leave_nothing(tmp_path, capsys):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 10)
    empty = tmp_path / "empty.mkv"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(CLIP.read_bytes()[:4000])
    cases = [(tmp_path / "missing.mp4", "missing.mp4: no such file"), (text, "notes.mp4: cannot open"),
             (empty, "empty.mkv: empty file (0 bytes)"), (truncated, "truncated.mp4"),
             ("rtsp://127.0.0.1:9/none", "rtsp://127.0.0.1:9/none: cannot open")]
    for source, message in cases:
        out = tmp_path / "out.mp4"
        assert main(["upscale", str(source), str(out), "-m", "fast-x4", "--backend", "cpu", "--timeout", "2",
                     "--retries", "0", "-q"]) == 1
        err = capsys.readouterr().err.strip()
        assert message in err and err.count("\n") == 0, err
        assert not out.exists() and not list(tmp_path.glob(".*partial*"))


def test_existing_output_is_kept_and_input_untouched(tmp_path, capsys):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    before = CLIP.read_bytes()
    assert main(["upscale", str(CLIP), str(out), "-m", "fast-x4", "-q"]) == 1
    assert "already exists (use -y/--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"precious" and CLIP.read_bytes() == before


def test_several_inputs_into_a_url_are_refused(tmp_path, capsys):
    assert main(["upscale", str(CLIP), str(CLIP), "rtmp://127.0.0.1:9/live", "-m", "fast-x4", "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert "rtmp://127.0.0.1:9/live: several inputs need an output directory" in err and "\n" not in err
    assert not Path("rtmp:").exists()


def test_cli_json_stats_and_duration(tmp_path, capsys):
    out = tmp_path / "clip_x4.mkv"
    assert main(["upscale", str(CLIP), str(out), "-m", "fast-x4", "--backend", "cpu", "-t", "0.4", "--preset",
                 "ultrafast", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["frames_out"] == 10 and stats["size_out"] == [1280, 720] and stats["backend"] == "cpu"
    assert len(video_info(out)["pts"]) == 10


def test_decoder_errors_name_the_input(fast_x4):
    with pytest.raises(VideoInputError, match="no such file"):
        list(iter_upscaled("/nonexistent/clip.mp4", fast_x4))


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupt_finalises_a_playable_file(tmp_path, sig):
    import signal
    import sys

    out = tmp_path / f"{sig}.mp4"
    # A shell without job control starts background jobs with SIGINT ignored, and Python keeps an inherited
    # SIG_IGN (as nohup means it to), so the child gets the default action back, as a terminal's Ctrl-C would find.
    # srresnet-x4 in fp32 (1 to 2.3 s a frame on 2 cores) so that the signal surely lands mid-clip, on any machine;
    # it is sent once the progress line shows a frame through the engine, however long start-up took.
    proc = subprocess.Popen([sys.executable, "-m", "srstream.cli", "upscale", str(CLIP), str(out), "-m",
                             "srresnet-x4", "--backend", "cpu", "--precision", "fp32", "--batch", "1"],
                            cwd=DATA.parent.parent, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log = LogWatch(proc.stderr)
    assert log.wait_for(r"\| *[1-9]\d*/\d+ \[", timeout=240), log.text
    partial = tmp_path / f".{sig}.partial.mp4"
    proc.send_signal(getattr(signal, sig))
    proc.wait(timeout=120)
    assert proc.returncode == 130, log.text
    info = video_info(out)
    assert 1 <= len(info["pts"]) < 50 and info["size"] == (1280, 720)
    assert not partial.exists()


@needs_ffmpeg
def test_batch_goes_on_past_a_bad_file_and_reports_it(short_clip, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.mp4").write_bytes(short_clip.read_bytes())
    (folder / "broken.mp4").write_text("not a video")
    (folder / "done.mp4").write_bytes(short_clip.read_bytes())
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "done_x4.mp4").write_text("an earlier result")  # without -y: refused, the rest go on
    code = main(["batch", str(folder), "-o", str(tmp_path / "out"), "-m", "fast-x4", "--backend", "cpu",
                 "--preset", "ultrafast", "-q", "--json"])
    assert code == 1
    report = json.loads(capsys.readouterr().out)
    by_name = {r["input"].split("/")[-1]: r for r in report}
    assert "cannot open" in by_name["broken.mp4"]["error"]
    assert "already exists" in by_name["done.mp4"]["error"]
    assert by_name["good.mp4"]["frames_out"] == 25
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["done_x4.mp4", "good_x4.mp4"]
    assert (tmp_path / "out" / "done_x4.mp4").read_text() == "an earlier result"


@needs_ffmpeg
def test_batch_on_a_local_ray_instance(short_clip, tmp_path, capsys):
    pytest.importorskip("ray")
    clips = []
    for name in ("a.mp4", "b.mp4"):
        clips.append(tmp_path / name)
        clips[-1].write_bytes(short_clip.read_bytes())
    code = main(["batch", *map(str, clips), "-o", str(tmp_path / "out"), "-m", "fast-x4", "--backend", "cpu",
                 "--preset", "ultrafast", "--ray", "-q", "--json"])
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert [r["frames_out"] for r in report] == [25, 25]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_x4.mp4", "b_x4.mp4"]


def test_batch_with_a_ray_address_where_no_cluster_answers(short_clip, tmp_path, capsys):
    pytest.importorskip("ray")
    port = free_port()
    code = main(["batch", str(short_clip), "-o", str(tmp_path / "out"), "-m", "fast-x4", "--ray", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err == (f"srstream: error: --ray 127.0.0.1:{port}: no Ray cluster answers there "
                                 "(Connection refused)")
    assert list((tmp_path / "out").iterdir()) == []


@needs_ffmpeg
def test_rolling_segments_cover_every_frame(short_clip, tmp_path):
    out = tmp_path / "rec.mp4"
    assert main(["upscale", str(short_clip), str(out), "-m", "fast-x4", "--backend", "cpu", "--preset",
                 "ultrafast", "--segment-time", "0.4", "-q"]) == 0
    parts = sorted(tmp_path.glob("rec_*.mp4"))
    assert len(parts) >= 2
    counts = [len(video_info(p)["pts"]) for p in parts]
    assert sum(counts) == 25 and all(video_info(p)["size"] == (640, 360) for p in parts)


@needs_ffmpeg
def test_push_to_a_udp_url_is_received_live(short_clip, tmp_path):
    import socket
    import threading

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    received = []

    def listen() -> None:
        with av.open(f"udp://127.0.0.1:{port}?timeout=15000000", options={"fifo_size": "1000000"},
                     timeout=20) as c:
            for frame in c.decode(video=0):
                received.append((frame.width, frame.height))
                if len(received) >= 20:
                    break

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    import time
    time.sleep(1.0)
    stats = upscale_video(str(short_clip), f"udp://127.0.0.1:{port}?pkt_size=1316", Upscaler("fast-x4",
                          backend="cpu"), FAST, progress=False)
    listener.join(timeout=30)
    assert stats.frames_out == 25
    assert len(received) >= 10 and set(received) == {(640, 360)}


@needs_ffmpeg
def test_subtitles_languages_and_creation_time_are_carried(fast_x4, short_clip, tmp_path):
    subs = tmp_path / "subs.srt"
    subs.write_text("1\n00:00:00,000 --> 00:00:00,800\nA pedestrian crosses.\n")
    tagged = tmp_path / "tagged.mkv"
    ffmpeg("-i", str(short_clip), "-i", str(subs), "-map", "0", "-map", "1", "-c", "copy", "-c:s", "srt",
           "-metadata", "creation_time=2024-01-02T03:04:05.000000Z", "-metadata:s:a:0", "language=fra",
           "-metadata:s:s:0", "language=eng", str(tagged))
    out = tmp_path / "tagged_x4.mkv"
    stats = upscale_video(str(tagged), out, fast_x4, FAST, progress=False)
    assert len(stats.streams_copied) == 2 and not stats.streams_dropped
    with av.open(str(out)) as c:
        kinds = {s.type: s for s in c.streams}
        assert kinds["subtitle"].metadata.get("language") == "eng"
        assert kinds["audio"].metadata.get("language") == "fra"
        assert c.metadata.get("creation_time", "").startswith("2024-01-02T03:04:05")
        texts = [bytes(p) for p in c.demux(kinds["subtitle"]) if p.size]
    assert any(b"pedestrian" in t for t in texts)


@needs_ffmpeg
def test_a_file_without_video_is_refused(tmp_path, capsys):
    audio_only = tmp_path / "sound.mp4"
    ffmpeg("-i", str(CLIP), "-vn", "-c:a", "copy", str(audio_only))
    assert main(["upscale", str(audio_only), str(tmp_path / "x.mp4"), "-m", "fast-x4", "-q"]) == 1
    assert capsys.readouterr().err.strip() == f"srstream: error: {audio_only}: has no video stream"
    assert not (tmp_path / "x.mp4").exists()


@needs_ffmpeg
def test_rotation_kept_and_streams_the_container_refuses_are_converted_or_dropped(fast_x4, short_clip, tmp_path):
    src = tmp_path / "pcm_srt.mkv"
    subs = tmp_path / "s.srt"
    subs.write_text("1\n00:00:00,000 --> 00:00:00,500\nhello\n")
    ffmpeg("-i", str(short_clip), "-i", str(subs), "-map", "0", "-map", "1", "-c:v", "copy", "-c:a", "pcm_s16le",
           "-c:s", "srt", str(src))
    out = tmp_path / "out.mp4"
    stats = upscale_video(str(src), out, fast_x4, FAST, progress=False)
    assert stats.streams_reencoded == ["#1 audio pcm_s16le -> aac"]
    assert stats.streams_dropped == ["#2 subtitle srt"]
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
        samples = sum(f.samples for f in c.decode(audio=0))
        assert abs(samples / c.streams.audio[0].rate - 1.0) < 0.1
    rotated = tmp_path / "phone.mp4"  # as a phone records it: a display matrix in the MP4
    ffmpeg("-i", str(short_clip), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    upscale_video(str(rotated), tmp_path / "phone_x4.mp4", fast_x4, FAST, progress=False)
    for path in (rotated, tmp_path / "phone_x4.mp4"):
        with av.open(str(path)) as c:
            assert next(c.decode(video=0)).rotation == 90
