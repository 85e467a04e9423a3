"""training/atomic.py: a file appears under its real name only when complete, with the usual permissions."""

import os
import stat

import pytest

from training.atomic import atomic_path, current_umask


def test_a_finished_write_appears_whole_with_the_umasks_permissions(tmp_path):
    target = tmp_path / "report.json"
    with atomic_path(target) as tmp:
        assert not target.exists() and os.path.dirname(tmp) == str(tmp_path)
        assert os.path.basename(tmp).startswith(".report.json.")  # hidden beside the target
        with open(tmp, "w") as f:
            f.write("{}")
    assert target.read_text() == "{}"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~current_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_failed_write_leaves_neither_the_target_nor_its_temporary(tmp_path):
    target = tmp_path / "volume.nii.gz"
    target.write_bytes(b"old")  # an earlier, complete output stays as it was
    with pytest.raises(RuntimeError), atomic_path(target, suffix=".nii.gz") as tmp:
        assert tmp.endswith(".nii.gz")
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["volume.nii.gz"]
