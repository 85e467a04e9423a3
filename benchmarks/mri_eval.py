"""Grey models on a real MRI volume against cubic interpolation, in-plane and through-plane, as JSON.

    python benchmarks/mri_eval.py ../shared/data/mri/eval/t1_head.nii.gz --in-plane mri-x2,mri-x4 \
        --through-plane mri-thick,mri-thick-x4 [--acquisitions 4x4,2.5,3x2,2.5:gaussian] [--axis 2] \
        [--self-supervised SECONDS] [--tta] [--out benchmarks/results/mri_t1_head.json]

Protocol. In-plane x r: every slice perpendicular to `--axis` is shrunk with the benchmark's MATLAB bicubic (as the
grey models were trained), then brought back by `medical.slicewise.upscale_in_plane` and by cubic interpolation; the
volume is cropped so those axes divide by r. Through-plane: thick slices of each `--acquisitions` entry (spacing and
thickness in mm, box or Gaussian profile; `4x4` on a 1 mm volume is 4 neighbouring slices averaged) are simulated
along `--axis` (`medical.thick`), then that axis is brought back to the volume's own spacing by
`medical.slicewise.upscale_through_plane` and by cubic interpolation. With `--self-supervised SECONDS`, each model
is also fine-tuned for that long on the degraded volume itself (`medical.self_supervised`, as `srmed
--self-supervised`) and measured again: in-plane, x r on its own shrunk slices; through-plane, on its sharp
in-plane slices (a through-plane model learns the acquisition, an x r model learns x r). The original volume is
never seen. With `--tta` every model also runs as the engine's self-ensemble (`srmed --tta`) and is measured again.
Each is compared with the original volume: PSNR over all voxels with the original's maximum as peak, and SSIM
(torchmetrics, Gaussian 11x11) averaged over the slices perpendicular to `--axis`.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torchmetrics.functional.image import structural_similarity_index_measure as ssim

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from report import emit

from medical.self_supervised import fine_tune
from medical.slicewise import cubic_upscale, resample_axis, upscale_in_plane, upscale_through_plane
from medical.thick import thicken
from medical.tuning import ECLARE_PATCHES
from medical.volume import Volume
from srstream.engine import Upscaler
from training.acquisition import Acquisition, target_grid
from training.degrade import bicubic_downsample


def psnr(test: np.ndarray, ref: np.ndarray, peak: float) -> float:
    """PSNR in dB of `test` against `ref` over all voxels."""
    mse = float(np.mean((test.astype(np.float64) - ref) ** 2))
    return 10 * np.log10(peak ** 2 / mse)


def mean_ssim(test: np.ndarray, ref: np.ndarray, peak: float, axis: int) -> float:
    """SSIM averaged over the slices perpendicular to `axis`."""
    t = torch.from_numpy(np.moveaxis(test, axis, 0).astype(np.float32))[:, None]
    r = torch.from_numpy(np.moveaxis(ref, axis, 0).astype(np.float32))[:, None]
    values = [float(ssim(t[i:i + 32], r[i:i + 32], data_range=peak, reduction="none").sum())
              for i in range(0, len(t), 32)]
    return sum(values) / len(t)


def crop(data: np.ndarray, factors: tuple[int, int, int]) -> np.ndarray:
    """`data` cut at the end of each axis to a multiple of its factor."""
    return data[tuple(slice(0, (n // f) * f) for n, f in zip(data.shape, factors))]


HU_METRICS = False  # set by --hu
HU_RANGE = (-1024.0, 3071.0)  # CT metrics (--hu): 12-bit HU, padding outside the scan's field of view as air
HU_BODY = -500.0  # HU above this in the truth: tissue and bone, where the HU error is reported


def scores(name: str, test: np.ndarray, ref: np.ndarray, peak: float, axis: int, hu: bool = False) -> dict:
    if hu:
        test, ref = np.clip(test, *HU_RANGE), np.clip(ref, *HU_RANGE)
        body = ref > HU_BODY
        peak = HU_RANGE[1] - HU_RANGE[0]
        extra = {f"{name}_mae_hu_body": round(float(np.abs(test[body] - ref[body]).mean()), 2)}
        test, ref = test - HU_RANGE[0], ref - HU_RANGE[0]
    else:
        extra = {}
    return {f"{name}_psnr": round(psnr(test, ref, peak), 3), f"{name}_ssim": round(mean_ssim(test, ref, peak, axis), 4),
            **extra}


def compare(task: str, upscaler: Upscaler, small: np.ndarray, sr: np.ndarray, hr: np.ndarray,
            cubic: np.ndarray, seconds: float, ssim_axis: int) -> dict:
    """One result row: the model's output and cubic interpolation of `small`, both against `hr` (CT: in HU,
    see HU_RANGE, where --hu is set)."""
    out = {"task": task, "model": upscaler.spec.name, "backend": upscaler.backend_name,
           "precision": upscaler.precision, "tta": upscaler.tta,
           "input_shape": list(small.shape), "hr_shape": list(hr.shape), "seconds": round(seconds, 2)}
    peak = float(hr.max())
    out.update(scores("model", sr, hr, peak, ssim_axis, HU_METRICS))
    out.update(scores("cubic", cubic, hr, peak, ssim_axis, HU_METRICS))
    out["gain_db"] = round(out["model_psnr"] - out["cubic_psnr"], 3)
    return out


def in_plane(volume: Volume, model: str, axis: int, backend: str, tta: bool = False, precision: str = "auto",
             self_supervised: float = 0.0) -> dict:
    """Shrink each slice x r (MATLAB bicubic), then model vs cubic back to the original; with `self_supervised`
    seconds, the model is first tuned x r on the shrunk volume's own slices (zero-shot, as `srmed
    --self-supervised` in-plane)."""
    upscaler = Upscaler(model, backend=backend, tile=None, batch_size=16, tta=tta, precision=precision)
    r = upscaler.scale
    factors = tuple(1 if a == axis else r for a in range(3))
    hr = crop(volume.data, factors)
    slices = torch.from_numpy(np.moveaxis(hr, axis, 0).astype(np.float32))[:, None]
    lr = np.moveaxis(bicubic_downsample(slices, r)[:, 0].double().numpy(), 0, axis)
    small = Volume(lr, volume.affine, volume.source, volume.dtype)
    started = time.perf_counter()
    tuning = None
    if self_supervised:
        spec, tuning = fine_tune(upscaler.spec, small, axis=axis, seconds=self_supervised, device=upscaler.device,
                                 max_patches=ECLARE_PATCHES if upscaler.device.type == "cuda" else None)
        upscaler = Upscaler(spec, backend=backend, tile=None, batch_size=16, tta=tta, precision=precision)
    sr = upscale_in_plane(small, upscaler, axis=axis, progress=False).data
    row = compare(f"in-plane x{r}", upscaler, lr, sr, hr, cubic_upscale(lr, factors), time.perf_counter() - started,
                  axis)
    if tuning is not None:
        row["self_supervised"] = tuning
    return row


def parse_acquisition(text: str) -> Acquisition:
    """'SPACINGxTHICKNESS[:PROFILE]' in mm, e.g. '2.5x2.5', '3x2:gaussian'."""
    size, _, profile = text.partition(":")
    spacing, _, thickness = size.partition("x")
    return Acquisition(float(spacing), float(thickness or spacing), profile or "box")


def through_plane(volume: Volume, model: str, axis: int, backend: str, acquisition: Acquisition,
                  self_supervised: float = 0.0, tta: bool = False, precision: str = "auto") -> dict:
    """Thick slices of `acquisition` simulated along `axis` (`medical.thick`), then model vs cubic back onto the
    fine spacing along that axis."""
    upscaler = Upscaler(model, backend=backend, tile=None, batch_size=16, tta=tta, precision=precision)
    small, covered = thicken(volume, axis, acquisition)
    fine = volume.spacing[axis]
    hr = np.take(volume.data, range(covered.start, covered.stop), axis=axis)
    started = time.perf_counter()
    tuning = None
    if self_supervised:
        learns = upscaler.spec.descriptor.through_plane  # else an x r model learns x r (SMORE)
        spec, tuning = fine_tune(upscaler.spec, small, axis=axis, seconds=self_supervised,
                                 acquisition=acquisition if learns else None, target=fine if learns else None,
                                 device=upscaler.device,
                                 max_patches=ECLARE_PATCHES if upscaler.device.type == "cuda" else None)
        upscaler = Upscaler(spec, backend=backend, tile=None, batch_size=16, tta=tta, precision=precision)
    result = upscale_through_plane(small, upscaler, axis=axis, progress=False, spacing=fine)
    assert result.shape == hr.shape, (result.shape, hr.shape)
    _, positions = target_grid(small.shape[axis], acquisition.spacing, fine)
    cubic = resample_axis(small.data, axis, positions)
    ssim_axis = next(a for a in range(3) if a != axis)  # the planes that contain the upscaled axis
    label = f"through-plane {acquisition.spacing:g} mm ({acquisition.thickness:g} mm {acquisition.profile}) " \
            f"-> {fine:g} mm"
    row = compare(label, upscaler, small.data, result.data, hr, cubic, time.perf_counter() - started, ssim_axis)
    row["acquisition_mm"] = {"spacing": acquisition.spacing, "thickness": acquisition.thickness,
                             "profile": acquisition.profile}
    if tuning is not None:
        row["self_supervised"] = tuning
    return row


def read_volume(path: Path, crop_text: str | None) -> Volume:
    """A NIfTI file or the first series of a DICOM folder (srmed's readers), cropped to `crop_text` if given."""
    from medical.discover import discover

    volume = discover([str(path)])[0].open().read(0)
    if crop_text:
        starts, region = [], []
        for part in crop_text.split(","):
            a, b = (int(v) for v in part.split(":"))
            starts.append(a)
            region.append(slice(a, b))
        affine = volume.affine.copy()
        affine[:3, 3] = (volume.affine @ np.array([*starts, 1.0]))[:3]
        volume = Volume(volume.data[tuple(region)], affine, volume.source, volume.dtype, volume.meta)
    return volume


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("volume", type=Path)
    parser.add_argument("--in-plane", default="mri-x2,mri-x4", help="comma list of models for in-plane")
    parser.add_argument("--through-plane", default="mri-thick-x4", help="comma list of models for through-plane")
    parser.add_argument("--acquisitions", default="4x4",
                        help="through-plane: comma list of SPACINGxTHICKNESS[:box|gaussian] in mm "
                             "(default %(default)s)")
    parser.add_argument("--axis", type=int, default=2, help="slice axis (0, 1 or 2)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--precision", default="auto", help="comma list: each model is measured in each")
    parser.add_argument("--self-supervised", type=float, default=0.0, metavar="SECONDS",  # on a GPU: 1M patches at most
                        help="also measure each model fine-tuned this long on the degraded volume itself")
    parser.add_argument("--tta", action="store_true", help="also measure each model as a self-ensemble")
    parser.add_argument("--plain", action=argparse.BooleanOptionalAction, default=True,
                        help="measure each model without the self-ensemble too (--no-plain: only with --tta)")
    parser.add_argument("--hu", action="store_true", help="CT: metrics on HU clipped to -1024..3071 (peak 4095), "
                        "and the mean absolute HU error where the truth is above -500 HU")
    parser.add_argument("--crop", help="I0:I1,J0:J1,K0:K1 voxels to keep (e.g. the head of a CT's field of view)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    global HU_METRICS
    HU_METRICS = args.hu
    modes = [False] * args.plain + [True] * args.tta
    if not modes:
        parser.error("--no-plain leaves nothing to measure without --tta")
    volume = read_volume(args.volume, args.crop)
    precisions = args.precision.split(",")
    results = []
    for model in filter(None, args.in_plane.split(",")):
        for tta in modes:
            for p in precisions:
                results.append(in_plane(volume, model, args.axis, args.backend, tta, p))
                if args.self_supervised:
                    results.append(in_plane(volume, model, args.axis, args.backend, tta, p, args.self_supervised))
    acquisitions = [parse_acquisition(a) for a in args.acquisitions.split(",") if a]
    for model in filter(None, args.through_plane.split(",")):
        for acquisition in acquisitions:
            for tta in modes:
                for p in precisions:
                    results.append(through_plane(volume, model, args.axis, args.backend, acquisition, tta=tta,
                                                 precision=p))
                    if args.self_supervised:
                        results.append(through_plane(volume, model, args.axis, args.backend, acquisition,
                                                     args.self_supervised, tta, p))
    report = {"command": shlex.join(["python", "benchmarks/mri_eval.py", *(sys.argv[1:] if argv is None else argv)]),
              "volume": args.volume.name, "shape": list(volume.shape), "spacing_mm": volume.spacing,
              "axis": args.axis, "results": results}
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
