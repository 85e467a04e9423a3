"""srstream/site/provenance.py: a segment carries its provenance inside and in a sidecar, without credentials, and
`verify` recomputes every hash: the untouched segment passes, a changed byte or a missing original fails."""

from datetime import UTC, datetime, timedelta

from srstream.site.provenance import inside, of_run, sha256_of, sidecar_of, verify, write_sidecar
from srstream.video.pipeline import upscale_video
from srstream.video.settings import EncodeOptions, Settings
from training.weights import resolve_model_path

from assets import CLIP


def test_a_segment_written_with_its_provenance_verifies_and_a_changed_byte_does_not(fast_x4, tmp_path):
    weights = sha256_of(resolve_model_path("fast-x4"))
    record = of_run("lobby", "rtsp://admin:hunter2@10.0.0.5/stream1", "fast-x4", weights,
                    {"input": "rtsp://admin:hunter2@10.0.0.5/stream1", "crf": 23})
    assert "hunter2" not in record.input and "hunter2" not in str(record.settings)
    segment = tmp_path / "lobby_20261207T101500Z_000.mp4"
    settings = Settings(options=EncodeOptions(preset="ultrafast", crf=30), duration=0.2, metadata=record.metadata())
    upscale_video(str(CLIP), segment, fast_x4, settings, progress=False)
    assert inside(segment) == record  # the container holds the whole record
    original = tmp_path / "lobby_20261207T101500Z_orig_000.mkv"
    original.write_bytes(CLIP.read_bytes())
    start = datetime(2026, 12, 7, 10, 15, tzinfo=UTC)
    sidecar = write_sidecar(segment, record, start, start + timedelta(seconds=0.2), [original])
    assert sidecar == sidecar_of(segment) and "hunter2" not in sidecar.read_text()

    verdict = verify(segment)
    assert verdict.ok and verdict.model == "fast-x4" and verdict.weights_sha256 == weights, verdict.checks
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    failed = {name for name, ok, _ in verify(segment).checks if not ok}
    assert "segment sha256" in failed
    original.unlink()
    assert f"original {original.name}" in {name for name, ok, _ in verify(segment).checks if not ok}
    assert not verify(tmp_path / "absent.mp4").ok
