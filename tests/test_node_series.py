"""medical/node/series.py: a received series is complete when it has been quiet long enough (file times, so a
restart does not forget) or has the expected count, and is claimed for work by one rename."""

import os
import shutil
import time

from medical.node.series import claim, complete, refusal

from assets import DATA

EPI = sorted((DATA / "dicom" / "ge_epi").glob("*.dcm"))  # a real 10-volume GE EPI series, 150 instances


def _receive(incoming, name: str, files, age_s: float):
    folder = incoming / name
    folder.mkdir(parents=True)
    for f in files:
        shutil.copy(f, folder / f.name)
        stamp = time.time() - age_s
        os.utime(folder / f.name, (stamp, stamp))
    return folder


def test_complete_when_quiet_for_long_enough_or_at_the_expected_count_oldest_first(tmp_path):
    incoming = tmp_path / "incoming"
    _receive(incoming, "newer", EPI[:3], age_s=20)
    _receive(incoming, "older", EPI[3:6], age_s=40)
    _receive(incoming, "arriving", EPI[6:8], age_s=1)
    assert [p.name for p in complete(incoming, quiet_seconds=15)] == ["older", "newer"]
    assert [p.name for p in complete(incoming, quiet_seconds=15, count=2)] == ["older", "newer", "arriving"]
    assert complete(tmp_path / "none-yet", quiet_seconds=0) == []


def test_a_claimed_series_leaves_incoming_in_one_move_and_a_real_volume_is_not_refused(tmp_path):
    incoming = tmp_path / "incoming"
    folder = _receive(incoming, "epi", EPI[:15], age_s=30)
    assert refusal(folder) is None  # 15 slices of one volume
    job = claim(folder, tmp_path / "work")
    assert not folder.exists() and len(list((job / "in").glob("*.dcm"))) == 15
    single = _receive(incoming, "one", EPI[:1], age_s=30)
    assert refusal(single) is not None
