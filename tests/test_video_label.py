"""srstream/video/label.py: the burnt-in "upscaled by srstream MODEL" changes only a box at the bottom left, is
readable (light text on a darkened outline) and leaves a frame too small for it untouched."""

import av
import numpy as np
import torch

from srstream.video.label import burn_label

from assets import CLIP


def _frame_x4() -> torch.Tensor:
    """A real 1280x720 frame (the clip's first, nearest-upsampled as the engine's output stands in)."""
    with av.open(str(CLIP)) as c:
        rgb = next(c.decode(video=0)).to_ndarray(format="rgb24")
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")


def test_the_label_changes_only_a_box_at_the_bottom_left():
    frame = _frame_x4()
    labelled = burn_label(frame.clone(), "upscaled by srstream fast-x4")
    changed = (labelled - frame).abs().amax(dim=(0, 1)) > 1e-6
    rows, cols = np.nonzero(changed.numpy())
    assert len(rows) > 500  # the text is really there
    assert rows.min() > 720 * 0.85 and cols.max() < 1280 * 0.5  # bottom left, under a sixth of the height
    assert labelled.min() >= 0 and labelled.max() <= 1
    box = labelled[..., rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    assert box.amax() > 0.95 and box.amin() < 0.2  # white text on a dark outline, whatever the picture


def test_a_frame_too_small_for_the_label_is_left_as_it_is():
    tiny = torch.rand(1, 3, 24, 40)
    assert torch.equal(burn_label(tiny.clone(), "upscaled by srstream fast-x4"), tiny)
