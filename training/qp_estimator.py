"""The blind QP estimate: a small CNN that reads a decoded frame's luma and gives the QP of each 16x16 block on
H.264's scale, for frames whose decoder exports none (HEVC, AV1, images, image sequences).

Trained (`python -m training.qp_estimator --out FILE`) on clips of the training photos through libx264 at CRFs and
bitrates drawn at random, a tenth left uncompressed (QP 0), against the QP maps the decoder exported for them;
measured on real footage it never saw by `benchmarks/qp_estimate.py`. The shipped weights are
`training/shipped/qp-estimator.safetensors` (not a model `-m` takes: `shipped_models` lists cards, it has none).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from training.compression import BLOCK, QP_MAX, blocks_of, luma
from training.logs import log_to_stderr

log = logging.getLogger(__name__)

WEIGHTS = Path(__file__).resolve().parent / "shipped" / "qp-estimator.safetensors"
TRAIN = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "sr" / "train"


class QPNet(nn.Module):
    """Luma (N, 1, H, W) in [0, 1], sides multiples of 16 -> QP / 51 per 16x16 block (N, 1, H/16, W/16).

    Four stride-2 stages (each a 3x3 conv and a ReLU) bring 16x16 blocks to one position, where a 3x3 context and a
    1x1 head read the block's quantisation; the first stage sees the pixels at full resolution, where the codec's
    rounding shows."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
        ]
        for _ in range(4):
            layers += [nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU()]
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 1, 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.body((y - 0.5) * 4).clamp(0, 1)


@lru_cache(maxsize=1)
def shipped() -> QPNet | None:
    """The shipped estimator in eval mode, or None where its file is missing."""
    if not WEIGHTS.is_file():
        return None
    net = QPNet()
    net.load_state_dict(load_file(str(WEIGHTS)))
    return net.eval()


def qp_map(rgb: np.ndarray, net: QPNet | None = None) -> np.ndarray | None:
    """The estimated QP of each 16x16 block (ceil(H/16), ceil(W/16)) of an RGB frame; None without weights."""
    net = net or shipped()
    if net is None:
        return None
    y = torch.from_numpy(luma(rgb).astype(np.float32) / 255.0)[None, None]
    h, w = y.shape[-2:]
    y = F.pad(y, (0, (-w) % BLOCK, 0, (-h) % BLOCK), mode="replicate")
    with torch.no_grad():
        out = net(y)[0, 0].numpy() * QP_MAX
    return out[: blocks_of(h, w)[0], : blocks_of(h, w)[1]].astype(np.float32)


# --- training ------------------------------------------------------------------------------------------------------


def make_pairs(count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(luma uint8 (H, W), QP map (H/16, W/16)) for frames of `count` photo clips through random encodes."""
    from training.camera_clips import camera_clip
    from training.codec import Encoding, compress_with_facts
    from training.data import list_images, load_image

    rng = np.random.default_rng(seed)
    paths = list_images([TRAIN])
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    while len(pairs) < 3 * count:
        image = load_image(paths[rng.integers(len(paths))])
        h, w = (image.shape[0] // 2) * 2, (image.shape[1] // 2) * 2
        image = image[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3)).round().astype(np.uint8)
        size = int(rng.integers(4, 9)) * 16
        if min(image.shape[:2]) < size + 16:
            continue
        clip = camera_clip(image, rng, 3, size, "pan", 4.0, 0.0, 0.0)
        if rng.random() < 0.1:
            frames, maps = clip, [np.zeros(blocks_of(size, size), np.float32)] * 3
        else:
            kbps = int(rng.integers(20, 400)) if rng.random() < 0.3 else 0
            encoding = Encoding(
                "libx264",
                int(rng.integers(0, 48)),
                str(rng.choice(["veryfast", "medium"])),
                bframes=int(rng.integers(0, 3)),
                kbps=kbps,
            )
            frames, facts = compress_with_facts(clip, encoding)
            maps = []
            for fact in facts:
                if fact is None:  # H.264's decoder exports every frame's QP map (training.compression)
                    raise RuntimeError("the decoder gave no QP map for a libx264 frame (venc_params side data)")
                maps.append(fact.qp)
        pairs += [(luma(f), m) for f, m in zip(frames, maps)]
    return pairs


def train(
    pairs: list[tuple[np.ndarray, np.ndarray]],
    seconds: float,
    seed: int = 0,
    net: QPNet | None = None,
    save: Callable[[QPNet], None] | None = None,
) -> QPNet:
    """Fit a QPNet to the pairs (L1 in QP, Adam, batches of 32 crops of 4x4 blocks at random places) for
    `seconds`, the learning rate falling on a cosine to a hundredth; `save` is called every 5 minutes so that a
    long run stopped early keeps what it reached."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = net or QPNet()
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    started, saved, step = time.monotonic(), time.monotonic(), 0
    while (elapsed := time.monotonic() - started) < seconds:
        for group in opt.param_groups:
            group["lr"] = 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + np.cos(np.pi * elapsed / seconds))
        y, target = _batch(pairs, rng)
        loss = F.l1_loss(net(y) * QP_MAX, target * QP_MAX)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 200 == 0:
            log.info("step %d (%.0f min): L1 %.2f QP", step, elapsed / 60, loss.item())
        if save and time.monotonic() - saved > 300:
            save(net.eval())
            net.train()
            saved = time.monotonic()
    return net.eval()


def _batch(pairs: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """32 crops of 4x4 blocks at random places: luma in [0, 1] and QP / 51."""
    ys, targets = [], []
    for i in rng.integers(len(pairs), size=32):
        y, qp = pairs[i]
        by, bx = int(rng.integers(qp.shape[0] - 3)), int(rng.integers(qp.shape[1] - 3))
        ys.append(y[by * BLOCK : (by + 4) * BLOCK, bx * BLOCK : (bx + 4) * BLOCK])
        targets.append(qp[by : by + 4, bx : bx + 4])
    y = torch.from_numpy(np.stack(ys).astype(np.float32) / 255.0)[:, None]
    return y, torch.from_numpy(np.stack(targets).astype(np.float32) / QP_MAX)[:, None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="train the blind QP estimate on encodes of the training photos")
    parser.add_argument("--clips", type=int, default=1500, help="photo clips of 3 frames (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=300.0, help="training time (default %(default)s)")
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--cache", type=Path, help="keep the encoded frames here (.npz) and reuse them")
    parser.add_argument("--resume", action="store_true", help="start from the weights in --out")
    args = parser.parse_args(argv)
    log_to_stderr()
    if args.cache and args.cache.is_file():
        stored = np.load(args.cache, allow_pickle=False)
        pairs = [(stored[f"y{i}"], stored[f"q{i}"]) for i in range(len(stored.files) // 2)]
    else:
        pairs = make_pairs(args.clips, seed=0)
        if args.cache:
            arrays = {f"{k}{i}": v for i, (y, q) in enumerate(pairs) for k, v in (("y", y), ("q", q))}
            np.savez(args.cache, **arrays)  # type: ignore[arg-type]  # numpy stub: **arrays is matched to allow_pickle
    log.info("%d frames", len(pairs))
    net = None
    if args.resume:
        net = QPNet()
        net.load_state_dict(load_file(str(args.out)))

    def save(trained: QPNet) -> None:
        save_file(
            {k: v.contiguous() for k, v in trained.state_dict().items()},
            str(args.out),
            metadata={
                "what": "blind QP estimate (training.qp_estimator)",
                "frames": str(len(pairs)),
                "seconds": str(args.seconds),
            },
        )

    save(train(pairs, args.seconds, net=net, save=save))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
