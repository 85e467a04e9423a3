"""`srmed serve --rules FILE` (medical.node.rules): real TOML files in tmp_path routed against SeriesFacts, facts read
from the real DICOM series under tests/data/dicom, and every way a rules file can be wrong, each one line that names
the file and the rule or key."""
from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest

from medical.node.rules import Rule, Rules, RulesError, SeriesFacts, facts_of, load_rules

from assets import ENHANCED, GE

EXAMPLE = """
forward_unmatched = true
order = ["thick-mr", "ct"]

[rules.ct]
modality = ["CT"]
action = "forward"

[rules.thick-mr]
modality = "mr"
description = "t2|flair"
min_thickness = 2.0
max_thickness = 10
min_matrix = 128
max_matrix = 512
min_images = 10
max_images = 2000
model = "mri-thick"
mode = "through-plane"
scale = 2
spacing = 1.0
"""


def _facts(modality: str = "MR", description: str = "Ax T2 FLAIR", thickness: float | None = 5.0,
           rows: int = 256, columns: int = 256, images: int = 30) -> SeriesFacts:
    return SeriesFacts(modality, description, thickness, rows, columns, images)


def _rules(tmp_path: Path, text: str) -> Rules:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return load_rules(path)


def _error(tmp_path: Path, text: str) -> tuple[Path, str]:
    """The RulesError a rules file with `text` raises, checked to be one line that starts with the file's name."""
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    return path, message


def test_the_example_file_is_read_in_its_order_with_its_options(tmp_path):
    rules = _rules(tmp_path, EXAMPLE)
    assert rules.path == tmp_path / "rules.toml" and rules.forward_unmatched is True
    assert [rule.name for rule in rules.rules] == ["thick-mr", "ct"]
    mr = rules.rules[0]
    assert mr == Rule(name="thick-mr", modality=("MR",), description="t2|flair", min_thickness=2.0,
                      max_thickness=10.0, min_matrix=128, max_matrix=512, min_images=10, max_images=2000,
                      action="upscale", model="mri-thick", mode="through-plane", scale=2.0, spacing=1.0)
    assert mr.options() == {"model": "mri-thick", "mode": "through-plane", "scale": 2.0, "spacing": 1.0}
    assert isinstance(mr.options()["scale"], float) and isinstance(mr.max_thickness, float)
    ct = rules.rules[1]
    assert ct.action == "forward" and ct.options() == {} and ct.description is None and ct.min_images is None


def test_route_takes_the_first_rule_that_matches_and_none_when_nothing_does(tmp_path):
    rules = _rules(tmp_path, EXAMPLE)
    assert rules.route(_facts()).name == "thick-mr"
    assert rules.route(_facts(modality="CT", description="Abdomen", thickness=None, rows=512, images=1)).name == "ct"
    assert rules.route(_facts(modality="PT")) is None
    assert rules.route(_facts(description="Ax T1 post")) is None  # MR, but neither t2 nor flair


def test_order_decides_which_of_two_matching_rules_wins(tmp_path):
    tables = '[rules.any]\naction = "skip"\n[rules.mr]\nmodality = "MR"\nmodel = "mri"\n'
    assert _rules(tmp_path, tables).route(_facts()).name == "any"  # the order of the tables
    assert _rules(tmp_path, 'order = ["mr", "any"]\n' + tables).route(_facts()).name == "mr"
    assert _rules(tmp_path, tables).forward_unmatched is False


def test_a_rule_with_no_conditions_matches_every_series(tmp_path):
    rule = _rules(tmp_path, '[rules.all]\n').rules[0]
    assert rule == Rule(name="all") and rule.action == "upscale" and rule.options() == {}
    assert rule.matches(_facts(modality="", description="", thickness=None, rows=0, columns=0, images=0))


def test_modality_is_a_string_or_a_list_compared_without_case(tmp_path):
    rule = _rules(tmp_path, '[rules.r]\nmodality = ["ct", "Mr"]\n').rules[0]
    assert rule.modality == ("CT", "MR")
    assert rule.matches(_facts(modality="MR")) and rule.matches(_facts(modality="ct"))
    assert not rule.matches(_facts(modality="PT")) and not rule.matches(_facts(modality=""))


def test_description_is_searched_anywhere_without_case(tmp_path):
    rule = _rules(tmp_path, '[rules.r]\ndescription = "fl(ai)?r"\n').rules[0]
    assert rule.matches(_facts(description="Sag 3D FLAIR fat sat"))
    assert rule.matches(_facts(description="ax flr"))
    assert not rule.matches(_facts(description="Ax T2"))
    anchored = _rules(tmp_path, '[rules.r]\ndescription = "^ax"\n').rules[0]
    assert anchored.matches(_facts(description="AX T2")) and not anchored.matches(_facts(description="Sag AX"))


