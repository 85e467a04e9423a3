"""srstream/commands.py and medical/commands.py: each flag's default is its request type's own (Settings,
EncodeOptions, VolumeJob: written once), and ffmpeg users' `-s -1x720` reaches --size whole."""

from dataclasses import fields

from medical.commands import build_parser as srmed_parser
from medical.job import VolumeJob, job_from_args
from srstream.commands import _dash_values
from srstream.commands import build_parser as srstream_parser
from srstream.video.settings import EncodeOptions, Settings

FLAG_OF = {"timeout_s": "timeout"}  # Settings field -> argparse dest, where the flag is shorter


def test_the_video_flags_default_to_settings_and_encode_options():
    for command in (["upscale", "in.mp4", "out.mp4"], ["batch", "a.mp4", "-o", "out"]):
        args = vars(srstream_parser().parse_args(command))
        for cls, names in ((Settings, ("batch", "retries", "timeout_s", "max_latency")),
                           (EncodeOptions, ("codec", "crf", "preset"))):
            for name in names:
                if FLAG_OF.get(name, name) in args:
                    assert args[FLAG_OF.get(name, name)] == getattr(cls, name), (command, name)
    assert srstream_parser().parse_args(["upscale", "a.mp4", "b.mp4"]).retries == Settings.retries


def test_the_volume_flags_default_to_volume_job_and_build_it_once():
    args = srmed_parser().parse_args(["upscale", "in.nii.gz", "-o", "out"])
    job = job_from_args(args)
    defaults = VolumeJob()
    for f in fields(VolumeJob):
        if f.name not in ("output",):
            assert getattr(job, f.name) == getattr(defaults, f.name), f.name
    assert str(job.output) == "out"


def test_ffmpeg_style_negative_sizes_bind_to_their_flag():
    assert _dash_values(["a.mp4", "-s", "-1x720", "b.mp4"]) == ["a.mp4", "-s-1x720", "b.mp4"]
    assert _dash_values(["--size", "-1x720", "in", "out"]) == ["--size=-1x720", "in", "out"]
    args = srstream_parser().parse_args(_dash_values(["upscale", "a.mp4", "b.mp4", "-s", "-1x720"]))
    assert args.size == "-1x720"
