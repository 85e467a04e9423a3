"""The camera degradation (training/camera_*.py, training/codec.py) on real photos: real codecs, seeded, wired into
the trainer."""
import json

import numpy as np
import pytest

from training.camera_clips import MOTIONS, camera_clip
from training.camera_data import CameraClips
from training.camera_degrade import CameraSettings, degrade_clip, resize
from training.codec import CODECS, Encoding, compress, decode, encode
from training.config import ConfigError
from training.data import load_image
from training.train import Trainer
from training.video_frames import list_videos, load_video
from training.weights import load_generator

from assets import CLIP, DATA, PHOTO


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


def clean_lr(hr: np.ndarray, scale: int = 4) -> np.ndarray:
    """The area-downscaled LR clip, no noise, no compression."""
    import torch

    x = torch.from_numpy(hr).permute(0, 3, 1, 2).float() / 255
    small = resize(x, (hr.shape[1] // scale, hr.shape[2] // scale), "area")
    return small.mul(255).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


@pytest.fixture(scope="module")
def pan_clip() -> np.ndarray:
    return camera_clip(load_image(PHOTO), np.random.default_rng(1), 6, 128, "pan", speed=6.0)


@pytest.mark.parametrize("codec", CODECS)
def test_crf40_loses_more_than_crf18(pan_clip, codec):
    lr = clean_lr(pan_clip)
    scores = {crf: psnr(compress(lr, Encoding(codec, crf, "medium", 2)), lr) for crf in (18, 40)}
    assert scores[18] > scores[40] + 3.0, scores
    assert scores[18] > 33.0, scores  # CRF 18 is near-transparent, CRF 40 is not


def test_one_gop_with_intra_predicted_and_bidirectional_frames(pan_clip):
    lr = clean_lr(pan_clip)
    frames, types = decode(encode(lr, Encoding("libx264", 28, "medium", bframes=2)))
    assert frames.shape == lr.shape and frames.dtype == np.uint8
    assert types[0] == "I" and "I" not in types[1:], types
    assert {"P", "B"} <= set(types), types
    frames, types = decode(encode(lr, Encoding("libx264", 28, "medium", bframes=0, container="mp4")))
    assert types == ["I"] + ["P"] * (len(lr) - 1)


def test_short_libx265_clips_in_mp4_always_come_back():
    # MP4's muxer refused about half of the 2-frame 16 px libx265 clips with B frames (a training run's data
    # worker died on one); compress carries such a bitstream in Matroska instead
    photo = load_image(PHOTO)
    rng = np.random.default_rng(5)
    for _ in range(24):
        clip = clean_lr(camera_clip(photo, rng, 2, 64, "pan", speed=6.0))
        out = compress(clip, Encoding("libx265", int(rng.integers(18, 39)), "fast", bframes=2, container="mp4"))
        assert out.shape == clip.shape and psnr(out, clip) > 15  # 16 px at CRF 38: colour is mostly gone


def test_a_clip_both_muxers_refuse_comes_back_from_the_bare_stream(monkeypatch):
    """Matroska's muxer, too, refused a 2-frame libx265 clip once in a full test run: the bare HEVC stream carries
    it. The refusals are forced here (they are rare); the encoder and decoder are real."""
    import av

    from training import codec

    real_encode, tried = codec.encode, []

    def refusing(frames, encoding, fps=25):
        tried.append(encoding.container)
        if encoding.container in ("mp4", "matroska"):
            raise av.error.ArgumentError(22, "Invalid argument")
        return real_encode(frames, encoding, fps)

    monkeypatch.setattr(codec, "encode", refusing)
    clip = clean_lr(camera_clip(load_image(PHOTO), np.random.default_rng(5), 2, 64, "pan", speed=6.0))
    out = compress(clip, Encoding("libx265", 30, "fast", bframes=2, container="mp4"))
    assert tried == ["mp4", "matroska", "hevc"] and out.shape == clip.shape and psnr(out, clip) > 15


@pytest.mark.parametrize("motion", MOTIONS)
def test_camera_motion_moves_and_keeps_the_clip_size(motion):
    image = load_image(PHOTO)
    clip = camera_clip(image, np.random.default_rng(3), 5, 96, motion)
    assert clip.shape == (5, 96, 96, 3) and clip.dtype == np.uint8
    changes = [np.abs(clip[t + 1].astype(int) - clip[t]).mean() for t in range(4)]
    assert min(changes) > 0.5, (motion, changes)  # every frame differs from the one before
    if motion in ("pan", "object"):  # whole-pixel motion copies pixels of the photo, no resampling
        assert set(np.unique(clip)) <= set(np.unique(image))


def test_pan_is_a_moving_window_of_the_photo():
    image = load_image(PHOTO)
    clip = camera_clip(image, np.random.default_rng(5), 4, 64, "pan", speed=8.0)
    first = clip[0]
    ys, _xs = np.where((np.lib.stride_tricks.sliding_window_view(image, (64, 64, 3))[..., 0, :, :, :] == first)
                      .all(axis=(-1, -2, -3)))
    assert len(ys) >= 1  # frame 0 is an exact crop of the photo


def test_degradation_is_seeded_and_sized():
    settings = CameraSettings(frames=6, codec_p=1.0)
    data = CameraClips([DATA / "train"], 64, 4, settings, seed=7)
    hr, lr, log = data.clip(11)
    assert hr.shape == (6, 64, 64, 3) and lr.shape == (6, 16, 16, 3)
    again = data.clip(11)
    assert np.array_equal(again[0], hr) and np.array_equal(again[1], lr) and again[2] == log
    assert any(step.startswith("lib") for step in log), log
    other = CameraClips([DATA / "train"], 64, 4, settings, seed=8).clip(11)
    assert not np.array_equal(other[1], lr)
    hr_t, lr_t = data[11]
    assert tuple(hr_t.shape) == (6, 3, 64, 64) and tuple(lr_t.shape) == (6, 3, 16, 16)
    assert float(lr_t.min()) >= 0 and float(lr_t.max()) <= 1


def test_noise_changes_from_frame_to_frame():
    still = np.repeat(load_image(PHOTO)[None, :64, :64], 4, axis=0)
    settings = CameraSettings(blur_p=0, noise_p=1, poisson_p=0, noise_sigma=(8, 8), second_order_p=0, jpeg_p=0,
                              codec_p=0, resizes=("area",))
    lr, log = degrade_clip(still, np.random.default_rng(0), settings, 4)
    assert any(step.startswith("gaussian") for step in log), log
    diff = np.abs(lr[1].astype(int) - lr[0]).mean()
    assert 2 < diff < 15, diff
    assert psnr(lr, clean_lr(still)) < 35


def test_bad_camera_settings_are_config_errors(tiny):
    with pytest.raises(ConfigError, match="camera"):
        tiny(data={"degradation": '"camera"', "patch_size": 64}, model={"architecture": '"fast"', "channels": 1})
    with pytest.raises(ConfigError, match="crf"):
        tiny(data={"degradation": '"camera"', "patch_size": 64, "camera.crf": "[30, 60]"},
             model={"architecture": '"fast"'})
    with pytest.raises(ConfigError, match="libx265"):
        tiny(data={"degradation": '"camera"', "patch_size": 32}, model={"architecture": '"fast"'})
    with pytest.raises(ValueError, match="blurs"):
        CameraSettings(blurs=("gauss",))


def test_tiny_training_run_through_the_trainer(tiny, tmp_path):
    config = tiny(data={"degradation": '"camera"', "patch_size": 64, "camera.frames": 3},
                  model={"architecture": '"fast"', "width": 16, "layers": 1},
                  train={"steps": 3, "batch_size": 2, "lr": 1e-3})
    trainer = Trainer(config)
    path = trainer.run()
    assert trainer.step == 3
    card = json.loads(path.with_suffix(".json").read_text())
    training = card["training"]
    assert training["degradation"] == "camera" and training["batch"] == "2 clips x 3 frames"
    assert training["camera"]["crf"] == [18, 40] and "libx265" in training["camera"]["codecs"]
    _model, descriptor = load_generator(path)
    assert descriptor.scale == 4
    resumed = Trainer(config)  # the checkpoint of the last step is there
    assert resumed.step == 3


def test_real_video_is_shrunk_by_area_averages():
    import av

    with av.open(str(CLIP)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(np.float64)
    video = load_video(CLIP, prescale=2)
    assert video.shape[1:] == (90, 160, 3) and len(video) >= 48  # 2 s at 25 fps, 320x180 halved
    means = first.reshape(90, 2, 160, 2, 3).mean(axis=(1, 3))
    assert np.abs(video[0] - means).max() <= 0.5 + 1e-9  # rounded 2x2 block means of the decoded frame
    assert len(load_video(CLIP, prescale=1, max_frames=5)) == 5


def found_in(video: np.ndarray, clip: np.ndarray) -> bool:
    """Whether `clip` (T, P, P, 3) is video[t:t+T, y:y+P, x:x+P] for some t, y, x."""
    t, p = clip.shape[:2]
    corners = np.lib.stride_tricks.sliding_window_view(video, (4, 4, 3), axis=(1, 2, 3))[:, :, :, 0]
    for s, y, x in np.argwhere((corners == clip[0, :4, :4]).all(axis=(-1, -2, -3))):
        if s + t <= len(video) and np.array_equal(video[s:s + t, y:y + p, x:x + p], clip):
            return True
    return False


def test_real_video_clips_carry_the_cameras_own_motion():
    settings = CameraSettings(frames=4, codec_p=1.0, codecs=("libx264",))
    data = CameraClips([DATA / "train"], 64, 4, settings, seed=3, videos=[CLIP], video_p=1.0)
    video = data.videos[0]
    hr, lr, log = data.clip(5)
    assert log[0] == f"motion real ({CLIP.name})" and hr.shape == (4, 64, 64, 3) and lr.shape == (4, 16, 16, 3)
    assert np.array_equal(data.clip(5)[1], lr)  # seeded per sample, codec included
    # the clip is consecutive frames of the shrunk footage cropped at one place (then flipped or turned)
    clips = [np.rot90(c, k, axes=(1, 2)) for c in (hr, hr[:, :, ::-1]) for k in range(4)]
    assert any(found_in(video, c) for c in clips)
    mixed = CameraClips([DATA / "train"], 64, 4, settings, seed=3, videos=[CLIP], video_p=0.5)
    sources = {mixed.clip(i)[2][0].startswith("motion real") for i in range(16)}
    assert sources == {True, False}  # both photos and footage are drawn


def test_bad_training_video_is_a_one_line_error(tmp_path, tiny):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}: no video files"):
        list_videos([tmp_path])
    with pytest.raises(ValueError, match=r"SOURCES\.md: not a readable video"):
        load_video(DATA / "SOURCES.md")
    with pytest.raises(ValueError, match=f"{CLIP}: .* too few or too small"):
        CameraClips([DATA / "train"], 64, 4, CameraSettings(), videos=[CLIP], video_prescale=4)  # 80x45 px
    with pytest.raises(ConfigError, match="video_p"):
        tiny(data={"degradation": '"camera"', "patch_size": 64, "video_p": 1.5}, model={"architecture": '"fast"'})


def test_a_run_on_photos_and_footage_names_its_videos_on_the_card(tiny):
    config = tiny(data={"degradation": '"camera"', "patch_size": 64, "camera.frames": 3, "video_p": 0.5,
                        "videos": f'["{CLIP}"]', "camera.codecs": '["libx264"]'},
                  model={"architecture": '"fast"', "width": 16, "layers": 1},
                  train={"steps": 2, "batch_size": 2, "lr": 1e-3})
    path = Trainer(config).run()
    training = json.loads(path.with_suffix(".json").read_text())["training"]
    assert training["videos"] == [str(CLIP)] and training["video_p"] == 0.5 and training["video_prescale"] == 2


def test_an_average_bitrate_codes_a_real_clip_at_about_that_rate_and_lower_rates_cost_more_qp():
    from training.codec import compress_with_facts

    hr = np.stack([f for f in load_video(CLIP, 1)[:24]])[:, :176, :320]
    sizes, qps = {}, {}
    for kbps in (60, 600):
        encoding = Encoding("libx264", 23, "medium", bframes=2, kbps=kbps)
        sizes[kbps] = len(encode(hr, encoding)) * 8 / (len(hr) / 25) / 1000
        qps[kbps] = np.mean([f.mean_qp for f in compress_with_facts(hr, encoding)[1]])
    assert 0.5 * 600 < sizes[600] < 1.5 * 600 and sizes[60] < 0.3 * sizes[600]  # ABR lands near the rate asked
    assert qps[60] > qps[600] + 6


def test_camera_abr_and_isp_sharpening_are_drawn_only_when_asked(pan_clip):
    plain = CameraSettings(blur_p=0, noise_p=0, second_order_p=0, jpeg_p=0, codec_p=1.0, codecs=("libx264",),
                           x265_p=0.0, resizes=("area",), resize_range=(1.0, 1.0))
    asked = CameraSettings(**{**plain.to_dict(), "abr_p": 1.0, "sharpen_p": 1.0,
                              **{k: tuple(v) for k, v in plain.to_dict().items() if isinstance(v, list)}})
    _, log_plain = degrade_clip(pan_clip, np.random.default_rng(5), plain, 4)
    _, log_asked = degrade_clip(pan_clip, np.random.default_rng(5), asked, 4)
    assert not any("sharpen" in s or "kbit/s" in s for s in log_plain)
    assert log_asked[0].startswith("sharpen ") and any(" kbit/s " in s for s in log_asked)


def test_isp_sharpening_raises_the_detail_of_a_real_photo_and_keeps_its_mean(pan_clip):
    import torch

    from training.camera_degrade import sharpen

    x = torch.from_numpy(pan_clip).permute(0, 3, 1, 2).float() / 255
    y = sharpen(x, 0.8)
    detail = lambda t: (t[..., 1:, :] - t[..., :-1, :]).abs().mean().item()  # noqa: E731
    assert detail(y) > 1.3 * detail(x) and abs(y.mean().item() - x.mean().item()) < 0.01


def test_clean_resize_shrinks_the_clips_the_codec_skips_by_that_kernel_and_says_qp_0(pan_clip):
    from training.camera_degrade import degrade_clip_with_qp

    settings = CameraSettings(blur_p=0, noise_p=0, second_order_p=0, jpeg_p=0, codec_p=0.5, codecs=("libx264",),
                              x265_p=0.0, resizes=("area",), resize_range=(1.0, 1.0), clean_resize="bicubic")
    seen = set()
    for seed in range(12):
        _lr, qp, log = degrade_clip_with_qp(pan_clip, np.random.default_rng(seed), settings, 4)
        coded = any(s.startswith("libx264") for s in log)
        assert (qp.min() > 0) == coded and all(("bicubic" in s) != coded for s in log if s.startswith("resize"))
        seen.add(coded)
    assert seen == {True, False}
