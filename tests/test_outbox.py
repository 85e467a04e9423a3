"""medical/node/outbox.py: the node's on-disk send queue keeps every derived series until it is delivered, backs
off after each failure, and picks up where it was after a restart."""

import json
import time

from medical.node.outbox import STATE, Outbox


def _series(tmp_path, name: str, count: int = 3):
    folder = tmp_path / "work" / name
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"{i:04d}.dcm").write_bytes(b"DICM" + bytes([i]))
    return folder


def test_a_queued_series_is_whole_and_moved_not_copied(tmp_path):
    box = Outbox(tmp_path / "outbox")
    series = _series(tmp_path, "derived")
    job = box.put(series, "job-1")
    assert not series.exists() and [p.name for p in job.files] == ["0000.dcm", "0001.dcm", "0002.dcm"]
    assert [j.folder.name for j in box.due()] == ["job-1"]


def test_failures_back_off_doubling_to_the_cap_and_survive_a_restart(tmp_path):
    box = Outbox(tmp_path / "outbox", retry_seconds=10, max_retry_seconds=35)
    job = box.put(_series(tmp_path, "derived"), "job-1")
    assert [box.failed(job, "PACS refused") for _ in range(4)] == [10, 20, 35, 35]
    state = json.loads((job.folder / STATE).read_text())
    assert state["attempts"] == 4 and state["error"] == "PACS refused"
    again = Outbox(tmp_path / "outbox")  # the node restarted: the job and its retry state are still there
    (reread,) = again.deliveries()
    assert reread.attempts == 4 and reread.last_error == "PACS refused"
    assert again.due() == [] and [j.folder.name for j in again.due(now=time.time() + 36)] == ["job-1"]


def test_delivered_jobs_go_and_half_queued_leftovers_are_cleared_at_start(tmp_path):
    box = Outbox(tmp_path / "outbox")
    first = box.put(_series(tmp_path, "a"), "job-1")
    box.put(_series(tmp_path, "b"), "job-2")
    box.delivered(first)
    assert [j.folder.name for j in box.deliveries()] == ["job-2"]
    (tmp_path / "outbox" / ".job-3").mkdir()  # the node stopped while queuing job-3
    Outbox(tmp_path / "outbox")
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == ["job-2"]
