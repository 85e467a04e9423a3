"""training/architectures: the registry is the only list of architectures, and each file's facts are true of its
network: the config keys build it, the card fields describe it, and the receptive radius bounds its reach."""

import pytest
import torch

from training import architectures
from training.architectures.architecture import Architecture
from training.config import DEFAULTS, generator_config, load_config
from training.weights import architecture_of, build_generator

SMALL = {"srresnet": {"blocks": 2, "width": 16}, "fast": {"layers": 2, "width": 16},
         "recurrent": {"layers": 2, "width": 16, "hidden": 3}}
VARIANTS = {"fast-context": ("fast", {"context": 2})}  # a variant of an architecture: its name and its settings


def test_every_registered_architecture_builds_from_its_config_keys_and_is_recognised():
    assert set(architectures.ARCHITECTURES) == {"srresnet", "fast", "recurrent"}
    for name, arch in architectures.ARCHITECTURES.items():
        assert isinstance(arch, Architecture) and arch.name == name
        # The training config's model section holds every key of every architecture, with its config's default.
        assert all(DEFAULTS["model"][k] == v for k, v in arch.defaults().items())
        config = load_config(None, [f'model.architecture="{name}"', 'data.train=["x"]'])
        arch_name, kwargs = generator_config(config)
        assert arch_name == name and set(kwargs) == set(arch.config_keys)
        module = build_generator(name, {**kwargs, **SMALL[name]})
        assert architectures.of(module) is arch and architecture_of(module) == name


def test_an_unknown_architecture_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown architecture 'esrgan': one of srresnet, fast, recurrent"):
        architectures.get("esrgan")
    assert architectures.of(torch.nn.Conv2d(3, 3, 3)) is None


@pytest.mark.parametrize("name", ["srresnet", "fast", "recurrent", "fast-context"])
def test_the_receptive_radius_bounds_how_far_one_input_pixel_reaches(name):
    """Change one LR pixel in the middle: no output pixel farther than the radius (in LR pixels) may change, and
    the radius is not loose by more than a few pixels (tiles would carry needless context)."""
    name, settings = VARIANTS.get(name, (name, {}))
    arch = architectures.get(name)
    torch.manual_seed(0)
    module = arch.build({**arch.defaults(), **SMALL[name], **settings, "scale": 2}).eval()
    with torch.no_grad():  # the paths that start at zero (the recurrent state, the half-resolution branch) made live
        if name == "recurrent":
            module.past.weight.normal_(0, 0.1)
        if getattr(module, "context", None) is not None:
            module.context.out.weight.normal_(0, 0.1)
    channels = 3 + getattr(module.config, "state_channels", 0)
    x = torch.rand(1, channels, 41, 41)
    y = x.clone()
    y[:, :, 20, 20] += 0.5
    with torch.no_grad():
        diff = (module(x) - module(y))[:, :3].abs().amax(dim=(0, 1))
    rows, cols = torch.nonzero(diff > 1e-6, as_tuple=True)
    reach = int(max((rows // 2 - 20).abs().max(), (cols // 2 - 20).abs().max()))
    radius = arch.receptive_radius(module.config)
    assert 0 < reach <= radius and radius - reach <= 3, (reach, radius)


def test_a_recurrent_models_card_says_what_the_engine_needs_to_carry_its_state(tmp_path):
    from training.weights import load_generator, save_weights

    module = build_generator("recurrent", {**architectures.get("recurrent").defaults(), **SMALL["recurrent"]})
    path = save_weights(module, tmp_path / "rec", {"name": "rec"})
    _, descriptor = load_generator(path)
    assert descriptor.recurrent and descriptor.state_channels == module.config.state_channels
    image = build_generator("fast", {**architectures.get("fast").defaults(), **SMALL["fast"]})
    _, plain = load_generator(save_weights(image, tmp_path / "fast", {"name": "fast"}))
    assert not plain.recurrent and plain.state_channels == 0


def test_a_fast_model_given_a_half_resolution_branch_starts_as_the_model_it_loads():
    """The branch's last conv starts at zero: loaded from shipped weights it gives their output exactly, on a real
    frame, and costs what its MACs say (under 1.3x fast-x4's, issue 27's budget for fast models)."""
    from training.data import load_image
    from training.weights import load_generator

    from assets import PHOTO

    arch = architectures.get("fast")
    plain = load_generator("fast-x4")[0].float().eval()
    wide = arch.build({**plain.config.to_dict(), "context": 3}).eval()
    assert wide.load_compatible(plain.state_dict()) == []
    x = torch.from_numpy(load_image(PHOTO)[:120, :160]).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        assert torch.equal(wide(x), plain(x))
    assert 1 < arch.macs_per_lr_pixel(wide.config) / arch.macs_per_lr_pixel(plain.config) < 1.3


def test_an_srresnet_at_x2_started_from_an_x4_one_takes_over_all_but_the_second_sub_pixel_stage():
    """train.init across scales (footage-srresnet-x2 from footage-srresnet-x4): the trunk, the first sub-pixel stage
    and the tail carry over exactly; only x4's second stage is left behind, and the x2 model reads a real frame."""
    from training.data import load_image
    from training.weights import load_generator

    from assets import PHOTO

    arch = architectures.get("srresnet")
    x4 = load_generator("footage-srresnet-x4")[0].float().eval()
    x2 = arch.build({**x4.config.to_dict(), "scale": 2}).eval()
    left = x2.load_compatible(x4.state_dict())
    assert left and all(name.startswith("upsample.1.") for name in left)
    own = x2.state_dict()
    assert all(torch.equal(own[k], v) for k, v in x4.state_dict().items() if k not in left)
    x = torch.from_numpy(load_image(PHOTO)[:48, :64]).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        out = x2(x)
    assert out.shape == (1, 3, 96, 128) and torch.isfinite(out).all()
