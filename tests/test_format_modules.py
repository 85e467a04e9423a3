"""medical/formats/{nifti,dicom_series,enhanced}.py and the blind QP estimate (training/qp_estimator.py): each
format recognises its own real files and no other's; the estimator reads a harder encode as a higher QP."""

import numpy as np

from medical import formats
from medical.formats.dicom_series import DicomSeries
from medical.formats.enhanced import EnhancedDicom
from medical.formats.nifti import Nifti
from training.codec import Encoding, compress_with_facts
from training.qp_estimator import qp_map, shipped

from assets import CLIP, ENHANCED, GE, HEAD


def test_each_format_claims_its_own_real_files():
    nifti, classic, enhanced = Nifti(), DicomSeries(), EnhancedDicom()
    first_ge, first_enhanced = sorted(GE.glob("*.dcm"))[0], sorted(ENHANCED.iterdir())[0]
    assert nifti.detect(HEAD) and not nifti.detect(first_ge) and nifti.stem(HEAD) == "t1_head_crop"
    assert nifti.header_shape(HEAD) == (64, 64, 32)
    assert formats.for_file(HEAD).name == "nifti" and formats.by_name("dicom").name == classic.name
    assert classic.detect(first_ge) and not enhanced.detect(first_ge)
    assert enhanced.detect(first_enhanced)
    assert formats.claiming(first_ge) is None  # file formats only: a DICOM file belongs to its series
    assert not enhanced.writable and classic.writable and "dicom-enhanced" not in formats.output_names()


def test_the_blind_estimate_reads_a_harder_encode_as_a_higher_qp():
    import av

    with av.open(str(CLIP)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for _, f in zip(range(4), c.decode(video=0))])
    net = shipped()
    assert net is not None  # shipped with the package
    means = {}
    for crf in (18, 40):
        decoded, _facts = compress_with_facts(frames, Encoding("libx264", crf, "medium", bframes=0))
        estimate = qp_map(decoded[2], net)
        assert estimate.shape == (12, 20) and np.all((estimate >= 0) & (estimate <= 51))
        means[crf] = float(estimate.mean())
    assert means[40] > means[18] + 5