def test_bounds_include_their_ends(tmp_path):
    rule = _rules(tmp_path, "[rules.r]\nmin_thickness = 2\nmax_thickness = 5.5\nmin_matrix = 128\n"
                            "max_matrix = 256\nmin_images = 10\nmax_images = 20\n").rules[0]
    assert rule.matches(_facts(thickness=2.0, rows=128, columns=128, images=10))
    assert rule.matches(_facts(thickness=5.5, rows=256, columns=100, images=20))
    assert not rule.matches(_facts(thickness=1.99))
    assert not rule.matches(_facts(thickness=5.51))
    assert not rule.matches(_facts(rows=127, columns=127))
    assert not rule.matches(_facts(rows=128, columns=257))  # the matrix is the larger of rows and columns
    assert not rule.matches(_facts(images=9)) and not rule.matches(_facts(images=21))


def test_a_series_without_a_thickness_never_meets_a_thickness_bound(tmp_path):
    rules = _rules(tmp_path, "[rules.thin]\nmax_thickness = 1.5\n[rules.thick]\nmin_thickness = 1.5\n"
                             '[rules.any-mr]\nmodality = "MR"\n')
    assert rules.route(_facts(thickness=None)).name == "any-mr"
    assert rules.route(_facts(thickness=1.0)).name == "thin"
    assert rules.route(_facts(thickness=3.0)).name == "thick"


def test_facts_of_the_ge_series():
    assert facts_of(GE) == SeriesFacts(modality="MR", description="Axial EPI-FMRI (Sequential I to S)",
                                       slice_thickness=3.0, rows=64, columns=64, images=15)


def test_facts_of_an_enhanced_file_count_its_frames():
    assert facts_of(ENHANCED) == SeriesFacts(modality="MR", description="REST1 w SMS PF7-8", slice_thickness=None,
                                             rows=64, columns=64, images=6)


def test_facts_of_tolerate_missing_and_empty_fields_and_skip_other_files(tmp_path):
    for i, source in enumerate(sorted(GE.glob("*.dcm"))[:3]):
        header = pydicom.dcmread(source)
        del header.SeriesDescription, header.Rows
        header.SliceThickness = ""
        header.Modality = ""
        header.save_as(tmp_path / f"{i}.dcm")
    (tmp_path / "notes.txt").write_text("not DICOM")
    (tmp_path / "sub.dcm").mkdir()
    assert facts_of(tmp_path) == SeriesFacts(modality="", description="", slice_thickness=None, rows=0, columns=64,
                                             images=3)
    assert facts_of(tmp_path / "sub.dcm") == SeriesFacts("", "", None, 0, 0, 0)


def test_rules_route_a_real_series(tmp_path):
    rules = _rules(tmp_path, '[rules.epi]\nmodality = "MR"\ndescription = "epi"\nmin_thickness = 2.5\n'
                             'max_matrix = 64\nmin_images = 15\nmodel = "mri-epi"\n[rules.rest]\naction = "skip"\n')
    series = tmp_path / "series"
    shutil.copytree(GE, series)
    assert rules.route(facts_of(series)).options() == {"model": "mri-epi"}
    (series / sorted(p.name for p in series.glob("*.dcm"))[0]).unlink()  # 14 images: below min_images
    assert rules.route(facts_of(series)).name == "rest"


def test_the_errors_the_brief_names_read_as_written(tmp_path):
    path, message = _error(tmp_path, '[rules.ct]\nmodalty = "CT"\n')
    assert message.startswith(f"{path}: rule 'ct': unknown key 'modalty' (known: ")
    _, message = _error(tmp_path, 'order = ["mr"]\n[rules.ct]\n')
    assert message == f"{path}: order names rule 'mr' that does not exist"
    _, message = _error(tmp_path, '[rules.x]\ndescription = "a("\n')
    assert message == f"{path}: rule 'x': description 'a(' is not a valid pattern (missing ), unterminated " \
                      "subpattern at position 1)"
    _, message = _error(tmp_path, '[rules.ct]\nmodality = "CT"\nmin_images = = 3\n')
    assert message == f"{path}: not valid TOML: line 3: Invalid value"


