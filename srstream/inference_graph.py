"""Rewrites of a trained generator into an equal network that runs faster: what every backend and export runs.

- BatchNorm folded into the convolution before it.
- SRResNet's last sub-pixel stage and its tail, moved below the last pixel shuffle: the 9x9 tail at full output
  resolution has only 3 output channels, which no convolution kernel (oneDNN's or cuDNN's) uses well. Computed on
  the stage's 2x2 sub-pixel channels instead, it is a 5x5 convolution with 4x as many channels in and out, then a
  pixel shuffle: the same function (exact in real arithmetic), 3x faster on a CPU.
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from training.architectures.srresnet import SRResNet, SubPixelStage


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """A copy of `module` (eval mode) with every Conv2d directly followed by BatchNorm2d in a Sequential fused."""
    module = copy.deepcopy(module).eval()
    for parent in module.modules():
        if not isinstance(parent, nn.Sequential):
            continue
        names = list(parent._modules)
        for a, b in itertools.pairwise(names):
            conv, bn = parent._modules[a], parent._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                parent._modules[a] = fuse_conv_bn_eval(conv, bn)
                parent._modules[b] = nn.Identity()
    return module


def subpixel_tail_weights(
    weight: torch.Tensor, bias: torch.Tensor | None, r: int = 2
) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """The (weight, bias, padding) of a convolution on the r x r sub-pixel channels of a map (channel c * r^2 + i * r
    + j is pixel (r y + i, r x + j) of channel c, PixelShuffle's order) that gives, after PixelShuffle(r), the same
    output as `weight` (odd k x k, padding k // 2) applied to the shuffled map."""
    out_c, in_c, k, _ = weight.shape
    half = k // 2
    lo, hi = (0 - half) // r, (r - 1 + half) // r  # the sub-pixel rows an output row reads, relative to its own
    size = hi - lo + 1
    new = weight.new_zeros(out_c * r * r, in_c * r * r, size, size)
    for pi in range(r):  # output sub-pixel row
        for pj in range(r):
            for dy in range(-half, half + 1):
                for dx in range(-half, half + 1):
                    si, sj = pi + dy, pj + dx  # input row/column, in sub-pixel units from the output's cell
                    di, i = si // r, si % r
                    dj, j = sj // r, sj % r
                    # new[o * r^2 + pi * r + pj, c * r^2 + i * r + j, di - lo, dj - lo] for every o, c
                    new[pi * r + pj :: r * r, i * r + j :: r * r, di - lo, dj - lo] = weight[:, :, dy + half, dx + half]
    new_bias = bias.repeat_interleave(r * r) if bias is not None else None
    return new, new_bias, -lo


def fuse_subpixel_tail(module: SRResNet) -> SRResNet:
    """A copy of an SRResNet whose last stage ends before its pixel shuffle and whose tail runs on the sub-pixel
    channels, then shuffles (see the module docstring). Models with other shapes come back unchanged."""
    module = copy.deepcopy(module).eval()
    stage = module.upsample[-1] if len(module.upsample) else None
    tail = module.tail
    if (
        not isinstance(stage, SubPixelStage)
        or not isinstance(stage.act, nn.PReLU)
        or not isinstance(tail, nn.Conv2d)
        or tail.kernel_size[0] != tail.kernel_size[1]
        or tail.kernel_size[0] % 2 == 0
        or tail.padding != (tail.kernel_size[0] // 2,) * 2
        or tail.stride != (1, 1)
        or tail.groups != 1
    ):
        return module
    r = stage.shuffle.upscale_factor
    slopes = stage.act.weight.detach()
    act = (
        nn.PReLU(slopes.numel() * r * r, device=slopes.device, dtype=slopes.dtype) if slopes.numel() > 1 else stage.act
    )
    if slopes.numel() > 1:
        with torch.no_grad():
            # PixelShuffle sends channels c * r^2 .. c * r^2 + r^2 - 1 to channel c: each keeps c's slope.
            act.weight.copy_(slopes.repeat_interleave(r * r))
    weight, bias, padding = subpixel_tail_weights(
        tail.weight.detach(), tail.bias.detach() if tail.bias is not None else None, r
    )
    conv = nn.Conv2d(
        weight.shape[1],
        weight.shape[0],
        weight.shape[-1],
        padding=padding,
        bias=bias is not None,
        device=weight.device,
        dtype=weight.dtype,
    )
    with torch.no_grad():
        conv.weight.copy_(weight)
        if bias is not None and conv.bias is not None:
            conv.bias.copy_(bias)
    module.upsample[-1] = nn.Sequential(stage.conv, act)
    module.tail = nn.Sequential(conv, nn.PixelShuffle(r))
    return module


def inference_graph(module: nn.Module) -> nn.Module:
    """The network every backend runs: BatchNorm folded, and SRResNet's tail on sub-pixel channels."""
    module = fold_batchnorm(module)
    if isinstance(module, SRResNet):
        module = fuse_subpixel_tail(module)
    return module
