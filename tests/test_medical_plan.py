"""The typed plan of one volume, built from srmed's own parser and real volumes: what it says in-plane and
through-plane, the factors and descriptions the processing uses, the report entry's keys, and the tuning budget."""
import pytest

from conftest import DATA
from medical.commands import build_parser, check_options
from medical.dicom_read import find_series, read_series
from medical.nifti import read_nifti
from medical.plan import make_plan
from medical.tuning import Budget, self_supervised_budget
from srstream.engine import Upscaler

HEAD = DATA / "mri" / "t1_head_crop.nii.gz"
GE = DATA / "dicom" / "ge_epi_vol1"  # 3 mm slices every 5 mm


def _args(*options):
    args = build_parser().parse_args(["upscale", "IN", "-o", "OUT", "--backend", "cpu", *options])
    check_options(args)
    return args


@pytest.fixture(scope="module")
def thick_model():
    return Upscaler("mri-thick-x4", backend="cpu")


def test_a_through_plane_plan_of_a_real_series_with_a_gap(thick_model):
    volume = read_series(find_series(GE)[0])
    plan = make_plan(volume, _args("--through-plane", "--spacing", "2.2", "-m", "mri-thick-x4"), thick_model,
                     "dicom")
    axis = plan.slice_axis
    assert plan.through_plane and plan.mode == "through-plane" and plan.output_format == "dicom"
    assert (axis.spacing_mm, axis.thickness_mm, axis.thickness_from) == (5.0, 3.0, "SliceThickness")
    assert axis.target_spacing_mm == 2.2 and axis.ratio == round(5 / 2.2, 6) == plan.scale
    assert plan.factors == (1, 1, axis.ratio) and plan.target_spacing == 2.2
    assert list(axis.report()) == ["spacing_mm", "thickness_mm", "thickness_from", "target_spacing_mm", "ratio",
                                   "profile", "profile_evidence"]
    assert plan.describe("mri-thick-x4") == "srstream mri-thick-x4 through-plane 5 -> 2.2 mm axis 2"
    assert plan.tuning is None  # 'auto' does not tune on the CPU
    acquisition = plan.acquisition()
    assert (acquisition.spacing, acquisition.thickness, acquisition.profile) == (5.0, 3.0, axis.profile)


def test_the_model_factor_or_scale_sets_the_target_and_nifti_has_no_thickness(thick_model):
    volume = read_nifti(HEAD)
    plan = make_plan(volume, _args("--through-plane", "-m", "mri-thick-x4", "--axis", "0"), thick_model, "nifti")
    assert plan.slice_axis.target_spacing_mm == 0.25 and plan.factors == (4, 1, 1)  # the model's own x4
    assert plan.slice_axis.thickness_from.startswith("the slice spacing")
    plan = make_plan(volume, _args("--through-plane", "-m", "mri-thick-x4", "--scale", "2.5",
                                   "--slice-thickness", "2"), thick_model, "nifti")
    assert plan.slice_axis.target_spacing_mm == 0.4 and plan.slice_axis.thickness_mm == 2
    assert plan.slice_axis.thickness_from == "--slice-thickness"


def test_an_in_plane_plan_and_its_tuning_budget():
    up = Upscaler("mri-x2", backend="cpu")
    plan = make_plan(read_nifti(HEAD), _args("--self-supervised", "30"), up, "nifti")
    assert plan.slice_axis is None and plan.mode == "in-plane" and plan.scale == 2 and plan.factors == (2, 2, 1)
    assert plan.target_spacing is None and plan.describe("mri-x2") == "srstream mri-x2 in-plane x2 axis 2"
    assert plan.tuning == Budget(30.0, None)
    assert self_supervised_budget("off", up, False) is None and self_supervised_budget("0", up, False) is None
    assert self_supervised_budget("auto", up, True) is None  # a CPU engine
    defaults = _args("--through-plane")
    assert defaults.scale == 4.0 and defaults.model == "mri-thick"  # what check_options fills in
