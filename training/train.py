"""Two-phase SRGAN training: `python -m training.train --config FILE [--set section.key=value ...]`.

Phase 1 (`phase = "srresnet"`) trains the generator on the content loss alone; phase 2 (`phase = "srgan"`) starts
from phase 1's weights (`train.init`) and adds the discriminator and the 1e-3 adversarial loss. The same command runs
under `torchrun --nproc_per_node N` for DDP (NCCL on CUDA, gloo on CPU). A run resumes exactly from
`OUT_DIR/checkpoint.pt` when one is there.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm import tqdm

from training import architectures
from training.acquisition import degrade_batch
from training.architectures.fast import FastSR
from training.architectures.recurrent import RecurrentSR, pack_state, unpack_state
from training.architectures.srresnet import SRResNet
from training.atomic import atomic_path
from training.camera_data import CameraClips
from training.camera_degrade import CameraSettings
from training.config import (
    ConfigError,
    degradation_factor,
    generator_config,
    load_config,
)
from training.data import HRCrops, StepSampler
from training.degrade import degrade, imresize
from training.discriminator import Discriminator
from training.hardware import cpu_has_native_bf16
from training.logs import log_to_stderr
from training.losses import (
    VGGWeightsMissing,
    content_loss,
    discriminator_loss,
    generator_adversarial_loss,
    temporal_loss,
)
from training.weights import (
    build_generator,
    load_checkpoint,
    load_generator,
    save_weights,
)

if TYPE_CHECKING:
    from training.architectures.architecture import GeneratorConfig

log = logging.getLogger(__name__)

SAMPLE_BASE_INDEX = 1 << 39  # sample-grid crops come from indices training never reaches


def _setup_distributed() -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def learning_rate(base: float, schedule: str, step: int, steps: int) -> float:
    """The generator's learning rate at `step`: constant, x0.1 for the second half (the paper's SRGAN), or cosine."""
    if schedule == "drop_half":
        return base if step < steps // 2 else base * 0.1
    if schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))
    return base


def _data_card(c: dict[str, Any]) -> dict[str, Any]:
    """What the model card says of the training data and its degradation (the keys each degradation uses)."""
    data = c["data"]
    card: dict[str, Any] = {
        "patch_size": data["patch_size"],
        "data": [str(Path(p)) for p in data["train"]],
        "degradation": data["degradation"],
        "sigma": data["sigma"],
        "thickness": data["thickness"],
    }
    if data["degradation"] == "acquisition":
        card |= {k: data[k] for k in ("ratios", "thickness_ratios", "profiles")}
    if data["degradation"] == "camera" and data["videos"]:
        card |= {
            "videos": [str(Path(p)) for p in data["videos"]],
            "video_p": data["video_p"],
            "video_prescale": data["video_prescale"],
        }
    if data["degradation"] == "camera":
        card |= {
            "camera": CameraSettings.from_dict(data["camera"]).to_dict(),
            "batch": f"{c['train']['batch_size']} clips x {data['camera']['frames']} frames",
        }
    if data["qp_average"]:
        card["qp"] = "the clip's mean QP map on every frame"
    return card


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


class ClipUnroll(nn.Module):
    """A recurrent generator run causally over (B, T, C, h, w) LR clips from a zero state, as (B*T, C, H, W) SR.

    One module, so that DDP sees one forward (and one backward) a step however many frames the clip has; the
    state is not detached, so the gradient flows back through the whole clip (BPTT)."""

    def __init__(self, generator: RecurrentSR) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, T, C, h, w) LR clips -> (B*T, C, H, W) SR frames in (clip, frame) order, as `_batch` flattens HR."""
        config = self.generator.config
        state, frames = None, []
        for t in range(clips.shape[1]):
            packed = pack_state(clips[:, t], state, config.state_channels)
            out = self.generator(packed.contiguous(memory_format=torch.channels_last))
            sr, state = unpack_state(out, config.channels, config.scale)
            frames.append(sr)
        return torch.stack(frames, dim=1).flatten(0, 1)


