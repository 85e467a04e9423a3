"""The derivatives dataset srmed writes: BIDS names with desc-sr, dataset_description.json, and one sidecar per
output that holds srmed's own report beside the BIDS fields.

Outputs keep their source's path and entities and gain `desc-sr`, the last entity before the suffix:
sub-01/ses-a/anat/sub-01_ses-a_acq-x_T1w.nii.gz -> sub-01/ses-a/anat/sub-01_ses-a_acq-x_desc-sr_T1w.nii.gz. No
`res-` entity: that is for several resolutions of one derivative side by side (with a `Resolution` table), and
here each source has one output; other settings go in another OUTPUT_DIR.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from medical.bids.dataset import read_json_object
from medical.volume import VolumeError
from training.atomic import atomic_path

DESC = "sr"
BIDS_VERSION = "1.10.0"
# srmed's run summary and --preview montages are not BIDS files, and BIDS derivatives define no gradient tables
# yet (BEP016 proposes them; diffusion pipelines write them beside the image all the same): listed so that
# validators pass over them.
IGNORED = ("summary.json", "*_preview.png", "*_dwi.bval", "*_dwi.bvec")


def derivative_stem(source: str) -> str:
    """The output's path in the derivatives dataset, without extension, from the source's path in its dataset."""
    folder, _, name = source.rpartition("/")
    entities, _, suffix = re.sub(r"\.nii(\.gz)?$", "", name).rpartition("_")
    return f"{folder}/{entities}_desc-{DESC}_{suffix}" if folder else f"{entities}_desc-{DESC}_{suffix}"


def source_uri(source: str) -> str:
    """The BIDS URI of a source file (its path in the source dataset), through DatasetLinks' `raw`."""
    return f"bids:raw:{source}"


def _raw_link(out_dir: Path, source_root: Path) -> str:
    # Relative where the derivatives sit inside the source dataset (they then move with it), else absolute.
    out_dir, source_root = out_dir.resolve(), source_root.resolve()
    if out_dir.is_relative_to(source_root):
        return os.path.relpath(source_root, out_dir)
    return source_root.as_uri()


def description(source_root: Path, out_dir: Path, source_description: dict[str, Any]) -> dict[str, Any]:
    """The derivatives dataset's dataset_description.json."""
    from srstream import __version__

    source = {"URL": Path(source_root).resolve().as_uri()}
    if source_description.get("DatasetDOI"):
        source["DOI"] = source_description["DatasetDOI"]
    name = source_description.get("Name") or Path(source_root).resolve().name
    return {
        "Name": f"srstream super-resolution of {name}",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "srstream",
                "Version": __version__,
                "Description": "srmed bids: slice-wise super-resolution of MRI images",
            }
        ],
        "SourceDatasets": [source],
        "DatasetLinks": {"raw": _raw_link(out_dir, source_root)},
    }


def _write(path: Path, text: str) -> None:
    # Atomically, as srmed writes everything: a file that exists is whole.
    try:
        with atomic_path(path, suffix=path.suffix) as tmp:
            Path(tmp).write_text(text)
    except OSError as exc:
        raise VolumeError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    _write(path, json.dumps(data, indent=2) + "\n")


def check_output(out_dir: Path, source_root: Path) -> None:
    """Refuse an OUTPUT_DIR that is the source dataset or holds a dataset srstream did not make."""
    out_dir, source_root = Path(out_dir), Path(source_root)
    if out_dir.resolve() == source_root.resolve():
        raise VolumeError(
            f"{out_dir}: the output must not be the source dataset (use {source_root}/derivatives/srstream)"
        )
    target = out_dir / "dataset_description.json"
    if target.exists():
        generated = read_json_object(target).get("GeneratedBy")
        if not any(isinstance(g, dict) and g.get("Name") == "srstream" for g in generated or []):
            raise VolumeError(f"{target}: {out_dir} holds another dataset, not srstream's derivatives")


def write_dataset(out_dir: Path, source_root: Path) -> None:
    """Make `out_dir` srstream's derivatives dataset (description, README, .bidsignore); refuse another dataset."""
    out_dir, source_root = Path(out_dir), Path(source_root)
    check_output(out_dir, source_root)
    target = out_dir / "dataset_description.json"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VolumeError(f"{out_dir}: cannot create ({exc.strerror or exc})") from None
    source_description = read_json_object(source_root / "dataset_description.json")
    _write_json(target, description(source_root, out_dir, source_description))
    ignore = out_dir / ".bidsignore"
    lines = ignore.read_text().splitlines() if ignore.exists() else []
    if any(pattern not in lines for pattern in IGNORED):
        _write(ignore, "\n".join([*lines, *(p for p in IGNORED if p not in lines)]) + "\n")
    readme = out_dir / "README.md"
    if not readme.exists():  # the user's own notes, once there, are theirs
        _write(readme, _README.format(name=source_description.get("Name") or source_root.resolve().name))


_README = """# srstream super-resolution of {name}

Super-resolved copies of the dataset's images, made by `srmed bids` (srstream). Each image keeps its
source's name with `desc-sr` added; its JSON sidecar names the source (`Sources`), says what was done
(`Description`) and holds srmed's report of the run under `srstream` (model, plan, shapes and spacing in and out,
backend, time). `summary.json` counts the last run's volumes and lists its failures.
"""


def _plan_line(report: dict[str, Any]) -> str:
    """srmed's own one-line description of the plan (as in the NIfTI header), from the report of the volume."""
    from medical.plan import Plan, SliceAxis

    slice_axis = SliceAxis(**report["slice_axis"]) if report.get("slice_axis") else None
    plan = Plan(
        model=report["model"],
        axis=report["axis"],
        scale=report["scale"],
        slice_axis=slice_axis,
        tuning=None,
        output_format=report["format"],
    )
    return plan.describe()


def sidecar(report: dict[str, Any], source_meta: dict[str, Any], source: str) -> dict[str, Any]:
    """The output's sidecar: the source's metadata carried over, the BIDS derivative fields, srmed's report."""
    if report.get("slice_axis") and "SliceTiming" in source_meta:
        # One time per acquired slice: the refined slice axis has other slices, acquired at no one time.
        source_meta = {k: v for k, v in source_meta.items() if k != "SliceTiming"}
    return {
        **source_meta,  # acquisition parameters still describe how the voxels were acquired
        "Description": f"Super-resolution: {_plan_line(report)}",
        "Sources": [source_uri(source)],
        # Required for MRI derivatives; super-resolution strips nothing, so it is the source's (raw: false).
        "SkullStripped": bool(source_meta.get("SkullStripped", False)),
        "srstream": report,
    }


def finish_sidecar(path: Path, source_meta: dict[str, Any], source: str) -> bool:
    """Turn srmed's report at `path` into the BIDS sidecar, if it is not one yet; True if it was rewritten.

    srmed writes its report last, as the mark of a finished volume; this runs after, and again on every rerun, so
    a run cut off between the two leaves a report that the next run finishes.
    """
    data = read_json_object(path)
    if "srstream" in data:
        return False
    _write_json(path, sidecar(data, source_meta, source))
    return True
