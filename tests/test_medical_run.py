"""medical/run.py, report.py, preview.py and gradients.py: one input through `process` (what the CLI, BIDS, the
node, pull mode and the demo all call), its report and preview, and a diffusion table carried or refused."""

import json
import pathlib

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from medical import formats
from medical.discover import discover
from medical.gradients import beside, carry, load
from medical.job import VolumeJob
from medical.model_choice import Engines
from medical.preview import write_preview
from medical.report import report_path, write_report, write_summary
from medical.run import process, run_all
from medical.volume import VolumeError

from assets import DWI, HEAD


def test_process_upscales_reports_and_previews_one_volume(tmp_path):
    job = VolumeJob(output=tmp_path, model="mri-x2", backend="cpu", preview=True, quiet=True)
    (task,) = discover([str(HEAD)])
    report = process(task, job, Engines(job))
    source = nib.load(HEAD)
    out = nib.load(report["output"])
    assert report["mode"] == "in-plane" and report["model"] == "mri-x2" and report["volumes"] == 1
    assert out.shape == (source.shape[0] * 2, source.shape[1] * 2, source.shape[2])
    assert np.allclose(out.header.get_zooms()[:2], np.array(source.header.get_zooms()[:2]) / 2)
    assert Image.open(report["preview"]).size[0] > source.shape[0]  # before | after, side by side
    before = formats.by_name("nifti").open(HEAD, None).read(0)
    after = formats.by_name("nifti").open(pathlib.Path(report["output"]), None).read(0)
    after.meta["factors"] = (2, 2, 1)  # what the run knows of its result; a file read back does not say it
    again = write_preview(before, after, tmp_path / "again.png")
    assert Image.open(again).size == Image.open(report["preview"]).size
    write_report(tmp_path, task, report)
    assert json.loads(report_path(tmp_path, task).read_text())["output"] == report["output"]


def test_run_all_skips_what_is_reported_and_summarises_failures(tmp_path):
    job = VolumeJob(output=tmp_path, model="mri-x2", backend="cpu", quiet=True)
    tasks = discover([str(HEAD), str(tmp_path / "missing.nii.gz")])
    done, skipped, failed = run_all(tasks, job, Engines(job))
    assert (done, skipped, len(failed)) == (1, 0, 1) and "missing.nii.gz" in failed[0]["error"]
    assert run_all(tasks[:1], job, Engines(job))[:2] == (0, 1)  # its report marks it done
    write_summary(tmp_path, 1, 1, failed)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["failed"] == 1 and "trace" not in summary["failures"][0]


def test_a_diffusion_table_is_carried_whole_or_one_column_and_a_wrong_one_refused(tmp_path):
    files = beside(DWI)
    assert [p.suffix for p in files] == [".bval", ".bvec"]
    tables = load(files, volumes=17)
    written = carry(tables, tmp_path / "dwi_sr", index=None)
    assert [pathlib.Path(w).read_text() for w in written] == [
        "\n".join(" ".join(f"{v:.10g}" for v in row) for row in t) + "\n" for _, t in tables]
    (_, bval), one = tables[0], carry(tables, tmp_path / "dwi_vol3", index=3)
    assert np.loadtxt(one[0]).item() == bval[0, 3] and np.loadtxt(one[1]).shape == (3,)
    with pytest.raises(VolumeError, match=r"dwi_philips_crop\.bval: 1x17 values for 16 volumes"):
        load(files, volumes=16)