def test_a_missing_or_unreadable_file(tmp_path):
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(RulesError, match=r"^.*nowhere\.toml: no such file$"):
        load_rules(str(missing))
    with pytest.raises(RulesError) as caught:
        load_rules(tmp_path)  # a folder
    assert str(caught.value).startswith(f"{tmp_path}: cannot read (") and "\n" not in str(caught.value)
    latin = tmp_path / "latin.toml"
    latin.write_bytes('[rules.caf\xe9]\n'.encode("latin-1"))
    with pytest.raises(RulesError, match=r"latin\.toml: cannot read \("):
        load_rules(latin)


@pytest.mark.parametrize("text, says", [
    ('[rules.ct]\nmodality = "CT"\nx = "\n', "not valid TOML: line 3: "),
    ('[rules.ct]\nmodality = "CT', "not valid TOML: end of file: Unterminated string"),
    ('forward_unmatch = true\n[rules.ct]\n',
     ": unknown key 'forward_unmatch' (known: forward_unmatched, order, rules)"),
    ('forward_unmatched = "yes"\n[rules.ct]\n', ": forward_unmatched: expected true or false, got 'yes'"),
    ('forward_unmatched = true\n', ": no rules"),
    ('[rules]\n', ": no rules"),
    ('rules = ["ct"]\n', ": no rules"),
    ('[rules]\nct = 5\n', "rule 'ct': expected a table ([rules.ct]), got 5"),
    ('order = "ct"\n[rules.ct]\n', ": order: expected a list of rule names, got 'ct'"),
    ('order = ["ct", 1]\n[rules.ct]\n', ": order: expected a list of rule names"),
    ('order = ["ct", "ct"]\n[rules.ct]\n', ": order names rule 'ct' twice"),
    ('order = ["ct"]\n[rules.ct]\n[rules.mr]\n', ": rule 'mr' is left out of order, so it is never tried"),
    ('order = []\n[rules.ct]\n', ": rule 'ct' is left out of order, so it is never tried"),
    ('[rules.r]\nmodality = 3\n', "rule 'r': modality: expected a string or a list of strings, got 3"),
    ('[rules.r]\nmodality = []\n', "rule 'r': modality: expected a string or a list of strings, got []"),
    ('[rules.r]\nmodality = ["CT", 1]\n', "rule 'r': modality: expected a string or a list of strings"),
    ('[rules.r]\nmodality = " "\n', "rule 'r': modality: expected a string or a list of strings"),
    ('[rules.r]\ndescription = 5\n', "rule 'r': description: expected a non-empty string, got 5"),
    ('[rules.r]\nmodel = ""\n', "rule 'r': model: expected a non-empty string, got ''"),
    ('[rules.r]\naction = "upscal"\n', "rule 'r': action 'upscal' is not one of upscale, skip, forward"),
    ('[rules.r]\naction = true\n', "rule 'r': action: expected a non-empty string, got True"),
    ('[rules.r]\nmode = "sideways"\n', "rule 'r': mode 'sideways' is not one of auto, in-plane, through-plane"),
    ('[rules.r]\nmin_thickness = "2"\n', "rule 'r': min_thickness: expected a finite number above 0, got '2'"),
    ('[rules.r]\nmax_thickness = true\n', "rule 'r': max_thickness: expected a finite number above 0, got True"),
    ('[rules.r]\nmin_thickness = 0\n', "rule 'r': min_thickness: expected a finite number above 0, got 0"),
    ('[rules.r]\nscale = -1.5\n', "rule 'r': scale: expected a finite number above 0, got -1.5"),
    ('[rules.r]\nscale = inf\n', "rule 'r': scale: expected a finite number above 0, got inf"),
    ('[rules.r]\nspacing = nan\n', "rule 'r': spacing: expected a finite number above 0, got nan"),
    ('[rules.r]\nmin_matrix = 128.0\n', "rule 'r': min_matrix: expected an integer above 0, got 128.0"),
    ('[rules.r]\nmax_images = 0\n', "rule 'r': max_images: expected an integer above 0, got 0"),
    ('[rules.r]\nmin_images = "10"\n', "rule 'r': min_images: expected an integer above 0, got '10'"),
    ('[rules.r]\nmin_thickness = 5\nmax_thickness = 2.5\n',
     "rule 'r': min_thickness 5.0 is more than max_thickness 2.5: nothing could match"),
    ('[rules.r]\nmin_matrix = 512\nmax_matrix = 256\n',
     "rule 'r': min_matrix 512 is more than max_matrix 256: nothing could match"),
    ('[rules.r]\nmin_images = 3\nmax_images = 2\n',
     "rule 'r': min_images 3 is more than max_images 2: nothing could match"),
])
def test_a_wrong_file_is_one_line_naming_the_file_and_the_key(tmp_path, text, says):
    path, message = _error(tmp_path, text)
    assert message.startswith(f"{path}: ") and says in message, message