class Trainer:
    """Holds the networks, optimisers and data of one run; `run()` trains to `train.steps`."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.rank, self.world, self.device = _setup_distributed()
        if config["train"]["minutes"] and self.world > 1:
            raise ConfigError(
                "train.minutes is for one process: under torchrun the ranks would stop at different "
                "steps; set train.steps instead"
            )
        self.out_dir = Path(config["out_dir"])
        self.checkpoint_path = self.out_dir / "checkpoint.pt"
        torch.manual_seed(config["seed"])
        arch, arch_config = generator_config(config)
        # channels_last is ~15% faster for these convs on CPU (oneDNN) and what tensor cores want on CUDA.
        self.generator = build_generator(arch, arch_config)
        # torch's stubs lack the to(device, memory_format=...) form, which Module.to takes as Tensor.to does
        self.generator.to(self.device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        train = config["train"]
        self.recurrent = isinstance(self.generator, RecurrentSR)
        if self.recurrent and config["data"]["degradation"] != "camera":
            raise ConfigError('a recurrent model trains on clips: data.degradation = "camera"')
        if train["init"]:
            self._load_init(train["init"])
        self.opt_g = torch.optim.Adam(
            self.generator.parameters(), lr=train["lr"], betas=(train["beta1"], train["beta2"])
        )
        # An exponential moving average of the generator's weights (train.ema = its decay, 0 = off) is what the
        # run ships: it averages out the last steps' noise, as Real-ESRGAN and most SR trainers do.
        self.ema: AveragedModel | None = None
        if train["ema"]:
            self.ema = AveragedModel(self.generator, multi_avg_fn=get_ema_multi_avg_fn(train["ema"]), use_buffers=True)
        self.gan = config["phase"] == "srgan"
        self.discriminator: nn.Module | None
        self.opt_d: torch.optim.Optimizer | None
        self.discriminator, self.opt_d = self._discriminator() if self.gan else (None, None)
        content = config["content"]
        self.content = content_loss(content["loss"], tuple(content["vgg_layer"]), content["vgg_weights"] or None).to(
            self.device
        )
        self.temporal = content["temporal"]
        self.step = 0
        self.seconds = 0.0
        if self.checkpoint_path.is_file():
            self._restore(load_checkpoint(self.checkpoint_path))
        # A recurrent generator trains unrolled over each clip: g_train takes LR clips and gives every frame's SR.
        self.g_train: nn.Module = (
            ClipUnroll(self.generator) if isinstance(self.generator, RecurrentSR) else self.generator
        )
        self.d_train: nn.Module | None = self.discriminator
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.g_train = DistributedDataParallel(self.g_train, device_ids=ids)
            if self.discriminator is not None:
                self.d_train = DistributedDataParallel(self.discriminator, device_ids=ids)
        self.dataset = self._dataset()
        # bf16 autocast on CUDA, and on CPUs with native bf16 (AMX: about 2x faster there); never emulated.
        self.amp = train["amp"] and (self.device.type == "cuda" or cpu_has_native_bf16())
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed patch size: the fastest conv algorithm is found once

    def _load_init(self, path: str) -> None:
        """Start from `train.init`: the same architecture's weights, for a recurrent generator a FastSR's
        (`load_fast`: with its state path at zero it starts as exactly that single-frame model), or for a FastSR or
        SRResNet one of another scale (the shapes that differ stay fresh)."""
        source, _ = load_generator(path)
        if isinstance(self.generator, RecurrentSR) and not isinstance(source, RecurrentSR):
            self.generator.load_fast(source.state_dict())
        elif isinstance(self.generator, FastSR) or (
            isinstance(self.generator, SRResNet)
            and isinstance(source, SRResNet)
            and source.scale != self.generator.scale
        ):
            skipped = self.generator.load_compatible(source.state_dict())
            if skipped and self.rank == 0:
                log.warning(
                    "train.init %s: not taken over (another shape, or absent here): %s", path, ", ".join(skipped)
                )
        else:
            self.generator.load_state_dict(source.state_dict())

    def _dataset(self) -> HRCrops | CameraClips:
        """HR crops (degraded on the batch), or, for the 'camera' degradation, (HR, LR) clips made in the workers."""
        config, data = self.config, self.config["data"]
        if data["degradation"] == "camera":
            return CameraClips(
                data["train"],
                data["patch_size"],
                config["model"]["scale"],
                CameraSettings.from_dict(data["camera"]),
                config["seed"],
                progress=self.rank == 0,
                videos=data["videos"],
                video_p=data["video_p"],
                video_prescale=data["video_prescale"],
                qp_plane=bool(config["model"].get("qp_input", False)),
                qp_average=data["qp_average"],
            )
        return HRCrops(
            data["train"], data["patch_size"], config["model"]["channels"], config["seed"], progress=self.rank == 0
        )

    # --- checkpoints -------------------------------------------------------------------------------------------

    def _discriminator(self) -> tuple[nn.Module, torch.optim.Optimizer]:
        """Phase 2's discriminator and its optimiser."""
        config, train = self.config, self.config["train"]
        discriminator = Discriminator(config["model"]["channels"], config["data"]["patch_size"])
        # torch's stubs lack the to(device, memory_format=...) form, which Module.to takes as Tensor.to does
        discriminator.to(self.device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        opt = torch.optim.Adam(
            discriminator.parameters(), lr=config["adversarial"]["d_lr"], betas=(train["beta1"], train["beta2"])
        )
        return discriminator, opt

    def _card(self) -> dict[str, Any]:
        c = self.config
        return {
            "name": c["name"],
            "training": {
                "phase": c["phase"],
                "steps": self.step,
                "batch_size": c["train"]["batch_size"] * self.world,
                **_data_card(c),
                **(
                    {
                        "unroll": "each clip in display order from a zero state, backpropagated through the whole "
                        "clip; content loss on every frame, equally weighted"
                    }
                    if self.recurrent
                    else {}
                ),
                "content_loss": c["content"]["loss"],
                **({"temporal_weight": c["content"]["temporal"]} if c["content"]["temporal"] else {}),
                "lr": c["train"]["lr"],
                "lr_schedule": c["train"]["lr_schedule"],
                "adversarial_weight": c["adversarial"]["weight"] if self.gan else 0.0,
                "ema": c["train"]["ema"],
                "init": c["train"]["init"],
                "seed": c["seed"],
                "hardware": _hardware(self.device),
                "processes": self.world,
                "seconds": round(self.seconds, 1),
            },
        }

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "step": self.step,
            "seconds": self.seconds,
            "generator": self.generator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "card": self._card(),
        }
        config = cast("GeneratorConfig", self.generator.config)  # a registered generator's config dataclass
        state["card"].update(
            architecture=self._arch(),
            config=config.to_dict(),
            scale=config.scale,
            channels=config.channels,
            **architectures.get(self._arch()).card_fields(self.generator),  # a recurrent model's state, as saved
        )
        if torch.cuda.is_available():
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        if self.discriminator is not None:
            assert self.opt_d is not None  # made with the discriminator
            state["discriminator"] = self.discriminator.state_dict()
            state["opt_d"] = self.opt_d.state_dict()
        if self.ema is not None:
            state["generator_ema"] = self.ema.module.state_dict()
            state["ema_updates"] = int(self.ema.n_averaged)
        return state

    def _arch(self) -> str:
        return self.config["model"]["architecture"]

    def _restore(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.opt_g.load_state_dict(state["opt_g"])
        if self.discriminator is not None:
            assert self.opt_d is not None  # made with the discriminator
            self.discriminator.load_state_dict(state["discriminator"])
            self.opt_d.load_state_dict(state["opt_d"])
        if self.ema is not None:  # a checkpoint from a run without train.ema starts the average afresh
            self.ema.module.load_state_dict(state.get("generator_ema", state["generator"]))
            self.ema.n_averaged.fill_(state.get("ema_updates", 0))
        torch.set_rng_state(state["rng_cpu"])
        if "rng_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["rng_cuda"], self.device)
        self.step, self.seconds = state["step"], state["seconds"]

    def save_checkpoint(self) -> None:
        """Atomically write OUT_DIR/checkpoint.pt (rank 0 only)."""
        if self.rank != 0:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(self._state(), tmp)

    # --- one step ----------------------------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.amp else nullcontext()

    def _degrade(self, hr: torch.Tensor, step: int) -> torch.Tensor:
        """LR of an HR batch; 'acquisition' draws each sample's thick-slice acquisition from a generator seeded by
        the step and rank, so a resumed run degrades exactly as an uninterrupted one."""
        data = self.config["data"]
        if data["degradation"] == "acquisition":
            rng = np.random.default_rng([self.config["seed"], step + 1, self.rank])
            return degrade_batch(hr, rng, data["ratios"], data["thickness_ratios"], data["profiles"])
        return degrade(hr, degradation_factor(self.config), data["degradation"], data["sigma"])

    def train_step(self, hr: torch.Tensor, lr_img: torch.Tensor | None = None) -> dict[str, float]:
        """One optimisation step on an HR batch in [0, 1] (and its LR, when the data made it); returns the losses."""
        c = self.config
        if lr_img is None:
            lr_img = self._degrade(hr, self.step)
        steps = c["train"]["steps"]
        progress = self._progress_step()
        for group in self.opt_g.param_groups:
            group["lr"] = learning_rate(c["train"]["lr"], c["train"]["lr_schedule"], progress, steps)
        logs: dict[str, float] = {}
        with self._autocast():
            sr = self.g_train(lr_img)
        if not self.gan:
            with self._autocast():
                loss, parts = self._content_terms(sr, hr)
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_g.step()
            self._update_ema()
            return {k: v.item() for k, v in parts.items()}
        assert self.d_train is not None and self.opt_d is not None  # phase 2: made with the discriminator
        for group in self.opt_d.param_groups:
            group["lr"] = learning_rate(c["adversarial"]["d_lr"], c["train"]["lr_schedule"], progress, steps)
        with self._autocast():
            d_loss = discriminator_loss(self.d_train(hr).float(), self.d_train(sr.detach()).float())
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        logs["d"] = d_loss.item()
        if self.step >= c["adversarial"]["d_warmup_steps"]:
            with self._autocast():
                content, parts = self._content_terms(sr, hr)
                adversarial = generator_adversarial_loss(self.d_train(sr).float())
                g_loss = content + c["adversarial"]["weight"] * adversarial
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()
            self._update_ema()
            logs.update({k: v.item() for k, v in parts.items()}, adv=adversarial.item())
        return logs

    def _content_terms(self, sr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The content loss of either phase, with the temporal term where `content.temporal` asks for it; the parts
        stay tensors, read only after the step (an early `.item()` would wait for the device mid-step)."""
        sr = sr.float()
        parts = {"content": self.content(sr, hr)}
        if self.temporal:
            parts["temporal"] = temporal_loss(sr, hr, self.config["data"]["camera"]["frames"])
            return parts["content"] + self.temporal * parts["temporal"], parts
        return parts["content"], parts

    def _update_ema(self) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.generator)

    def shipped_generator(self) -> nn.Module:
        """The weights a run ships: the moving average when `train.ema` is on, else the generator itself."""
        return self.ema.module if self.ema is not None else self.generator

    def _progress_step(self) -> int:
        """The step the schedule is at: the real one, or further on if a `train.minutes` budget runs out first."""
        minutes = self.config["train"]["minutes"]
        if not minutes:
            return self.step
        return max(self.step, int(self.config["train"]["steps"] * self.seconds / (60 * minutes)))

    def _out_of_time(self) -> bool:
        minutes = self.config["train"]["minutes"]
        return bool(minutes) and self.seconds >= 60 * minutes

    # --- the loop ----------------------------------------------------------------------------------------------
    def _loader(self) -> DataLoader:
        sampler = StepSampler(self.config["train"]["batch_size"], self.step, self.rank, self.world)
        workers = self.config["data"]["workers"]
        return DataLoader(
            self.dataset,
            batch_sampler=sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=workers > 0,
            prefetch_factor=4 if workers > 0 else None,
        )

    def _batch(self, batch: torch.Tensor | list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """HR (and LR, for clip pairs: clips x frames flattened into one batch) on the device, channels-last; a
        recurrent generator gets its HR flattened the same way but its LR as (clips, frames, C, h, w) clips."""
        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last), None
        if self.recurrent:  # ClipUnroll gives SR in the flattened order, (clip, frame)
            hr, lr = (x.to(self.device, non_blocking=True) for x in batch)
            return hr.flatten(0, 1).contiguous(memory_format=torch.channels_last), lr
        hr, lr = (
            x.flatten(0, 1).to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            for x in batch
        )
        return hr, lr

    def _sample_grid(self, writer) -> None:
        samples = [self.dataset[SAMPLE_BASE_INDEX + k] for k in range(4)]
        scale = self.config["model"]["scale"]
        if isinstance(samples[0], torch.Tensor):  # HRCrops: every sample is an HR crop
            hr = torch.stack(cast("list[torch.Tensor]", samples)).to(self.device)
            lr_img = self._degrade(hr, -1)
        else:  # clip pairs: each clip's middle frame
            hr = torch.stack([h[len(h) // 2] for h, _ in samples]).to(self.device)
            lr_img = torch.stack([low[len(low) // 2] for _, low in samples]).to(self.device)
        shipped = self.shipped_generator()
        shipped.eval()
        with torch.no_grad():
            if self.recurrent:  # the middle frame with the past of the frames before it
                clips = torch.stack([low[: len(low) // 2 + 1] for _, low in samples]).to(self.device)
                sr = ClipUnroll(cast(RecurrentSR, shipped))(clips).unflatten(0, clips.shape[:2])[:, -1].clamp(0, 1)
            else:
                sr = shipped(lr_img).clamp(0, 1)
        shipped.train()
        bicubic = imresize(lr_img[:, :3], scale, antialias=False).clamp(0, 1)  # the frame, not a QP plane
        rows = torch.cat([bicubic, sr, hr], dim=3)  # bicubic | SR | HR side by side
        grid = torch.cat(list(rows), dim=1)
        from torchvision.utils import save_image

        (self.out_dir / "samples").mkdir(parents=True, exist_ok=True)
        save_image(grid, self.out_dir / "samples" / f"step_{self.step:07d}.png")
        writer.add_image("samples/bicubic|sr|hr", grid, self.step)

    def run(self) -> Path | None:
        """Train until `train.steps`; rank 0 writes OUT_DIR/NAME.safetensors and returns its path."""
        c = self.config
        steps, log = c["train"]["steps"], c["log"]
        writer = None
        if self.rank == 0:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.out_dir / "tensorboard"))
        self.generator.train()
        if self.discriminator is not None:
            self.discriminator.train()
        bar = tqdm(total=steps, initial=self.step, desc=c["name"], disable=self.rank != 0, dynamic_ncols=True)
        batches = iter(self._loader())
        try:
            while self.step < steps and not self._out_of_time():
                started = time.perf_counter()
                hr, lr_img = self._batch(next(batches))
                losses = self.train_step(hr, lr_img)
                self.step += 1
                self.seconds += time.perf_counter() - started
                bar.update(1)
                if self.rank == 0 and (self.step % log["every"] == 0 or self.step == steps):
                    assert writer is not None  # rank 0 opened it
                    bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()})
                    for key, value in losses.items():
                        writer.add_scalar(f"loss/{key}", value, self.step)
                    writer.add_scalar("lr", self.opt_g.param_groups[0]["lr"], self.step)
                if self.rank == 0 and log["sample_every"] and self.step % log["sample_every"] == 0:
                    self._sample_grid(writer)
                if self.step % log["checkpoint_every"] == 0 or self.step == steps or self._out_of_time():
                    self.save_checkpoint()
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        if self.rank != 0:
            return None
        card = self._card()
        return save_weights(self.shipped_generator(), self.out_dir / f"{c['name']}.safetensors", card)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="TOML file (see training/configs/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set train.steps=2000 (repeatable)",
    )
    args = parser.parse_args(argv)
    log_to_stderr()
    try:
        config = load_config(args.config, args.overrides)
        trainer = Trainer(config)
    except (ConfigError, VGGWeightsMissing, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        path = trainer.run()
    except KeyboardInterrupt:
        trainer.save_checkpoint()
        print(f"interrupted at step {trainer.step}; checkpoint saved, run the same command to resume", file=sys.stderr)
        return 130
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if path is not None:
        print(f"wrote {path} ({trainer.step} steps, {trainer.seconds / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
