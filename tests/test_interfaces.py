"""Small units of the front doors, each on real inputs: how the video CLI turns its flags into one Settings and its
outputs' names, the status line, SIGTERM as an interrupt, an unreachable Ray or DICOM peer in one line, a BIDS
derivative's names, and the demo's own boxes (output size, volume index)."""

import os
import pathlib
import signal
import time

import pytest

from demo.app import _output_size, _volume_index
from medical.bids.derivatives import derivative_stem, source_uri
from medical.node.sender import SendError, destination, store
from medical.volume import VolumeError
from srstream.commands import build_parser
from srstream.ray_tasks import RayUnavailable, connect
from srstream.signals import sigterm_as_interrupt
from srstream.video.commands import _jobs, _settings
from srstream.video.settings import EncodeOptions
from srstream.video.status import StatusLines

from assets import CLIP, GE
from conftest import free_port


def test_the_video_cli_builds_one_settings_from_its_flags_and_names_each_output(tmp_path):
    args = build_parser().parse_args(["upscale", str(CLIP), str(tmp_path), "--crf", "23", "--preset", "fast",
                                      "--retries", "2", "--max-latency", "1.5", "-t", "3", "--batch", "2"])
    settings = _settings(args, None, "upscaled by srstream fast-x4")
    assert settings.options == EncodeOptions(crf=23, preset="fast")
    assert (settings.retries, settings.max_latency, settings.duration, settings.batch) == (2, 1.5, 3.0, 2)
    assert settings.label == "upscaled by srstream fast-x4" and settings.live is None
    several, jobs = _jobs(args, [str(CLIP)], str(tmp_path))  # an existing folder: OUTDIR
    assert several and jobs[0][1].parent == tmp_path and jobs[0][1].suffix == ".mp4"
    with pytest.raises(ValueError, match="several inputs need an output directory, not a URL"):
        _jobs(args, [str(CLIP), str(CLIP)], "rtmp://example/live")


class _Live:
    """A live input as the status line reads it (source, total, live, progress())."""

    source, total, live = "rtsp://admin:hunter2@cam/1", None, True

    def progress(self):
        from srstream.video.stream import Progress

        return Progress(seconds=10.0, decoded=250, written=80, dropped=170, reconnects=1, latency=1.74)


def test_a_live_inputs_status_line_gives_rates_drops_latency_and_reconnects():
    lines = StatusLines([_Live()], enabled=False)
    assert lines.line(_Live()) == "in 25.0 fps, out 8.0 fps, dropped 170, latency 1.7 s, reconnects 1"
    lines.close()


def test_sigterm_inside_the_block_is_an_interrupt_and_outside_it_is_what_it_was():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises first
    assert signal.getsignal(signal.SIGTERM) == before


def test_nobody_listening_is_one_line_at_once_for_ray_and_for_a_dicom_node(tmp_path):
    port = free_port()
    started = time.monotonic()
    with pytest.raises(RayUnavailable, match=f"127.0.0.1:{port}: no Ray cluster answers there") as ray_error:
        connect(f"127.0.0.1:{port}")
    assert "\n" not in str(ray_error.value) and time.monotonic() - started < 10
    node = destination(f"PACS@127.0.0.1:{port}")
    assert (node.aet, node.host, node.port, node.is_web) == ("PACS", "127.0.0.1", port, False)
    assert destination("https://pacs.example/dicom-web/").url == "https://pacs.example/dicom-web"
    with pytest.raises(VolumeError, match="give a DICOM node as AET@HOST:PORT"):
        destination("PACS@host:99999")
    with pytest.raises(SendError) as send_error:
        store(sorted(GE.glob("*.dcm"))[:1], node, "SRMED")
    assert "\n" not in str(send_error.value) and f"127.0.0.1:{port}" in str(send_error.value)


def test_a_bids_derivative_keeps_the_source_entities_and_links_back():
    assert derivative_stem("sub-01/anat/sub-01_T1w.nii.gz") == "sub-01/anat/sub-01_desc-sr_T1w"
    assert derivative_stem("sub-01_ses-2_dwi.nii") == "sub-01_ses-2_desc-sr_dwi"
    assert source_uri("sub-01/anat/sub-01_T1w.nii.gz") == "bids:raw:sub-01/anat/sub-01_T1w.nii.gz"


def test_the_demos_boxes_read_as_the_cli_reads_its_flags():
    import gradio as gr

    assert _volume_index("") is None and _volume_index(" 3 ") == 3 and _volume_index(None) is None
    with pytest.raises(gr.Error, match="Volume '-1': give a whole number from 0"):
        _volume_index("-1")
    assert _output_size("1920x-1").resolve(320, 180, 4) == (1920, 1080)
    assert _output_size("2").resolve(320, 180, 4) == (640, 360)
    with pytest.raises(gr.Error, match="Output size 0x0: sides must be positive"):
        _output_size("0x0")


def test_an_exported_models_input_channels_are_read_back_from_its_onnx(tmp_path):
    from srstream.export import export_onnx
    from srstream.export_command import onnx_input_channels
    from srstream.models import load_model

    plain = export_onnx(load_model("fast-x4"), tmp_path / "fast.onnx")
    with_qp = export_onnx(load_model("footage-qp-fast-x4"), tmp_path / "qp.onnx")
    assert onnx_input_channels(plain) == 3 and onnx_input_channels(with_qp) == 4  # the QP plane is an input
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"not a protobuf at all")
    with pytest.raises(ValueError, match=r"model\.onnx: not a readable ONNX model"):
        onnx_input_channels(bogus)


def test_a_received_instance_is_stored_whole_under_its_hashed_name(tmp_path):
    from medical.node.receiver import write_instance

    data = sorted(GE.glob("*.dcm"))[0].read_bytes()
    path = write_instance(tmp_path / "series", "1.2.840.113619.2.1.2.3", data)
    assert path.read_bytes() == data and path.suffix == ".dcm" and "1.2.840" not in path.name
    assert [p.name for p in (tmp_path / "series").iterdir()] == [path.name]  # no temporary left beside it


def test_a_bids_sidecars_slice_thickness_is_checked_and_named_by_its_file(tmp_path):
    from medical.bids.dataset import is_bids_root, slice_thickness

    sidecar = str(tmp_path / "sub-01_T1w.json")
    pathlib.Path(sidecar).write_text('{"SliceThickness": -1}')
    assert slice_thickness({"SliceThickness": 3}, (sidecar,)) == 3.0 and slice_thickness({}, (sidecar,)) is None
    with pytest.raises(VolumeError, match=r"sub-01_T1w\.json: SliceThickness -1 is not a positive number of mm"):
        slice_thickness({"SliceThickness": -1}, (sidecar,))
    assert not is_bids_root(tmp_path)
    (tmp_path / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.9.0"}')
    assert is_bids_root(tmp_path)


def test_pull_mode_takes_its_typed_request_and_checks_it_before_any_network(tmp_path):
    from medical.pacs_pull import PacsRequest, prepare

    local = PacsRequest(inputs=(str(GE),), output=tmp_path, format="same")
    assert prepare(local) == [str(GE)]  # no --from-pacs: IN... as given
    with pytest.raises(VolumeError, match="--from-pacs fetches the input: give no IN as well"):
        prepare(PacsRequest(inputs=(str(GE),), output=tmp_path, format="same", from_pacs="PACS@127.0.0.1:1",
                            series_uid="1.2.3"))
    with pytest.raises(VolumeError, match="--send-to stores DICOM series: not with --format nifti"):
        prepare(PacsRequest(inputs=(str(GE),), output=tmp_path, format="nifti", send_to="PACS@127.0.0.1:1"))
