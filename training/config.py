"""Training configuration: TOML files over built-in defaults, plus `section.key=value` overrides."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.architectures import ARCHITECTURES
from training.camera_degrade import CameraSettings
from training.errors import SrstreamError
from training.toml_file import read_toml

DEFAULTS: dict[str, Any] = {
    "name": "srresnet-x4",
    "phase": "srresnet",  # "srresnet" (phase 1, content loss only) or "srgan" (phase 2, + adversarial)
    "seed": 0,
    "out_dir": "runs/srresnet-x4",
    "model": {
        "architecture": "srresnet",
        **{k: v for a in ARCHITECTURES.values() for k, v in a.defaults().items()},
    },  # each architecture's keys with its config's defaults (training/architectures/NAME.py)
    "data": {
        "train": [],
        "patch_size": 96,
        "degradation": "bicubic",
        "sigma": 0.0,
        "thickness": 0,
        "workers": 2,
        # 'acquisition' (thick slices as scanners make them): each sample draws its slice spacing (in
        # pixels), its thickness/spacing and its profile from these.
        "ratios": [2.0, 6.0],
        "thickness_ratios": [0.5, 1.25],
        "profiles": ["box", "gaussian"],
        # 'camera' (compressed camera footage): clips from the photos under synthetic camera motion, through
        # blur, resize, noise, JPEG and a real codec (training/camera_degrade.py); its probabilities and ranges.
        "camera": CameraSettings().to_dict(),
        # real video for 'camera' clips (files or folders), drawn with probability video_p, each frame
        # area-shrunk by video_prescale first (delivered video is itself compressed).
        "videos": [],
        "video_p": 0.5,
        "video_prescale": 2,
        # a model with model.qp_input sees each frame's own QP map (false), or the clip's mean map on every frame
        # (true), as the video front door gives a stream's QP averaged over its frames (training.compression).
        "qp_average": False,
    },
    "train": {
        "steps": 100_000,
        "batch_size": 16,
        "lr": 1e-4,
        "beta1": 0.9,
        "beta2": 0.999,
        "lr_schedule": "constant",
        "init": "",
        "amp": True,
        "minutes": 0.0,
        "ema": 0.0,
    },
    # temporal: the weight of the error's frame-to-frame change within each clip (training.losses.temporal_loss);
    # 0 = off, and only clips ('camera' data) have frames to compare.
    "content": {"loss": "mse", "vgg_layer": [5, 4], "vgg_weights": "", "temporal": 0.0},
    "adversarial": {"weight": 1e-3, "d_warmup_steps": 0, "d_lr": 1e-4},
    "log": {"every": 20, "sample_every": 1000, "checkpoint_every": 500},
}
PHASES = ("srresnet", "srgan")
SCHEDULES = ("constant", "drop_half", "cosine")


class ConfigError(SrstreamError, ValueError):
    """A configuration file or override is invalid."""


def _merge(base: dict[str, Any], update: dict[str, Any], where: str) -> None:
    for key, value in update.items():
        if key not in base:
            raise ConfigError(f"{where}: unknown setting {key!r} (known: {', '.join(base)})")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {key!r} must be a table")
            _merge(base[key], value, f"{where}[{key}]")
        else:
            base[key] = value


def _parse_override(text: str) -> dict[str, Any]:
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected section.key=value")
    dotted, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # bare strings need no quotes on the command line
    result: dict[str, Any] = {}
    node = result
    keys = dotted.strip().split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return result


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Defaults, updated by the TOML file at `path`, then by each `a.b=value` override; validated."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        _merge(config, read_toml(path, ConfigError), str(path))
    for text in overrides:
        _merge(config, _parse_override(text), f"override {text!r}")
    if config["phase"] not in PHASES:
        raise ConfigError(f"phase {config['phase']!r}: use one of {', '.join(PHASES)}")
    if config["train"]["lr_schedule"] not in SCHEDULES:
        raise ConfigError(f"train.lr_schedule {config['train']['lr_schedule']!r}: use one of {', '.join(SCHEDULES)}")
    arch = config["model"]["architecture"]
    if arch not in ARCHITECTURES:
        raise ConfigError(f"model.architecture {arch!r}: use one of {', '.join(ARCHITECTURES)}")
    if config["model"]["qp_input"] and (
        "qp_input" not in ARCHITECTURES[arch].config_keys or config["data"]["degradation"] != "camera"
    ):
        takes = ", ".join(n for n, a in ARCHITECTURES.items() if "qp_input" in a.config_keys)
        raise ConfigError(
            f'model.qp_input is for the {takes} architectures trained on data.degradation = "camera" '
            "(the codec's QP comes from its encodes)"
        )
    if config["model"].get("qp_modulation") and not config["model"]["qp_input"]:
        raise ConfigError("model.qp_modulation reads the QP plane: set model.qp_input = true")
    if config["data"]["qp_average"] and not config["model"]["qp_input"]:
        raise ConfigError("data.qp_average is for a model that takes the QP: set model.qp_input = true")
    if not config["data"]["train"]:
        raise ConfigError("data.train is empty: give one or more folders of HR training images")
    if config["data"]["patch_size"] % config["model"]["scale"]:
        raise ConfigError("data.patch_size must be a multiple of model.scale")
    if not 0 <= config["train"]["ema"] < 1:
        raise ConfigError("train.ema is the moving average's decay: 0 (off) or a value below 1, e.g. 0.999")
    data = config["data"]
    temporal = config["content"]["temporal"]
    if temporal < 0 or (temporal and data["degradation"] != "camera"):
        raise ConfigError('content.temporal is a weight >= 0, for clips: data.degradation = "camera"')
    if data["degradation"] == "slab" and (
        config["model"]["scale"] != 1 or data["thickness"] < 2 or data["patch_size"] % data["thickness"]
    ):
        raise ConfigError("the slab degradation needs model.scale = 1 and data.thickness >= 2 dividing data.patch_size")
    if data["degradation"] == "acquisition":
        lo, hi = data["ratios"]
        t_lo, t_hi = data["thickness_ratios"]
        if config["model"]["scale"] != 1 or not 1 < lo <= hi or not 0 < t_lo <= t_hi:
            raise ConfigError(
                "the acquisition degradation needs model.scale = 1, data.ratios = [lo, hi] with "
                "1 < lo <= hi and data.thickness_ratios = [lo, hi] with 0 < lo <= hi"
            )
        if not data["profiles"] or any(p not in ("box", "gaussian") for p in data["profiles"]):
            raise ConfigError("data.profiles: a list of 'box' and/or 'gaussian'")
    if data["degradation"] == "camera":
        _check_camera(config)
    return config


def _check_camera(config: dict[str, Any]) -> None:
    """The camera degradation: an RGB x2+ model, even LR patches (yuv420p), and valid camera settings."""
    scale, patch = config["model"]["scale"], config["data"]["patch_size"]
    if scale < 2 or config["model"]["channels"] != 3 or (patch // scale) % 2:
        raise ConfigError(
            "the camera degradation needs an RGB model of scale >= 2 and data.patch_size a multiple "
            "of 2 x model.scale (yuv420p needs even LR sides)"
        )
    try:
        settings = CameraSettings.from_dict(config["data"]["camera"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    data = config["data"]
    if not 0 <= data["video_p"] <= 1 or not isinstance(data["video_prescale"], int) or data["video_prescale"] < 1:
        raise ConfigError("data.video_p is a probability (0 to 1) and data.video_prescale a whole factor >= 1")
    if "libx265" in settings.codecs and patch // scale < 16:
        raise ConfigError(
            "libx265 needs frames of 16 px or more: data.patch_size >= 16 x model.scale, or "
            'data.camera.codecs = ["libx264"]'
        )


def degradation_factor(config: dict[str, Any]) -> int:
    """How much the degradation shrinks (or, for 'slab', thickens): the model's scale, or the slab thickness."""
    data = config["data"]
    return data["thickness"] if data["degradation"] == "slab" else config["model"]["scale"]


def generator_config(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The architecture name and the constructor settings it takes."""
    model = config["model"]
    arch = model["architecture"]
    return arch, {k: model[k] for k in ARCHITECTURES[arch].config_keys}
