"""The real files the tests read, named once (as PyAV's tests/common.py does); where each comes from and under which
terms is in tests/data/SOURCES.md. Import these names rather than building paths in a test file."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
EXAMPLES = ROOT / "examples"

# Video
CLIP = DATA / "video" / "vtest_320x180_2s.mp4"  # real surveillance footage (H.264, 320x180, 25 fps, 50 frames)
SAMPLE = EXAMPLES / "vtest_320x180.mp4"  # README command 1's clip: the same camera, 4 s, 100 frames, AAC audio

# Photos
PHOTO = DATA / "train" / "167062.png"  # a BSD68 training photo

# MRI and CT volumes (NIfTI)
HEAD = DATA / "mri" / "t1_head_crop.nii.gz"  # 64 x 64 x 32 voxels of the evaluation T1 head, 1 mm
SHEAR = DATA / "mri" / "shear.nii.gz"  # an oblique, sheared affine
SHEAR_SMALL = DATA / "mri" / "shear_small.nii.gz"  # 0.48 x 0.48 x 2.37 mm: thick slices
DWI = DATA / "mri" / "dwi_philips_crop.nii.gz"  # 17 volumes, with .bval/.bvec beside it (FSL layout)

# DICOM series
GE = DATA / "dicom" / "ge_epi_vol1"  # 15 GE EPI slices, one file each: 3 mm slices every 5 mm
EPI = DATA / "dicom" / "ge_epi"  # the whole GE EPI series: 10 volumes of 15 slices, 64x64, TR 5 s
ENHANCED = DATA / "dicom" / "enhanced"  # one enhanced MR file of 6 frames (thickness in its functional groups)
MOSAIC = DATA / "dicom" / "si_epi_mosaic"  # Siemens EPI, 2 volumes of 5 slices, each volume one mosaic file
CT = DATA / "dicom" / "ct_cptac_gbm_head"  # 6 slices of a real head CT (GE, 512x512, 1.25 mm)
