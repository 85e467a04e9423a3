"""The typed plan of one volume, built from srmed's own parser and real volumes: what it says in-plane and
through-plane, the factors and descriptions the processing uses, the report entry's keys, and the tuning budget."""
import pytest

from medical.commands import build_parser, check_options
from medical.dicom_read import find_series, read_series
from medical.model_choice import Engines
from medical.nifti_io import read_nifti
from medical.plan import make_plan
from medical.tuning import Budget, self_supervised_budget

from assets import GE, HEAD, SHEAR_SMALL


def _job(*options):
    return check_options(build_parser().parse_args(["upscale", "IN", "-o", "OUT", "--backend", "cpu", *options]))


@pytest.fixture(scope="module")
def built():
    """Engines shared by the tests here, by model (loading is the slow part)."""
    return {}


def _plan(volume, options, built, output_format):
    job = _job(*options)
    return make_plan(volume, job, Engines(job, built), output_format)


def test_a_through_plane_plan_of_a_real_series_with_a_gap(built):
    volume = read_series(find_series(GE)[0])
    plan, _ = _plan(volume, ("--through-plane", "--spacing", "2.2", "-m", "mri-thick-x4"), built, "dicom")
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


def test_the_model_factor_or_scale_sets_the_target_and_nifti_has_no_thickness(built):
    volume = read_nifti(HEAD)
    plan, _ = _plan(volume, ("--through-plane", "-m", "mri-thick-x4", "--axis", "0"), built, "nifti")
    assert plan.slice_axis.target_spacing_mm == 0.25 and plan.factors == (4, 1, 1)  # the model's own x4
    assert plan.slice_axis.thickness_from.startswith("the slice spacing")
    plan, _ = _plan(volume, ("--through-plane", "-m", "mri-thick-x4", "--scale", "2.5", "--slice-thickness", "2"),
                    built, "nifti")
    assert plan.slice_axis.target_spacing_mm == 0.4 and plan.slice_axis.thickness_mm == 2
    assert plan.slice_axis.thickness_from == "--slice-thickness"


def test_an_in_plane_plan_and_its_tuning_budget(built):
    plan, up = _plan(read_nifti(HEAD), ("--self-supervised", "30"), built, "nifti")
    assert up.spec.descriptor.name == "mri-x2" and plan.model == "mri-x2"
    assert plan.slice_axis is None and plan.mode == "in-plane" and plan.scale == 2 and plan.factors == (2, 2, 1)
    assert plan.target_spacing is None and plan.describe("mri-x2") == "srstream mri-x2 in-plane x2 axis 2"
    assert plan.tuning == Budget(30.0, None)
    assert self_supervised_budget("off", up, False) is None and self_supervised_budget("0", up, False) is None
    assert self_supervised_budget("auto", up, True) is None  # a CPU engine
    defaults = _job("--through-plane")
    assert defaults.scale is None and defaults.model is None and defaults.mode == "through-plane"


def test_thick_slices_go_through_plane_by_default_to_about_the_in_plane_spacing(built):
    volume = read_nifti(SHEAR_SMALL)
    plan, up = _plan(volume, (), built, "nifti")
    assert plan.mode == "through-plane" and plan.axis == 2 and up.spec.descriptor.name == "mri-thick"
    assert plan.slice_axis.target_spacing_mm == round(max(volume.spacing[:2]), 6)
    assert plan.factors[2] == pytest.approx(volume.spacing[2] / max(volume.spacing[:2]), rel=1e-5)
    assert "over 1.5x" in plan.reason and "--in-plane" in plan.reason
    forced, up = _plan(volume, ("--in-plane",), built, "nifti")
    assert forced.mode == "in-plane" and forced.factors == (2, 2, 1) and forced.reason == "--in-plane"
    assert up.spec.descriptor.name == "mri-x2"


def test_near_isotropic_voxels_stay_in_plane_and_a_named_model_decides(built):
    plan, _ = _plan(read_nifti(HEAD), (), built, "nifti")  # 1 mm isotropic
    assert plan.mode == "in-plane" and plan.factors == (2, 2, 1) and "not over 1.5x" in plan.reason
    plan, _ = _plan(read_nifti(HEAD), ("-m", "mri-thick-x4"), built, "nifti")
    assert plan.mode == "through-plane" and plan.reason == "model mri-thick-x4 is a thick-slice model"
    plan, _ = _plan(read_nifti(SHEAR_SMALL), ("-m", "mri-x4"), built, "nifti")
    assert plan.mode == "in-plane" and plan.factors == (4, 4, 1)  # the model's own scale, no --scale needed


def test_the_thick_axis_is_found_on_any_axis_and_thickness_counts(built):
    volume = read_nifti(SHEAR_SMALL)
    turned = type(volume)(volume.data.transpose(2, 0, 1), volume.affine[:, [2, 0, 1, 3]], volume.source,
                          volume.dtype, dict(volume.meta))
    plan, _ = _plan(turned, (), built, "nifti")
    assert plan.axis == 0 and plan.mode == "through-plane"
    head = read_nifti(HEAD)  # 1 mm slices 1 mm apart, but 3 mm thick: thick by their thickness, yet as dense as
    plan, _ = _plan(head, ("--slice-thickness", "3"), built, "nifti")  # in-plane: nothing to add through-plane
    assert plan.mode == "in-plane"
